"""Findings must agree with the coverage counts: the check behind `findings_agree_with_coverage`."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from sm_assets.core import statuses
from sm_assets.core.outcomes import CheckOutcome
from sm_assets.core.reports.compute import ReportResult
from sm_assets.core.reports.frames import finding_groups, isna
from sm_assets.core.reports.schemas import COVERAGE_SCHEMA, FINDING_SEVERITY, MONITOR_REASONS
from sm_assets.core.specs import MONITOR_TYPES

# Codes the model quality coverage counts: only their ModelQuality findings must agree with them.
_MODEL_QUALITY_COUNTED = (
    "network_isolation_disabled",
    "intercontainer_encryption_disabled",
    "monitor_failing",
    "monitor_violations",
)
# One finding per account-region in that collection status, nothing else from it.
_STATUS_FINDINGS = {
    "collection_denied": statuses.ACCESS_DENIED,
    "collection_error": statuses.ERROR,
    "collection_stale": statuses.STALE,
    "collection_tags_denied": statuses.TAGS_DENIED,
}


def check_findings_agreement(coverage: pd.DataFrame, findings: pa.Table | pd.DataFrame) -> list[str]:
    """Mismatches between findings and coverage counts, as readable strings (empty list = agreement).

    Per (report_date, account_id, region) whose resources were counted (ok, tags_denied, region_disabled):
      endpoint_unmonitored = endpoints_in_service - endpoints_with_active_schedule,
      definition_endpoint_missing = definitions_endpoint_missing,
      definition_unscheduled = definitions_unscheduled,
      no_baseline = definitions_total - definitions_with_baseline,
      network_isolation_disabled (ModelQuality) = definitions_total - definitions_network_isolated,
      monitor_failing, monitor_violations (ModelQuality) = schedules_last_failed, schedules_last_with_violations,
      intercontainer_encryption_disabled (ModelQuality) <= definitions_total - definitions_intercontainer_encrypted
        (an inequality: single-instance definitions are exempt),
      no NULL counts;
    access_denied, error, stale rows: exactly one collection_denied / collection_error / collection_stale,
    nothing else, all counts and coverage NULL; tags_denied rows also have one collection_tags_denied.
    Findings for account-regions missing from coverage, unknown finding codes and wrong severities are
    mismatches too.
    """
    problems: list[str] = []
    # Only counts matter: group the (possibly millions of) findings first, then check the groups.
    groups = finding_groups(findings)

    unknown = groups[~groups["finding"].isin(list(FINDING_SEVERITY))]
    for code in sorted(set(unknown["finding"].astype(str))):
        problems.append(f"unknown finding code {code!r}")
    expected_sev = groups["finding"].map(FINDING_SEVERITY)
    bad_sev = groups[expected_sev.notna() & (groups["severity"] != expected_sev)]
    for code in sorted(set(bad_sev["finding"])):
        problems.append(f"finding {code} has severity other than {FINDING_SEVERITY[code]!r}")

    other_types = groups["finding"].isin(_MODEL_QUALITY_COUNTED) & groups["monitor_type"].ne("ModelQuality")
    known = groups[groups["finding"].isin(list(FINDING_SEVERITY)) & ~other_types]
    codes = list(FINDING_SEVERITY)
    if known.empty:
        counts = pd.DataFrame(columns=["_key", *codes])
    else:
        # string keys on both sides so the merge never trips on date vs object dtypes
        counts = (
            known.assign(_key=key_series(known))
            .groupby(["_key", "finding"])["n"]
            .sum()
            .unstack("finding", fill_value=0)
            .reindex(columns=codes, fill_value=0)
            .reset_index()
        )
    left = coverage.assign(_key=key_series(coverage))
    merged = left.merge(counts, on="_key", how="outer", indicator=True)
    for key in merged.loc[merged["_merge"] == "right_only", "_key"]:
        problems.append(f"{key}: findings for an account-region that has no coverage row")
    merged = merged[merged["_merge"] != "right_only"].reset_index(drop=True)
    for code in FINDING_SEVERITY:
        merged[code] = merged[code].fillna(0).astype("int64")

    status = merged["collection_status"]
    counted = status.isin(statuses.COUNTED)
    count_cols = [c.name for c in COVERAGE_SCHEMA if c.duckdb_type == "BIGINT"] + [
        "coverage_pct",
        "effective_coverage_pct",
    ]

    def col(name: str) -> pd.Series:
        return merged[name].astype("Float64")

    def one_if(mask: pd.Series) -> pd.Series:
        return pd.Series(0, index=merged.index, dtype="Float64").mask(mask, 1)

    equal_rules: dict[str, pd.Series] = {
        "endpoint_unmonitored": col("endpoints_in_service") - col("endpoints_with_active_schedule"),
        "definition_endpoint_missing": col("definitions_endpoint_missing"),
        "definition_unscheduled": col("definitions_unscheduled"),
        "no_baseline": col("definitions_total") - col("definitions_with_baseline"),
        "network_isolation_disabled": col("definitions_total") - col("definitions_network_isolated"),
        "monitor_failing": col("schedules_last_failed"),
        "monitor_violations": col("schedules_last_with_violations"),
        **{code: one_if(status.eq(state)) for code, state in _STATUS_FINDINGS.items()},
    }
    for code, expected in equal_rules.items():
        # rows whose resources were not counted expect zero resource findings
        expected = expected.where(counted | (code in _STATUS_FINDINGS), 0)
        bad = (merged[code].astype("Float64") != expected).fillna(True)
        for i in merged.index[bad]:
            problems.append(
                f"{merged.at[i, '_key']}: {code} findings={merged.at[i, code]} but coverage implies "
                f"{fmt_num(expected.at[i])} (collection_status={status.at[i]})"
            )
    for code in set(FINDING_SEVERITY) - set(equal_rules) - {"intercontainer_encryption_disabled"}:
        for i in merged.index[~counted & merged[code].ne(0)]:
            problems.append(f"{merged.at[i, '_key']}: {code} findings where collection_status={status.at[i]}")

    ic_limit = (col("definitions_total") - col("definitions_intercontainer_encrypted")).where(counted, 0)
    ic_code = "intercontainer_encryption_disabled"
    bad = (merged[ic_code].astype("Float64") > ic_limit).fillna(True)
    for i in merged.index[bad]:
        problems.append(
            f"{merged.at[i, '_key']}: {ic_code} findings={merged.at[i, ic_code]} exceed "
            f"definitions_total - definitions_intercontainer_encrypted = {fmt_num(ic_limit.at[i])}"
        )

    for name in count_cols:
        if name.endswith("_pct"):
            wrong = ~counted & merged[name].notna()
        else:
            wrong = (counted & merged[name].isna()) | (~counted & merged[name].notna())
        for i in merged.index[wrong]:
            rule = "must be NULL" if not counted.at[i] else "must not be NULL"
            problems.append(f"{merged.at[i, '_key']}: {name} {rule} (collection_status={status.at[i]})")
    return problems


def check_endpoint_monitor(endpoint_monitor: pd.DataFrame, coverage: pd.DataFrame) -> list[str]:
    """Problems with the endpoint monitor coverage: each endpoint of a counted account-region has one row
    per monitoring type, and each row's state agrees with its reasons."""
    problems: list[str] = []
    if endpoint_monitor.empty:
        return problems
    key = ["account_id", "region", "endpoint_arn"]
    per_endpoint = endpoint_monitor.groupby(key)["monitor_type"].agg(lambda types: sorted(types))
    for (account, region, arn), types in per_endpoint.items():
        if types != sorted(MONITOR_TYPES):
            problems.append(f"{account} {region} {arn}: monitor types {types}")
    for row in endpoint_monitor.itertuples(index=False):
        reasons = list(row.reasons)
        expected = "effective" if not reasons else "missing" if reasons == ["no_schedule"] else "degraded"
        if row.state != expected or reasons != sorted(reasons) or not set(reasons) <= set(MONITOR_REASONS):
            problems.append(
                f"{row.account_id} {row.region} {row.endpoint_name} {row.monitor_type}: "
                f"state {row.state} with reasons {reasons}"
            )
    counted = coverage[coverage["collection_status"].isin(statuses.COUNTED)]
    endpoints = counted.set_index(["account_id", "region"])["endpoints_total"]
    rows = endpoint_monitor.groupby(["account_id", "region"]).size() / len(MONITOR_TYPES)
    for (account, region), total in endpoints.items():
        if int(rows.get((account, region), 0)) != int(total):
            problems.append(
                f"{account} {region}: {int(rows.get((account, region), 0))} endpoints judged, {total} collected"
            )
    return problems


def key_series(df: pd.DataFrame) -> pd.Series:
    return df["report_date"].astype(str) + " " + df["account_id"].astype(str) + " " + df["region"].astype(str)


def fmt_num(value: Any) -> str:
    if isna(value):
        return "NULL"
    return str(int(value)) if float(value).is_integer() else f"{float(value):.1f}"


def report_checks(result: ReportResult, drop_warn_points: float) -> list[CheckOutcome]:
    """The report assets' checks: one coverage row per collected account x configured region, every
    percentage in [0, 100], findings agreeing with coverage, and a WARN on a fleet coverage drop."""
    cov = result.coverage
    expected_rows = len(result.snapshot_dates_used) * len(result.regions)
    duplicated = int(cov.duplicated(["account_id", "region"]).sum()) if not cov.empty else 0
    pct = list(cov["coverage_pct"].dropna().tolist())
    if not result.summary.empty:
        pct += result.summary["fleet_coverage_pct"].dropna().tolist()
    out_of_range = [v for v in pct if not 0 <= v <= 100]
    mismatches = check_findings_agreement(cov, result.findings)
    monitor_problems = check_endpoint_monitor(result.endpoint_monitor, cov)
    change = None if result.summary.empty else result.summary["coverage_change_pts"].iloc[0]
    change = None if change is None or pd.isna(change) else float(change)
    return [
        CheckOutcome(
            "one_row_per_account_region",
            len(cov) == expected_rows and duplicated == 0,
            {"rows": len(cov), "expected": expected_rows, "duplicates": duplicated},
        ),
        CheckOutcome("percentages_in_range", not out_of_range, {"out_of_range": out_of_range[:20]}),
        CheckOutcome("findings_agree_with_coverage", not mismatches, {"mismatches": mismatches[:50]}),
        CheckOutcome(
            "one_row_per_endpoint_and_monitor_type", not monitor_problems, {"problems": monitor_problems[:50]}
        ),
        CheckOutcome(
            "fleet_coverage_drop",
            change is None or change >= -drop_warn_points,
            {"coverage_change_pts": change, "threshold_pts": drop_warn_points},
            warn_only=True,
            description=f"WARN when fleet coverage drops by more than {drop_warn_points} points",
        ),
    ]

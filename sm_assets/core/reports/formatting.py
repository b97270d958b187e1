"""Reports for people: the worst accounts, the markdown summary, terminal tables."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import pandas as pd

from sm_assets.core.reports.frames import conform, empty_frame, findings_total, isna, row_dict
from sm_assets.core.reports.schemas import WORST_ACCOUNTS_SCHEMA


def worst_accounts(coverage_df: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """Account-level coverage (sums over ok regions), worst first (WORST_ACCOUNTS_COLUMNS).

    Order: known coverage ascending (ties: denied, error, ok; then most unmonitored endpoints), then
    accounts with NULL coverage (denied, error, ok-without-endpoints). Uses the latest report_date.
    """
    if coverage_df.empty:
        return empty_frame(WORST_ACCOUNTS_SCHEMA)
    cov = coverage_df[coverage_df["report_date"] == coverage_df["report_date"].max()]
    ok = cov["collection_status"].eq("ok")
    work = pd.DataFrame(
        {
            "account_id": cov["account_id"],
            "snapshot_date": cov["snapshot_date"],
            "ok": ok,
            "denied": cov["collection_status"].eq("access_denied"),
            "error": cov["collection_status"].eq("error"),
            "ins": cov["endpoints_in_service"].astype("Float64").where(ok),
            "act": cov["endpoints_with_active_schedule"].astype("Float64").where(ok),
        }
    )
    grouped = work.groupby("account_id", sort=True)
    acc = grouped.agg(
        snapshot_date=("snapshot_date", "max"),
        regions_ok=("ok", "sum"),
        regions_total=("ok", "size"),
        denied=("denied", "any"),
        error=("error", "any"),
    )
    sums = grouped[["ins", "act"]].sum(min_count=1)  # all regions unknown -> NULL, not 0
    acc["endpoints_in_service"] = sums["ins"]
    acc["endpoints_with_active_schedule"] = sums["act"]
    acc["endpoints_unmonitored"] = sums["ins"] - sums["act"]
    acc["coverage_pct"] = (100 * sums["act"] / sums["ins"]).where(sums["ins"] > 0)
    acc["collection_status"] = "ok"
    acc.loc[acc["error"], "collection_status"] = "error"
    acc.loc[acc["denied"], "collection_status"] = "access_denied"
    acc["_null"] = acc["coverage_pct"].isna()
    acc["_rank"] = acc["collection_status"].map({"access_denied": 0, "error": 1, "ok": 2})
    acc["_unmon"] = acc["endpoints_unmonitored"].fillna(0)
    acc = acc.reset_index().sort_values(
        ["_null", "coverage_pct", "_rank", "_unmon", "account_id"],
        ascending=[True, True, True, False, True],
        na_position="last",
    )
    return conform(acc.head(n), WORST_ACCOUNTS_SCHEMA)


def summary_markdown(
    summary_row: Mapping[str, Any] | pd.Series,
    worst_df: pd.DataFrame,
    previous_row: Mapping[str, Any] | pd.Series | None,
) -> str:
    """Markdown: fleet summary, the worst accounts table, and the change since the previous date."""
    s = row_dict(summary_row)
    total = findings_total(s)
    lines = [
        f"## Model quality monitoring: {s['report_date']}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| accounts (ok / denied / error) | {s['accounts_total']} ({s['accounts_ok']} / "
        f"{s['accounts_denied']} / {s['accounts_error']}) |",
        f"| in-service endpoints (ok regions) | {s['endpoints_in_service']} |",
        f"| with an active ModelQuality schedule | {s['endpoints_with_active_schedule']} |",
        f"| fleet coverage | {pct(s['fleet_coverage_pct'])} |",
        f"| findings (high / medium / low) | {total} ({s['findings_high']} / {s['findings_medium']} / "
        f"{s['findings_low']}) |",
        "",
        f"### {len(worst_df)} worst accounts",
        "",
        markdown_table(worst_df) if len(worst_df) else "_No accounts._",
        "",
    ]
    if previous_row is not None:
        p = row_dict(previous_row)
        prev_total = findings_total(p)
        cov_change = (
            None
            if s["fleet_coverage_pct"] is None or p["fleet_coverage_pct"] is None
            else s["fleet_coverage_pct"] - p["fleet_coverage_pct"]
        )
        lines += [
            f"### Change since {p['report_date']}",
            "",
            f"- coverage: {signed(cov_change, ' pts', 1)} ({pct(p['fleet_coverage_pct'])} -> "
            f"{pct(s['fleet_coverage_pct'])})",
            f"- findings: {signed(total - prev_total)} ({prev_total} -> {total})",
        ]
    elif s.get("previous_report_date") is not None:
        lines += [
            f"### Change since {s['previous_report_date']}",
            "",
            f"- coverage: {signed(s.get('coverage_change_pts'), ' pts', 1)}",
            f"- findings: {signed(s.get('findings_change'))}",
        ]
    else:
        lines += ["### Change", "", "No previous report date."]
    return "\n".join(lines) + "\n"


def format_terminal_table(df: pd.DataFrame) -> str:
    """Plain aligned text table: numbers right-aligned, floats to 1 decimal, NULL as '-'."""
    headers = [str(c) for c in df.columns]
    cells = [[cell(v) for v in row] for row in df.itertuples(index=False, name=None)]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    right = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells]
    return "\n".join(out)


def pct(value: Any) -> str:
    return "n/a" if value is None or isna(value) else f"{float(value):.1f}%"


def signed(value: Any, unit: str = "", decimals: int = 0) -> str:
    if value is None or isna(value):
        return "n/a"
    return f"{float(value):+.{decimals}f}{unit}"


def cell(value: Any) -> str:
    if value is None or isna(value):
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def markdown_table(df: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = [
        "| " + " | ".join(cell(v).replace("|", "\\|") for v in row) + " |"
        for row in df.itertuples(index=False, name=None)
    ]
    return "\n".join([header, sep, *rows])

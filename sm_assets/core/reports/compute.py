"""Compute a report date's coverage, findings and fleet summary from that day's tables.

The daily tables of day D already hold the organization as of D (each account's latest snapshot on or
before D), so a report reads one day of the lake, whatever history is kept. The previous report's fleet
numbers come from its stored summary (or, when it was never built, from its day's tables), and the
30-day trend from the stored summaries.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from sm_assets.core import duck, lake, layout, statuses
from sm_assets.core.config import DEFAULT_STALE_AFTER_DAYS
from sm_assets.core.errors import LakeError
from sm_assets.core.layout import LakeDir
from sm_assets.core.reports.formatting import summary_markdown, worst_accounts
from sm_assets.core.reports.frames import (
    arrow_schema,
    arrow_to_pandas,
    as_date,
    check_regions,
    conform,
    empty_frame,
    empty_table,
    fetch_arrow,
    fetch_frame,
    findings_by_severity,
    findings_total,
    row_dict,
    rows,
    used_params,
)
from sm_assets.core.reports.schemas import (
    COVERAGE_SCHEMA,
    ENDPOINT_MONITOR_SCHEMA,
    FINDING_SEVERITY,
    FINDINGS_SCHEMA,
    RESOURCE_TYPES,
    SEVERITIES,
    SUMMARY_SCHEMA,
    SUMMARY_TABLE,
    TREND_COLUMNS,
    TREND_SCHEMA,
)
from sm_assets.core.reports.sql import (
    FINDING_RULES,
    STAGES,
    coverage_sql,
    endpoint_monitor_sql,
    finding_counts_sql,
    findings_sql,
    with_clause,
)
from sm_assets.core.snapshots import daily_days
from sm_assets.core.specs import MONITOR_TYPES, RESOURCE_SPECS, monitor_type_snake


@dataclass
class ReportResult:
    report_date: date
    coverage: pd.DataFrame  # COVERAGE_COLUMNS
    # FINDINGS_COLUMNS with the exact FINDINGS_SCHEMA: an Arrow table, because it holds one row per finding
    # (millions at fleet scale) and is written to Parquet as is; ``findings.to_pandas()`` for a DataFrame.
    findings: pa.Table
    summary: pd.DataFrame  # SUMMARY_COLUMNS, one row (zero rows when reason is set)
    # ENDPOINT_MONITOR_COLUMNS: one row per (endpoint, monitoring type) of every collected account-region
    endpoint_monitor: pd.DataFrame = field(default_factory=lambda: empty_frame(ENDPOINT_MONITOR_SCHEMA))
    reason: str | None = None  # set when there are no daily tables for report_date
    snapshot_dates_used: dict[str, date] = field(default_factory=dict)
    # Fleet numbers of the previous report date, for display only: its own change columns are NULL.
    previous_summary: pd.DataFrame | None = None
    regions: tuple[str, ...] = ()  # the configured regions the report was computed for

    def markdown(self, n: int = 10) -> str:
        if self.summary.empty:
            return f"## Model quality monitoring: {self.report_date}\n\n{self.reason or 'No data.'}\n"
        previous = None if self.previous_summary is None else self.previous_summary.iloc[0]
        return summary_markdown(self.summary.iloc[0], worst_accounts(self.coverage, n), previous)


DAY_TABLES: tuple[str, ...] = (layout.DAILY_STATUS_TABLE, *(spec.table.name for spec in RESOURCE_SPECS))


def day_views(conn: duckdb.DuckDBPyConnection, lake_dir: LakeDir, day: date) -> bool:
    """Temporary views ``day_<table>`` over the daily files of `day`; False when that day has none."""
    if day not in set(daily_days(lake_dir, layout.DAILY_STATUS_TABLE)):
        return False
    from sm_assets.core.catalog import lake_columns_sql

    for table in DAY_TABLES:
        path = duck.sql_string(str(layout.daily_file(lake_dir, table, day)))
        conn.execute(
            f"CREATE OR REPLACE TEMP VIEW day_{table} AS SELECT {lake_columns_sql(table)} FROM read_parquet({path})"
        )
    return True


def compute_reports(
    conn: duckdb.DuckDBPyConnection,
    lake_dir: LakeDir,
    report_date: date,
    regions: Sequence[str],
    stale_after_days: int = DEFAULT_STALE_AFTER_DAYS,
) -> ReportResult:
    """Coverage, findings and fleet summary as of ``report_date``, from that day's tables.

    The previous report date is the latest earlier day with daily tables; its fleet numbers are its stored
    summary, or computed from its tables (counted, not built) when it has none."""
    report_date = as_date(report_date)
    regions = check_regions(regions)
    built = daily_days(lake_dir, layout.DAILY_STATUS_TABLE)
    if report_date not in built:
        earlier = [d for d in built if d < report_date]
        if earlier:
            hint = f"latest earlier day with tables: {earlier[-1]}; materialize the aws/* tables for {report_date}"
        elif built:
            hint = f"the first day with tables is {built[0]}"
        else:
            hint = "none built yet: materialize the aws/* tables first"
        reason = f"no daily tables for {report_date} ({hint})"
        return ReportResult(
            report_date=report_date,
            coverage=empty_frame(COVERAGE_SCHEMA),
            findings=empty_table(FINDINGS_SCHEMA),
            summary=empty_frame(SUMMARY_SCHEMA),
            reason=reason,
            regions=tuple(regions),
        )
    previous_date = max((d for d in built if d < report_date), default=None)
    prev = None if previous_date is None else stored_summary(conn, lake_dir, previous_date)
    if previous_date is not None and prev is None and day_views(conn, lake_dir, previous_date):
        # first: its temporary tables are gone before this date's findings take memory
        with _materialized(conn, _params(previous_date, regions, stale_after_days)) as core:
            prev = fleet_numbers(core.coverage(), core.severity_counts(), core.endpoint_monitor())

    day_views(conn, lake_dir, report_date)
    with _materialized(conn, _params(report_date, regions, stale_after_days)) as core:
        coverage = core.coverage()
        endpoint_monitor = core.endpoint_monitor()
        used = core.snapshot_dates_used()
        findings = core.take_findings()
    fleet = fleet_numbers(coverage, findings_by_severity(findings), endpoint_monitor)

    previous_summary = None
    change: dict[str, Any] = {
        "previous_report_date": previous_date,
        "coverage_change_pts": None,
        "findings_change": None,
    }
    if prev is not None:
        previous_summary = conform(pd.DataFrame([{"report_date": previous_date, **prev}]), SUMMARY_SCHEMA)
        if fleet["fleet_coverage_pct"] is not None and prev["fleet_coverage_pct"] is not None:
            change["coverage_change_pts"] = fleet["fleet_coverage_pct"] - prev["fleet_coverage_pct"]
        change["findings_change"] = findings_total(fleet) - findings_total(prev)

    summary = conform(pd.DataFrame([{"report_date": report_date, **fleet, **change}]), SUMMARY_SCHEMA)
    return ReportResult(
        report_date=report_date,
        coverage=coverage,
        findings=findings,
        summary=summary,
        endpoint_monitor=endpoint_monitor,
        reason=None,
        snapshot_dates_used=used,
        previous_summary=previous_summary,
        regions=tuple(regions),
    )


def stored_summary(conn: duckdb.DuckDBPyConnection, lake_dir: LakeDir, day: date) -> dict[str, Any] | None:
    """The fleet numbers of a stored summary report, or None when that date has none."""
    path = layout.report_file(lake_dir, SUMMARY_TABLE, day)
    try:
        table = lake.read_file(path, arrow_schema(SUMMARY_SCHEMA))
    except LakeError:
        return None
    frame = arrow_to_pandas(table)
    return row_dict(frame.iloc[0]) if len(frame) else None


def coverage_trend(
    conn: duckdb.DuckDBPyConnection,
    lake_dir: LakeDir,
    end_date: date,
    days: int = 30,
    *,
    reuse: ReportResult | None = None,
) -> pd.DataFrame:
    """Fleet coverage per report date in the ``days`` days ending at ``end_date`` (TREND_COLUMNS), from the
    stored fleet summaries; ``reuse``: a report just computed (its date and its previous date win)."""
    if days < 1:
        raise ValueError("days must be >= 1")
    end_date = as_date(end_date)
    start = end_date - timedelta(days=days - 1)
    known: dict[date, dict[str, Any]] = {}
    for entry in lake.list_folder(layout.report_dir(lake_dir, SUMMARY_TABLE)):
        day = report_day(entry.name)
        if day is not None and start <= day <= end_date:
            summary = stored_summary(conn, lake_dir, day)
            if summary is not None:
                known[day] = summary
    if reuse is not None:
        for summary in (reuse.summary, reuse.previous_summary):
            if summary is not None and not summary.empty:
                row = row_dict(summary.iloc[0])
                if start <= as_date(row["report_date"]) <= end_date:
                    known[as_date(row["report_date"])] = row
    out = [{c: known[d][c] for c in TREND_COLUMNS if c != "report_date"} | {"report_date": d} for d in sorted(known)]
    return conform(pd.DataFrame(out, columns=list(TREND_COLUMNS)), TREND_SCHEMA)


def report_day(folder_name: str) -> date | None:
    """The date of a ``report_date=YYYY-MM-DD`` folder name (the schema placeholder excluded)."""
    match = layout.REPORT_DIR.match(folder_name)
    if match is None:
        return None
    try:
        day = date.fromisoformat(match.group(1))
    except ValueError:
        return None
    return None if day == layout.PLACEHOLDER_DAY else day


# --------------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------------


def _params(report_date: date, regions: list[str], stale_after_days: int) -> dict[str, Any]:
    return {
        "report_date": report_date,
        "regions": regions,
        "resource_types": list(RESOURCE_TYPES),
        "stale_before": report_date - timedelta(days=stale_after_days),
    }


class _Core:
    """A report date's status and per-resource flags, materialized once as temporary tables."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, params: dict[str, Any], tables: dict[str, str]) -> None:
        self.conn, self.params, self.tables = conn, params, tables

    def coverage(self) -> pd.DataFrame:
        return fetch_frame(self.conn, coverage_sql(self.tables), self.params, COVERAGE_SCHEMA)

    def endpoint_monitor(self) -> pd.DataFrame:
        return fetch_frame(self.conn, endpoint_monitor_sql(self.tables), self.params, ENDPOINT_MONITOR_SCHEMA)

    def take_findings(self) -> pa.Table:
        """Every finding, in report order. The last use of this core: it drops each temporary table as
        soon as no remaining query reads it.

        One sorted query per severity (the first sort key) gives the same rows in the same order as one
        query, but each sort holds only its severity's rows; the severities reading the most tables run
        first so that those tables are freed while the findings accumulate."""
        reads = {level: {rule.source for rule in FINDING_RULES if rule.severity == level} for level in SEVERITIES}
        order = sorted(SEVERITIES, key=lambda level: -len(reads[level]))
        parts: dict[str, pa.Table] = {}
        for i, level in enumerate(order):
            sql = findings_sql(self.tables, [level])
            parts[level] = fetch_arrow(self.conn, sql, self.params, FINDINGS_SCHEMA)
            later = set().union(*(reads[other] for other in order[i + 1 :]))
            for source in sorted(reads[level] - later):
                self.conn.execute(f"DROP TABLE IF EXISTS {self.tables[source]}")
        return pa.concat_tables([parts[level] for level in SEVERITIES])

    def severity_counts(self) -> dict[str, int]:
        out = dict.fromkeys(SEVERITIES, 0)
        for code, n in rows(self.conn, finding_counts_sql(self.tables), self.params):
            out[FINDING_SEVERITY[code]] += int(n)
        return out

    def snapshot_dates_used(self) -> dict[str, date]:
        # every account with a snapshot has a row per configured region (at least one region)
        sql = f"SELECT DISTINCT account_id, snapshot_date FROM {self.tables['region_status']} ORDER BY account_id"
        return dict(rows(self.conn, sql, {}))


@contextmanager
def _materialized(conn: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> Iterator[_Core]:
    """Each day table is scanned (and its JSON parsed) once per report date, not once per query.

    Temporary tables are private to the connection (and allowed on a read-only one); they are dropped
    on the way out, error or not.
    """
    prefix = f"temp.main._sm_report_{uuid.uuid4().hex[:12]}_"
    tables: dict[str, str] = {}
    live: list[str] = []
    try:
        for cte, stands_for in STAGES:
            name = prefix + cte
            sql = f"CREATE TEMP TABLE {name} AS " + with_clause([cte], tables) + f"SELECT * FROM {cte}"
            conn.execute(sql, used_params(sql, params))
            live.append(name)
            tables.update(dict.fromkeys(stands_for, name))
            for old in [t for t in live if t not in tables.values()]:  # superseded by its flags table
                conn.execute(f"DROP TABLE {old}")
                live.remove(old)
        yield _Core(conn, params, tables)
    finally:
        for name in live:
            # never mask the error being raised; the tables die with the connection anyway
            with suppress(duckdb.Error):
                conn.execute(f"DROP TABLE IF EXISTS {name}")


def fleet_numbers(
    coverage: pd.DataFrame, severity_counts: Mapping[str, int] | None, endpoint_monitor: pd.DataFrame
) -> dict[str, Any]:
    """The fleet summary's numbers. An account counts once: denied if any region is denied, else failed if
    any failed, else stale if its snapshot is; endpoints count in regions whose resources were collected."""
    status = coverage["collection_status"]
    per_account = (
        pd.DataFrame(
            {
                "account_id": coverage["account_id"],
                "denied": status.eq(statuses.ACCESS_DENIED),
                "error": status.eq(statuses.ERROR),
                "stale": status.eq(statuses.STALE),
            }
        )
        .groupby("account_id")[["denied", "error", "stale"]]
        .any()
    )
    denied = per_account["denied"]
    error = per_account["error"] & ~denied
    stale = per_account["stale"] & ~denied & ~error
    counted = status.isin(statuses.COUNTED)
    in_service = int(coverage.loc[counted, "endpoints_in_service"].sum())
    active = int(coverage.loc[counted, "endpoints_with_active_schedule"].sum())
    serving = endpoint_monitor[endpoint_monitor["serving"].astype(bool)]
    endpoints_serving = int((serving["monitor_type"] == MONITOR_TYPES[0]).sum())
    out: dict[str, Any] = {
        "accounts_total": len(per_account),
        "accounts_ok": int((~denied & ~error & ~stale).sum()),
        "accounts_denied": int(denied.sum()),
        "accounts_error": int(error.sum()),
        "accounts_stale": int(stale.sum()),
        "endpoints_in_service": in_service,
        "endpoints_with_active_schedule": active,
        "fleet_coverage_pct": 100.0 * active / in_service if in_service else None,
        "endpoints_serving": endpoints_serving,
    }
    for monitor_type in MONITOR_TYPES:
        watched = int(((serving["monitor_type"] == monitor_type) & (serving["state"] == "effective")).sum())
        prefix = monitor_type_snake(monitor_type)
        out[f"{prefix}_endpoints_effectively_watched"] = watched
        out[f"{prefix}_effective_coverage_pct"] = 100.0 * watched / endpoints_serving if endpoints_serving else None
    if severity_counts is not None:
        for level in SEVERITIES:
            out[f"findings_{level}"] = int(severity_counts.get(level, 0))
    return out

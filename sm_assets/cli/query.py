"""`sm-assets query` and `sm-assets report`: read what is stored, never lock anything."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import duckdb
import pandas as pd

from sm_assets.cli.refresh import CliError
from sm_assets.core import ddsql, duck
from sm_assets.core.catalog import reader_connection
from sm_assets.core.config import Settings
from sm_assets.core.errors import one_line
from sm_assets.core.reports.formatting import text_table

SUMMARY_COLUMNS = [
    "report_date",
    "accounts_total",
    "accounts_ok",
    "accounts_denied",
    "accounts_error",
    "accounts_stale",
    "endpoints_in_service",
    "endpoints_with_active_schedule",
    "fleet_coverage_pct",
    "findings_high",
    "findings_medium",
    "findings_low",
]


def require_duckdb_file(settings: Settings) -> None:
    if not settings.duckdb_path.exists():
        raise CliError(f"no DuckDB file at {settings.duckdb_path}: run `sm-assets refresh` (or `make demo`) first")


def query_rows(settings: Settings, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of `sql` over the DuckDB file, read-only, timestamps in UTC. DDSQL's
    ``tags->'key'`` is accepted as is (`ddsql.to_duckdb`)."""
    require_duckdb_file(settings)
    try:
        with reader_connection(settings.duckdb_path, settings.lake_dir) as conn:
            cursor = conn.execute(ddsql.to_duckdb(sql))
            columns = [d[0] for d in cursor.description or []]
            return columns, cursor.fetchall()
    except duckdb.Error as exc:
        raise CliError(f"query failed: {one_line(exc)}") from None


def run_query(settings: Settings, sql: str) -> str:
    columns, rows = query_rows(settings, sql)
    return text_table(columns, rows, missing="NULL", max_width=60) + f"\n({len(rows)} rows)"


def render_report(settings: Settings, day: date | None = None) -> str:
    """Fleet summary and the 10 worst accounts as terminal tables, computed from the day's tables."""
    from sm_assets.core import reports

    day = day or datetime.now(UTC).date()
    try:
        with duck.connect(settings.lake_dir) as conn:
            result = reports.compute_reports(conn, settings.lake_dir, day, settings.regions, settings.stale_after_days)
    except duckdb.Error as exc:
        raise CliError(f"report failed: {one_line(exc)}") from None
    if result.reason:
        return f"Model quality report for {day}: {result.reason}"
    summary = result.summary.iloc[0]
    fleet = result.summary[SUMMARY_COLUMNS]
    if pd.isna(summary["previous_report_date"]):
        change = "no previous report date"
    else:
        pts = summary["coverage_change_pts"]
        pts_text = "n/a" if pd.isna(pts) else f"{pts:+.1f}"
        change = (
            f"since {summary['previous_report_date']}: coverage {pts_text} points, "
            f"findings {int(summary['findings_change']):+d}"
        )
    return "\n".join(
        [
            f"Model quality monitoring report for {day}",
            "",
            reports.format_terminal_table(fleet.T.reset_index().set_axis(["metric", "value"], axis=1)),
            "",
            f"Change {change}",
            "",
            "Serving endpoints by monitoring type (effective: a Scheduled monitor whose definition exists, that ran",
            "recently and successfully, on captured traffic it needs; see endpoint_monitor_coverage for every reason):",
            reports.format_terminal_table(reports.monitor_matrix(result.endpoint_monitor)),
            "",
            "Worst accounts by coverage:",
            reports.format_terminal_table(reports.worst_accounts(result.coverage, 10)),
        ]
    )

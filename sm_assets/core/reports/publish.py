"""Compute a day's reports and store them: one Parquet file per report table and date, plus an HTML chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import pyarrow as pa

from sm_assets.core import duck, lake, layout
from sm_assets.core.chart import coverage_chart_html
from sm_assets.core.layout import LakeDir, LakePath
from sm_assets.core.reports.compute import DEFAULT_STALE_AFTER_DAYS, ReportResult, compute_reports, coverage_trend
from sm_assets.core.reports.formatting import worst_accounts
from sm_assets.core.reports.frames import arrow_schema, to_arrow
from sm_assets.core.reports.schemas import REPORT_TABLES, SUMMARY_TABLE, TREND_30D_SCHEMA, TREND_30D_TABLE


@dataclass
class PublishedReports:
    result: ReportResult
    paths: dict[str, LakePath]  # report table -> its file for the date
    chart: LakePath


def publish_reports(
    lake_dir: LakeDir, day: date, regions: tuple[str, ...] | list[str], stale_after_days: int = DEFAULT_STALE_AFTER_DAYS
) -> PublishedReports:
    """Reports as of `day` from that day's tables (an in-memory DuckDB: no lock on the DuckDB file)."""
    with duck.connect(lake_dir) as conn:
        result = compute_reports(conn, lake_dir, day, regions, stale_after_days)
        trend = coverage_trend(conn, lake_dir, day, 30, reuse=result)
    paths = {
        table: lake.write_atomic(to_arrow(data, REPORT_TABLES[table]), layout.report_file(lake_dir, table, day))
        for table, data in zip(
            REPORT_TABLES, (result.coverage, result.findings, result.summary, result.endpoint_monitor), strict=True
        )
    }
    chart = layout.chart_file(lake_dir, day)
    lake.write_text(coverage_chart_html(day.isoformat(), worst_accounts(result.coverage, 50), trend), chart)
    return PublishedReports(result, paths, chart)


TREND_30D_SQL = f"""
SELECT report_date, fleet_coverage_pct,
       avg(fleet_coverage_pct) OVER (ORDER BY report_date ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)
           AS coverage_7d_avg,
       $end::DATE AS trend_end_date
FROM reports.{SUMMARY_TABLE}
WHERE report_date BETWEEN $start AND $end
ORDER BY report_date
"""


def trend_30d(conn: duckdb.DuckDBPyConnection, lake_dir: LakeDir, day: date) -> tuple[pa.Table, LakePath]:
    """The downstream example: fleet coverage over the 30 report dates ending on `day`, with a 7-day moving
    average, read from the DuckDB file's views (plain SQL, as any downstream reader would), stored as a file."""
    trend = conn.sql(TREND_30D_SQL, params={"start": day - timedelta(days=29), "end": day}).to_arrow_table()
    table = trend.cast(arrow_schema(TREND_30D_SCHEMA))
    return table, lake.write_atomic(table, layout.report_file(lake_dir, TREND_30D_TABLE, day))

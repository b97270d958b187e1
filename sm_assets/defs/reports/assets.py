"""Daily quality-coverage reports computed from the inventory history, plus a downstream example."""

from collections.abc import Iterator, Sequence
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from sm_assets.core import reports
from sm_assets.core.chart import coverage_chart_html
from sm_assets.core.lake import (
    LakeDir,
    LakePath,
    create_report_views,
    join,
    location_uri,
    refresh_inventory_views,
    report_file,
    write_atomic,
    write_text,
)
from sm_assets.core.schemas import Column
from sm_assets.defs.inventory.assets import NORMALIZED_KEYS, STATUS_KEY
from sm_assets.defs.resources import SmAssetsConfig

GROUP = "model_quality_reports"
REPORT_START_DATE = "2026-01-01"
# end_offset=1: today's report can be built as soon as today's snapshots exist.
report_day_partitions = dg.DailyPartitionsDefinition(start_date=REPORT_START_DATE, end_offset=1, timezone="UTC")

COVERAGE_KEY = dg.AssetKey(["reports", reports.COVERAGE_TABLE])
FINDINGS_KEY = dg.AssetKey(["reports", reports.FINDINGS_TABLE])
SUMMARY_KEY = dg.AssetKey(["reports", reports.SUMMARY_TABLE])
TREND_TABLE = "model_quality_coverage_trend_30d"
TREND_KEY = dg.AssetKey(["analytics", TREND_TABLE])
# Every report reads the history of all accounts: depend on all account partitions.
INVENTORY_DEPS = [
    dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in (STATUS_KEY, *NORMALIZED_KEYS.values())
]


def view_columns(columns: Sequence[Column]) -> list[tuple[str, str]]:
    return [(c.name, c.duckdb_type) for c in columns]


REPORT_VIEWS = {table: view_columns(cols) for table, cols in reports.REPORT_TABLES.items()}


def table_schema(columns: Sequence[Column]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(c.name, c.duckdb_type, description=c.description) for c in columns])


def chart_path(lake_dir: LakeDir, report_date: date) -> LakePath:
    return join(lake_dir, "reports", "charts", f"model_quality_coverage_{report_date.isoformat()}.html")


def _report_checks(
    result: reports.ReportResult, regions: Sequence[str], drop_warn_points: float
) -> list[dg.AssetCheckResult]:
    cov = result.coverage
    expected_rows = len(result.snapshot_dates_used) * len(regions)
    duplicated = int(cov.duplicated(["account_id", "region"]).sum()) if not cov.empty else 0
    pct = [v for v in cov["coverage_pct"].dropna().tolist()]
    if not result.summary.empty:
        pct += result.summary["fleet_coverage_pct"].dropna().tolist()
    out_of_range = [v for v in pct if not 0 <= v <= 100]
    mismatches = reports.check_findings_agreement(cov, result.findings)
    change = None if result.summary.empty else result.summary["coverage_change_pts"].iloc[0]
    change = None if change is None or pd.isna(change) else float(change)
    return [
        dg.AssetCheckResult(
            asset_key=COVERAGE_KEY,
            check_name="one_row_per_account_region",
            passed=len(cov) == expected_rows and duplicated == 0,
            metadata={"rows": len(cov), "expected": expected_rows, "duplicates": duplicated},
        ),
        dg.AssetCheckResult(
            asset_key=COVERAGE_KEY,
            check_name="percentages_in_range",
            passed=not out_of_range,
            metadata={"out_of_range": dg.MetadataValue.json(out_of_range[:20])},
        ),
        dg.AssetCheckResult(
            asset_key=FINDINGS_KEY,
            check_name="findings_agree_with_coverage",
            passed=not mismatches,
            metadata={"mismatches": dg.MetadataValue.json(mismatches[:50])},
        ),
        dg.AssetCheckResult(
            asset_key=SUMMARY_KEY,
            check_name="fleet_coverage_drop",
            severity=dg.AssetCheckSeverity.WARN,
            passed=change is None or change >= -drop_warn_points,
            description=f"WARN when fleet coverage drops by more than {drop_warn_points} points",
            metadata={"coverage_change_pts": change, "threshold_pts": drop_warn_points},
        ),
    ]


def report_spec(key: dg.AssetKey, table: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        deps=INVENTORY_DEPS,
        group_name=GROUP,
        kinds={"duckdb", "parquet"},
        description=description,
        metadata={
            "dagster/column_schema": table_schema(reports.REPORT_TABLES[table]),
            "dagster/table_name": f"sm_assets.reports.{table}",
        },
    )


@dg.multi_asset(
    specs=[
        report_spec(
            COVERAGE_KEY,
            reports.COVERAGE_TABLE,
            "One row per (report_date, account, region): endpoint coverage by active ModelQuality schedules "
            "and job definition controls. NULL = unknown.",
        ),
        report_spec(
            FINDINGS_KEY,
            reports.FINDINGS_TABLE,
            "One row per finding (unmonitored endpoints, unsafe definitions, failing monitors, blind spots), "
            "with severity.",
        ),
        report_spec(
            SUMMARY_KEY,
            reports.SUMMARY_TABLE,
            "One row per report date: accounts ok/denied/error, fleet coverage, findings by severity and the "
            "change since the previous report date.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "one_row_per_account_region",
            asset=COVERAGE_KEY,
            description="Exactly one row per collected account x configured region",
        ),
        dg.AssetCheckSpec("percentages_in_range", asset=COVERAGE_KEY, description="Every percentage in [0, 100]"),
        dg.AssetCheckSpec(
            "findings_agree_with_coverage",
            asset=FINDINGS_KEY,
            description="Finding counts equal the matching coverage counts",
        ),
        dg.AssetCheckSpec(
            "fleet_coverage_drop",
            asset=SUMMARY_KEY,
            description="WARN when fleet coverage falls by more than the configured points",
        ),
    ],
    partitions_def=report_day_partitions,
    name="model_quality_reports",
)
def model_quality_reports(
    context: dg.AssetExecutionContext, sm_config: SmAssetsConfig, duckdb: DuckDBResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Coverage, findings and fleet summary as of the partition date: for each account, its latest
    snapshot taken on or before that date."""
    settings = sm_config.settings()
    day = date.fromisoformat(context.partition_key)
    with duckdb.get_connection() as conn:
        refresh_inventory_views(conn, settings.lake_dir)
        result = reports.compute_reports(conn, day, settings.regions)
        # the report's date and its previous date come from the result, not computed again
        trend = reports.coverage_trend(conn, day, 30, settings.regions, reuse=result)
    paths = {}
    for table, key, data in (
        (reports.COVERAGE_TABLE, COVERAGE_KEY, result.coverage),
        (reports.FINDINGS_TABLE, FINDINGS_KEY, result.findings),  # already Arrow: written as is
        (reports.SUMMARY_TABLE, SUMMARY_KEY, result.summary),
    ):
        paths[key] = write_atomic(
            reports.to_arrow(data, reports.REPORT_TABLES[table]), report_file(settings.lake_dir, table, day)
        )
    chart = chart_path(settings.lake_dir, day)
    write_text(coverage_chart_html(day.isoformat(), reports.worst_accounts(result.coverage, 50), trend), chart)
    with duckdb.get_connection() as conn:
        create_report_views(conn, settings.lake_dir, REPORT_VIEWS)
    markdown = result.markdown(10)
    if result.reason:
        context.log.warning(f"report {day}: {result.reason}")
    common = {
        "report_date": day.isoformat(),
        "reason": result.reason or "",
        "accounts": len(result.snapshot_dates_used),
    }
    yield dg.MaterializeResult(
        asset_key=COVERAGE_KEY,
        metadata={
            **common,
            "dagster/row_count": len(result.coverage),
            "summary": dg.MetadataValue.md(markdown),
            "chart": dg.MetadataValue.path(str(chart)),
            "chart_url": dg.MetadataValue.url(location_uri(chart)),
            "path": dg.MetadataValue.path(str(paths[COVERAGE_KEY])),
        },
    )
    by_severity = reports.findings_by_severity(result.findings)
    yield dg.MaterializeResult(
        asset_key=FINDINGS_KEY,
        metadata={
            **common,
            "dagster/row_count": result.findings.num_rows,
            "by_severity": dg.MetadataValue.json(by_severity),
            "path": dg.MetadataValue.path(str(paths[FINDINGS_KEY])),
        },
    )
    yield dg.MaterializeResult(
        asset_key=SUMMARY_KEY,
        metadata={
            **common,
            "dagster/row_count": len(result.summary),
            "summary": dg.MetadataValue.md(markdown),
            "chart": dg.MetadataValue.path(str(chart)),
            "path": dg.MetadataValue.path(str(paths[SUMMARY_KEY])),
        },
    )
    yield from _report_checks(result, settings.regions, sm_config.coverage_drop_warn_points)


TREND_SCHEMA = (
    Column(
        "report_date",
        "DATE",
        pa.date32(),
        "Day of the fleet summary",
    ),
    Column(
        "fleet_coverage_pct",
        "DOUBLE",
        pa.float64(),
        "Fleet coverage that day",
    ),
    Column(
        "coverage_7d_avg",
        "DOUBLE",
        pa.float64(),
        "Average of the last 7 stored report dates",
    ),
    Column(
        "trend_end_date",
        "DATE",
        pa.date32(),
        "The partition this trend was computed for",
    ),
)


@dg.asset(
    key=TREND_KEY,
    deps=[dg.AssetDep(SUMMARY_KEY, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-29))],
    partitions_def=report_day_partitions,
    group_name="analytics",
    kinds={"duckdb", "parquet"},
    metadata={
        "dagster/column_schema": table_schema(TREND_SCHEMA),
        "dagster/table_name": f"sm_assets.reports.{TREND_TABLE}",
    },
)
def model_quality_coverage_trend_30d(
    context: dg.AssetExecutionContext, sm_config: SmAssetsConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Downstream example: fleet coverage over the 30 report dates ending on the partition date, with a
    7-day moving average, built only from `reports.model_quality_fleet_summary` (plain SQL)."""
    settings = sm_config.settings()
    day = date.fromisoformat(context.partition_key)
    with duckdb.get_connection() as conn:
        create_report_views(conn, settings.lake_dir, REPORT_VIEWS)
        trend = conn.sql(
            """
            SELECT report_date, fleet_coverage_pct,
                   avg(fleet_coverage_pct) OVER (ORDER BY report_date ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)
                       AS coverage_7d_avg,
                   $end::DATE AS trend_end_date
            FROM reports.model_quality_fleet_summary
            WHERE report_date BETWEEN $start AND $end
            ORDER BY report_date
            """,
            params={"start": day - timedelta(days=29), "end": day},
        ).to_arrow_table()
        path = write_atomic(
            trend.cast(reports.arrow_schema(TREND_SCHEMA)), report_file(settings.lake_dir, TREND_TABLE, day)
        )
        create_report_views(conn, settings.lake_dir, {**REPORT_VIEWS, TREND_TABLE: view_columns(TREND_SCHEMA)})
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": trend.num_rows,
            "report_dates_present": trend.num_rows,
            "report_dates_missing": 30 - trend.num_rows,
            "path": dg.MetadataValue.path(str(path)),
        }
    )


REPORT_ASSETS = [model_quality_reports, model_quality_coverage_trend_30d]

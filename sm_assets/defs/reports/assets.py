"""Daily quality-coverage reports computed from the day's tables, plus a downstream example."""

from collections.abc import Iterator
from datetime import date

import dagster as dg
from dagster_duckdb import DuckDBResource

from sm_assets.core import reports
from sm_assets.core.catalog import reader_setup
from sm_assets.core.layout import location_uri
from sm_assets.core.outcomes import CheckOutcome
from sm_assets.core.reports.publish import publish_reports, trend_30d
from sm_assets.core.reports.schemas import TREND_30D_SCHEMA, TREND_30D_TABLE
from sm_assets.core.schemas import Column
from sm_assets.core.storage import prepare_storage
from sm_assets.defs.inventory.assets import DAILY_KEYS, daily_partitions
from sm_assets.defs.resources import SmAssetsConfig

GROUP = "model_quality_reports"

COVERAGE_KEY = dg.AssetKey(["reports", reports.COVERAGE_TABLE])
FINDINGS_KEY = dg.AssetKey(["reports", reports.FINDINGS_TABLE])
SUMMARY_KEY = dg.AssetKey(["reports", reports.SUMMARY_TABLE])
TREND_KEY = dg.AssetKey(["analytics", TREND_30D_TABLE])
REPORT_KEYS = {
    reports.COVERAGE_TABLE: COVERAGE_KEY,
    reports.FINDINGS_TABLE: FINDINGS_KEY,
    reports.SUMMARY_TABLE: SUMMARY_KEY,
}
CHECK_ASSET = {
    "one_row_per_account_region": COVERAGE_KEY,
    "percentages_in_range": COVERAGE_KEY,
    "findings_agree_with_coverage": FINDINGS_KEY,
    "fleet_coverage_drop": SUMMARY_KEY,
}


def table_schema(columns: tuple[Column, ...]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(c.name, c.duckdb_type, description=c.description) for c in columns])


def report_spec(table: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        REPORT_KEYS[table],
        deps=DAILY_KEYS,  # the same day's tables
        group_name=GROUP,
        kinds={"duckdb", "parquet"},
        description=description,
        automation_condition=dg.AutomationCondition.eager(),
        metadata={
            "dagster/column_schema": table_schema(reports.REPORT_TABLES[table]),
            "dagster/table_name": f"sm_assets.reports.{table}",
        },
    )


def check_result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=CHECK_ASSET[outcome.name],
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.WARN if outcome.warn_only else dg.AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata={
            k: dg.MetadataValue.json(v) if isinstance(v, list | dict) else v for k, v in outcome.metadata.items()
        },
    )


@dg.multi_asset(
    specs=[
        report_spec(
            reports.COVERAGE_TABLE,
            "One row per (report_date, account, region): endpoint coverage by active ModelQuality schedules "
            "and job definition controls. NULL = unknown.",
        ),
        report_spec(
            reports.FINDINGS_TABLE,
            "One row per finding (unmonitored endpoints, unsafe definitions, failing monitors, blind spots), "
            "with severity.",
        ),
        report_spec(
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
            partitions_def=daily_partitions,
        ),
        dg.AssetCheckSpec(
            "percentages_in_range",
            asset=COVERAGE_KEY,
            description="Every percentage in [0, 100]",
            partitions_def=daily_partitions,
        ),
        dg.AssetCheckSpec(
            "findings_agree_with_coverage",
            asset=FINDINGS_KEY,
            description="Finding counts equal the matching coverage counts",
            partitions_def=daily_partitions,
        ),
        dg.AssetCheckSpec(
            "fleet_coverage_drop",
            asset=SUMMARY_KEY,
            description="WARN when fleet coverage falls by more than the configured points",
            partitions_def=daily_partitions,
        ),
    ],
    partitions_def=daily_partitions,
    name="model_quality_reports",
)
def model_quality_reports(
    context: dg.AssetExecutionContext, sm_config: SmAssetsConfig
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Coverage, findings and fleet summary as of the partition date, from that day's tables (each account's
    latest snapshot on or before the date)."""
    settings = sm_config.settings()
    day = date.fromisoformat(context.partition_key)
    prepare_storage(settings)  # downstream readers of the DuckDB file find the report views
    published = publish_reports(settings.lake_dir, day, settings.regions)
    result = published.result
    markdown = result.markdown(10)
    if result.reason:
        context.log.warning(f"report {day}: {result.reason}")
    common = {
        "report_date": day.isoformat(),
        "reason": result.reason or "",
        "accounts": len(result.snapshot_dates_used),
    }
    paths = published.paths
    yield dg.MaterializeResult(
        asset_key=COVERAGE_KEY,
        metadata={
            **common,
            "dagster/row_count": len(result.coverage),
            "summary": dg.MetadataValue.md(markdown),
            "chart": dg.MetadataValue.path(str(published.chart)),
            "chart_url": dg.MetadataValue.url(location_uri(published.chart)),
            "path": dg.MetadataValue.path(str(paths[reports.COVERAGE_TABLE])),
        },
    )
    yield dg.MaterializeResult(
        asset_key=FINDINGS_KEY,
        metadata={
            **common,
            "dagster/row_count": result.findings.num_rows,
            "by_severity": dg.MetadataValue.json(reports.findings_by_severity(result.findings)),
            "path": dg.MetadataValue.path(str(paths[reports.FINDINGS_TABLE])),
        },
    )
    yield dg.MaterializeResult(
        asset_key=SUMMARY_KEY,
        metadata={
            **common,
            "dagster/row_count": len(result.summary),
            "summary": dg.MetadataValue.md(markdown),
            "chart": dg.MetadataValue.path(str(published.chart)),
            "path": dg.MetadataValue.path(str(paths[reports.SUMMARY_TABLE])),
        },
    )
    for outcome in reports.report_checks(result, settings.coverage_drop_warn_points):
        yield check_result(outcome)


@dg.asset(
    key=TREND_KEY,
    deps=[dg.AssetDep(SUMMARY_KEY, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-29))],
    partitions_def=daily_partitions,
    group_name="analytics",
    kinds={"duckdb", "parquet"},
    automation_condition=dg.AutomationCondition.eager(),
    metadata={
        "dagster/column_schema": table_schema(TREND_30D_SCHEMA),
        "dagster/table_name": f"sm_assets.reports.{TREND_30D_TABLE}",
    },
)
def model_quality_coverage_trend_30d(
    context: dg.AssetExecutionContext, sm_config: SmAssetsConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Downstream example: fleet coverage over the 30 report dates ending on the partition date, with a
    7-day moving average, read through the DuckDB file (read-only) from `reports.model_quality_fleet_summary`."""
    settings = sm_config.settings()
    day = date.fromisoformat(context.partition_key)
    with duckdb.get_connection() as conn:
        reader_setup(conn, settings.lake_dir)
        trend, path = trend_30d(conn, settings.lake_dir, day)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": trend.num_rows,
            "report_dates_present": trend.num_rows,
            "report_dates_missing": 30 - trend.num_rows,
            "path": dg.MetadataValue.path(str(path)),
        }
    )


REPORT_ASSETS = [model_quality_reports, model_quality_coverage_trend_30d]

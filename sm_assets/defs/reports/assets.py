"""Daily quality-coverage reports computed from the day's tables, plus a downstream example."""

from collections.abc import Iterator
from datetime import date
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from sm_assets.core import reports
from sm_assets.core.catalog import reader_setup
from sm_assets.core.inventory_options import InventoryOptions
from sm_assets.core.layout import location_uri
from sm_assets.core.outcomes import CheckOutcome
from sm_assets.core.reports.publish import publish_reports, trend_30d
from sm_assets.core.reports.schemas import TREND_30D_SCHEMA, TREND_30D_TABLE
from sm_assets.core.schemas import Column
from sm_assets.core.storage import prepare_storage
from sm_assets.defs.resources import SmAssetsConfig, resource_keys
from sm_assets.defs.shared import DEFAULT_KEYS, InventoryKeys, asset_attributes, daily_partitions

# The default inventory's (no key prefix) keys, for the tests.
COVERAGE_KEY = DEFAULT_KEYS.reports[reports.COVERAGE_TABLE]
FINDINGS_KEY = DEFAULT_KEYS.reports[reports.FINDINGS_TABLE]
SUMMARY_KEY = DEFAULT_KEYS.reports[reports.SUMMARY_TABLE]
ENDPOINT_MONITOR_KEY = DEFAULT_KEYS.reports[reports.ENDPOINT_MONITOR_TABLE]
TREND_KEY = DEFAULT_KEYS.trend

REPORT_DESCRIPTIONS = {
    reports.COVERAGE_TABLE: "One row per (report_date, account, region): endpoint coverage by active ModelQuality "
    "schedules and job definition controls. NULL = unknown.",
    reports.FINDINGS_TABLE: "One row per finding (unmonitored endpoints, unsafe definitions, failing monitors, blind "
    "spots), with severity.",
    reports.SUMMARY_TABLE: "One row per report date: accounts ok/denied/error, fleet coverage, findings by severity "
    "and the change since the previous report date.",
    reports.ENDPOINT_MONITOR_TABLE: "One row per (report_date, endpoint, monitoring type) of every collected "
    "account-region: is the endpoint effectively watched by that type (a Scheduled monitor whose definition exists, "
    "that runs, recently and successfully, on captured traffic it needs), degraded (with reasons) or missing.",
}
# (check, report table, description, blocking). Blocking: a failed ERROR check means the reports are wrong,
# so the same run's downstream (the 30-day trend, a deployment's own assets) is skipped; the report files are
# written either way. The coverage-drop WARN is news about the fleet, not about the data: it never blocks.
REPORT_CHECKS = (
    (
        "one_row_per_account_region",
        reports.COVERAGE_TABLE,
        "Exactly one row per collected account x configured region",
        True,
    ),
    ("percentages_in_range", reports.COVERAGE_TABLE, "Every percentage in [0, 100]", True),
    ("findings_agree_with_coverage", reports.FINDINGS_TABLE, "Finding counts equal the matching coverage counts", True),
    (
        "one_row_per_endpoint_and_monitor_type",
        reports.ENDPOINT_MONITOR_TABLE,
        "One row per collected endpoint and monitoring type; state agrees with its reasons",
        True,
    ),
    (
        "fleet_coverage_drop",
        reports.SUMMARY_TABLE,
        "WARN when fleet coverage falls by more than the configured points",
        False,
    ),
)
CHECK_TABLE = {name: table for name, table, _, _ in REPORT_CHECKS}


def table_schema(columns: tuple[Column, ...]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(c.name, c.duckdb_type, description=c.description) for c in columns])


def _json_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: dg.MetadataValue.json(v) if isinstance(v, list | dict) else v for k, v in metadata.items()}


def build_report_assets(options: InventoryOptions, keys: InventoryKeys) -> list[dg.AssetsDefinition]:
    config_key, duckdb_key = resource_keys(options)
    _, reports_group, analytics_group = options.groups

    def report_spec(table: str) -> dg.AssetSpec:
        return dg.AssetSpec(
            keys.reports[table],
            deps=keys.daily,  # the same day's tables
            group_name=reports_group,
            kinds={"duckdb", "parquet"},
            description=REPORT_DESCRIPTIONS.get(table, f"Report table reports.{table}, one file per report date."),
            automation_condition=dg.AutomationCondition.eager(),
            **asset_attributes(options, "report"),
            metadata={
                "dagster/column_schema": table_schema(reports.REPORT_TABLES[table]),
                "dagster/table_name": f"sm_assets.reports.{table}",
            },
        )

    def check_result(outcome: CheckOutcome) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            asset_key=keys.reports[CHECK_TABLE[outcome.name]],
            check_name=outcome.name,
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.WARN if outcome.warn_only else dg.AssetCheckSeverity.ERROR,
            description=outcome.description,
            metadata=_json_metadata(outcome.metadata),
        )

    @dg.multi_asset(
        specs=[report_spec(table) for table in reports.REPORT_TABLES],
        check_specs=[
            dg.AssetCheckSpec(
                name,
                asset=keys.reports[table],
                description=description,
                partitions_def=daily_partitions,
                blocking=blocking,
            )
            for name, table, description, blocking in REPORT_CHECKS
        ],
        partitions_def=daily_partitions,
        name=options.name("model_quality_reports"),
        required_resource_keys={config_key},
    )
    def model_quality_reports(
        context: dg.AssetExecutionContext,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Coverage, findings, fleet summary and endpoint monitor coverage as of the partition date, from that
        day's tables (each account's latest snapshot on or before the date)."""
        sm_config: SmAssetsConfig = getattr(context.resources, config_key)
        settings = sm_config.settings()
        day = date.fromisoformat(context.partition_key)
        prepare_storage(settings)  # downstream readers of the DuckDB file find the report views
        published = publish_reports(settings.lake_dir, day, settings.regions, settings.stale_after_days)
        result = published.result
        markdown = result.markdown(10)
        if result.reason:
            context.log.warning(f"report {day}: {result.reason}")
        common = {
            "report_date": day.isoformat(),
            "reason": result.reason or "",
            "accounts": len(result.snapshot_dates_used),
        }
        chart = {"chart": dg.MetadataValue.path(str(published.chart))}
        extra: dict[str, dict[str, Any]] = {
            reports.COVERAGE_TABLE: {
                "dagster/row_count": len(result.coverage),
                "summary": dg.MetadataValue.md(markdown),
                **chart,
                "chart_url": dg.MetadataValue.url(location_uri(published.chart)),
            },
            reports.FINDINGS_TABLE: {
                "dagster/row_count": result.findings.num_rows,
                "by_severity": dg.MetadataValue.json(reports.findings_by_severity(result.findings)),
            },
            reports.SUMMARY_TABLE: {
                "dagster/row_count": len(result.summary),
                "summary": dg.MetadataValue.md(markdown),
                **chart,
            },
            reports.ENDPOINT_MONITOR_TABLE: {
                "dagster/row_count": len(result.endpoint_monitor),
                "by_state": dg.MetadataValue.json(reports.states_by_monitor_type(result.endpoint_monitor)),
            },
        }
        for table, path in published.paths.items():
            yield dg.MaterializeResult(
                asset_key=keys.reports[table],
                metadata={**common, **extra.get(table, {}), "path": dg.MetadataValue.path(str(path))},
            )
        for outcome in reports.report_checks(result, settings.coverage_drop_warn_points):
            yield check_result(outcome)

    @dg.asset(
        key=keys.trend,
        deps=[
            dg.AssetDep(
                keys.reports[reports.SUMMARY_TABLE], partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-29)
            )
        ],
        partitions_def=daily_partitions,
        group_name=analytics_group,
        kinds={"duckdb", "parquet"},
        automation_condition=dg.AutomationCondition.eager(),
        **asset_attributes(options, "analytics"),
        metadata={
            "dagster/column_schema": table_schema(TREND_30D_SCHEMA),
            "dagster/table_name": f"sm_assets.reports.{TREND_30D_TABLE}",
        },
        required_resource_keys={config_key, duckdb_key},
    )
    def model_quality_coverage_trend_30d(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Downstream example: fleet coverage over the 30 report dates ending on the partition date, with a
        7-day moving average, read through the DuckDB file (read-only) from `reports.model_quality_fleet_summary`."""
        settings = getattr(context.resources, config_key).settings()
        duckdb: DuckDBResource = getattr(context.resources, duckdb_key)
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

    return [model_quality_reports, model_quality_coverage_trend_30d]

"""The report tables' columns, and the finding codes with their severities (docs/reports.md says why)."""

from __future__ import annotations

import pyarrow as pa

from sm_assets.core.schemas import Column
from sm_assets.core.specs import RESOURCE_SPECS

COVERAGE_TABLE = "model_quality_coverage"
FINDINGS_TABLE = "model_quality_findings"
SUMMARY_TABLE = "model_quality_fleet_summary"

_ARROW = {"DATE": pa.date32(), "VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64()}


def report_column(name: str, duckdb_type: str, description: str, required: bool = False) -> Column:
    return Column(name, duckdb_type, _ARROW[duckdb_type], description, (), required)


_NULL_IF_NOT_OK = " NULL when collection is not ok."

COVERAGE_SCHEMA: tuple[Column, ...] = (
    report_column("report_date", "DATE", "Date the report is computed as of", required=True),
    report_column("account_id", "VARCHAR", "AWS account", required=True),
    report_column("region", "VARCHAR", "Configured AWS region", required=True),
    report_column(
        "snapshot_date",
        "DATE",
        "The account's latest snapshot on or before report_date (as in that day's tables)",
        required=True,
    ),
    report_column("collection_status", "VARCHAR", "ok | access_denied | error for this account-region", required=True),
    report_column("endpoints_total", "BIGINT", "Endpoints, any status." + _NULL_IF_NOT_OK),
    report_column("endpoints_in_service", "BIGINT", "Endpoints with EndpointStatus InService." + _NULL_IF_NOT_OK),
    report_column(
        "endpoints_with_definition",
        "BIGINT",
        "In-service endpoints named by a model quality job definition's EndpointInput." + _NULL_IF_NOT_OK,
    ),
    report_column(
        "endpoints_with_active_schedule",
        "BIGINT",
        "In-service endpoints with a Scheduled ModelQuality monitoring schedule." + _NULL_IF_NOT_OK,
    ),
    report_column(
        "coverage_pct",
        "DOUBLE",
        "100 * endpoints_with_active_schedule / endpoints_in_service; NULL when no in-service endpoints "
        "or collection not ok",
    ),
    report_column("definitions_total", "BIGINT", "Model quality job definitions." + _NULL_IF_NOT_OK),
    report_column(
        "definitions_with_baseline",
        "BIGINT",
        "Definitions with ModelQualityBaselineConfig.ConstraintsResource.S3Uri." + _NULL_IF_NOT_OK,
    ),
    report_column(
        "definitions_network_isolated",
        "BIGINT",
        "Definitions with NetworkConfig.EnableNetworkIsolation true." + _NULL_IF_NOT_OK,
    ),
    report_column(
        "definitions_intercontainer_encrypted",
        "BIGINT",
        "Definitions with NetworkConfig.EnableInterContainerTrafficEncryption true." + _NULL_IF_NOT_OK,
    ),
    report_column("definitions_in_vpc", "BIGINT", "Definitions with VpcConfig subnets." + _NULL_IF_NOT_OK),
    report_column("definitions_kms_output", "BIGINT", "Definitions with an output KmsKeyId." + _NULL_IF_NOT_OK),
    report_column("definitions_kms_volume", "BIGINT", "Definitions with a VolumeKmsKeyId." + _NULL_IF_NOT_OK),
    report_column("definitions_batch_transform", "BIGINT", "Definitions with BatchTransformInput." + _NULL_IF_NOT_OK),
    report_column(
        "definitions_endpoint_missing",
        "BIGINT",
        "Definitions whose EndpointInput names an endpoint absent from the account-region." + _NULL_IF_NOT_OK,
    ),
    report_column("definitions_unscheduled", "BIGINT", "Definitions no ModelQuality schedule names." + _NULL_IF_NOT_OK),
    report_column(
        "schedules_last_failed",
        "BIGINT",
        "ModelQuality schedules whose last execution Failed or whose status is Failed." + _NULL_IF_NOT_OK,
    ),
    report_column(
        "schedules_last_with_violations",
        "BIGINT",
        "ModelQuality schedules whose last execution is CompletedWithViolations." + _NULL_IF_NOT_OK,
    ),
)

FINDINGS_SCHEMA: tuple[Column, ...] = (
    report_column("report_date", "DATE", "Date the report is computed as of", required=True),
    report_column("account_id", "VARCHAR", "AWS account", required=True),
    report_column("region", "VARCHAR", "AWS region", required=True),
    report_column("resource_arn", "VARCHAR", "ARN of the offending resource; NULL for collection findings"),
    report_column("finding", "VARCHAR", "Finding code (see FINDING_SEVERITY)", required=True),
    report_column("severity", "VARCHAR", "high | medium | low", required=True),
    report_column("detail", "VARCHAR", "Human-readable explanation"),
)

SUMMARY_SCHEMA: tuple[Column, ...] = (
    report_column("report_date", "DATE", "Date the report is computed as of", required=True),
    report_column("accounts_total", "BIGINT", "Accounts with a snapshot on or before report_date", required=True),
    report_column("accounts_ok", "BIGINT", "Accounts whose every configured region is ok", required=True),
    report_column("accounts_denied", "BIGINT", "Accounts with any access_denied region", required=True),
    report_column("accounts_error", "BIGINT", "Accounts not denied with any error region", required=True),
    report_column("endpoints_in_service", "BIGINT", "In-service endpoints in ok regions", required=True),
    report_column(
        "endpoints_with_active_schedule",
        "BIGINT",
        "In-service endpoints with an active ModelQuality schedule, ok regions",
        required=True,
    ),
    report_column("fleet_coverage_pct", "DOUBLE", "100 * active / in service; NULL when no in-service endpoints"),
    report_column("findings_high", "BIGINT", "Findings with severity high", required=True),
    report_column("findings_medium", "BIGINT", "Findings with severity medium", required=True),
    report_column("findings_low", "BIGINT", "Findings with severity low", required=True),
    report_column("previous_report_date", "DATE", "Latest earlier date with any snapshot; NULL if none"),
    report_column(
        "coverage_change_pts",
        "DOUBLE",
        "fleet_coverage_pct minus the previous report's; NULL if either is NULL",
    ),
    report_column("findings_change", "BIGINT", "Total findings minus the previous report's; NULL if no previous"),
)

TREND_SCHEMA: tuple[Column, ...] = (
    report_column("report_date", "DATE", "A date with at least one snapshot", required=True),
    report_column("accounts_total", "BIGINT", "Accounts with a snapshot on or before report_date", required=True),
    report_column("accounts_ok", "BIGINT", "Accounts whose every region is ok", required=True),
    report_column("endpoints_in_service", "BIGINT", "In-service endpoints in ok regions", required=True),
    report_column(
        "endpoints_with_active_schedule", "BIGINT", "Covered in-service endpoints, ok regions", required=True
    ),
    report_column("fleet_coverage_pct", "DOUBLE", "Fleet coverage as of report_date"),
)

WORST_ACCOUNTS_SCHEMA: tuple[Column, ...] = (
    report_column("account_id", "VARCHAR", "AWS account", required=True),
    report_column("collection_status", "VARCHAR", "ok | access_denied | error (account rule)", required=True),
    report_column("snapshot_date", "DATE", "Snapshot used"),
    report_column("regions_ok", "BIGINT", "Configured regions collected ok", required=True),
    report_column("regions_total", "BIGINT", "Configured regions", required=True),
    report_column("endpoints_in_service", "BIGINT", "In-service endpoints over ok regions; NULL if no ok region"),
    report_column("endpoints_with_active_schedule", "BIGINT", "Covered in-service endpoints over ok regions"),
    report_column("endpoints_unmonitored", "BIGINT", "endpoints_in_service - endpoints_with_active_schedule"),
    report_column("coverage_pct", "DOUBLE", "Account coverage over ok regions; NULL when unknown or no endpoints"),
)

COVERAGE_COLUMNS: tuple[str, ...] = tuple(c.name for c in COVERAGE_SCHEMA)
FINDINGS_COLUMNS: tuple[str, ...] = tuple(c.name for c in FINDINGS_SCHEMA)
SUMMARY_COLUMNS: tuple[str, ...] = tuple(c.name for c in SUMMARY_SCHEMA)
TREND_COLUMNS: tuple[str, ...] = tuple(c.name for c in TREND_SCHEMA)
WORST_ACCOUNTS_COLUMNS: tuple[str, ...] = tuple(c.name for c in WORST_ACCOUNTS_SCHEMA)

REPORT_TABLES: dict[str, tuple[Column, ...]] = {
    COVERAGE_TABLE: COVERAGE_SCHEMA,
    FINDINGS_TABLE: FINDINGS_SCHEMA,
    SUMMARY_TABLE: SUMMARY_SCHEMA,
}

SEVERITIES: tuple[str, ...] = ("high", "medium", "low")

FINDING_SEVERITY: dict[str, str] = {
    "network_isolation_disabled": "high",
    "intercontainer_encryption_disabled": "medium",
    "endpoint_unmonitored": "medium",
    "monitor_failing": "medium",
    "no_baseline": "medium",
    "collection_denied": "medium",
    "definition_endpoint_missing": "low",
    "definition_unscheduled": "low",
    "monitor_violations": "low",
    "collection_error": "low",
}

# The resource types a region needs collected before its counts are known.
RESOURCE_TYPES: tuple[str, ...] = tuple(spec.resource_type for spec in RESOURCE_SPECS)

# The downstream example (analytics/model_quality_coverage_trend_30d): plain SQL over the fleet summary.
TREND_30D_TABLE = "model_quality_coverage_trend_30d"
TREND_30D_SCHEMA: tuple[Column, ...] = (
    report_column("report_date", "DATE", "Day of the fleet summary"),
    report_column("fleet_coverage_pct", "DOUBLE", "Fleet coverage that day"),
    report_column("coverage_7d_avg", "DOUBLE", "Average of the last 7 stored report dates"),
    report_column("trend_end_date", "DATE", "The partition this trend was computed for"),
)

# Every table under lake/reports/, each a DuckDB view reports.<table>.
STORED_REPORT_TABLES: dict[str, tuple[Column, ...]] = {**REPORT_TABLES, TREND_30D_TABLE: TREND_30D_SCHEMA}

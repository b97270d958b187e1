"""The report tables' columns, and the finding codes with their severities (docs/reports.md says why)."""

from __future__ import annotations

from sm_assets.core.schemas import Column, arrow_type
from sm_assets.core.specs import MONITOR_TYPES, RESOURCE_SPECS, monitor_type_snake

COVERAGE_TABLE = "model_quality_coverage"
FINDINGS_TABLE = "model_quality_findings"
SUMMARY_TABLE = "model_quality_fleet_summary"
ENDPOINT_MONITOR_TABLE = "endpoint_monitor_coverage"

# What each monitoring type reads from an endpoint's captured traffic: (Input, Output). ModelQuality compares
# predictions with ground truth; bias needs features and predictions; data quality and explainability
# analyse the features (docs/reports.md has the sources).
CAPTURE_NEEDS: dict[str, tuple[bool, bool]] = {
    "DataQuality": (True, False),
    "ModelQuality": (False, True),
    "ModelBias": (True, True),
    "ModelExplainability": (True, False),
}
# The posture checks of each job-definition type: (AWS Config managed rule, Security Hub control), verified
# against AWS's documentation (docs/reports.md cites it).
NETWORK_ISOLATION_CONTROLS: dict[str, tuple[str, str]] = {
    "DataQuality": ("sagemaker-data-quality-job-isolation", "SageMaker.11"),
    "ModelQuality": ("sagemaker-model-quality-job-definition-isolation", "SageMaker.25"),
    "ModelBias": ("sagemaker-model-bias-job-isolation", "SageMaker.12"),
    "ModelExplainability": ("sagemaker-model-explainability-job-network-isolation", "SageMaker.20"),
}
ENCRYPTION_CONTROLS: dict[str, tuple[str, str]] = {
    "DataQuality": ("sagemaker-data-quality-job-encrypt-in-transit", "SageMaker.9"),
    "ModelQuality": ("sagemaker-model-quality-job-encrypt-in-transit", "SageMaker.13"),
    "ModelBias": ("sagemaker-model-bias-job-encrypt-in-transit", "SageMaker.15"),
    "ModelExplainability": ("sagemaker-model-explainability-job-encrypt-in-transit", "SageMaker.10"),
}
# Endpoint states in which it serves traffic (and so can be watched).
SERVING_STATUSES: tuple[str, ...] = ("InService", "Updating", "SystemUpdating")
# Why an endpoint's monitor of one type is not effective (the `reasons` of endpoint_monitor_coverage).
MONITOR_REASONS: tuple[str, ...] = (
    "no_schedule",
    "schedule_not_scheduled",
    "definition_missing",
    "capture_disabled",
    "capture_missing_output",
    "capture_missing_input",
    "never_ran",
    "last_execution_failed",
    "stale",
)


def report_column(name: str, duckdb_type: str, description: str, required: bool = False) -> Column:
    return Column(name, duckdb_type, arrow_type(duckdb_type), description, (), required)


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
    report_column(
        "collection_status",
        "VARCHAR",
        "ok | tags_denied | region_disabled | access_denied | error | stale, for this account-region",
        required=True,
    ),
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
    report_column("endpoints_serving", "BIGINT", "Endpoints InService, Updating or SystemUpdating." + _NULL_IF_NOT_OK),
    report_column(
        "endpoints_effectively_watched",
        "BIGINT",
        "Serving endpoints whose ModelQuality monitor is effective (endpoint_monitor_coverage)." + _NULL_IF_NOT_OK,
    ),
    report_column(
        "effective_coverage_pct",
        "DOUBLE",
        "100 * endpoints_effectively_watched / endpoints_serving; NULL when none serve or collection not ok",
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
    report_column("monitor_type", "VARCHAR", "The monitoring type the finding is about; NULL when none"),
    report_column("config_rule", "VARCHAR", "The AWS Config managed rule that checks the same, if any"),
    report_column("security_hub_control", "VARCHAR", "The Security Hub control that checks the same, if any"),
)

ENDPOINT_MONITOR_SCHEMA: tuple[Column, ...] = (
    report_column("report_date", "DATE", "Date the report is computed as of", required=True),
    report_column("account_id", "VARCHAR", "AWS account", required=True),
    report_column("region", "VARCHAR", "AWS region", required=True),
    report_column("endpoint_name", "VARCHAR", "The endpoint", required=True),
    report_column(
        "monitor_type", "VARCHAR", "DataQuality | ModelQuality | ModelBias | ModelExplainability", required=True
    ),
    report_column("endpoint_arn", "VARCHAR", "ARN of the endpoint", required=True),
    report_column("snapshot_date", "DATE", "The account's snapshot the row comes from", required=True),
    report_column("endpoint_status", "VARCHAR", "EndpointStatus"),
    report_column("serving", "BOOLEAN", "EndpointStatus is InService, Updating or SystemUpdating", required=True),
    report_column("state", "VARCHAR", "effective | degraded | missing", required=True),
    report_column(
        "reasons", "VARCHAR[]", "Why not effective (sorted; empty when effective): see docs/reports.md", required=True
    ),
    report_column("schedule_name", "VARCHAR", "The schedule judged (the one with the fewest reasons); NULL if none"),
    report_column("last_execution_status", "VARCHAR", "That schedule's last MonitoringExecutionStatus"),
    report_column("last_execution_scheduled_time", "TIMESTAMP WITH TIME ZONE", "That execution's ScheduledTime"),
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
    report_column(
        "accounts_stale", "BIGINT", "Accounts whose as-of snapshot is older than the stale age", required=True
    ),
    report_column("endpoints_serving", "BIGINT", "Serving endpoints in collected regions", required=True),
    *(
        column
        for monitor_type in MONITOR_TYPES
        for column in (
            report_column(
                f"{monitor_type_snake(monitor_type)}_endpoints_effectively_watched",
                "BIGINT",
                f"Serving endpoints with an effective {monitor_type} monitor",
                required=True,
            ),
            report_column(
                f"{monitor_type_snake(monitor_type)}_effective_coverage_pct",
                "DOUBLE",
                "100 * those / endpoints_serving; NULL when no endpoint serves",
            ),
        )
    ),
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
    report_column("collection_status", "VARCHAR", "ok | access_denied | error | stale (account rule)", required=True),
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

ENDPOINT_MONITOR_COLUMNS: tuple[str, ...] = tuple(c.name for c in ENDPOINT_MONITOR_SCHEMA)

REPORT_TABLES: dict[str, tuple[Column, ...]] = {
    COVERAGE_TABLE: COVERAGE_SCHEMA,
    FINDINGS_TABLE: FINDINGS_SCHEMA,
    SUMMARY_TABLE: SUMMARY_SCHEMA,
    ENDPOINT_MONITOR_TABLE: ENDPOINT_MONITOR_SCHEMA,
}

SEVERITIES: tuple[str, ...] = ("high", "medium", "low")

FINDING_SEVERITY: dict[str, str] = {
    "network_isolation_disabled": "high",
    "intercontainer_encryption_disabled": "medium",
    "endpoint_unmonitored": "medium",
    "capture_disabled": "medium",
    "schedule_definition_missing": "medium",
    "monitor_failing": "medium",
    "monitor_stale": "medium",
    "no_baseline": "medium",
    "collection_denied": "medium",
    "collection_stale": "medium",
    "definition_endpoint_missing": "low",
    "definition_unscheduled": "low",
    "monitor_never_ran": "low",
    "monitor_violations": "low",
    "collection_error": "low",
    "collection_tags_denied": "low",
    "collection_skipped_resources": "low",
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

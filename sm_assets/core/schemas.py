"""Table contracts: the lake's Parquet datasets and the DuckDB views over them.

Every dataset is stored as one Parquet file per (snapshot_date, account_id):
``<lake>/<dataset>/snapshot_date=YYYY-MM-DD/account_id=NNNNNNNNNNNN.parquet``.
Each file carries ``snapshot_date``, ``account_id`` and ``region`` as real columns, so
readers never depend on path parsing for values (only for finding the latest file).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str  # the type the DuckDB view exposes
    arrow_type: pa.DataType  # the type stored in Parquet
    description: str
    source_fields: tuple[str, ...] = ()  # raw describe fields it is derived from (column lineage)
    required: bool = False  # never NULL in a valid row


@dataclass(frozen=True)
class TableSpec:
    """A normalized table: DDSQL-facing columns, in order, plus the lake bookkeeping columns."""

    name: str  # dataset directory and DuckDB view name in schema `aws`
    columns: tuple[Column, ...]
    description: str

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def lake_columns(self) -> tuple[Column, ...]:
        return LAKE_KEY_COLUMNS + self.columns

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.lake_columns])


TS = pa.timestamp("us", tz="UTC")
STR = pa.string()
TAGS = pa.map_(pa.string(), pa.string())

LAKE_KEY_COLUMNS: tuple[Column, ...] = (
    Column("snapshot_date", "DATE", pa.date32(), "UTC date the snapshot was collected", required=True),
    Column("collected_at", "TIMESTAMP WITH TIME ZONE", TS, "When the account was collected", required=True),
    Column("region", "VARCHAR", STR, "AWS region of the resource", required=True),
)


def _c(name: str, duckdb_type: str, desc: str, *fields: str, required: bool = False) -> Column:
    arrow = {
        "VARCHAR": STR,
        "JSON": STR,  # stored as text, exposed as JSON by the view
        "TIMESTAMP WITH TIME ZONE": TS,
        "MAP(VARCHAR, VARCHAR)": TAGS,
    }[duckdb_type]
    return Column(name, duckdb_type, arrow, desc, tuple(fields), required)


MODEL_QUALITY_JOB_DEFINITION = TableSpec(
    name="sagemaker_model_quality_job_definition",
    description=(
        "SageMaker model quality job definitions, one row per definition, matching Datadog DDSQL "
        "`aws.sagemaker_model_quality_job_definition` column for column."
    ),
    columns=(
        _c(
            "_key",
            "VARCHAR",
            "Row key: the job definition ARN (globally unique)",
            "JobDefinitionArn",
            required=True,
        ),
        _c("account_id", "VARCHAR", "AWS account that owns the definition", "JobDefinitionArn", required=True),
        _c(
            "creation_time",
            "TIMESTAMP WITH TIME ZONE",
            "When the definition was created",
            "CreationTime",
            required=True,
        ),
        _c("job_definition_arn", "VARCHAR", "ARN of the job definition", "JobDefinitionArn", required=True),
        _c("job_definition_name", "VARCHAR", "Name of the job definition", "JobDefinitionName", required=True),
        _c("job_resources", "JSON", "JobResources block", "JobResources"),
        _c(
            "model_quality_app_specification",
            "JSON",
            "ModelQualityAppSpecification block",
            "ModelQualityAppSpecification",
        ),
        _c(
            "model_quality_baseline_config",
            "JSON",
            "ModelQualityBaselineConfig block (NULL if absent)",
            "ModelQualityBaselineConfig",
        ),
        _c("model_quality_job_input", "JSON", "ModelQualityJobInput block", "ModelQualityJobInput"),
        _c(
            "model_quality_job_output_config",
            "JSON",
            "ModelQualityJobOutputConfig block",
            "ModelQualityJobOutputConfig",
        ),
        _c("network_config", "JSON", "NetworkConfig block (NULL if absent)", "NetworkConfig"),
        _c("role_arn", "VARCHAR", "IAM role the monitoring job runs as", "RoleArn"),
        _c("stopping_condition", "JSON", "StoppingCondition block (NULL if absent)", "StoppingCondition"),
        _c("tags", "MAP(VARCHAR, VARCHAR)", "Resource tags from ListTags", "Tags"),
    ),
)

ENDPOINT = TableSpec(
    name="sagemaker_endpoint",
    description="SageMaker endpoints (from ListEndpoints), one row per endpoint.",
    columns=(
        _c("_key", "VARCHAR", "Row key: the endpoint ARN", "EndpointArn", required=True),
        _c("account_id", "VARCHAR", "AWS account that owns the endpoint", "EndpointArn", required=True),
        _c("creation_time", "TIMESTAMP WITH TIME ZONE", "When the endpoint was created", "CreationTime"),
        _c("endpoint_arn", "VARCHAR", "ARN of the endpoint", "EndpointArn", required=True),
        _c("endpoint_name", "VARCHAR", "Name of the endpoint", "EndpointName", required=True),
        _c(
            "endpoint_status",
            "VARCHAR",
            "EndpointStatus (InService, Creating, Failed, ...)",
            "EndpointStatus",
        ),
        _c(
            "last_modified_time",
            "TIMESTAMP WITH TIME ZONE",
            "When the endpoint last changed",
            "LastModifiedTime",
        ),
    ),
)

MONITORING_SCHEDULE = TableSpec(
    name="sagemaker_monitoring_schedule",
    description=(
        "SageMaker ModelQuality monitoring schedules (DescribeMonitoringSchedule), mirroring Datadog DDSQL "
        "`aws.sagemaker_monitoring_schedule`."
    ),
    columns=(
        _c("_key", "VARCHAR", "Row key: the monitoring schedule ARN", "MonitoringScheduleArn", required=True),
        _c(
            "account_id",
            "VARCHAR",
            "AWS account that owns the schedule",
            "MonitoringScheduleArn",
            required=True,
        ),
        _c("creation_time", "TIMESTAMP WITH TIME ZONE", "When the schedule was created", "CreationTime"),
        _c("endpoint_name", "VARCHAR", "Endpoint the schedule monitors", "EndpointName"),
        _c("failure_reason", "VARCHAR", "Why the schedule failed, if it did", "FailureReason"),
        _c(
            "last_modified_time",
            "TIMESTAMP WITH TIME ZONE",
            "When the schedule last changed",
            "LastModifiedTime",
        ),
        _c(
            "last_monitoring_execution_summary",
            "JSON",
            "LastMonitoringExecutionSummary block",
            "LastMonitoringExecutionSummary",
        ),
        _c(
            "monitoring_schedule_arn",
            "VARCHAR",
            "ARN of the schedule",
            "MonitoringScheduleArn",
            required=True,
        ),
        _c(
            "monitoring_schedule_config",
            "JSON",
            "MonitoringScheduleConfig block (names the job definition)",
            "MonitoringScheduleConfig",
        ),
        _c(
            "monitoring_schedule_name",
            "VARCHAR",
            "Name of the schedule",
            "MonitoringScheduleName",
            required=True,
        ),
        _c(
            "monitoring_schedule_status",
            "VARCHAR",
            "Pending | Failed | Scheduled | Stopped",
            "MonitoringScheduleStatus",
        ),
        _c(
            "monitoring_type",
            "VARCHAR",
            "DataQuality | ModelQuality | ModelBias | ModelExplainability",
            "MonitoringType",
        ),
        _c("tags", "MAP(VARCHAR, VARCHAR)", "Resource tags from ListTags", "Tags"),
    ),
)

NORMALIZED_TABLES: dict[str, TableSpec] = {
    t.name: t for t in (MODEL_QUALITY_JOB_DEFINITION, ENDPOINT, MONITORING_SCHEDULE)
}

# Raw describe output: one row per resource, the describe (or list-summary) payload verbatim as JSON text.
RAW_SCHEMA = pa.schema(
    [
        pa.field("snapshot_date", pa.date32()),
        pa.field("collected_at", TS),
        pa.field("account_id", STR),
        pa.field("region", STR),
        pa.field("resource_type", STR),
        pa.field("arn", STR),
        pa.field("name", STR),
        pa.field("describe_json", STR),  # verbatim payload, timestamps as ISO-8601
        pa.field("tags_json", STR),  # ListTags result verbatim ([{"Key","Value"}]), NULL if not collected
    ]
)

# One row per (account, region, resource_type) and snapshot: did collection succeed?
COLLECTION_STATUS_SCHEMA = pa.schema(
    [
        pa.field("snapshot_date", pa.date32()),
        pa.field("collected_at", TS),
        pa.field("account_id", STR),
        pa.field("region", STR),
        pa.field("resource_type", STR),
        pa.field("status", STR),  # ok | access_denied | error
        pa.field("error_code", STR),
        pa.field("message", STR),
        pa.field("item_count", pa.int64()),
        pa.field("api_calls", pa.int64()),
    ]
)

COLLECTION_STATUS_DATASET = "collection_status"


def raw_dataset_name(resource_type: str) -> str:
    return f"raw_sagemaker_{resource_type}"

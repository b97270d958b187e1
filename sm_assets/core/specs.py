"""The registry: one declaration per SageMaker resource type (how to list, describe, tag and store it).

Every other list derives from `RESOURCE_SPECS`: the normalized tables and raw views, incremental describes,
collection status rows, CLI counts, the IAM policy's actions, the demo's seeding and the benchmark's fake.
The four Model Monitor job-definition types share one shape, so one factory declares each from its prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sm_assets.core.schemas import TAGS_FIELD, Field, TableSpec, column_name, ddsql_table, raw_dataset_name

# SageMaker's monitoring types, in the API's spelling (MonitoringType).
MONITOR_TYPES: tuple[str, ...] = ("DataQuality", "ModelQuality", "ModelBias", "ModelExplainability")


@dataclass(frozen=True)
class ResourceSpec:
    resource_type: str  # short name used in the lake and in collection status rows
    list_operation: str  # boto3 paginator name, e.g. "list_endpoints"
    list_result_key: str  # list response key holding the summaries
    arn_field: str  # field of the stored payload holding the ARN
    name_field: str
    table: TableSpec
    describe_operation: str | None = None  # None: the list summary is the stored payload
    describe_param: str | None = None  # describe request parameter that takes the name
    with_tags: bool = False  # also call ListTags (every page) per resource
    list_params: Mapping[str, str] = field(default_factory=dict)
    immutable: bool = False  # cannot be updated in place: a stored describe stays valid while ARN+CreationTime match
    summary_name_field: str | None = None  # when the list summary names things differently
    summary_arn_field: str | None = None
    monitor_type: str | None = None  # job definitions: the MonitoringType whose jobs they define

    @property
    def list_name_field(self) -> str:
        return self.summary_name_field or self.name_field

    @property
    def list_arn_field(self) -> str:
        return self.summary_arn_field or self.arn_field

    @property
    def raw_dataset(self) -> str:
        return raw_dataset_name(self.resource_type)

    @property
    def api_operations(self) -> tuple[str, ...]:
        """CamelCase API operations this spec calls (for IAM policy checks)."""
        ops = [_camel(self.list_operation)]
        if self.describe_operation:
            ops.append(_camel(self.describe_operation))
        if self.with_tags:
            ops.append("ListTags")
        return tuple(ops)


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def monitor_type_snake(monitor_type: str) -> str:
    """ModelQuality -> model_quality."""
    return column_name(monitor_type)


def job_definition_spec(monitor_type: str) -> ResourceSpec:
    """The job definitions of one Model Monitor type: ``List/Describe{T}JobDefinition(s)`` + ListTags,
    stored as DDSQL's ``aws.sagemaker_{t}_job_definition``. Definitions cannot be updated, only deleted
    and recreated, so a stored describe is reused while the ARN and CreationTime match."""
    snake = monitor_type_snake(monitor_type)
    label = snake.replace("_", " ")
    table = ddsql_table(
        f"sagemaker_{snake}_job_definition",
        f"SageMaker {label} job definitions, one row per definition, matching Datadog DDSQL "
        f"`aws.sagemaker_{snake}_job_definition` column for column.",
        "JobDefinitionArn",
        (
            Field("JobDefinitionArn", "VARCHAR", "ARN of the job definition", required=True),
            Field("JobDefinitionName", "VARCHAR", "Name of the job definition", required=True),
            Field("CreationTime", "TIMESTAMP WITH TIME ZONE", "When the definition was created", required=True),
            Field("JobResources", description="JobResources block (ClusterConfig)"),
            Field(f"{monitor_type}AppSpecification", description=f"{monitor_type}AppSpecification block"),
            Field(f"{monitor_type}BaselineConfig", description=f"{monitor_type}BaselineConfig block (NULL if absent)"),
            Field(
                f"{monitor_type}JobInput",
                description=f"{monitor_type}JobInput block (EndpointInput or BatchTransformInput)",
            ),
            Field(f"{monitor_type}JobOutputConfig", description=f"{monitor_type}JobOutputConfig block"),
            Field("NetworkConfig", description="NetworkConfig block (NULL if absent)"),
            Field("RoleArn", "VARCHAR", "IAM role the monitoring job runs as"),
            Field("StoppingCondition", description="StoppingCondition block (NULL if absent)"),
            TAGS_FIELD,
        ),
    )
    return ResourceSpec(
        resource_type=f"{snake}_job_definition",
        list_operation=f"list_{snake}_job_definitions",
        list_result_key="JobDefinitionSummaries",
        arn_field="JobDefinitionArn",
        name_field="JobDefinitionName",
        describe_operation=f"describe_{snake}_job_definition",
        describe_param="JobDefinitionName",
        with_tags=True,
        immutable=True,
        # The list calls return MonitoringJobDefinitionSummary objects.
        summary_name_field="MonitoringJobDefinitionName",
        summary_arn_field="MonitoringJobDefinitionArn",
        table=table,
        monitor_type=monitor_type,
    )


JOB_DEFINITION_SPECS: dict[str, ResourceSpec] = {t: job_definition_spec(t) for t in MONITOR_TYPES}
MODEL_QUALITY_JOB_DEFINITION_SPEC = JOB_DEFINITION_SPECS["ModelQuality"]

ENDPOINT_SPEC = ResourceSpec(
    resource_type="endpoint",
    list_operation="list_endpoints",
    list_result_key="Endpoints",
    arn_field="EndpointArn",
    name_field="EndpointName",
    describe_operation="describe_endpoint",
    describe_param="EndpointName",
    with_tags=True,
    table=ddsql_table(
        "sagemaker_endpoint",
        "SageMaker endpoints (DescribeEndpoint + ListTags), one row per endpoint, matching Datadog DDSQL "
        "`aws.sagemaker_endpoint` (columns after endpoint_status follow DDSQL's rule; see docs/tables.md).",
        "EndpointArn",
        (
            Field("AsyncInferenceConfig"),
            Field("CreationTime", "TIMESTAMP WITH TIME ZONE", "When the endpoint was created"),
            Field(
                "DataCaptureConfig",
                description="DataCaptureConfigSummary: EnableCapture, CaptureStatus, "
                "CurrentSamplingPercentage, DestinationS3Uri",
            ),
            Field("EndpointArn", "VARCHAR", "ARN of the endpoint", required=True),
            Field("EndpointConfigName", "VARCHAR", "The endpoint config it runs"),
            Field("EndpointName", "VARCHAR", "Name of the endpoint", required=True),
            Field("EndpointStatus", "VARCHAR", "InService, Creating, Updating, Failed, ..."),
            Field("ExplainerConfig"),
            Field("FailureReason", "VARCHAR", "Why the endpoint failed, if it did"),
            Field("LastDeploymentConfig"),
            Field("LastModifiedTime", "TIMESTAMP WITH TIME ZONE", "When the endpoint last changed"),
            Field("PendingDeploymentSummary"),
            Field("ProductionVariants", description="ProductionVariantSummary list"),
            Field("ShadowProductionVariants"),
            TAGS_FIELD,
        ),
    ),
)

ENDPOINT_CONFIG_SPEC = ResourceSpec(
    resource_type="endpoint_config",
    list_operation="list_endpoint_configs",
    list_result_key="EndpointConfigs",
    arn_field="EndpointConfigArn",
    name_field="EndpointConfigName",
    describe_operation="describe_endpoint_config",
    describe_param="EndpointConfigName",
    with_tags=True,
    immutable=True,  # endpoint configs cannot be updated: an endpoint moves to a new config instead
    table=ddsql_table(
        "sagemaker_endpoint_config",
        "SageMaker endpoint configs (DescribeEndpointConfig + ListTags), matching Datadog DDSQL "
        "`aws.sagemaker_endpoint_config` column for column.",
        "EndpointConfigArn",
        (
            Field("AsyncInferenceConfig"),
            Field("CreationTime", "TIMESTAMP WITH TIME ZONE", "When the config was created"),
            Field(
                "DataCaptureConfig",
                description="DataCaptureConfig: EnableCapture, InitialSamplingPercentage, "
                "CaptureOptions (Input / Output), DestinationS3Uri",
            ),
            Field("EnableNetworkIsolation", "BOOLEAN", "Network isolation of the model containers"),
            Field("EndpointConfigArn", "VARCHAR", "ARN of the endpoint config", required=True),
            Field("EndpointConfigName", "VARCHAR", "Name of the endpoint config", required=True),
            Field("ExecutionRoleArn", "VARCHAR", "Role the inference containers run as"),
            Field("ExplainerConfig"),
            Field("KmsKeyId", "VARCHAR", "KMS key of the ML storage volume"),
            Field("ProductionVariants", description="ProductionVariant list"),
            Field("ShadowProductionVariants"),
            TAGS_FIELD,
            Field("VpcConfig"),
        ),
    ),
)

MONITORING_SCHEDULE_SPEC = ResourceSpec(
    resource_type="monitoring_schedule",
    list_operation="list_monitoring_schedules",
    list_result_key="MonitoringScheduleSummaries",
    arn_field="MonitoringScheduleArn",
    name_field="MonitoringScheduleName",
    describe_operation="describe_monitoring_schedule",
    describe_param="MonitoringScheduleName",
    with_tags=True,
    table=ddsql_table(
        "sagemaker_monitoring_schedule",
        "SageMaker monitoring schedules of every monitoring type (DescribeMonitoringSchedule + ListTags), "
        "matching Datadog DDSQL `aws.sagemaker_monitoring_schedule` column for column.",
        "MonitoringScheduleArn",
        (
            Field("CreationTime", "TIMESTAMP WITH TIME ZONE", "When the schedule was created"),
            Field("EndpointName", "VARCHAR", "Endpoint the schedule monitors"),
            Field("FailureReason", "VARCHAR", "Why the schedule failed, if it did"),
            Field("LastModifiedTime", "TIMESTAMP WITH TIME ZONE", "When the schedule last changed"),
            Field("LastMonitoringExecutionSummary", description="The last execution: status, ScheduledTime, ..."),
            Field("MonitoringScheduleArn", "VARCHAR", "ARN of the schedule", required=True),
            Field("MonitoringScheduleConfig", description="ScheduleConfig and the job definition it runs"),
            Field("MonitoringScheduleName", "VARCHAR", "Name of the schedule", required=True),
            Field("MonitoringScheduleStatus", "VARCHAR", "Pending | Failed | Scheduled | Stopped"),
            Field("MonitoringType", "VARCHAR", "DataQuality | ModelQuality | ModelBias | ModelExplainability"),
            TAGS_FIELD,
        ),
    ),
)

RESOURCE_SPECS: tuple[ResourceSpec, ...] = (
    *JOB_DEFINITION_SPECS.values(),
    ENDPOINT_SPEC,
    ENDPOINT_CONFIG_SPEC,
    MONITORING_SCHEDULE_SPEC,
)
SPECS_BY_TYPE: dict[str, ResourceSpec] = {s.resource_type: s for s in RESOURCE_SPECS}

"""One spec per SageMaker resource type: how to list, describe, tag and normalize it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sm_assets.core.schemas import (
    ENDPOINT,
    MODEL_QUALITY_JOB_DEFINITION,
    MONITORING_SCHEDULE,
    TableSpec,
    raw_dataset_name,
)


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


MODEL_QUALITY_JOB_DEFINITION_SPEC = ResourceSpec(
    resource_type="model_quality_job_definition",
    list_operation="list_model_quality_job_definitions",
    list_result_key="JobDefinitionSummaries",
    arn_field="JobDefinitionArn",
    name_field="JobDefinitionName",
    describe_operation="describe_model_quality_job_definition",
    describe_param="JobDefinitionName",
    with_tags=True,
    immutable=True,  # model quality job definitions can only be deleted and recreated
    # The list call returns MonitoringJobDefinitionSummary objects.
    summary_name_field="MonitoringJobDefinitionName",
    summary_arn_field="MonitoringJobDefinitionArn",
    table=MODEL_QUALITY_JOB_DEFINITION,
)

ENDPOINT_SPEC = ResourceSpec(
    resource_type="endpoint",
    list_operation="list_endpoints",
    list_result_key="Endpoints",
    arn_field="EndpointArn",
    name_field="EndpointName",
    table=ENDPOINT,
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
    table=MONITORING_SCHEDULE,
    list_params={"MonitoringTypeEquals": "ModelQuality"},
)

RESOURCE_SPECS: tuple[ResourceSpec, ...] = (
    MODEL_QUALITY_JOB_DEFINITION_SPEC,
    ENDPOINT_SPEC,
    MONITORING_SCHEDULE_SPEC,
)
SPECS_BY_TYPE: dict[str, ResourceSpec] = {s.resource_type: s for s in RESOURCE_SPECS}

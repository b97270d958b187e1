"""The SageMaker parts moto 5.2.5 gets wrong or lacks, for the Model Monitor family.

* Job definitions of the four monitoring types, in one store with AWS's shapes: moto's own handlers drop or
  misspell optional blocks (``{}`` for an absent NetworkConfig, ``StoppingConditions``), crash on
  BatchTransformInput definitions, ignore the list filters and paging, and report ``"EndpointName"`` as a
  literal endpoint name.
* DescribeEndpoint with a real ``DataCaptureConfig`` summary (moto omits ``CaptureStatus`` and
  ``CurrentSamplingPercentage``) and DescribeEndpointConfig with the members moto accepts but drops
  (``ExecutionRoleArn``, ``VpcConfig``, ``EnableNetworkIsolation``, ...); absent blocks omitted, as AWS does.
* What an organization's accounts answer that no API sets: an opt-in region the account has not enabled
  (``UnrecognizedClientException`` for every SageMaker call there) and an SCP that denies ListTags.

Errors are moto ServiceExceptions, serialized by moto in SageMaker's JSON-protocol wire format.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from moto.core.common_models import BaseModel
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, SagemakerClientError, ValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemaker.utils import arn_formatter

from sm_assets.core.specs import MONITOR_TYPES

# The Create request members each type's describe returns (besides name, ARN and CreationTime).
_DEFINITION_MEMBERS = ("BaselineConfig", "AppSpecification", "JobInput", "JobOutputConfig")
_COMMON_MEMBERS = ("JobResources", "NetworkConfig", "RoleArn", "StoppingCondition")
_LIST_PAGE_DEFAULT, _LIST_PAGE_MAX = 10, 100  # AWS: MaxResults 1..100, default 10
# DescribeEndpointConfig members moto accepts on create but never returns.
_CONFIG_EXTRAS = (
    "ExecutionRoleArn",
    "VpcConfig",
    "EnableNetworkIsolation",
    "ExplainerConfig",
    "ShadowProductionVariants",
)
# Flags on a backend's __dict__ (moto's reset wipes them with everything else).
_REGION_DISABLED = "sm_assets_region_disabled"
_TAGS_DENIED = "sm_assets_list_tags_denied"


def snake(monitor_type: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", monitor_type).lower()


def kebab(monitor_type: str) -> str:
    return snake(monitor_type).replace("_", "-")


class UnrecognizedClient(SagemakerClientError):
    code = "UnrecognizedClientException"


class AccessDenied(SagemakerClientError):
    code = "AccessDeniedException"


# --------------------------------------------------------------------------------------------------
# Job definitions of every monitoring type
# --------------------------------------------------------------------------------------------------


class FakeJobDefinition(BaseModel):
    """One monitoring job definition; ``tags`` is a list so moto's ListTags works on it."""

    def __init__(self, monitor_type: str, account_id: str, region: str, request: dict[str, Any]) -> None:
        self.monitor_type = monitor_type
        self.name: str = request["JobDefinitionName"]
        self.arn = arn_formatter(f"{kebab(monitor_type)}-job-definition", self.name, account_id, region)
        self.request = {k: copy.deepcopy(v) for k, v in request.items() if k not in ("Tags", "JobDefinitionName")}
        self.tags: list[dict[str, str]] = [dict(t) for t in request.get("Tags") or []]
        self.creation_time = utcnow()

    @property
    def job_input(self) -> dict[str, Any]:
        return self.request.get(f"{self.monitor_type}JobInput") or {}

    @property
    def endpoint_name(self) -> str | None:
        return (self.job_input.get("EndpointInput") or {}).get("EndpointName")

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "JobDefinitionArn": self.arn,
            "JobDefinitionName": self.name,
            "CreationTime": self.creation_time,
        }
        members = [f"{self.monitor_type}{m}" for m in _DEFINITION_MEMBERS] + list(_COMMON_MEMBERS)
        out.update({m: copy.deepcopy(self.request[m]) for m in members if self.request.get(m) is not None})
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "MonitoringJobDefinitionName": self.name,
            "MonitoringJobDefinitionArn": self.arn,
            "CreationTime": self.creation_time,
        }
        if self.endpoint_name is not None:  # batch-transform definitions name no endpoint
            out["EndpointName"] = self.endpoint_name
        return out


def job_definitions(backend: SageMakerModelBackend, monitor_type: str) -> dict[str, FakeJobDefinition]:
    # In the backend's __dict__, so moto's reset (which wipes __dict__) clears it with everything else.
    return backend.__dict__.setdefault(f"fake_{snake(monitor_type)}_job_definitions", {})


def _not_found(backend: SageMakerModelBackend, monitor_type: str, name: str) -> ResourceNotFound:
    arn = arn_formatter(f"{kebab(monitor_type)}-job-definition", name, backend.account_id, backend.region_name)
    return ResourceNotFound(message=f"Could not find job definition '{arn}'.")


def _page(items: list[Any], next_token: str | None, max_results: Any) -> tuple[list[Any], str | None]:
    limit = _LIST_PAGE_DEFAULT if max_results is None else int(max_results)
    if not 1 <= limit <= _LIST_PAGE_MAX:
        raise ValidationError(
            message=f"1 validation error detected: Value '{limit}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value less than or equal to {_LIST_PAGE_MAX}"
        )
    start = int(next_token or 0)
    end = start + limit
    return items[start:end], (str(end) if end < len(items) else None)


def _definition_handlers(monitor_type: str) -> dict[str, Callable[[SageMakerResponse], Any]]:
    """Create/Describe/List/Delete{T}JobDefinition(s) response handlers for one monitoring type."""

    def create(self: SageMakerResponse) -> ActionResult:
        backend = self.sagemaker_backend
        members = ["JobDefinitionName", "Tags", *(f"{monitor_type}{m}" for m in _DEFINITION_MEMBERS), *_COMMON_MEMBERS]
        request = {m: self._get_param(m) for m in members if self._get_param(m) is not None}
        store = job_definitions(backend, monitor_type)
        if request["JobDefinitionName"] in store:
            raise ResourceInUseException(message=f"Job definition {request['JobDefinitionName']} already exists.")
        definition = FakeJobDefinition(monitor_type, backend.account_id, backend.region_name, request)
        store[definition.name] = definition
        return ActionResult({"JobDefinitionArn": definition.arn})

    def describe(self: SageMakerResponse) -> ActionResult:
        name = self._get_param("JobDefinitionName")
        definition = job_definitions(self.sagemaker_backend, monitor_type).get(name)
        if definition is None:
            raise _not_found(self.sagemaker_backend, monitor_type, name)
        return ActionResult(definition.describe())

    def list_(self: SageMakerResponse) -> ActionResult:
        items = list(job_definitions(self.sagemaker_backend, monitor_type).values())
        endpoint, contains = self._get_param("EndpointName"), self._get_param("NameContains")
        if endpoint:
            items = [d for d in items if d.endpoint_name == endpoint]
        if contains:
            items = [d for d in items if contains in d.name]
        by_name = self._get_param("SortBy") == "Name"
        items.sort(key=lambda d: d.name if by_name else (d.creation_time, d.name))
        if (self._get_param("SortOrder") or "Descending") == "Descending":
            items.reverse()
        page, token = _page(items, self._get_param("NextToken"), self._get_param("MaxResults"))
        result: dict[str, Any] = {"JobDefinitionSummaries": [d.summary() for d in page]}
        if token:
            result["NextToken"] = token
        return ActionResult(result)

    def delete(self: SageMakerResponse) -> EmptyResult:
        name = self._get_param("JobDefinitionName")
        if job_definitions(self.sagemaker_backend, monitor_type).pop(name, None) is None:
            raise _not_found(self.sagemaker_backend, monitor_type, name)
        return EmptyResult()

    s = snake(monitor_type)
    return {
        f"create_{s}_job_definition": create,
        f"describe_{s}_job_definition": describe,
        f"list_{s}_job_definitions": list_,
        f"delete_{s}_job_definition": delete,
    }


def resource_from_arn(backend: SageMakerModelBackend, arn: str) -> Any | None:
    """The job definition an ARN names in this backend, None if the ARN is of another kind; a missing one
    raises ValidationException, as SageMaker's ListTags does."""
    resource_type, _, name = arn.split(":")[-1].partition("/")
    for monitor_type in MONITOR_TYPES:
        if resource_type == f"{kebab(monitor_type)}-job-definition":
            definition = job_definitions(backend, monitor_type).get(name)
            if definition is None or definition.arn != arn:
                raise ValidationError(message=f"Could not find {resource_type} with name {name}")
            return definition
    return None


# --------------------------------------------------------------------------------------------------
# Endpoints and endpoint configs
# --------------------------------------------------------------------------------------------------


def _resp_create_endpoint_config(original: Callable[[SageMakerResponse], Any]) -> Callable[..., Any]:
    def create_endpoint_config(self: SageMakerResponse) -> Any:
        result = original(self)
        config = self.sagemaker_backend.endpoint_configs[self._get_param("EndpointConfigName")]
        config.sm_assets_extras = {m: self._get_param(m) for m in _CONFIG_EXTRAS if self._get_param(m) is not None}
        return result

    return create_endpoint_config


def _resp_describe_endpoint_config(self: SageMakerResponse) -> ActionResult:
    backend = self.sagemaker_backend
    name = self._get_param("EndpointConfigName")
    out = dict(backend.describe_endpoint_config(name))  # ValidationException when missing, as AWS
    config = backend.endpoint_configs[name]
    out.update(copy.deepcopy(getattr(config, "sm_assets_extras", {})))
    return ActionResult({k: v for k, v in out.items() if v not in (None, {}, [])})


def _capture_summary(endpoint: Any, config: Any) -> dict[str, Any] | None:
    """DataCaptureConfigSummary as DescribeEndpoint reports it (None: the config captures nothing)."""
    capture = (config.data_capture_config if config is not None else None) or {}
    if not capture:
        return None
    enabled = bool(capture.get("EnableCapture", False))
    state = getattr(endpoint, "sm_assets_capture", {})
    out = {
        "EnableCapture": enabled,
        "CaptureStatus": state.get("CaptureStatus", "Started" if enabled else "Stopped"),
        "CurrentSamplingPercentage": state.get(
            "CurrentSamplingPercentage", capture.get("InitialSamplingPercentage", 0)
        ),
        "DestinationS3Uri": capture.get("DestinationS3Uri"),
    }
    if capture.get("KmsKeyId"):
        out["KmsKeyId"] = capture["KmsKeyId"]
    return out


def _resp_describe_endpoint(self: SageMakerResponse) -> ActionResult:
    backend = self.sagemaker_backend
    name = self._get_param("EndpointName")
    out = dict(backend.describe_endpoint(name))  # ValidationException when missing, as AWS
    endpoint = backend.endpoints[name]
    summary = _capture_summary(endpoint, backend.endpoint_configs.get(endpoint.endpoint_config_name))
    out.pop("DataCaptureConfig", None)
    if summary is not None:
        out["DataCaptureConfig"] = summary
    if getattr(endpoint, "failure_reason", None):
        out["FailureReason"] = endpoint.failure_reason
    return ActionResult({k: v for k, v in out.items() if v not in (None, {}, [])})


def set_endpoint_capture(
    account_id: str,
    region: str,
    endpoint_name: str,
    *,
    capture_status: str | None = None,
    sampling_percentage: int | None = None,
) -> None:
    """What DescribeEndpoint reports for an endpoint's capture: ``Stopped`` (e.g. capture turned off, or its
    bucket gone) or a current sampling percentage other than the config's initial one."""
    if capture_status not in (None, "Started", "Stopped"):
        raise ValueError(f"unknown capture status {capture_status!r}; expected Started or Stopped")
    endpoint = sagemaker_backends[account_id][region].endpoints[endpoint_name]
    state = dict(getattr(endpoint, "sm_assets_capture", {}))
    if capture_status is not None:
        state["CaptureStatus"] = capture_status
    if sampling_percentage is not None:
        state["CurrentSamplingPercentage"] = sampling_percentage
    endpoint.sm_assets_capture = state


# --------------------------------------------------------------------------------------------------
# Account-level answers: disabled opt-in regions, ListTags denied
# --------------------------------------------------------------------------------------------------


def disable_region(account_id: str, region: str) -> None:
    """Every SageMaker call of ``account_id`` in ``region`` answers as for an opt-in region not enabled."""
    sagemaker_backends[account_id][region].__dict__[_REGION_DISABLED] = True


def deny_list_tags(account_id: str, regions: Sequence[str]) -> None:
    """ListTags is denied in ``account_id`` (an SCP) in these regions: everything else works."""
    for region in regions:
        sagemaker_backends[account_id][region].__dict__[_TAGS_DENIED] = True


def _fault_for(response: SageMakerResponse) -> SagemakerClientError | None:
    flags = sagemaker_backends[response.current_account][response.region].__dict__
    if flags.get(_REGION_DISABLED):
        return UnrecognizedClient("The security token included in the request is invalid.")
    if flags.get(_TAGS_DENIED) and response._get_action() == "ListTags":
        return AccessDenied(
            f"User: arn:aws:sts::{response.current_account}:assumed-role/SageMakerInventoryReadOnly/sm-assets is not "
            "authorized to perform: sagemaker:ListTags with an explicit deny in a service control policy"
        )
    return None


def _wrap_call_action(original: Callable[[SageMakerResponse], Any]) -> Callable[[SageMakerResponse], Any]:
    def call_action(self: SageMakerResponse) -> Any:
        fault = _fault_for(self)
        if fault is not None:
            return self.serialized(ActionResult(fault))
        return original(self)

    call_action.__wrapped__ = original  # type: ignore[attr-defined]
    return call_action


def install() -> None:
    """Patch moto's SageMaker in this process (called once, by fake_aws.install_moto_extensions)."""
    # These two codes are AWS's framework-level errors, not in SageMaker's model: moto says so, then
    # serializes them exactly as AWS sends them.
    for code in ("AccessDeniedException", "UnrecognizedClientException"):
        warnings.filterwarnings("ignore", message=f".*with code {code} does not match an error shape.*")
    for monitor_type in MONITOR_TYPES:
        for name, handler in _definition_handlers(monitor_type).items():
            setattr(SageMakerResponse, name, handler)
    SageMakerResponse.create_endpoint_config = _resp_create_endpoint_config(  # type: ignore[method-assign]
        SageMakerResponse.create_endpoint_config
    )
    SageMakerResponse.describe_endpoint_config = _resp_describe_endpoint_config  # type: ignore[method-assign]
    SageMakerResponse.describe_endpoint = _resp_describe_endpoint  # type: ignore[method-assign]
    SageMakerResponse.call_action = _wrap_call_action(SageMakerResponse.call_action)  # type: ignore[method-assign]

"""Fake AWS for tests and the demo: moto 5.2.5 plus the few SageMaker/STS behaviours it lacks.

``install_moto_extensions()`` monkeypatches moto's classes in this process. Both ``moto.mock_aws`` and
``moto.server.ThreadedMotoServer`` dispatch to those classes in-process, so one install serves both.
Errors keep the AWS wire format (SageMaker: JSON-protocol ``{"__type": "ResourceNotFound", "Message": ...}``
with HTTP 400, via moto's own serializer; STS: query-protocol XML ``ErrorResponse`` with HTTP 403), so clients
exercise the same error handling they would against AWS.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from moto.core.base_backend import BackendDict
from moto.core.common_models import BaseModel
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemaker.utils import arn_formatter
from moto.sts.responses import TokenResponse
from moto.utilities.paginator import paginate
from werkzeug.exceptions import HTTPException

from sm_assets.core.specs import MONITOR_TYPES
from sm_assets.demo import fake_sagemaker

__all__ = [
    "ENDPOINT_STATUSES",
    "EXECUTION_STATUSES",
    "FakeMonitoringSchedule",
    "MONITORING_TYPES",
    "ORG_ACCESS_ROLE",
    "SCHEDULE_STATUSES",
    "StsAccessDenied",
    "fake_aws_server",
    "install_moto_extensions",
    "set_endpoint_status",
    "set_monitoring_schedule_state",
]

# Enum values from the SageMaker service model (botocore), so helpers reject states AWS cannot report.
SCHEDULE_STATUSES = ("Pending", "Failed", "Scheduled", "Stopped")
EXECUTION_STATUSES = (
    "Pending",
    "Completed",
    "CompletedWithViolations",
    "InProgress",
    "Failed",
    "Stopping",
    "Stopped",
)
ENDPOINT_STATUSES = (
    "OutOfService",
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
    "InService",
    "Deleting",
    "Failed",
    "UpdateRollbackFailed",
)
MONITORING_TYPES = MONITOR_TYPES  # the registry's: DataQuality, ModelQuality, ModelBias, ModelExplainability

# Moto creates this role in accounts made by organizations.CreateAccount (as real Organizations does);
# we allow it unconditionally anyway so the seeder never depends on that moto detail.
ORG_ACCESS_ROLE = "OrganizationAccountAccessRole"

_install_lock = threading.Lock()
_installed = False
_schedule_seq = itertools.count()  # creation-order tie-break, keeps sort (and so pagination) stable

# ListMonitoringSchedules: AWS documents MaxResults 1..100 with a default of 10.
_PAGINATION_MODEL = {
    "list_monitoring_schedules": {
        "input_token": "next_token",
        "limit_key": "max_results",
        "limit_default": 10,
        "unique_attribute": "arn",
    },
}


# --------------------------------------------------------------------------------------------------
# Monitoring schedules
# --------------------------------------------------------------------------------------------------


class FakeMonitoringSchedule(BaseModel):
    """A SageMaker monitoring schedule; ``tags`` is a list so moto's tagging helpers work on it."""

    def __init__(
        self,
        account_id: str,
        region_name: str,
        name: str,
        config: dict[str, Any],
        tags: list[dict[str, str]] | None,
        endpoint_name: str | None,
    ) -> None:
        self.account_id = account_id
        self.region_name = region_name
        self.name = name
        self.arn = arn_formatter("monitoring-schedule", name, account_id, region_name)
        self.config = copy.deepcopy(config)
        # A config without MonitoringType (e.g. the inline MonitoringJobDefinition form) is DataQuality.
        self.monitoring_type: str = config.get("MonitoringType") or "DataQuality"
        self.job_definition_name: str | None = config.get("MonitoringJobDefinitionName")
        self.endpoint_name = endpoint_name
        self.tags: list[dict[str, str]] = [dict(t) for t in tags or []]
        self.status = "Scheduled"
        self.failure_reason: str | None = None
        self.last_execution: dict[str, Any] | None = None
        self.creation_time = self.last_modified_time = utcnow()
        self.seq = next(_schedule_seq)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "MonitoringScheduleArn": self.arn,
            "MonitoringScheduleName": self.name,
            "MonitoringScheduleStatus": self.status,
            "MonitoringType": self.monitoring_type,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "MonitoringScheduleConfig": copy.deepcopy(self.config),
        }
        # Optional members are omitted, not null, exactly as AWS does.
        if self.failure_reason is not None:
            out["FailureReason"] = self.failure_reason
        if self.endpoint_name is not None:
            out["EndpointName"] = self.endpoint_name
        if self.last_execution is not None:
            out["LastMonitoringExecutionSummary"] = dict(self.last_execution)
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "MonitoringScheduleName": self.name,
            "MonitoringScheduleArn": self.arn,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time,
            "MonitoringScheduleStatus": self.status,
            "MonitoringType": self.monitoring_type,
        }
        if self.endpoint_name is not None:
            out["EndpointName"] = self.endpoint_name
        if self.job_definition_name is not None:
            out["MonitoringJobDefinitionName"] = self.job_definition_name
        return out


def _schedules(backend: SageMakerModelBackend) -> dict[str, FakeMonitoringSchedule]:
    # Lives in the backend's __dict__, so moto's reset (which wipes __dict__) clears it with everything else.
    return backend.__dict__.setdefault("monitoring_schedules", {})


def _schedule_not_found(backend: SageMakerModelBackend, name: str) -> ResourceNotFound:
    arn = arn_formatter("monitoring-schedule", name, backend.account_id, backend.region_name)
    return ResourceNotFound(message=f"Could not find monitoring schedule '{arn}'.")


def _schedule_endpoint_name(backend: SageMakerModelBackend, config: dict[str, Any]) -> str | None:
    """The endpoint AWS reports for a schedule: the one its job definition reads from, if any."""
    definition_name = config.get("MonitoringJobDefinitionName")
    if definition_name:
        stored = fake_sagemaker.job_definitions(backend, config.get("MonitoringType") or "DataQuality")
        definition = stored.get(definition_name)
        return definition.endpoint_name if definition is not None else None
    # Legacy inline definition (DataQuality only).
    inputs = (config.get("MonitoringJobDefinition") or {}).get("MonitoringInputs") or []
    for item in inputs:
        name = (item.get("EndpointInput") or {}).get("EndpointName")
        if name:
            return name
    return None


def _backend_create_monitoring_schedule(
    self: SageMakerModelBackend,
    monitoring_schedule_name: str,
    monitoring_schedule_config: dict[str, Any],
    tags: list[dict[str, str]] | None,
) -> FakeMonitoringSchedule:
    store = _schedules(self)
    if monitoring_schedule_name in store:
        raise ResourceInUseException(
            message=f"Monitoring schedule with name {monitoring_schedule_name} already exists."
        )
    monitoring_type = monitoring_schedule_config.get("MonitoringType")
    if monitoring_type is not None and monitoring_type not in MONITORING_TYPES:
        raise ValidationError(
            message=f"Value '{monitoring_type}' at 'monitoringScheduleConfig.monitoringType' failed to "
            f"satisfy constraint: Member must satisfy enum value set: [{', '.join(MONITORING_TYPES)}]"
        )
    schedule = FakeMonitoringSchedule(
        account_id=self.account_id,
        region_name=self.region_name,
        name=monitoring_schedule_name,
        config=monitoring_schedule_config,
        tags=tags,
        endpoint_name=_schedule_endpoint_name(self, monitoring_schedule_config),
    )
    store[monitoring_schedule_name] = schedule
    return schedule


def _backend_describe_monitoring_schedule(
    self: SageMakerModelBackend, monitoring_schedule_name: str
) -> FakeMonitoringSchedule:
    schedule = _schedules(self).get(monitoring_schedule_name)
    if schedule is None:
        raise _schedule_not_found(self, monitoring_schedule_name)
    return schedule


def _backend_delete_monitoring_schedule(self: SageMakerModelBackend, monitoring_schedule_name: str) -> None:
    if _schedules(self).pop(monitoring_schedule_name, None) is None:
        raise _schedule_not_found(self, monitoring_schedule_name)


@paginate(pagination_model=_PAGINATION_MODEL)
def list_monitoring_schedules(  # named for the paginator, which looks its config up by function name
    self: SageMakerModelBackend,
    endpoint_name: str | None = None,
    sort_by: str | None = None,
    sort_order: str | None = None,
    name_contains: str | None = None,
    creation_time_before: datetime | None = None,
    creation_time_after: datetime | None = None,
    last_modified_time_before: datetime | None = None,
    last_modified_time_after: datetime | None = None,
    status_equals: str | None = None,
    monitoring_job_definition_name: str | None = None,
    monitoring_type_equals: str | None = None,
) -> list[FakeMonitoringSchedule]:
    items = list(_schedules(self).values())
    if endpoint_name:
        items = [s for s in items if s.endpoint_name == endpoint_name]
    if name_contains:
        items = [s for s in items if name_contains in s.name]
    if status_equals:
        items = [s for s in items if s.status == status_equals]
    if monitoring_job_definition_name:
        items = [s for s in items if s.job_definition_name == monitoring_job_definition_name]
    if monitoring_type_equals:
        items = [s for s in items if s.monitoring_type == monitoring_type_equals]
    for bound, attr, keep_before in (
        (creation_time_before, "creation_time", True),
        (creation_time_after, "creation_time", False),
        (last_modified_time_before, "last_modified_time", True),
        (last_modified_time_after, "last_modified_time", False),
    ):
        if bound is not None:
            limit = _naive_utc(bound)
            items = [s for s in items if (getattr(s, attr) < limit) == keep_before]
    # AWS defaults: SortBy=CreationTime, SortOrder=Descending. seq breaks ties deterministically.
    keys: dict[str, Callable[[FakeMonitoringSchedule], Any]] = {
        "Name": lambda s: (s.name, s.seq),
        "Status": lambda s: (s.status, s.seq),
        "CreationTime": lambda s: (s.creation_time, s.seq),
    }
    descending = (sort_order or "Descending") == "Descending"
    return sorted(items, key=keys[sort_by or "CreationTime"], reverse=descending)


def _naive_utc(value: datetime) -> datetime:
    # moto stores naive UTC datetimes; request timestamps may arrive timezone-aware.
    if value.tzinfo is not None:
        value = (value - value.utcoffset()).replace(tzinfo=None)  # type: ignore[operator]
    return value


# Response handlers (added to SageMakerResponse; moto dispatches by snake_case action name).


def _resp_create_monitoring_schedule(self: SageMakerResponse) -> ActionResult:
    schedule = self.sagemaker_backend.create_monitoring_schedule(  # type: ignore[attr-defined]
        monitoring_schedule_name=self._get_param("MonitoringScheduleName"),
        monitoring_schedule_config=self._get_param("MonitoringScheduleConfig"),
        tags=self._get_param("Tags"),
    )
    return ActionResult({"MonitoringScheduleArn": schedule.arn})


def _resp_describe_monitoring_schedule(self: SageMakerResponse) -> ActionResult:
    schedule = self.sagemaker_backend.describe_monitoring_schedule(  # type: ignore[attr-defined]
        self._get_param("MonitoringScheduleName")
    )
    return ActionResult(schedule.describe())


def _resp_delete_monitoring_schedule(self: SageMakerResponse) -> ActionResult:
    self.sagemaker_backend.delete_monitoring_schedule(  # type: ignore[attr-defined]
        self._get_param("MonitoringScheduleName")
    )
    return EmptyResult()


def _resp_list_monitoring_schedules(self: SageMakerResponse) -> ActionResult:
    max_results = self._get_param("MaxResults")
    if max_results is not None and not 1 <= int(max_results) <= 100:
        raise ValidationError(
            message=f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy "
            "constraint: Member must have value less than or equal to 100"
        )
    schedules, next_token = self.sagemaker_backend.list_monitoring_schedules(  # type: ignore[attr-defined]
        endpoint_name=self._get_param("EndpointName"),
        sort_by=self._get_param("SortBy"),
        sort_order=self._get_param("SortOrder"),
        name_contains=self._get_param("NameContains"),
        creation_time_before=self._get_param("CreationTimeBefore"),
        creation_time_after=self._get_param("CreationTimeAfter"),
        last_modified_time_before=self._get_param("LastModifiedTimeBefore"),
        last_modified_time_after=self._get_param("LastModifiedTimeAfter"),
        status_equals=self._get_param("StatusEquals"),
        monitoring_job_definition_name=self._get_param("MonitoringJobDefinitionName"),
        monitoring_type_equals=self._get_param("MonitoringTypeEquals"),
        next_token=self._get_param("NextToken"),
        max_results=max_results,
    )
    result: dict[str, Any] = {"MonitoringScheduleSummaries": [s.summary() for s in schedules]}
    if next_token:
        result["NextToken"] = next_token
    return ActionResult(result)


def _wrap_get_resource_from_arn(original: Callable[[SageMakerModelBackend, str], Any]) -> Callable[..., Any]:
    def _get_resource_from_arn(self: SageMakerModelBackend, arn: str) -> Any:
        resource_type, _, name = arn.split(":")[-1].partition("/")
        definition = fake_sagemaker.resource_from_arn(self, arn)
        if definition is not None:
            return definition
        if resource_type != "monitoring-schedule":
            return original(self, arn)
        schedule = _schedules(self).get(name)
        # The name alone is not enough: an ARN from another account/region must not resolve here.
        if schedule is None or schedule.arn != arn:
            raise ValidationError(message=f"Could not find monitoring-schedule with name {name}")
        return schedule

    _get_resource_from_arn.__wrapped__ = original  # type: ignore[attr-defined]
    return _get_resource_from_arn


# --------------------------------------------------------------------------------------------------
# STS AssumeRole
# --------------------------------------------------------------------------------------------------

_ROLE_ARN = re.compile(r"^arn:(?P<partition>aws[\w-]*):iam::(?P<account>\d{12}):role/(?:[^/]+/)*(?P<name>[^/]+)$")


class StsAccessDenied(HTTPException):
    """STS's query-protocol error document, HTTP 403, as AWS sends it for a refused AssumeRole."""

    code = 403

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message
        self.description = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [("Content-Type", "text/xml"), ("X-Amzn-ErrorType", "AccessDenied")]

    def get_body(self, *args: Any, **kwargs: Any) -> str:
        return self.description or ""


def _caller_arn(response: TokenResponse) -> str:
    _, arn, _ = response.backend.get_caller_identity(response.get_access_key(), response.region)
    # moto's fallback identity is "arn:aws:sts::<acct>:user/moto"; an IAM user's ARN lives in iam.
    return re.sub(r"^arn:([^:]+):sts::(\d+):user/", r"arn:\1:iam::\2:user/", arn)


def _role_exists(role_arn: str) -> bool:
    match = _ROLE_ARN.match(role_arn)
    if match is None:
        return True  # malformed ARNs: leave validation to moto
    if match["name"] == ORG_ACCESS_ROLE:
        return True
    try:
        iam_backends[match["account"]][match["partition"]].get_role_by_arn(role_arn)
    except NotFoundException:
        return False
    return True


def _wrap_assume_role(original: Callable[[TokenResponse], ActionResult]) -> Callable[[TokenResponse], Any]:
    def assume_role(self: TokenResponse) -> ActionResult:
        role_arn = self._get_param("RoleArn") or ""
        if not _role_exists(role_arn):
            raise StsAccessDenied(
                f"User: {_caller_arn(self)} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            )
        return original(self)

    assume_role.__wrapped__ = original  # type: ignore[attr-defined]
    return assume_role


# --------------------------------------------------------------------------------------------------
# Install
# --------------------------------------------------------------------------------------------------


def install_moto_extensions() -> None:
    """Patch moto in this process (idempotent; safe to call from every test and entry point)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        backend = SageMakerModelBackend
        backend.create_monitoring_schedule = _backend_create_monitoring_schedule  # type: ignore[attr-defined]
        backend.describe_monitoring_schedule = _backend_describe_monitoring_schedule  # type: ignore[attr-defined]
        backend.delete_monitoring_schedule = _backend_delete_monitoring_schedule  # type: ignore[attr-defined]
        backend.list_monitoring_schedules = list_monitoring_schedules  # type: ignore[attr-defined]
        backend._get_resource_from_arn = _wrap_get_resource_from_arn(  # type: ignore[method-assign]
            backend._get_resource_from_arn
        )

        SageMakerResponse.create_monitoring_schedule = _resp_create_monitoring_schedule  # type: ignore[attr-defined]
        SageMakerResponse.describe_monitoring_schedule = (  # type: ignore[attr-defined]
            _resp_describe_monitoring_schedule
        )
        SageMakerResponse.delete_monitoring_schedule = _resp_delete_monitoring_schedule  # type: ignore[attr-defined]
        SageMakerResponse.list_monitoring_schedules = _resp_list_monitoring_schedules  # type: ignore[attr-defined]

        fake_sagemaker.install()

        TokenResponse.assume_role = _wrap_assume_role(TokenResponse.assume_role)  # type: ignore[method-assign]
        _installed = True


# --------------------------------------------------------------------------------------------------
# Direct state helpers (AWS changes these states asynchronously; there is no API to set them)
# --------------------------------------------------------------------------------------------------


def _backend(account_id: str, region: str) -> SageMakerModelBackend:
    return sagemaker_backends[account_id][region]


def set_endpoint_status(
    account_id: str, region: str, endpoint_name: str, status: str, *, failure_reason: str | None = None
) -> None:
    """Put an existing endpoint into ``status`` (InService, Creating, Failed, OutOfService, Updating, ...)."""
    if status not in ENDPOINT_STATUSES:
        raise ValueError(f"unknown endpoint status {status!r}; expected one of {ENDPOINT_STATUSES}")
    endpoint = _backend(account_id, region).endpoints.get(endpoint_name)
    if endpoint is None:
        raise LookupError(f"no endpoint {endpoint_name!r} in {account_id}/{region}")
    endpoint.endpoint_status = status
    if status == "Failed":
        endpoint.failure_reason = failure_reason or "Failed to provision the requested ML compute capacity."
    else:
        endpoint.failure_reason = failure_reason
    endpoint.last_modified_time = utcnow()


def set_monitoring_schedule_state(
    account_id: str,
    region: str,
    name: str,
    *,
    status: str | None = None,
    last_execution_status: str | None = None,
    failure_reason: str | None = None,
    scheduled_ago: timedelta = timedelta(0),
) -> datetime | None:
    """Set a schedule's status and/or its last execution, as if executions had run; returns the last
    execution's ScheduledTime (UTC, naive as moto keeps it), None if none was set.

    The execution was scheduled at the top of the hour ``scheduled_ago`` before now. ``failure_reason`` goes
    to the schedule when ``status == "Failed"`` and to the execution summary when ``last_execution_status ==
    "Failed"``; a Failed state without a reason gets a realistic default.
    """
    install_moto_extensions()
    backend = _backend(account_id, region)
    schedule = backend.describe_monitoring_schedule(name)  # type: ignore[attr-defined]
    now = utcnow()
    if status is not None:
        if status not in SCHEDULE_STATUSES:
            raise ValueError(f"unknown schedule status {status!r}; expected one of {SCHEDULE_STATUSES}")
        schedule.status = status
        schedule.failure_reason = (
            (failure_reason or "Job definition or endpoint configuration is invalid.") if status == "Failed" else None
        )
    if last_execution_status is not None:
        if last_execution_status not in EXECUTION_STATUSES:
            raise ValueError(
                f"unknown execution status {last_execution_status!r}; expected one of {EXECUTION_STATUSES}"
            )
        scheduled = (now - scheduled_ago).replace(minute=0, second=0, microsecond=0)
        started = scheduled + timedelta(minutes=2)
        digest = hashlib.sha1(f"{schedule.arn}@{scheduled.isoformat()}".encode()).hexdigest()[:24]
        job_name = f"model-monitoring-{scheduled:%Y%m%d%H%M}-{digest}"
        summary: dict[str, Any] = {
            "MonitoringScheduleName": schedule.name,
            "ScheduledTime": scheduled,
            "CreationTime": started,
            "LastModifiedTime": max(now, started),
            "MonitoringExecutionStatus": last_execution_status,
            "ProcessingJobArn": arn_formatter("processing-job", job_name, account_id, region),
            "MonitoringType": schedule.monitoring_type,
        }
        if schedule.endpoint_name is not None:
            summary["EndpointName"] = schedule.endpoint_name
        if schedule.job_definition_name is not None:
            summary["MonitoringJobDefinitionName"] = schedule.job_definition_name
        if last_execution_status == "Failed":
            summary["FailureReason"] = failure_reason or "AlgorithmError: Error: Ground truth data not found."
        schedule.last_execution = summary
    schedule.last_modified_time = now
    return None if schedule.last_execution is None else schedule.last_execution["ScheduledTime"]


# --------------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def fake_aws_server(*, reset: bool = True) -> Iterator[str]:
    """Run moto (with the extensions) on 127.0.0.1 and yield its URL, e.g. for ``AWS_ENDPOINT_URL``.

    The server shares this process's moto backends. With ``reset`` (the default) they are emptied on entry
    and on exit, so every server starts as a fresh fake AWS and leaves nothing behind.
    """
    from moto.server import ThreadedMotoServer  # flask/werkzeug import is slow; only pay for it here

    install_moto_extensions()
    # werkzeug logs every request at INFO to stderr; the demo's output should be the tool's, not the fake's.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if reset:
        BackendDict.reset()
    # Port 0: the OS picks a free port at bind time, so there is no probe-then-bind race.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        wsgi = getattr(server, "_server", None)
        if wsgi is not None:
            wsgi.server_close()  # stop() only shuts the loop down; release the listening socket too
        if reset:
            BackendDict.reset()

"""A lightweight fake AWS for benchmarks: the real wire protocols botocore speaks, nothing more.

Speaks, on 127.0.0.1 only:

* STS, query protocol (form POST, XML answers): ``AssumeRole`` and ``GetCallerIdentity``. The AccessKeyId
  handed out encodes the target account (``ASIA`` + 12-digit account id + ``BNCH``), so every later SigV4
  request names its account in ``Authorization: ... Credential=<AKID>/<date>/<region>/<service>/aws4_request``.
  Any other access key (e.g. ``testing``) is the organization's management account.
* Organizations, JSON 1.1 (``X-Amz-Target: AWSOrganizationsV20161128.ListAccounts``), paginated.
* SageMaker, JSON 1.1 (``X-Amz-Target: SageMaker.<Op>``): ListModelQualityJobDefinitions,
  DescribeModelQualityJobDefinition, ListEndpoints, ListMonitoringSchedules, DescribeMonitoringSchedule,
  ListTags. Timestamps are epoch seconds (numbers), lists page with NextToken/MaxResults and default to
  AWS's page sizes (10; ListTags 50), errors are ``{"__type": ..., "Message": ...}`` with HTTP 400.

Every API call sleeps ``latency_s`` (a sleep, not CPU). SageMaker calls are throttled per (account, region)
with a token bucket (``rate`` calls/s, ``burst`` tokens): an empty bucket answers HTTP 400
``{"__type": "ThrottlingException", "message": "Rate exceeded"}``. STS and Organizations are never throttled.
Counters: total calls, throttled calls, per operation, per (account, region), and per account the first and
last call time (for "API span" accounting).

Control endpoints (never used by botocore, which always POSTs to ``/``): ``GET /__bench/stats``,
``GET /__bench/fleet``, ``POST /__bench/reset`` (counters and buckets), ``POST /__bench/config``
(JSON ``{"latency_s": .., "rate": .., "burst": ..}``; rate 0 or null = no throttling).

In-process: ``url = BenchServer(generate_fleet(...), latency_s, rate, burst).start()`` ... ``.stop()``.
Standalone: ``python -m benchmarks.fake_aws_bench --accounts 50 --max-definitions 12`` prints ``URL <url>``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import random
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

# The same vocabulary as the demo org, so benchmark payloads look like the demo's.
from sm_assets.demo.seed import (
    _MONITOR_REGISTRY,
    _PROBLEM_TYPES,
    _PURPOSES,
    _TEAMS,
    endpoint_input,
    monitoring_output,
)

DEFAULT_REGIONS: tuple[str, ...] = ("us-east-1", "us-west-2", "eu-west-1")
DEFAULT_ROLE_NAME = "SageMakerInventoryReadOnly"
DEFAULT_LATENCY_S = 0.025
DEFAULT_RATE = 8.0

# AWS page sizes: SageMaker List* default 10 (max 100); ListTags default 50 (max 100); ListAccounts max 20.
LIST_PAGE_DEFAULT = 10
LIST_PAGE_MAX = 100
TAGS_PAGE_DEFAULT = 50
TAGS_PAGE_MAX = 100
ORG_PAGE_MAX = 20

ORG_ID = "o-bench00001"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
AKID_SUFFIX = "BNCH"
EXECUTION_ROLE = "SageMakerModelMonitorExecutionRole"

_INSTANCE_TYPES = ("ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge", "ml.m5.2xlarge")
_ENDPOINT_STATUSES = ("InService",) * 7 + ("Creating", "Failed", "OutOfService", "Updating")
_SCHEDULE_STATUSES = ("Scheduled",) * 6 + ("Stopped", "Failed", "Pending")
_EXECUTION_STATUSES = (None, "Completed", "Completed", "Completed", "CompletedWithViolations", "Failed")
_TAG_POOL: tuple[tuple[str, Callable[[random.Random], str]], ...] = (
    ("team", lambda r: r.choice(_TEAMS)),
    ("env", lambda r: r.choice(("prod", "staging", "dev"))),
    ("cost-center", lambda r: f"cc-{r.randint(1000, 9999)}"),
    ("owner", lambda r: f"{r.choice(_TEAMS)}-oncall@example.com"),
    ("project", lambda r: r.choice(_PURPOSES)),
    ("data-classification", lambda r: r.choice(("internal", "confidential", "public"))),
    ("model-version", lambda r: f"v{r.randint(1, 30)}"),
    ("managed-by", lambda r: r.choice(("terraform", "cdk", "console"))),
    ("compliance", lambda r: r.choice(("sox", "pci", "none"))),
    ("created-by", lambda r: f"user{r.randint(1, 500)}"),
)
_EPOCH_2024 = 1_704_067_200.0


# --------------------------------------------------------------------------------------------------
# Fleet
# --------------------------------------------------------------------------------------------------


@dataclass
class FakeResource:
    kind: str  # definition | endpoint | schedule
    name: str
    arn: str
    created: float  # epoch seconds (ms precision), what the wire carries
    summary: dict[str, Any]  # the List* entry
    describe: dict[str, Any] | None  # the Describe* answer (None for endpoints: not described)
    tags: list[dict[str, str]]
    monitoring_type: str | None = None  # schedules only
    status: str | None = None
    endpoint_name: str | None = None
    job_definition_name: str | None = None


@dataclass
class RegionFleet:
    account_id: str
    region: str
    definitions: list[FakeResource] = field(default_factory=list)  # ModelQuality job definitions
    endpoints: list[FakeResource] = field(default_factory=list)
    schedules: list[FakeResource] = field(default_factory=list)  # every monitoring type

    def __post_init__(self) -> None:
        self.index()

    def index(self) -> None:
        # AWS's default order for all three lists: CreationTime, descending.
        for items in (self.definitions, self.endpoints, self.schedules):
            items.sort(key=lambda r: (r.created, r.name), reverse=True)
        self.definitions_by_name = {d.name: d for d in self.definitions}
        self.schedules_by_name = {s.name: s for s in self.schedules}

    @property
    def model_quality_schedules(self) -> list[FakeResource]:
        return [s for s in self.schedules if s.monitoring_type == "ModelQuality"]

    def min_sagemaker_calls(self) -> int:
        """Calls a full collection needs here at AWS's default page sizes (what collect_account sends)."""
        defs, eps, mqs = self.definitions, self.endpoints, self.model_quality_schedules
        calls = _pages(len(defs), LIST_PAGE_DEFAULT) + _pages(len(eps), LIST_PAGE_DEFAULT)
        calls += _pages(len(mqs), LIST_PAGE_DEFAULT)
        for res in (*defs, *mqs):
            calls += 1 + _pages(len(res.tags), TAGS_PAGE_DEFAULT)
        return calls


def _pages(n: int, page: int) -> int:
    return max(1, -(-n // page))


@dataclass
class Fleet:
    accounts: list[str]  # ACTIVE accounts; the first is the management account
    account_names: dict[str, str]
    regions: tuple[str, ...]
    role_name: str
    seed: int
    max_definitions: int
    resources: dict[tuple[str, str], RegionFleet]

    def __post_init__(self) -> None:
        self.account_set = frozenset(self.accounts)
        self.by_arn: dict[str, FakeResource] = {}
        for rf in self.resources.values():
            for res in (*rf.definitions, *rf.endpoints, *rf.schedules):
                self.by_arn[res.arn] = res

    @property
    def management_account_id(self) -> str:
        return self.accounts[0]

    def region(self, account_id: str, region: str) -> RegionFleet | None:
        return self.resources.get((account_id, region))

    def totals(self) -> dict[str, int]:
        rfs = self.resources.values()
        return {
            "accounts": len(self.accounts),
            "regions": len(self.regions),
            "definitions": sum(len(r.definitions) for r in rfs),
            "endpoints": sum(len(r.endpoints) for r in rfs),
            "model_quality_schedules": sum(len(r.model_quality_schedules) for r in rfs),
            "other_schedules": sum(len(r.schedules) - len(r.model_quality_schedules) for r in rfs),
            "tags": sum(len(res.tags) for res in self.by_arn.values()),
        }

    def expected_calls(self) -> dict[str, Any]:
        """Minimum calls for one full collection: Organizations pages, one AssumeRole per account, and the
        SageMaker calls of every (account, region) bucket at default page sizes."""
        buckets = {f"{a}/{r}": rf.min_sagemaker_calls() for (a, r), rf in self.resources.items()}
        org = _pages(len(self.accounts), ORG_PAGE_MAX)
        sagemaker = sum(buckets.values())
        return {
            "organizations": org,
            "sts": len(self.accounts),
            "sagemaker": sagemaker,
            "total": org + len(self.accounts) + sagemaker,
            "by_bucket": buckets,
        }

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for arn in sorted(self.by_arn):
            digest.update(arn.encode())
            digest.update(json.dumps(self.by_arn[arn].tags, sort_keys=True).encode())
        return digest.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        calls = self.expected_calls()
        return {
            **self.totals(),
            "seed": self.seed,
            "max_definitions": self.max_definitions,
            "role_name": self.role_name,
            "fingerprint": self.fingerprint(),
            "expected_calls": {k: v for k, v in calls.items() if k != "by_bucket"},
            "busiest_bucket_calls": max(calls["by_bucket"].values(), default=0),
        }


def _arn(region: str, account: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name}"


def _ts(rng: random.Random, start: float = _EPOCH_2024, span_days: float = 500) -> float:
    return round(start + rng.uniform(0, span_days * 86400), 3)


def _tags(rng: random.Random, k: int) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value(rng)} for key, value in rng.sample(_TAG_POOL, k)]


def _image(region: str) -> str:
    registry = _MONITOR_REGISTRY.get(region, _MONITOR_REGISTRY["us-east-1"])
    return f"{registry}.dkr.ecr.{region}.amazonaws.com/sagemaker-model-monitor-analyzer"


def _definition_payload(
    rng: random.Random, account: str, region: str, name: str, arn: str, created: float, endpoint_name: str
) -> dict[str, Any]:
    bucket = f"s3://sagemaker-{region}-{account}"
    problem = rng.choice(_PROBLEM_TYPES)
    kms = f"arn:aws:kms:{region}:{account}:key/{rng.getrandbits(128):032x}"
    output = monitoring_output(bucket, name)
    if rng.random() < 0.4:
        output["KmsKeyId"] = kms
    cluster: dict[str, Any] = {
        "InstanceCount": rng.choice((1, 1, 1, 2, 3)),
        "InstanceType": rng.choice(_INSTANCE_TYPES),
        "VolumeSizeInGB": rng.choice((20, 30, 50, 100)),
    }
    if rng.random() < 0.4:
        cluster["VolumeKmsKeyId"] = kms
    body: dict[str, Any] = {
        "JobDefinitionArn": arn,
        "JobDefinitionName": name,
        "CreationTime": created,
        "ModelQualityAppSpecification": {"ImageUri": _image(region), "ProblemType": problem},
        "ModelQualityJobInput": {
            "EndpointInput": endpoint_input(endpoint_name, probability=problem == "BinaryClassification"),
            "GroundTruthS3Input": {"S3Uri": f"{bucket}/ground-truth/{name}"},
        },
        "ModelQualityJobOutputConfig": output,
        "JobResources": {"ClusterConfig": cluster},
        "RoleArn": f"arn:aws:iam::{account}:role/{EXECUTION_ROLE}",
    }
    if rng.random() < 0.7:
        body["ModelQualityBaselineConfig"] = {
            "BaseliningJobName": f"{name}-baseline",
            "ConstraintsResource": {"S3Uri": f"{bucket}/baselines/{name}/constraints.json"},
        }
    if rng.random() < 0.6:
        net: dict[str, Any] = {
            "EnableInterContainerTrafficEncryption": rng.random() < 0.6,
            "EnableNetworkIsolation": rng.random() < 0.5,
        }
        if rng.random() < 0.5:
            net["VpcConfig"] = {
                "SecurityGroupIds": [f"sg-{rng.getrandbits(68):017x}"],
                "Subnets": [f"subnet-{rng.getrandbits(68):017x}" for _ in range(rng.randint(1, 3))],
            }
        body["NetworkConfig"] = net
    if rng.random() < 0.5:
        body["StoppingCondition"] = {"MaxRuntimeInSeconds": rng.choice((1800, 3600))}
    return body


def _region_fleet(seed: int, account: str, region: str, n_defs: int, schedule_ratio: float) -> RegionFleet:
    # One generator per (account, region): adding accounts or regions never changes the existing ones.
    rng = random.Random(f"{seed}/{account}/{region}")
    rf = RegionFleet(account, region)
    purposes = [_PURPOSES[i % len(_PURPOSES)] for i in range(n_defs)]
    endpoint_names = [f"{p}-{i:02d}-ep" for i, p in enumerate(purposes)]
    endpoint_names += [f"adhoc-{i:02d}-ep" for i in range(rng.randint(0, 3))]  # nobody monitors these
    for name in endpoint_names:
        created = _ts(rng)
        arn = _arn(region, account, "endpoint", name)
        status = rng.choice(_ENDPOINT_STATUSES)
        summary = {
            "EndpointName": name,
            "EndpointArn": arn,
            "CreationTime": created,
            "LastModifiedTime": round(created + rng.uniform(0, 86400 * 30), 3),
            "EndpointStatus": status,
        }
        rf.endpoints.append(FakeResource("endpoint", name, arn, created, summary, None, [], status=status))
    for i, purpose in enumerate(purposes):
        name = f"mq-{purpose}-{i:02d}"
        arn = _arn(region, account, "model-quality-job-definition", name)
        created = _ts(rng)
        # About one definition in ten outlives its endpoint (deleted or renamed).
        endpoint = endpoint_names[i] if rng.random() < 0.9 else f"{purpose}-{i:02d}-retired"
        describe = _definition_payload(rng, account, region, name, arn, created, endpoint)
        summary = {
            "MonitoringJobDefinitionName": name,
            "MonitoringJobDefinitionArn": arn,
            "CreationTime": created,
            "EndpointName": endpoint,
        }
        tags = _tags(rng, rng.randint(0, 10))
        rf.definitions.append(
            FakeResource("definition", name, arn, created, summary, describe, tags, endpoint_name=endpoint)
        )
        if rng.random() < schedule_ratio:
            rf.schedules.append(_schedule(rng, account, region, name, endpoint, created, "ModelQuality"))
    if endpoint_names and rng.random() < 0.2:  # a DataQuality schedule the ModelQuality filter must drop
        rf.schedules.append(
            _schedule(rng, account, region, f"dq-{endpoint_names[0]}", endpoint_names[0], _ts(rng), "DataQuality")
        )
    rf.index()
    return rf


def _schedule(
    rng: random.Random,
    account: str,
    region: str,
    definition: str,
    endpoint: str,
    after: float,
    monitoring_type: str,
) -> FakeResource:
    hourly = rng.random() < 0.7
    name = f"{definition}-{'hourly' if hourly else 'daily'}"
    arn = _arn(region, account, "monitoring-schedule", name)
    created = round(after + rng.uniform(60, 86400 * 7), 3)
    modified = round(created + rng.uniform(0, 86400 * 60), 3)
    status = rng.choice(_SCHEDULE_STATUSES)
    config = {
        "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)" if hourly else "cron(0 0 ? * * *)"},
        "MonitoringJobDefinitionName": definition,
        "MonitoringType": monitoring_type,
    }
    describe: dict[str, Any] = {
        "MonitoringScheduleArn": arn,
        "MonitoringScheduleName": name,
        "MonitoringScheduleStatus": status,
        "MonitoringType": monitoring_type,
        "CreationTime": created,
        "LastModifiedTime": modified,
        "MonitoringScheduleConfig": config,
        "EndpointName": endpoint,
    }
    if status == "Failed":
        describe["FailureReason"] = "Job definition or endpoint configuration is invalid."
    execution = rng.choice(_EXECUTION_STATUSES)
    if execution is not None:
        scheduled = float(int(modified // 3600 * 3600))
        job = f"model-monitoring-{rng.getrandbits(96):024x}"
        last: dict[str, Any] = {
            "MonitoringScheduleName": name,
            "ScheduledTime": scheduled,
            "CreationTime": scheduled + 120,
            "LastModifiedTime": scheduled + 900,
            "MonitoringExecutionStatus": execution,
            "ProcessingJobArn": _arn(region, account, "processing-job", job),
            "EndpointName": endpoint,
            "MonitoringJobDefinitionName": definition,
            "MonitoringType": monitoring_type,
        }
        if execution == "Failed":
            last["FailureReason"] = "AlgorithmError: Error: Ground truth data not found."
        describe["LastMonitoringExecutionSummary"] = last
    summary = {
        "MonitoringScheduleName": name,
        "MonitoringScheduleArn": arn,
        "CreationTime": created,
        "LastModifiedTime": modified,
        "MonitoringScheduleStatus": status,
        "MonitoringType": monitoring_type,
        "EndpointName": endpoint,
        "MonitoringJobDefinitionName": definition,
    }
    tags = _tags(rng, rng.randint(0, 10))
    return FakeResource(
        "schedule",
        name,
        arn,
        created,
        summary,
        describe,
        tags,
        monitoring_type=monitoring_type,
        status=status,
        endpoint_name=endpoint,
        job_definition_name=definition,
    )


def generate_fleet(
    accounts: int = 50,
    regions: Sequence[str] = DEFAULT_REGIONS,
    max_definitions: int = 12,
    *,
    seed: int = 1,
    min_definitions: int = 0,
    schedule_ratio: float = 0.6,
    role_name: str = DEFAULT_ROLE_NAME,
) -> Fleet:
    """A deterministic org: ``accounts`` ACTIVE accounts x ``regions``, each with ``min..max`` definitions,
    an endpoint per definition (+0-3 unmonitored ones), ModelQuality schedules for ~``schedule_ratio`` of the
    definitions and now and then a DataQuality schedule. Same arguments, same fleet."""
    if accounts < 1:
        raise ValueError("need at least one account")
    if not 0 <= min_definitions <= max_definitions:
        raise ValueError("need 0 <= min_definitions <= max_definitions")
    rng = random.Random(seed)
    ids = [f"{n:012d}" for n in rng.sample(range(10**11, 10**12), accounts)]
    names = {a: ("management" if i == 0 else f"ml-{i:04d}") for i, a in enumerate(ids)}
    resources: dict[tuple[str, str], RegionFleet] = {}
    for account in ids:
        for region in regions:
            n = random.Random(f"{seed}/{account}/{region}/n").randint(min_definitions, max_definitions)
            resources[(account, region)] = _region_fleet(seed, account, region, n, schedule_ratio)
    return Fleet(ids, names, tuple(regions), role_name, seed, max_definitions, resources)


# --------------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------------

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/(?:[^/]+/)*([^/]+)$")


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _encode_token(op: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"op": op, "offset": offset}).encode()).decode()


def _decode_token(op: str, token: str | None) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        if data["op"] != op:
            raise ValueError(op)
        return int(data["offset"])
    except (ValueError, KeyError, TypeError):
        raise ApiError("ValidationException", "Invalid pagination token.") from None


def _page(op: str, items: list[Any], params: dict[str, Any], default: int, maximum: int) -> tuple[list[Any], Any]:
    size = params.get("MaxResults", default)
    if not isinstance(size, int) or not 1 <= size <= maximum:
        raise ApiError(
            "ValidationException",
            f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value less than or equal to {maximum}",
        )
    start = _decode_token(op, params.get("NextToken"))
    end = start + size
    return items[start:end], (_encode_token(op, end) if end < len(items) else None)


def _list(op: str, items: list[Any], params: dict[str, Any], result_key: str, equals: dict[str, str]) -> dict[str, Any]:
    """A SageMaker List* answer: sorted, filtered (`equals`: request parameter -> attribute, and
    NameContains), one page of summaries."""
    items = _sorted(items, params)
    for param, attr in equals.items():
        if params.get(param):
            items = [r for r in items if getattr(r, attr) == params[param]]
    if params.get("NameContains"):
        items = [r for r in items if params["NameContains"] in r.name]
    page, token = _page(op, items, params, LIST_PAGE_DEFAULT, LIST_PAGE_MAX)
    return _with_token({result_key: [r.summary for r in page]}, token)


def _sorted(items: list[FakeResource], params: dict[str, Any]) -> list[FakeResource]:
    # Stored lists are CreationTime-descending (AWS's default); other orders are computed on demand.
    sort_by, order = params.get("SortBy") or "CreationTime", params.get("SortOrder") or "Descending"
    if sort_by == "CreationTime" and order == "Descending":
        return items
    if sort_by == "Name":
        key: Callable[[FakeResource], Any] = lambda r: r.name  # noqa: E731
    elif sort_by == "Status":
        key = lambda r: (r.status or "", r.name)  # noqa: E731
    else:
        key = lambda r: (r.created, r.name)  # noqa: E731
    return sorted(items, key=key, reverse=order == "Descending")


class BenchServer:
    """The fake AWS. ``rate`` None or <= 0 disables throttling; ``burst`` defaults to ``rate``."""

    def __init__(
        self,
        fleet: Fleet,
        latency_s: float = DEFAULT_LATENCY_S,
        rate: float | None = DEFAULT_RATE,
        burst: float | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the bench server only listens on 127.0.0.1")
        self.fleet = fleet
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._request_ids = itertools.count(1)
        self.configure(latency_s=latency_s, rate=rate, burst=burst)
        self.reset_stats()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> str:
        handler = type("BoundHandler", (_Handler,), {"bench": self})
        httpd = ThreadingHTTPServer((self.host, self.port), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> BenchServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- knobs and counters ------------------------------------------------------------------------

    def configure(
        self, *, latency_s: float | None = None, rate: float | None | str = "keep", burst: float | None | str = "keep"
    ) -> None:
        """Change latency/throttling on the fly (``"keep"`` leaves a knob as is). Buckets restart full."""
        with self._lock:
            if latency_s is not None:
                self.latency_s = max(0.0, float(latency_s))
            if rate != "keep":
                self.rate = float(rate) if rate and float(rate) > 0 else None
                if burst == "keep":
                    burst = None
            if burst != "keep":
                self.burst = float(burst) if burst else (self.rate or 0.0)
            self._buckets: dict[tuple[str, str], list[float]] = {}

    def reset_stats(self) -> None:
        with self._lock:
            self.calls = 0
            self.throttled = 0
            self.by_operation: dict[str, list[int]] = {}
            self.by_bucket: dict[str, list[float]] = {}  # [calls, throttled, first, last]
            self.by_account: dict[str, list[float]] = {}
            self._buckets = {}
            self._cpu_mark = time.process_time()
            self._wall_mark = time.time()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": self.calls,
                "throttled": self.throttled,
                "by_operation": {k: {"calls": v[0], "throttled": v[1]} for k, v in sorted(self.by_operation.items())},
                "by_bucket": {
                    k: {"calls": int(v[0]), "throttled": int(v[1]), "first": v[2], "last": v[3]}
                    for k, v in sorted(self.by_bucket.items())
                },
                "by_account": {
                    k: {"first": v[0], "last": v[1], "calls": int(v[2])} for k, v in sorted(self.by_account.items())
                },
                "server_cpu_s": round(time.process_time() - self._cpu_mark, 4),
                "since_s": round(time.time() - self._wall_mark, 3),
                "latency_s": self.latency_s,
                "rate": self.rate,
                "burst": self.burst,
            }

    def _admit(self, operation: str, account: str, region: str | None, throttle: bool) -> bool:
        """Count one call; True when the (account, region) bucket lets it through."""
        now = time.monotonic()
        ok = True
        with self._lock:
            if throttle and self.rate is not None and region is not None:
                bucket = self._buckets.get((account, region))
                if bucket is None:
                    bucket = self._buckets[(account, region)] = [self.burst, now]
                bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
                bucket[1] = now
                if bucket[0] >= 1.0:
                    bucket[0] -= 1.0
                else:
                    ok = False
            self.calls += 1
            op = self.by_operation.setdefault(operation, [0, 0])
            op[0] += 1
            wall = time.time()
            if region is not None and throttle:
                b = self.by_bucket.setdefault(f"{account}/{region}", [0, 0, wall, wall])
                b[0] += 1
                b[3] = wall
                if not ok:
                    b[1] += 1
            if not ok:
                self.throttled += 1
                op[1] += 1
            acct = self.by_account.get(account)
            if acct is None:
                self.by_account[account] = [wall, wall, 1]
            else:
                acct[1] = wall
                acct[2] += 1
        return ok

    def request_id(self) -> str:
        return f"bench-{next(self._request_ids):012d}"

    def account_of(self, access_key: str | None) -> str:
        if access_key and access_key.startswith("ASIA") and access_key.endswith(AKID_SUFFIX):
            account = access_key[4:16]
            if account in self.fleet.account_set:
                return account
        return self.fleet.management_account_id

    # -- SageMaker ---------------------------------------------------------------------------------

    def sagemaker(self, op: str, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        rf = self.fleet.region(account, region) or RegionFleet(account, region)
        if op == "ListModelQualityJobDefinitions":
            return _list(op, rf.definitions, params, "JobDefinitionSummaries", {"EndpointName": "endpoint_name"})
        if op == "DescribeModelQualityJobDefinition":
            name = params.get("JobDefinitionName", "")
            definition = rf.definitions_by_name.get(name)
            if definition is None:
                raise ApiError(
                    "ResourceNotFound",
                    f"Could not find model quality job definition "
                    f"'{_arn(region, account, 'model-quality-job-definition', name)}'.",
                )
            return definition.describe or {}
        if op == "ListEndpoints":
            return _list(op, rf.endpoints, params, "Endpoints", {"StatusEquals": "status"})
        if op == "ListMonitoringSchedules":
            equals = {
                "MonitoringTypeEquals": "monitoring_type",
                "EndpointName": "endpoint_name",
                "StatusEquals": "status",
                "MonitoringJobDefinitionName": "job_definition_name",
            }
            return _list(op, rf.schedules, params, "MonitoringScheduleSummaries", equals)
        if op == "DescribeMonitoringSchedule":
            name = params.get("MonitoringScheduleName", "")
            schedule = rf.schedules_by_name.get(name)
            if schedule is None:
                raise ApiError(
                    "ResourceNotFound",
                    f"Could not find monitoring schedule '{_arn(region, account, 'monitoring-schedule', name)}'.",
                )
            return schedule.describe or {}
        if op == "ListTags":
            arn = params.get("ResourceArn", "")
            resource = self.fleet.by_arn.get(arn)
            # An ARN of another account or region does not resolve with these credentials.
            if resource is None or arn.split(":")[3:5] != [region, account]:
                raise ApiError("ValidationException", f"Could not find resource {arn}")
            page, token = _page(op, resource.tags, params, TAGS_PAGE_DEFAULT, TAGS_PAGE_MAX)
            return _with_token({"Tags": page}, token)
        raise ApiError("UnknownOperationException", f"Operation {op} is not supported by the bench server.")

    # -- Organizations -----------------------------------------------------------------------------

    def organizations(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        if op != "ListAccounts":
            raise ApiError("UnknownOperationException", f"Operation {op} is not supported by the bench server.")
        mgmt = self.fleet.management_account_id
        accounts = [
            {
                "Id": a,
                "Arn": f"arn:aws:organizations::{mgmt}:account/{ORG_ID}/{a}",
                "Email": f"aws+{self.fleet.account_names[a]}@example.com",
                "Name": self.fleet.account_names[a],
                "Status": "ACTIVE",
                "State": "ACTIVE",
                "JoinedMethod": "INVITED" if a == mgmt else "CREATED",
                "JoinedTimestamp": _EPOCH_2024 - 86400 * 365,
            }
            for a in self.fleet.accounts
        ]
        try:
            page, token = _page(op, accounts, params, ORG_PAGE_MAX, ORG_PAGE_MAX)
        except ApiError as exc:
            raise ApiError("InvalidInputException", exc.message) from None
        return _with_token({"Accounts": page}, token)

    # -- STS ---------------------------------------------------------------------------------------

    def sts(self, action: str, params: dict[str, str], caller: str, access_key: str | None) -> str:
        rid = self.request_id()
        if action == "AssumeRole":
            role_arn = params.get("RoleArn", "")
            match = _ROLE_ARN.match(role_arn)
            if match is None or match[1] not in self.fleet.account_set or match[2] != self.fleet.role_name:
                raise ApiError(
                    "AccessDenied",
                    f"User: arn:aws:iam::{caller}:user/bench is not authorized to perform: sts:AssumeRole "
                    f"on resource: {role_arn}",
                    403,
                )
            account, role = match[1], match[2]
            session = params.get("RoleSessionName", "session")
            expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            secret = hashlib.sha1(f"secret/{account}".encode()).hexdigest()[:40]
            token = base64.b64encode(f"bench-session/{account}/{role}/{session}".encode()).decode()
            return (
                f'<AssumeRoleResponse xmlns="{STS_NS}"><AssumeRoleResult><Credentials>'
                f"<AccessKeyId>ASIA{account}{AKID_SUFFIX}</AccessKeyId>"
                f"<SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{escape(token)}</SessionToken>"
                f"<Expiration>{expires}</Expiration></Credentials>"
                f"<AssumedRoleUser><AssumedRoleId>AROABENCH{account}:{escape(session)}</AssumedRoleId>"
                f"<Arn>arn:aws:sts::{account}:assumed-role/{escape(role)}/{escape(session)}</Arn></AssumedRoleUser>"
                f"</AssumeRoleResult><ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata>"
                "</AssumeRoleResponse>"
            )
        if action == "GetCallerIdentity":
            assumed = bool(access_key and access_key.startswith("ASIA") and access_key.endswith(AKID_SUFFIX))
            arn = (
                f"arn:aws:sts::{caller}:assumed-role/{self.fleet.role_name}/sm-assets-bench"
                if assumed
                else f"arn:aws:iam::{caller}:user/bench"
            )
            return (
                f'<GetCallerIdentityResponse xmlns="{STS_NS}"><GetCallerIdentityResult>'
                f"<Arn>{arn}</Arn><UserId>AIDABENCH{caller}</UserId><Account>{caller}</Account>"
                f"</GetCallerIdentityResult><ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata>"
                "</GetCallerIdentityResponse>"
            )
        raise ApiError("InvalidAction", f"Could not find operation {action} for version 2011-06-15")


def _with_token(body: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token:
        body["NextToken"] = token
    return body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: botocore pools connections
    timeout = 120  # idle keep-alive connections release their thread eventually
    # Without TCP_NODELAY, a response written as headers + body stalls ~40 ms per call on a keep-alive
    # connection (Nagle's algorithm waiting for the client's delayed ACK): invisible latency on every call.
    disable_nagle_algorithm = True
    bench: BenchServer  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", self.bench.request_id())
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        # One write for headers and body (end_headers() would send the headers on their own).
        self._headers_buffer.append(b"\r\n" + body)
        self.flush_headers()

    def _json(self, status: int, payload: dict[str, Any], content_type: str = "application/x-amz-json-1.1") -> None:
        self._send(status, json.dumps(payload, separators=(",", ":")).encode(), content_type)

    def _json_error(self, exc: ApiError) -> None:
        body = {"__type": exc.code, "message" if exc.code == "ThrottlingException" else "Message": exc.message}
        self._send(exc.status, json.dumps(body).encode(), "application/x-amz-json-1.1", {"x-amzn-ErrorType": exc.code})

    def _xml_error(self, exc: ApiError) -> None:
        body = (
            f'<ErrorResponse xmlns="{STS_NS}"><Error><Type>Sender</Type><Code>{exc.code}</Code>'
            f"<Message>{escape(exc.message)}</Message></Error><RequestId>{self.bench.request_id()}</RequestId>"
            "</ErrorResponse>"
        )
        self._send(exc.status, body.encode(), "text/xml")

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.startswith("/__bench/stats"):
            self._json(200, self.bench.stats(), "application/json")
        elif self.path.startswith("/__bench/fleet"):
            self._json(200, self.bench.fleet.summary(), "application/json")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        bench = self.bench
        if self.path.startswith("/__bench/"):
            self._control(raw)
            return
        match = _CREDENTIAL.search(self.headers.get("Authorization") or "")
        access_key, region, service = (match[1], match[2], match[3]) if match else (None, None, None)
        caller = bench.account_of(access_key)
        target = self.headers.get("X-Amz-Target") or ""
        service_name, _, op = target.partition(".")
        try:
            if service_name == "SageMaker":
                admitted = bench._admit(f"sagemaker.{op}", caller, region or "us-east-1", throttle=True)
                self._sleep()
                if not admitted:
                    raise ApiError("ThrottlingException", "Rate exceeded")
                params = json.loads(raw or b"{}")
                self._json(200, bench.sagemaker(op, caller, region or "us-east-1", params))
            elif service_name == "AWSOrganizationsV20161128":
                bench._admit(f"organizations.{op}", caller, None, throttle=False)
                self._sleep()
                self._json(200, bench.organizations(op, json.loads(raw or b"{}")))
            elif service == "sts" or (not target and raw.startswith(b"Action=")):
                self._sts(raw, caller, access_key)
            else:
                bench._admit(f"unknown.{target or self.path}", caller, None, throttle=False)
                raise ApiError("UnknownOperationException", f"unsupported request {target or self.path}")
        except ApiError as exc:
            self._json_error(exc)

    def _sts(self, raw: bytes, caller: str, access_key: str | None) -> None:
        params = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        action = params.get("Action", "")
        target_account = caller
        if action == "AssumeRole":
            match = _ROLE_ARN.match(params.get("RoleArn", ""))
            target_account = match[1] if match else caller  # AssumeRole time belongs to the account it opens
        self.bench._admit(f"sts.{action}", target_account, None, throttle=False)
        self._sleep()
        try:
            self._send(200, self.bench.sts(action, params, caller, access_key).encode(), "text/xml")
        except ApiError as exc:
            self._xml_error(exc)

    def _sleep(self) -> None:
        if self.bench.latency_s > 0:
            time.sleep(self.bench.latency_s)

    def _control(self, raw: bytes) -> None:
        if self.path.startswith("/__bench/reset"):
            self.bench.reset_stats()
            self._json(200, {"ok": True}, "application/json")
        elif self.path.startswith("/__bench/config"):
            knobs = json.loads(raw or b"{}")
            self.bench.configure(
                latency_s=knobs.get("latency_s"),
                rate=knobs.get("rate", "keep"),
                burst=knobs.get("burst", "keep"),
            )
            self._json(200, self.bench.stats(), "application/json")
        else:
            self._send(404, b"not found", "text/plain")


# --------------------------------------------------------------------------------------------------
# Standalone
# --------------------------------------------------------------------------------------------------


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accounts", type=int, default=50, help="ACTIVE accounts in the org (default 50)")
    parser.add_argument(
        "--regions", default=",".join(DEFAULT_REGIONS), help="comma-separated regions (default %(default)s)"
    )
    parser.add_argument("--max-definitions", type=int, default=12, help="definitions per account-region, 0..N")
    parser.add_argument("--seed", type=int, default=1, help="fleet seed (deterministic)")
    parser.add_argument("--role-name", default=DEFAULT_ROLE_NAME, help="role AssumeRole accepts")


def fleet_from_args(args: argparse.Namespace) -> Fleet:
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    return generate_fleet(args.accounts, regions, args.max_definitions, seed=args.seed, role_name=args.role_name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fake_aws_bench", description=__doc__.splitlines()[0])
    add_fleet_arguments(parser)
    parser.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_S * 1000, help="per-call latency")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="SageMaker calls/s per account-region")
    parser.add_argument("--burst", type=float, default=None, help="bucket size (default: = rate)")
    parser.add_argument("--zero-latency", action="store_true", help="no per-call latency")
    parser.add_argument("--no-throttle", action="store_true", help="never throttle")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    args = parser.parse_args(argv)
    fleet = fleet_from_args(args)
    server = BenchServer(
        fleet,
        latency_s=0.0 if args.zero_latency else args.latency_ms / 1000,
        rate=None if args.no_throttle else args.rate,
        burst=args.burst,
        port=args.port,
    )
    url = server.start()
    print(f"URL {url}", flush=True)
    print(json.dumps(fleet.summary()), file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A lightweight fake AWS for benchmarks: the real wire protocols botocore speaks, nothing more.

Speaks, on 127.0.0.1 only:

* STS, query protocol (form POST, XML answers): ``AssumeRole`` and ``GetCallerIdentity``. The AccessKeyId
  handed out encodes the target account (``ASIA`` + 12-digit account id + ``BNCH``), so every later SigV4
  request names its account in ``Authorization: ... Credential=<AKID>/<date>/<region>/<service>/aws4_request``.
  Any other access key (e.g. ``testing``) is the organization's management account.
* Organizations, JSON 1.1 (``X-Amz-Target: AWSOrganizationsV20161128.ListAccounts``), paginated.
* SageMaker, JSON 1.1 (``X-Amz-Target: SageMaker.<Op>``): every operation the registry's collector calls
  (``spec.api_operations`` of each spec in ``sm_assets.core.specs.RESOURCE_SPECS``), served from the registry:
  List/Describe{T}JobDefinition(s) of the four Model Monitor types, ListEndpoints + DescribeEndpoint,
  ListEndpointConfigs + DescribeEndpointConfig, ListMonitoringSchedules (every monitoring type) +
  DescribeMonitoringSchedule, and ListTags on every resource. Payloads have AWS's shapes (DescribeEndpoint's
  DataCaptureConfig summary follows its endpoint config's DataCaptureConfig). Timestamps are epoch seconds
  (numbers), lists page with NextToken/MaxResults and default to AWS's page sizes (10; ListTags 50), errors
  are ``{"__type": ..., "Message": ...}`` with HTTP 400.

The fleet: per (account, region) 0..``max_definitions`` ModelQuality job definitions, an endpoint for each
(+0-3 nobody monitors) with its endpoint config (now and then an older config it moved away from), ModelQuality
schedules for ~60% of the definitions, and per endpoint, with the chances in ``OTHER_MONITOR_SHARE``, a
DataQuality / ModelBias / ModelExplainability definition and mostly its schedule (now and then only the schedule:
its definition was deleted). Endpoints vary their data capture (none, disabled, stopped, 0% sampling, Input or
Output only). Deterministic per seed.

Partitions, as AWS has them: the fleet's regions lie in one partition (aws, aws-us-gov, aws-cn; botocore's
endpoint data says which), every ARN it hands out carries it, and the server tells regions apart by the SigV4
credential scope (with one ``AWS_ENDPOINT_URL`` every region reaches this one server). A request signed for a
region of another partition is refused as AWS refuses foreign credentials (``UnrecognizedClientException`` /
STS ``InvalidClientTokenId``); Organizations answers only in the partition's Organizations region (us-east-1,
us-gov-west-1, cn-northwest-1; elsewhere ``InvalidSignatureException``); AssumeRole takes only role ARNs of the
partition. ``disabled_regions`` ({account: regions}) makes opt-in regions an account has not enabled: its
credentials are refused there, and STS there issues no credentials for it (``RegionDisabledException``).

Every API call sleeps ``latency_s`` (a sleep, not CPU). SageMaker calls are throttled per (account, region)
with a token bucket (``rate`` calls/s, ``burst`` tokens): an empty bucket answers HTTP 400
``{"__type": "ThrottlingException", "message": "Rate exceeded"}``. STS and Organizations are never throttled.
Counters: total calls, throttled calls, per operation, per (account, region), and per account the first and
last call time (for "API span" accounting). ``Fleet.expected_calls()`` is what a full collection needs, per
bucket and per operation, derived from the registry (list pages, one describe per resource, tag pages).
Per ``service/region`` credential scope it also counts every signed request (``by_scope``, refused ones
included; ``refused`` counts those).

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
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from sm_assets.core.aws_clients import aws_partition, organizations_region
from sm_assets.core.specs import (
    ENDPOINT_CONFIG_SPEC,
    ENDPOINT_SPEC,
    JOB_DEFINITION_SPECS,
    MONITOR_TYPES,
    MONITORING_SCHEDULE_SPEC,
    RESOURCE_SPECS,
    ResourceSpec,
)

# The same vocabulary as the demo org, so benchmark payloads look like the demo's.
from sm_assets.demo.seed import (
    _CLARIFY_IMAGE,
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

# Shapes of the fleet (the synthetic lake of run_benchmark.py uses the same proportions).
MODEL_QUALITY_SCHEDULE_RATIO = 0.6  # ModelQuality definitions with a schedule
# Per endpoint, the chance that a monitor of each other type watches it (a definition and mostly its schedule).
OTHER_MONITOR_SHARE: dict[str, float] = {"DataQuality": 0.5, "ModelBias": 0.2, "ModelExplainability": 0.2}
OTHER_MONITOR_SCHEDULED = 0.9  # of those definitions, the share with a schedule
DEFINITION_DELETED = 0.05  # of those monitors, the share whose definition was deleted (its schedule is left)
CAPTURE_CONFIGURED = 0.75  # endpoint configs with a DataCaptureConfig
CONFIG_REPLACED = 0.15  # endpoints that moved to a second config (the first one is still listed)

ORG_ID = "o-bench00001"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
AKID_SUFFIX = "BNCH"
EXECUTION_ROLE = "SageMakerModelMonitorExecutionRole"

_INSTANCE_TYPES = ("ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge", "ml.m5.2xlarge")
_ENDPOINT_STATUSES = ("InService",) * 7 + ("Creating", "Failed", "OutOfService", "Updating")
_SCHEDULE_STATUSES = ("Scheduled",) * 6 + ("Stopped", "Failed", "Pending")
_EXECUTION_STATUSES = (None, "Completed", "Completed", "Completed", "CompletedWithViolations", "Failed")
_CAPTURE_MODES = (("Input", "Output"),) * 6 + (("Input",), ("Output",))
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
_INFERENCE_IMAGE = "683313688378.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:1.7-1"

MODEL_QUALITY = JOB_DEFINITION_SPECS["ModelQuality"].resource_type


def type_label(resource_type: str) -> str:
    """model_quality_job_definition -> "model quality definitions", endpoint_config -> "endpoint configs"."""
    return resource_type.replace("_job_definition", " definition").replace("_", " ") + "s"


def monitor_prefix(monitor_type: str) -> str:
    """ModelQuality -> mq, DataQuality -> dq, ModelBias -> mb, ModelExplainability -> me."""
    return "".join(c for c in monitor_type if c.isupper()).lower()


# --------------------------------------------------------------------------------------------------
# Fleet
# --------------------------------------------------------------------------------------------------


@dataclass
class FakeResource:
    resource_type: str  # a registry resource type (SPECS_BY_TYPE)
    name: str
    arn: str
    created: float  # epoch seconds (ms precision), what the wire carries
    summary: dict[str, Any]  # the List* entry
    describe: dict[str, Any] | None  # the Describe* answer (None: the spec stores the summary)
    tags: list[dict[str, str]]
    monitoring_type: str | None = None  # schedules only
    status: str | None = None  # endpoints and schedules
    endpoint_name: str | None = None  # definitions and schedules
    job_definition_name: str | None = None  # schedules only


# List* request parameters the fake filters on (parameter -> FakeResource attribute), besides NameContains.
_SCHEDULE_FILTERS = {
    "MonitoringTypeEquals": "monitoring_type",
    "EndpointName": "endpoint_name",
    "StatusEquals": "status",
    "MonitoringJobDefinitionName": "job_definition_name",
}


def _list_filters(spec: ResourceSpec) -> dict[str, str]:
    if spec.monitor_type is not None:
        return {"EndpointName": "endpoint_name"}
    return {"endpoint": {"StatusEquals": "status"}, "monitoring_schedule": _SCHEDULE_FILTERS}.get(
        spec.resource_type, {}
    )


def _filtered(items: list[FakeResource], spec: ResourceSpec, params: Mapping[str, Any]) -> list[FakeResource]:
    for param, attr in _list_filters(spec).items():
        if params.get(param):
            items = [r for r in items if getattr(r, attr) == params[param]]
    if params.get("NameContains"):
        items = [r for r in items if params["NameContains"] in r.name]
    return items


@dataclass
class RegionFleet:
    account_id: str
    region: str
    # resource type -> its resources, CreationTime descending (AWS's default list order); every registry type
    items: dict[str, list[FakeResource]] = field(
        default_factory=lambda: {spec.resource_type: [] for spec in RESOURCE_SPECS}
    )

    def __post_init__(self) -> None:
        self.index()

    def add(self, resource: FakeResource) -> None:
        self.items[resource.resource_type].append(resource)

    def index(self) -> None:
        self.by_name: dict[str, dict[str, FakeResource]] = {}
        for resource_type, items in self.items.items():
            items.sort(key=lambda r: (r.created, r.name), reverse=True)
            self.by_name[resource_type] = {r.name: r for r in items}

    def of(self, resource_type: str) -> list[FakeResource]:
        return self.items.get(resource_type, [])

    def resources(self) -> Iterator[FakeResource]:
        return itertools.chain.from_iterable(self.items.values())

    @property
    def definitions(self) -> list[FakeResource]:
        """The ModelQuality job definitions (the unit of ``max_definitions``)."""
        return self.of(MODEL_QUALITY)

    def definitions_of(self, monitor_type: str) -> list[FakeResource]:
        return self.of(JOB_DEFINITION_SPECS[monitor_type].resource_type)

    @property
    def endpoints(self) -> list[FakeResource]:
        return self.of(ENDPOINT_SPEC.resource_type)

    @property
    def endpoint_configs(self) -> list[FakeResource]:
        return self.of(ENDPOINT_CONFIG_SPEC.resource_type)

    @property
    def schedules(self) -> list[FakeResource]:
        """Monitoring schedules of every type."""
        return self.of(MONITORING_SCHEDULE_SPEC.resource_type)

    def schedules_of(self, monitoring_type: str) -> list[FakeResource]:
        return [s for s in self.schedules if s.monitoring_type == monitoring_type]

    def listed(self, spec: ResourceSpec) -> list[FakeResource]:
        """What the spec's list call returns here (its ``list_params`` applied)."""
        return _filtered(self.of(spec.resource_type), spec, spec.list_params)

    def min_calls_by_operation(self) -> Counter[str]:
        """SageMaker calls a full collection makes here at AWS's default page sizes, per operation, derived from
        the registry: every page of each spec's list, one describe per listed resource, every page of its tags."""
        calls: Counter[str] = Counter()
        for spec in RESOURCE_SPECS:
            operations = spec.api_operations
            listed = self.listed(spec)
            calls[operations[0]] += _pages(len(listed), LIST_PAGE_DEFAULT)
            if spec.describe_operation:
                calls[operations[1]] += len(listed)
            if spec.with_tags:
                calls["ListTags"] += sum(_pages(len(r.tags), TAGS_PAGE_DEFAULT) for r in listed)
        return calls

    def min_sagemaker_calls(self) -> int:
        """Calls a full collection needs here at AWS's default page sizes (what collect_account sends)."""
        return sum(self.min_calls_by_operation().values())


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
            for res in rf.resources():
                self.by_arn[res.arn] = res

    @property
    def management_account_id(self) -> str:
        return self.accounts[0]

    @property
    def partition(self) -> str:
        return aws_partition(self.regions[0])

    def region(self, account_id: str, region: str) -> RegionFleet | None:
        return self.resources.get((account_id, region))

    def totals(self) -> dict[str, int]:
        """Accounts, regions, and resources per registry type (+ "definitions": the ModelQuality ones, the
        unit of --max-definitions; "endpoints"; "resources": every type)."""
        rfs = self.resources.values()
        by_type = {spec.resource_type: sum(len(rf.of(spec.resource_type)) for rf in rfs) for spec in RESOURCE_SPECS}
        return {
            "accounts": len(self.accounts),
            "regions": len(self.regions),
            **by_type,
            "definitions": by_type[MODEL_QUALITY],
            "endpoints": by_type[ENDPOINT_SPEC.resource_type],
            "resources": sum(by_type.values()),
            "tags": sum(len(res.tags) for res in self.by_arn.values()),
        }

    def schedules_by_type(self) -> dict[str, int]:
        counts = Counter(s.monitoring_type for rf in self.resources.values() for s in rf.schedules)
        return {t: counts.get(t, 0) for t in MONITOR_TYPES}

    def inventory_text(self) -> str:
        """'1,234 model quality definitions, ..., 900 monitoring schedules (ModelQuality 500, ...), 9,000 tags'."""
        totals, schedules = self.totals(), self.schedules_by_type()
        parts = []
        for spec in RESOURCE_SPECS:
            text = f"{totals[spec.resource_type]:,} {type_label(spec.resource_type)}"
            if spec is MONITORING_SCHEDULE_SPEC:
                text += " (" + ", ".join(f"{t} {n:,}" for t, n in schedules.items()) + ")"
            parts.append(text)
        return ", ".join([*parts, f"{totals['tags']:,} tags"])

    def expected_calls(self) -> dict[str, Any]:
        """Minimum calls for one full collection: Organizations pages, one AssumeRole per account, and the
        SageMaker calls of every (account, region) bucket at default page sizes (also per operation)."""
        buckets: dict[str, int] = {}
        by_operation: Counter[str] = Counter()
        for (account, region), rf in self.resources.items():
            calls = rf.min_calls_by_operation()
            buckets[f"{account}/{region}"] = sum(calls.values())
            by_operation.update(calls)
        org = _pages(len(self.accounts), ORG_PAGE_MAX)
        sagemaker = sum(buckets.values())
        return {
            "organizations": org,
            "sts": len(self.accounts),
            "sagemaker": sagemaker,
            "total": org + len(self.accounts) + sagemaker,
            "by_operation": dict(sorted(by_operation.items())),
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
            "schedules_by_type": self.schedules_by_type(),
            "seed": self.seed,
            "max_definitions": self.max_definitions,
            "role_name": self.role_name,
            "fingerprint": self.fingerprint(),
            "expected_calls": {k: v for k, v in calls.items() if k != "by_bucket"},
            "busiest_bucket_calls": max(calls["by_bucket"].values(), default=0),
        }


def _arn(region: str, account: str, spec: ResourceSpec, name: str) -> str:
    # The ARN's resource kind is the registry type in kebab case: model-quality-job-definition, endpoint-config ...
    return f"arn:{aws_partition(region)}:sagemaker:{region}:{account}:{spec.resource_type.replace('_', '-')}/{name}"


def _ts(rng: random.Random, start: float = _EPOCH_2024, span_days: float = 500) -> float:
    return round(start + rng.uniform(0, span_days * 86400), 3)


def _tags(rng: random.Random, k: int) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value(rng)} for key, value in rng.sample(_TAG_POOL, k)]


def _kms(rng: random.Random, account: str, region: str) -> str:
    return f"arn:{aws_partition(region)}:kms:{region}:{account}:key/{rng.getrandbits(128):032x}"


def _resource(
    spec: ResourceSpec,
    name: str,
    arn: str,
    created: float,
    summary: dict[str, Any],
    describe: dict[str, Any],
    tags: list[dict[str, str]],
    **attributes: Any,
) -> FakeResource:
    """One resource; its list summary names it with the spec's summary fields."""
    head = {spec.list_name_field: name, spec.list_arn_field: arn, "CreationTime": created}
    return FakeResource(spec.resource_type, name, arn, created, {**head, **summary}, describe, tags, **attributes)


def _monitor_image(region: str) -> str:
    registry = _MONITOR_REGISTRY.get(region, _MONITOR_REGISTRY["us-east-1"])
    return f"{registry}.dkr.ecr.{region}.amazonaws.com/sagemaker-model-monitor-analyzer"


def _job_input(
    rng: random.Random, monitor_type: str, endpoint: str, problem: str, bucket: str, name: str
) -> dict[str, Any]:
    """{T}JobInput: EndpointInput with the attributes type T reads, GroundTruthS3Input where T compares
    predictions with labels (ModelQuality, ModelBias)."""
    block = endpoint_input(endpoint, probability=monitor_type == "ModelBias" or problem == "BinaryClassification")
    if monitor_type == "DataQuality":
        block = {k: v for k, v in block.items() if not k.endswith("Attribute")}
    elif monitor_type in ("ModelBias", "ModelExplainability"):
        block["FeaturesAttribute"] = "features"
        if rng.random() < 0.5:
            block |= {"StartTimeOffset": "-PT1H", "EndTimeOffset": "-PT0H"}
    job_input: dict[str, Any] = {"EndpointInput": block}
    if monitor_type in ("ModelQuality", "ModelBias"):
        job_input["GroundTruthS3Input"] = {"S3Uri": f"{bucket}/ground-truth/{name}"}
    return job_input


def _definition(
    rng: random.Random, monitor_type: str, account: str, region: str, name: str, endpoint: str
) -> FakeResource:
    """A {T}JobDefinition: its list summary and its Describe{T}JobDefinition answer, in AWS's shapes."""
    spec = JOB_DEFINITION_SPECS[monitor_type]
    arn = _arn(region, account, spec, name)
    created = _ts(rng)
    bucket = f"s3://sagemaker-{region}-{account}"
    problem = rng.choice(_PROBLEM_TYPES)
    kms = _kms(rng, account, region)
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
    app: dict[str, Any] = {"ImageUri": _monitor_image(region)}
    if monitor_type == "ModelQuality":
        app["ProblemType"] = problem
    elif monitor_type == "DataQuality":
        if rng.random() < 0.2:
            app["RecordPreprocessorSourceUri"] = f"{bucket}/code/{name}/preprocessor.py"
    else:  # ModelBias, ModelExplainability: SageMaker Clarify, configured by an analysis config
        app = {"ImageUri": _CLARIFY_IMAGE.format(region=region), "ConfigUri": f"{bucket}/clarify/{name}/analysis.json"}
    body: dict[str, Any] = {
        spec.arn_field: arn,
        spec.name_field: name,
        "CreationTime": created,
        f"{monitor_type}AppSpecification": app,
        f"{monitor_type}JobInput": _job_input(rng, monitor_type, endpoint, problem, bucket, name),
        f"{monitor_type}JobOutputConfig": output,
        "JobResources": {"ClusterConfig": cluster},
        "RoleArn": f"arn:{aws_partition(region)}:iam::{account}:role/{EXECUTION_ROLE}",
    }
    if rng.random() < 0.7:
        baseline: dict[str, Any] = {
            "BaseliningJobName": f"{name}-baseline",
            "ConstraintsResource": {"S3Uri": f"{bucket}/baselines/{name}/constraints.json"},
        }
        if monitor_type == "DataQuality":
            baseline["StatisticsResource"] = {"S3Uri": f"{bucket}/baselines/{name}/statistics.json"}
        body[f"{monitor_type}BaselineConfig"] = baseline
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
    tags = _tags(rng, rng.randint(0, 10))
    return _resource(spec, name, arn, created, {"EndpointName": endpoint}, body, tags, endpoint_name=endpoint)


def _endpoint_config(
    rng: random.Random, account: str, region: str, endpoint: str, name: str, created: float
) -> FakeResource:
    """An endpoint config (DescribeEndpointConfig): variants, maybe a DataCaptureConfig and a KMS key."""
    spec = ENDPOINT_CONFIG_SPEC
    arn = _arn(region, account, spec, name)
    bucket = f"s3://sagemaker-{region}-{account}"
    n_variants = 1 if rng.random() < 0.85 else 2
    variants = [
        {
            "VariantName": "AllTraffic" if n_variants == 1 else f"variant-{k + 1}",
            "ModelName": f"{endpoint}-model-{k + 1}",
            "InitialInstanceCount": rng.choice((1, 1, 2, 4)),
            "InstanceType": rng.choice(_INSTANCE_TYPES),
            "InitialVariantWeight": 1.0 / n_variants,
        }
        for k in range(n_variants)
    ]
    body: dict[str, Any] = {spec.name_field: name, spec.arn_field: arn, "ProductionVariants": variants}
    if rng.random() < CAPTURE_CONFIGURED:
        capture: dict[str, Any] = {
            "EnableCapture": rng.random() < 0.9,
            "InitialSamplingPercentage": rng.choice((100, 100, 50, 20)),
            "DestinationS3Uri": f"{bucket}/datacapture/{endpoint}",
            "CaptureOptions": [{"CaptureMode": mode} for mode in rng.choice(_CAPTURE_MODES)],
        }
        if rng.random() < 0.3:
            capture["KmsKeyId"] = _kms(rng, account, region)
        if rng.random() < 0.3:
            capture["CaptureContentTypeHeader"] = {"CsvContentTypes": ["text/csv"]}
        body["DataCaptureConfig"] = capture
    if rng.random() < 0.3:
        body["KmsKeyId"] = _kms(rng, account, region)
    body["CreationTime"] = created
    if rng.random() < 0.2:
        body["EnableNetworkIsolation"] = True
    return _resource(spec, name, arn, created, {}, body, _tags(rng, rng.randint(0, 6)))


def _capture_summary(rng: random.Random, config: FakeResource) -> dict[str, Any] | None:
    """DescribeEndpoint's DataCaptureConfigSummary, from the config it runs: now and then capture stopped
    (e.g. its bucket went away) or sampling turned down to 0%."""
    capture = (config.describe or {}).get("DataCaptureConfig")
    if capture is None:
        return None
    enabled = capture["EnableCapture"]
    summary = {
        "EnableCapture": enabled,
        "CaptureStatus": "Started" if enabled and rng.random() < 0.9 else "Stopped",
        "CurrentSamplingPercentage": 0 if rng.random() < 0.05 else capture["InitialSamplingPercentage"],
        "DestinationS3Uri": capture["DestinationS3Uri"],
    }
    if "KmsKeyId" in capture:
        summary["KmsKeyId"] = capture["KmsKeyId"]
    return summary


def _endpoint(rng: random.Random, account: str, region: str, name: str) -> list[FakeResource]:
    """An endpoint (DescribeEndpoint) and its endpoint configs: the one it runs, and with CONFIG_REPLACED the
    one it ran before (configs are immutable: an update moves the endpoint to a new config)."""
    spec = ENDPOINT_SPEC
    created = _ts(rng)
    configs = [_endpoint_config(rng, account, region, name, f"{name}-config-v1", round(created - 600, 3))]
    if rng.random() < CONFIG_REPLACED:
        later = round(created + rng.uniform(86400, 86400 * 60), 3)
        configs.append(_endpoint_config(rng, account, region, name, f"{name}-config-v2", later))
    current = configs[-1]
    modified = round(max(created, current.created) + rng.uniform(60, 86400 * 30), 3)
    status = rng.choice(_ENDPOINT_STATUSES)
    arn = _arn(region, account, spec, name)
    body: dict[str, Any] = {spec.name_field: name, spec.arn_field: arn, "EndpointConfigName": current.name}
    if status != "Creating":
        image = _INFERENCE_IMAGE.format(region=region)
        body["ProductionVariants"] = [
            {
                "VariantName": v["VariantName"],
                "DeployedImages": [
                    {
                        "SpecifiedImage": image,
                        "ResolvedImage": f"{image.split(':')[0]}@sha256:{rng.getrandbits(256):064x}",
                        "ResolutionTime": current.created,
                    }
                ],
                "CurrentWeight": v["InitialVariantWeight"],
                "DesiredWeight": v["InitialVariantWeight"],
                "CurrentInstanceCount": v["InitialInstanceCount"],
                "DesiredInstanceCount": v["InitialInstanceCount"],
            }
            for v in (current.describe or {})["ProductionVariants"]
        ]
    capture = _capture_summary(rng, current)
    if capture is not None:
        body["DataCaptureConfig"] = capture
    body["EndpointStatus"] = status
    if status == "Failed":
        body["FailureReason"] = "The primary container for production variant AllTraffic did not pass the ping check."
    body |= {"CreationTime": created, "LastModifiedTime": modified}
    summary = {"LastModifiedTime": modified, "EndpointStatus": status}
    tags = _tags(rng, rng.randint(0, 10))
    return [_resource(spec, name, arn, created, summary, body, tags, status=status), *configs]


def _region_fleet(
    seed: int, account: str, region: str, n_defs: int, schedule_ratio: float, monitor_shares: Mapping[str, float]
) -> RegionFleet:
    # One generator per (account, region): adding accounts or regions never changes the existing ones.
    rng = random.Random(f"{seed}/{account}/{region}")
    rf = RegionFleet(account, region)
    purposes = [_PURPOSES[i % len(_PURPOSES)] for i in range(n_defs)]
    endpoint_names = [f"{p}-{i:02d}-ep" for i, p in enumerate(purposes)]
    endpoint_names += [f"adhoc-{i:02d}-ep" for i in range(rng.randint(0, 3))]  # no ModelQuality monitor
    for name in endpoint_names:
        for resource in _endpoint(rng, account, region, name):
            rf.add(resource)
    for i, purpose in enumerate(purposes):
        # About one definition in ten outlives its endpoint (deleted or renamed).
        endpoint = endpoint_names[i] if rng.random() < 0.9 else f"{purpose}-{i:02d}-retired"
        definition = _definition(rng, "ModelQuality", account, region, f"mq-{purpose}-{i:02d}", endpoint)
        rf.add(definition)
        if rng.random() < schedule_ratio:
            rf.add(_schedule(rng, account, region, definition.name, endpoint, definition.created, "ModelQuality"))
    for endpoint in endpoint_names:
        for monitor_type, share in monitor_shares.items():
            if rng.random() >= share:
                continue
            name = f"{monitor_prefix(monitor_type)}-{endpoint}"
            definition = _definition(rng, monitor_type, account, region, name, endpoint)
            deleted = rng.random() < DEFINITION_DELETED  # its schedule outlived it
            if not deleted:
                rf.add(definition)
            if deleted or rng.random() < OTHER_MONITOR_SCHEDULED:
                rf.add(_schedule(rng, account, region, name, endpoint, definition.created, monitor_type))
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
    spec = MONITORING_SCHEDULE_SPEC
    hourly = rng.random() < 0.7
    name = f"{definition}-{'hourly' if hourly else 'daily'}"
    arn = _arn(region, account, spec, name)
    created = round(after + rng.uniform(60, 86400 * 7), 3)
    modified = round(created + rng.uniform(0, 86400 * 60), 3)
    status = rng.choice(_SCHEDULE_STATUSES)
    config = {
        "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)" if hourly else "cron(0 0 ? * * *)"},
        "MonitoringJobDefinitionName": definition,
        "MonitoringType": monitoring_type,
    }
    describe: dict[str, Any] = {
        spec.arn_field: arn,
        spec.name_field: name,
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
            "ProcessingJobArn": f"arn:{aws_partition(region)}:sagemaker:{region}:{account}:processing-job/{job}",
            "EndpointName": endpoint,
            "MonitoringJobDefinitionName": definition,
            "MonitoringType": monitoring_type,
        }
        if execution == "Failed":
            last["FailureReason"] = "AlgorithmError: Error: Ground truth data not found."
        describe["LastMonitoringExecutionSummary"] = last
    summary = {
        "LastModifiedTime": modified,
        "MonitoringScheduleStatus": status,
        "MonitoringType": monitoring_type,
        "EndpointName": endpoint,
        "MonitoringJobDefinitionName": definition,
    }
    return _resource(
        spec,
        name,
        arn,
        created,
        summary,
        describe,
        _tags(rng, rng.randint(0, 10)),
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
    schedule_ratio: float = MODEL_QUALITY_SCHEDULE_RATIO,
    monitor_shares: Mapping[str, float] = OTHER_MONITOR_SHARE,
    role_name: str = DEFAULT_ROLE_NAME,
) -> Fleet:
    """A deterministic org: ``accounts`` ACTIVE accounts x ``regions``, each with ``min..max`` ModelQuality
    definitions, an endpoint per definition (+0-3 more) with its endpoint config(s), ModelQuality schedules for
    ~``schedule_ratio`` of the definitions, and per endpoint the other monitor types with ``monitor_shares``.
    Same arguments, same fleet."""
    if accounts < 1:
        raise ValueError("need at least one account")
    if not 0 <= min_definitions <= max_definitions:
        raise ValueError("need 0 <= min_definitions <= max_definitions")
    unknown = set(monitor_shares) - set(MONITOR_TYPES) | ({"ModelQuality"} & set(monitor_shares))
    if unknown:
        raise ValueError(f"monitor_shares: not another monitoring type: {sorted(unknown)}")
    if len({aws_partition(r) for r in regions}) != 1:
        raise ValueError(f"the regions {', '.join(regions)} must lie in one partition")
    rng = random.Random(seed)
    ids = [f"{n:012d}" for n in rng.sample(range(10**11, 10**12), accounts)]
    names = {a: ("management" if i == 0 else f"ml-{i:04d}") for i, a in enumerate(ids)}
    resources: dict[tuple[str, str], RegionFleet] = {}
    for account in ids:
        for region in regions:
            n = random.Random(f"{seed}/{account}/{region}/n").randint(min_definitions, max_definitions)
            resources[(account, region)] = _region_fleet(seed, account, region, n, schedule_ratio, monitor_shares)
    return Fleet(ids, names, tuple(regions), role_name, seed, max_definitions, resources)


# --------------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------------

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ROLE_ARN = re.compile(r"^arn:(aws[\w-]*):iam::(\d{12}):role/(?:[^/]+/)*([^/]+)$")
_INVALID_TOKEN = "The security token included in the request is invalid."


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


def _list(op: str, items: list[FakeResource], params: dict[str, Any], spec: ResourceSpec) -> dict[str, Any]:
    """A SageMaker List* answer: sorted, filtered (the spec's list filters and NameContains), one page of
    summaries under the spec's result key."""
    items = _filtered(_sorted(items, params), spec, params)
    page, token = _page(op, items, params, LIST_PAGE_DEFAULT, LIST_PAGE_MAX)
    return _with_token({spec.list_result_key: [r.summary for r in page]}, token)


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


def _routes() -> dict[str, tuple[str, ResourceSpec]]:
    """SageMaker operation -> ("list" | "describe", its spec), from the registry (ListTags is served apart)."""
    routes: dict[str, tuple[str, ResourceSpec]] = {}
    for spec in RESOURCE_SPECS:
        operations = spec.api_operations  # (List..., Describe... if described, ListTags if tagged)
        routes[operations[0]] = ("list", spec)
        if spec.describe_operation:
            routes[operations[1]] = ("describe", spec)
    return routes


_ROUTES = _routes()


def _not_found(spec: ResourceSpec, region: str, account: str, name: str) -> ApiError:
    """What SageMaker answers for a describe of a name that does not exist (endpoints and endpoint configs:
    ValidationException; job definitions and schedules: ResourceNotFound)."""
    arn = _arn(region, account, spec, name)
    if spec is ENDPOINT_SPEC:
        return ApiError("ValidationException", f'Could not find endpoint "{arn}".')
    if spec is ENDPOINT_CONFIG_SPEC:
        return ApiError("ValidationException", f'Could not find endpoint configuration "{arn}".')
    what = "job definition" if spec.monitor_type else spec.resource_type.replace("_", " ")
    return ApiError("ResourceNotFound", f"Could not find {what} '{arn}'.")


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
        disabled_regions: dict[str, set[str]] | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the bench server only listens on 127.0.0.1")
        self.fleet = fleet
        self.disabled_regions = {a: frozenset(rs) for a, rs in (disabled_regions or {}).items()}
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
            self.by_scope: dict[str, int] = {}
            self.refused = 0
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
                "by_scope": dict(sorted(self.by_scope.items())),
                "refused": self.refused,
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

    def refusal(self, service: str, region: str | None, account: str) -> ApiError | None:
        """Why AWS would refuse a request signed for `service` in `region` with `account`'s credentials, if it
        would: another partition's region, Organizations outside its one region, an opt-in region the account
        has not enabled. Counts the request's credential scope."""
        with self._lock:
            key = f"{service}/{region}"
            self.by_scope[key] = self.by_scope.get(key, 0) + 1
        error = None
        try:
            foreign = region is None or aws_partition(region) != self.fleet.partition
        except KeyError:
            foreign = True
        if foreign or region in self.disabled_regions.get(account, ()):
            error = ApiError("InvalidClientTokenId", _INVALID_TOKEN, 403)
            if service != "sts":
                error = ApiError("UnrecognizedClientException", _INVALID_TOKEN)
        elif service == "organizations" and region != organizations_region(region):
            error = ApiError("InvalidSignatureException", "Credential should be scoped to a valid region.")
        if error is not None:
            with self._lock:
                self.refused += 1
        return error

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
        if op == "ListTags":
            arn = params.get("ResourceArn", "")
            resource = self.fleet.by_arn.get(arn)
            # An ARN of another account or region does not resolve with these credentials.
            if resource is None or arn.split(":")[3:5] != [region, account]:
                raise ApiError("ValidationException", f"Could not find resource {arn}")
            page, token = _page(op, resource.tags, params, TAGS_PAGE_DEFAULT, TAGS_PAGE_MAX)
            return _with_token({"Tags": page}, token)
        route = _ROUTES.get(op)
        if route is None:
            raise ApiError("UnknownOperationException", f"Operation {op} is not supported by the bench server.")
        action, spec = route
        if action == "list":
            return _list(op, rf.of(spec.resource_type), params, spec)
        name = params.get(spec.describe_param or "", "")
        resource = rf.by_name[spec.resource_type].get(name)
        if resource is None:
            raise _not_found(spec, region, account, name)
        return resource.describe or resource.summary

    # -- Organizations -----------------------------------------------------------------------------

    def organizations(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        if op != "ListAccounts":
            raise ApiError("UnknownOperationException", f"Operation {op} is not supported by the bench server.")
        mgmt = self.fleet.management_account_id
        accounts = [
            {
                "Id": a,
                "Arn": f"arn:{self.fleet.partition}:organizations::{mgmt}:account/{ORG_ID}/{a}",
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

    def sts(self, action: str, params: dict[str, str], caller: str, access_key: str | None, region: str) -> str:
        rid = self.request_id()
        partition = self.fleet.partition
        if action == "AssumeRole":
            role_arn = params.get("RoleArn", "")
            match = _ROLE_ARN.match(role_arn)
            if match is not None and match[1] != partition:
                raise ApiError("ValidationError", f'Partition "{match[1]}" is not valid for resource "{role_arn}".')
            if match is None or match[2] not in self.fleet.account_set or match[3] != self.fleet.role_name:
                raise ApiError(
                    "AccessDenied",
                    f"User: arn:{partition}:iam::{caller}:user/bench is not authorized to perform: sts:AssumeRole "
                    f"on resource: {role_arn}",
                    403,
                )
            account, role = match[2], match[3]
            if region in self.disabled_regions.get(account, ()):
                raise ApiError(
                    "RegionDisabledException",
                    f"STS is not activated in this region for account:{account}. Your account administrator can "
                    "activate STS in this region using the IAM Console.",
                    403,
                )
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
                f"<Arn>arn:{partition}:sts::{account}:assumed-role/{escape(role)}/{escape(session)}</Arn>"
                f"</AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>{rid}</RequestId>"
                "</ResponseMetadata></AssumeRoleResponse>"
            )
        if action == "GetCallerIdentity":
            assumed = bool(access_key and access_key.startswith("ASIA") and access_key.endswith(AKID_SUFFIX))
            arn = (
                f"arn:{partition}:sts::{caller}:assumed-role/{self.fleet.role_name}/sm-assets-bench"
                if assumed
                else f"arn:{partition}:iam::{caller}:user/bench"
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
                refused = bench.refusal("sagemaker", region, caller)
                admitted = bench._admit(f"sagemaker.{op}", caller, region or "us-east-1", throttle=True)
                self._sleep()
                if refused is not None:
                    raise refused
                if not admitted:
                    raise ApiError("ThrottlingException", "Rate exceeded")
                params = json.loads(raw or b"{}")
                self._json(200, bench.sagemaker(op, caller, region or "us-east-1", params))
            elif service_name == "AWSOrganizationsV20161128":
                refused = bench.refusal("organizations", region, caller)
                bench._admit(f"organizations.{op}", caller, None, throttle=False)
                self._sleep()
                if refused is not None:
                    raise refused
                self._json(200, bench.organizations(op, json.loads(raw or b"{}")))
            elif service == "sts" or (not target and raw.startswith(b"Action=")):
                self._sts(raw, caller, access_key, region)
            else:
                bench._admit(f"unknown.{target or self.path}", caller, None, throttle=False)
                raise ApiError("UnknownOperationException", f"unsupported request {target or self.path}")
        except ApiError as exc:
            self._json_error(exc)

    def _sts(self, raw: bytes, caller: str, access_key: str | None, region: str | None) -> None:
        params = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        action = params.get("Action", "")
        target_account = caller
        if action == "AssumeRole":
            match = _ROLE_ARN.match(params.get("RoleArn", ""))
            target_account = match[2] if match else caller  # AssumeRole time belongs to the account it opens
        refused = self.bench.refusal("sts", region, caller)
        self.bench._admit(f"sts.{action}", target_account, None, throttle=False)
        self._sleep()
        try:
            if refused is not None:
                raise refused
            self._send(200, self.bench.sts(action, params, caller, access_key, region or "").encode(), "text/xml")
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

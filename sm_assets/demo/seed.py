"""Seed a fake AWS Organization with a varied, deterministic SageMaker estate, and return the ground truth.

Works against anything boto3 can reach that shares this process's moto backends: ``moto.mock_aws`` (pass
``endpoint_url=None``) or ``fake_aws.fake_aws_server()`` (pass its URL). Endpoint and schedule states are set
directly on those backends, because AWS moves them asynchronously and no API can set them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

from sm_assets.core.specs import MONITOR_TYPES, RESOURCE_SPECS
from sm_assets.demo.fake_aws import (
    ORG_ACCESS_ROLE,
    install_moto_extensions,
    set_endpoint_status,
    set_monitoring_schedule_state,
)
from sm_assets.demo.fake_sagemaker import deny_list_tags, disable_region, set_endpoint_capture, snake

__all__ = [
    "DEFAULT_REGIONS",
    "DemoOrg",
    "EndpointConfigTruth",
    "EndpointTruth",
    "JobDefinitionTruth",
    "RegionTruth",
    "ScheduleTruth",
    "seed_demo_org",
]

DEFAULT_REGIONS: tuple[str, ...] = ("us-east-1", "us-west-2", "eu-west-1")
SESSION_NAME = "sm-assets-demo-seed"
EXECUTION_ROLE = "SageMakerModelMonitorExecutionRole"

# Member account names; the last one plays the recently acquired account nobody deployed the role to.
_ACCOUNT_NAMES = (
    "ml-prod-1",
    "ml-prod-2",
    "ml-staging-1",
    "ml-dev-1",
    "data-science-sandbox",
    "fraud-detection-prod",
    "recsys-prod",
    "acquired-co-ml",
)
_SUSPENDED_NAME = "ml-legacy-closed"
_PURPOSES = (
    "churn",
    "fraud-score",
    "ltv",
    "demand-forecast",
    "search-ranking",
    "credit-risk",
    "next-best-offer",
    "anomaly",
    "price-elasticity",
    "ticket-routing",
)
_TEAMS = ("fraud", "recsys", "search", "forecasting", "risk", "platform")
_PROBLEM_TYPES = ("BinaryClassification", "Regression", "MulticlassClassification")
# Model Monitor analyzer image registries (AWS-owned accounts per region).
_MONITOR_REGISTRY = {"us-east-1": "156813124566", "us-west-2": "159807026194", "eu-west-1": "468650794304"}
HOURLY = "cron(0 * ? * * *)"
DAILY = "cron(0 0 ? * * *)"
# Every N hours, in both spellings seen in the wild (AWS documents H/N; */N appears in Terraform).
EVERY_6_HOURS = "cron(0 */6 ? * * *)"
EVERY_12_HOURS = "cron(0 0/12 ? * * *)"
# Mostly InService, with every other interesting state appearing somewhere in the org.
_ENDPOINT_STATUS_CYCLE = (
    "InService",
    "InService",
    "Creating",
    "InService",
    "Failed",
    "InService",
    "OutOfService",
    "InService",
    "Updating",
)
_SCHEDULE_STATUS_CYCLE = ("Scheduled", "Scheduled", "Stopped", "Scheduled", "Failed", "Scheduled")
_EXECUTION_STATUS_CYCLE = (None, "Completed", "CompletedWithViolations", "Completed", "Failed")
# Tag values with the characters that break naive "k=v,k2=v2" or "k:v" encodings.
_AWKWARD_TAGS = (
    {"Key": "cost-center", "Value": 'ml,platform:42="shared"'},
    {"Key": "owner:email", "Value": "ml-oncall=team@example.com"},
)


# --------------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobDefinitionTruth:
    arn: str
    name: str
    request: dict[str, Any]  # exact Create{T}JobDefinition kwargs (Tags included when sent)
    tags: dict[str, str]
    endpoint_name: str | None  # EndpointInput.EndpointName; None for BatchTransformInput
    batch_transform: bool
    endpoint_exists: bool  # False when EndpointInput names an endpoint that was never created
    monitor_type: str = "ModelQuality"


@dataclass(frozen=True)
class EndpointConfigTruth:
    arn: str
    name: str
    request: dict[str, Any]  # exact CreateEndpointConfig kwargs
    capture_modes: tuple[str, ...]  # CaptureOptions' modes, () without a DataCaptureConfig
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointTruth:
    arn: str
    name: str
    status: str
    config_name: str = ""
    # What DescribeEndpoint reports in DataCaptureConfig; capture_enabled None: no DataCaptureConfig at all.
    capture_enabled: bool | None = None
    capture_status: str | None = None
    sampling_percentage: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleTruth:
    arn: str
    name: str
    status: str
    monitoring_type: str
    job_definition_name: str
    endpoint_name: str | None
    last_execution_status: str | None
    tags: dict[str, str]
    schedule_expression: str = HOURLY
    last_execution_scheduled_time: datetime | None = None  # UTC
    definition_exists: bool = True  # False: its job definition was deleted after it was created


@dataclass(frozen=True)
class RegionTruth:
    account_id: str
    region: str
    definitions: dict[str, list[JobDefinitionTruth]] = field(default_factory=lambda: {t: [] for t in MONITOR_TYPES})
    endpoints: list[EndpointTruth] = field(default_factory=list)
    endpoint_configs: list[EndpointConfigTruth] = field(default_factory=list)
    schedules: list[ScheduleTruth] = field(default_factory=list)  # all monitoring types
    region_disabled: bool = False  # an opt-in region the account has not enabled: SageMaker answers nothing
    tags_denied: bool = False  # ListTags denied by an SCP: resources readable, tags not

    @property
    def job_definitions(self) -> list[JobDefinitionTruth]:
        """The ModelQuality job definitions (the other types: ``definitions_of``)."""
        return self.definitions["ModelQuality"]

    def definitions_of(self, monitor_type: str) -> list[JobDefinitionTruth]:
        return self.definitions[monitor_type]

    @property
    def is_empty(self) -> bool:
        return not (any(self.definitions.values()) or self.endpoints or self.schedules or self.endpoint_configs)

    def schedules_of_type(self, monitoring_type: str = "ModelQuality") -> list[ScheduleTruth]:
        return [s for s in self.schedules if s.monitoring_type == monitoring_type]


@dataclass(frozen=True)
class DemoOrg:
    """What ``seed_demo_org`` created. ``resources`` is keyed by ``(account_id, region)``."""

    management_account_id: str
    member_account_ids: list[str]  # ACTIVE member accounts (management excluded), denied ones included
    denied_account_ids: list[str]  # members without the inventory role: AssumeRole is AccessDenied
    suspended_account_ids: list[str]  # closed accounts; ListAccounts reports Status SUSPENDED
    regions: list[str]
    role_name: str
    account_names: dict[str, str]  # every account id above -> its Organizations name
    resources: dict[tuple[str, str], RegionTruth]  # every active account x region, empty ones included
    seed: int

    @property
    def active_account_ids(self) -> list[str]:
        """What ListAccounts reports ACTIVE: the management account plus the members."""
        return [self.management_account_id, *self.member_account_ids]

    @property
    def collectible_account_ids(self) -> list[str]:
        """Active accounts where ``role_name`` can be assumed (the management account has it too)."""
        return [a for a in self.active_account_ids if a not in self.denied_account_ids]

    def region(self, account_id: str, region: str) -> RegionTruth:
        return self.resources[(account_id, region)]

    def empty_account_regions(self) -> list[tuple[str, str]]:
        return [key for key, truth in self.resources.items() if truth.is_empty]

    def _per_account(self, include_denied: bool) -> dict[str, list[RegionTruth]]:
        accounts = self.active_account_ids if include_denied else self.collectible_account_ids
        return {a: [self.resources[(a, r)] for r in self.regions] for a in accounts}

    def expected_definition_arns(
        self, monitor_type: str = "ModelQuality", *, include_denied: bool = False
    ) -> dict[str, set[str]]:
        """Job definition ARNs of one type per account (every collectible account present, maybe empty)."""
        return {
            a: {d.arn for t in truths for d in t.definitions_of(monitor_type)}
            for a, truths in self._per_account(include_denied).items()
        }

    def expected_endpoint_config_arns(self, *, include_denied: bool = False) -> dict[str, set[str]]:
        return {
            a: {c.arn for t in truths for c in t.endpoint_configs}
            for a, truths in self._per_account(include_denied).items()
        }

    @property
    def tags_denied_account_ids(self) -> list[str]:
        return sorted({a for (a, _), t in self.resources.items() if t.tags_denied})

    @property
    def disabled_regions(self) -> list[tuple[str, str]]:
        return sorted(key for key, t in self.resources.items() if t.region_disabled)

    def expected_endpoint_arns(self, *, include_denied: bool = False) -> dict[str, set[str]]:
        return {
            a: {e.arn for t in truths for e in t.endpoints} for a, truths in self._per_account(include_denied).items()
        }

    def expected_schedule_arns(
        self, monitoring_type: str | None = "ModelQuality", *, include_denied: bool = False
    ) -> dict[str, set[str]]:
        """Schedule ARNs per account, of one monitoring type (``None`` for all types)."""
        return {
            a: {
                s.arn
                for t in truths
                for s in t.schedules
                if monitoring_type is None or s.monitoring_type == monitoring_type
            }
            for a, truths in self._per_account(include_denied).items()
        }

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["resources"] = {f"{a}/{r}": asdict(t) for (a, r), t in self.resources.items()}
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, default=str)


# --------------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------------


def _monitor_image(region: str) -> str:
    registry = _MONITOR_REGISTRY.get(region, _MONITOR_REGISTRY["us-east-1"])
    return f"{registry}.dkr.ecr.{region}.amazonaws.com/sagemaker-model-monitor-analyzer"


class _Clients:
    """One boto3 session for everything, so service models are loaded once (keeps the seed fast)."""

    def __init__(self, endpoint_url: str | None) -> None:
        self._session = boto3.Session()
        self._endpoint_url = endpoint_url

    def client(self, service: str, region: str = "us-east-1", creds: dict[str, str] | None = None) -> Any:
        kwargs: dict[str, Any] = {"region_name": region}
        if self._endpoint_url is not None:
            kwargs["endpoint_url"] = self._endpoint_url
        if creds is not None:
            kwargs.update(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
        return self._session.client(service, **kwargs)


def _trust_policy(management_account_id: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{management_account_id}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


# What the inventory role may do: exactly what the registry's collector calls.
_READ_ONLY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": sorted({f"sagemaker:{op}" for spec in RESOURCE_SPECS for op in spec.api_operations}),
                "Resource": "*",
            }
        ],
    }
)


def endpoint_input(endpoint_name: str, probability: bool = True) -> dict[str, Any]:
    """A ModelQualityJobInput.EndpointInput block (probability attributes for classifiers)."""
    block: dict[str, Any] = {
        "EndpointName": endpoint_name,
        "LocalPath": "/opt/ml/processing/input/endpoint",
        "S3InputMode": "File",
        "S3DataDistributionType": "FullyReplicated",
        "InferenceAttribute": "prediction",
    }
    if probability:
        block |= {"ProbabilityAttribute": "probability", "ProbabilityThresholdAttribute": 0.5}
    return block


def monitoring_output(bucket: str, name: str) -> dict[str, Any]:
    """A ModelQualityJobOutputConfig writing the job's reports under `bucket`/monitoring/`name`."""
    s3 = {"S3Uri": f"{bucket}/monitoring/{name}", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}
    return {"MonitoringOutputs": [{"S3Output": s3}]}


def _create_inventory_role(iam: Any, role_name: str, management_account_id: str) -> None:
    iam.create_role(
        RoleName=role_name,
        AssumeRolePolicyDocument=_trust_policy(management_account_id),
        Description="Read-only SageMaker inventory for sm-assets",
    )
    iam.put_role_policy(RoleName=role_name, PolicyName="sagemaker-inventory-read", PolicyDocument=_READ_ONLY_POLICY)


# Capture variants, cycled over the org's endpoints: (CaptureOptions modes, EnableCapture, what
# DescribeEndpoint reports: CaptureStatus, CurrentSamplingPercentage). Mostly complete capture.
_CAPTURE_CYCLE: tuple[tuple[tuple[str, ...], bool, str | None, int | None], ...] = (
    (("Input", "Output"), True, None, None),
    (("Input", "Output"), True, None, None),
    ((), False, None, None),  # no DataCaptureConfig at all
    (("Input",), True, None, None),
    (("Input", "Output"), True, "Stopped", None),  # capture broke (e.g. its bucket went away)
    (("Output",), True, None, None),
    (("Input", "Output"), True, None, None),
    (("Input", "Output"), False, None, None),  # configured, but EnableCapture false
    (("Input", "Output"), True, None, 0),  # sampling turned down to 0%
)
# Monitors of the other three types, by endpoint (counted org-wide): which types watch it.
_OTHER_MONITORS_CYCLE = (
    ("DataQuality", "ModelBias", "ModelExplainability"),
    ("DataQuality",),
    (),
    ("DataQuality", "ModelExplainability"),
    ("ModelBias",),
)
# (schedule status, last execution status, last run this many intervals ago, definition deleted, expression)
_MONITOR_STATE_CYCLE: tuple[tuple[str, str | None, int, bool, str], ...] = (
    ("Scheduled", "Completed", 0, False, HOURLY),
    ("Scheduled", "CompletedWithViolations", 0, False, EVERY_6_HOURS),
    ("Scheduled", None, 0, False, DAILY),  # never ran
    ("Scheduled", "Completed", 3, False, HOURLY),  # stale: last run 3 hours ago on an hourly schedule
    ("Scheduled", "Failed", 0, False, EVERY_12_HOURS),
    ("Stopped", "Completed", 0, False, HOURLY),
    ("Scheduled", "Completed", 0, True, DAILY),  # its job definition was deleted
    ("Scheduled", "Stopped", 0, False, HOURLY),
    ("Scheduled", "Completed", 3, False, EVERY_6_HOURS),  # stale: 18 hours on a 6-hourly schedule
)
_CLARIFY_IMAGE = "205585389593.dkr.ecr.{region}.amazonaws.com/sagemaker-clarify-processing:1.0"


def _aware(moment: datetime | None) -> datetime | None:
    """moto keeps naive UTC datetimes; the truth holds aware ones."""
    return None if moment is None else moment.replace(tzinfo=UTC)


def schedule_interval(expression: str) -> timedelta:
    """How often a schedule expression runs, as the demo seeds them (the product parses its own)."""
    return {HOURLY: timedelta(hours=1), EVERY_6_HOURS: timedelta(hours=6), EVERY_12_HOURS: timedelta(hours=12)}.get(
        expression, timedelta(days=1)
    )


class _RegionSeeder:
    """Creates one account-region's resources. Counters are org-wide so every variant appears somewhere."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.k = 0  # model quality job definitions so far
        self.e = 0  # endpoints so far
        self.s = 0  # model quality schedules so far
        self.m = 0  # monitors of the other types so far

    def seed(
        self,
        sm: Any,
        account_id: str,
        region: str,
        env: str,
        *,
        n_endpoints: int,
        n_definitions: int,
        with_data_quality: bool,
    ) -> RegionTruth:
        truth = RegionTruth(account_id=account_id, region=region)
        bucket = f"s3://sagemaker-{region}-{account_id}"
        role_arn = f"arn:aws:iam::{account_id}:role/{EXECUTION_ROLE}"
        purposes = self.rng.sample(_PURPOSES, k=min(len(_PURPOSES), max(n_endpoints, 1)))
        endpoint_names = [f"{p}-{env}" for p in purposes[:n_endpoints]]
        for name in endpoint_names:
            endpoint, config = self._endpoint(sm, account_id, region, name, role_arn, bucket)
            truth.endpoints.append(endpoint)
            truth.endpoint_configs.append(config)
        live = {e.name for e in truth.endpoints}

        for j in range(n_definitions):
            purpose = purposes[j % len(purposes)]
            definition = self._definition(
                sm, region, f"mq-{purpose}-{j:02d}", endpoint_names, purpose, env, role_arn, bucket, live
            )
            truth.definitions["ModelQuality"].append(definition)
            k = self.k - 1
            if k % 5 != 4:  # every fifth definition is left unscheduled
                truth.schedules.append(self._schedule(sm, account_id, region, definition))

        for index, endpoint in enumerate(truth.endpoints):
            for monitor_type in _OTHER_MONITORS_CYCLE[(self.e - len(truth.endpoints) + index) % 5]:
                if monitor_type == "DataQuality" and with_data_quality and index == 0:
                    continue  # the big region's first endpoint gets the legacy-shaped one below
                definition, schedule = self._monitor(
                    sm, account_id, region, monitor_type, endpoint.name, role_arn, bucket
                )
                truth.definitions[monitor_type].append(definition)
                truth.schedules.append(schedule)
        if with_data_quality and endpoint_names:
            definition, schedule = self._data_quality(sm, account_id, region, endpoint_names[0], role_arn, bucket)
            truth.definitions["DataQuality"].append(definition)
            truth.schedules.append(schedule)
        for schedule in truth.schedules:
            if not schedule.definition_exists:
                getattr(sm, f"delete_{snake(schedule.monitoring_type)}_job_definition")(
                    JobDefinitionName=schedule.job_definition_name
                )
                kept = [
                    d for d in truth.definitions[schedule.monitoring_type] if d.name != schedule.job_definition_name
                ]
                truth.definitions[schedule.monitoring_type][:] = kept
        return truth

    def _endpoint(
        self, sm: Any, account_id: str, region: str, name: str, role_arn: str, bucket: str
    ) -> tuple[EndpointTruth, EndpointConfigTruth]:
        model = f"{name}-model"
        sm.create_model(
            ModelName=model,
            ExecutionRoleArn=role_arn,
            PrimaryContainer={
                "Image": f"683313688378.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:1.7-1",
                "ModelDataUrl": f"{bucket}/models/{name}/model.tar.gz",
            },
        )
        modes, enabled, capture_status, sampling = _CAPTURE_CYCLE[self.e % len(_CAPTURE_CYCLE)]
        config_request: dict[str, Any] = {
            "EndpointConfigName": f"{name}-config",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": model,
                    "InitialInstanceCount": 1 + self.e % 2,
                    "InstanceType": "ml.m5.large",
                    "InitialVariantWeight": 1.0,
                }
            ],
        }
        if modes:
            config_request["DataCaptureConfig"] = {
                "EnableCapture": enabled,
                "InitialSamplingPercentage": 100 if self.e % 4 else 20,
                "DestinationS3Uri": f"{bucket}/datacapture/{name}",
                "CaptureOptions": [{"CaptureMode": mode} for mode in modes],
            }
        if self.e % 3 == 1:
            config_request["KmsKeyId"] = f"arn:aws:kms:{region}:{account_id}:key/{self.rng.getrandbits(128):032x}"
        if self.e % 4 == 2:
            config_request["EnableNetworkIsolation"] = True
        config_tags = [{"Key": "team", "Value": self.rng.choice(_TEAMS)}] if self.e % 2 else []
        config_arn = sm.create_endpoint_config(**copy.deepcopy(config_request), Tags=config_tags)["EndpointConfigArn"]
        tags = [{"Key": "team", "Value": self.rng.choice(_TEAMS)}] if self.e % 3 != 2 else []
        arn = sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config", Tags=tags)["EndpointArn"]
        status = _ENDPOINT_STATUS_CYCLE[self.e % len(_ENDPOINT_STATUS_CYCLE)]
        self.e += 1
        set_endpoint_status(account_id, region, name, status)
        if capture_status is not None or sampling is not None:
            set_endpoint_capture(account_id, region, name, capture_status=capture_status, sampling_percentage=sampling)
        reported_status = capture_status or ("Started" if enabled else "Stopped")
        reported_sampling = (
            sampling
            if sampling is not None
            else config_request.get("DataCaptureConfig", {}).get("InitialSamplingPercentage")
        )
        endpoint = EndpointTruth(
            arn=arn,
            name=name,
            status=status,
            config_name=f"{name}-config",
            capture_enabled=enabled if modes else None,
            capture_status=reported_status if modes else None,
            sampling_percentage=reported_sampling if modes else None,
            tags={t["Key"]: t["Value"] for t in tags},
        )
        config = EndpointConfigTruth(
            arn=config_arn,
            name=f"{name}-config",
            request=config_request,
            capture_modes=modes,
            tags={t["Key"]: t["Value"] for t in config_tags},
        )
        return endpoint, config

    def _definition(
        self,
        sm: Any,
        region: str,
        name: str,
        endpoint_names: list[str],
        purpose: str,
        env: str,
        role_arn: str,
        bucket: str,
        live: set[str],
    ) -> JobDefinitionTruth:
        k, rng = self.k, self.rng
        self.k += 1
        batch = k % 7 == 3
        endpoint_name: str | None = None
        if batch:
            job_input: dict[str, Any] = {
                "BatchTransformInput": {
                    "DataCapturedDestinationS3Uri": f"{bucket}/batch-capture/{purpose}",
                    "DatasetFormat": {"Csv": {"Header": True}},
                    "LocalPath": "/opt/ml/processing/input/batch",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                    "InferenceAttribute": "0",
                    "ProbabilityAttribute": "1",
                    "ProbabilityThresholdAttribute": 0.5,
                },
            }
        else:
            # Some definitions outlive their endpoint (deleted or renamed): EndpointInput names nothing.
            endpoint_name = f"{purpose}-{env}-retired" if k % 7 == 5 else rng.choice(endpoint_names)
            job_input = {"EndpointInput": endpoint_input(endpoint_name)}
        job_input["GroundTruthS3Input"] = {"S3Uri": f"{bucket}/ground-truth/{purpose}"}

        output = monitoring_output(bucket, name)
        kms = f"arn:aws:kms:{region}:{role_arn.split(':')[4]}:key/{rng.getrandbits(128):032x}"
        if k % 3 == 1:
            output["KmsKeyId"] = kms
        cluster: dict[str, Any] = {
            "InstanceCount": 2 + k % 3 if k % 4 == 3 else 1,
            "InstanceType": rng.choice(("ml.m5.xlarge", "ml.m5.large", "ml.c5.xlarge")),
            "VolumeSizeInGB": rng.choice((20, 30, 50)),
        }
        if k % 5 in (1, 2):
            cluster["VolumeKmsKeyId"] = kms
        request: dict[str, Any] = {
            "JobDefinitionName": name,
            "ModelQualityAppSpecification": {
                "ImageUri": _monitor_image(region),
                "ProblemType": _PROBLEM_TYPES[k % len(_PROBLEM_TYPES)],
            },
            "ModelQualityJobInput": job_input,
            "ModelQualityJobOutputConfig": output,
            "JobResources": {"ClusterConfig": cluster},
            "RoleArn": role_arn,
        }
        if k % 3 != 0:
            request["ModelQualityBaselineConfig"] = {
                "BaseliningJobName": f"{name}-baseline",
                "ConstraintsResource": {"S3Uri": f"{bucket}/baselines/{name}/constraints.json"},
            }
        network = k % 4  # 0: no NetworkConfig; otherwise three different shapes
        if network:
            net: dict[str, Any] = {
                "EnableInterContainerTrafficEncryption": network != 3,
                "EnableNetworkIsolation": network == 1,
            }
            if network in (1, 3):
                net["VpcConfig"] = {
                    "SecurityGroupIds": [f"sg-{rng.getrandbits(68):017x}"],
                    "Subnets": [f"subnet-{rng.getrandbits(68):017x}" for _ in range(2)],
                }
            request["NetworkConfig"] = net
        if k % 2 == 0:
            request["StoppingCondition"] = {"MaxRuntimeInSeconds": rng.choice((1800, 3600))}
        tags: list[dict[str, str]] = []
        if k % 6 != 5:
            if k % 5 != 2:
                tags.append({"Key": "team", "Value": rng.choice(_TEAMS)})
            tags.append({"Key": "env", "Value": env})
            if k % 11 == 1:
                tags.extend(copy.deepcopy(_AWKWARD_TAGS))
            request["Tags"] = tags
        arn = sm.create_model_quality_job_definition(**copy.deepcopy(request))["JobDefinitionArn"]
        return JobDefinitionTruth(
            arn=arn,
            name=name,
            request=request,
            tags={t["Key"]: t["Value"] for t in tags},
            endpoint_name=endpoint_name,
            batch_transform=batch,
            endpoint_exists=endpoint_name in live if endpoint_name else False,
        )

    def _schedule(self, sm: Any, account_id: str, region: str, definition: JobDefinitionTruth) -> ScheduleTruth:
        s = self.s
        self.s += 1
        name = f"{definition.name}-{'hourly' if s % 3 else 'daily'}"
        tags = [{"Key": "team", "Value": definition.tags["team"]}] if "team" in definition.tags else []
        arn = sm.create_monitoring_schedule(
            MonitoringScheduleName=name,
            MonitoringScheduleConfig={
                "ScheduleConfig": {"ScheduleExpression": HOURLY if s % 3 else DAILY},
                "MonitoringJobDefinitionName": definition.name,
                "MonitoringType": "ModelQuality",
            },
            Tags=tags,
        )["MonitoringScheduleArn"]
        status = _SCHEDULE_STATUS_CYCLE[s % len(_SCHEDULE_STATUS_CYCLE)]
        last = _EXECUTION_STATUS_CYCLE[s % len(_EXECUTION_STATUS_CYCLE)]
        scheduled_at = None
        if status != "Scheduled" or last is not None:
            scheduled_at = set_monitoring_schedule_state(
                account_id, region, name, status=status, last_execution_status=last
            )
        return ScheduleTruth(
            arn=arn,
            name=name,
            status=status,
            monitoring_type="ModelQuality",
            job_definition_name=definition.name,
            endpoint_name=definition.endpoint_name,
            last_execution_status=last,
            tags={t["Key"]: t["Value"] for t in tags},
            schedule_expression=HOURLY if s % 3 else DAILY,
            last_execution_scheduled_time=_aware(scheduled_at) if last is not None else None,
        )

    def _monitor(
        self, sm: Any, account_id: str, region: str, monitor_type: str, endpoint_name: str, role_arn: str, bucket: str
    ) -> tuple[JobDefinitionTruth, ScheduleTruth]:
        """A DataQuality, ModelBias or ModelExplainability definition on ``endpoint_name`` and its schedule, in
        the org-wide next state of _MONITOR_STATE_CYCLE."""
        m = self.m
        self.m += 1
        status, last, intervals_ago, deleted, expression = _MONITOR_STATE_CYCLE[m % len(_MONITOR_STATE_CYCLE)]
        prefix = {"DataQuality": "dq", "ModelBias": "mb", "ModelExplainability": "me"}[monitor_type]
        name = f"{prefix}-{endpoint_name}"
        clarify = monitor_type != "DataQuality"
        app: dict[str, Any] = {
            "ImageUri": (_CLARIFY_IMAGE if clarify else "{image}").format(region=region, image=_monitor_image(region))
        }
        if clarify:
            app["ConfigUri"] = f"{bucket}/clarify/{name}/analysis_config.json"
        job_input: dict[str, Any] = {"EndpointInput": endpoint_input(endpoint_name, probability=False)}
        if monitor_type == "ModelBias":
            job_input["GroundTruthS3Input"] = {"S3Uri": f"{bucket}/ground-truth/{endpoint_name}"}
        request: dict[str, Any] = {
            "JobDefinitionName": name,
            f"{monitor_type}AppSpecification": app,
            f"{monitor_type}JobInput": job_input,
            f"{monitor_type}JobOutputConfig": monitoring_output(bucket, name),
            "JobResources": {
                "ClusterConfig": {"InstanceCount": 1 + m % 3, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}
            },
            "RoleArn": role_arn,
        }
        if m % 2 == 0:
            request[f"{monitor_type}BaselineConfig"] = {
                "ConstraintsResource": {"S3Uri": f"{bucket}/baselines/{name}/constraints.json"}
            }
        if m % 3:
            request["NetworkConfig"] = {
                "EnableInterContainerTrafficEncryption": m % 3 == 1,
                "EnableNetworkIsolation": m % 4 != 3,
            }
        if m % 2:
            request["StoppingCondition"] = {"MaxRuntimeInSeconds": 3600}
        tags = [{"Key": "team", "Value": self.rng.choice(_TEAMS)}] if m % 4 else []
        if tags:
            request["Tags"] = tags
        arn = getattr(sm, f"create_{snake(monitor_type)}_job_definition")(**copy.deepcopy(request))["JobDefinitionArn"]
        definition = JobDefinitionTruth(
            arn=arn,
            name=name,
            request=request,
            tags={t["Key"]: t["Value"] for t in tags},
            endpoint_name=endpoint_name,
            batch_transform=False,
            endpoint_exists=True,
            monitor_type=monitor_type,
        )
        schedule_name = f"{name}-monitor"
        schedule_arn = sm.create_monitoring_schedule(
            MonitoringScheduleName=schedule_name,
            MonitoringScheduleConfig={
                "ScheduleConfig": {"ScheduleExpression": expression},
                "MonitoringJobDefinitionName": name,
                "MonitoringType": monitor_type,
            },
            Tags=tags,
        )["MonitoringScheduleArn"]
        scheduled_at = None
        if status != "Scheduled" or last is not None:
            ago = intervals_ago * schedule_interval(expression)
            scheduled_at = set_monitoring_schedule_state(
                account_id, region, schedule_name, status=status, last_execution_status=last, scheduled_ago=ago
            )
        schedule = ScheduleTruth(
            arn=schedule_arn,
            name=schedule_name,
            status=status,
            monitoring_type=monitor_type,
            job_definition_name=name,
            endpoint_name=endpoint_name,
            last_execution_status=last,
            tags={t["Key"]: t["Value"] for t in tags},
            schedule_expression=expression,
            last_execution_scheduled_time=_aware(scheduled_at) if last is not None else None,
            definition_exists=not deleted,
        )
        return definition, schedule

    def _data_quality(
        self, sm: Any, account_id: str, region: str, endpoint_name: str, role_arn: str, bucket: str
    ) -> tuple[JobDefinitionTruth, ScheduleTruth]:
        """A minimal DataQuality definition (no optional block, no tags) and its working hourly schedule."""
        name = f"dq-{endpoint_name}"
        request: dict[str, Any] = {
            "JobDefinitionName": name,
            "DataQualityAppSpecification": {"ImageUri": _monitor_image(region)},
            "DataQualityJobInput": {
                "EndpointInput": {"EndpointName": endpoint_name, "LocalPath": "/opt/ml/processing/input"},
            },
            "DataQualityJobOutputConfig": {
                "MonitoringOutputs": [
                    {"S3Output": {"S3Uri": f"{bucket}/dq/{endpoint_name}", "LocalPath": "/opt/ml/processing/output"}}
                ],
            },
            "JobResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 20},
            },
            "RoleArn": role_arn,
        }
        arn = sm.create_data_quality_job_definition(**copy.deepcopy(request))["JobDefinitionArn"]
        definition = JobDefinitionTruth(
            arn=arn,
            name=name,
            request=request,
            tags={},
            endpoint_name=endpoint_name,
            batch_transform=False,
            endpoint_exists=True,
            monitor_type="DataQuality",
        )
        schedule_name = f"{name}-hourly"
        schedule_arn = sm.create_monitoring_schedule(
            MonitoringScheduleName=schedule_name,
            MonitoringScheduleConfig={
                "ScheduleConfig": {"ScheduleExpression": HOURLY},
                "MonitoringJobDefinitionName": name,
                "MonitoringType": "DataQuality",
            },
        )["MonitoringScheduleArn"]
        scheduled_at = set_monitoring_schedule_state(
            account_id, region, schedule_name, last_execution_status="Completed"
        )
        schedule = ScheduleTruth(
            arn=schedule_arn,
            name=schedule_name,
            status="Scheduled",
            monitoring_type="DataQuality",
            job_definition_name=name,
            endpoint_name=endpoint_name,
            last_execution_status="Completed",
            tags={},
            schedule_expression=HOURLY,
            last_execution_scheduled_time=_aware(scheduled_at),
        )
        return definition, schedule


def _account_names(count: int) -> list[str]:
    base = list(_ACCOUNT_NAMES[:-1])
    extra = [f"ml-prod-{i}" for i in range(3, 3 + max(0, count - 1 - len(base)))]
    return [*(base + extra)[: count - 1], _ACCOUNT_NAMES[-1]]  # the role-missing account is always last


def seed_demo_org(
    endpoint_url: str | None,
    regions: Sequence[str] = DEFAULT_REGIONS,
    role_name: str = "SageMakerInventoryReadOnly",
    accounts: int = 8,
    seed: int = 7,
) -> DemoOrg:
    """Create an organization with ``accounts`` active members (+1 suspended) and return the ground truth.

    Needs a fresh fake AWS (no organization yet) whose backends live in this process. Management credentials
    are whatever boto3 finds (moto's default account 123456789012 for the usual fake ``testing`` keys).
    """
    if accounts < 3:
        # one big account, one with an empty region, one denied
        raise ValueError("need at least 3 member accounts")
    if not regions:
        raise ValueError("need at least one region")
    install_moto_extensions()
    regions = list(regions)
    rng = random.Random(seed)
    clients = _Clients(endpoint_url)

    org = clients.client("organizations")
    try:
        management = org.create_organization(FeatureSet="ALL")["Organization"]["MasterAccountId"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "AlreadyInOrganizationException":
            raise RuntimeError("seed_demo_org needs a fresh fake AWS (an organization exists)") from exc
        raise
    _create_inventory_role(clients.client("iam"), role_name, management)

    names = _account_names(accounts)
    # Organizations names the management account itself; record whatever the fake reports.
    account_names = {management: org.describe_account(AccountId=management)["Account"]["Name"]}
    members: list[str] = []
    for name in names:
        status = org.create_account(AccountName=name, Email=f"aws+{name}@example.com")["CreateAccountStatus"]
        members.append(status["AccountId"])
        account_names[status["AccountId"]] = name
    denied = [members[-1]]

    closed = org.create_account(AccountName=_SUSPENDED_NAME, Email=f"aws+{_SUSPENDED_NAME}@example.com")
    suspended_id = closed["CreateAccountStatus"]["AccountId"]
    org.close_account(AccountId=suspended_id)
    account_names[suspended_id] = _SUSPENDED_NAME

    resources: dict[tuple[str, str], RegionTruth] = {
        (management, r): RegionTruth(account_id=management, region=r) for r in regions
    }
    sts = clients.client("sts")
    seeder = _RegionSeeder(rng)
    big = (members[0], regions[0])  # more than one page of schedules (AWS default page size is 10)
    empty = (members[1], regions[-1])  # a reachable account-region with nothing in it
    # an SCP denies ListTags: resources readable, tags not (never the account without the role)
    tags_denied = members[2] if len(members) > 3 else None
    # An opt-in region this account has not enabled (the demo plays it with one of its regions).
    disabled = (members[3], regions[-1]) if len(regions) > 1 and len(members) > 4 else None
    for account_id, name in zip(members, names, strict=True):
        creds = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/{ORG_ACCESS_ROLE}", RoleSessionName=SESSION_NAME
        )["Credentials"]
        iam = clients.client("iam", creds=creds)
        iam.create_role(
            RoleName=EXECUTION_ROLE,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        if account_id not in denied:
            _create_inventory_role(iam, role_name, management)
        env = "prod" if "prod" in name else "staging" if "staging" in name else "dev"
        for region in regions:
            key = (account_id, region)
            if key == empty:
                resources[key] = RegionTruth(account_id=account_id, region=region)
                continue
            if key == disabled:
                disable_region(account_id, region)  # nothing can exist there
                resources[key] = RegionTruth(account_id=account_id, region=region, region_disabled=True)
                continue
            is_big = key == big
            resources[key] = seeder.seed(
                clients.client("sagemaker", region, creds),
                account_id,
                region,
                env,
                n_endpoints=5 if is_big else rng.randint(1, 4),
                n_definitions=14 if is_big else rng.randint(1, 5),
                with_data_quality=is_big,
            )

    if tags_denied is not None:
        deny_list_tags(tags_denied, regions)
        for region in regions:
            resources[(tags_denied, region)] = dataclasses.replace(resources[(tags_denied, region)], tags_denied=True)
    return DemoOrg(
        management_account_id=management,
        member_account_ids=members,
        denied_account_ids=denied,
        suspended_account_ids=[suspended_id],
        regions=regions,
        role_name=role_name,
        account_names=account_names,
        resources=resources,
        seed=seed,
    )

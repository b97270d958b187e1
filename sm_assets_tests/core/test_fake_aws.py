"""The fake AWS behaves like AWS where sm-assets depends on it, and the demo seed matches its own truth."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sm_assets.core.specs import MONITOR_TYPES
from sm_assets.demo.fake_aws import (
    fake_aws_server,
    install_moto_extensions,
    set_endpoint_status,
    set_monitoring_schedule_state,
)
from sm_assets.demo.seed import DemoOrg, RegionTruth, seed_demo_org

MANAGEMENT = "123456789012"  # moto's default account
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{MANAGEMENT}:role/monitor"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        # Never read a developer's real profile or credentials.
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def aws(aws_env: None) -> Iterator[None]:
    install_moto_extensions()
    with mock_aws():
        yield


def _sm(creds: dict[str, str] | None = None, region: str = REGION) -> Any:
    if creds is None:
        return boto3.client("sagemaker", region_name=region)
    return boto3.client(
        "sagemaker",
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _endpoint(sm: Any, name: str) -> str:
    sm.create_model(ModelName=f"{name}-m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img:1"})
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-c",
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": f"{name}-m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    return sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")["EndpointArn"]


def _mq_request(name: str, endpoint: str | None = "ep", **extra: Any) -> dict[str, Any]:
    job_input: dict[str, Any] = {"GroundTruthS3Input": {"S3Uri": "s3://b/gt"}}
    if endpoint is None:
        job_input["BatchTransformInput"] = {
            "DataCapturedDestinationS3Uri": "s3://b/capture",
            "DatasetFormat": {"Csv": {"Header": True}},
            "LocalPath": "/opt/ml/processing/input/batch",
            "S3InputMode": "File",
            "InferenceAttribute": "0",
            "ProbabilityThresholdAttribute": 0.5,
        }
    else:
        job_input["EndpointInput"] = {
            "EndpointName": endpoint,
            "LocalPath": "/opt/ml/processing/input",
            "InferenceAttribute": "prediction",
        }
    return {
        "JobDefinitionName": name,
        "ModelQualityAppSpecification": {"ImageUri": "img:analyzer", "ProblemType": "BinaryClassification"},
        "ModelQualityJobInput": job_input,
        "ModelQualityJobOutputConfig": {
            "MonitoringOutputs": [{"S3Output": {"S3Uri": "s3://b/out", "LocalPath": "/opt/ml/processing/out"}}],
        },
        "JobResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}},
        "RoleArn": ROLE,
        **extra,
    }


def _schedule(sm: Any, name: str, definition: str, monitoring_type: str = "ModelQuality", **kw: Any) -> str:
    return sm.create_monitoring_schedule(
        MonitoringScheduleName=name,
        MonitoringScheduleConfig={
            "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
            "MonitoringJobDefinitionName": definition,
            "MonitoringType": monitoring_type,
        },
        **kw,
    )["MonitoringScheduleArn"]


def _all_schedules(sm: Any, **filters: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in sm.get_paginator("list_monitoring_schedules").paginate(**filters):
        out.extend(page["MonitoringScheduleSummaries"])
    return out


def _assume(role_arn: str, **client_kw: Any) -> dict[str, str]:
    sts = boto3.client("sts", region_name=REGION, **client_kw)
    return sts.assume_role(RoleArn=role_arn, RoleSessionName="tests")["Credentials"]


# --------------------------------------------------------------------------------------------------
# Monitoring schedules
# --------------------------------------------------------------------------------------------------


def test_install_is_idempotent(aws: None) -> None:
    from moto.sts.responses import TokenResponse

    before = TokenResponse.assume_role
    install_moto_extensions()
    install_moto_extensions()
    assert TokenResponse.assume_role is before  # not wrapped twice
    with pytest.raises(ClientError) as err:  # still exactly one AccessDenied check, no recursion
        _assume("arn:aws:iam::111111111111:role/Nope")
    assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_schedule_create_describe_tags_delete(aws: None) -> None:
    sm = _sm()
    _endpoint(sm, "churn")
    sm.create_model_quality_job_definition(**_mq_request("mq-churn", "churn"))
    config = {
        "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
        "MonitoringJobDefinitionName": "mq-churn",
        "MonitoringType": "ModelQuality",
    }
    tags = [{"Key": "team", "Value": "risk"}, {"Key": "note", "Value": 'a,b:c="d"'}]
    arn = sm.create_monitoring_schedule(
        MonitoringScheduleName="mq-churn-hourly", MonitoringScheduleConfig=config, Tags=tags
    )["MonitoringScheduleArn"]
    assert arn == f"arn:aws:sagemaker:{REGION}:{MANAGEMENT}:monitoring-schedule/mq-churn-hourly"

    described = sm.describe_monitoring_schedule(MonitoringScheduleName="mq-churn-hourly")
    described.pop("ResponseMetadata")
    assert set(described) == {
        "MonitoringScheduleArn",
        "MonitoringScheduleName",
        "MonitoringScheduleStatus",
        "MonitoringType",
        "CreationTime",
        "LastModifiedTime",
        "MonitoringScheduleConfig",
        "EndpointName",
    }  # no FailureReason / LastMonitoringExecutionSummary until something happened
    assert described["MonitoringScheduleStatus"] == "Scheduled"
    assert described["MonitoringType"] == "ModelQuality"
    assert described["MonitoringScheduleConfig"] == config
    assert described["EndpointName"] == "churn"  # derived from the job definition's EndpointInput

    assert sm.list_tags(ResourceArn=arn)["Tags"] == tags
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "env", "Value": "prod"}])
    assert {t["Key"] for t in sm.list_tags(ResourceArn=arn)["Tags"]} == {"team", "note", "env"}

    with pytest.raises(ClientError) as dup:
        sm.create_monitoring_schedule(MonitoringScheduleName="mq-churn-hourly", MonitoringScheduleConfig=config)
    assert dup.value.response["Error"]["Code"] == "ResourceInUse"

    sm.delete_monitoring_schedule(MonitoringScheduleName="mq-churn-hourly")
    for call in (sm.describe_monitoring_schedule, sm.delete_monitoring_schedule):
        with pytest.raises(ClientError) as gone:
            call(MonitoringScheduleName="mq-churn-hourly")
        assert gone.value.response["Error"]["Code"] == "ResourceNotFound"
        assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert sm.list_monitoring_schedules()["MonitoringScheduleSummaries"] == []


def test_list_schedules_paginates_and_filters(aws: None) -> None:
    sm = _sm()
    _endpoint(sm, "a")
    _endpoint(sm, "b")
    sm.create_model_quality_job_definition(**_mq_request("mq-a", "a"))
    sm.create_model_quality_job_definition(**_mq_request("mq-b", "b"))
    sm.create_data_quality_job_definition(
        JobDefinitionName="dq-a",
        DataQualityAppSpecification={"ImageUri": "img:analyzer"},
        DataQualityJobInput={"EndpointInput": {"EndpointName": "a", "LocalPath": "/opt/ml/processing/input"}},
        DataQualityJobOutputConfig={"MonitoringOutputs": [{"S3Output": {"S3Uri": "s3://b/dq", "LocalPath": "/o"}}]},
        JobResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 20}},
        RoleArn=ROLE,
    )
    mq_a = {_schedule(sm, f"mq-a-{i:02d}", "mq-a") for i in range(14)}
    mq_b = {_schedule(sm, f"mq-b-{i:02d}", "mq-b") for i in range(9)}
    dq = {_schedule(sm, f"dq-a-{i}", "dq-a", "DataQuality") for i in range(2)}

    first = sm.list_monitoring_schedules()
    assert len(first["MonitoringScheduleSummaries"]) == 10  # AWS's default page size
    assert first["NextToken"]
    everything = _all_schedules(sm)
    assert len(everything) == 25
    assert {s["MonitoringScheduleArn"] for s in everything} == mq_a | mq_b | dq  # no dupes, none lost
    small_pages = list(sm.get_paginator("list_monitoring_schedules").paginate(PaginationConfig={"PageSize": 7}))
    assert [len(p["MonitoringScheduleSummaries"]) for p in small_pages] == [7, 7, 7, 4]

    names = [s["MonitoringScheduleName"] for s in everything]
    assert len(set(names)) == 25
    created_desc = [s["CreationTime"] for s in everything]
    assert created_desc == sorted(created_desc, reverse=True)  # AWS default: CreationTime, Descending

    model_quality = _all_schedules(sm, MonitoringTypeEquals="ModelQuality")
    assert {s["MonitoringScheduleArn"] for s in model_quality} == mq_a | mq_b
    assert all(s["MonitoringType"] == "ModelQuality" for s in model_quality)
    assert {s["MonitoringScheduleArn"] for s in _all_schedules(sm, MonitoringTypeEquals="DataQuality")} == dq

    on_a = _all_schedules(sm, EndpointName="a")
    assert {s["MonitoringScheduleArn"] for s in on_a} == mq_a | dq
    by_def = _all_schedules(sm, MonitoringJobDefinitionName="mq-b")
    assert {s["MonitoringScheduleArn"] for s in by_def} == mq_b
    assert {s["MonitoringJobDefinitionName"] for s in by_def} == {"mq-b"}

    set_monitoring_schedule_state(MANAGEMENT, REGION, "mq-b-03", status="Stopped")
    set_monitoring_schedule_state(MANAGEMENT, REGION, "mq-a-05", status="Failed", failure_reason="boom")
    assert [s["MonitoringScheduleName"] for s in _all_schedules(sm, StatusEquals="Stopped")] == ["mq-b-03"]
    failed = _all_schedules(sm, StatusEquals="Failed", MonitoringTypeEquals="ModelQuality", EndpointName="a")
    assert [s["MonitoringScheduleName"] for s in failed] == ["mq-a-05"]

    by_name = _all_schedules(sm, SortBy="Name", SortOrder="Ascending")
    assert [s["MonitoringScheduleName"] for s in by_name] == sorted(names)

    with pytest.raises(ClientError):  # a token from one query is not valid for another
        sm.list_monitoring_schedules(NextToken=first["NextToken"], MonitoringTypeEquals="DataQuality")


def test_schedule_state_helper_sets_last_execution(aws: None) -> None:
    sm = _sm()
    _endpoint(sm, "ltv")
    sm.create_model_quality_job_definition(**_mq_request("mq-ltv", "ltv"))
    _schedule(sm, "mq-ltv-hourly", "mq-ltv")

    set_monitoring_schedule_state(MANAGEMENT, REGION, "mq-ltv-hourly", last_execution_status="CompletedWithViolations")
    ok = sm.describe_monitoring_schedule(MonitoringScheduleName="mq-ltv-hourly")
    summary = ok["LastMonitoringExecutionSummary"]
    assert ok["MonitoringScheduleStatus"] == "Scheduled"
    assert "FailureReason" not in ok and "FailureReason" not in summary
    assert summary["MonitoringExecutionStatus"] == "CompletedWithViolations"
    assert summary["MonitoringScheduleName"] == "mq-ltv-hourly"
    assert summary["EndpointName"] == "ltv"
    assert summary["ProcessingJobArn"].startswith(f"arn:aws:sagemaker:{REGION}:{MANAGEMENT}:processing-job/")
    assert summary["ScheduledTime"] <= summary["CreationTime"]
    assert ok["LastModifiedTime"] >= ok["CreationTime"]

    set_monitoring_schedule_state(
        MANAGEMENT,
        REGION,
        "mq-ltv-hourly",
        status="Failed",
        last_execution_status="Failed",
        failure_reason="no ground truth",
    )
    bad = sm.describe_monitoring_schedule(MonitoringScheduleName="mq-ltv-hourly")
    assert bad["MonitoringScheduleStatus"] == "Failed"
    assert bad["FailureReason"] == "no ground truth"
    assert bad["LastMonitoringExecutionSummary"]["MonitoringExecutionStatus"] == "Failed"
    assert bad["LastMonitoringExecutionSummary"]["FailureReason"] == "no ground truth"

    with pytest.raises(ValueError):
        set_monitoring_schedule_state(MANAGEMENT, REGION, "mq-ltv-hourly", status="Running")


def test_endpoint_status_helper(aws: None) -> None:
    sm = _sm()
    _endpoint(sm, "ep1")
    for status in ("Creating", "Failed", "OutOfService", "Updating", "InService"):
        set_endpoint_status(MANAGEMENT, REGION, "ep1", status)
        assert sm.describe_endpoint(EndpointName="ep1")["EndpointStatus"] == status
        assert [e["EndpointStatus"] for e in sm.list_endpoints()["Endpoints"]] == [status]
    set_endpoint_status(MANAGEMENT, REGION, "ep1", "Failed")
    assert sm.describe_endpoint(EndpointName="ep1")["FailureReason"]
    with pytest.raises(ValueError):
        set_endpoint_status(MANAGEMENT, REGION, "ep1", "Sleeping")
    with pytest.raises(LookupError):
        set_endpoint_status(MANAGEMENT, REGION, "nope", "InService")


# --------------------------------------------------------------------------------------------------
# Model quality job definitions
# --------------------------------------------------------------------------------------------------


def test_batch_transform_definition_round_trips(aws: None) -> None:
    sm = _sm()
    request = _mq_request("mq-batch", endpoint=None)
    arn = sm.create_model_quality_job_definition(**request)["JobDefinitionArn"]

    described = sm.describe_model_quality_job_definition(JobDefinitionName="mq-batch")
    described.pop("ResponseMetadata")
    assert described["ModelQualityJobInput"] == request["ModelQualityJobInput"]
    assert described["JobDefinitionArn"] == arn
    # Absent optional blocks stay absent (moto alone returns them as null).
    for absent in ("ModelQualityBaselineConfig", "NetworkConfig", "StoppingCondition"):
        assert absent not in described
    for key in ("ModelQualityAppSpecification", "ModelQualityJobOutputConfig", "JobResources", "RoleArn"):
        assert described[key] == request[key]

    [summary] = sm.list_model_quality_job_definitions()["JobDefinitionSummaries"]
    assert summary["MonitoringJobDefinitionArn"] == arn
    assert "EndpointName" not in summary
    assert sm.list_tags(ResourceArn=arn)["Tags"] == []


def test_full_definition_round_trips_verbatim(aws: None) -> None:
    sm = _sm()
    request = _mq_request(
        "mq-full",
        "missing-endpoint",  # AWS does not check the endpoint exists at create time
        ModelQualityBaselineConfig={
            "BaseliningJobName": "bl",
            "ConstraintsResource": {"S3Uri": "s3://b/c.json"},
        },
        NetworkConfig={
            "EnableInterContainerTrafficEncryption": False,
            "EnableNetworkIsolation": True,
            "VpcConfig": {
                "SecurityGroupIds": ["sg-0123456789abcdef0"],
                "Subnets": ["subnet-0123456789abcdef0"],
            },
        },
        StoppingCondition={"MaxRuntimeInSeconds": 1800},
        Tags=[{"Key": "team", "Value": 'x=1,y:2 "q"'}],
    )
    request["ModelQualityJobOutputConfig"]["KmsKeyId"] = "arn:aws:kms:us-east-1:123456789012:key/k1"
    request["JobResources"]["ClusterConfig"].update(InstanceCount=3, VolumeKmsKeyId="alias/vol")
    arn = sm.create_model_quality_job_definition(**request)["JobDefinitionArn"]

    described = sm.describe_model_quality_job_definition(JobDefinitionName="mq-full")
    for key, value in request.items():
        if key != "Tags":
            assert described[key] == value, key
    assert sm.list_tags(ResourceArn=arn)["Tags"] == request["Tags"]
    [summary] = sm.list_model_quality_job_definitions(EndpointName="missing-endpoint")["JobDefinitionSummaries"]
    assert summary["EndpointName"] == "missing-endpoint"


# --------------------------------------------------------------------------------------------------
# STS
# --------------------------------------------------------------------------------------------------


def test_assume_role_requires_the_role_to_exist(aws: None) -> None:
    member = "111111111111"
    admin = _assume(f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole")  # always allowed
    iam = boto3.client(
        "iam",
        aws_access_key_id=admin["AccessKeyId"],
        aws_secret_access_key=admin["SecretAccessKey"],
        aws_session_token=admin["SessionToken"],
    )
    iam.create_role(RoleName="Inventory", AssumeRolePolicyDocument="{}")

    creds = _assume(f"arn:aws:iam::{member}:role/Inventory")
    identity = boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    ).get_caller_identity()
    assert identity["Account"] == member
    assert identity["Arn"] == f"arn:aws:sts::{member}:assumed-role/Inventory/tests"

    missing = f"arn:aws:iam::{member}:role/NotDeployedHere"
    with pytest.raises(ClientError) as err:
        _assume(missing)
    error = err.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert error["Type"] == "Sender"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Message"] == (
        f"User: arn:aws:iam::{MANAGEMENT}:user/moto is not authorized to perform: sts:AssumeRole on resource: {missing}"
    )
    # The role existing in *another* account does not help.
    with pytest.raises(ClientError) as other:
        _assume("arn:aws:iam::222222222222:role/Inventory")
    assert other.value.response["Error"]["Code"] == "AccessDenied"


def test_assumed_credentials_only_see_their_account(aws: None) -> None:
    a = _assume("arn:aws:iam::111111111111:role/OrganizationAccountAccessRole")
    b = _assume("arn:aws:iam::222222222222:role/OrganizationAccountAccessRole")
    arn = _endpoint(_sm(a), "only-in-a")
    sm_a = _sm(a)
    sm_a.create_model_quality_job_definition(**_mq_request("mq-a", "only-in-a"))
    _schedule(sm_a, "mq-a-hourly", "mq-a")

    assert arn.split(":")[4] == "111111111111"
    assert [e["EndpointArn"] for e in sm_a.list_endpoints()["Endpoints"]] == [arn]
    assert len(sm_a.list_monitoring_schedules()["MonitoringScheduleSummaries"]) == 1
    for other in (_sm(b), _sm(), _sm(a, region="eu-west-1")):
        assert other.list_endpoints()["Endpoints"] == []
        assert other.list_model_quality_job_definitions()["JobDefinitionSummaries"] == []
        assert other.list_monitoring_schedules()["MonitoringScheduleSummaries"] == []
    schedule_arn = sm_a.list_monitoring_schedules()["MonitoringScheduleSummaries"][0]["MonitoringScheduleArn"]
    with pytest.raises(ClientError):  # another account cannot read the schedule's tags by ARN
        _sm(b).list_tags(ResourceArn=schedule_arn)


# --------------------------------------------------------------------------------------------------
# Over HTTP
# --------------------------------------------------------------------------------------------------


def _raw_post(url: str, service: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, str]:
    auth = (
        f"AWS4-HMAC-SHA256 Credential=testing/20250101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
    request = urllib.request.Request(url + "/", data=body, method="POST", headers={**headers, "Authorization": auth})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def test_fake_aws_server_over_http(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_aws_server() as url:
        assert url.startswith("http://127.0.0.1:")
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        sm = boto3.client("sagemaker", region_name=REGION)  # no endpoint_url: AWS_ENDPOINT_URL is honoured
        assert sm.meta.endpoint_url == url
        _endpoint(sm, "http-ep")
        sm.create_model_quality_job_definition(**_mq_request("mq-http", "http-ep"))
        arn = _schedule(sm, "mq-http-hourly", "mq-http", Tags=[{"Key": "team", "Value": "t"}])
        set_endpoint_status(MANAGEMENT, REGION, "http-ep", "Creating")  # same process, same backends
        assert sm.describe_endpoint(EndpointName="http-ep")["EndpointStatus"] == "Creating"
        assert [s["MonitoringScheduleArn"] for s in _all_schedules(sm, MonitoringTypeEquals="ModelQuality")] == [arn]
        assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "t"}]

        # Wire formats: SageMaker JSON-protocol error, HTTP 400 ...
        status, ctype, body = _raw_post(
            url,
            "sagemaker",
            json.dumps({"MonitoringScheduleName": "nope"}).encode(),
            {
                "X-Amz-Target": "SageMaker.DescribeMonitoringSchedule",
                "Content-Type": "application/x-amz-json-1.1",
            },
        )
        assert status == 400
        assert ctype.startswith("application/x-amz-json-1.1")
        error = json.loads(body)
        assert error["__type"] == "ResourceNotFound"
        # moto's JSON serializer writes "Message"; botocore (like AWS's own SDKs) reads either spelling.
        assert "monitoring-schedule/nope" in (error.get("message") or error["Message"])
        # ... and STS query-protocol XML error, HTTP 403.
        status, ctype, body = _raw_post(
            url,
            "sts",
            b"Action=AssumeRole&Version=2011-06-15&RoleSessionName=raw&RoleArn=arn:aws:iam::333333333333:role/X",
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 403
        assert "xml" in ctype
        assert "<Code>AccessDenied</Code>" in body
        assert "<Type>Sender</Type>" in body
        assert "sts:AssumeRole on resource: arn:aws:iam::333333333333:role/X" in body

        with pytest.raises(ClientError) as err:
            boto3.client("sts", region_name=REGION).assume_role(
                RoleArn="arn:aws:iam::333333333333:role/X", RoleSessionName="http"
            )
        assert err.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(Exception):  # noqa: B017 - the server is gone; any connection error will do
        boto3.client("sagemaker", region_name=REGION, endpoint_url=url).list_endpoints()


# --------------------------------------------------------------------------------------------------
# Seeded organization
# --------------------------------------------------------------------------------------------------


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page[key]]


def _check_org_against_apis(org: DemoOrg) -> None:
    accounts = _pages(boto3.client("organizations", region_name=REGION), "list_accounts", "Accounts")
    by_status = {s: {a["Id"] for a in accounts if a["Status"] == s} for s in ("ACTIVE", "SUSPENDED")}
    assert by_status["ACTIVE"] == set(org.active_account_ids)
    assert by_status["SUSPENDED"] == set(org.suspended_account_ids)

    for account_id in org.active_account_ids:
        role_arn = f"arn:aws:iam::{account_id}:role/{org.role_name}"
        if account_id in org.denied_account_ids:
            with pytest.raises(ClientError) as err:
                _assume(role_arn)
            assert err.value.response["Error"]["Code"] == "AccessDenied"
            continue
        creds = _assume(role_arn)
        for region in org.regions:
            truth = org.region(account_id, region)
            sm = _sm(creds, region)
            if truth.region_disabled:
                with pytest.raises(ClientError) as err:
                    sm.list_endpoints()
                assert err.value.response["Error"]["Code"] == "UnrecognizedClientException"
                continue

            def tags_of(arn: str, truth: RegionTruth = truth, sm: Any = sm) -> dict[str, str] | None:
                if truth.tags_denied:
                    with pytest.raises(ClientError) as err:
                        sm.list_tags(ResourceArn=arn)
                    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
                    return None
                return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}

            for monitor_type in MONITOR_TYPES:
                snake = re.sub(r"(?<!^)(?=[A-Z])", "_", monitor_type).lower()
                listed = _pages(sm, f"list_{snake}_job_definitions", "JobDefinitionSummaries")
                expected = truth.definitions_of(monitor_type)
                assert {d["MonitoringJobDefinitionArn"] for d in listed} == {d.arn for d in expected}
                for definition in expected:
                    described = getattr(sm, f"describe_{snake}_job_definition")(JobDefinitionName=definition.name)
                    for key, value in definition.request.items():
                        if key != "Tags":
                            assert described[key] == value, (definition.name, key)
                    assert set(described) - {"ResponseMetadata"} == {
                        "JobDefinitionArn",
                        "CreationTime",
                        *(k for k in definition.request if k != "Tags"),
                    }
                    assert tags_of(definition.arn) in (None, definition.tags)
            endpoints = _pages(sm, "list_endpoints", "Endpoints")
            assert {(e["EndpointArn"], e["EndpointStatus"]) for e in endpoints} == {
                (e.arn, e.status) for e in truth.endpoints
            }
            for endpoint in truth.endpoints:
                described = sm.describe_endpoint(EndpointName=endpoint.name)
                assert described["EndpointConfigName"] == endpoint.config_name
                capture = described.get("DataCaptureConfig")
                if endpoint.capture_enabled is None:
                    assert capture is None
                else:
                    assert (
                        capture["EnableCapture"],
                        capture["CaptureStatus"],
                        capture["CurrentSamplingPercentage"],
                    ) == (endpoint.capture_enabled, endpoint.capture_status, endpoint.sampling_percentage)
                assert tags_of(endpoint.arn) in (None, endpoint.tags)
            configs = _pages(sm, "list_endpoint_configs", "EndpointConfigs")
            assert {c["EndpointConfigArn"] for c in configs} == {c.arn for c in truth.endpoint_configs}
            for config in truth.endpoint_configs:
                described = sm.describe_endpoint_config(EndpointConfigName=config.name)
                for key, value in config.request.items():
                    assert described[key] == value, (config.name, key)
                modes = [o["CaptureMode"] for o in described.get("DataCaptureConfig", {}).get("CaptureOptions", [])]
                assert tuple(modes) == config.capture_modes
            mq = _pages(
                sm,
                "list_monitoring_schedules",
                "MonitoringScheduleSummaries",
                MonitoringTypeEquals="ModelQuality",
            )
            assert {s["MonitoringScheduleArn"] for s in mq} == {s.arn for s in truth.schedules_of_type()}
            everything = _pages(sm, "list_monitoring_schedules", "MonitoringScheduleSummaries")
            assert {s["MonitoringScheduleArn"] for s in everything} == {s.arn for s in truth.schedules}
            for schedule in truth.schedules:
                described = sm.describe_monitoring_schedule(MonitoringScheduleName=schedule.name)
                assert described["MonitoringScheduleStatus"] == schedule.status
                assert described["MonitoringType"] == schedule.monitoring_type
                assert described["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] == (
                    schedule.job_definition_name
                )
                assert described["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == (
                    schedule.schedule_expression
                )
                assert described.get("EndpointName") == schedule.endpoint_name
                last = described.get("LastMonitoringExecutionSummary", {})
                assert last.get("MonitoringExecutionStatus") == schedule.last_execution_status
                assert last.get("ScheduledTime") == schedule.last_execution_scheduled_time
                assert tags_of(schedule.arn) in (None, schedule.tags)


def test_seed_demo_org_matches_truth(aws: None) -> None:
    org = seed_demo_org(None)

    assert len(org.member_account_ids) >= 8
    assert len(org.denied_account_ids) == 1 and org.denied_account_ids[0] in org.member_account_ids
    assert len(org.suspended_account_ids) == 1
    assert org.management_account_id == MANAGEMENT
    assert org.regions == ["us-east-1", "us-west-2", "eu-west-1"]
    _check_org_against_apis(org)

    collectible = set(org.collectible_account_ids)
    arns = org.expected_definition_arns()
    assert set(arns) == collectible and org.denied_account_ids[0] not in arns
    assert all(arn.split(":")[4] == account for account, found in arns.items() for arn in found)
    # A reachable member account-region with nothing in it, so "empty" differs from "denied".
    assert any(a in collectible and a != org.management_account_id for a, _ in org.empty_account_regions())

    regions = [t for (a, _), t in org.resources.items() if a in collectible]
    definitions = [d for t in regions for d in t.job_definitions]
    requests = [d.request for d in definitions]
    schedules = [s for t in regions for s in t.schedules]
    assert any(d.batch_transform for d in definitions)
    assert any(d.endpoint_name and not d.endpoint_exists for d in definitions)
    assert {"ModelQualityBaselineConfig" in r for r in requests} == {True, False}
    assert {"StoppingCondition" in r for r in requests} == {True, False}
    assert {"Tags" in r for r in requests} == {True, False}
    networks = [r.get("NetworkConfig") for r in requests]
    assert None in networks
    assert {n["EnableNetworkIsolation"] for n in networks if n} == {True, False}
    assert {n["EnableInterContainerTrafficEncryption"] for n in networks if n} == {True, False}
    assert {"VpcConfig" in n for n in networks if n} == {True, False}
    assert {"KmsKeyId" in r["ModelQualityJobOutputConfig"] for r in requests} == {True, False}
    assert {"VolumeKmsKeyId" in r["JobResources"]["ClusterConfig"] for r in requests} == {True, False}
    counts = {r["JobResources"]["ClusterConfig"]["InstanceCount"] for r in requests}
    assert 1 in counts and max(counts) >= 2
    assert sum("team" in d.tags for d in definitions) > len(definitions) / 2
    awkward = [v for d in definitions for v in d.tags.values()]
    assert any(all(c in v for c in ',:="') for v in awkward)

    assert {e.status for t in regions for e in t.endpoints} >= {
        "InService",
        "Creating",
        "Failed",
        "OutOfService",
    }
    assert {s.status for s in schedules if s.monitoring_type == "ModelQuality"} >= {
        "Scheduled",
        "Stopped",
        "Failed",
    }
    assert {s.last_execution_status for s in schedules} >= {
        "Completed",
        "CompletedWithViolations",
        "Failed",
        None,
    }
    assert {s.monitoring_type for s in schedules} == set(MONITOR_TYPES)
    assert all(any(t.definitions_of(m) for t in regions) for m in MONITOR_TYPES)
    assert {s.schedule_expression for s in schedules} >= {"cron(0 * ? * * *)", "cron(0 */6 ? * * *)"}
    assert any(not s.definition_exists for s in schedules)
    endpoints = [e for t in regions for e in t.endpoints]
    assert {e.capture_enabled for e in endpoints} == {None, True, False}
    assert {e.capture_status for e in endpoints} == {None, "Started", "Stopped"}
    assert 0 in {e.sampling_percentage for e in endpoints}
    modes = {c.capture_modes for t in regions for c in t.endpoint_configs}
    assert modes >= {(), ("Input",), ("Output",), ("Input", "Output")}
    assert len(org.tags_denied_account_ids) == 1 and len(org.disabled_regions) == 1
    scheduled = {(s.job_definition_name) for s in schedules}
    assert any(d.name not in scheduled for d in definitions)  # definitions with no schedule
    assert any(len(t.schedules_of_type()) > 10 for t in regions)  # more than one default page

    printed = json.loads(org.to_json())
    assert printed["denied_account_ids"] == org.denied_account_ids
    assert len(printed["resources"]) == len(org.active_account_ids) * len(org.regions)


def test_seed_is_deterministic_and_works_over_http(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        first = seed_demo_org(None, regions=("us-east-1", "eu-west-1"), accounts=4, seed=3)
    with fake_aws_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        second = seed_demo_org(url, regions=("us-east-1", "eu-west-1"), accounts=4, seed=3)
        _check_org_against_apis(second)

    def shape(org: DemoOrg) -> list[Any]:
        # Account ids are random; everything seeded inside them follows from the seed.
        return [
            (
                org.account_names[a],
                r,
                [d.name for d in t.job_definitions],
                [(e.name, e.status) for e in t.endpoints],
                [(s.name, s.status, s.last_execution_status) for s in t.schedules],
            )
            for (a, r), t in org.resources.items()
        ]

    assert shape(first) == shape(second)
    assert len(second.member_account_ids) == 4

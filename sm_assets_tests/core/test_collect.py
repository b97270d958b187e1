"""Collector against moto: multi-account, pagination, vanishing definitions, unknown fields."""

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from sm_assets.core import accounts as accounts_module
from sm_assets.core import collection as collect
from sm_assets.core.accounts import list_org_accounts, resolve_account_ids
from sm_assets.core.collection import collect_account
from sm_assets.core.config import Settings
from sm_assets.core.errors import AccountDiscoveryError
from sm_assets.core.specs import MODEL_QUALITY_JOB_DEFINITION_SPEC

MQ_ONLY = [MODEL_QUALITY_JOB_DEFINITION_SPEC]


def member_session(account_id: str) -> boto3.Session:
    creds = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="seed"
    )["Credentials"]
    return boto3.Session(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def create_definition(sm: Any, name: str, endpoint: str = "ep", tags: list[dict[str, str]] | None = None) -> str:
    return sm.create_model_quality_job_definition(
        JobDefinitionName=name,
        ModelQualityAppSpecification={"ImageUri": "img", "ProblemType": "Regression"},
        ModelQualityJobInput={
            "EndpointInput": {"EndpointName": endpoint, "LocalPath": "/opt/ml/input"},
            "GroundTruthS3Input": {"S3Uri": "s3://bucket/gt"},
        },
        ModelQualityJobOutputConfig={"MonitoringOutputs": [{"S3Output": {"S3Uri": "s3://b/o", "LocalPath": "/o"}}]},
        JobResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}},
        RoleArn="arn:aws:iam::000000000000:role/monitor",
        **({"Tags": tags} if tags else {}),
    )["JobDefinitionArn"]


def org_with_members(n: int) -> list[str]:
    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    return [
        org.create_account(Email=f"m{i}@example.com", AccountName=f"member-{i}")["CreateAccountStatus"]["AccountId"]
        for i in range(n)
    ]


def settings(tmp_path: Path, regions: tuple[str, ...] = ("us-east-1", "eu-west-1")) -> Settings:
    return Settings.build(data_dir=tmp_path, regions=regions, role_name="OrganizationAccountAccessRole")


def test_multi_account_isolation(aws: None, tmp_path: Path) -> None:
    a, b = org_with_members(2)
    arn_a = create_definition(member_session(a).client("sagemaker", region_name="us-east-1"), "only-in-a")
    arn_b = create_definition(member_session(b).client("sagemaker", region_name="eu-west-1"), "only-in-b")
    accounts = resolve_account_ids(Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="x"))
    assert {a, b} <= set(accounts)
    snap_a = collect_account(a, settings(tmp_path), MQ_ONLY)
    snap_b = collect_account(b, settings(tmp_path), MQ_ONLY)
    assert [(i.arn, i.region) for i in snap_a.items] == [(arn_a, "us-east-1")]
    assert [(i.arn, i.region) for i in snap_b.items] == [(arn_b, "eu-west-1")]
    assert {(s.region, s.status) for s in snap_a.statuses} == {("us-east-1", "ok"), ("eu-west-1", "ok")}
    assert {s.item_count for s in snap_b.statuses if s.region == "eu-west-1"} == {1}


def test_pagination_past_100_definitions_and_50_tags(aws: None, tmp_path: Path) -> None:
    (acct,) = org_with_members(1)
    sm = member_session(acct).client("sagemaker", region_name="us-east-1")
    tags = [{"Key": f"k{i:02d}", "Value": f"v{i}"} for i in range(63)]
    arns = {create_definition(sm, f"def-{i:03d}", tags=tags if i == 0 else None) for i in range(105)}
    snap = collect_account(acct, settings(tmp_path, ("us-east-1",)), MQ_ONLY)
    assert {i.arn for i in snap.items} == arns
    tagged = next(i for i in snap.items if i.name == "def-000")
    assert tagged.tags == tags
    (status,) = snap.statuses
    assert status.status == "ok" and status.item_count == 105
    # 11 list pages (AWS's default page size, 10) + 105 describes + 106 ListTags pages (one needs two)
    assert status.api_calls == 11 + 105 + 106


def test_definition_deleted_between_list_and_describe(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (acct,) = org_with_members(1)
    sm = member_session(acct).client("sagemaker", region_name="us-east-1")
    keep = create_definition(sm, "keep")
    create_definition(sm, "vanishes")
    real_client = collect.sagemaker_client

    def client_that_races(session: boto3.Session, region: str, specs: Any) -> Any:
        client = real_client(session, region, specs)

        def delete_first(params: dict[str, Any], **_: Any) -> None:
            if params.get("JobDefinitionName") == "vanishes":
                sm.delete_model_quality_job_definition(JobDefinitionName="vanishes")

        client.meta.events.register("provide-client-params.sagemaker.DescribeModelQualityJobDefinition", delete_first)
        return client

    monkeypatch.setattr(collect, "sagemaker_client", client_that_races)
    snap = collect_account(acct, settings(tmp_path, ("us-east-1",)), MQ_ONLY)
    assert [i.arn for i in snap.items] == [keep]
    assert snap.statuses[0].status == "ok"


def test_fields_unknown_to_botocore_are_kept(aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.sagemaker.responses import SageMakerResponse

    from sm_assets.demo.fake_sagemaker import job_definitions

    (acct,) = org_with_members(1)
    sm = member_session(acct).client("sagemaker", region_name="us-east-1")
    create_definition(sm, "future")

    def describe_on_the_wire(self: Any) -> str:
        # The server answers with fields this botocore release has never heard of (raw JSON body).
        out = job_definitions(self.sagemaker_backend, "ModelQuality")[self._get_param("JobDefinitionName")].describe()
        out = json.loads(json.dumps(out, default=lambda v: v.timestamp()))
        out["ShinyNewField2030"] = {"Enabled": True, "Mode": "x"}
        out["JobResources"]["ClusterConfig"]["NewKnob"] = 7
        return json.dumps(out)

    monkeypatch.setattr(SageMakerResponse, "describe_model_quality_job_definition", describe_on_the_wire)
    plain = sm.describe_model_quality_job_definition(JobDefinitionName="future")
    assert "ShinyNewField2030" not in plain  # what boto3 alone would store
    assert "NewKnob" not in plain["JobResources"]["ClusterConfig"]
    (stored,) = collect_account(acct, settings(tmp_path, ("us-east-1",)), MQ_ONLY).items
    assert stored.describe["ShinyNewField2030"] == {"Enabled": True, "Mode": "x"}
    assert stored.describe["JobResources"]["ClusterConfig"]["NewKnob"] == 7
    assert stored.describe["CreationTime"].endswith("+00:00")  # known timestamps become ISO-8601
    assert "ResponseMetadata" not in stored.describe


def test_one_failing_region_does_not_hide_the_others(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (acct,) = org_with_members(1)
    create_definition(member_session(acct).client("sagemaker", region_name="us-east-1"), "fine")
    real_client = collect.sagemaker_client

    def broken_in_eu(session: boto3.Session, region: str, specs: Any) -> Any:
        client = real_client(session, region, specs)
        if region == "eu-west-1":

            def boom(**_: Any) -> None:
                raise RuntimeError("simulated crash")

            client.meta.events.register("before-call.sagemaker.*", boom)
        return client

    monkeypatch.setattr(collect, "sagemaker_client", broken_in_eu)
    snap = collect_account(acct, settings(tmp_path), MQ_ONLY)
    by_region = {s.region: s for s in snap.statuses}
    assert by_region["us-east-1"].status == "ok" and by_region["us-east-1"].item_count == 1
    assert by_region["eu-west-1"].status == "error"
    assert by_region["eu-west-1"].message == "simulated crash"
    assert [i.name for i in snap.items] == ["fine"]


def test_only_active_accounts_and_state_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pages = [
        {
            "Accounts": [
                {"Id": "111111111111", "Name": "a", "State": "ACTIVE", "Status": "ACTIVE"},
                {"Id": "222222222222", "Name": "b", "State": "SUSPENDED", "Status": "SUSPENDED"},
            ]
        },
        {
            "Accounts": [
                {"Id": "333333333333", "Name": "legacy", "Status": "ACTIVE"},
                {"Id": "444444444444", "Name": "closing", "State": "PENDING_CLOSURE"},
            ]
        },
    ]

    class FakePaginator:
        def paginate(self) -> list[dict[str, Any]]:
            return pages

    class FakeClient:
        def get_paginator(self, name: str) -> FakePaginator:
            assert name == "list_accounts"
            return FakePaginator()

    class FakeSession:
        region_name = "us-east-1"

        def client(self, *_: Any, **__: Any) -> FakeClient:
            return FakeClient()

    accounts = list_org_accounts(FakeSession())  # type: ignore[arg-type]
    assert [(a.account_id, a.state) for a in accounts] == [
        ("111111111111", "ACTIVE"),
        ("222222222222", "SUSPENDED"),
        ("333333333333", "ACTIVE"),
        ("444444444444", "PENDING_CLOSURE"),
    ]
    monkeypatch.setattr(accounts_module, "list_org_accounts", lambda session=None, region=None: accounts)
    s = Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="r")
    assert resolve_account_ids(s) == ["111111111111", "333333333333"]


def test_organizations_denied_suggests_explicit_accounts() -> None:
    from botocore.exceptions import ClientError

    class DeniedPaginator:
        def paginate(self) -> Any:
            raise ClientError(
                {
                    "Error": {
                        "Code": "AccessDeniedException",
                        "Message": "You don't have permissions to access this resource.",
                    }
                },
                "ListAccounts",
            )

    class DeniedSession:
        region_name = "us-east-1"

        def client(self, *_: Any, **__: Any) -> Any:
            return type("C", (), {"get_paginator": lambda self, name: DeniedPaginator()})()

    with pytest.raises(AccountDiscoveryError) as excinfo:
        list_org_accounts(DeniedSession())  # type: ignore[arg-type]
    message = str(excinfo.value)
    assert "AccessDeniedException" in message and "SM_ASSETS_ACCOUNTS=" in message
    assert "management account or a delegated administrator" in message


def test_incremental_collection_reuses_unchanged_definitions(aws: None, tmp_path: Path) -> None:
    (acct,) = org_with_members(1)
    sm = member_session(acct).client("sagemaker", region_name="us-east-1")
    for i in range(5):
        create_definition(sm, f"d{i}", tags=[{"Key": "team", "Value": "a"}])
    s = settings(tmp_path, ("us-east-1",))
    first = collect_account(acct, s, MQ_ONLY)
    previous = {i.arn: i.describe for i in first.items}
    assert first.statuses[0].api_calls == 1 + 5 + 5 and first.statuses[0].api_calls_saved == 0

    # Tags change and one definition is deleted and recreated under the same name (new CreationTime).
    arn0 = next(i.arn for i in first.items if i.name == "d0")
    sm.add_tags(ResourceArn=arn0, Tags=[{"Key": "owner", "Value": "new"}])
    sm.delete_model_quality_job_definition(JobDefinitionName="d1")
    import time

    time.sleep(0.01)
    create_definition(sm, "d1", endpoint="other-endpoint")
    second = collect_account(acct, s, MQ_ONLY, previous=previous)
    status = second.statuses[0]
    assert status.api_calls_saved == 4  # d1 was recreated, so it is described again
    assert status.api_calls == 1 + 1 + 5  # one list page, one describe, five ListTags
    by_name = {i.name: i for i in second.items}
    assert by_name["d0"].tags == [{"Key": "team", "Value": "a"}, {"Key": "owner", "Value": "new"}]
    assert by_name["d1"].describe["ModelQualityJobInput"]["EndpointInput"]["EndpointName"] == "other-endpoint"
    assert by_name["d2"].describe == previous[by_name["d2"].arn]


def test_validation_exception_is_recorded_not_dropped_silently(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A describe that SageMaker refuses with ValidationException skips that one resource, but the status row
    says so (and a warning is logged): it is never mistaken for a resource that just vanished."""
    from botocore.exceptions import ClientError

    (acct,) = org_with_members(1)
    sm = member_session(acct).client("sagemaker", region_name="us-east-1")
    keep = create_definition(sm, "keep")
    create_definition(sm, "refused")
    real_client = collect.sagemaker_client

    def client_that_refuses(session: boto3.Session, region: str, specs: Any) -> Any:
        client = real_client(session, region, specs)

        def refuse(params: dict[str, Any], **_: Any) -> None:
            if params.get("JobDefinitionName") == "refused":
                error = {"Error": {"Code": "ValidationException", "Message": "Invalid job definition name"}}
                raise ClientError(error, "DescribeModelQualityJobDefinition")

        client.meta.events.register("provide-client-params.sagemaker.DescribeModelQualityJobDefinition", refuse)
        return client

    monkeypatch.setattr(collect, "sagemaker_client", client_that_refuses)
    with caplog.at_level("WARNING"):
        snap = collect_account(acct, settings(tmp_path, ("us-east-1",)), MQ_ONLY)
    assert [i.arn for i in snap.items] == [keep]
    (status,) = snap.statuses
    assert (status.status, status.error_code, status.item_count) == ("ok", "ValidationException", 1)
    assert status.message == "skipped 1: refused (describe: ValidationException: Invalid job definition name)"
    assert "refused" in caplog.text and "ValidationException" in caplog.text

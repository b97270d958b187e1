"""The benchmark's fake AWS (benchmarks/fake_aws_bench.py) speaks the wire protocols botocore uses."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from benchmarks.fake_aws_bench import DEFAULT_ROLE_NAME, BenchServer, Fleet, generate_fleet
from sm_assets.core.collection import collect_account
from sm_assets.core.config import Settings
from sm_assets.core.payloads import to_jsonable

REGIONS = ("us-east-1", "eu-west-1")
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    # 11..25 definitions per account-region: every definition listing needs at least two pages.
    return generate_fleet(5, REGIONS, max_definitions=25, min_definitions=11, seed=3)


@pytest.fixture(scope="module")
def server(fleet: Fleet) -> Iterator[BenchServer]:
    with BenchServer(fleet, latency_s=0, rate=None) as bench:
        yield bench


@pytest.fixture(autouse=True)
def fresh(server: BenchServer) -> Iterator[None]:
    server.configure(latency_s=0, rate=None)
    server.reset_stats()
    yield


def client(server: BenchServer, service: str, region: str = "us-east-1", creds: dict | None = None, **kw: Any) -> Any:
    if creds:
        kw.update(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
    return boto3.client(service, region_name=region, endpoint_url=server.url, **kw)


def assume(server: BenchServer, account: str) -> dict:
    sts = client(server, "sts")
    return sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{DEFAULT_ROLE_NAME}", RoleSessionName="test")[
        "Credentials"
    ]


def test_list_accounts_pages(server: BenchServer, fleet: Fleet) -> None:
    org = client(server, "organizations")
    first = org.list_accounts(MaxResults=2)
    assert len(first["Accounts"]) == 2 and first["NextToken"]
    accounts = [a for page in org.get_paginator("list_accounts").paginate(MaxResults=2) for a in page["Accounts"]]
    assert [a["Id"] for a in accounts] == fleet.accounts
    assert all(a["State"] == "ACTIVE" and a["Status"] == "ACTIVE" for a in accounts)
    assert server.stats()["by_operation"]["organizations.ListAccounts"]["calls"] == 1 + 3


def test_assume_role_encodes_the_account(server: BenchServer, fleet: Fleet) -> None:
    account = fleet.accounts[2]
    creds = assume(server, account)
    assert creds["AccessKeyId"].startswith("ASIA" + account) and len(creds["AccessKeyId"]) == 20
    identity = client(server, "sts", creds=creds).get_caller_identity()
    assert identity["Account"] == account
    assert client(server, "sts").get_caller_identity()["Account"] == fleet.management_account_id

    with pytest.raises(ClientError) as denied:
        client(server, "sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/Other", RoleSessionName="test")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_definitions_list_and_describe_with_pagination(server: BenchServer, fleet: Fleet) -> None:
    account, region = fleet.accounts[1], REGIONS[1]
    truth = fleet.region(account, region)
    assert truth is not None and len(truth.definitions) > 10
    sm = client(server, "sagemaker", region, assume(server, account))

    page = sm.list_model_quality_job_definitions()
    assert len(page["JobDefinitionSummaries"]) == 10 and page["NextToken"]  # AWS's default page size
    summaries = [
        s
        for p in sm.get_paginator("list_model_quality_job_definitions").paginate(PaginationConfig={"PageSize": 4})
        for s in p["JobDefinitionSummaries"]
    ]
    assert [s["MonitoringJobDefinitionName"] for s in summaries] == [d.name for d in truth.definitions]
    created = [s["CreationTime"] for s in summaries]
    assert created == sorted(created, reverse=True)  # CreationTime descending, like AWS

    definition = truth.definitions[0]
    described = sm.describe_model_quality_job_definition(JobDefinitionName=definition.name)
    body = {k: v for k, v in described.items() if k != "ResponseMetadata"}
    assert body["JobDefinitionArn"] == definition.arn
    assert body["ModelQualityJobInput"]["EndpointInput"]["EndpointName"] == definition.endpoint_name
    assert body["JobResources"]["ClusterConfig"]["InstanceCount"] >= 1
    assert to_jsonable(body)["CreationTime"] == to_jsonable(summaries[0]["CreationTime"])
    assert sm.list_tags(ResourceArn=definition.arn)["Tags"] == definition.tags

    with pytest.raises(ClientError) as missing:
        sm.describe_model_quality_job_definition(JobDefinitionName="no-such-definition")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound"

    schedules = sm.list_monitoring_schedules(MonitoringTypeEquals="ModelQuality", MaxResults=100)
    assert {s["MonitoringScheduleName"] for s in schedules["MonitoringScheduleSummaries"]} == {
        s.name for s in truth.model_quality_schedules
    }


def test_throttles_beyond_the_rate(server: BenchServer, fleet: Fleet) -> None:
    server.configure(rate=1, burst=3)
    account = fleet.accounts[0]
    sm = client(server, "sagemaker", REGIONS[0], assume(server, account), config=NO_RETRIES)
    outcomes = []
    for _ in range(8):
        try:
            sm.list_endpoints()
            outcomes.append("ok")
        except ClientError as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            outcomes.append(exc.response["Error"]["Code"])
    assert outcomes[:3] == ["ok"] * 3  # the burst
    assert "ThrottlingException" in outcomes[3:]
    stats = server.stats()
    assert stats["throttled"] == outcomes.count("ThrottlingException") > 0
    assert stats["by_bucket"][f"{account}/{REGIONS[0]}"]["throttled"] == stats["throttled"]
    # Another account-region has its own bucket.
    other = client(server, "sagemaker", REGIONS[1], assume(server, account), config=NO_RETRIES)
    other.list_endpoints()


def test_collect_account_gets_exactly_the_fleet(
    server: BenchServer, fleet: Fleet, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    account = fleet.accounts[3]
    settings = Settings.build(data_dir=tmp_path, regions=REGIONS, role_name=DEFAULT_ROLE_NAME, check_writable=False)
    snapshot = collect_account(account, settings)

    assert {(s.region, s.resource_type) for s in snapshot.statuses if s.status == "ok"} == {
        (r, t) for r in REGIONS for t in ("model_quality_job_definition", "endpoint", "monitoring_schedule")
    }
    truths = [fleet.region(account, r) for r in REGIONS]
    expected = {
        "model_quality_job_definition": {(d.arn, _pairs(d.tags)) for rf in truths for d in rf.definitions},
        "endpoint": {(e.arn, None) for rf in truths for e in rf.endpoints},  # endpoints: no ListTags
        "monitoring_schedule": {(s.arn, _pairs(s.tags)) for rf in truths for s in rf.model_quality_schedules},
    }
    for resource_type, want in expected.items():
        got = {(i.arn, None if i.tags is None else _pairs(i.tags)) for i in snapshot.items_of(resource_type)}
        assert got == want, resource_type
    definition = truths[0].definitions[0]
    item = next(i for i in snapshot.items if i.arn == definition.arn)
    assert item.describe == to_jsonable({**definition.describe, "CreationTime": _dt(definition.created)})
    # Exactly the calls a full collection needs: one AssumeRole plus every bucket's minimum.
    stats = server.stats()
    minimum = sum(fleet.region(account, r).min_sagemaker_calls() for r in REGIONS)
    assert stats["calls"] == 1 + minimum
    assert stats["throttled"] == 0


def _pairs(tags: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((t["Key"], t["Value"]) for t in tags)


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)

"""The benchmark's fake AWS (benchmarks/fake_aws_bench.py) speaks the wire protocols botocore uses, for every
operation the registry's collector calls, and its expected call counts are the calls a collection makes."""

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from benchmarks.fake_aws_bench import DEFAULT_ROLE_NAME, BenchServer, Fleet, generate_fleet
from sm_assets.core.accounts import resolve_account_ids
from sm_assets.core.collection import collect_account, collect_accounts
from sm_assets.core.config import Settings
from sm_assets.core.payloads import to_jsonable
from sm_assets.core.specs import JOB_DEFINITION_SPECS, MONITOR_TYPES, RESOURCE_SPECS

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


@pytest.mark.parametrize("monitor_type", MONITOR_TYPES)
def test_every_job_definition_type_has_aws_shapes(server: BenchServer, fleet: Fleet, monitor_type: str) -> None:
    spec = JOB_DEFINITION_SPECS[monitor_type]
    (account, region), truth = next((key, rf) for key, rf in fleet.resources.items() if rf.definitions_of(monitor_type))
    sm = client(server, "sagemaker", region, assume(server, account))
    listed = [s for p in sm.get_paginator(spec.list_operation).paginate() for s in p[spec.list_result_key]]
    assert [s["MonitoringJobDefinitionArn"] for s in listed] == [d.arn for d in truth.definitions_of(monitor_type)]
    assert {s["EndpointName"] for s in listed} == {d.endpoint_name for d in truth.definitions_of(monitor_type)}
    members = {"AppSpecification", "BaselineConfig", "JobInput", "JobOutputConfig"}
    allowed = {"JobDefinitionArn", "JobDefinitionName", "CreationTime", "JobResources", "NetworkConfig", "RoleArn"}
    allowed |= {"StoppingCondition", *(monitor_type + m for m in members)}
    for summary in listed:
        body = getattr(sm, spec.describe_operation)(JobDefinitionName=summary["MonitoringJobDefinitionName"])
        body.pop("ResponseMetadata")
        assert set(body) <= allowed, set(body) - allowed
        assert {f"{monitor_type}AppSpecification", f"{monitor_type}JobInput", "RoleArn"} <= set(body)
        app, job_input = body[f"{monitor_type}AppSpecification"], body[f"{monitor_type}JobInput"]
        assert ("ConfigUri" in app) == (monitor_type in ("ModelBias", "ModelExplainability"))
        assert ("GroundTruthS3Input" in job_input) == (monitor_type in ("ModelQuality", "ModelBias"))
        assert job_input["EndpointInput"]["EndpointName"] == summary["EndpointName"]
        assert body["JobDefinitionArn"].split(":")[5].startswith(spec.resource_type.replace("_", "-") + "/")
    with pytest.raises(ClientError) as missing:
        getattr(sm, spec.describe_operation)(JobDefinitionName="no-such-definition")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound"


def test_endpoints_describe_their_config_capture(server: BenchServer, fleet: Fleet) -> None:
    seen: dict[str, set[Any]] = {"enabled": set(), "status": set(), "with_capture": set()}
    for account in fleet.accounts[:3]:
        creds = assume(server, account)
        for region in REGIONS:
            truth = fleet.region(account, region)
            sm = client(server, "sagemaker", region, creds)
            configs = {
                c["EndpointConfigName"]: sm.describe_endpoint_config(EndpointConfigName=c["EndpointConfigName"])
                for p in sm.get_paginator("list_endpoint_configs").paginate()
                for c in p["EndpointConfigs"]
            }
            assert set(configs) == {c.name for c in truth.endpoint_configs}
            listed = [e for p in sm.get_paginator("list_endpoints").paginate() for e in p["Endpoints"]]
            assert [e["EndpointArn"] for e in listed] == [e.arn for e in truth.endpoints]
            for summary in listed:
                endpoint = sm.describe_endpoint(EndpointName=summary["EndpointName"])
                assert endpoint["EndpointStatus"] == summary["EndpointStatus"]
                config = configs[endpoint["EndpointConfigName"]]  # every endpoint runs a listed config
                capture, configured = endpoint.get("DataCaptureConfig"), config.get("DataCaptureConfig")
                seen["with_capture"].add(capture is not None)
                assert (capture is None) == (configured is None)
                if capture is not None:
                    assert capture["EnableCapture"] == configured["EnableCapture"]
                    assert capture["DestinationS3Uri"] == configured["DestinationS3Uri"]
                    assert capture["CaptureStatus"] in ("Started", "Stopped")
                    assert capture["CurrentSamplingPercentage"] in (0, configured["InitialSamplingPercentage"])
                    assert {o["CaptureMode"] for o in configured["CaptureOptions"]} <= {"Input", "Output"}
                    seen["enabled"].add(capture["EnableCapture"])
                    seen["status"].add(capture["CaptureStatus"])
                if endpoint["EndpointStatus"] != "Creating":
                    variants = {v["VariantName"] for v in config["ProductionVariants"]}
                    assert {v["VariantName"] for v in endpoint["ProductionVariants"]} == variants
    # The fleet varies capture: endpoints without it, capture on and off, started and stopped.
    assert seen == {"enabled": {True, False}, "status": {"Started", "Stopped"}, "with_capture": {True, False}}

    sm = client(server, "sagemaker", REGIONS[0], assume(server, fleet.accounts[0]))
    for call, param in ((sm.describe_endpoint, "EndpointName"), (sm.describe_endpoint_config, "EndpointConfigName")):
        with pytest.raises(ClientError) as missing:
            call(**{param: "no-such-thing"})
        assert missing.value.response["Error"]["Code"] == "ValidationException"


def test_schedules_of_every_type_are_listed(server: BenchServer, fleet: Fleet) -> None:
    account, region = max(fleet.resources, key=lambda key: len(fleet.resources[key].schedules))
    truth = fleet.region(account, region)
    sm = client(server, "sagemaker", region, assume(server, account))
    listed = [
        s for p in sm.get_paginator("list_monitoring_schedules").paginate() for s in p["MonitoringScheduleSummaries"]
    ]
    assert [s["MonitoringScheduleArn"] for s in listed] == [s.arn for s in truth.schedules]
    assert {s["MonitoringType"] for s in listed} == {s.monitoring_type for s in truth.schedules}
    assert {s.monitoring_type for rf in fleet.resources.values() for s in rf.schedules} == set(MONITOR_TYPES)
    for monitoring_type in MONITOR_TYPES:  # the filter still works, for callers that use it
        page = sm.list_monitoring_schedules(MonitoringTypeEquals=monitoring_type, MaxResults=100)
        assert {s["MonitoringScheduleName"] for s in page["MonitoringScheduleSummaries"]} == {
            s.name for s in truth.schedules_of(monitoring_type)
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
    snapshot = collect_account(account, settings, RESOURCE_SPECS)

    assert sorted((s.region, s.resource_type, s.status) for s in snapshot.statuses) == sorted(
        (r, spec.resource_type, "ok") for r in REGIONS for spec in RESOURCE_SPECS
    )
    truths = [fleet.region(account, r) for r in REGIONS]
    for spec in RESOURCE_SPECS:
        want = {(res.arn, _pairs(res.tags)) for rf in truths for res in rf.of(spec.resource_type)}
        assert want, f"the fleet has no {spec.resource_type} in account {account}"  # every type is exercised
        got = {(i.arn, _pairs(i.tags or [])) for i in snapshot.items_of(spec.resource_type)}
        assert got == want, spec.resource_type
        assert all(i.tags is not None for i in snapshot.items_of(spec.resource_type)) == spec.with_tags
        # What is stored is the describe answer as AWS sent it (timestamps as ISO strings).
        resource = next(res for rf in truths for res in rf.of(spec.resource_type))
        item = next(i for i in snapshot.items if i.arn == resource.arn)
        assert item.describe == _stored(resource.describe), spec.resource_type
    # Exactly the calls a full collection needs, per operation: one AssumeRole plus every bucket's minimum.
    stats = server.stats()
    expected = fleet.expected_calls()
    assert stats["throttled"] == 0
    assert stats["calls"] == 1 + sum(expected["by_bucket"][f"{account}/{r}"] for r in REGIONS)
    assert {k: v["calls"] for k, v in stats["by_bucket"].items()} == {
        f"{account}/{r}": expected["by_bucket"][f"{account}/{r}"] for r in REGIONS
    }
    by_operation = sum((fleet.region(account, r).min_calls_by_operation() for r in REGIONS), Counter())
    assert {k: v["calls"] for k, v in stats["by_operation"].items()} == {
        "sts.AssumeRole": 1,
        **{f"sagemaker.{op}": n for op, n in by_operation.items()},
    }
    assert set(by_operation) == {op for spec in RESOURCE_SPECS for op in spec.api_operations}


def test_expected_calls_of_the_whole_org(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Account discovery + collect_accounts over a whole small org make exactly ``expected_calls()``."""
    small = generate_fleet(23, REGIONS, max_definitions=3, seed=5)  # 23 accounts: two ListAccounts pages
    with BenchServer(small, latency_s=0, rate=None) as bench:
        monkeypatch.setenv("AWS_ENDPOINT_URL", bench.url)
        settings = Settings.build(
            data_dir=tmp_path, regions=REGIONS, role_name=DEFAULT_ROLE_NAME, check_writable=False, collect_processes=1
        )
        snapshots = collect_accounts(resolve_account_ids(settings), settings, RESOURCE_SPECS)
        stats = bench.stats()
    expected = small.expected_calls()
    assert len(snapshots) == 23 and all(s.status == "ok" for snap in snapshots.values() for s in snap.statuses)
    assert sum(len(snap.items) for snap in snapshots.values()) == small.totals()["resources"]
    ops = {k: v["calls"] for k, v in stats["by_operation"].items()}
    assert ops.pop("organizations.ListAccounts") == expected["organizations"] == 2
    assert ops.pop("sts.AssumeRole") == expected["sts"] == 23
    assert ops == {f"sagemaker.{op}": n for op, n in expected["by_operation"].items()}
    assert stats["calls"] == expected["total"]
    assert {k: v["calls"] for k, v in stats["by_bucket"].items()} == expected["by_bucket"]


def _pairs(tags: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((t["Key"], t["Value"]) for t in tags)


# The wire's epoch-second members that botocore parses as timestamps (the collector stores them as ISO strings).
_TIMESTAMPS = {"CreationTime", "LastModifiedTime", "ScheduledTime", "ResolutionTime"}


def _stored(value: Any, key: str = "") -> Any:
    """A describe answer as the collector stores it."""
    if isinstance(value, dict):
        return {k: _stored(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_stored(v) for v in value]
    if key in _TIMESTAMPS and isinstance(value, float | int):
        return to_jsonable(datetime.fromtimestamp(value, tz=UTC))
    return value

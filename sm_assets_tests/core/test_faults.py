"""The collector against the failures of a real organization, injected on the wire by `demo.faults`.

One fake AWS and one seeded org (3 members: a big one, one with an empty region, one without the role;
plus a suspended account) serve the whole module; every test puts a fault proxy in front of it and
collects through it. For each fault: the status is right, nothing is lost (the ARNs the raw asset would
store equal the seed's truth), and the accounts the fault does not target are untouched.
"""

from __future__ import annotations

import contextlib
import math
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff

from sm_assets.core import aws_clients as collect
from sm_assets.core.accounts import list_org_accounts, resolve_account_ids
from sm_assets.core.collection import AccountSnapshot, collect_account
from sm_assets.core.config import Settings
from sm_assets.core.errors import AccountDiscoveryError
from sm_assets.core.snapshots import raw_table
from sm_assets.core.specs import RESOURCE_SPECS, SPECS_BY_TYPE
from sm_assets.demo import faults
from sm_assets.demo.fake_aws import fake_aws_server
from sm_assets.demo.fake_sagemaker import job_definitions
from sm_assets.demo.faults import Call, FaultProxy, FaultRules, fault_proxy
from sm_assets.demo.seed import DemoOrg, seed_demo_org

REGIONS = ("us-east-1", "eu-west-1")
ROLE = "SageMakerInventoryReadOnly"
TYPES = tuple(spec.resource_type for spec in RESOURCE_SPECS)
TAGGED = tuple(spec.resource_type for spec in RESOURCE_SPECS if spec.with_tags)
READ_TIMEOUT = 1.0  # fast_retries' client read timeout; `timeout` faults hold requests longer than this

Outcome = dict[tuple[str, str], tuple[str, str | None, frozenset[str]]]


@pytest.fixture(scope="module")
def fake_org() -> Iterator[tuple[DemoOrg, str]]:
    with fake_aws_server() as url:
        with pytest.MonkeyPatch.context() as mp:  # conftest's fake credentials are per test; seeding is not
            mp.setenv("AWS_ACCESS_KEY_ID", "testing")
            mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            mp.setenv("AWS_CONFIG_FILE", "/dev/null")
            mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            mp.delenv("AWS_ENDPOINT_URL", raising=False)
            # moto's documented seed makes account ids (hence ARNs, hence the proxy's dice) the same every run.
            urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/seed?a=11", method="POST")).close()
            org = seed_demo_org(url, regions=REGIONS, accounts=3, seed=11)
        yield org, url


@pytest.fixture
def org(fake_org: tuple[DemoOrg, str]) -> DemoOrg:
    return fake_org[0]


@pytest.fixture
def proxied(
    fake_org: tuple[DemoOrg, str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., contextlib.AbstractContextManager[FaultProxy]]:
    """proxied(*faults, seed=0, before_forward=None): a fault proxy that boto3 (AWS_ENDPOINT_URL) goes through."""

    @contextlib.contextmanager
    def start(*rules: faults.Fault, seed: int = 0, before_forward: Any = None) -> Iterator[FaultProxy]:
        fault_rules = FaultRules(rules, timeout_sleep=READ_TIMEOUT + 0.5)
        with fault_proxy(fake_org[1], fault_rules, seed, before_forward=before_forward) as proxy:
            monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
            yield proxy

    return start


def fast_config(max_pool_connections: int = 10) -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": 10},
        connect_timeout=1,
        read_timeout=READ_TIMEOUT,
        max_pool_connections=max_pool_connections,
        user_agent_extra=collect.USER_AGENT,
    )


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard retries with a short read timeout, and botocore's backoff curve 50x faster (same shape)."""
    monkeypatch.setattr(collect, "client_config", fast_config)
    monkeypatch.setitem(ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "throttling_base_scale", 0.02)
    monkeypatch.setitem(ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "non_throttling_base_scale", 0.001)


# ---------------------------------------------------------------------------------------------
# Truth and outcome helpers


def members(org: DemoOrg) -> tuple[str, str, str]:
    big, with_empty_region, denied = org.member_account_ids
    assert org.denied_account_ids == [denied]
    return big, with_empty_region, denied


def truth(org: DemoOrg, account: str, region: str, resource_type: str) -> frozenset[str]:
    t = org.region(account, region)
    spec = SPECS_BY_TYPE[resource_type]
    if spec.monitor_type is not None:
        found: list[Any] = t.definitions_of(spec.monitor_type)
    else:
        found = {"endpoint": t.endpoints, "endpoint_config": t.endpoint_configs, "monitoring_schedule": t.schedules}[
            resource_type
        ]
    return frozenset(x.arn for x in found)


def stored(snap: AccountSnapshot, region: str, resource_type: str) -> frozenset[str]:
    """The ARNs the raw asset writes to the lake for this region and type."""
    return frozenset(
        r["arn"] for r in raw_table(snap).to_pylist() if r["region"] == region and r["resource_type"] == resource_type
    )


def outcome(snap: AccountSnapshot) -> Outcome:
    for s in snap.statuses:
        assert s.item_count == len(stored(snap, s.region, s.resource_type)), s
    return {
        (s.region, s.resource_type): (s.status, s.error_code, stored(snap, s.region, s.resource_type))
        for s in snap.statuses
    }


def complete(org: DemoOrg, account: str) -> Outcome:
    return {(r, t): ("ok", None, truth(org, account, r, t)) for r in REGIONS for t in TYPES}


def expected_calls(org: DemoOrg, account: str) -> int:
    """SageMaker requests one fault-free collection makes: list pages (AWS's default page size, 10, for every
    list), a describe each, one ListTags page each."""
    calls = 0
    for region in REGIONS:
        for spec in RESOURCE_SPECS:
            n = len(truth(org, account, region, spec.resource_type))
            calls += max(1, math.ceil(n / 10)) + n * (bool(spec.describe_operation) + spec.with_tags)
    return calls


def collect_each(tmp_path: Path, accounts: list[str], regions: tuple[str, ...] = REGIONS) -> dict[str, AccountSnapshot]:
    settings = Settings.build(data_dir=tmp_path, regions=regions, role_name=ROLE)
    return {a: collect_account(a, settings) for a in accounts}


def sagemaker_calls(proxy: FaultProxy, account: str | None = None) -> int:
    return sum(1 for c in proxy.calls_of("sagemaker") if account in (None, c.account))


def assert_all_complete(org: DemoOrg, snaps: dict[str, AccountSnapshot], accounts: list[str]) -> None:
    for account in accounts:
        assert outcome(snaps[account]) == complete(org, account), account


# ---------------------------------------------------------------------------------------------
# The proxy itself


def test_clean_proxy_is_transparent_and_attributes_calls(org: DemoOrg, proxied: Any, tmp_path: Path) -> None:
    with proxied() as proxy:
        snaps = collect_each(tmp_path, org.collectible_account_ids)
    assert_all_complete(org, snaps, org.collectible_account_ids)
    assert proxy.injected == {}
    assert proxy.requests == len(proxy.calls)
    # Accounts come from moto's access-key map: assumed-role keys -> member, the base key -> management.
    assumes = proxy.calls_of("sts", "AssumeRole")
    assert [c.account for c in assumes] == [org.management_account_id] * 3
    assert {c.account for c in proxy.calls_of("sagemaker")} == set(org.collectible_account_ids)
    assert {c.region for c in proxy.calls_of("sagemaker")} == set(REGIONS)
    for account, snap in snaps.items():
        assert sagemaker_calls(proxy, account) == expected_calls(org, account)
        assert sum(s.api_calls for s in snap.statuses) == expected_calls(org, account)


def test_probabilistic_faults_are_reproducible_per_seed(fake_org: tuple[DemoOrg, str]) -> None:
    def throttled(seed: int) -> list[bool]:
        with fault_proxy(fake_org[1], FaultRules((faults.throttle(0.5),)), seed) as proxy:
            sm = boto3.client(
                "sagemaker",
                endpoint_url=proxy.url,
                config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
            )
            out = []
            for _ in range(24):
                try:
                    sm.list_endpoints()
                    out.append(False)
                except ClientError as exc:
                    assert exc.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
                    assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
                    out.append(True)
            assert proxy.injected["throttle"] == sum(out)
            return out

    first = throttled(0)
    assert throttled(0) == first
    assert throttled(1) != first
    assert 6 <= sum(first) <= 18


# ---------------------------------------------------------------------------------------------
# Retryable faults: everything collected, status ok


def test_throttling_storm_half_of_all_sagemaker_calls(
    org: DemoOrg, proxied: Any, tmp_path: Path, fast_retries: None
) -> None:
    accounts = list(members(org)[:2])
    with proxied(faults.throttle(0.5)) as proxy:
        snaps = collect_each(tmp_path, accounts)
    assert_all_complete(org, snaps, accounts)
    clean = sum(expected_calls(org, a) for a in accounts)
    # Every throttled request was retried, and nothing else was sent.
    assert sagemaker_calls(proxy) == clean + proxy.injected["throttle"]
    assert proxy.injected["throttle"] >= 0.4 * clean  # ~1 throttle per call at 50%
    assert sum(s.api_calls for snap in snaps.values() for s in snap.statuses) == sagemaker_calls(proxy)


def test_throttling_with_the_products_real_retry_config(org: DemoOrg, proxied: Any, tmp_path: Path) -> None:
    # Adaptive mode also rate-limits the client after a throttle: one throttle costs its region ~4 s here
    # (a 10% storm on one account takes ~20 s), so this test throttles once per protocol.
    big, other, _ = members(org)
    rules = [
        faults.throttle(first=1, service="sts", operations="AssumeRole"),  # query protocol: XML <Throttling>
        faults.throttle(first=1, operations="DescribeMonitoringSchedule", accounts=big, regions="us-east-1"),
    ]
    assert collect.client_config().retries == {"mode": "adaptive", "max_attempts": 10}
    with proxied(*rules) as proxy:
        snaps = collect_each(tmp_path, [big, other])
    assert_all_complete(org, snaps, [big, other])
    assert proxy.injected == {"throttle": 2}
    assert len(proxy.calls_of("sts", "AssumeRole")) == 3
    assert sagemaker_calls(proxy, big) == expected_calls(org, big) + 1
    assert sagemaker_calls(proxy, other) == expected_calls(org, other)


def test_http_5xx_at_five_percent(org: DemoOrg, proxied: Any, tmp_path: Path, fast_retries: None) -> None:
    accounts = list(members(org)[:2])
    with proxied(faults.http_5xx(0.05, status=500), seed=3) as proxy:
        snaps = collect_each(tmp_path, accounts)
    assert_all_complete(org, snaps, accounts)
    clean = sum(expected_calls(org, a) for a in accounts)
    assert 1 <= proxy.injected["http_5xx"] <= 0.15 * clean
    assert sagemaker_calls(proxy) == clean + proxy.injected["http_5xx"]


def test_http_503_burst_with_the_products_real_retry_config(org: DemoOrg, proxied: Any, tmp_path: Path) -> None:
    big, other, _ = members(org)
    burst = faults.http_5xx(first=6, status=503, operations="DescribeMonitoringSchedule", accounts=big)
    with proxied(burst) as proxy:
        snaps = collect_each(tmp_path, [big, other])
    assert_all_complete(org, snaps, [big, other])
    assert proxy.injected == {"http_5xx": 6}
    schedule_calls = sum(s.api_calls for s in snaps[big].statuses_of("monitoring_schedule"))
    schedules = [len(truth(org, big, r, "monitoring_schedule")) for r in REGIONS]
    assert schedule_calls == sum(max(1, math.ceil(n / 10)) + 2 * n for n in schedules) + 6


def test_connection_resets_with_the_products_real_retry_config(org: DemoOrg, proxied: Any, tmp_path: Path) -> None:
    accounts = list(members(org)[:2])
    with proxied(faults.reset(0.1), seed=5) as proxy:
        snaps = collect_each(tmp_path, accounts)
    assert_all_complete(org, snaps, accounts)
    clean = sum(expected_calls(org, a) for a in accounts)
    assert 2 <= proxy.injected["reset"] <= 0.25 * clean
    assert sagemaker_calls(proxy) == clean + proxy.injected["reset"]


def test_read_timeouts_are_retried(org: DemoOrg, proxied: Any, tmp_path: Path, fast_retries: None) -> None:
    big, other, _ = members(org)
    with proxied(faults.timeout(first=2, accounts=big, operations="ListTags")) as proxy:
        snaps = collect_each(tmp_path, [big, other])
    assert_all_complete(org, snaps, [big, other])
    assert proxy.injected == {"timeout": 2}
    assert sagemaker_calls(proxy, big) == expected_calls(org, big) + 2
    assert sagemaker_calls(proxy, other) == expected_calls(org, other)


def test_credentials_expiring_mid_run_are_renewed(org: DemoOrg, proxied: Any, tmp_path: Path) -> None:
    big, other, _ = members(org)
    assert expected_calls(org, big) < 2 * 100  # one expiry mid-run; renewed keys outlive what is left
    with proxied(faults.expired_token(after=100, accounts=big)) as proxy:
        snaps = collect_each(tmp_path, [big, other])
    assert outcome(snaps[big]) == complete(org, big)
    assert outcome(snaps[other]) == complete(org, other)
    assert proxy.injected["expired_token"] in (1, 2)  # one per region thread caught in flight
    assert (snaps[big].assume_role_calls, snaps[other].assume_role_calls) == (2, 1)
    assert len(proxy.calls_of("sts", "AssumeRole")) == 3


def test_credentials_expiring_within_one_listing_are_renewed_per_call(
    org: DemoOrg, proxied: Any, tmp_path: Path
) -> None:
    big, other, _ = members(org)
    # Each access key of the big account works for 15 SageMaker calls: less than one listing of its big region.
    assert 2 * len(truth(org, big, "us-east-1", "model_quality_job_definition")) > 15
    with proxied(faults.expired_token(after=15, accounts=big)) as proxy:
        snaps = collect_each(tmp_path, [big, other])
    assert outcome(snaps[big]) == complete(org, big)
    assert outcome(snaps[other]) == complete(org, other)
    assert snaps[big].assume_role_calls >= expected_calls(org, big) // 15
    assert proxy.injected["expired_token"] >= snaps[big].assume_role_calls - 1
    assert len(proxy.calls_of("sts", "AssumeRole")) == snaps[big].assume_role_calls + 1
    # Every request sent, the rejected ones included, is accounted for.
    assert sum(s.api_calls for s in snaps[big].statuses) == sagemaker_calls(proxy, big)


# ---------------------------------------------------------------------------------------------
# Denials: reported as access_denied, never as an empty account


def test_assume_role_denied_account(org: DemoOrg, proxied: Any, tmp_path: Path) -> None:
    _, other, denied = members(org)
    with proxied() as proxy:
        snaps = collect_each(tmp_path, [denied, other])
    role_arn = f"arn:aws:iam::{denied}:role/{ROLE}"
    assert outcome(snaps[denied]) == {
        (r, t): ("access_denied", "AccessDenied", frozenset()) for r in REGIONS for t in TYPES
    }
    for status in snaps[denied].statuses:
        assert status.message.startswith("AssumeRole: User: arn:aws:")
        assert f"is not authorized to perform: sts:AssumeRole on resource: {role_arn}" in status.message
        assert status.api_calls == 0
    assert snaps[denied].items == []
    assert sagemaker_calls(proxy, denied) == 0
    assert outcome(snaps[other]) == complete(org, other)


def test_list_tags_denied_by_an_scp(org: DemoOrg, proxied: Any, tmp_path: Path) -> None:
    big, other, _ = members(org)
    with proxied(faults.access_denied("ListTags", accounts=big)) as proxy:
        snaps = collect_each(tmp_path, [big, other])
    expected = complete(org, big)
    denied_pairs = [(r, t) for r in REGIONS for t in TAGGED if truth(org, big, r, t)]
    assert len(denied_pairs) >= 3
    for key in denied_pairs:
        expected[key] = ("tags_denied", "AccessDeniedException", expected[key][2])  # resources kept, tags unknown
    assert outcome(snaps[big]) == expected
    for region, resource_type in denied_pairs:
        (status,) = [s for s in snaps[big].statuses_of(resource_type) if s.region == region]
        assert status.message == "ListTags denied (AccessDeniedException); resources collected, tags not"
    assert {type(i.tags) for i in snaps[big].items_of("model_quality_job_definition")} == {type(None)}
    assert all(i.tags is None for i in snaps[big].items_of("monitoring_schedule"))
    # One denied ListTags per region and type, then the collector stops asking.
    assert proxy.injected == {"access_denied": len(denied_pairs)}
    assert outcome(snaps[other]) == complete(org, other)
    assert any(i.tags for i in snaps[other].items_of("model_quality_job_definition"))


def test_opt_in_region_not_enabled_is_denied_for_that_region_only(org: DemoOrg, proxied: Any, tmp_path: Path) -> None:
    big, other, _ = members(org)
    with proxied(faults.region_not_enabled("eu-west-1", accounts=big)) as proxy:
        snaps = collect_each(tmp_path, [big, other])
    expected = complete(org, big)
    for t in TYPES:
        expected["eu-west-1", t] = ("region_disabled", "UnrecognizedClientException", frozenset())
    assert outcome(snaps[big]) == expected
    assert {i.region for i in snaps[big].items} == {"us-east-1"}
    assert proxy.injected == {"region_not_enabled": len(TYPES)}  # the first call of each type; nothing retried
    assert outcome(snaps[other]) == complete(org, other)


def test_opt_in_region_not_enabled_message_says_so(org: DemoOrg, proxied: Any, tmp_path: Path) -> None:
    big, _, _ = members(org)
    with proxied(faults.region_not_enabled("eu-west-1", accounts=big)):
        snap = collect_each(tmp_path, [big], regions=("eu-west-1",))[big]
    assert {(s.status, s.error_code) for s in snap.statuses} == {("region_disabled", "UnrecognizedClientException")}
    messages = {s.message for s in snap.statuses}
    assert len(messages) == 1
    (message,) = messages
    assert "eu-west-1" in message and "not enabled" in message
    assert "The security token included in the request is invalid." in message  # AWS's words kept too


# ---------------------------------------------------------------------------------------------
# Races and discovery


def test_definition_deleted_between_list_and_describe(
    org: DemoOrg, fake_org: tuple[DemoOrg, str], proxied: Any, tmp_path: Path
) -> None:
    from moto.sagemaker.models import sagemaker_backends

    big, other, _ = members(org)
    backend = sagemaker_backends[other]["us-east-1"]
    template = next(iter(org.region(other, "us-east-1").job_definitions)).request
    sm = member_sagemaker(fake_org[1], other, "us-east-1")
    sm.create_model_quality_job_definition(**{**template, "JobDefinitionName": "mq-ephemeral"})
    seen: list[Call] = []

    def delete_before_describe(call: Call, body: bytes) -> None:
        if call.operation == "DescribeModelQualityJobDefinition" and b'"mq-ephemeral"' in body:
            seen.append(call)
            job_definitions(backend, "ModelQuality").pop("mq-ephemeral", None)

    try:
        with proxied(before_forward=delete_before_describe) as proxy:
            snaps = collect_each(tmp_path, [other, big])
    finally:
        job_definitions(backend, "ModelQuality").pop("mq-ephemeral", None)
    assert seen == [Call("sagemaker", "DescribeModelQualityJobDefinition", other, "us-east-1")]
    assert outcome(snaps[other]) == complete(org, other)  # listed, vanished, skipped: still ok
    assert "mq-ephemeral" not in {i.name for i in snaps[other].items}
    assert outcome(snaps[big]) == complete(org, big)
    assert proxy.injected == {}


def member_sagemaker(url: str, account: str, region: str) -> Any:
    creds = boto3.client("sts", endpoint_url=url).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="test"
    )["Credentials"]
    return boto3.client(
        "sagemaker",
        region_name=region,
        endpoint_url=url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def test_organizations_denied_points_to_sm_assets_accounts(org: DemoOrg, proxied: Any, tmp_path: Path) -> None:
    with proxied(faults.organizations_denied()) as proxy:
        with pytest.raises(AccountDiscoveryError) as excinfo:
            list_org_accounts()
        assert "ListAccounts failed (AccessDeniedException)" in str(excinfo.value)
        assert "SM_ASSETS_ACCOUNTS=" in str(excinfo.value)
        with pytest.raises(AccountDiscoveryError):
            resolve_account_ids(Settings.build(data_dir=tmp_path, regions=REGIONS, role_name=ROLE))
        explicit = Settings.build(data_dir=tmp_path, regions=REGIONS, role_name=ROLE, accounts=org.member_account_ids)
        assert resolve_account_ids(explicit) == org.member_account_ids  # no Organizations call needed
    assert proxy.injected == {"organizations_denied": 2}
    assert [c.account for c in proxy.calls_of("organizations", "ListAccounts")] == [org.management_account_id] * 2


def test_suspended_accounts_are_not_collected(org: DemoOrg, proxied: Any, tmp_path: Path) -> None:
    with proxied() as proxy:
        states = {a.account_id: a.state for a in list_org_accounts()}
        accounts = resolve_account_ids(Settings.build(data_dir=tmp_path, regions=REGIONS, role_name=ROLE))
    (suspended,) = org.suspended_account_ids
    assert states[suspended] == "SUSPENDED"
    assert accounts == sorted(org.active_account_ids)
    assert suspended not in accounts and set(org.denied_account_ids) <= set(accounts)
    assert len(proxy.calls_of("organizations", "ListAccounts")) == 2

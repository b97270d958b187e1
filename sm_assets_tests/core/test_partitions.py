"""Every AWS partition, one per configuration, and a home region for Organizations and STS.

The fake is the bench server (benchmarks/fake_aws_bench.py) on 127.0.0.1: with one AWS_ENDPOINT_URL every
region reaches it, and it tells regions apart by the SigV4 credential scope, refusing what AWS refuses.
"""

import io
import json
import re
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from benchmarks.fake_aws_bench import DEFAULT_ROLE_NAME, BenchServer, Fleet, generate_fleet
from sm_assets.cli import main
from sm_assets.core.accounts import resolve_account_ids
from sm_assets.core.aws_clients import aws_partition, organizations_region
from sm_assets.core.collection import collect_account
from sm_assets.core.config import ConfigError, Settings
from sm_assets.core.credentials import role_arn, sts_client
from sm_assets.core.iam_policies import DOCUMENTS, render_policies, shipped_document
from sm_assets.doctor import format_doctor, run_doctor

GOV_REGIONS = ("us-gov-west-1", "us-gov-east-1")
CN_REGIONS = ("cn-north-1", "cn-northwest-1")
# ap-east-1 is an opt-in region: first, as the collector used to call STS in the first configured region.
OPT_IN_REGIONS = ("ap-east-1", "us-east-1")


def settings(tmp_path: Path, regions: tuple[str, ...], **kwargs: Any) -> Settings:
    return Settings.build(
        data_dir=tmp_path, regions=regions, role_name=DEFAULT_ROLE_NAME, check_writable=False, **kwargs
    )


def strings(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for value in document.values():
            yield from strings(value)
    elif isinstance(document, list):
        for value in document:
            yield from strings(value)
    elif isinstance(document, str):
        yield document


def iam_wildcard(pattern: str, value: str) -> bool:
    return re.fullmatch("".join(".*" if c == "*" else re.escape(c) for c in pattern), value) is not None


# ---------------------------------------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize(
    ("region", "partition", "org_region"),
    [
        ("eu-west-1", "aws", "us-east-1"),
        ("us-gov-east-1", "aws-us-gov", "us-gov-west-1"),
        ("cn-north-1", "aws-cn", "cn-northwest-1"),
    ],
)
def test_partition_and_organizations_region_come_from_botocore(region: str, partition: str, org_region: str) -> None:
    assert aws_partition(region) == partition
    assert organizations_region(region) == org_region
    assert organizations_region(org_region) == org_region


@pytest.mark.parametrize(
    ("regions", "chain", "home", "source"),
    [
        (GOV_REGIONS, None, "us-gov-west-1", "aws-us-gov's Organizations region"),
        (GOV_REGIONS, "us-gov-east-1", "us-gov-east-1", "the AWS region chain"),
        (CN_REGIONS, None, "cn-northwest-1", "aws-cn's Organizations region"),
        (CN_REGIONS, "cn-north-1", "cn-north-1", "the AWS region chain"),
        # The chain's region of another partition is no home for this one.
        (CN_REGIONS, "us-east-1", "cn-northwest-1", "aws-cn's Organizations region; the chain's us-east-1 is in aws"),
        (("eu-west-1",), "eu-central-1", "eu-central-1", "the AWS region chain"),
        (("eu-west-1",), None, "us-east-1", "aws's Organizations region"),
    ],
)
def test_default_home_region(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    regions: tuple[str, ...],
    chain: str | None,
    home: str,
    source: str,
) -> None:
    if chain:
        monkeypatch.setenv("AWS_DEFAULT_REGION", chain)
    else:
        monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    s = settings(tmp_path, regions)
    assert (s.home_region, s.home_region_source) == (home, source)
    assert s.partition == aws_partition(regions[0])


def test_explicit_home_region_and_what_follows_the_partition(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "SM_ASSETS_DATA_DIR": str(tmp_path),
            "SM_ASSETS_REGIONS": ",".join(GOV_REGIONS),
            "SM_ASSETS_HOME_REGION": "us-gov-east-1",
        },
        check_writable=False,
    )
    assert (s.home_region, s.home_region_source, s.partition) == (
        "us-gov-east-1",
        "SM_ASSETS_HOME_REGION",
        "aws-us-gov",
    )
    assert s.organizations_region == "us-gov-west-1"
    assert role_arn("111122223333", s) == f"arn:aws-us-gov:iam::111122223333:role/{DEFAULT_ROLE_NAME}"
    # STS: the home region's own endpoint, as botocore resolves it (regional), never a member region.
    sts = sts_client(boto3.Session(), s)
    assert (sts.meta.region_name, sts.meta.endpoint_url) == ("us-gov-east-1", "https://sts.us-gov-east-1.amazonaws.com")
    cn = settings(tmp_path, CN_REGIONS, home_region="cn-north-1")
    assert sts_client(boto3.Session(), cn).meta.endpoint_url == "https://sts.cn-north-1.amazonaws.com.cn"
    assert role_arn("111122223333", cn).startswith("arn:aws-cn:iam::111122223333:role/")


@pytest.mark.parametrize(
    ("regions", "partitions"),
    [
        ("us-east-1,us-gov-west-1", ("aws (us-east-1)", "aws-us-gov (us-gov-west-1)")),
        ("cn-north-1,eu-west-1,cn-northwest-1", ("aws-cn (cn-north-1, cn-northwest-1)", "aws (eu-west-1)")),
        ("us-gov-east-1,cn-north-1", ("aws-us-gov (us-gov-east-1)", "aws-cn (cn-north-1)")),
    ],
)
def test_mixed_partitions_are_one_line_naming_both(tmp_path: Path, regions: str, partitions: tuple[str, str]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        Settings.from_env({"SM_ASSETS_DATA_DIR": str(tmp_path), "SM_ASSETS_REGIONS": regions}, check_writable=False)
    message = str(excinfo.value)
    assert "\n" not in message and "mixes AWS partitions" in message
    assert all(p in message for p in partitions), message


@pytest.mark.parametrize(
    ("home", "needle"),
    [
        (
            "us-east-1",
            "SM_ASSETS_HOME_REGION us-east-1 is in partition aws but SM_ASSETS_REGIONS (us-gov-west-1, "
            "us-gov-east-1) in aws-us-gov",
        ),
        ("narnia-1", "SM_ASSETS_HOME_REGION 'narnia-1' is not a region"),
    ],
)
def test_bad_home_region_is_one_line(tmp_path: Path, home: str, needle: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        settings(tmp_path, GOV_REGIONS, home_region=home)
    assert needle in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_dagster_resource_carries_the_home_region(tmp_path: Path) -> None:
    from sm_assets.defs.resources import SmAssetsConfig

    s = settings(tmp_path, CN_REGIONS, home_region="cn-north-1")
    again = SmAssetsConfig.from_settings(s).settings()
    assert (again.home_region, again.partition, again.regions) == ("cn-north-1", "aws-cn", CN_REGIONS)


# ---------------------------------------------------------------------------------------------------------
# IAM documents for the partition


def test_shipped_documents_render_unchanged_for_the_commercial_default(tmp_path: Path) -> None:
    rendered = render_policies(settings(tmp_path, ("us-east-1",)))
    assert rendered == {name: shipped_document(name) for name in DOCUMENTS}


@pytest.mark.parametrize("regions", [GOV_REGIONS, CN_REGIONS, ("eu-west-1",)])
def test_every_arn_follows_the_partition_and_the_role_name(tmp_path: Path, regions: tuple[str, ...]) -> None:
    s = Settings.build(
        data_dir=tmp_path, regions=regions, role_name="Inventory-RO", external_id="ext-42", check_writable=False
    )
    rendered = render_policies(s)
    arns = [v for doc in rendered.values() for v in strings(doc) if v.startswith("arn:")]
    assert arns and all(a.startswith(f"arn:{s.partition}:") for a in arns), arns
    assume = next(st["Resource"] for st in rendered["caller"]["Statement"] if "sts:AssumeRole" in st["Action"])
    # The one role ARN the caller may assume is the one the collector assumes, and only that one.
    assert assume == f"arn:{s.partition}:iam::*:role/Inventory-RO"
    assert iam_wildcard(assume, role_arn("111122223333", s))
    assert not iam_wildcard(assume, "arn:aws-iso:iam::111122223333:role/Inventory-RO")
    trust = rendered["trust"]["Statement"][0]
    assert trust["Condition"]["StringEquals"]["sts:ExternalId"] == "ext-42"
    assert DEFAULT_ROLE_NAME not in json.dumps(rendered)


def test_iam_policy_command_prints_the_rendered_documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_ASSETS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SM_ASSETS_REGIONS", ",".join(CN_REGIONS))
    expected = render_policies(Settings.from_env(check_writable=False))
    for args, want in ((["iam-policy"], expected), (["iam-policy", "caller"], expected["caller"])):
        out = io.StringIO()
        with redirect_stdout(out):
            assert main(args) == 0
        assert json.loads(out.getvalue()) == want
    assert "arn:aws-cn:iam::*:role/" in json.dumps(expected["caller"])


# ---------------------------------------------------------------------------------------------------------
# Against the fake: it answers only in the right regions, with the partition's ARNs


@pytest.fixture(scope="module")
def gov_fleet() -> Fleet:
    return generate_fleet(3, GOV_REGIONS, max_definitions=3, min_definitions=1, seed=13)


@pytest.fixture(scope="module")
def gov_server(gov_fleet: Fleet) -> Iterator[BenchServer]:
    with BenchServer(gov_fleet, latency_s=0, rate=None) as bench:
        yield bench


def client(url: str, service: str, region: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=url)


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    return excinfo.value.response["Error"]["Code"]


def test_the_fake_refuses_what_aws_refuses(gov_server: BenchServer, gov_fleet: Fleet) -> None:
    """Without this, the end-to-end tests below would prove nothing: the fake must fail the old behaviour."""
    url, account = gov_server.url, gov_fleet.accounts[1]
    # Commercial regions (Organizations and STS in us-east-1) do not know GovCloud credentials.
    assert error_code(client(url, "organizations", "us-east-1").list_accounts) == "UnrecognizedClientException"
    assert error_code(client(url, "sts", "us-east-1").get_caller_identity) == "InvalidClientTokenId"
    # Organizations has one endpoint per partition.
    assert error_code(client(url, "organizations", "us-gov-east-1").list_accounts) == "InvalidSignatureException"
    page = client(url, "organizations", "us-gov-west-1").list_accounts()
    assert all(a["Arn"].startswith("arn:aws-us-gov:organizations::") for a in page["Accounts"])
    # A commercial role ARN is no role of this partition.
    sts = client(url, "sts", "us-gov-east-1")
    commercial = f"arn:aws:iam::{account}:role/{DEFAULT_ROLE_NAME}"
    assert error_code(sts.assume_role, RoleArn=commercial, RoleSessionName="test") == "ValidationError"
    assumed = sts.assume_role(RoleArn=f"arn:aws-us-gov:iam::{account}:role/{DEFAULT_ROLE_NAME}", RoleSessionName="test")
    assert assumed["AssumedRoleUser"]["Arn"].startswith(f"arn:aws-us-gov:sts::{account}:assumed-role/")
    definition = next(d for r in GOV_REGIONS for d in gov_fleet.region(account, r).definitions)
    assert definition.arn.startswith("arn:aws-us-gov:sagemaker:us-gov-")


def test_collection_in_govcloud_calls_only_the_partitions_endpoints(
    gov_server: BenchServer, gov_fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", gov_server.url)
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # home: the partition's Organizations region
    gov_server.reset_stats()
    s = settings(tmp_path, GOV_REGIONS)
    accounts = resolve_account_ids(s)
    assert accounts == sorted(gov_fleet.accounts)
    for account in accounts:
        snapshot = collect_account(account, s)
        assert {st.status for st in snapshot.statuses} == {"ok"}, snapshot.statuses
        truth = {d.arn for r in GOV_REGIONS for d in gov_fleet.region(account, r).definitions}
        assert {i.arn for i in snapshot.items_of("model_quality_job_definition")} == truth
    stats = gov_server.stats()
    assert stats["refused"] == 0
    assert set(stats["by_scope"]) == {
        "organizations/us-gov-west-1",
        "sts/us-gov-west-1",
        *(f"sagemaker/{r}" for r in GOV_REGIONS),
    }


def test_doctor_in_govcloud(
    gov_server: BenchServer, gov_fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", gov_server.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-gov-east-1")
    checks = run_doctor(settings(tmp_path / "data", GOV_REGIONS))
    assert all(c.ok for c in checks), format_doctor(checks)
    by_name = {c.name: c for c in checks}
    assert by_name["credentials"].detail.startswith(f"arn:aws-us-gov:iam::{gov_fleet.management_account_id}:")
    home = by_name["home_region"].detail
    assert home.startswith("partition aws-us-gov, home region us-gov-east-1 (the AWS region chain): STS answers at")
    assert "Organizations is called in us-gov-west-1" in home
    assert "ListAccounts ok" in by_name["organizations"].detail


@pytest.fixture(scope="module")
def opt_in_fleet() -> Fleet:
    return generate_fleet(3, OPT_IN_REGIONS, max_definitions=2, min_definitions=1, seed=21)


@pytest.fixture(scope="module")
def opt_in_server(opt_in_fleet: Fleet) -> Iterator[BenchServer]:
    # The collector's own (management) account has not enabled ap-east-1; the members have.
    disabled = {opt_in_fleet.management_account_id: {"ap-east-1"}}
    with BenchServer(opt_in_fleet, latency_s=0, rate=None, disabled_regions=disabled) as bench:
        yield bench


def test_sts_never_depends_on_a_member_region(
    opt_in_server: BenchServer, opt_in_fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", opt_in_server.url)
    # STS in the first configured region would refuse the caller, and every account would look denied.
    assert error_code(client(opt_in_server.url, "sts", "ap-east-1").get_caller_identity) == "InvalidClientTokenId"
    opt_in_server.reset_stats()
    s = settings(tmp_path, OPT_IN_REGIONS)
    assert s.home_region == "us-east-1"
    management = opt_in_fleet.management_account_id
    for account in resolve_account_ids(s):
        statuses = {(st.region, st.status, st.error_code) for st in collect_account(account, s).statuses}
        if account == management:  # its own SageMaker in ap-east-1 is not enabled: that region only
            assert {st for st in statuses if st[0] == "ap-east-1"} == {
                ("ap-east-1", "region_disabled", "UnrecognizedClientException")
            }
            assert {st for st in statuses if st[0] == "us-east-1"} == {("us-east-1", "ok", None)}
        else:
            assert {st[1] for st in statuses} == {"ok"}, statuses
    assert [k for k in opt_in_server.stats()["by_scope"] if k.startswith("sts/")] == ["sts/us-east-1"]


def test_doctor_reports_an_opt_in_home_region_not_enabled_with_the_fix(
    opt_in_server: BenchServer, opt_in_fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", opt_in_server.url)
    checks = run_doctor(settings(tmp_path / "data", OPT_IN_REGIONS, home_region="ap-east-1"))
    by_name = {c.name: c for c in checks}
    management = opt_in_fleet.management_account_id
    assert by_name["credentials"].ok and "answered by STS in us-east-1" in by_name["credentials"].detail
    home = by_name["home_region"]
    assert not home.ok and not home.skipped
    assert home.detail.startswith("partition aws, home region ap-east-1 (SM_ASSETS_HOME_REGION): ")
    assert f"ap-east-1 is an opt-in region not enabled in account {management}" in home.detail
    assert home.fix is not None
    assert "aws account enable-region --region-name ap-east-1" in home.fix
    assert "set SM_ASSETS_HOME_REGION to a region enabled there, e.g. us-east-1" in home.fix
    assert by_name["organizations"].ok  # Organizations does not go through the home region's STS
    assert by_name["assume_role"].skipped and by_name["regions"].skipped
    line = next(line for line in format_doctor(checks).splitlines() if " home_region: " in line)
    assert line.startswith("FAIL home_region: ") and "  fix: enable ap-east-1 " in line

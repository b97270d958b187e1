"""A GovCloud and a China organization, end to end through `sm-assets refresh` and `sm-assets doctor`.

The fake (benchmarks/fake_aws_bench.py, on 127.0.0.1) answers only in the partition's regions, Organizations
only in the partition's Organizations region, and takes and hands out only the partition's ARNs.
"""

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from benchmarks.fake_aws_bench import BenchServer, Fleet, generate_fleet
from sm_assets_tests.e2e.test_cli import run_cli

ORGANIZATIONS = {
    # partition: (regions, AWS_DEFAULT_REGION of the collector, the home region that follows, Organizations region)
    "aws-us-gov": (("us-gov-west-1", "us-gov-east-1"), None, "us-gov-west-1", "us-gov-west-1"),
    "aws-cn": (("cn-north-1", "cn-northwest-1"), "cn-north-1", "cn-north-1", "cn-northwest-1"),
}


@pytest.fixture(params=sorted(ORGANIZATIONS))
def organization(request: pytest.FixtureRequest) -> Iterator[tuple[str, Fleet, BenchServer]]:
    regions = ORGANIZATIONS[request.param][0]
    fleet = generate_fleet(3, regions, max_definitions=3, min_definitions=1, seed=31)
    with BenchServer(fleet, latency_s=0, rate=None) as server:
        yield request.param, fleet, server


def test_refresh_and_doctor_in_the_partition(organization: tuple[str, Fleet, BenchServer], tmp_path: Path) -> None:
    partition, fleet, server = organization
    regions, chain_region, home, org_region = ORGANIZATIONS[partition]
    env = {
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "SM_ASSETS_REGIONS": ",".join(regions),
        "SM_ASSETS_DATA_DIR": str(tmp_path / "data"),
        **({"AWS_DEFAULT_REGION": chain_region} if chain_region else {}),
    }
    result = run_cli(["refresh"], env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert f"done: {len(fleet.accounts)} collected, 0 with denied access, 0 failed" in result.stdout

    with duckdb.connect(str(tmp_path / "data" / "sm_assets.duckdb"), read_only=True) as conn:
        stored = conn.execute(
            "SELECT account_id, _key, role_arn FROM aws.sagemaker_model_quality_job_definition"
        ).fetchall()
        statuses = conn.execute("SELECT DISTINCT status FROM aws.collection_status").fetchall()
    truth = {
        (account, d.arn, d.describe["RoleArn"])
        for account in fleet.accounts
        for region in regions
        for d in fleet.region(account, region).definitions
    }
    assert truth and set(stored) == truth
    assert all(arn.startswith(f"arn:{partition}:sagemaker:") for _, arn, _ in stored)
    assert {arn.split(":")[3] for _, arn, _ in stored} == set(regions)
    assert all(role.startswith(f"arn:{partition}:iam::") for _, _, role in stored)
    assert statuses == [("ok",)]
    stats = server.stats()
    assert stats["refused"] == 0
    # Organizations in its region, STS in the home region only, SageMaker in the configured regions.
    assert set(stats["by_scope"]) == {
        f"organizations/{org_region}",
        f"sts/{home}",
        *(f"sagemaker/{r}" for r in regions),
    }

    doctor = run_cli(["doctor"], env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"ok   home_region: partition {partition}, home region {home} " in doctor.stdout
    assert f"Organizations is called in {org_region}" in doctor.stdout
    assert f"ok   credentials: arn:{partition}:iam::{fleet.management_account_id}:" in doctor.stdout


def test_mixed_regions_fail_with_one_line_naming_both_partitions(tmp_path: Path) -> None:
    result = run_cli(
        ["refresh"], {"SM_ASSETS_DATA_DIR": str(tmp_path), "SM_ASSETS_REGIONS": "us-gov-west-1,us-east-1"}, timeout=60
    )
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("sm-assets: error: SM_ASSETS_REGIONS mixes AWS partitions ")
    assert "aws-us-gov (us-gov-west-1)" in line and "aws (us-east-1)" in line
    assert not (tmp_path / "lake").exists()

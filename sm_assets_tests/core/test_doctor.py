"""`sm-assets doctor` against the demo's fake organization on 127.0.0.1, plus stubbed AWS failures."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from botocore.stub import Stubber

from sm_assets.core.config import Settings
from sm_assets.doctor import (
    DoctorCheck,
    check_duckdb,
    check_regions,
    doctor_exit_code,
    format_doctor,
    main_doctor,
    run_doctor,
    trust_principal,
)

NAMES = ["credentials", "home_region", "organizations", "assume_role", "regions", "data_dir", "duckdb"]


@pytest.fixture(scope="module")
def fake_org() -> Iterator[tuple[str, Any]]:
    from sm_assets.demo.fake_aws import fake_aws_server
    from sm_assets.demo.seed import seed_demo_org

    with pytest.MonkeyPatch.context() as mp:
        # Module scope: the autouse credential fixture is function-scoped, so set the seed's own here.
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_CONFIG_FILE", "/dev/null")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(var, raising=False)
        with fake_aws_server() as url:
            yield url, seed_demo_org(url, accounts=3)


@pytest.fixture
def endpoint(fake_org: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    url, _ = fake_org
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    return url


def settings_for(tmp_path: Path, org: Any, accounts: list[str] | None) -> Settings:
    return Settings.build(data_dir=tmp_path / "data", regions=org.regions, role_name=org.role_name, accounts=accounts)


def by_name(checks: list[DoctorCheck]) -> dict[str, DoctorCheck]:
    assert [c.name for c in checks] == NAMES
    return {c.name: c for c in checks}


def test_everything_working(fake_org: tuple[str, Any], endpoint: str, tmp_path: Path) -> None:
    _, org = fake_org
    settings = settings_for(tmp_path, org, org.collectible_account_ids)
    checks = run_doctor(settings, sample=3)
    c = by_name(checks)
    assert all(check.ok for check in checks), format_doctor(checks)
    assert doctor_exit_code(checks) == 0
    # moto's identity for the fake keys; real AWS says arn:aws:iam::ACCOUNT:user/NAME or an assumed-role ARN.
    assert c["credentials"].detail.startswith(f"arn:aws:sts::{org.management_account_id}:")
    assert f"(account {org.management_account_id})" in c["credentials"].detail
    assert c["organizations"].skipped and "SM_ASSETS_ACCOUNTS is set" in c["organizations"].detail
    for account_id in org.collectible_account_ids[:3]:
        assert account_id in c["assume_role"].detail
    assert "3/3" in c["assume_role"].detail
    assert all(region in c["regions"].detail for region in org.regions)
    assert "no file yet" in c["duckdb"].detail and "sm-assets refresh" in c["duckdb"].detail

    lines = format_doctor(checks).splitlines()
    assert len(lines) == len(NAMES)
    assert lines[0].startswith("ok   credentials: arn:aws:")
    assert lines[1].startswith("ok   home_region: partition aws, home region us-east-1 (the AWS region chain): ")
    assert f"STS answers at {endpoint}" in lines[1] and "Organizations is called in us-east-1" in lines[1]
    assert lines[2].startswith("skip organizations: SM_ASSETS_ACCOUNTS is set (3 accounts)")
    assert not any("fix:" in line for line in lines)

    printed: list[str] = []
    assert main_doctor(settings, sample=3, echo=printed.append) == 0
    assert printed[-1] == "doctor: 6 ok, 1 skipped, 0 failed"


def test_missing_role_in_the_sample_fails_and_names_account_and_fix(
    fake_org: tuple[str, Any], endpoint: str, tmp_path: Path
) -> None:
    _, org = fake_org
    (denied,) = org.denied_account_ids
    # No SM_ASSETS_ACCOUNTS: the sample comes from Organizations; a sample as big as the org includes `denied`.
    settings = settings_for(tmp_path, org, None)
    checks = run_doctor(settings, sample=len(org.active_account_ids))
    c = by_name(checks)
    assert c["organizations"].ok and not c["organizations"].skipped
    assert f"{len(org.active_account_ids)} ACTIVE" in c["organizations"].detail  # suspended one not counted
    failed = c["assume_role"]
    assert not failed.ok and not failed.skipped
    assert f"{denied} (AccessDenied)" in failed.detail
    assert f"1/{len(org.active_account_ids)}" in failed.detail
    for ok_account in org.collectible_account_ids:
        assert ok_account not in failed.detail
    assert failed.fix is not None
    assert org.role_name in failed.fix and denied in failed.fix
    assert "sm_assets/iam/member-role-policy.json" in failed.fix
    assert "sm_assets/iam/member-role-trust-policy.json" in failed.fix
    # The role could be assumed elsewhere, so the region check still ran.
    assert c["regions"].ok and not c["regions"].skipped
    assert doctor_exit_code(checks) == 1

    line = next(line for line in format_doctor(checks).splitlines() if "assume_role" in line)
    assert line.startswith("FAIL assume_role: ") and "  fix: create role " in line and "\n" not in line

    printed: list[str] = []
    assert main_doctor(settings, sample=10, echo=printed.append) == 1
    assert printed[-1] == "doctor: 6 ok, 1 failed (assume_role)"


def test_only_denied_accounts_skips_regions(fake_org: tuple[str, Any], endpoint: str, tmp_path: Path) -> None:
    _, org = fake_org
    checks = run_doctor(settings_for(tmp_path, org, org.denied_account_ids))
    c = by_name(checks)
    assert not c["assume_role"].ok
    assert c["regions"].skipped and c["regions"].ok


def test_corrupt_duckdb_file_is_one_line_with_fix(tmp_path: Path) -> None:
    # No AWS involved: the local checks run even when the credentials check fails.
    settings = Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="r", accounts=["111111111111"])
    settings.duckdb_path.write_bytes(b"this is not a DuckDB database\n" * 200)
    c = {check.name: check for check in run_doctor(settings, base_session=_NoCredentials())}
    assert not c["credentials"].ok and "no AWS credentials" in c["credentials"].detail
    assert all(c[n].skipped for n in ("organizations", "assume_role", "regions"))
    assert c["data_dir"].ok
    broken = c["duckdb"]
    assert not broken.ok and str(settings.duckdb_path) in broken.detail
    assert broken.fix is not None and "sm-assets refresh" in broken.fix and "replaces it" in broken.fix
    line = format_doctor([broken])
    assert line.startswith("FAIL duckdb: ") and "\n" not in line


def test_locked_duckdb_file_is_one_line_with_fix(tmp_path: Path) -> None:
    settings = Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="r")
    # Another process holds DuckDB's write lock (as a read-write client would).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute('SELECT 1'); print('locked', flush=True);"
            " sys.stdin.read()",
            str(settings.duckdb_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        check = check_duckdb(settings)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert not check.ok and "locked by another process" in check.detail
    assert check.fix is not None and "read-only" in check.fix
    assert "\n" not in format_doctor([check])


def test_trust_principal_of_an_assumed_role_is_the_role() -> None:
    assert (
        trust_principal("arn:aws:sts::111111111111:assumed-role/SmAssetsCollector/botocore-session-1")
        == "arn:aws:iam::111111111111:role/SmAssetsCollector"
    )
    assert trust_principal("arn:aws:iam::111111111111:user/alice") == "arn:aws:iam::111111111111:user/alice"


def test_valid_duckdb_file_reports_views(tmp_path: Path) -> None:
    settings = Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="r")
    with duckdb.connect(str(settings.duckdb_path)) as conn:
        conn.execute("CREATE SCHEMA aws; CREATE VIEW aws.v AS SELECT 1 AS x")
    c = {check.name: check for check in run_doctor(settings, base_session=_NoCredentials())}
    assert c["duckdb"].ok and "aws: 1" in c["duckdb"].detail


def test_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = Settings.build(data_dir=blocker / "data", regions=["us-east-1"], role_name="r", check_writable=False)
    c = {check.name: check for check in run_doctor(settings, base_session=_NoCredentials())}
    assert not c["data_dir"].ok and "SM_ASSETS_DATA_DIR" in (c["data_dir"].fix or "")


def test_s3_data_dir_reachable_and_writable(tmp_path: Path, s3_data_dir: str) -> None:
    settings = Settings.build(
        data_dir=s3_data_dir, duckdb_path=tmp_path / "db" / "sm_assets.duckdb", regions=["us-east-1"], role_name="r"
    )
    c = {check.name: check for check in run_doctor(settings, base_session=_NoCredentials())}
    assert c["data_dir"].ok and f"{s3_data_dir} is reachable and writable (endpoint http://127.0.0.1:" in (
        c["data_dir"].detail
    )
    assert str(tmp_path / "db") in c["data_dir"].detail and c["duckdb"].ok


def test_s3_data_dir_missing_bucket(tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    settings = Settings.build(
        data_dir="s3://no-such-bucket-x/p",
        duckdb_path=tmp_path / "sm_assets.duckdb",
        regions=["us-east-1"],
        role_name="r",
        check_writable=False,
    )
    c = {check.name: check for check in run_doctor(settings, base_session=_NoCredentials())}
    check = c["data_dir"]
    assert not check.ok and "s3://no-such-bucket-x/p" in check.detail and "bucket does not exist" in check.detail
    assert "s3:ListBucket" in (check.fix or "") and "\n" not in check.detail


# ---------------------------------------------------------------------------------------------------------
# Failures the fake organization cannot produce: stubbed clients


class _NoCredentials(boto3.Session):
    def __init__(self) -> None:
        super().__init__(aws_access_key_id=None, aws_secret_access_key=None)

    def client(self, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import NoCredentialsError

        raise NoCredentialsError()


class _StubbedSession:
    """A session whose clients of one service answer with a canned error."""

    def __init__(self, service: str, errors: dict[str, str], operation: str) -> None:
        self.service, self.errors, self.operation = service, errors, operation
        self.stubbers: list[Stubber] = []

    def client(self, service: str, region_name: str = "us-east-1", **kwargs: Any) -> Any:
        client = boto3.client(service, region_name=region_name, **kwargs)
        if service == self.service:
            stubber = Stubber(client)
            code = self.errors.get(region_name)
            if code:
                stubber.add_client_error(self.operation, service_error_code=code, http_status_code=400)
            else:
                stubber.add_response(self.operation, {"Endpoints": []}, {"MaxResults": 1})
            stubber.activate()
            self.stubbers.append(stubber)
        return client


def test_region_not_enabled_names_region_and_fix() -> None:
    session = _StubbedSession(
        "sagemaker",
        {"ap-east-1": "UnrecognizedClientException", "me-south-1": "InvalidClientTokenId"},
        "list_endpoints",
    )
    check = check_regions(session, "111111111111", ["us-east-1", "ap-east-1", "me-south-1"])  # type: ignore[arg-type]
    assert not check.ok
    assert "not enabled in account 111111111111: ap-east-1, me-south-1" in check.detail
    assert "us-east-1" not in check.detail
    assert check.fix is not None and "SM_ASSETS_REGIONS" in check.fix and "enable-region" in check.fix


def test_region_denied_points_at_member_policy() -> None:
    session = _StubbedSession("sagemaker", {"eu-west-1": "AccessDeniedException"}, "list_endpoints")
    check = check_regions(session, "111111111111", ["us-east-1", "eu-west-1"])  # type: ignore[arg-type]
    assert not check.ok and "denied in eu-west-1" in check.detail
    assert "member-role-policy.json" in (check.fix or "")


def test_organizations_denied_suggests_accounts_variable(
    fake_org: tuple[str, Any], endpoint: str, tmp_path: Path
) -> None:
    _, org = fake_org

    class OrgDenied(boto3.Session):
        def client(self, service: str, *args: Any, **kwargs: Any) -> Any:
            client = super().client(service, *args, **kwargs)
            if service == "organizations":
                stubber = Stubber(client)
                stubber.add_client_error("list_accounts", service_error_code="AccessDeniedException")
                stubber.activate()
            return client

    c = by_name(run_doctor(settings_for(tmp_path, org, None), base_session=OrgDenied()))
    assert not c["organizations"].ok and "AccessDeniedException" in c["organizations"].detail
    assert "SM_ASSETS_ACCOUNTS=" in (c["organizations"].fix or "")
    assert c["assume_role"].skipped and c["regions"].skipped

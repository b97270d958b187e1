"""End to end through the `sm-assets` console script, in subprocesses, against a fake AWS on 127.0.0.1."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from sm_assets.core.specs import MODEL_QUALITY_JOB_DEFINITION_SPEC

MODEL_QUALITY_JOB_DEFINITION = MODEL_QUALITY_JOB_DEFINITION_SPEC.table
CLI = [sys.executable, "-m", "sm_assets.cli"]


def run_cli(args: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_ASSETS_", "DAGSTER_"))}
    full_env.update(env)
    return subprocess.run([*CLI, *args], env=full_env, capture_output=True, text=True, timeout=timeout)


def rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def run_plain_duckdb(db: Path, statements: list[str], env: dict[str, str]) -> list[object]:
    """What a notebook does: plain `duckdb`, the file opened read-only, no sm-assets import; the first value
    of each statement's result."""
    code = (
        "import duckdb, json, sys\n"
        "conn = duckdb.connect(sys.argv[1], read_only=True)\n"
        "print(json.dumps([(conn.execute(s).fetchone() or [None])[0] for s in sys.argv[2:]]))\n"
    )
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_ASSETS_", "DAGSTER_"))} | env
    result = subprocess.run(
        [sys.executable, "-c", code, str(db), *statements], env=full_env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_demo_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"SM_ASSETS_DATA_DIR": str(data)}
    first = run_cli(["demo"], env)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    out = first.stdout
    assert "access denied (AccessDenied): reported, not collected" in out
    assert "0 failed" in out and "reports for" in out and "materialized" in out
    assert "Worst accounts by coverage:" in out and "fleet_coverage_pct" in out
    db = data / "sm_assets.duckdb"
    described = rows(db, "DESCRIBE aws.sagemaker_model_quality_job_definition")
    assert [(r[0], r[1]) for r in described] == [(c.name, c.duckdb_type) for c in MODEL_QUALITY_JOB_DEFINITION.columns]
    accounts_with_rows = rows(db, "SELECT count(DISTINCT account_id) FROM aws.sagemaker_model_quality_job_definition")
    assert accounts_with_rows[0][0] >= 8
    assert (
        rows(db, "SELECT count(*) FROM aws.sagemaker_model_quality_job_definition WHERE tags['team'] IS NOT NULL")[0][0]
        > 0
    )
    denied = rows(db, "SELECT DISTINCT account_id FROM aws.collection_status WHERE status = 'access_denied'")
    assert len(denied) == 1
    assert rows(db, "SELECT count(*) FROM reports.model_quality_fleet_summary")[0][0] == 1
    # The demo owns its directory: running it again resets it instead of piling up accounts.
    second = run_cli(["demo"], env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert rows(db, "SELECT count(DISTINCT account_id) FROM aws.collection_status")[0][0] == 10


@pytest.fixture
def fake_org() -> Iterator[tuple[str, object]]:
    from sm_assets.demo.fake_aws import fake_aws_server
    from sm_assets.demo.seed import seed_demo_org

    with fake_aws_server() as endpoint:
        saved = os.environ.get("AWS_ENDPOINT_URL")
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        try:
            org = seed_demo_org(endpoint, accounts=4, seed=11)
        finally:
            if saved is None:
                os.environ.pop("AWS_ENDPOINT_URL", None)
            else:
                os.environ["AWS_ENDPOINT_URL"] = saved
        yield endpoint, org


def test_refresh_stores_exactly_what_exists(fake_org: tuple[str, object], tmp_path: Path) -> None:
    endpoint, org = fake_org
    env = {
        "AWS_ENDPOINT_URL": endpoint,  # the only setting needed to point every client at the fake
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SM_ASSETS_DATA_DIR": str(tmp_path / "data"),
    }
    db = tmp_path / "data" / "sm_assets.duckdb"
    db.parent.mkdir()
    db.write_bytes(b"this is not a duckdb database" * 100)  # holds only views: the refresh replaces it
    result = run_cli(["refresh"], env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (denied,) = org.denied_account_ids  # type: ignore[attr-defined]
    assert f"{denied}: access denied (AccessDenied)" in result.stdout

    stored = rows(
        db,
        "SELECT account_id, _key, tags, model_quality_job_input, job_resources, network_config "
        "FROM aws.sagemaker_model_quality_job_definition",
    )
    truth = {
        d.arn: d
        for t in org.resources.values()
        for d in t.job_definitions  # type: ignore[attr-defined]
        if t.account_id != denied
    }
    assert {r[1] for r in stored} == set(truth)
    for account_id, key, tags, job_input, resources, network in stored:
        d = truth[key]
        assert key.split(":")[4] == account_id
        # ListTags is denied in one account (an SCP): its resources are stored, their tags are unknown
        assert tags == (None if account_id in org.tags_denied_account_ids else d.tags)
        assert json.loads(job_input) == d.request["ModelQualityJobInput"]
        assert json.loads(resources) == d.request["JobResources"]
        assert (None if network is None else json.loads(network)) == d.request.get("NetworkConfig")
    assert rows(db, f"SELECT DISTINCT status FROM aws.collection_status WHERE account_id = '{denied}'") == [
        ("access_denied",)
    ]

    again = run_cli(["refresh"], env)
    assert again.returncode == 0, again.stderr[-3000:]
    total, distinct = rows(
        db, "SELECT count(*), count(DISTINCT _key) FROM aws.sagemaker_model_quality_job_definition_history"
    )[0]
    assert total == distinct == len(truth)

    report = run_cli(["report"], env)
    assert report.returncode == 0, report.stderr
    assert "accounts_denied" in report.stdout and "Worst accounts by coverage:" in report.stdout
    query = run_cli(["query", "SELECT count(*) AS n FROM aws.sagemaker_model_quality_job_definition"], env)
    assert query.returncode == 0 and query.stdout.splitlines()[2].strip() == str(len(truth)), query.stdout


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SM_ASSETS_ACCOUNTS": "1234,111111111111"}, "malformed account id(s): '1234'"),
        ({"SM_ASSETS_REGIONS": "us-east-1,narnia-1"}, "unknown region name(s): narnia-1"),
    ],
)
def test_bad_configuration_fails_fast_with_one_line(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    result = run_cli(["refresh"], {"SM_ASSETS_DATA_DIR": str(tmp_path), **env}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and needle in result.stderr
    assert not (tmp_path / "lake").exists()


def test_query_before_any_refresh_is_one_line(tmp_path: Path) -> None:
    result = run_cli(["query", "SELECT 1"], {"SM_ASSETS_DATA_DIR": str(tmp_path)}, timeout=60)
    assert result.returncode == 2 and "run `sm-assets refresh`" in result.stderr


def test_corrupt_duckdb_file_is_one_line_for_a_query(tmp_path: Path) -> None:
    (tmp_path / "sm_assets.duckdb").write_bytes(b"this is not a duckdb database" * 100)
    result = run_cli(["query", "SELECT 1"], {"SM_ASSETS_DATA_DIR": str(tmp_path)}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "query failed" in result.stderr


READER = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
conn.execute("SELECT count(*) FROM aws.sagemaker_endpoint").fetchall()
print("holding", flush=True)
sys.stdin.readline()  # hold the file until the test says so
print(conn.execute("SELECT count(*) FROM aws.sagemaker_endpoint").fetchone()[0], flush=True)
"""


def test_a_reader_holding_the_duckdb_file_never_blocks_a_refresh(fake_org: tuple[str, object], tmp_path: Path) -> None:
    """A notebook, BI tool or downstream job holds the DuckDB file open (read-only) for the whole refresh:
    the refresh finishes while the reader still holds it, and the reader keeps working."""
    endpoint, _ = fake_org
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SM_ASSETS_DATA_DIR": str(tmp_path / "data"),
    }
    assert run_cli(["refresh"], env).returncode == 0
    db = tmp_path / "data" / "sm_assets.duckdb"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "holding"
        again = run_cli(["refresh"], env, timeout=240)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
        assert reader.poll() is None  # the reader still holds the file: the refresh did not wait for it
        assert "lock" not in (again.stdout + again.stderr).lower()
        query = run_cli(["query", "SELECT count(*) AS n FROM aws.sagemaker_endpoint"], env)
        assert query.returncode == 0, query.stderr
    finally:
        out, _ = reader.communicate("done\n", timeout=60)
    assert reader.returncode == 0 and int(out.strip()) > 0


def test_refresh_and_query_with_the_lake_on_s3(
    fake_org: tuple[str, object], s3_data_dir: str, s3_endpoint: str, tmp_path: Path
) -> None:
    """The fake organization answers SageMaker/STS/Organizations (AWS_ENDPOINT_URL); the lake goes to moto's
    S3 server (AWS_ENDPOINT_URL_S3, service-specific, wins for S3); only the DuckDB file is local."""
    from sm_assets.core import lake
    from sm_assets.core.snapshots import staged_snapshots

    endpoint, org = fake_org
    db = tmp_path / "local" / "sm_assets.duckdb"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SM_ASSETS_DATA_DIR": s3_data_dir,
        "SM_ASSETS_DUCKDB_PATH": str(db),
    }
    result = run_cli(["refresh"], env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "reports for" in result.stdout and "materialized" in result.stdout
    (denied,) = org.denied_account_ids  # type: ignore[attr-defined]
    truth = {
        d.arn
        for t in org.resources.values()  # type: ignore[attr-defined]
        for d in t.job_definitions
        if t.account_id != denied
    }
    query = run_cli(["query", "SELECT count(*) AS n FROM aws.sagemaker_model_quality_job_definition"], env)
    assert query.returncode == 0 and query.stdout.splitlines()[2:] == [f"{len(truth):>3}", "(1 rows)"], query.stdout
    # A plain DuckDB reader (no sm-assets code) needs one line: the S3 secret (here with moto's endpoint).
    host = s3_endpoint.removeprefix("http://")
    secret = f"CREATE SECRET (TYPE s3, PROVIDER credential_chain, ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)"
    plain = run_plain_duckdb(
        db,
        [
            secret,
            "SELECT count(*) FROM reports.model_quality_fleet_summary",
            "SELECT count(DISTINCT account_id) FROM aws.collection_status",
        ],
        env,
    )
    assert plain[1] == 1  # (plain[0] is the CREATE SECRET's own result)
    lake_uri = f"{s3_data_dir}/lake"
    accounts = plain[2]
    stored = staged_snapshots(lake_uri, datetime.now(UTC).date())
    assert len(stored) == accounts >= len(org.member_account_ids)  # type: ignore[attr-defined]
    assert all(lake.is_s3(ref.status_path) for ref in stored.values())
    assert sorted(p.name for p in db.parent.iterdir() if not p.name.endswith(".wal")) == [
        "dagster_home",
        "sm_assets.duckdb",
    ]


def test_missing_bucket_is_one_line(s3_endpoint: str, tmp_path: Path) -> None:
    env = {
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SM_ASSETS_DATA_DIR": "s3://no-such-bucket-here/lake-prefix",
        "SM_ASSETS_DUCKDB_PATH": str(tmp_path / "sm_assets.duckdb"),
        "SM_ASSETS_ACCOUNTS": "111111111111",
    }
    result = run_cli(["refresh"], env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "s3://no-such-bucket-here/lake-prefix" in result.stderr and "bucket does not exist" in result.stderr
    assert not (tmp_path / "sm_assets.duckdb").exists()


def test_demo_serve_gives_the_ui_the_live_fake_organization(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sm-assets demo --serve` (`make demo-ui`) starts the UI while the fake organization still runs, so a
    partition launched from the UI can collect. The UI command is replaced by a child process that does
    what a UI-launched run does first: read the settings from its environment and collect an account."""
    from sm_assets.cli import demo as cli
    from sm_assets.core.config import Settings

    probe = tmp_path / "probe.json"
    child = (
        "import json, os, sys\n"
        "from sm_assets.core.accounts import resolve_account_ids\n"
        "from sm_assets.core.collection import collect_account\n"
        "from sm_assets.core.config import Settings\n"
        "settings = Settings.from_env()\n"
        "counts = {a: len(collect_account(a, settings).items) for a in resolve_account_ids(settings)}\n"
        "json.dump({'port': sys.argv[1], 'home': os.environ['DAGSTER_HOME'], "
        "'data': os.environ['SM_ASSETS_DATA_DIR'], 'counts': counts}, open(sys.argv[2], 'w'))\n"
    )
    monkeypatch.setattr(cli, "dagster_dev_command", lambda port: [sys.executable, "-c", child, str(port), str(probe)])
    data = tmp_path / "demo"
    monkeypatch.setenv("SM_ASSETS_DATA_DIR", str(data))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    output: list[str] = []
    assert cli.run_demo(Settings.from_env(), echo=output.append, serve=True, port=3123) == 0
    seen = json.loads(probe.read_text())
    assert seen["port"] == "3123" and seen["data"] == str(data.resolve())
    assert seen["home"] == str(data.resolve() / "dagster_home")
    stored = dict(rows(data / "sm_assets.duckdb", "SELECT account_id, count(*) FROM aws.sagemaker_endpoint GROUP BY 1"))
    assert stored and all(seen["counts"][a] > 0 for a in stored)  # the UI's process reaches the same org
    assert any("Dagster UI on http://127.0.0.1:3123" in line for line in output)

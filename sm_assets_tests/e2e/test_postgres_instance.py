"""deploy/dagster.yaml with a real Postgres: a `sm-assets refresh` of the demo organization stores its runs,
events, asset checks and account partitions in the Postgres instance database.

A throwaway server from the Debian `postgresql` package (initdb + pg_ctl) listens on 127.0.0.1 only, on a free
port, with `trust` auth for 127.0.0.1 and nothing else. The instance config is the shipped file with one change:
`sslmode: require` is removed, because the local server has no TLS (docs/deployment.md says to do the same for
any Postgres without TLS). The refresh is the real console script in a subprocess, with DAGSTER_HOME pointing at
that instance and AWS_ENDPOINT_URL at the fake organization (moto on 127.0.0.1, in this process). The test then
reads Postgres directly (psycopg2) and through the instance.

initdb and postgres refuse to run as root: as root, the server runs as the `postgres` user that the Debian
package creates. Without the binaries the tests skip locally and fail in CI (`.ci/run` installs the package).
`test_postgres_url_names_an_installed_driver` needs no server: it checks that the URL dagster-postgres builds
from the file names a SQLAlchemy driver that is installed.
"""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sm_assets_tests.helpers import clean_env, free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY_YAML = REPO / "deploy" / "dagster.yaml"
CLI = [sys.executable, "-m", "sm_assets.cli"]
PG_USER = "dagster"  # the server's superuser (initdb -U); with trust auth its password is never checked
PG_DB = "sm_assets_dagster"
CLI_TIMEOUT_S = 150
INVENTORY_JOB = "sagemaker_inventory_job"
REPORT_JOB = "sagemaker_daily_job"  # the day's tables, reports and trend


def unavailable(reason: str) -> None:
    """A missing tool fails in CI (CI must provide it) and skips locally with the way to get it."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} in CI: `.ci/run` installs it")
    pytest.skip(reason)


def postgres_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin (Debian), else wherever `initdb` is on PATH."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if (p.parent / "pg_ctl").exists()]
    if found:
        return max(found, key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


# ---------------------------------------------------------------------------------------------------------
# The local Postgres server


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str

    def connect(self, dbname: str = "postgres") -> Any:
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=dbname, connect_timeout=10)


class PgCluster:
    """initdb / pg_ctl on a temp data dir, as the unprivileged `postgres` user when we are root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_user: dict[str, Any] = {}
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")  # created by the Debian package
            except KeyError:
                unavailable("running as root without a `postgres` user to run initdb/postgres as")
            assert owner is not None
            # What `runuser -u postgres --` does: postgres's uid and gid, no supplementary groups of root's.
            self.as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        # Not pytest's tmp_path: that is private to root (0700) and the server user could not reach it.
        self.base = Path(tempfile.mkdtemp(prefix="sm-assets-pg-"))
        if owner is not None:
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"

    def run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bindir / tool), *args],
            cwd=self.base,  # the server user must be able to stat its cwd
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **self.as_user,
        )

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def init(self) -> None:
        done = self.run("initdb", "-D", str(self.data), "-U", PG_USER, "-E", "UTF8", "--locale=C", "--no-sync")
        assert done.returncode == 0, f"initdb failed: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        # TCP from 127.0.0.1 only, no password; no line for Unix sockets or other hosts, so those are refused.
        (self.data / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")

    def start(self) -> int:
        """Start on a free port on 127.0.0.1 (a few tries, in case another process takes the port first)."""
        for _ in range(3):
            port = free_port()
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write(
                    f"\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{self.base}'\n"
                    # A throwaway database: durability buys nothing here and costs seconds on a busy disk.
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                )
            started = self.run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60")
            if started.returncode == 0:
                return port
        raise AssertionError(f"pg_ctl start failed: {started.stdout}{started.stderr}\n{self.log_tail()}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    """A Postgres server for this module, stopped (immediate mode) and deleted even when a test fails."""
    bindir = postgres_bindir()
    if bindir is None:
        unavailable(
            "Postgres server binaries not found (/usr/lib/postgresql/*/bin/initdb): "
            "`apt-get install -y postgresql` to run the instance against a real Postgres"
        )
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        unavailable("psycopg2 not installed (dev extras)")
    assert bindir is not None
    cluster = PgCluster(bindir)
    try:
        cluster.init()
        server = PgServer("127.0.0.1", cluster.start(), PG_USER)
        conn = server.connect()
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {PG_DB}")
        finally:
            conn.close()
        yield server
    finally:
        cluster.stop()


# ---------------------------------------------------------------------------------------------------------
# The instance and the refresh


def local_instance_config() -> dict[str, Any]:
    """deploy/dagster.yaml as shipped, minus `sslmode: require`: the local server has no TLS.

    Nothing else needs dropping: the file sets no run launcher (the default one runs locally), and the queued
    run coordinator, run monitoring, run retries, retention and the sensor/schedule settings all load on any host.
    """
    config = yaml.safe_load(DEPLOY_YAML.read_text())
    db = config["storage"]["postgres"]["postgres_db"]
    assert db["params"].pop("sslmode") == "require"
    if not db["params"]:
        del db["params"]
    return config


@dataclass(frozen=True)
class Refreshed:
    home: Path
    data: Path
    env: dict[str, str]  # what the CLI ran with: DAGSTER_HOME, DAGSTER_PG_*, SM_ASSETS_DATA_DIR, fake AWS
    org: Any  # sm_assets.demo.seed.DemoOrg
    stdout: str
    seconds: float


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=clean_env(env), capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )


@pytest.fixture(scope="module")
def refreshed(postgres: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Refreshed:
    """`sm-assets refresh` of the demo organization (the shape `sm-assets demo` seeds) with the Postgres instance."""
    from sm_assets.cli.demo import DEMO_MEMBERS, patched_env
    from sm_assets.core.config import DEFAULT_REGIONS
    from sm_assets.demo.fake_aws import fake_aws_server
    from sm_assets.demo.seed import seed_demo_org

    root = tmp_path_factory.mktemp("pg_refresh")
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(local_instance_config(), sort_keys=False))
    pg_env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_DB": PG_DB,
        "DAGSTER_PG_USERNAME": postgres.user,
        "DAGSTER_PG_PASSWORD": "unused-with-trust-auth",
    }
    fake_creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    with fake_aws_server() as endpoint:
        # Module scope outlives the conftest's per-test environment: set the fake's environment by hand.
        with patched_env({**fake_creds, "AWS_ENDPOINT_URL": endpoint, "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None}):
            org = seed_demo_org(endpoint, regions=DEFAULT_REGIONS, accounts=DEMO_MEMBERS)
        env = {
            **pg_env,
            **fake_creds,
            "AWS_ENDPOINT_URL": endpoint,
            "SM_ASSETS_DATA_DIR": str(data),
            "SM_ASSETS_REGIONS": ",".join(org.regions),
        }
        start = time.monotonic()
        result = cli(["refresh"], env)
        seconds = time.monotonic() - start
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return Refreshed(home, data, env, org, result.stdout, seconds)


def query(postgres: PgServer, sql: str) -> list[tuple]:
    conn = postgres.connect(PG_DB)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def job_graph(refreshed: Refreshed) -> Any:
    """The code location as the refresh built it: which assets and checks each job covers."""
    from sm_assets.core.config import Settings
    from sm_assets.definitions import build_definitions

    settings = Settings.build(data_dir=refreshed.data, regions=refreshed.org.regions, role_name=refreshed.org.role_name)
    return build_definitions(settings)


def job_keys(defs: Any, job: str) -> tuple[set[Any], set[Any]]:
    layer = defs.resolve_job_def(job).asset_layer
    return set(layer.executable_asset_keys), set(layer.asset_graph.asset_check_keys)


# ---------------------------------------------------------------------------------------------------------
# Tests


def test_postgres_url_names_an_installed_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """The URL dagster-postgres builds from the file must resolve to a DBAPI driver that is installed.

    SQLAlchemy 2.1 maps a bare `postgresql://` URL to psycopg (3), while dagster-postgres depends on psycopg2:
    without `scheme: postgresql+psycopg2` (or psycopg 3 installed) every process fails at instance start with
    `No module named 'psycopg'`. No server needed: this names the cause before the refresh below hits it.
    """
    try:
        from dagster_postgres.utils import pg_url_from_config
    except ImportError:
        unavailable("dagster-postgres not installed (dev extras)")
    from dagster._config import process_config
    from dagster._core.storage.config import pg_config
    from sqlalchemy.engine import make_url

    for key, value in {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_DB": PG_DB}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_PG_USERNAME", PG_USER)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "x")
    resolved = process_config(pg_config(), local_instance_config()["storage"]["postgres"])
    assert resolved.success, resolved.errors
    url = make_url(pg_url_from_config(resolved.value))
    try:
        url.get_dialect().import_dbapi()
    except ImportError as exc:
        pytest.fail(
            f"deploy/dagster.yaml's Postgres URL uses the SQLAlchemy driver {url.get_driver_name()!r} ({exc}); "
            "dagster-postgres installs psycopg2: set `scheme: postgresql+psycopg2` in its postgres_db block"
        )


def test_instance_is_the_shipped_config_on_postgres(refreshed: Refreshed) -> None:
    written = yaml.safe_load((refreshed.home / "dagster.yaml").read_text())
    shipped = yaml.safe_load(DEPLOY_YAML.read_text())
    assert shipped["storage"]["postgres"]["postgres_db"].pop("params") == {"sslmode": "require"}
    assert written == shipped  # the one difference is the TLS parameter
    # Nothing fell back to SQLite: no run, event log or schedule database under DAGSTER_HOME (storage/ holds
    # only the runs' compute logs, which stay on local disk with this config).
    assert not list(refreshed.home.rglob("*.db"))
    assert not {"history", "schedules"} & {p.name for p in refreshed.home.iterdir()}


def test_runs_succeed_and_are_stored_in_postgres(postgres: PgServer, refreshed: Refreshed) -> None:
    runs = dict(query(postgres, "SELECT pipeline_name, status FROM runs"))
    assert runs == {INVENTORY_JOB: "SUCCESS", REPORT_JOB: "SUCCESS"}, runs  # one batched run, one report run
    tags = dict(
        query(
            postgres,
            "SELECT t.key, t.value FROM run_tags t JOIN runs r ON r.run_id = t.run_id "
            f"WHERE r.pipeline_name = '{INVENTORY_JOB}'",
        )
    )
    accounts = query(postgres, "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'aws_account'")
    assert {a for (a,) in accounts} == set(refreshed.org.active_account_ids)  # the management account + members
    assert {tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]} <= {
        a for (a,) in accounts
    }
    assert "0 failed" in refreshed.stdout and "materialized" in refreshed.stdout


def test_every_account_partition_materialized_and_checked(
    postgres: PgServer, refreshed: Refreshed, job_graph: Any
) -> None:
    accounts = set(refreshed.org.active_account_ids)  # the denied account's partition succeeds too
    inventory_assets, inventory_checks = job_keys(job_graph, INVENTORY_JOB)
    report_assets, report_checks = job_keys(job_graph, REPORT_JOB)
    assert {k.to_user_string() for k in inventory_assets} == {"raw/sagemaker_account_snapshot"}
    assert "aws/sagemaker_model_quality_job_definition" in {k.to_user_string() for k in report_assets}

    stored: dict[str, set[str | None]] = {}
    for key, partition in query(
        postgres, "SELECT asset_key, partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
    ):
        stored.setdefault(key, set()).add(partition)
    for key in inventory_assets:  # one event per account partition, and nothing else per account
        assert stored.get(key.to_string()) == accounts, key
    ((day,),) = query(
        postgres,
        f"SELECT t.value FROM run_tags t JOIN runs r USING (run_id) WHERE r.pipeline_name = '{REPORT_JOB}' "
        "AND t.key = 'dagster/partition'",
    )
    for key in report_assets:
        assert stored.get(key.to_string()) == {day}, key

    evaluations = query(
        postgres, "SELECT asset_key, check_name, partition, execution_status FROM asset_check_executions"
    )
    evaluated: dict[tuple[str, str], set[str]] = {}
    for key, name, _, status in evaluations:
        if status != "PLANNED":  # a PLANNED row is written when the step starts; the evaluation is its own row
            evaluated.setdefault((key, name), set()).add(status)
    expected = {(k.asset_key.to_string(), k.name) for k in inventory_checks | report_checks}
    # a job's asset graph lists every check of the code location: keep those of the assets each job runs
    expected = {(a, n) for a, n in expected if a in {k.to_string() for k in inventory_assets | report_assets}}
    assert expected and set(evaluated) == expected  # every check of both jobs has a stored evaluation
    # The denied account fails the WARN check `no_access_denied`: a stored evaluation, not a failed run.
    failed = {name for (_, name), statuses in evaluated.items() if "FAILED" in statuses}
    assert failed == {"no_access_denied"}, evaluations
    assert all(statuses <= {"SUCCEEDED", "FAILED"} for statuses in evaluated.values()), evaluations


def test_instance_reads_the_refresh_back_from_postgres(refreshed: Refreshed, monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    for key, value in refreshed.env.items():
        if key.startswith("DAGSTER_"):
            monkeypatch.setenv(key, value)
    with dg.DagsterInstance.from_config(str(refreshed.home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)  # the shipped queue, on Postgres
        assert set(instance.get_dynamic_partitions("aws_account")) == set(refreshed.org.active_account_ids)
        runs = instance.get_runs()
        assert sorted(r.job_name for r in runs) == sorted([INVENTORY_JOB, REPORT_JOB])
        assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
        key = dg.AssetKey(["raw", "sagemaker_account_snapshot"])
        assert instance.get_materialized_partitions(key) == set(refreshed.org.active_account_ids)
        day = dg.AssetKey(["aws", "sagemaker_model_quality_job_definition"])
        assert len(instance.get_materialized_partitions(day)) == 1  # today


def test_refresh_stored_the_demo_orgs_definitions(refreshed: Refreshed) -> None:
    truth = refreshed.org.expected_definition_arns()  # collectible accounts -> ARNs seeded there
    expected = sum(len(arns) for arns in truth.values())
    assert expected > 0
    counted = cli(["query", "SELECT count(*) AS n FROM aws.sagemaker_model_quality_job_definition"], refreshed.env)
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.split("\n")[2].strip() == str(expected), counted.stdout
    per_account = cli(
        ["query", "SELECT account_id, count(*) FROM aws.sagemaker_model_quality_job_definition GROUP BY ALL"],
        refreshed.env,
    )
    assert per_account.returncode == 0, per_account.stderr
    rows = dict(line.split() for line in per_account.stdout.splitlines()[2:-1])
    assert rows == {a: str(len(arns)) for a, arns in truth.items() if arns}
    print(f"sm-assets refresh with the Postgres instance: {refreshed.seconds:.1f} s")  # shown with -s / -rA

"""The `dg` CLI, in subprocesses, against the fake organization on 127.0.0.1: from this repository's root, and
from a fresh Dagster project that installs sm-assets and adds the component twice (two organizations)."""

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from sm_assets.defs.shared import DEFAULT_KEYS
from sm_assets.demo.seed import DemoOrg
from sm_assets_tests.helpers import clean_env

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
DG_MAIN = "import sys; from dagster_dg_cli.cli import main; sys.argv[0] = 'dg'; sys.exit(main())"


def run(python: str | Path, args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def dg(python: str | Path, args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run(python, ["-c", DG_MAIN, *args], cwd, env)


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@pytest.fixture
def fake_org() -> Iterator[tuple[str, DemoOrg]]:
    from sm_assets.demo.fake_aws import fake_aws_server
    from sm_assets.demo.seed import seed_demo_org

    with fake_aws_server() as endpoint:
        saved = os.environ.get("AWS_ENDPOINT_URL")
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        try:
            org = seed_demo_org(endpoint, regions=[REGION], accounts=3, seed=5)
        finally:
            if saved is None:
                os.environ.pop("AWS_ENDPOINT_URL", None)
            else:
                os.environ["AWS_ENDPOINT_URL"] = saved
        yield endpoint, org


def aws_env(endpoint: str, dagster_home: Path, **extra: str) -> dict[str, str]:
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return clean_env(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "DAGSTER_HOME": str(dagster_home),
            **extra,
        }
    )


def busiest(org: DemoOrg) -> str:
    return max(org.collectible_account_ids, key=lambda a: len(org.region(a, REGION).job_definitions))


def rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def in_service(org: DemoOrg, account: str) -> int:
    return sum(e.status == "InService" for e in org.region(account, REGION).endpoints)


def test_dg_from_the_repository_root(fake_org: tuple[str, DemoOrg], tmp_path: Path) -> None:
    endpoint, org = fake_org
    data = tmp_path / "data"
    env = aws_env(endpoint, tmp_path / "home", SM_ASSETS_DATA_DIR=str(data), SM_ASSETS_REGIONS=REGION)
    python = sys.executable

    checked = dg(python, ["check", "defs"], REPO, env)
    assert "All definitions loaded successfully." in checked.stdout
    listed = json.loads(dg(python, ["list", "defs", "--json"], REPO, env).stdout)
    assets = {a["asset_key"]: a for a in listed["assets"]}
    assert "raw/sagemaker_account_snapshot" in assets and "reports/model_quality_coverage" in assets
    assert assets["reports/model_quality_coverage"]["owners"] == [{"team": "ml-platform"}]  # sm_assets/defs/defs.yaml
    assert assets["reports/model_quality_coverage"]["source"] == "sm_assets/defs/defs.yaml:4"
    assert {s["name"] for s in listed["schedules"]} == {"daily_inventory_refresh"}
    components = json.loads(dg(python, ["list", "components", "--json"], REPO, env).stdout)
    assert "sm_assets.SageMakerMonitoringInventory" in {c["key"] for c in components["items"]}

    # The partitions come from the organization (what the account sensor does), then one account and one day.
    run(python, ["-m", "sm_assets.cli", "sync-accounts"], REPO, env)
    account = busiest(org)
    dg(python, ["launch", "--assets", "raw/sagemaker_account_snapshot", "--partition", account], REPO, env)
    dg(python, ["launch", "--job", "sagemaker_daily_job", "--partition", today()], REPO, env)

    db = data / "sm_assets.duckdb"
    stored = rows(db, "SELECT account_id, _key FROM aws.sagemaker_model_quality_job_definition")
    assert {a for a, _ in stored} == {account}
    assert {k for _, k in stored} == {d.arn for d in org.region(account, REGION).job_definitions}
    summary = rows(
        db,
        "SELECT report_date::VARCHAR, accounts_total, accounts_ok, endpoints_in_service FROM "
        "reports.model_quality_fleet_summary",
    )
    assert summary == [(today(), 1, 1, in_service(org, account))]
    assert rows(db, "SELECT count(*) FROM reports.model_quality_coverage_trend_30d") == [(1,)]


PROJECT_PYPROJECT = """\
[project]
name = "inventory-deployment"
version = "0.1.0"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "inventory_deployment"
"""

DEFINITIONS_PY = """\
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
"""

ORG_A_YAML = """\
type: sm_assets.SageMakerMonitoringInventory

attributes:
  key_prefix: org_a
  data_dir: "{{ env('ORG_A_DATA_DIR') }}"
  regions: [us-east-1]
  owners: [team:ml-platform]
  inventory_cron: "0 4 * * *"
"""

ORG_B_YAML = """\
type: sm_assets.SageMakerMonitoringInventory

attributes:
  key_prefix: org_b
  data_dir: "{{ env('ORG_B_DATA_DIR') }}"
  regions: [eu-west-1]
  accounts: ["222222222222"]
  role_name: InventoryReader
  external_id: "4711"
  group_names:
    inventory: org_b_sagemaker
"""

# The deployment's own asset: downstream of org_a's fleet summary by key, read through org_a's DuckDB resource.
FLEET_DIGEST_PY = """\
import json
import os
from pathlib import Path

import dagster as dg


@dg.asset(
    deps=[dg.AssetKey(["org_a", "reports", "model_quality_fleet_summary"])],
    required_resource_keys={"org_a_duckdb"},
)
def fleet_digest(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    with context.resources.org_a_duckdb.get_connection() as conn:
        row = conn.execute(
            "SELECT report_date::VARCHAR, accounts_total, accounts_ok, endpoints_in_service "
            "FROM reports.model_quality_fleet_summary ORDER BY report_date DESC LIMIT 1"
        ).fetchone()
    digest = dict(zip(["report_date", "accounts_total", "accounts_ok", "endpoints_in_service"], row))
    Path(os.environ["DIGEST_PATH"]).write_text(json.dumps(digest))
    return dg.MaterializeResult(metadata=digest)
"""


def make_venv(tmp_path: Path) -> Path:
    """A venv holding sm-assets installed from a wheel (no deps: they come from this venv's site-packages)."""
    venv = tmp_path / "venv"
    run(sys.executable, ["-m", "venv", "--without-pip", str(venv)], tmp_path, clean_env({}))
    python = venv / "bin" / "python"
    site = run(python, ["-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path, clean_env({}))
    this_site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    # After the venv's own site-packages, so the installed sm_assets wins over this checkout's editable one.
    (Path(site.stdout.strip()) / "dependencies.pth").write_text(this_site + "\n")
    source = tmp_path / "sm-assets-src"  # a copy: building a wheel writes build/ and *.egg-info beside it
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        if name.startswith("sm_assets/") or name in ("pyproject.toml", "README.md"):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((REPO / name).read_bytes())
    run(
        sys.executable,
        [
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            str(source),
        ],
        tmp_path,
        clean_env({}),
    )
    return python


def make_project(root: Path) -> Path:
    package = root / "src" / "inventory_deployment"
    files = {
        root / "pyproject.toml": PROJECT_PYPROJECT,
        package / "__init__.py": "",
        package / "definitions.py": DEFINITIONS_PY,
        package / "defs" / "__init__.py": "",
        package / "defs" / "org_a" / "defs.yaml": ORG_A_YAML,
        package / "defs" / "org_b" / "defs.yaml": ORG_B_YAML,
        package / "defs" / "fleet_digest.py": FLEET_DIGEST_PY,
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "src"


def test_a_fresh_project_adds_the_component_twice(fake_org: tuple[str, DemoOrg], tmp_path: Path) -> None:
    endpoint, org = fake_org
    python = make_venv(tmp_path)
    project = tmp_path / "inventory-deployment"
    src = make_project(project)
    site = run(python, ["-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path, clean_env({}))
    (Path(site.stdout.strip()) / "inventory_deployment.pth").write_text(f"{src}\n")  # the project, as -e would
    env = aws_env(
        endpoint,
        tmp_path / "home",
        ORG_A_DATA_DIR=str(tmp_path / "lake-a"),
        ORG_B_DATA_DIR=str(tmp_path / "lake-b"),
        DIGEST_PATH=str(tmp_path / "digest.json"),
    )
    where = run(python, ["-c", "import sm_assets; print(sm_assets.__file__)"], project, env).stdout
    assert where.startswith(str(tmp_path / "venv")), where  # the installed package, not this checkout

    assert "All definitions loaded successfully." in dg(python, ["check", "defs"], project, env).stdout
    validated = run(
        python, ["-m", "dagster", "definitions", "validate", "-m", "inventory_deployment.definitions"], project, env
    )
    assert "All code locations passed validation." in validated.stdout + validated.stderr
    listed = json.loads(dg(python, ["list", "defs", "--json"], project, env).stdout)
    by_prefix: dict[str, dict[str, set[str]]] = {"org_a": {}, "org_b": {}}
    for kind, field in (
        ("assets", "asset_key"),
        ("jobs", "name"),
        ("schedules", "name"),
        ("sensors", "name"),
        ("resources", "name"),
    ):
        for item in listed[kind]:
            name = item[field]
            prefix = next((p for p in by_prefix if name.startswith((f"{p}/", f"{p}_"))), None)
            assert prefix is not None or name == "fleet_digest", (kind, name)
            if prefix:
                by_prefix[prefix].setdefault(kind, set()).add(name.removeprefix(prefix).lstrip("/_"))
    # The same inventory twice, each under its own prefix, nothing shared.
    assert by_prefix["org_a"] == by_prefix["org_b"]
    assert by_prefix["org_a"]["assets"] >= {"raw/sagemaker_account_snapshot", "reports/model_quality_fleet_summary"}
    assert by_prefix["org_a"]["jobs"] == {"sagemaker_inventory_job", "sagemaker_daily_job"}
    assert by_prefix["org_a"]["resources"] == {"sm_config", "duckdb"}
    groups = {a["asset_key"]: a["group_name"] for a in listed["assets"]}
    assert groups["org_b/aws/collection_status"] == "org_b_sagemaker"
    assert groups["org_a/aws/collection_status"] == "org_a_sagemaker_inventory"

    # One account partition and one report date of org_a, then the deployment's own downstream asset.
    account = busiest(org)
    add = f"import dagster as dg; dg.DagsterInstance.get().add_dynamic_partitions('org_a_aws_account', ['{account}'])"
    run(python, ["-c", add], project, env)
    dg(python, ["launch", "--assets", "org_a/raw/sagemaker_account_snapshot", "--partition", account], project, env)
    dg(python, ["launch", "--job", "org_a_sagemaker_daily_job", "--partition", today()], project, env)
    dg(python, ["launch", "--assets", "fleet_digest"], project, env)
    digest = json.loads((tmp_path / "digest.json").read_text())
    assert digest == {
        "report_date": today(),
        "accounts_total": 1,
        "accounts_ok": 1,
        "endpoints_in_service": in_service(org, account),
    }
    assert not (tmp_path / "lake-b").exists()  # org_b was loaded, never run: nothing written for it

    # The package's own code location also loads from the wheel (no pyproject beside it).
    location = run(
        python,
        ["-c", "from sm_assets.definitions import defs; print(len(defs.resolve_all_asset_keys()))"],
        tmp_path,
        {**env, "SM_ASSETS_DATA_DIR": str(tmp_path / "lake-c")},
    )
    assert int(location.stdout.split()[-1]) == len(DEFAULT_KEYS.everything)

"""deploy/*.yaml against Dagster's own schemas: the instance config (dagster.yaml) and the executors' run config.

Core Dagster validates everything in dagster.yaml, the Postgres storage block included (its schema lives in
dagster itself), and boots the instance with SQLite in place of Postgres. What only the integration
libraries know (the k8s/celery executor schemas, the dagster-postgres class) is checked when
dagster-postgres / dagster-k8s / dagster-celery 0.29.27 are installed (the dev extras); without them those
tests skip locally and fail in CI.
"""

import importlib
import os
import shutil
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import process_config, validate_config
from dagster._core.execution.retries import get_retries_config
from dagster._core.execution.step_dependency_config import get_step_dependency_config_field
from dagster._core.execution.tags import get_tag_concurrency_limits_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.config import pg_config
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes import ConfigurableClassData
from dagster._utils.tags import TagConcurrencyLimitsCounter

from sm_assets.core.config import Settings
from sm_assets.definitions import build_definitions

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PG_ENV = {
    "DAGSTER_PG_HOST": "dagster-db.internal",
    "DAGSTER_PG_PORT": "5433",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "s3cret/with@chars",
}
EXECUTOR_ENV = {
    "DAGSTER_K8S_NAMESPACE": "dagster",
    "DAGSTER_CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    "DAGSTER_CELERY_BACKEND_URL": "redis://redis.internal:6379/1",
}
JOBS = ("sagemaker_inventory_job", "sagemaker_daily_job")
LIBRARY_VERSION = "0.29.27"  # the integration libraries released with dagster 1.13.27


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / name).read_text())


def require(module: str) -> ModuleType:
    """The integration library, or a skip (locally) / failure (CI) naming the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = f"{module.replace('_', '-')}=={LIBRARY_VERSION}"
        if os.environ.get("CI"):
            pytest.fail(f"{package} is missing in CI: it belongs in the dev extras")
        pytest.skip(f"{package} not installed: `pip install {package}` to validate against its schema")


def errors(result: Any) -> str:
    return "; ".join(e.message for e in result.errors or [])


# ---------------------------------------------------------------------------------------------------------
# dagster.yaml


def test_instance_yaml_passes_dagsters_instance_schema(tmp_path: Path) -> None:
    shutil.copyfile(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))  # raises DagsterInvalidConfigError
    assert custom_class is None
    assert set(config["storage"]) == {"postgres"}
    db = config["storage"]["postgres"]["postgres_db"]
    # Connection settings come from the environment only; no secret is ever written in the file.
    for field in ("hostname", "port", "db_name", "username", "password"):
        assert set(db[field]) == {"env"} and db[field]["env"].startswith("DAGSTER_PG_"), field
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["telemetry"] == {"enabled": False}


def test_postgres_block_resolves_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # dagster-postgres' DagsterPostgresStorage.config_type() *is* this core schema (pg_config).
    for key, value in PG_ENV.items():
        monkeypatch.setenv(key, value)
    result = process_config(pg_config(), load("dagster.yaml")["storage"]["postgres"])
    assert result.success, errors(result)
    db = result.value["postgres_db"]
    assert db["port"] == 5433 and db["password"] == PG_ENV["DAGSTER_PG_PASSWORD"]
    assert db["params"] == {"sslmode": "require"} and result.value["should_autocreate_tables"] is True

    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    missing = process_config(pg_config(), load("dagster.yaml")["storage"]["postgres"])
    assert not missing.success and "DAGSTER_PG_PASSWORD" in errors(missing)


def test_run_coordinator_class_and_its_config() -> None:
    block = load("dagster.yaml")["run_coordinator"]
    data = ConfigurableClassData(block["module"], block["class"], yaml.safe_dump(block["config"]))
    assert data.info_dict() is not None
    cls = importlib.import_module(block["module"]).__dict__[block["class"]]
    assert cls is QueuedRunCoordinator
    result = process_config(QueuedRunCoordinator.config_type(), block["config"])
    assert result.success, errors(result)
    coordinator = data.rehydrate(QueuedRunCoordinator)
    queue = coordinator.get_run_queue_config()
    assert queue is not None and queue.max_concurrent_runs == 10


def test_instance_boots_with_sqlite_in_place_of_postgres(tmp_path: Path) -> None:
    """Everything but the storage, wired by Dagster itself: queue limits, run monitoring, retries, retention."""
    config = load("dagster.yaml")
    config["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 10
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in (
            queue.tag_concurrency_limits
        )
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert instance.run_retries_max_retries == 2 and not instance.run_retries_retry_on_asset_or_op_failure
        assert not instance.telemetry_enabled
    finally:
        instance.dispose()


def _run(partition: str | None = None, backfill: str | None = None, shard: tuple[str, str] | None = None) -> DagsterRun:
    tags = {"dagster/partition": partition} if partition else {}
    if shard:  # a shard run of the daily schedule: a partition range, no partition tag
        from sm_assets.defs.inventory.automation import shard_run_tags

        tags |= shard_run_tags(list(shard), 0, 1)
    if backfill:
        tags["dagster/backfill"] = backfill
    return DagsterRun(job_name="sagemaker_inventory_job", run_id=str(uuid.uuid4()), tags=tags)


def test_tag_limits_one_run_per_account_a_few_shards_and_room_outside_backfills() -> None:
    limits = load("dagster.yaml")["run_coordinator"]["config"]["tag_concurrency_limits"]
    # The queue daemon's own counter, as it evaluates queued runs against the runs in progress.
    counter = TagConcurrencyLimitsCounter(limits, [_run("111111111111")])
    assert counter.is_blocked(_run("111111111111"))  # the same account again: waits
    assert counter.is_blocked(_run("111111111111", backfill="bf1"))
    assert not counter.is_blocked(_run("222222222222"))  # another account: starts
    assert not counter.is_blocked(_run("2026-11-26"))  # a day's tables and reports: start

    shards = [(f"{n:012d}", f"{n + 499:012d}") for n in range(0, 2500, 500)]
    counter = TagConcurrencyLimitsCounter(limits, [_run(shard=s) for s in shards[:4]])  # 4 shards collecting
    assert counter.is_blocked(_run(shard=shards[4]))  # the 5th shard waits for one of them
    assert not counter.is_blocked(_run("2026-11-26"))  # the daily tables are not held up
    counter = TagConcurrencyLimitsCounter(limits, [_run(shard=s) for s in shards[:3]])
    assert not counter.is_blocked(_run(shard=shards[3]))

    in_backfill = [_run(f"2026-10-{n:02d}", backfill="bf1") for n in range(1, 7)]  # 6 report backfill runs
    counter = TagConcurrencyLimitsCounter(limits, in_backfill)
    assert counter.is_blocked(_run("2026-10-07", backfill="bf1"))  # a 7th backfill run waits
    assert counter.is_blocked(_run("2026-10-07", backfill="bf2"))  # whichever backfill it belongs to
    assert not counter.is_blocked(_run("2026-11-26"))  # the day's tables still start
    assert not counter.is_blocked(_run(shard=shards[0]))  # and so does the daily refresh


def test_postgres_storage_class_deep() -> None:
    storage = require("dagster_postgres")
    from dagster_postgres.utils import pg_url_from_config

    assert storage.DagsterPostgresStorage.config_type().keys() == pg_config().keys()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in PG_ENV.items():
            mp.setenv(key, value)
        result = process_config(
            storage.DagsterPostgresStorage.config_type(), load("dagster.yaml")["storage"]["postgres"]
        )
    assert result.success, errors(result)
    url = pg_url_from_config(result.value)
    assert url.startswith("postgresql+psycopg2://dagster:") and "@dagster-db.internal:5433/dagster" in url
    assert url.endswith("?sslmode=require") and "s3cret" in url and "/with@chars" not in url  # password quoted


# ---------------------------------------------------------------------------------------------------------
# Executor run config


@pytest.fixture
def defs(tmp_path: Path) -> dg.Definitions:
    return build_definitions(Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="r"))


CORE_EXECUTOR_FIELDS = {
    # The parts of the k8s / celery executor schemas that dagster itself defines (and they reuse).
    "executor_k8s.yaml": dg.Permissive(
        {
            "max_concurrent": dg.Field(dg.IntSource, is_required=False),
            "tag_concurrency_limits": get_tag_concurrency_limits_config(),
            "retries": get_retries_config(),
            "step_dependency_config": get_step_dependency_config_field(),
            "job_namespace": dg.Field(dg.StringSource, is_required=False),
            "env_config_maps": dg.Field([dg.StringSource], is_required=False),
            "env_vars": dg.Field([str], is_required=False),
            "resources": dg.Field(
                {"limits": dg.Field(dict, is_required=False), "requests": dg.Field(dict, is_required=False)},
                is_required=False,
            ),
        }
    ),
    "executor_celery.yaml": dg.Permissive(
        {
            "broker": dg.Field(dg.Noneable(dg.StringSource), is_required=False),
            "backend": dg.Field(dg.Noneable(dg.StringSource), is_required=False),
            "include": dg.Field([str], is_required=False),
            "config_source": dg.Field(dg.Noneable(dg.Permissive()), is_required=False),
            "retries": get_retries_config(),
        }
    ),
}


@pytest.mark.parametrize("name", sorted(CORE_EXECUTOR_FIELDS))
def test_executor_run_config_without_the_libraries(
    name: str, defs: dg.Definitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in EXECUTOR_ENV.items():
        monkeypatch.setenv(key, value)
    run_config = load(name)
    assert set(run_config) == {"execution"} and set(run_config["execution"]) == {"config"}
    result = process_config(CORE_EXECUTOR_FIELDS[name], run_config["execution"]["config"])
    assert result.success, errors(result)
    # The rest of the run config (nothing but `execution`) is valid for both jobs as they are defined.
    for job in JOBS:
        dg.validate_run_config(defs.resolve_job_def(job), {})


def test_k8s_executor_settings() -> None:
    config = load("executor_k8s.yaml")["execution"]["config"]
    assert config["max_concurrent"] == 4
    assert set(config["resources"]) == {"requests", "limits"}
    mounts = {m["mount_path"] for m in config["volume_mounts"]}
    assert "SM_ASSETS_DATA_DIR=/data" in config["env_vars"] and "/data" in mounts


def test_per_step_k8s_config_names_steps_of_the_inventory_job(defs: dg.Definitions) -> None:
    job = defs.resolve_job_def("sagemaker_inventory_job")
    keys = {node.name for node in job.graph.nodes}  # top-level nodes: their names are the step keys
    assert keys == {"raw__sagemaker_account_snapshot"}  # one step, whatever the number of resource types
    assert set(load("executor_k8s.yaml")["execution"]["config"]["per_step_k8s_config"]) <= keys


@pytest.mark.parametrize(
    ("name", "module", "executor"),
    [
        ("executor_k8s.yaml", "dagster_k8s", "k8s_job_executor"),
        ("executor_celery.yaml", "dagster_celery", "celery_executor"),
    ],
)
def test_executor_run_config_against_the_job_schema(
    name: str, module: str, executor: str, defs: dg.Definitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor_def = getattr(require(module), executor)
    for key, value in EXECUTOR_ENV.items():
        monkeypatch.setenv(key, value)
    # The code location as deployed with that executor: the real assets, jobs and resources.
    deployed = dg.Definitions.merge(defs, dg.Definitions(executor=executor_def))
    for job_name in JOBS:
        job = deployed.resolve_job_def(job_name)
        assert job.executor_def is executor_def
        resolved = dg.validate_run_config(job, load(name))  # raises DagsterInvalidConfigError
        config = resolved["execution"][executor_def.name]  # resolved config is keyed by the executor's name
        if module == "dagster_k8s":
            assert config["job_namespace"] == "dagster" and config["max_concurrent"] == 4
            assert config["per_step_k8s_config"]["raw__sagemaker_account_snapshot"]["container_config"]["resources"]
        else:
            assert config["broker"] == EXECUTOR_ENV["DAGSTER_CELERY_BROKER_URL"]
            assert config["config_source"]["task_acks_late"] is True


def test_validate_config_rejects_a_bad_limit() -> None:
    """The schema check above has teeth: a typo in the queue config is caught."""
    bad = {"max_concurrent_runs": 10, "tag_concurrency_limits": [{"key": "dagster/partition", "limt": 1}]}
    assert not validate_config(QueuedRunCoordinator.config_type(), bad).success


@pytest.mark.parametrize(
    ("name", "module", "launcher"),
    [
        ("run_launcher_k8s.yaml", "dagster_k8s", "K8sRunLauncher"),
        ("run_launcher_ecs.yaml", "dagster_aws.ecs", "EcsRunLauncher"),
    ],
)
def test_run_launcher_blocks_against_the_launchers_schema(
    name: str, module: str, launcher: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The production run launchers (one run per shard): each block is a valid `run_launcher:` for its class,
    and merges into deploy/dagster.yaml as one instance config."""
    cls = getattr(require(module), launcher)
    block = load(name)["run_launcher"]
    assert (block["module"], block["class"]) == (module, launcher)
    monkeypatch.setenv("DAGSTER_K8S_NAMESPACE", "dagster")
    result = process_config(cls.config_type(), block["config"])
    assert result.success, errors(result)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump({**load("dagster.yaml"), "run_launcher": block}))
    config, _ = dagster_instance_config(str(tmp_path))  # raises DagsterInvalidConfigError
    assert config["run_launcher"]["class"] == launcher

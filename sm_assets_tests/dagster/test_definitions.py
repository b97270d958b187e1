"""The code location loads, and the UI gets what it needs: assets, checks, schemas, automation."""

from pathlib import Path

import dagster as dg
import pytest

from sm_assets.core.config import Settings
from sm_assets.core.reports.schemas import REPORT_TABLES
from sm_assets.core.sharding import partition_changes, shards
from sm_assets.core.specs import MODEL_QUALITY_JOB_DEFINITION_SPEC, RESOURCE_SPECS
from sm_assets.definitions import build_definitions
from sm_assets.defs.inventory.assets import RAW_KEY, STATUS_KEY, TABLE_KEYS

MODEL_QUALITY_JOB_DEFINITION = MODEL_QUALITY_JOB_DEFINITION_SPEC.table


@pytest.fixture
def defs(tmp_path: Path) -> dg.Definitions:
    return build_definitions(Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="r"))


def test_module_level_definitions_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_ASSETS_DATA_DIR", str(tmp_path))
    import importlib

    import sm_assets.definitions as module

    module = importlib.reload(module)
    dg.Definitions.validate_loadable(module.defs)
    keys = {k.to_user_string() for k in module.defs.resolve_all_asset_keys()}
    assert keys == {
        "raw/sagemaker_account_snapshot",
        "aws/collection_status",
        *(f"aws/{spec.table.name}" for spec in RESOURCE_SPECS),
        *(f"reports/{table}" for table in REPORT_TABLES),
        "analytics/model_quality_coverage_trend_30d",
    }


def test_only_the_raw_snapshot_is_partitioned_by_account(defs: dg.Definitions) -> None:
    """Per account and refresh: one partition materialization, whatever the number of resource types."""
    graph = defs.resolve_asset_graph()
    by_account = [
        k for k in graph.get_all_asset_keys() if getattr(graph.get(k).partitions_def, "name", None) == "aws_account"
    ]
    assert by_account == [RAW_KEY]
    daily = [k for k in graph.get_all_asset_keys() if k != RAW_KEY]
    assert all(isinstance(graph.get(k).partitions_def, dg.DailyPartitionsDefinition) for k in daily)


def test_checks_schema_and_automation(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    check_names = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("raw/sagemaker_account_snapshot", "every_region_has_status") in check_names
    assert ("raw/sagemaker_account_snapshot", "no_access_denied") in check_names
    assert ("aws/collection_status", "lake_files_readable") in check_names
    mq = TABLE_KEYS["model_quality_job_definition"].to_user_string()
    for name in (
        "exact_columns_and_types",
        "key_unique_per_snapshot",
        "required_fields_not_null",
        "arn_matches_account_and_region",
    ):
        assert (mq, name) in check_names
    spec = graph.get(TABLE_KEYS["model_quality_job_definition"])
    schema = spec.metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns] == MODEL_QUALITY_JOB_DEFINITION.column_names
    assert spec.metadata["dagster/table_name"] == "sm_assets.aws.sagemaker_model_quality_job_definition"
    assert set(spec.parent_keys) == {RAW_KEY}
    assert set(graph.get(STATUS_KEY).parent_keys) == {RAW_KEY}
    assert isinstance(spec.partitions_def, dg.DailyPartitionsDefinition)
    assert spec.automation_condition is not None
    assert "DDSQL" in (spec.description or "")
    assert defs.resolve_sensor_def("aws_account_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_schedule_def("daily_inventory_refresh").default_status == dg.DefaultScheduleStatus.RUNNING


def test_partition_changes_and_shards() -> None:
    assert partition_changes(["1", "2", "3"], ["2", "3", "4", "5"]) == (["4", "5"], ["1"])
    assert partition_changes([], []) == ([], [])
    assert shards(list("abcdefg"), 3) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert shards([], 3) == []


def test_daily_schedule_emits_one_run_per_shard(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    accounts = [f"{i:012d}" for i in range(7)]
    settings = Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="r", shard_size=3)
    defs = build_definitions(settings)
    config = defs.resources["sm_config"]
    # A persistent instance (the schedule context needs its ref), not entered as a context manager: that
    # would leave Dagster's defs-state storage pointing at it once disposed.
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "home"))
    instance.add_dynamic_partitions("aws_account", accounts)
    # Closed on exit: the context enters the instance it loads from the ref, and would leave it set as the
    # defs-state storage (until garbage collection) for the tests that follow.
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime(2026, 12, 1, 3, tzinfo=UTC),
        resources={"sm_config": config},
    ) as context:
        # evaluate_tick: what the daemon calls (direct invocation would pass required resources as arguments).
        requests = defs.resolve_schedule_def("daily_inventory_refresh").evaluate_tick(context).run_requests or []
    assert [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in requests
    ] == [
        (accounts[0], accounts[2]),
        (accounts[3], accounts[5]),
        (accounts[6], accounts[6]),
    ]
    assert [r.run_key for r in requests] == [
        "inventory:2026-12-01:1/3",
        "inventory:2026-12-01:2/3",
        "inventory:2026-12-01:3/3",
    ]
    assert {r.tags["sm-assets/collect"] for r in requests} == {"daily"}


def test_account_sensor_adds_and_removes(defs: dg.Definitions, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("aws_account", ["999999999999", "111111111111"])
    explicit = build_definitions(
        Settings.build(
            data_dir=tmp_path, regions=["us-east-1"], role_name="r", accounts=["111111111111", "222222222222"]
        )
    )
    sensor = explicit.resolve_sensor_def("aws_account_sensor")
    result = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, resources={"sm_config": explicit.resources["sm_config"]})
    )
    requests = {type(r).__name__: list(r.partition_keys) for r in result.dynamic_partitions_requests or []}
    assert requests == {
        "AddDynamicPartitionsRequest": ["222222222222"],
        "DeleteDynamicPartitionsRequest": ["999999999999"],
    }


def test_account_sensor_skips_when_discovery_fails(defs: dg.Definitions, monkeypatch: pytest.MonkeyPatch) -> None:
    # Organizations rejects the caller: keep the partitions and explain why in the tick.
    import sm_assets.core.accounts as accounts
    from sm_assets.core.errors import AccountDiscoveryError

    def denied(session: object = None, region: str | None = None) -> list[object]:
        raise AccountDiscoveryError("AWS Organizations ListAccounts failed (AccessDeniedException): ...")

    monkeypatch.setattr(accounts, "list_org_accounts", denied)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("aws_account", ["111111111111"])
    context = dg.build_sensor_context(instance=instance, resources={"sm_config": defs.resources["sm_config"]})
    result = defs.resolve_sensor_def("aws_account_sensor").evaluate_tick(context)
    assert not result.dynamic_partitions_requests
    assert "AccessDeniedException" in (result.skip_message or "")
    assert instance.get_dynamic_partitions("aws_account") == ["111111111111"]

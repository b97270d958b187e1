"""The code location loads, and the UI gets what it needs: assets, checks, schemas, automation."""

from pathlib import Path

import dagster as dg
import pytest

from sm_assets.core.config import Settings
from sm_assets.core.schemas import MODEL_QUALITY_JOB_DEFINITION
from sm_assets.definitions import build_definitions
from sm_assets.defs.inventory.assets import NORMALIZED_KEYS, STATUS_KEY
from sm_assets.defs.inventory.automation import aws_account_sensor, partition_changes


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
    assert {
        "raw/collection_status",
        "raw/sagemaker_model_quality_job_definition",
        "raw/sagemaker_endpoint",
        "raw/sagemaker_monitoring_schedule",
        "aws/sagemaker_model_quality_job_definition",
        "aws/sagemaker_endpoint",
        "aws/sagemaker_monitoring_schedule",
    } <= keys


def test_checks_schema_and_automation(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    check_names = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("raw/collection_status", "every_region_has_status") in check_names
    assert ("raw/collection_status", "no_access_denied") in check_names
    mq = NORMALIZED_KEYS["model_quality_job_definition"].to_user_string()
    for name in (
        "exact_columns_and_types",
        "key_unique_per_snapshot",
        "required_fields_not_null",
        "arn_matches_account_and_region",
    ):
        assert (mq, name) in check_names
    spec = graph.get(NORMALIZED_KEYS["model_quality_job_definition"])
    schema = spec.metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns] == MODEL_QUALITY_JOB_DEFINITION.column_names
    assert spec.metadata["dagster/table_name"] == "sm_assets.aws.sagemaker_model_quality_job_definition"
    assert set(graph.get(NORMALIZED_KEYS["model_quality_job_definition"]).parent_keys) >= {STATUS_KEY}
    assert spec.partitions_def is not None and spec.partitions_def.name == "aws_account"
    assert "DDSQL" in (spec.description or "")
    assert defs.resolve_sensor_def("aws_account_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_schedule_def("daily_inventory_refresh").default_status == dg.DefaultScheduleStatus.RUNNING


def test_partition_changes() -> None:
    assert partition_changes(["1", "2", "3"], ["2", "3", "4", "5"]) == (["4", "5"], ["1"])
    assert partition_changes([], []) == ([], [])


def test_account_sensor_adds_and_removes(defs: dg.Definitions, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("aws_account", ["999999999999", "111111111111"])
    config = build_definitions(
        Settings.build(
            data_dir=tmp_path, regions=["us-east-1"], role_name="r", accounts=["111111111111", "222222222222"]
        )
    ).resources["sm_config"]
    result = aws_account_sensor(dg.build_sensor_context(instance=instance, resources={"sm_config": config}))
    assert isinstance(result, dg.SensorResult)
    requests = {type(r).__name__: list(r.partition_keys) for r in result.dynamic_partitions_requests}
    assert requests == {
        "AddDynamicPartitionsRequest": ["222222222222"],
        "DeleteDynamicPartitionsRequest": ["999999999999"],
    }


def test_account_sensor_skips_when_discovery_fails(defs: dg.Definitions, monkeypatch: pytest.MonkeyPatch) -> None:
    # Organizations rejects the caller: keep the partitions and explain why in the tick.
    import sm_assets.core.collect as collect

    def denied(session: object = None) -> list[object]:
        raise collect.AccountDiscoveryError("AWS Organizations ListAccounts failed (AccessDeniedException): ...")

    monkeypatch.setattr(collect, "list_org_accounts", denied)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("aws_account", ["111111111111"])
    context = dg.build_sensor_context(instance=instance, resources={"sm_config": defs.resources["sm_config"]})
    result = aws_account_sensor(context)
    assert isinstance(result, dg.SkipReason)
    assert "AccessDeniedException" in (result.skip_message or "")
    assert instance.get_dynamic_partitions("aws_account") == ["111111111111"]

"""The automation condition: the latest day's tables (then the reports) follow any account's new snapshot."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from sm_assets.core.config import Settings
from sm_assets.definitions import build_definitions
from sm_assets.defs.inventory.assets import DAILY_KEYS, RAW_KEY
from sm_assets.defs.reports.assets import COVERAGE_KEY


def requested(result, key: dg.AssetKey) -> set[str]:  # result: dg.evaluate_automation_conditions' result
    return set(result.get_requested_partitions(key))


def test_new_account_snapshots_request_only_the_latest_day(tmp_path: Path) -> None:
    settings = Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="r")
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    accounts = ["111111111111", "222222222222", "333333333333"]
    instance.add_dynamic_partitions("aws_account", accounts)
    today = datetime.now(UTC).date().isoformat()

    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert result.total_requested == 0  # nothing collected yet

    # One account collected (the others never were): the latest day's tables, with the reports after them
    # (requested in the same evaluation, so they run in the same run, in order), and no other day.
    instance.report_runless_asset_event(dg.AssetMaterialization(RAW_KEY, partition=accounts[0]))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert all(requested(result, key) == {today} for key in DAILY_KEYS)
    assert requested(result, COVERAGE_KEY) == {today}
    assert requested(result, RAW_KEY) == set()
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.total_requested == 0  # handled: not requested again

    # The day's tables built by hand (the report asset is eager): the reports follow.
    for key in DAILY_KEYS:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=today))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert requested(result, COVERAGE_KEY) == {today}
    assert all(requested(result, key) == set() for key in DAILY_KEYS)

    # Another account collected later (say, launched from the UI): the day's tables again.
    instance.report_runless_asset_event(dg.AssetMaterialization(RAW_KEY, partition=accounts[1]))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert all(requested(result, key) == {today} for key in DAILY_KEYS)


def test_the_automation_sensor_targets_the_daily_assets_and_runs_by_default(tmp_path: Path) -> None:
    defs = build_definitions(Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="r"))
    sensor = defs.resolve_sensor_def("sm_assets_automation_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    targeted = sensor.asset_selection.resolve(graph)
    assert set(DAILY_KEYS) | {COVERAGE_KEY} <= targeted and RAW_KEY not in targeted

"""The SageMakerMonitoringInventory component and build_defs: attributes, defaults, and two inventories in one
code location next to a deployment's own asset."""

import inspect
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

import sm_assets
from sm_assets.core.config import Settings
from sm_assets.core.errors import ConfigError
from sm_assets.definitions import build_definitions
from sm_assets.defs.component import SageMakerMonitoringInventory
from sm_assets.defs.resources import SettingsFields, SmAssetsConfig
from sm_assets.defs.shared import DEFAULT_KEYS, InventoryKeys


def component_defs(**attributes: object) -> dg.Definitions:
    return dg.build_defs_for_component(SageMakerMonitoringInventory.from_attributes_dict(attributes=attributes))


def names(defs: dg.Definitions) -> dict[str, set[str]]:
    """Every name that must be unique in a code location."""
    repo = defs.get_repository_def()
    graph = defs.resolve_asset_graph()
    return {
        "assets": {k.to_user_string() for k in graph.get_all_asset_keys()},
        "jobs": {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")},
        "schedules": {s.name for s in repo.schedule_defs},
        "sensors": {s.name for s in repo.sensor_defs},
        "resources": set(defs.resources or {}),
        "partitions": {
            graph.get(k).partitions_def.name  # type: ignore[union-attr]
            for k in graph.get_all_asset_keys()
            if isinstance(graph.get(k).partitions_def, dg.DynamicPartitionsDefinition)
        },
    }


def test_the_component_is_exported_and_listed_by_dg() -> None:
    assert sm_assets.SageMakerMonitoringInventory is SageMakerMonitoringInventory
    assert "SageMakerMonitoringInventory" in dir(sm_assets)  # dg lists the module's attributes
    from dagster.components.core.package_entry import discover_entry_point_package_objects

    keys = {key.to_typename() for key in discover_entry_point_package_objects()}
    assert "sm_assets.SageMakerMonitoringInventory" in keys


def test_defaults_keep_the_historical_names(tmp_path: Path) -> None:
    defs = component_defs(data_dir=str(tmp_path), regions=["us-east-1"])
    assert names(defs) == names(
        build_definitions(Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="r"))
    )
    got = names(defs)
    assert got["partitions"] == {"aws_account"}
    assert got["resources"] == {"sm_config", "duckdb"}
    assert {"sagemaker_inventory_job", "sagemaker_daily_job"} == got["jobs"]
    assert got["schedules"] == {"daily_inventory_refresh"}
    assert got["sensors"] == {"aws_account_sensor", "sm_assets_automation_sensor"}
    assert {k.to_user_string() for k in DEFAULT_KEYS.everything} == got["assets"]


def test_attributes_win_over_the_environment_which_wins_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SM_ASSETS_REGIONS", "eu-west-1")
    monkeypatch.setenv("SM_ASSETS_ROLE_NAME", "FromEnv")
    defs = component_defs(data_dir=str(tmp_path / "lake"), regions=["us-west-2", "us-east-1"], shard_size=7)
    config = defs.resources["sm_config"]
    assert isinstance(config, SmAssetsConfig)
    assert not (tmp_path / "lake").exists()  # loading definitions never writes ...
    settings = config.settings()
    assert settings.regions == ("us-west-2", "us-east-1")  # attribute
    assert settings.role_name == "FromEnv"  # environment
    assert settings.coverage_drop_warn_points == 5.0  # default
    assert (settings.data_dir, settings.shard_size) == ((tmp_path / "lake").resolve(), 7)
    assert (tmp_path / "lake").is_dir()  # ... a run's settings prove the data dir writable


def test_settings_are_declared_once() -> None:
    """The component's collection attributes and SmAssetsConfig's config are one declaration (SettingsFields),
    exactly Settings.build's keyword arguments, with no defaults of their own."""
    build_args = {
        name
        for name, p in inspect.signature(Settings.build).parameters.items()
        if p.kind is p.KEYWORD_ONLY and name != "check_writable"
    }
    assert set(SettingsFields.model_fields) == build_args
    assert set(SmAssetsConfig.model_fields) == build_args
    assert set(SettingsFields.model_fields) <= set(SageMakerMonitoringInventory.model_fields)
    assert all(f.default is None for f in SmAssetsConfig.model_fields.values())


def test_settings_round_trip_through_the_resource(tmp_path: Path) -> None:
    settings = Settings.build(
        data_dir=tmp_path,
        regions=["eu-west-1"],
        role_name="Inventory",
        external_id="x-1",
        accounts=["111111111111"],
        coverage_drop_warn_points=2.5,
        redact_secrets=False,
        collect_processes=3,
        duckdb_path=tmp_path / "state" / "inv.duckdb",
        shard_size=9,
    )
    assert set(settings.build_inputs()) == set(SettingsFields.model_fields)
    assert SmAssetsConfig.from_settings(settings).settings() == settings
    assert Settings.build(**settings.build_inputs()) == settings


@pytest.mark.parametrize(
    ("attributes", "needle"),
    [
        ({"owners": ["data-eng"]}, "owners 'data-eng': each must be an email or team:<name>"),
        ({"key_prefix": "org a"}, "key_prefix part 'org a' may hold only letters, digits and underscores"),
        ({"timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus' is not an IANA time zone"),
        ({"regions": ["mars-north-1"]}, "SageMakerMonitoringInventory: SM_ASSETS_REGIONS has unknown region name(s)"),
        ({"freshness_warn_hours": 40}, "freshness_warn_hours 40.0 must be less than freshness_fail_hours 30.0"),
    ],
)
def test_bad_attributes_fail_with_one_line(tmp_path: Path, attributes: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        component_defs(data_dir=str(tmp_path), **attributes)
    assert needle in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_quoted_numbers_in_attributes_stay_text(tmp_path: Path) -> None:
    # Attribute values are rendered as Jinja templates into native values: "222222222222" would be an int.
    defs = component_defs(
        data_dir=str(tmp_path),
        accounts=["222222222222", "012345678901"],
        external_id="12345",
        tags={"cost_center": "1234"},
    )
    settings = defs.resources["sm_config"].settings()
    assert settings.accounts == ("222222222222", "012345678901")
    assert settings.external_id == "12345"
    assert defs.resolve_asset_graph().get(DEFAULT_KEYS.status).tags["cost_center"] == "1234"


def test_an_unknown_attribute_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="regoins"):
        component_defs(data_dir=str(tmp_path), regoins=["us-east-1"])


def test_freshness_owners_tags_and_blocking(tmp_path: Path) -> None:
    defs = component_defs(
        data_dir=str(tmp_path),
        regions=["us-east-1"],
        owners=["team:ml-platform", "alice@example.com"],
        tags={"cost_center": "ml"},
        freshness_warn_hours=20,
        freshness_fail_hours=25,
    )
    graph = defs.resolve_asset_graph()
    for key in DEFAULT_KEYS.everything:
        node = graph.get(key)
        assert node.owners == ["team:ml-platform", "alice@example.com"], key
        assert node.tags["cost_center"] == "ml" and node.tags["layer"], key
        expected = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=25), warn_window=timedelta(hours=20))
        # None on the account-partitioned snapshot: any one account's collection would count as fresh.
        assert node.freshness_policy == (None if key == DEFAULT_KEYS.raw else expected), key
    blocking = {(k.asset_key.path[0], k.name): graph.get_check_spec(k).blocking for k in graph.asset_check_keys}
    # The checks guarding what the same run builds next block it; the collection's and the WARNs don't.
    assert {name for (layer, name), b in blocking.items() if layer == "aws" and b} == {
        "exact_columns_and_types",
        "key_unique_per_snapshot",
        "required_fields_not_null",
        "arn_matches_account_and_region",
    }
    assert not any(b for (layer, _), b in blocking.items() if layer == "raw")
    assert not blocking[("aws", "lake_files_readable")]
    assert {name for (layer, name), b in blocking.items() if layer == "reports" and b} == {
        "one_row_per_account_region",
        "percentages_in_range",
        "findings_agree_with_coverage",
        "one_row_per_endpoint_and_monitor_type",
    }
    assert defs.resolve_schedule_def("daily_inventory_refresh").owners == ["team:ml-platform", "alice@example.com"]


def test_schedule_cron_timezone_and_stopped_start(tmp_path: Path) -> None:
    defs = component_defs(
        data_dir=str(tmp_path), inventory_cron="30 22 * * 1-5", timezone="Europe/Berlin", start_running=False
    )
    schedule = defs.resolve_schedule_def("daily_inventory_refresh")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 22 * * 1-5", "Europe/Berlin")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert {
        defs.resolve_sensor_def(s).default_status for s in ("aws_account_sensor", "sm_assets_automation_sensor")
    } == {dg.DefaultSensorStatus.STOPPED}


def test_the_readme_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("# src/<your_project>/defs/sagemaker_inventory/defs.yaml\n", 1)[1].split("```", 1)[0]
    document = yaml.safe_load(block)
    assert document["type"] == "sm_assets.SageMakerMonitoringInventory"
    monkeypatch.setenv("ML_ORG_EXTERNAL_ID", "ext-42")
    defs = component_defs(**document["attributes"])  # an S3 lake: validated, never contacted at load
    config = defs.resources["ml_org_sm_config"]  # its settings() would prove the bucket writable: not called
    assert (config.external_id, config.data_dir) == ("ext-42", "s3://my-lake-bucket/sagemaker-inventory/ml-org")
    assert (config.regions, config.shard_size) == (["us-east-1", "eu-west-1"], 500)
    got = names(defs)
    # What the README says the component adds with key_prefix: ml_org.
    assert got["jobs"] == {"ml_org_sagemaker_inventory_job", "ml_org_sagemaker_daily_job"}
    assert got["schedules"] == {"ml_org_daily_inventory_refresh"}
    assert got["sensors"] == {"ml_org_aws_account_sensor", "ml_org_sm_assets_automation_sensor"}
    assert got["resources"] == {"ml_org_sm_config", "ml_org_duckdb"}
    assert got["partitions"] == {"ml_org_aws_account"}
    assert "ml_org/raw/sagemaker_account_snapshot" in got["assets"]
    assert defs.resolve_schedule_def("ml_org_daily_inventory_refresh").execution_timezone == "Europe/Berlin"


def test_two_inventories_and_a_downstream_asset_in_one_code_location(tmp_path: Path) -> None:
    org_a = sm_assets.build_defs(key_prefix="org_a", data_dir=str(tmp_path / "a"), regions=["us-east-1"])
    org_b = component_defs(
        key_prefix=["org_b", "sm"],
        data_dir=str(tmp_path / "b"),
        accounts=["222222222222"],
        group_names={"inventory": "org_b_inventory"},
    )
    summary_a = InventoryKeys.of(SageMakerMonitoringInventory(key_prefix="org_a").options()).reports[
        "model_quality_fleet_summary"
    ]

    @dg.asset(deps=[summary_a])
    def fleet_digest() -> None:
        """The deployment's own asset, downstream of a report by key."""

    merged = dg.Definitions.merge(org_a, org_b, dg.Definitions(assets=[fleet_digest]))
    dg.Definitions.validate_loadable(merged)
    a, b = names(org_a), names(org_b)
    for kind in a:
        assert a[kind] and b[kind] and not a[kind] & b[kind], kind
    assert "org_a/raw/sagemaker_account_snapshot" in a["assets"]
    assert "org_b/sm/reports/model_quality_coverage" in b["assets"]
    assert a["partitions"] == {"org_a_aws_account"} and b["partitions"] == {"org_b_sm_aws_account"}
    assert "org_b_sm_sagemaker_daily_job" in b["jobs"] and "org_a_daily_inventory_refresh" in a["schedules"]
    graph = merged.resolve_asset_graph()
    assert graph.get(dg.AssetKey(["fleet_digest"])).parent_keys == {summary_a}
    assert graph.get(dg.AssetKey(["org_b", "sm", "aws", "collection_status"])).group_name == "org_b_inventory"
    assert graph.get(dg.AssetKey(["org_b", "sm", "reports", "model_quality_coverage"])).group_name == (
        "org_b_sm_model_quality_reports"
    )
    # Each automation sensor targets its own inventory only, so the two (and the default sensor that would
    # cover the deployment's own assets) never overlap.
    for sensor, key_prefix in (
        ("org_a_sm_assets_automation_sensor", ["org_a"]),
        ("org_b_sm_sm_assets_automation_sensor", ["org_b", "sm"]),
    ):
        targeted = merged.resolve_sensor_def(sensor).asset_selection.resolve(graph)
        assert len(targeted) == len(DEFAULT_KEYS.everything) - 1  # all but the raw snapshot
        assert all(k.path[: len(key_prefix)] == key_prefix for k in targeted), sensor
    configs = {key: merged.resources[key].settings().data_dir for key in ("org_a_sm_config", "org_b_sm_sm_config")}
    assert configs == {"org_a_sm_config": (tmp_path / "a").resolve(), "org_b_sm_sm_config": (tmp_path / "b").resolve()}


def test_same_prefix_twice_is_refused_at_load(tmp_path: Path) -> None:
    first = sm_assets.build_defs(key_prefix="org_a", data_dir=str(tmp_path / "a"))
    second = sm_assets.build_defs(key_prefix="org_a", data_dir=str(tmp_path / "b"))
    with pytest.raises(Exception, match="Duplicate|different resources with same key"):
        dg.Definitions.validate_loadable(dg.Definitions.merge(first, second))

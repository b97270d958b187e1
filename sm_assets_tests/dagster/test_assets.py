"""Dagster integration against the seeded fake organization (moto in-process).

Follows the Dagster testing ladder: a plain call of the core, the asset with `build_asset_context`,
then `dg.materialize` of every asset and check through a real (ephemeral) instance. The tests marked
BOTH_LAKES run twice: with a local lake, and with the lake on moto's S3 server (SM_ASSETS_DATA_DIR=s3://...,
AWS_ENDPOINT_URL_S3 pointing at it) while SageMaker and STS still hit the in-process fake organization.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from sm_assets.core.config import Settings
from sm_assets.defs.inventory.assets import (
    INVENTORY_ASSETS,
    NORMALIZED_KEYS,
    STATUS_KEY,
    collect_sagemaker_account,
)
from sm_assets.defs.resources import build_resources
from sm_assets.demo.seed import DemoOrg

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


BOTH_LAKES = pytest.mark.parametrize("lake_kind", ["local", "s3"], indirect=True)


@pytest.fixture
def lake_kind(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "local")  # local unless a test asks for BOTH_LAKES


@pytest.fixture
def settings(data_location: Path | str, tmp_path: Path) -> Settings:
    duckdb_path = None if isinstance(data_location, Path) else tmp_path / "sm_assets.duckdb"
    return Settings.build(
        data_dir=data_location, duckdb_path=duckdb_path, regions=REGIONS, role_name="SageMakerInventoryReadOnly"
    )


@pytest.fixture
def instance(org: DemoOrg) -> dg.DagsterInstance:
    inst = dg.DagsterInstance.ephemeral()
    inst.add_dynamic_partitions("aws_account", org.active_account_ids)
    return inst


def busiest_account(org: DemoOrg) -> str:
    counts = {a: len(arns) for a, arns in org.expected_definition_arns().items()}
    return max(counts, key=lambda a: counts[a])


def materialize(settings: Settings, instance: dg.DagsterInstance, account: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        INVENTORY_ASSETS, partition_key=account, instance=instance, resources=build_resources(settings)
    )


def view(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_asset_with_build_asset_context(org: DemoOrg, settings: Settings, instance: dg.DagsterInstance) -> None:
    account = busiest_account(org)
    context = dg.build_asset_context(partition_key=account, instance=instance)
    events = list(collect_sagemaker_account(context, sm_config=build_resources(settings)["sm_config"]))
    results = {e.asset_key.to_user_string(): e for e in events if isinstance(e, dg.MaterializeResult)}
    assert results["raw/sagemaker_model_quality_job_definition"].metadata["dagster/row_count"] == len(
        org.expected_definition_arns()[account]
    )
    checks = {e.check_name: e.passed for e in events if isinstance(e, dg.AssetCheckResult)}
    assert checks == {"every_region_has_status": True, "no_access_denied": True, "no_collection_errors": True}


@BOTH_LAKES
def test_materialize_stores_exactly_what_exists(org: DemoOrg, settings: Settings, instance: dg.DagsterInstance) -> None:
    account = busiest_account(org)
    result = materialize(settings, instance, account)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [(c.check_name, c.passed) for c in checks if not c.passed]
    assert {c.asset_check_key.name for c in checks} >= {"exact_columns_and_types", "every_region_has_status"}

    rows = view(
        settings,
        "SELECT _key, tags, model_quality_job_input, network_config, job_resources, "
        "model_quality_baseline_config, stopping_condition "
        "FROM aws.sagemaker_model_quality_job_definition",
    )
    truth = {d.arn: d for r in REGIONS for d in org.region(account, r).job_definitions}
    assert {r[0] for r in rows} == set(truth)
    for key, tags, job_input, network, resources, baseline, stopping in rows:
        d = truth[key]
        assert tags == d.tags
        assert json.loads(job_input) == d.request["ModelQualityJobInput"]
        assert json.loads(resources) == d.request["JobResources"]
        for stored, field in (
            (network, "NetworkConfig"),
            (baseline, "ModelQualityBaselineConfig"),
            (stopping, "StoppingCondition"),
        ):
            assert (None if stored is None else json.loads(stored)) == d.request.get(field), (key, field)

    endpoints = view(settings, "SELECT _key, endpoint_status FROM aws.sagemaker_endpoint")
    assert dict(endpoints) == {e.arn: e.status for r in REGIONS for e in org.region(account, r).endpoints}
    schedules = view(
        settings,
        "SELECT _key, monitoring_type, monitoring_schedule_status, "
        "last_monitoring_execution_summary->>'MonitoringExecutionStatus' "
        "FROM aws.sagemaker_monitoring_schedule",
    )
    expected = {
        (s.arn, s.monitoring_type, s.status, s.last_execution_status)
        for r in REGIONS
        for s in org.region(account, r).schedules_of_type("ModelQuality")
    }
    assert set(schedules) == expected

    mat = instance.get_latest_materialization_event(NORMALIZED_KEYS["model_quality_job_definition"])
    assert mat is not None
    metadata = mat.asset_materialization.metadata  # type: ignore[union-attr]
    assert metadata["dagster/row_count"].value == len(truth)
    assert "dagster/column_lineage" in metadata and "dagster/column_schema" in metadata
    assert str(metadata["path"].value).startswith(f"{settings.lake_dir}/sagemaker_model_quality_job_definition/")
    if settings.on_s3:  # only the DuckDB file is local
        assert sorted(p.name for p in settings.data_dir.iterdir()) == ["sm_assets.duckdb"]


@BOTH_LAKES
def test_denied_account_is_reported_not_empty(org: DemoOrg, settings: Settings, instance: dg.DagsterInstance) -> None:
    denied = org.denied_account_ids[0]
    result = materialize(settings, instance, denied)
    assert result.success  # the partition succeeds ...
    evaluations = {c.check_name: c for c in result.get_asset_check_evaluations()}
    warn = evaluations["no_access_denied"]
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN  # ... and a WARN check flags it
    assert evaluations["every_region_has_status"].passed
    statuses = view(
        settings,
        f"SELECT DISTINCT region, status, error_code FROM aws.collection_status "
        f"WHERE account_id = '{denied}' ORDER BY region",
    )
    assert statuses == [(r, "access_denied", "AccessDenied") for r in sorted(REGIONS)]
    assert view(settings, "SELECT count(*) FROM aws.sagemaker_model_quality_job_definition") == [(0,)]
    mat = instance.get_latest_materialization_event(STATUS_KEY)
    assert mat.asset_materialization.metadata["statuses"].value == {  # type: ignore[union-attr]
        "ok": 0,
        "access_denied": 9,
        "error": 0,
    }


def test_rematerializing_same_day_never_duplicates(
    org: DemoOrg, settings: Settings, instance: dg.DagsterInstance
) -> None:
    account = busiest_account(org)
    for _ in range(3):
        assert materialize(settings, instance, account).success
    (total, distinct) = view(
        settings,
        "SELECT count(*), count(DISTINCT _key) FROM aws.sagemaker_model_quality_job_definition_history",
    )[0]
    assert total == distinct == len(org.expected_definition_arns()[account])
    assert view(settings, "SELECT count(*) FROM aws.collection_status_history") == [(9,)]


def test_region_error_stores_the_rest_and_turns_the_run_red(
    org: DemoOrg, settings: Settings, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typing import Any

    from sm_assets.core import collection as collect

    real_client = collect.sagemaker_client

    def broken_in_eu(session: Any, region: str, specs: Any) -> Any:
        client = real_client(session, region, specs)
        if region == "eu-west-1":

            def boom(**_: Any) -> None:
                raise RuntimeError("simulated outage")

            client.meta.events.register("before-call.sagemaker.ListModelQualityJobDefinitions", boom)
        return client

    monkeypatch.setattr(collect, "sagemaker_client", broken_in_eu)
    account = busiest_account(org)
    result = dg.materialize(
        INVENTORY_ASSETS,
        partition_key=account,
        instance=instance,
        resources=build_resources(settings),
        raise_on_error=False,
    )
    assert not result.success  # red: data is missing for a reason other than denied access
    failed_steps = {e.step_key for e in result.all_events if e.is_step_failure}
    assert failed_steps == {"aws__sagemaker_model_quality_job_definition"}
    stored = {
        r[0] for r in view(settings, "SELECT split_part(_key, ':', 4) FROM aws.sagemaker_model_quality_job_definition")
    }
    expected_regions = {r for r in REGIONS if r != "eu-west-1" and org.region(account, r).job_definitions}
    assert stored == expected_regions  # every reachable region is still stored
    errors = view(settings, "SELECT region, status, message FROM aws.collection_status WHERE status <> 'ok'")
    assert errors == [("eu-west-1", "error", "simulated outage")]
    evaluations = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert evaluations["no_collection_errors"] is False


@BOTH_LAKES
def test_one_batched_run_materializes_each_account_partition(
    org: DemoOrg, settings: Settings, instance: dg.DagsterInstance
) -> None:
    from sm_assets.definitions import build_definitions
    from sm_assets.defs.inventory.automation import all_accounts_run_tags

    accounts = list(instance.get_dynamic_partitions("aws_account"))
    job = build_definitions(settings).resolve_job_def("sagemaker_inventory_job")
    result = job.execute_in_process(instance=instance, tags=all_accounts_run_tags(accounts))
    assert result.success
    assert len(instance.get_runs()) == 1  # one run (one process) for every account
    expected = org.expected_definition_arns(include_denied=True)
    key = NORMALIZED_KEYS["model_quality_job_definition"]
    assert instance.get_materialized_partitions(key) == set(accounts)
    for account in accounts:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[account]), limit=10
        ).records
        assert len(records) == 1  # one event per partition
        metadata = records[0].asset_materialization.metadata  # type: ignore[union-attr]
        want = 0 if account in org.denied_account_ids else len(expected[account])
        assert metadata["dagster/row_count"].value == want, account  # this account's, not the run's
        assert metadata["run_accounts"].value == len(accounts)
    status = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not status["no_access_denied"].passed  # the denied account is flagged in the batch
    assert status["every_region_has_status"].passed
    stored = view(settings, "SELECT count(*), count(DISTINCT account_id) FROM aws.collection_status")
    assert stored == [(len(accounts) * 9, len(accounts))]


def test_damaged_raw_file_in_a_batch_is_named_and_loses_nothing(
    org: DemoOrg, settings: Settings, instance: dg.DagsterInstance
) -> None:
    """Normalizing many accounts per DuckDB query still names the one bad file, in one line, and the
    normalized files of the previous run stay as they were."""
    from sm_assets.definitions import build_definitions
    from sm_assets.defs.inventory.automation import all_accounts_run_tags

    accounts = list(instance.get_dynamic_partitions("aws_account"))
    tags = all_accounts_run_tags(accounts)
    job = build_definitions(settings).resolve_job_def("sagemaker_inventory_job")
    assert job.execute_in_process(instance=instance, tags=tags).success
    before = view(settings, "SELECT account_id, count(*) FROM aws.sagemaker_model_quality_job_definition GROUP BY 1")
    key = NORMALIZED_KEYS["model_quality_job_definition"]

    def normalize_again() -> dg.ExecuteInProcessResult:  # the normalized step alone, over stored raw files
        return dg.materialize(
            INVENTORY_ASSETS,
            selection=[key],
            instance=instance,
            resources=build_resources(settings),
            tags=tags,
            raise_on_error=False,
        )

    normalized = normalize_again()
    assert normalized.success

    victim = busiest_account(org)
    raw_files = sorted((settings.lake_dir / "raw_sagemaker_model_quality_job_definition").rglob("*.parquet"))
    raw = next(p for p in raw_files if victim in p.name)
    data = bytearray(raw.read_bytes())
    for i in range(4, 200):  # damage the first data page, keep the footer readable
        data[i] ^= 0xFF
    raw.write_bytes(bytes(data))
    result = normalize_again()
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message  # type: ignore[union-attr]
    assert str(raw) in message and "corrupt" in message
    assert len(message.strip().splitlines()) == 1
    after = view(settings, "SELECT account_id, count(*) FROM aws.sagemaker_model_quality_job_definition GROUP BY 1")
    assert sorted(after) == sorted(before)


def test_raw_file_of_another_account_is_refused(tmp_path: Path) -> None:
    from sm_assets.core import lake
    from sm_assets.core.collection import AccountSnapshot, RawItem
    from sm_assets.core.snapshots import raw_table
    from sm_assets.core.schemas import RAW_SCHEMA

    snap = AccountSnapshot("111111111111", datetime.now(UTC), ())
    snap.items.append(RawItem("endpoint", "us-east-1", "arn:x", "x", {"EndpointName": "x"}, []))
    path = lake.write_atomic(raw_table(snap, "endpoint"), tmp_path / "account_id=222222222222.parquet")
    assert lake.check_account_file(path, RAW_SCHEMA, "111111111111") == 1
    with pytest.raises(lake.LakeError, match="holds rows of another account"):
        lake.check_account_file(path, RAW_SCHEMA, "222222222222")
    with pytest.raises(lake.LakeError, match="lake file missing"):
        lake.check_account_file(tmp_path / "nope.parquet", RAW_SCHEMA, "222222222222")


def test_unparseable_payload_in_a_batch_names_its_file(tmp_path: Path) -> None:
    """A describe payload DuckDB cannot parse fails the batch; the one-line error names the file."""
    import duckdb as duck
    import pyarrow as pa

    from sm_assets.core import lake
    from sm_assets.core.collection import AccountSnapshot, RawItem, StatusRecord
    from sm_assets.core.snapshots import raw_table, status_table
    from sm_assets.core.specs import ENDPOINT_SPEC
    from sm_assets.defs.inventory.assets import normalize_accounts

    settings = Settings.build(data_dir=tmp_path, regions=("us-east-1",), role_name="r")
    accounts = ["111111111111", "222222222222", "333333333333"]
    bad_file = None
    for account_id in accounts:
        snap = AccountSnapshot(account_id, datetime.now(UTC), ("us-east-1",))
        arn = f"arn:aws:sagemaker:us-east-1:{account_id}:endpoint/ep"
        snap.items.append(RawItem("endpoint", "us-east-1", arn, "ep", {"EndpointArn": arn, "EndpointName": "ep"}, []))
        snap.statuses = [StatusRecord("us-east-1", s.resource_type, "ok") for s in (ENDPOINT_SPEC,)]
        raw = raw_table(snap, "endpoint")
        if account_id == accounts[1]:
            raw = raw.set_column(raw.schema.get_field_index("describe_json"), "describe_json", pa.array(["{not json"]))
        path = lake.write_atomic(
            raw, lake.dataset_file(settings.lake_dir, ENDPOINT_SPEC.raw_dataset, snap.snapshot_date, account_id)
        )
        lake.write_atomic(
            status_table(snap),
            lake.dataset_file(settings.lake_dir, "collection_status", snap.snapshot_date, account_id),
        )
        if account_id == accounts[1]:
            bad_file = path
    with pytest.raises(dg.Failure) as failure:
        normalize_accounts(settings, ENDPOINT_SPEC, accounts, duck.connect())
    message = failure.value.description or ""
    assert f"cannot normalize {bad_file}" in message and "\n" not in message


def test_raw_file_with_missing_account_ids_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sm_assets.core import lake
    from sm_assets.core.schemas import RAW_SCHEMA

    rows = {f.name: pa.array([None, None], f.type) for f in RAW_SCHEMA}
    rows["account_id"] = pa.array(["111111111111", None])
    path = tmp_path / "account_id=111111111111.parquet"
    pq.write_table(pa.table(rows, schema=RAW_SCHEMA), path)
    with pytest.raises(lake.LakeError, match="rows without an account_id"):
        lake.check_account_file(path, RAW_SCHEMA, "111111111111")

"""Dagster integration against the seeded fake organization (moto in-process).

Follows the Dagster testing ladder: the raw asset called with `build_asset_context`, then `dg.materialize`
of the account-partitioned raw snapshot and of the day's tables through a real (ephemeral) instance. The
tests marked BOTH_LAKES run twice: with a local lake, and with the lake on moto's S3 server
(SM_ASSETS_DATA_DIR=s3://..., AWS_ENDPOINT_URL_S3 pointing at it) while SageMaker and STS still hit the
in-process fake organization.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from sm_assets.core import lake, layout
from sm_assets.core.config import Settings
from sm_assets.core.schemas import column_name
from sm_assets.core.snapshots import staged_snapshots
from sm_assets.core.specs import JOB_DEFINITION_SPECS, MONITOR_TYPES, RESOURCE_SPECS
from sm_assets.core.statuses import STATUSES
from sm_assets.definitions import build_definitions
from sm_assets.defs.inventory.assets import RAW_KEY, STATUS_KEY, TABLE_KEYS
from sm_assets.defs.inventory.automation import shard_run_tags
from sm_assets.demo.seed import DemoOrg
from sm_assets_tests.helpers import read_views

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
BOTH_LAKES = pytest.mark.parametrize("lake_kind", ["local", "s3"], indirect=True)
MQ_KEY = TABLE_KEYS["model_quality_job_definition"]
CELLS = len(REGIONS) * len(RESOURCE_SPECS)  # status rows per account: one per region and resource type


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


def expected_table_rows(org: DemoOrg, account: str) -> dict[str, dict[str, dict[str, Any]]]:
    """table -> ARN -> {column: value} for what the seed created in `account`, from its exact requests (JSON
    columns as parsed JSON); tags None where ListTags is denied."""
    out: dict[str, dict[str, dict[str, Any]]] = {spec.table.name: {} for spec in RESOURCE_SPECS}
    for region in REGIONS:
        truth = org.region(account, region)

        def tags(value: dict[str, str], truth: Any = truth) -> dict[str, str] | None:
            return None if truth.tags_denied else value

        for monitor_type in MONITOR_TYPES:
            table = JOB_DEFINITION_SPECS[monitor_type].table.name
            for d in truth.definitions_of(monitor_type):
                row = {column_name(k): v for k, v in d.request.items() if k not in ("Tags", "JobDefinitionName")}
                out[table][d.arn] = {**row, "job_definition_name": d.name, "tags": tags(d.tags)}
        for e in truth.endpoints:
            capture = None
            if e.capture_enabled is not None:
                capture = {
                    "EnableCapture": e.capture_enabled,
                    "CaptureStatus": e.capture_status,
                    "CurrentSamplingPercentage": e.sampling_percentage,
                }
            out["sagemaker_endpoint"][e.arn] = {
                "endpoint_name": e.name,
                "endpoint_status": e.status,
                "endpoint_config_name": e.config_name,
                "data_capture_config": capture,
                "tags": tags(e.tags),
            }
        for c in truth.endpoint_configs:
            row = {column_name(k): v for k, v in c.request.items()}
            out["sagemaker_endpoint_config"][c.arn] = {**row, "tags": tags(c.tags)}
        for sched in truth.schedules:
            out["sagemaker_monitoring_schedule"][sched.arn] = {
                "monitoring_schedule_name": sched.name,
                "monitoring_type": sched.monitoring_type,
                "monitoring_schedule_status": sched.status,
                "endpoint_name": sched.endpoint_name,
                "tags": tags(sched.tags),
            }
    return out


def assert_tables_match_truth(settings: Settings, org: DemoOrg, account: str) -> None:
    """Every table holds exactly the account's resources, and every column the seed set holds its value."""
    for table, expected in expected_table_rows(org, account).items():
        columns = sorted({c for row in expected.values() for c in row})
        select = ", ".join(["_key", *columns]) if columns else "_key"
        rows = view(settings, f"SELECT {select} FROM aws.{table} WHERE account_id = '{account}'")
        assert {r[0] for r in rows} == set(expected), table
        for key, *values in rows:
            got = dict(zip(columns, values, strict=True))
            for column, want in expected[key].items():
                value = got[column]
                if column == "data_capture_config" and table == "sagemaker_endpoint" and value is not None:
                    value = {k: v for k, v in json.loads(value).items() if k in want}
                elif isinstance(value, str) and isinstance(want, dict | list):
                    value = json.loads(value)
                assert value == want, (table, key, column)


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def collect(settings: Settings, instance: dg.DagsterInstance, account: str, **kwargs: Any) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings)
    return dg.materialize(
        defs.assets,
        selection=[RAW_KEY],
        partition_key=account,
        instance=instance,
        resources=defs.resources,
        **kwargs,
    )


def build_day(settings: Settings, instance: dg.DagsterInstance, **kwargs: Any) -> dg.ExecuteInProcessResult:
    keys = [STATUS_KEY, *TABLE_KEYS.values()]
    defs = build_definitions(settings)
    return dg.materialize(
        defs.assets,
        selection=keys,
        partition_key=today(),
        instance=instance,
        resources=defs.resources,
        **kwargs,
    )


def view(settings: Settings, sql: str) -> list[tuple]:
    with read_views(settings) as conn:
        return conn.execute(sql).fetchall()


def test_asset_with_build_asset_context(org: DemoOrg, settings: Settings, instance: dg.DagsterInstance) -> None:
    account = busiest_account(org)
    defs = build_definitions(settings)
    context = dg.build_asset_context(partition_key=account, instance=instance, resources=defs.resources)
    events = list(defs.get_assets_def(RAW_KEY)(context))
    (materialization,) = [e for e in events if isinstance(e, dg.AssetMaterialization)]
    assert (materialization.asset_key, materialization.partition) == (RAW_KEY, account)
    assert materialization.metadata["rows_by_type"].value["model_quality_job_definition"] == len(
        org.expected_definition_arns()[account]
    )
    assert materialization.tags and materialization.tags["dagster/data_version"].isdigit()
    checks = {e.check_name: e.passed for e in events if isinstance(e, dg.AssetCheckResult)}
    assert checks == {"every_region_has_status": True, "no_access_denied": True, "no_collection_errors": True}


@BOTH_LAKES
def test_materialize_stores_exactly_what_exists(org: DemoOrg, settings: Settings, instance: dg.DagsterInstance) -> None:
    account = busiest_account(org)
    collected = collect(settings, instance, account)
    assert collected.success
    assert instance.get_materialized_partitions(RAW_KEY) == {account}
    built = build_day(settings, instance)
    assert built.success
    checks = built.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [(c.check_name, c.passed) for c in checks if not c.passed]
    assert {c.asset_check_key.name for c in checks} >= {"exact_columns_and_types", "key_unique_per_snapshot"}

    assert_tables_match_truth(settings, org, account)
    truth = org.expected_definition_arns()[account]

    mat = instance.get_latest_materialization_event(MQ_KEY)
    assert mat is not None
    metadata = mat.asset_materialization.metadata  # type: ignore[union-attr]
    assert metadata["dagster/row_count"].value == len(truth)
    assert "dagster/column_lineage" in metadata and "dagster/column_schema" in metadata
    daily = layout.daily_file(settings.lake_dir, "sagemaker_model_quality_job_definition", datetime.now(UTC).date())
    assert str(metadata["path"].value) == str(daily)
    if settings.on_s3:  # only the DuckDB file is local
        assert sorted(p.name for p in settings.data_dir.iterdir()) == ["sm_assets.duckdb"]


@BOTH_LAKES
def test_denied_account_is_reported_not_empty(org: DemoOrg, settings: Settings, instance: dg.DagsterInstance) -> None:
    denied = org.denied_account_ids[0]
    result = collect(settings, instance, denied)
    assert result.success  # the partition succeeds ...
    evaluations = {c.check_name: c for c in result.get_asset_check_evaluations()}
    warn = evaluations["no_access_denied"]
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN  # ... and a WARN check flags it
    assert evaluations["every_region_has_status"].passed
    assert build_day(settings, instance).success
    statuses = view(
        settings,
        f"SELECT DISTINCT region, status, error_code FROM aws.collection_status "
        f"WHERE account_id = '{denied}' ORDER BY region",
    )
    assert statuses == [(r, "access_denied", "AccessDenied") for r in sorted(REGIONS)]
    assert view(settings, "SELECT count(*) FROM aws.sagemaker_model_quality_job_definition") == [(0,)]
    raw = instance.get_latest_materialization_event(RAW_KEY)
    assert raw.asset_materialization.metadata["statuses"].value == {  # type: ignore[union-attr]
        **dict.fromkeys(STATUSES, 0),
        "access_denied": CELLS,
    }


def test_rematerializing_same_day_never_duplicates(
    org: DemoOrg, settings: Settings, instance: dg.DagsterInstance
) -> None:
    account = busiest_account(org)
    for _ in range(3):
        assert collect(settings, instance, account).success
        assert build_day(settings, instance).success
    (total, distinct) = view(
        settings,
        "SELECT count(*), count(DISTINCT _key) FROM aws.sagemaker_model_quality_job_definition_history",
    )[0]
    assert total == distinct == len(org.expected_definition_arns()[account])
    assert view(settings, "SELECT count(*) FROM aws.collection_status_history") == [(CELLS,)]
    assert len(instance.fetch_materializations(RAW_KEY, limit=10).records) == 3  # one per collection


def test_region_error_stores_the_rest_and_turns_the_day_red(
    org: DemoOrg, settings: Settings, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sm_assets.core import collection

    real_client = collection.sagemaker_client

    def broken_in_eu(session: Any, region: str, specs: Any) -> Any:
        client = real_client(session, region, specs)
        if region == "eu-west-1":

            def boom(**_: Any) -> None:
                raise RuntimeError("simulated outage")

            client.meta.events.register("before-call.sagemaker.ListModelQualityJobDefinitions", boom)
        return client

    monkeypatch.setattr(collection, "sagemaker_client", broken_in_eu)
    account = busiest_account(org)
    result = collect(settings, instance, account, raise_on_error=False)
    assert result.success  # the snapshot is stored, errors and all ...
    evaluations = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert evaluations["no_collection_errors"] is False  # ... and flagged
    day = build_day(settings, instance, raise_on_error=False)
    assert not day.success  # red: data is missing for a reason other than denied access
    failure = next(e for e in day.all_events if e.is_step_failure)
    assert "collection failed in 1 account-region-type cell(s)" in (
        failure.step_failure_data.user_failure_data.description or ""  # type: ignore[union-attr]
    )
    stored = {
        r[0] for r in view(settings, "SELECT split_part(_key, ':', 4) FROM aws.sagemaker_model_quality_job_definition")
    }
    expected_regions = {r for r in REGIONS if r != "eu-west-1" and org.region(account, r).job_definitions}
    assert stored == expected_regions  # every reachable region is still stored
    errors = view(settings, "SELECT region, status, message FROM aws.collection_status WHERE status <> 'ok'")
    assert errors == [("eu-west-1", "error", "simulated outage")]


@BOTH_LAKES
def test_one_run_materializes_each_account_partition_once(
    org: DemoOrg, settings: Settings, instance: dg.DagsterInstance
) -> None:
    accounts = list(instance.get_dynamic_partitions("aws_account"))
    job = build_definitions(settings).resolve_job_def("sagemaker_inventory_job")
    result = job.execute_in_process(instance=instance, tags=shard_run_tags(accounts, 0, 1))
    assert result.success
    assert len(instance.get_runs()) == 1  # one run (one process) for every account
    expected = org.expected_definition_arns(include_denied=True)
    assert instance.get_materialized_partitions(RAW_KEY) == set(accounts)
    events = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert len(events) == len(accounts)  # exactly one event per account, nothing per resource type
    for account in accounts:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=RAW_KEY, asset_partitions=[account]), limit=10
        ).records
        assert len(records) == 1
        metadata = records[0].asset_materialization.metadata  # type: ignore[union-attr]
        want = 0 if account in org.denied_account_ids else len(expected[account])
        assert metadata["rows_by_type"].value["model_quality_job_definition"] == want, account
    status = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not status["no_access_denied"].passed  # the denied account is flagged in the batch
    assert status["every_region_has_status"].passed
    assert build_day(settings, instance).success
    stored = view(settings, "SELECT count(*), count(DISTINCT account_id) FROM aws.collection_status")
    assert stored == [(len(accounts) * CELLS, len(accounts))]
    for account in org.collectible_account_ids:  # every table, every account, tags-denied one included
        assert_tables_match_truth(settings, org, account)
    statuses = dict(
        view(
            settings,
            "SELECT DISTINCT account_id || '/' || region, status FROM aws.collection_status "
            "WHERE status IN ('tags_denied', 'region_disabled')",
        )
    )
    expected = {f"{a}/{r}": "region_disabled" for a, r in org.disabled_regions}
    expected |= {f"{a}/{r}": "tags_denied" for a in org.tags_denied_account_ids for r in REGIONS}
    assert statuses == expected and len(expected) == 1 + len(REGIONS)


def test_damaged_snapshot_file_is_named_and_loses_nothing(
    org: DemoOrg, settings: Settings, instance: dg.DagsterInstance
) -> None:
    """A damaged data page (the footer still reads) fails the day's build with one line naming the file; the
    day's previous tables stay as they were."""
    accounts = list(instance.get_dynamic_partitions("aws_account"))
    job = build_definitions(settings).resolve_job_def("sagemaker_inventory_job")
    assert job.execute_in_process(instance=instance, tags=shard_run_tags(accounts, 0, 1)).success
    assert build_day(settings, instance).success
    before = view(settings, "SELECT account_id, count(*) FROM aws.sagemaker_model_quality_job_definition GROUP BY 1")

    victim = busiest_account(org)
    assert collect(settings, instance, victim).success  # a newer snapshot, newer than the day's tables
    raw = Path(staged_snapshots(settings.lake_dir, datetime.now(UTC).date())[victim].raw_paths[0])
    data = bytearray(raw.read_bytes())
    for i in range(4, 200):  # damage the first data page, keep the footer readable
        data[i] ^= 0xFF
    raw.write_bytes(bytes(data))
    result = build_day(settings, instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message  # type: ignore[union-attr]
    assert str(raw) in message
    assert len(message.strip().splitlines()) == 1
    after = view(settings, "SELECT account_id, count(*) FROM aws.sagemaker_model_quality_job_definition GROUP BY 1")
    assert sorted(after) == sorted(before)


def test_unparseable_payload_names_its_file(tmp_path: Path) -> None:
    """A describe payload DuckDB cannot parse fails the build; the one-line error names the file."""
    import pyarrow as pa

    from sm_assets.core.collection import AccountSnapshot, RawItem, StatusRecord
    from sm_assets.core.daily_tables import build_daily_tables
    from sm_assets.core.errors import LakeError
    from sm_assets.core.snapshots import raw_table, status_table

    day = datetime.now(UTC).date()
    lake_dir = tmp_path / "lake"
    bad_file = None
    for i, account_id in enumerate(["111111111111", "222222222222", "333333333333", "444444444444"]):
        snap = AccountSnapshot(account_id, datetime.now(UTC), ("us-east-1",))
        arn = f"arn:aws:sagemaker:us-east-1:{account_id}:endpoint/ep"
        snap.items.append(RawItem("endpoint", "us-east-1", arn, "ep", {"EndpointArn": arn, "EndpointName": "ep"}, []))
        snap.statuses = [StatusRecord("us-east-1", "endpoint", "ok")]
        raw = raw_table(snap)
        if i == 2:
            raw = raw.set_column(raw.schema.get_field_index("describe_json"), "describe_json", pa.array(["{not json"]))
        path = lake.write_atomic(raw, layout.raw_snapshot_file(lake_dir, day, account_id, snap.collected_at))
        lake.write_atomic(status_table(snap), layout.status_file(lake_dir, day, account_id, snap.collected_at))
        if i == 2:
            bad_file = path
    with pytest.raises(LakeError) as failure:
        build_daily_tables(lake_dir, day)
    message = str(failure.value)
    assert f"{bad_file}:" in message and "\n" not in message


def test_check_file_refuses_another_accounts_rows(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sm_assets.core.collection import AccountSnapshot, RawItem
    from sm_assets.core.errors import LakeError
    from sm_assets.core.schemas import RAW_SCHEMA
    from sm_assets.core.snapshots import raw_table

    snap = AccountSnapshot("111111111111", datetime.now(UTC), ())
    snap.items.append(RawItem("endpoint", "us-east-1", "arn:x", "x", {"EndpointName": "x"}, []))
    path = lake.write_atomic(raw_table(snap), tmp_path / "account_id=222222222222.parquet")
    assert lake.check_file(path, RAW_SCHEMA, "111111111111") == 1
    with pytest.raises(LakeError, match="holds rows of another account"):
        lake.check_file(path, RAW_SCHEMA, "222222222222")
    with pytest.raises(LakeError, match="lake file missing"):
        lake.check_file(tmp_path / "nope.parquet", RAW_SCHEMA, "222222222222")
    rows = {f.name: pa.array([None, None], f.type) for f in RAW_SCHEMA}
    rows["account_id"] = pa.array(["111111111111", None])
    pq.write_table(pa.table(rows, schema=RAW_SCHEMA), path)
    with pytest.raises(LakeError, match="rows without an account_id"):
        lake.check_file(path, RAW_SCHEMA, "111111111111")


@pytest.mark.parametrize("between", ["nothing", "the day's tables"])
def test_a_second_collection_reuses_the_stored_describes(
    org: DemoOrg, settings: Settings, instance: dg.DagsterInstance, between: str
) -> None:
    """Immutable resources (job definitions of every type, endpoint configs) are not described again: from the
    account's per-account snapshot, or from the day's daily raw files once those hold it."""
    account = busiest_account(org)
    immutable = [spec for spec in RESOURCE_SPECS if spec.immutable]
    assert {s.resource_type for s in immutable} == {
        *(s.resource_type for s in JOB_DEFINITION_SPECS.values()),
        "endpoint_config",
    }
    definitions = sum(len(expected_table_rows(org, account)[spec.table.name]) for spec in immutable)
    assert collect(settings, instance, account).success
    if between == "the day's tables":
        assert build_day(settings, instance).success
    assert collect(settings, instance, account).success
    latest = instance.get_latest_materialization_event(RAW_KEY).asset_materialization.metadata  # type: ignore[union-attr]
    assert latest["api_calls_saved"].value == definitions > 0

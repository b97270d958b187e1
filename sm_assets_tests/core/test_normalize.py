import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from sm_assets.core import lake
from sm_assets.core.collection import AccountSnapshot, RawItem
from sm_assets.core.normalize import normalized_table, snapshot_from_raw
from sm_assets.core.payloads import merge_unknown_fields, to_jsonable
from sm_assets.core.schemas import RAW_SCHEMA
from sm_assets.core.snapshots import raw_table
from sm_assets.core.specs import MODEL_QUALITY_JOB_DEFINITION_SPEC
from sm_assets_tests.helpers import lake_with, read_views

MQ = MODEL_QUALITY_JOB_DEFINITION_SPEC.table

ACCOUNT = "111122223333"
REGION = "eu-west-1"
COLLECTED = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)

BASELINE = {"BaseliningJobName": "base", "ConstraintsResource": {"S3Uri": "s3://b/constraints.json"}}
NETWORK = {
    "EnableInterContainerTrafficEncryption": True,
    "EnableNetworkIsolation": False,
    "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1", "subnet-2"]},
}
STOPPING = {"MaxRuntimeInSeconds": 1800}
ENDPOINT_INPUT = {
    "EndpointInput": {
        "EndpointName": "churn",
        "LocalPath": "/opt/ml/input",
        "ProbabilityThresholdAttribute": 0.5,
    },
    "GroundTruthS3Input": {"S3Uri": "s3://b/gt"},
}  # noqa: E501
BATCH_INPUT = {
    "BatchTransformInput": {
        "DataCapturedDestinationS3Uri": "s3://b/capture",
        "DatasetFormat": {"Csv": {"Header": True}},
        "LocalPath": "/opt/ml/input",
    },
    "GroundTruthS3Input": {"S3Uri": "s3://b/gt"},
}


def describe(name: str, **blocks: object) -> dict[str, object]:
    body: dict[str, object] = {
        "JobDefinitionArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-quality-job-definition/{name}",
        "JobDefinitionName": name,
        "CreationTime": "2026-01-02T03:04:05.123000+00:00",
        "ModelQualityAppSpecification": {
            "ImageUri": "img",
            "ProblemType": "BinaryClassification",
            "Environment": {"A": "1"},
        },
        "ModelQualityJobInput": ENDPOINT_INPUT,
        "ModelQualityJobOutputConfig": {
            "MonitoringOutputs": [{"S3Output": {"S3Uri": "s3://b/o", "LocalPath": "/opt/ml/o"}}]
        },
        "JobResources": {"ClusterConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}},
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/monitor",
    }
    body.update(blocks)
    return body


def item(body: dict[str, object], tags: list[dict[str, str]] | None) -> RawItem:
    return RawItem(
        "model_quality_job_definition",
        REGION,
        str(body["JobDefinitionArn"]),
        str(body["JobDefinitionName"]),
        body,
        tags,
    )


def store_and_connect(tmp_path: Path, items: list[RawItem]) -> duckdb.DuckDBPyConnection:
    """The items as one account's snapshot, through the daily tables to the DuckDB file's views."""
    snap = AccountSnapshot(ACCOUNT, COLLECTED, (REGION,), items=items)
    return read_views(lake_with(tmp_path, [snap]))


OPTIONAL_BLOCKS = {
    "ModelQualityBaselineConfig": ("model_quality_baseline_config", BASELINE),
    "NetworkConfig": ("network_config", NETWORK),
    "StoppingCondition": ("stopping_condition", STOPPING),
}


def test_every_optional_block_combination(tmp_path: Path) -> None:
    items = []
    expected: dict[str, dict[str, object]] = {}
    for n, present in enumerate(itertools.product([False, True], repeat=len(OPTIONAL_BLOCKS))):
        blocks = {field: value for (field, (_, value)), on in zip(OPTIONAL_BLOCKS.items(), present, strict=True) if on}
        body = describe(f"def-{n}", **blocks)
        items.append(item(body, [{"Key": "n", "Value": str(n)}]))
        expected[f"def-{n}"] = {
            col: (value if field in blocks else None) for field, (col, value) in OPTIONAL_BLOCKS.items()
        }
    conn = store_and_connect(tmp_path, items)
    cols = [c for c, _ in OPTIONAL_BLOCKS.values()]
    rows = conn.execute(
        f"SELECT job_definition_name, {', '.join(cols)} FROM aws.sagemaker_model_quality_job_definition"
    ).fetchall()
    assert len(rows) == 8
    for name, *values in rows:
        got = {col: (None if v is None else json.loads(v)) for col, v in zip(cols, values, strict=True)}
        assert got == expected[name], name


def test_columns_types_and_values(tmp_path: Path) -> None:
    conn = store_and_connect(tmp_path, [item(describe("one", NetworkConfig=NETWORK), [{"Key": "team", "Value": "x"}])])
    described = conn.execute("DESCRIBE aws.sagemaker_model_quality_job_definition").fetchall()
    assert [(r[0], r[1]) for r in described] == [(c.name, c.duckdb_type) for c in MQ.columns]
    row = conn.execute(
        "SELECT _key, account_id, creation_time, role_arn, job_resources->>'$.ClusterConfig.InstanceType', "
        "network_config->'$.VpcConfig.Subnets'->>1 FROM aws.sagemaker_model_quality_job_definition"
    ).fetchone()
    assert row[0] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-quality-job-definition/one"
    assert row[1] == ACCOUNT
    assert row[2] == datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert row[3] == f"arn:aws:iam::{ACCOUNT}:role/monitor"
    assert row[4] == "ml.m5.xlarge"
    assert row[5] == "subnet-2"


def test_unknown_fields_kept_verbatim(tmp_path: Path) -> None:
    body = describe("future")
    body["JobResources"] = {
        "ClusterConfig": {
            "InstanceCount": 1,
            "InstanceType": "ml.m5.large",
            "VolumeSizeInGB": 1,
            "FutureAccelerator": {"Kind": "x", "N": 2},
        }
    }
    body["BrandNewTopLevelField"] = {"Nested": [1, 2, {"k": "v"}]}
    conn = store_and_connect(tmp_path, [item(body, [])])
    (resources,) = conn.execute("SELECT job_resources FROM aws.sagemaker_model_quality_job_definition").fetchone()
    assert json.loads(resources)["ClusterConfig"]["FutureAccelerator"] == {"Kind": "x", "N": 2}
    raw = raw_table(AccountSnapshot(ACCOUNT, COLLECTED, (REGION,), items=[item(body, [])]))
    assert json.loads(raw.column("describe_json")[0].as_py()) == body


def test_batch_transform_input(tmp_path: Path) -> None:
    conn = store_and_connect(tmp_path, [item(describe("batch", ModelQualityJobInput=BATCH_INPUT), None)])
    (job_input, tags) = conn.execute(
        "SELECT model_quality_job_input, tags FROM aws.sagemaker_model_quality_job_definition"
    ).fetchone()
    assert json.loads(job_input) == BATCH_INPUT
    assert tags is None  # tags not collected is NULL, not an empty map


def test_tags_map_like_ddsql(tmp_path: Path) -> None:
    tricky = "a,b:c=d \"quoted\" 'single' ünï"
    tags = [
        {"Key": "team", "Value": "ml-platform"},
        {"Key": 'k,=:"', "Value": tricky},
        {"Key": "empty", "Value": ""},
    ]
    conn = store_and_connect(tmp_path, [item(describe("t1"), tags), item(describe("t2"), [])])
    rows = dict(
        conn.execute(
            "SELECT job_definition_name, tags['team'] FROM aws.sagemaker_model_quality_job_definition"
        ).fetchall()
    )
    assert rows == {"t1": "ml-platform", "t2": None}
    (value, empty, size) = conn.execute(
        "SELECT tags['k,=:\"'], tags['empty'], cardinality(tags) FROM aws.sagemaker_model_quality_job_definition "
        "WHERE job_definition_name = 't1'"
    ).fetchone()
    assert (value, empty, size) == (tricky, "", 3)


def test_raw_round_trip_and_unknown_field_merge() -> None:
    parsed = {"A": 1, "Nested": {"Known": datetime(2026, 1, 1, tzinfo=UTC)}, "List": [{"x": 1}]}
    raw = {"A": 1, "New": "n", "Nested": {"Known": 1767225600.0, "NewInner": [1]}, "List": [{"x": 1, "y": 2}]}
    merge_unknown_fields(parsed, raw)
    assert to_jsonable(parsed) == {
        "A": 1,
        "Nested": {"Known": "2026-01-01T00:00:00+00:00", "NewInner": [1]},
        "List": [{"x": 1, "y": 2}],
        "New": "n",
    }
    snap = AccountSnapshot(ACCOUNT, COLLECTED, (REGION,), items=[item(describe("rt"), [{"Key": "a", "Value": "b"}])])
    table = raw_table(snap)
    assert table.schema.equals(RAW_SCHEMA)
    rebuilt = snapshot_from_raw(table, ACCOUNT, COLLECTED)
    assert rebuilt.items[0].describe == snap.items[0].describe
    assert rebuilt.items[0].tags == [{"Key": "a", "Value": "b"}]


@pytest.mark.parametrize("bad_time", ["yesterday", "2026-13-45T00:00:00"])
def test_bad_timestamp_names_the_resource(bad_time: str) -> None:
    from sm_assets.core.normalize import NormalizeError

    snap = AccountSnapshot(ACCOUNT, COLLECTED, (REGION,), items=[item(describe("badtime", CreationTime=bad_time), [])])
    with pytest.raises(NormalizeError, match="badtime: CreationTime"):
        normalized_table(snap, MQ, "model_quality_job_definition")


def test_columnar_normalizer_matches_reference(tmp_path: Path) -> None:
    """The DuckDB path the assets use gives exactly what the row-wise reference gives."""
    from sm_assets.core.normalize import normalize_select_sql

    items = []
    for n, present in enumerate(itertools.product([False, True], repeat=len(OPTIONAL_BLOCKS))):
        blocks = {f: v for (f, (_, v)), on in zip(OPTIONAL_BLOCKS.items(), present, strict=True) if on}
        tags = [{"Key": 'k,=:"', "Value": "ü \"q\" 's'"}, {"Key": "team", "Value": ""}] if n % 2 else None
        items.append(item(describe(f"d{n}", **blocks), tags))
    items.append(item(describe("batch", ModelQualityJobInput=BATCH_INPUT, Future={"x": [1, 2.5, None, "é"]}), []))
    items.append(item(describe("nulls", NetworkConfig=None), []))  # an explicit JSON null is absent too
    snap = AccountSnapshot(ACCOUNT, COLLECTED, (REGION,), items=items)
    raw_path = tmp_path / "raw.parquet"
    lake.write_atomic(raw_table(snap), raw_path)
    reference = normalized_table(snap, MQ, "model_quality_job_definition")
    sql = normalize_select_sql(MQ, f"read_parquet('{raw_path}')")
    columnar = duckdb.connect().sql(sql).to_arrow_table().cast(MQ.arrow_schema())
    assert columnar.schema.equals(reference.schema)
    json_cols = {c.name for c in MQ.columns if c.duckdb_type == "JSON"}
    for expected, got in zip(reference.to_pylist(), columnar.to_pylist(), strict=True):
        for name, value in expected.items():
            if name in json_cols and value is not None:
                assert json.loads(got[name]) == json.loads(value), name
            else:
                assert got[name] == value, name


# Datadog DDSQL's column lists (shared/reference/ddsql-sagemaker.md), copied as the ground truth: names,
# order and DDSQL types. aws.sagemaker_endpoint's tail after endpoint_status is the inferred part.
_JSON, _STR, _TS, _TAGS, _BOOL = "JSON", "VARCHAR", "TIMESTAMP WITH TIME ZONE", "MAP(VARCHAR, VARCHAR)", "BOOLEAN"


def _definition_columns(prefix: str) -> list[tuple[str, str]]:
    own = [
        (f"{prefix}_{part}", _JSON)
        for part in ("app_specification", "baseline_config", "job_input", "job_output_config")
    ]
    common = [("job_definition_arn", _STR), ("job_definition_name", _STR), ("job_resources", _JSON)]
    rest = [("network_config", _JSON), ("role_arn", _STR), ("stopping_condition", _JSON), ("tags", _TAGS)]
    head = [("_key", _STR), ("account_id", _STR), ("creation_time", _TS)]
    middle = [*own, *common] if prefix == "data_quality" else [*common, *own]
    return [*head, *middle, *rest]


DDSQL_COLUMNS: dict[str, list[tuple[str, str]]] = {
    **{
        f"sagemaker_{p}_job_definition": _definition_columns(p)
        for p in ("data_quality", "model_quality", "model_bias", "model_explainability")
    },
    "sagemaker_monitoring_schedule": [
        ("_key", _STR),
        ("account_id", _STR),
        ("creation_time", _TS),
        ("endpoint_name", _STR),
        ("failure_reason", _STR),
        ("last_modified_time", _TS),
        ("last_monitoring_execution_summary", _JSON),
        ("monitoring_schedule_arn", _STR),
        ("monitoring_schedule_config", _JSON),
        ("monitoring_schedule_name", _STR),
        ("monitoring_schedule_status", _STR),
        ("monitoring_type", _STR),
        ("tags", _TAGS),
    ],
    "sagemaker_endpoint": [
        ("_key", _STR),
        ("account_id", _STR),
        ("async_inference_config", _JSON),
        ("creation_time", _TS),
        ("data_capture_config", _JSON),
        ("endpoint_arn", _STR),
        ("endpoint_config_name", _STR),
        ("endpoint_name", _STR),
        ("endpoint_status", _STR),
        # inferred (see docs/tables.md)
        ("explainer_config", _JSON),
        ("failure_reason", _STR),
        ("last_deployment_config", _JSON),
        ("last_modified_time", _TS),
        ("pending_deployment_summary", _JSON),
        ("production_variants", _JSON),
        ("shadow_production_variants", _JSON),
        ("tags", _TAGS),
    ],
    "sagemaker_endpoint_config": [
        ("_key", _STR),
        ("account_id", _STR),
        ("async_inference_config", _JSON),
        ("creation_time", _TS),
        ("data_capture_config", _JSON),
        ("enable_network_isolation", _BOOL),
        ("endpoint_config_arn", _STR),
        ("endpoint_config_name", _STR),
        ("execution_role_arn", _STR),
        ("explainer_config", _JSON),
        ("kms_key_id", _STR),
        ("production_variants", _JSON),
        ("shadow_production_variants", _JSON),
        ("tags", _TAGS),
        ("vpc_config", _JSON),
    ],
}


def test_every_table_is_ddsql_exact_and_documented() -> None:
    from pathlib import Path

    from sm_assets.core.specs import RESOURCE_SPECS

    tables = {spec.table.name: [(c.name, c.duckdb_type) for c in spec.table.columns] for spec in RESOURCE_SPECS}
    assert tables == DDSQL_COLUMNS
    doc = (Path(__file__).resolve().parents[2] / "docs" / "tables.md").read_text()
    for name, columns in tables.items():
        section = doc.split(f"### `aws.{name}`", 1)[1].split("\n### ", 1)[0]
        documented = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
        assert [(n.strip().strip("`"), t.strip()) for n, t in documented] == columns, name

"""Property tests: DescribeModelQualityJobDefinition payloads generated from botocore's own SageMaker model.

The strategy is built by walking the operation's output shape, so a member AWS adds to the model is
generated as soon as botocore ships it. On top of the modelled members, unknown fields (what AWS sends
before botocore knows about it, kept by `merge_unknown_fields`) are sprinkled at random levels.

Each example is stored as an account snapshot in a fresh lake, built into the day's tables as the daily
asset builds them, and read back through the DuckDB file's views: every JSON column, the tags map and the
raw describe_json must come back exactly as generated.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sm_assets.core import lake
from sm_assets.core.collection import AccountSnapshot, RawItem
from sm_assets.core.normalize import normalize_item, normalize_select_sql, normalized_table, snapshot_from_raw
from sm_assets.core.payloads import to_jsonable
from sm_assets.core.schemas import RAW_SCHEMA
from sm_assets.core.snapshots import raw_table, staged_snapshots
from sm_assets.core.specs import MODEL_QUALITY_JOB_DEFINITION_SPEC
from sm_assets_tests.helpers import lake_with, read_views

MQ = MODEL_QUALITY_JOB_DEFINITION_SPEC.table

RESOURCE_TYPE = "model_quality_job_definition"
OPERATION = "DescribeModelQualityJobDefinition"
COLLECTED = datetime(2026, 11, 20, 6, 30, 15, 123456, tzinfo=UTC)
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1")

MAX_TEXT = 300  # strings are capped here for speed; shapes with a shorter max get their exact max
MAX_LIST = 4  # list/map sizes are capped here (or at the shape's max when lower)
MAX_TAGS = 50  # AWS allows 50 user tags per resource

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@cache
def output_shape() -> Any:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model(OPERATION).output_shape


# ---------------------------------------------------------------------------------------------
# Strategies

# Any valid UTF-8 text (no lone surrogates: they cannot be sent as UTF-8 and Parquet strings are UTF-8).
CHARS = st.characters(codec="utf-8")
# Characters that break naive "k=v,k2=v2" / "k:v" / quoting encodings.
AWKWARD = ",:=\"'\\ []{}\n\t\x00ü日本🙂"


def text(min_size: int = 0, max_size: int = MAX_TEXT) -> st.SearchStrategy[str]:
    base = st.text(CHARS, min_size=min_size, max_size=max_size)
    awkward = st.text(st.sampled_from(AWKWARD) | CHARS, min_size=min_size, max_size=min(max_size, 20))
    return base | awkward


def json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON (what an unknown field may hold), numbers as Python's json module parses them."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | text(max_size=40)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text(max_size=12), inner, max_size=3),
        max_leaves=8,
    )


def string_strategy(shape: Any) -> st.SearchStrategy[str]:
    if shape.enum:
        return st.sampled_from(list(shape.enum))
    lo = int(shape.metadata.get("min", 0))
    hi = shape.metadata.get("max")
    if hi is None:
        return text(lo, MAX_TEXT)
    hi = int(hi)
    if hi <= MAX_TEXT:
        # Short-max shapes: make sure the exact maximum length is generated, not just reachable.
        return text(lo, hi) | st.text(CHARS, min_size=hi, max_size=hi)
    return text(lo, MAX_TEXT)


def timestamp_strategy() -> st.SearchStrategy[str]:
    # The collector stores botocore datetimes as `to_jsonable(dt)`, i.e. `dt.astimezone(UTC).isoformat()`.
    return st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)).map(
        to_jsonable
    )


def with_unknown_fields(members: st.SearchStrategy[dict[str, Any]], known: set[str]) -> st.SearchStrategy[dict]:
    """Add 0-2 keys botocore's model does not know, with arbitrary JSON values."""
    unknown_key = text(1, 30).filter(lambda k: k not in known)
    extra = st.dictionaries(unknown_key, json_values(), max_size=2)

    def merge(parts: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
        body, more = parts
        return {**body, **more}

    return st.tuples(members, st.booleans().flatmap(lambda on: extra if on else st.just({}))).map(merge)


_cache: dict[str, st.SearchStrategy[Any]] = {}


def strategy_for(shape: Any) -> st.SearchStrategy[Any]:
    """A strategy for values of a botocore shape, as the collector stores them (JSON values)."""
    key = f"{shape.type_name}:{shape.name}"
    if key in _cache:
        return _cache[key]
    # Deferred first, so a recursive shape refers to itself instead of recursing forever.
    _cache[key] = st.deferred(lambda: built)
    built = _build(shape)
    _cache[key] = built
    return built


def _build(shape: Any) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if kind == "structure":
        required = set(shape.required_members)
        req = {n: strategy_for(m) for n, m in shape.members.items() if n in required}
        opt = {n: strategy_for(m) for n, m in shape.members.items() if n not in required}
        return with_unknown_fields(st.fixed_dictionaries(req, optional=opt), set(shape.members))
    if kind == "list":
        hi = min(int(shape.metadata.get("max", MAX_LIST)), MAX_LIST)
        return st.lists(strategy_for(shape.member), min_size=0, max_size=hi)  # empty included on purpose
    if kind == "map":
        hi = min(int(shape.metadata.get("max", MAX_LIST)), MAX_LIST)
        return st.dictionaries(strategy_for(shape.key), strategy_for(shape.value), max_size=hi)
    if kind == "string":
        return string_strategy(shape)
    if kind in ("integer", "long"):
        lo = shape.metadata.get("min", -(2**31) if kind == "integer" else -(2**63))
        hi = shape.metadata.get("max", 2**31 - 1 if kind == "integer" else 2**63 - 1)
        return st.integers(min_value=int(lo), max_value=int(hi))
    if kind in ("float", "double"):
        # AWS JSON carries finite numbers for these members (NaN/Infinity are not valid JSON).
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return timestamp_strategy()
    if kind == "blob":
        return st.binary(max_size=32).map(to_jsonable)
    raise AssertionError(f"shape type {kind} of {shape.name} has no strategy")


tag_key = text(1, 128)
tag_value = st.just("") | text(0, 256)
tag = st.fixed_dictionaries({"Key": tag_key, "Value": tag_value})
tags_strategy = st.one_of(
    st.lists(tag, max_size=MAX_TAGS, unique_by=lambda t: t["Key"]),
    st.lists(tag, min_size=MAX_TAGS - 5, max_size=MAX_TAGS, unique_by=lambda t: t["Key"]),  # near the limit
    st.none(),  # tags not collected (ListTags denied): NULL, never an empty map
)


@st.composite
def items(draw: st.DrawFn) -> tuple[str, list[tuple[dict[str, Any], list[dict[str, str]] | None]]]:
    """An account id and 1-3 resources: (describe payload, tags or None when not collected)."""
    account = draw(st.from_regex(r"\A[0-9]{12}\Z"))
    region = draw(st.sampled_from(REGIONS))
    payload_strategy = strategy_for(output_shape())
    out = []
    names: set[str] = set()
    for _ in range(draw(st.integers(1, 3))):
        body = draw(payload_strategy)
        name = body["JobDefinitionName"]
        if name in names:
            continue
        names.add(name)
        partition = {"cn-": "aws-cn", "us-gov-": "aws-us-gov"}.get(region[: region.index("-") + 1], "aws")
        body["JobDefinitionArn"] = f"arn:{partition}:sagemaker:{region}:{account}:model-quality-job-definition/{name}"
        out.append((region, body, draw(tags_strategy)))
    return account, out


def raw_items(generated: list[tuple[str, dict[str, Any], Any]]) -> list[RawItem]:
    return [
        RawItem(RESOURCE_TYPE, region, body["JobDefinitionArn"], body["JobDefinitionName"], body, tags)
        for region, body, tags in generated
    ]


# ---------------------------------------------------------------------------------------------
# Properties

JSON_COLUMNS = [(c.name, c.source_fields[0]) for c in MQ.columns if c.duckdb_type == "JSON"]


def check_shape(value: Any, shape: Any, path: str = "$") -> None:
    """The generator is faithful: required members present, enums/ranges respected, types right."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), path
        missing = [m for m in shape.required_members if m not in value]
        assert not missing, f"{path} lacks {missing}"
        for name, member in shape.members.items():
            if name in value:
                check_shape(value[name], member, f"{path}.{name}")
    elif kind == "list":
        assert isinstance(value, list) and len(value) <= int(shape.metadata.get("max", MAX_LIST)), path
        for n, v in enumerate(value):
            check_shape(v, shape.member, f"{path}[{n}]")
    elif kind == "map":
        assert isinstance(value, dict), path
    elif kind == "string":
        assert isinstance(value, str), path
        if shape.enum:
            assert value in shape.enum, path
        assert int(shape.metadata.get("min", 0)) <= len(value) <= int(shape.metadata.get("max", MAX_TEXT)), path
    elif kind == "timestamp":
        assert datetime.fromisoformat(value).utcoffset().total_seconds() == 0, path
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), path
    elif kind == "boolean":
        assert isinstance(value, bool), path


@PROPERTY_SETTINGS
@given(generated=items())
def test_normalize_never_crashes(generated: tuple[str, list]) -> None:
    account, resources = generated
    for _, body, _ in resources:
        check_shape(body, output_shape())  # the generator itself follows botocore's model
    snap = AccountSnapshot(account, COLLECTED, REGIONS, items=raw_items(resources))
    for item in snap.items:
        row = normalize_item(item, MQ, account, snap.snapshot_date, snap.collected_at)
        assert set(row) == {c.name for c in MQ.lake_columns}
    table = normalized_table(snap, MQ, RESOURCE_TYPE)
    assert table.num_rows == len(resources)
    assert table.schema.equals(MQ.arrow_schema())
    raw = raw_table(snap)
    assert raw.schema.equals(RAW_SCHEMA)


@settings(parent=PROPERTY_SETTINGS, max_examples=60)  # each example builds a lake: fewer, same generator
@given(generated=items())
def test_lake_round_trip_through_duckdb_views(generated: tuple[str, list]) -> None:
    account, resources = generated
    snap = AccountSnapshot(account, COLLECTED, REGIONS, items=raw_items(resources))
    expected = {body["JobDefinitionArn"]: (region, body, tags) for region, body, tags in resources}

    # pytest's tmp_path is shared by every example of one test function: one fresh lake per example.
    with tempfile.TemporaryDirectory(prefix="sm-assets-prop-") as tmp:
        # The lake's settings name the example's region: one configuration collects one partition.
        settings_ = lake_with(Path(tmp), [snap], regions=sorted({region for region, _, _ in resources}))
        day = snap.snapshot_date
        normalized = normalized_table(snap, MQ, RESOURCE_TYPE)
        (raw_path,) = staged_snapshots(settings_.lake_dir, day)[account].raw_paths
        with read_views(settings_) as conn:
            cols = ["_key", "account_id", "job_definition_arn", "job_definition_name", "role_arn"]
            cols += ["creation_time", "tags"] + [c for c, _ in JSON_COLUMNS]
            rows = conn.execute(f"SELECT {', '.join(cols)} FROM aws.{MQ.name}").fetchall()
            assert sorted(r[0] for r in rows) == sorted(expected)
            for values in rows:
                row = dict(zip(cols, values, strict=True))
                region, body, tags = expected[row["_key"]]
                assert row["account_id"] == account
                assert row["job_definition_arn"] == body["JobDefinitionArn"]
                assert row["job_definition_name"] == body["JobDefinitionName"]
                assert row["role_arn"] == body["RoleArn"]
                assert row["creation_time"] == datetime.fromisoformat(body["CreationTime"])
                for column, source in JSON_COLUMNS:
                    got = None if row[column] is None else json.loads(row[column])
                    assert got == body.get(source), column
                if tags is None:
                    assert row["tags"] is None  # not collected: NULL, not an empty map
                else:
                    assert row["tags"] == {t["Key"]: t["Value"] for t in tags}
                    # `tags[k]` lookups with every (awkward) key, bound as parameters.
                    lookups = conn.execute(
                        f"SELECT k.key, tags[k.key] FROM aws.{MQ.name}, (SELECT unnest($keys) AS key) AS k "
                        "WHERE _key = $arn",
                        {"keys": [t["Key"] for t in tags], "arn": row["_key"]},
                    ).fetchall()
                    assert sorted(lookups) == sorted((t["Key"], t["Value"]) for t in tags)

            history = conn.execute(
                f"SELECT _key, region, as_of_date, snapshot_date, collected_at FROM aws.{MQ.name}_history"
            )
            assert sorted(history.fetchall()) == sorted(
                (arn, r, day, day, COLLECTED) for arn, (r, _, _) in expected.items()
            )

            raw_rows = conn.execute(
                f"SELECT arn, name, region, account_id, describe_json, tags_json FROM aws.raw_sagemaker_{RESOURCE_TYPE}"
            ).fetchall()
            assert sorted(r[0] for r in raw_rows) == sorted(expected)
            for arn, name, region, acct, describe_json, tags_json in raw_rows:
                exp_region, body, tags = expected[arn]
                assert (name, region, acct) == (body["JobDefinitionName"], exp_region, account)
                assert json.loads(describe_json) == body  # unknown fields included
                assert (None if tags_json is None else json.loads(tags_json)) == tags

            # The daily tables normalize with the columnar DuckDB path: same rows as the per-item mapping above.
            columnar = (
                conn.sql(normalize_select_sql(MQ, f"read_parquet('{raw_path}')"))
                .to_arrow_table()
                .cast(MQ.arrow_schema())
            )
            assert semantic_rows(columnar) == semantic_rows(normalized)

        # And the stored raw file rebuilds the same items.
        rebuilt = snapshot_from_raw(lake.read_file(raw_path, RAW_SCHEMA), account, COLLECTED)
        assert [(i.arn, i.describe, i.tags) for i in rebuilt.items] == [(i.arn, i.describe, i.tags) for i in snap.items]


def semantic_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows by _key with JSON text parsed (escape spelling may differ) and tags as a dict."""
    json_columns = {c for c, _ in JSON_COLUMNS}
    rows = []
    for row in table.to_pylist():
        for column in json_columns:
            row[column] = None if row[column] is None else json.loads(row[column])
        row["tags"] = None if row["tags"] is None else dict(row["tags"])
        rows.append(row)
    return sorted(rows, key=lambda r: r["_key"])


def test_model_shape_still_has_the_normalized_blocks() -> None:
    """Every source field the table maps exists in botocore's model (else the strategy would not cover it)."""
    members = set(output_shape().members)
    missing = [f for c in MQ.columns for f in c.source_fields if f != "Tags" and f not in members]
    assert not missing

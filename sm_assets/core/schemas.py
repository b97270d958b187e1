"""Table contracts: the raw snapshot and status files, and the normalized DDSQL tables built from them.

A normalized table's columns are DDSQL's: ``_key`` then the rest alphabetically, each named after the AWS
field it comes from (`ddsql_table`). Every file also carries ``snapshot_date``, ``collected_at`` and
``region`` (`LAKE_KEY_COLUMNS`), so readers never depend on path parsing for values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

# The one DuckDB <-> Arrow type table: the type a view exposes -> the type its Parquet files store.
# JSON is stored as text and cast by the views, so DuckDB's own mapping (which this table agrees with
# everywhere else: sm_assets_tests/core/test_sql_types.py) would not do.
ARROW_TYPE_OF_DUCKDB: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "DATE": pa.date32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    "MAP(VARCHAR, VARCHAR)": pa.map_(pa.string(), pa.string()),
    "VARCHAR[]": pa.list_(pa.string()),
}
# Back from a stored type; text reads back as VARCHAR (a JSON column's view type comes from its Column).
DUCKDB_TYPE_OF_ARROW: dict[pa.DataType, str] = {arrow: name for name, arrow in reversed(ARROW_TYPE_OF_DUCKDB.items())}


def arrow_type(duckdb_type: str) -> pa.DataType:
    return ARROW_TYPE_OF_DUCKDB[duckdb_type]


def duckdb_type(arrow: pa.DataType) -> str:
    return DUCKDB_TYPE_OF_ARROW[arrow]


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str  # the type the DuckDB view exposes
    arrow_type: pa.DataType  # the type stored in Parquet
    description: str
    source_fields: tuple[str, ...] = ()  # raw describe fields it is derived from (column lineage)
    required: bool = False  # never NULL in a valid row


@dataclass(frozen=True)
class TableSpec:
    """A normalized table: DDSQL-facing columns, in order, plus the lake bookkeeping columns."""

    name: str  # dataset directory and DuckDB view name in schema `aws`
    columns: tuple[Column, ...]
    description: str

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def lake_columns(self) -> tuple[Column, ...]:
        return LAKE_KEY_COLUMNS + self.columns

    def arrow_schema(self) -> pa.Schema:
        return arrow_schema(self.lake_columns)


def arrow_schema(columns: Iterable[Column]) -> pa.Schema:
    """The Parquet schema of these columns, in order (all fields nullable)."""
    return pa.schema([pa.field(c.name, c.arrow_type) for c in columns])


TS = arrow_type("TIMESTAMP WITH TIME ZONE")
STR = arrow_type("VARCHAR")

LAKE_KEY_COLUMNS: tuple[Column, ...] = (
    Column("snapshot_date", "DATE", pa.date32(), "UTC date the snapshot was collected", required=True),
    Column("collected_at", "TIMESTAMP WITH TIME ZONE", TS, "When the account was collected", required=True),
    Column("region", "VARCHAR", STR, "AWS region of the resource", required=True),
)


def column_name(field: str) -> str:
    """DDSQL's column name for an AWS field: snake_case (JobDefinitionArn -> job_definition_arn)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", field).lower()


@dataclass(frozen=True)
class Field:
    """One field of a describe payload that becomes a column named after it."""

    name: str  # the AWS field, e.g. "DataCaptureConfig" ("Tags": the ListTags result)
    duckdb_type: str = "JSON"
    description: str = ""
    required: bool = False


def ddsql_table(name: str, description: str, arn_field: str, fields: tuple[Field, ...]) -> TableSpec:
    """A DDSQL table: ``_key`` (the ARN), then ``account_id`` and every field's column in alphabetical
    order, as Datadog lists them."""
    columns = [
        Column(
            column_name(f.name),
            f.duckdb_type,
            arrow_type(f.duckdb_type),
            f.description or f"{f.name} from the describe output",
            (f.name,),
            f.required,
        )
        for f in fields
    ]
    columns.append(Column("account_id", "VARCHAR", STR, "AWS account that owns the resource", (arn_field,), True))
    key = Column("_key", "VARCHAR", STR, f"Row key: {arn_field} (globally unique, stable)", (arn_field,), True)
    return TableSpec(name, (key, *sorted(columns, key=lambda c: c.name)), description)


TAGS_FIELD = Field("Tags", "MAP(VARCHAR, VARCHAR)", "Resource tags from ListTags (every page); NULL when not read")


# Raw describe output: one row per resource, the describe (or list-summary) payload verbatim as JSON text.
RAW_SCHEMA = pa.schema(
    [
        pa.field("snapshot_date", pa.date32()),
        pa.field("collected_at", TS),
        pa.field("account_id", STR),
        pa.field("region", STR),
        pa.field("resource_type", STR),
        pa.field("arn", STR),
        pa.field("name", STR),
        pa.field("describe_json", STR),  # verbatim payload, timestamps as ISO-8601
        pa.field("tags_json", STR),  # ListTags result verbatim ([{"Key","Value"}]), NULL if not collected
    ]
)

# One row per (account, region, resource_type) and snapshot: did collection succeed?
COLLECTION_STATUS_SCHEMA = pa.schema(
    [
        pa.field("snapshot_date", pa.date32()),
        pa.field("collected_at", TS),
        pa.field("account_id", STR),
        pa.field("region", STR),
        pa.field("resource_type", STR),
        pa.field("status", STR),  # ok | access_denied | error
        pa.field("error_code", STR),
        pa.field("message", STR),
        pa.field("item_count", pa.int64()),
        pa.field("api_calls", pa.int64()),
    ]
)

COLLECTION_STATUS_DATASET = "collection_status"


def raw_dataset_name(resource_type: str) -> str:
    return f"raw_sagemaker_{resource_type}"

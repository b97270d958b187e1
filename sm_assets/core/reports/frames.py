"""Report tables as pandas and Arrow: exact dtypes and schemas, and the small conversions between them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sm_assets.core.reports.schemas import SEVERITIES
from sm_assets.core.schemas import Column, arrow_schema


def empty_frame(columns: Sequence[Column]) -> pd.DataFrame:
    """A zero-row DataFrame with the report dtypes."""
    return conform(pd.DataFrame({c.name: [] for c in columns}), columns)


def empty_table(columns: Sequence[Column]) -> pa.Table:
    """A zero-row Arrow table with the report schema."""
    return arrow_schema(columns).empty_table()


def to_arrow(df: pd.DataFrame | pa.Table, columns: Sequence[Column]) -> pa.Table:
    """The table as Arrow with the exact report schema (column order, DATE, BIGINT); Arrow input is
    selected and cast without a copy through pandas."""
    names = [c.name for c in columns]
    if isinstance(df, pa.Table):
        return df.select(names).cast(arrow_schema(columns))
    return pa.Table.from_pandas(df[names], schema=arrow_schema(columns), preserve_index=False)


def findings_by_severity(findings: pa.Table | pd.DataFrame) -> dict[str, int]:
    """Number of findings per severity present, most frequent first (like ``value_counts``)."""
    if isinstance(findings, pd.DataFrame):
        return {str(k): int(v) for k, v in findings["severity"].value_counts().items()}
    counts = pc.value_counts(findings.column("severity")).to_pylist()  # order of first appearance
    ordered = sorted(counts, key=lambda c: -c["counts"])  # stable: ties keep that order
    return {c["values"]: int(c["counts"]) for c in ordered}


def used_params(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    # DuckDB rejects named parameters a statement does not use
    return {k: v for k, v in params.items() if f"${k}" in sql}


def fetch_arrow(
    conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], columns: Sequence[Column]
) -> pa.Table:
    relation = conn.sql(sql, params=used_params(sql, params))
    # duckdb >= 1.4 / 2.x name; older releases only have .arrow()
    table = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
    return table.select([c.name for c in columns]).cast(arrow_schema(columns))


def fetch_frame(
    conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], columns: Sequence[Column]
) -> pd.DataFrame:
    return arrow_to_pandas(fetch_arrow(conn, sql, params, columns))


GROUP_KEYS = ["report_date", "account_id", "region", "finding", "severity", "monitor_type"]


def finding_groups(findings: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Number of findings ``n`` per (report_date, account_id, region, finding, severity, monitor_type), NULL
    keys kept."""
    if isinstance(findings, pd.DataFrame):
        if findings.empty:
            return pd.DataFrame({**{k: pd.Series(dtype=object) for k in GROUP_KEYS}, "n": pd.Series(dtype="int64")})
        return findings.groupby(GROUP_KEYS, dropna=False, sort=False).size().rename("n").reset_index()
    grouped = findings.select(GROUP_KEYS).group_by(GROUP_KEYS).aggregate([([], "count_all")])
    return grouped.rename_columns([*GROUP_KEYS, "n"]).to_pandas(date_as_object=True)


def rows(conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return conn.execute(sql, used_params(sql, params)).fetchall()


def conform(df: pd.DataFrame, columns: Sequence[Column]) -> pd.DataFrame:
    """Exact column order and report dtypes, whatever dtypes pandas inferred on the way."""
    data = {}
    for c in columns:
        values = df[c.name] if c.name in df else pd.Series([None] * len(df), dtype=object)
        if c.duckdb_type == "DATE":
            values = values.map(lambda v: None if isna(v) else as_date(v)).astype(object)
        elif c.duckdb_type == "BIGINT":
            values = values.astype("Int64")
        elif c.duckdb_type == "DOUBLE":
            values = values.astype("Float64")
        else:
            values = values.astype(object).where(values.notna(), None)
        data[c.name] = pa.array(values, type=c.arrow_type, from_pandas=True)
    return arrow_to_pandas(pa.table(data, schema=arrow_schema(columns)))


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    mapper = {pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype()}
    return table.to_pandas(types_mapper=mapper.get, date_as_object=True)


def as_date(value: Any) -> date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def isna(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def row_dict(row: Mapping[str, Any] | pd.Series) -> dict[str, Any]:
    items = row.items()
    return {k: (None if isna(v) else v) for k, v in items}


def findings_total(row: Mapping[str, Any]) -> int:
    return sum(int(row[f"findings_{level}"]) for level in SEVERITIES)


def check_regions(regions: Sequence[str]) -> list[str]:
    if isinstance(regions, str):
        raise TypeError("regions must be a sequence of region names, not a single string")
    out = list(dict.fromkeys(regions))  # dedupe, keep order
    if not out:
        raise ValueError("at least one configured region is required")
    return out

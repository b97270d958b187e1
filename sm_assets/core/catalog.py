"""The DuckDB file: views over the lake's daily files, defined once and never locked by a refresh.

The file holds only views and macros (and a version row). A refresh writes lake files; the views find new days by
themselves (hive-partitioned globs, read at query time), so nothing writes this file on a refresh and a
reader holding it open, read-only or not, never makes a refresh wait. When the view definitions change
(a new sm-assets version, another lake location) `ensure_catalog` builds a new file next to it and renames
it into place: readers that have the old file open keep reading it, new connections get the new one.

Views (schema ``aws``, ``reports``):

* ``aws.<table>``: the latest day's table (DDSQL columns exactly); ``aws.<table>_history``: every day,
  with ``as_of_date``, ``snapshot_date``, ``collected_at`` and ``region`` first;
* ``aws.raw_sagemaker_<type>`` / ``_history``: the raw describe output the tables were built from;
* ``aws.collection_status`` / ``_history``;
* ``reports.<table>``: every report date;
* the macros of DDSQL's tag idioms (``akeys``, ``avals``, ``hstore``: `ddsql`), in ``main``.

Each view takes its columns from the first file of its glob (the zero-row schema placeholder under
1970-01-01) and matches the other files by name. Not ``union_by_name``: that opens every file of the glob
on every query, so reads would grow with the history; `lake_upgrade` instead gives older files the
current columns when the views change.

DuckDB names the catalog after the file (``sm_assets``), so the schemas are ``aws`` and ``reports``.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa

from sm_assets.core import ddsql, duck, layout
from sm_assets.core.daily_tables import daily_table_schemas, ensure_placeholders
from sm_assets.core.lake_upgrade import upgrade_lake
from sm_assets.core.layout import LakeDir
from sm_assets.core.schemas import TableSpec, duckdb_type
from sm_assets.core.specs import RESOURCE_SPECS

CATALOG_VERSION = 2  # bump when the view SQL changes in a way the hash below would not see
_VERSION_TABLE = "main.sm_assets_catalog"


def _column_sql(name: str, view_type: str) -> str:
    q = duck.sql_identifier(name)
    if view_type == "JSON":
        return f"CAST({q} AS JSON) AS {q}"
    if view_type == "MAP(VARCHAR, VARCHAR)":
        return f"{ddsql.sorted_tags(q)} AS {q}"
    return q


def _columns_sql(columns: Iterable[tuple[str, str]]) -> str:
    """Column expressions with the view's types: JSON columns are stored as text and exposed as JSON; tag maps
    in key order, so that equal tag sets compare equal (DDSQL's `=` on tags)."""
    return ", ".join(_column_sql(n, t) for n, t in columns)


def table_select(table: TableSpec, source: str) -> str:
    """The DDSQL-facing columns of a normalized table, in order and with their types, from `source`."""
    return f"SELECT {_columns_sql((c.name, c.duckdb_type) for c in table.columns)} FROM {source}"


def _daily_source(lake_dir: LakeDir, table: str) -> str:
    glob = duck.sql_string(layout.daily_glob(lake_dir, table))
    return f"read_parquet({glob}, hive_partitioning = true, hive_types = {{'as_of_date': DATE}})"


def _latest_day(lake_dir: LakeDir, table: str) -> str:
    # From the file names alone (one listing): the scan then opens only that day's file.
    glob = duck.sql_string(layout.daily_glob(lake_dir, table))
    return (
        "(SELECT max(CAST(regexp_extract(file, 'as_of_date=(\\d{4}-\\d{2}-\\d{2})', 1) AS DATE)) "
        f"FROM glob({glob}))"
    )


def lake_columns(table: str) -> list[tuple[str, str]]:
    """(name, DuckDB type) of what a daily table's files hold, in order."""
    specs = {spec.table.name: spec.table for spec in RESOURCE_SPECS}
    if table in specs:
        return [(c.name, c.duckdb_type) for c in specs[table].lake_columns]
    return [(f.name, duckdb_type(f.type)) for f in daily_table_schemas()[table]]


def lake_columns_sql(table: str) -> str:
    """The columns of a daily table's files with the views' types (JSON columns cast from text)."""
    return _columns_sql(lake_columns(table))


def view_statements(lake_dir: LakeDir, report_tables: dict[str, list[tuple[str, str]]]) -> list[str]:
    """Every statement of the catalog, in order (a pure function of the lake location and the code)."""
    statements = ["CREATE SCHEMA aws", "CREATE SCHEMA reports", *ddsql.MACROS]
    tables = {spec.table.name: spec.table for spec in RESOURCE_SPECS}
    for name in daily_table_schemas():
        lake_cols = lake_columns(name)
        latest_cols = [(c.name, c.duckdb_type) for c in tables[name].columns] if name in tables else lake_cols
        history_cols = [("as_of_date", "DATE"), *lake_cols]
        source = _daily_source(lake_dir, name)
        statements.append(f"CREATE VIEW aws.{name}_history AS SELECT {_columns_sql(history_cols)} FROM {source}")
        latest = ", ".join(duck.sql_identifier(n) for n, _ in latest_cols)
        statements.append(
            f"CREATE VIEW aws.{name} AS SELECT {latest} FROM aws.{name}_history "
            f"WHERE as_of_date = {_latest_day(lake_dir, name)}"
        )
    for name, columns in report_tables.items():
        glob = duck.sql_string(layout.report_glob(lake_dir, name))
        statements.append(
            f"CREATE VIEW reports.{name} AS SELECT {_columns_sql(columns)} "
            f"FROM read_parquet({glob}, hive_partitioning = true, hive_types = {{'report_date': DATE}})"
        )
    return statements


def catalog_fingerprint(statements: list[str]) -> str:
    text = "\n".join([f"version {CATALOG_VERSION}", duckdb.__version__, *statements])
    return hashlib.sha256(text.encode()).hexdigest()


def _stored_fingerprint(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        with duckdb.connect(str(path), read_only=True) as conn:
            row = conn.execute(f"SELECT value FROM {_VERSION_TABLE} WHERE key = 'fingerprint'").fetchone()
    except duckdb.Error:
        return None  # an old file, one without the table, or one somebody holds read-write: rebuild
    return row[0] if row else None


def ensure_catalog(
    duckdb_path: Path,
    lake_dir: LakeDir,
    report_tables: dict[str, list[tuple[str, str]]],
    placeholders: Iterable[tuple[str, pa.Schema]] = (),
) -> bool:
    """Make the DuckDB file hold the current views; True when it had to be (re)built.

    Never opens the live file for writing: a new file is built beside it and renamed over it."""
    ensure_placeholders(lake_dir)
    for path, schema in placeholders:
        _ensure_placeholder(path, schema)
    statements = view_statements(lake_dir, report_tables)
    fingerprint = catalog_fingerprint(statements)
    if _stored_fingerprint(duckdb_path) == fingerprint:
        return False
    upgrade_lake(lake_dir)  # the new views may name columns that older files lack
    duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = duckdb_path.with_name(f".{duckdb_path.name}.{uuid.uuid4().hex}.building")
    try:
        with duckdb.connect(str(tmp)) as conn:
            if layout.is_s3(lake_dir):
                duck.enable_s3(conn, lake_dir)  # CREATE VIEW lists the globs once
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"CREATE TABLE {_VERSION_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
            conn.execute(
                f"INSERT INTO {_VERSION_TABLE} VALUES ('fingerprint', $f), ('lake', $lake)",
                {"f": fingerprint, "lake": str(lake_dir)},
            )
            conn.execute("CHECKPOINT")
        wal = duckdb_path.with_name(duckdb_path.name + ".wal")
        wal.unlink(missing_ok=True)  # belongs to the file being replaced
        os.replace(tmp, duckdb_path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    return True


def _ensure_placeholder(path: layout.LakePath, schema: pa.Schema) -> None:
    from sm_assets.core import lake
    from sm_assets.core.errors import LakeError

    try:
        if lake.read_file(path, schema).schema == schema:
            return
    except LakeError:
        pass
    lake.write_atomic(schema.empty_table(), path)


def reader_setup(conn: duckdb.DuckDBPyConnection, lake_dir: LakeDir) -> duckdb.DuckDBPyConnection:
    """Make a connection to the DuckDB file able to read the lake's files (on S3: httpfs and a secret);
    timestamps show in UTC whatever the client's time zone."""
    if layout.is_s3(lake_dir):
        duck.enable_s3(conn, lake_dir)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def reader_connection(duckdb_path: Path, lake_dir: LakeDir) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the DuckDB file that can read the lake (S3 included)."""
    return reader_setup(duckdb.connect(str(duckdb_path), read_only=True), lake_dir)

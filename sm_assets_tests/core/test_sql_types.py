"""The one DuckDB <-> Arrow type table and the one SQL quoting helpers, checked against DuckDB itself."""

import duckdb
import pyarrow as pa
import pytest

from sm_assets.core.duck import sql_identifier, sql_list, sql_string
from sm_assets.core.reports.schemas import STORED_REPORT_TABLES
from sm_assets.core.schemas import ARROW_TYPE_OF_DUCKDB, arrow_type, duckdb_type
from sm_assets.core.specs import RESOURCE_SPECS

STORED_AS_IS = {t: a for t, a in ARROW_TYPE_OF_DUCKDB.items() if t != "JSON"}  # JSON is stored as text


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")  # what the readers set: TIMESTAMPTZ then exports with tz=UTC
    return conn


@pytest.mark.parametrize(("view_type", "stored"), STORED_AS_IS.items())
def test_type_table_agrees_with_duckdb_both_ways(conn: duckdb.DuckDBPyConnection, view_type: str, stored) -> None:
    exported = conn.sql(f"SELECT CAST(NULL AS {view_type}) AS x").to_arrow_table().schema.field("x").type
    assert exported == stored == arrow_type(view_type)
    files = pa.table({"x": pa.array([], type=stored)})  # noqa: F841 - DuckDB reads the local by name
    assert conn.execute("DESCRIBE SELECT x FROM files").fetchall()[0][1] == view_type == duckdb_type(stored)


def test_json_is_stored_as_text_and_read_back_as_varchar(conn: duckdb.DuckDBPyConnection) -> None:
    assert arrow_type("JSON") == pa.string()
    assert duckdb_type(pa.string()) == "VARCHAR"  # the view's CAST makes it JSON, not the stored type
    assert conn.execute("SELECT CAST('{\"a\": [1]}' AS JSON)->>'$.a[0]'").fetchone() == ("1",)


def test_every_declared_column_type_is_in_the_table() -> None:
    columns = [c for spec in RESOURCE_SPECS for c in spec.table.lake_columns]
    columns += [c for cols in STORED_REPORT_TABLES.values() for c in cols]
    for c in columns:
        assert c.arrow_type == arrow_type(c.duckdb_type), c.name


AWKWARD = ["plain", "it's", "''", 'say "hi"', "back\\slash", "new\nline", "ünïcode ☃", "", "a;DROP TABLE x;--"]


@pytest.mark.parametrize("text", AWKWARD)
def test_quoting_round_trips_through_duckdb(conn: duckdb.DuckDBPyConnection, text: str) -> None:
    assert conn.execute(f"SELECT {sql_string(text)}").fetchone() == (text,)
    assert conn.execute(f"SELECT {sql_list([text, 'x'])}").fetchone() == ([text, "x"],)
    if text:  # DuckDB refuses an empty identifier
        cursor = conn.execute(f"SELECT 1 AS {sql_identifier(text)}")
        assert [d[0] for d in cursor.description] == [text]
        assert (
            conn.execute(f"SELECT s.{sql_identifier(text)} FROM (SELECT 7 AS {sql_identifier(text)}) s").fetchone()[0]
            == 7
        )

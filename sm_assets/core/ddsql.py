"""Datadog DDSQL's tag idioms in DuckDB.

DDSQL documents its ``tags`` columns as an hstore: ``tags->'team'`` is the value as text (NULL when the key
is absent), ``akeys(tags)`` / ``avals(tags)`` the keys and the values as arrays, and whole tag sets compare
with ``=``. The views expose ``tags`` as ``MAP(VARCHAR, VARCHAR)`` (AWS tags have one value per key), and:

* ``akeys``, ``avals`` and ``hstore(keys, values)`` (Postgres hstore's array constructor) are macros stored
  in the DuckDB file (`MACROS`), so any DuckDB client that opens it has them;
* each view keeps a tag map's entries sorted by key (`sorted_tags`): equal tag sets are equal maps, so ``=``
  compares sets whatever order ListTags returned them in;
* ``= ANY(akeys(tags))``, ``unnest(akeys(tags))``, ``array_to_string(akeys(tags), ',')`` are DuckDB as is.

The one substitution: DuckDB's ``->`` is its JSON operator, and it binds looser than ``=``:
``tags->'team' = 'fraud'`` is a binder error and ``tags->'team'`` alone a JSON string with its quotes.
Write ``tags['team']`` instead (DuckDB's map lookup: the value, or NULL). `to_duckdb` makes exactly that
substitution, token by token (string literals and comments are left alone); ``sm-assets query`` applies
it, so DDSQL's form works there unchanged.
"""

from __future__ import annotations

import duckdb

TAG_COLUMN = "tags"

MACROS = (
    "CREATE MACRO akeys(tags) AS map_keys(tags)",
    "CREATE MACRO avals(tags) AS map_values(tags)",
    "CREATE MACRO hstore(keys, vals) AS map_from_entries(list_sort(map_entries(map(keys, vals))))",
)


def sorted_tags(expr: str) -> str:
    """`expr` (a tag map) with its entries in key order: the canonical form the views expose."""
    return f"map_from_entries(list_sort(map_entries({expr})))"


def _string_end(sql: str, start: int) -> int:
    """The index just past the SQL string literal opening at `start` ('' is an escaped quote)."""
    i = start + 1
    while i < len(sql):
        if sql[i] == "'":
            if sql[i + 1 : i + 2] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


def to_duckdb(sql: str) -> str:
    """DDSQL text with every ``tags->'key'`` made ``tags['key']``; nothing else changes."""
    try:
        tokens = duckdb.tokenize(sql)
    except duckdb.Error:
        return sql  # DuckDB will report the syntax error itself
    starts = [start for start, _ in tokens] + [len(sql)]
    edits: list[tuple[int, int, str]] = []
    for i in range(1, len(tokens) - 1):
        (name_at, name_kind), (arrow_at, arrow_kind), (key_at, key_kind) = tokens[i - 1 : i + 2]
        name = sql[name_at : starts[i]].rstrip()
        if (
            name_kind == duckdb.token_type.identifier
            and name.strip('"').lower() == TAG_COLUMN
            and arrow_kind == duckdb.token_type.keyword
            and sql[arrow_at : arrow_at + 2] == "->"
            and sql[arrow_at + 2 : arrow_at + 3] != ">"
            and key_kind == duckdb.token_type.string_const
            and sql[key_at] == "'"
        ):
            end = _string_end(sql, key_at)
            edits.append((name_at + len(name), end, f"[{sql[key_at:end]}]"))
    for start, end, text in reversed(edits):
        sql = sql[:start] + text + sql[end:]
    return sql

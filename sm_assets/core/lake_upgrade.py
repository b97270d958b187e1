"""Bring stored daily and report files to the current columns when the views change (a new sm-assets).

The views read the first file of each glob for their columns (the schema placeholder) and match every
other file by name, so a stored file may hold more columns but not fewer. DuckDB's `union_by_name` would
lift that rule but opens every file of the glob on every query, which makes each read grow with the
history kept; instead, a file written before a column existed is rewritten once, with that column NULL.
Report files of lakes before round 2 (``report_date=D.parquet``) move into their date's folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from sm_assets.core import lake, layout
from sm_assets.core.daily_tables import daily_table_schemas
from sm_assets.core.errors import LakeError
from sm_assets.core.layout import LakeDir, LakePath
from sm_assets.core.reports.schemas import STORED_REPORT_TABLES
from sm_assets.core.schemas import arrow_schema

_THREADS = 8  # footer reads are one small request each on S3


@dataclass
class Upgrade:
    files_checked: int = 0
    files_rewritten: int = 0
    reports_moved: int = 0
    unreadable: list[str] = field(default_factory=list)  # left as they are: the daily checks name them


def with_columns(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with every column of `schema` (missing ones NULL, present ones cast), then its others."""
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    extra = [name for name in table.column_names if name not in schema.names]
    return pa.table(
        [*columns, *(table.column(n) for n in extra)],
        schema=pa.schema([*schema, *(table.schema.field(n) for n in extra)]),
    )


def _conform(path: LakePath, schema: pa.Schema) -> bool | None:
    """Rewrite `path` when it lacks columns of `schema`: True when it did, None when it is unreadable."""
    try:
        if set(schema.names) <= set(lake.file_columns(path)):
            return False
        table = lake.read_table(path)
    except LakeError:
        return None
    lake.write_atomic(with_columns(table, schema), path)
    return True


def _stored_files(lake_dir: LakeDir) -> Iterator[tuple[LakePath, pa.Schema]]:
    for table, schema in daily_table_schemas().items():
        for entry in lake.list_folder(layout.daily_dir(lake_dir, table)):
            match = layout.AS_OF_DIR.match(entry.name)
            if entry.is_dir and match and match.group(1) != layout.PLACEHOLDER_DAY.isoformat():
                yield layout.join(entry.path, layout.DAILY_FILE), schema
    for table, columns in STORED_REPORT_TABLES.items():
        schema = arrow_schema(columns)
        for entry in lake.list_folder(layout.report_dir(lake_dir, table)):
            match = layout.REPORT_DIR.match(entry.name)
            if entry.is_dir and match and match.group(1) != layout.PLACEHOLDER_DAY.isoformat():
                yield layout.join(entry.path, layout.DAILY_FILE), schema


def _move_legacy_reports(lake_dir: LakeDir) -> int:
    """``report_date=D.parquet`` -> ``report_date=D/data.parquet`` (written first, then the old one removed,
    so a crash in between leaves a copy, never nothing)."""
    moved = 0
    for table in STORED_REPORT_TABLES:
        for entry in lake.list_folder(layout.report_dir(lake_dir, table)):
            match = layout.LEGACY_REPORT_FILE.match(entry.name)
            if entry.is_dir or match is None:
                continue
            day = date.fromisoformat(match.group(1))
            if day != layout.PLACEHOLDER_DAY:  # the current placeholder is already in its folder
                lake.write_bytes(lake.read_bytes(entry.path), layout.report_file(lake_dir, table, day))
                moved += 1
            lake.delete_files([entry.path])
    return moved


def upgrade_lake(lake_dir: LakeDir) -> Upgrade:
    """Move legacy report files and give every stored daily and report file the current columns."""
    result = Upgrade(reports_moved=_move_legacy_reports(lake_dir))
    files = list(_stored_files(lake_dir))
    with ThreadPoolExecutor(_THREADS, thread_name_prefix="lake-upgrade") as pool:
        outcomes = list(pool.map(lambda item: _conform(*item), files))
    result.files_checked = len(files)
    result.files_rewritten = sum(1 for outcome in outcomes if outcome)
    result.unreadable = [str(path) for (path, _), outcome in zip(files, outcomes, strict=True) if outcome is None]
    return result

"""Set up the lake's fixed files and the DuckDB file's views (at start, and when the code changes them)."""

from __future__ import annotations

from sm_assets.core import catalog, layout
from sm_assets.core.config import Settings
from sm_assets.core.reports.schemas import STORED_REPORT_TABLES
from sm_assets.core.schemas import arrow_schema


def report_view_columns() -> dict[str, list[tuple[str, str]]]:
    return {table: [(c.name, c.duckdb_type) for c in columns] for table, columns in STORED_REPORT_TABLES.items()}


# What this process already verified: (DuckDB file, lake) -> the file's (inode, mtime) then.
_VERIFIED: dict[tuple[str, str], tuple[int, int]] = {}


def prepare_storage(settings: Settings) -> bool:
    """Schema placeholders in the lake and the DuckDB file's views; True when the DuckDB file was (re)built.
    Cheap when nothing changed: the file is only opened read-only to compare its fingerprint, and not even
    that when this process already did so and the file is the same one."""
    key = (str(settings.duckdb_path), str(settings.lake_dir))
    try:
        stat = settings.duckdb_path.stat()
        if _VERIFIED.get(key) == (stat.st_ino, stat.st_mtime_ns):
            return False
    except FileNotFoundError:
        pass
    placeholders = [
        (
            layout.report_file(settings.lake_dir, table, layout.PLACEHOLDER_DAY),
            arrow_schema(columns),
        )
        for table, columns in STORED_REPORT_TABLES.items()
    ]
    rebuilt = catalog.ensure_catalog(settings.duckdb_path, settings.lake_dir, report_view_columns(), placeholders)
    stat = settings.duckdb_path.stat()
    _VERIFIED[key] = (stat.st_ino, stat.st_mtime_ns)
    return rebuilt

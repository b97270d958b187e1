"""Set up the lake's fixed files and the DuckDB file's views (at start, and when the code changes them)."""

from __future__ import annotations

import pyarrow as pa

from sm_assets.core import catalog, layout
from sm_assets.core.config import Settings
from sm_assets.core.reports.schemas import STORED_REPORT_TABLES


def report_view_columns() -> dict[str, list[tuple[str, str]]]:
    return {table: [(c.name, c.duckdb_type) for c in columns] for table, columns in STORED_REPORT_TABLES.items()}


def prepare_storage(settings: Settings) -> bool:
    """Schema placeholders in the lake and the DuckDB file's views; True when the DuckDB file was (re)built.
    Cheap when nothing changed (the file is only opened read-only to compare its fingerprint)."""
    placeholders = [
        (
            layout.report_file(settings.lake_dir, table, layout.PLACEHOLDER_DAY),
            pa.schema([pa.field(c.name, c.arrow_type) for c in columns]),
        )
        for table, columns in STORED_REPORT_TABLES.items()
    ]
    return catalog.ensure_catalog(settings.duckdb_path, settings.lake_dir, report_view_columns(), placeholders)

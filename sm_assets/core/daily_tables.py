"""The daily tables: the whole organization as of a day, built from the account snapshots.

For day D every account's latest committed snapshot on or before D is found (`snapshots.latest_snapshots`),
and DuckDB streams, per resource type, its raw rows into ``aws/raw_sagemaker_<type>/as_of_date=D`` and
their normalized form into ``aws/<table>/as_of_date=D``, plus every account's status rows into
``aws/collection_status/as_of_date=D``. Each output is one file, written next to its final name (or, for
S3, locally) and published whole, so readers see the previous day file or the new one.

The raw rows of accounts not collected since the previous daily file are read back from that file, so
the work and the bytes read per day do not grow with the history kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from sm_assets.core import duck, lake, layout
from sm_assets.core.compaction import prune_staged
from sm_assets.core.errors import LakeError, one_line
from sm_assets.core.layout import LakeDir, LakePath
from sm_assets.core.normalize import normalize_select_sql
from sm_assets.core.outcomes import CheckOutcome
from sm_assets.core.schemas import COLLECTION_STATUS_SCHEMA, RAW_SCHEMA, TableSpec
from sm_assets.core.snapshots import SnapshotRef, latest_snapshots, snapshot_keys
from sm_assets.core.specs import RESOURCE_SPECS, ResourceSpec

_COPY_OPTIONS = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE 20000"


def raw_table_name(resource_type: str) -> str:
    """The daily raw dataset of one resource type (and its DuckDB view, aws.raw_sagemaker_<type>)."""
    return layout.legacy_raw_dataset(resource_type)


def daily_table_schemas() -> dict[str, pa.Schema]:
    """Every daily table -> the columns its files hold (the as_of_date comes from the folder name)."""
    out: dict[str, pa.Schema] = {layout.DAILY_STATUS_TABLE: COLLECTION_STATUS_SCHEMA}
    for spec in RESOURCE_SPECS:
        out[raw_table_name(spec.resource_type)] = RAW_SCHEMA
        out[spec.table.name] = spec.table.arrow_schema()
    return out


def ensure_placeholders(lake_dir: LakeDir) -> None:
    """An empty file with the columns of each daily table, under the placeholder day: every view's glob
    then matches at least one file and gets its column types from it, data or not."""
    for table, schema in daily_table_schemas().items():
        path = layout.placeholder_file(lake_dir, table)
        try:
            current = lake.read_file(path, schema).schema
        except LakeError:
            current = None
        if current != schema:
            lake.write_atomic(schema.empty_table(), path)


@dataclass
class TableOutput:
    table: str
    path: LakePath
    rows: int
    rows_by_region: dict[str, int] = field(default_factory=dict)
    accounts: int = 0
    checks: list[CheckOutcome] = field(default_factory=list)


@dataclass
class DailyBuild:
    day: date
    base_day: date | None  # the previous daily file the unchanged accounts were read from
    snapshots: dict[str, SnapshotRef]
    outputs: dict[str, TableOutput]
    status_counts: dict[str, int]  # account-region-type cells by status
    errors: list[str]  # "account region/type: code: message" for every error cell
    pruned_days: list[date] = field(default_factory=list)  # closed days whose per-account files were deleted
    pruned_files: int = 0

    @property
    def accounts(self) -> int:
        return len(self.snapshots)


@contextmanager
def _work_dir(lake_dir: LakeDir) -> Iterator[Path]:
    """Where outputs are written before they are published: inside a local lake (same file system, so a
    rename publishes them), in the temporary directory for S3."""
    import shutil
    import tempfile

    if layout.is_s3(lake_dir):
        with tempfile.TemporaryDirectory(prefix="sm-assets-daily-") as folder:
            yield Path(folder)
        return
    folder = Path(lake_dir, ".staging", uuid.uuid4().hex)
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _sources(refs: Mapping[str, SnapshotRef], lake_dir: LakeDir, spec: ResourceSpec | None) -> list[str]:
    """The files holding the selected snapshots' rows: status files (spec None) or raw files of one type."""
    paths: list[str] = []
    shared_days: set[date] = set()
    for ref in refs.values():
        if ref.shared_day is not None:
            shared_days.add(ref.shared_day)
            continue
        if spec is None:
            paths.append(str(ref.status_path))
            continue
        for path in ref.raw_paths:
            name = Path(str(path)).parent.parent.name
            if name in (layout.RAW_SNAPSHOT_DATASET, layout.legacy_raw_dataset(spec.resource_type)):
                paths.append(str(path))
    table = layout.DAILY_STATUS_TABLE if spec is None else raw_table_name(spec.resource_type)
    paths += [str(layout.daily_file(lake_dir, table, day)) for day in sorted(shared_days)]
    return paths


def _copy(conn: duckdb.DuckDBPyConnection, select_sql: str, out: Path) -> None:
    conn.execute(f"COPY ({select_sql}) TO {duck.sql_string(str(out))} ({_COPY_OPTIONS})")


# Computes every column of every row (a bare count(*) would let DuckDB skip the parsing that failed).
_EVERY_VALUE = "SELECT bit_xor(hash(t)) FROM ({}) AS t"


def _culprit(conn: duckdb.DuckDBPyConnection, files: list[str], query: Callable[[list[str]], str]) -> str | None:
    """The first file `query` fails on by itself, by bisection (only after a query over many files failed,
    so a bad file is named in one line without a query per file)."""
    while len(files) > 1:
        half = files[: len(files) // 2]
        try:
            conn.execute(_EVERY_VALUE.format(query(half))).fetchone()
        except duckdb.Error:
            files = half
        else:
            files = files[len(files) // 2 :]
    return files[0] if files else None


def _selected(files: Sequence[str], schema: pa.Schema, where: str = "") -> str:
    """The rows of the selected snapshots in `files` (the keys table `snapshot_keys` is registered)."""
    columns = ", ".join(f"r.{duck.sql_identifier(name)}" for name in schema.names)
    source = f"read_parquet({duck.sql_list(list(files))}, union_by_name = true)"
    return (
        f"SELECT {columns} FROM {source} r SEMI JOIN snapshot_keys k "
        "ON r.account_id = k.account_id AND r.snapshot_date = k.snapshot_date AND r.collected_at = k.collected_at"
        + (f" WHERE {where}" if where else "")
    )


def _empty(schema: pa.Schema, out: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(schema.empty_table(), out, compression="zstd")


def build_daily_tables(lake_dir: LakeDir, day: date) -> DailyBuild:
    """Build and publish every daily table for `day`. Raises LakeError (one line) on an unreadable file;
    then nothing of that day is published."""
    refs, base = latest_snapshots(lake_dir, day)
    ensure_placeholders(lake_dir)
    with duck.connect(lake_dir) as conn, _work_dir(lake_dir) as work:
        conn.register("snapshot_keys", snapshot_keys(refs))
        staged: dict[str, tuple[Path, LakePath]] = {}
        try:
            status_out = work / "status.parquet"
            status_files = _sources(refs, lake_dir, None)
            if status_files:
                _copy(conn, _selected(status_files, COLLECTION_STATUS_SCHEMA), status_out)
            else:
                _empty(COLLECTION_STATUS_SCHEMA, status_out)
            staged[layout.DAILY_STATUS_TABLE] = (
                status_out,
                layout.daily_file(lake_dir, layout.DAILY_STATUS_TABLE, day),
            )
            for spec in RESOURCE_SPECS:
                raw_name = raw_table_name(spec.resource_type)
                raw_out, table_out = work / f"{raw_name}.parquet", work / f"{spec.table.name}.parquet"
                files = _sources(refs, lake_dir, spec)
                if files:
                    where = f"r.resource_type = {duck.sql_string(spec.resource_type)}"
                    _copy(conn, _selected(files, RAW_SCHEMA, where), raw_out)
                else:
                    _empty(RAW_SCHEMA, raw_out)
                source = f"read_parquet({duck.sql_string(str(raw_out))})"
                _copy(conn, normalize_select_sql(spec.table, source), table_out)
                staged[raw_name] = (raw_out, layout.daily_file(lake_dir, raw_name, day))
                staged[spec.table.name] = (table_out, layout.daily_file(lake_dir, spec.table.name, day))
            outputs = {name: _describe_output(conn, name, local, dest) for name, (local, dest) in staged.items()}
            status_counts, errors = _status_summary(conn, status_out)
        except duckdb.Error as exc:
            raise LakeError(_failure_line(conn, refs, lake_dir, day, exc)) from None
        for name, spec in ((s.table.name, s) for s in RESOURCE_SPECS):
            outputs[name].checks = table_checks(conn, spec.table, staged[name][0])
        for local, dest in staged.values():
            lake.publish(local, dest)
    pruned = prune_staged(lake_dir, max(day, datetime.now(UTC).date()))
    return DailyBuild(day, base, refs, outputs, status_counts, errors, pruned.days, pruned.files)


def _failure_line(
    conn: duckdb.DuckDBPyConnection, refs: Mapping[str, SnapshotRef], lake_dir: LakeDir, day: date, exc: Exception
) -> str:
    """One line naming the file a failed build choked on (a damaged page, a payload DuckDB cannot parse)."""
    for spec in (None, *RESOURCE_SPECS):
        files = _sources(refs, lake_dir, spec)
        schema = COLLECTION_STATUS_SCHEMA if spec is None else RAW_SCHEMA

        def query(subset: list[str], spec: ResourceSpec | None = spec, schema: pa.Schema = schema) -> str:
            rows = _selected(subset, schema)
            return rows if spec is None else normalize_select_sql(spec.table, f"({rows})")

        try:
            conn.execute(_EVERY_VALUE.format(query(files))).fetchone() if files else None
        except duckdb.Error as file_exc:
            bad = _culprit(conn, files, query)
            return f"cannot build the daily tables for {day}: {bad}: {one_line(file_exc)}"
    return f"building the daily tables for {day} failed: {one_line(exc)}"


def _describe_output(conn: duckdb.DuckDBPyConnection, name: str, local: Path, dest: LakePath) -> TableOutput:
    source = f"read_parquet({duck.sql_string(str(local))})"
    by_region = dict(conn.execute(f"SELECT region, count(*) FROM {source} GROUP BY ALL ORDER BY ALL").fetchall())
    (accounts,) = conn.execute(f"SELECT count(DISTINCT account_id) FROM {source}").fetchone()
    return TableOutput(name, dest, sum(by_region.values()), by_region, accounts)


def _status_summary(conn: duckdb.DuckDBPyConnection, status_file: Path) -> tuple[dict[str, int], list[str]]:
    source = f"read_parquet({duck.sql_string(str(status_file))})"
    counts = dict(conn.execute(f"SELECT status, count(*) FROM {source} GROUP BY ALL ORDER BY ALL").fetchall())
    errors = [
        f"{a} {r}/{t}: {c}: {m}"
        for a, r, t, c, m in conn.execute(
            f"SELECT account_id, region, resource_type, error_code, message FROM {source} "
            "WHERE status = 'error' ORDER BY ALL LIMIT 1000"
        ).fetchall()
    ]
    return counts, errors


TABLE_CHECKS = (
    ("exact_columns_and_types", "The DuckDB view has exactly the DDSQL columns and types, in order"),
    ("key_unique_per_snapshot", "_key is unique within the day's table"),
    ("required_fields_not_null", "Required fields are never NULL"),
    ("arn_matches_account_and_region", "Each ARN's account and region match the row's"),
)


def table_checks(conn: duckdb.DuckDBPyConnection, table: TableSpec, path: Path | str) -> list[CheckOutcome]:
    """The checks of one normalized day file, read as the views read it."""
    from sm_assets.core.catalog import table_select

    expected = [(c.name, c.duckdb_type) for c in table.columns]
    src = f"read_parquet({duck.sql_string(str(path))})"
    actual = [(r[0], r[1]) for r in conn.execute(f"DESCRIBE {table_select(table, src)}").fetchall()]
    duplicates = conn.execute(
        f"SELECT account_id, _key, count(*) FROM {src} GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 20"
    ).fetchall()
    (total,) = conn.execute(f"SELECT count(*) FROM {src}").fetchone()
    required = [c.name for c in table.columns if c.required]
    null_counts = conn.execute(
        f"SELECT {', '.join(f'count(*) FILTER (WHERE {c} IS NULL)' for c in required)} FROM {src}"
    ).fetchone()
    nulls = {c: n for c, n in zip(required, null_counts, strict=True) if n}
    # arn:partition:sagemaker:REGION:ACCOUNT:...
    mismatched = conn.execute(
        f"SELECT _key FROM {src} WHERE split_part(_key, ':', 4) <> region "
        f"OR split_part(_key, ':', 5) <> account_id ORDER BY 1 LIMIT 20"
    ).fetchall()
    return [
        CheckOutcome("exact_columns_and_types", actual == expected, {"expected": expected, "actual": actual}),
        CheckOutcome(
            "key_unique_per_snapshot", not duplicates, {"rows": total, "duplicated_keys": [list(d) for d in duplicates]}
        ),
        CheckOutcome("required_fields_not_null", not nulls, {"null_counts": nulls, "required": required}),
        CheckOutcome("arn_matches_account_and_region", not mismatched, {"mismatched_keys": [m[0] for m in mismatched]}),
    ]

"""The Parquet lake: atomic per-partition files, and the DuckDB views over them.

Layout: ``<lake>/<dataset>/snapshot_date=YYYY-MM-DD/account_id=NNNNNNNNNNNN.parquet``. Rewriting the
same (dataset, date, account) replaces the file atomically, so re-materializing never duplicates rows
and a killed writer leaves the previous file intact. Views read the files at query time, so DuckDB
only needs a write lock to (re)define views, never to add data.

The lake is a local directory or an ``s3://bucket/prefix/lake`` URI: every function takes the lake root as
a Path or a URI string (`LakeDir`) and returns file locations of the same kind (`LakePath`). On S3 the
files are read and written with pyarrow's S3 filesystem (`sm_assets.core.s3`); one PUT per object replaces
it atomically. DuckDB cannot read s3:// offline (its httpfs extension is downloaded on first use), so there
the `aws.*` and `reports.*` names are tables loaded from the lake through Arrow, reloaded wherever the
views would be redefined, with the same columns, types and latest-snapshot-per-account semantics.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from sm_assets.core import s3
from sm_assets.core.schemas import (
    COLLECTION_STATUS_DATASET,
    COLLECTION_STATUS_SCHEMA,
    NORMALIZED_TABLES,
    RAW_SCHEMA,
    TableSpec,
)
from sm_assets.core.specs import RESOURCE_SPECS

_DATE_DIR = re.compile(r"^snapshot_date=(\d{4}-\d{2}-\d{2})$")
_ACCOUNT_FILE = re.compile(r"^account_id=(\d{12})\.parquet$")
_REPORT_FILE = re.compile(r"^report_date=\d{4}-\d{2}-\d{2}\.parquet$")
_S3_THREADS = 16  # concurrent GETs when loading many small objects

LakeDir = Path | str  # a local directory, or an s3://bucket/prefix URI
LakePath = Path | str  # a local file, or an s3:// object URI


class LakeError(RuntimeError):
    """A lake file that is missing, corrupt or of the wrong shape (one-line message)."""


def is_s3(location: LakeDir) -> bool:
    return s3.is_s3_uri(location)


def join(base: LakeDir, *parts: str) -> LakePath:
    return s3.join(base, *parts) if is_s3(base) else Path(base).joinpath(*parts)


def location_uri(path: LakePath) -> str:
    """A URI for links in metadata: file:// locally, s3:// on S3."""
    return path if is_s3(path) else Path(path).as_uri()  # type: ignore[return-value]


def dataset_file(lake_dir: LakeDir, dataset: str, snapshot_date: date, account_id: str) -> LakePath:
    return join(lake_dir, dataset, f"snapshot_date={snapshot_date.isoformat()}", f"account_id={account_id}.parquet")


def dataset_glob(lake_dir: LakeDir, dataset: str) -> str:
    return str(join(lake_dir, dataset, "snapshot_date=*", "account_id=*.parquet"))


def _s3_error(action: str, uri: str, exc: BaseException) -> LakeError:
    return LakeError(f"cannot {action} {uri} ({s3.describe_target()}): {s3.error_line(exc)}")


def write_bytes(data: bytes | pa.Buffer, path: LakePath, content_type: str | None = None) -> LakePath:
    """Store a whole object: on S3 one PUT (the object appears complete or not at all); locally a plain write."""
    if not is_s3(path):
        local = Path(path)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(bytes(data))
        return local
    uri = str(path)
    try:
        fs = s3.filesystem(uri)
        out = fs.open_output_stream(s3.fs_path(uri), metadata={"Content-Type": content_type} if content_type else None)
        # The data is complete before the stream opens, so the one write cannot stop halfway; the object is
        # published by close() (PutObject, or CompleteMultipartUpload for big ones), never before.
        out.write(data)
        out.close()
    except OSError as exc:
        raise _s3_error("write", uri, exc) from None
    return uri


def write_text(text: str, path: LakePath, content_type: str = "text/html; charset=utf-8") -> LakePath:
    if not is_s3(path):
        local = Path(path)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text)
        return local
    return write_bytes(text.encode(), path, content_type)


def read_bytes(path: LakePath) -> bytes:
    if not is_s3(path):
        local = Path(path)
        if not local.exists():
            raise LakeError(f"lake file missing: {local}")
        return local.read_bytes()
    uri = str(path)
    try:
        with s3.filesystem(uri).open_input_stream(s3.fs_path(uri)) as handle:
            return handle.readall()
    except FileNotFoundError:
        raise LakeError(f"lake file missing: {uri}") from None
    except OSError as exc:
        raise _s3_error("read", uri, exc) from None


def write_atomic(table: pa.Table, path: LakePath) -> LakePath:
    """Write a Parquet file so readers see the old file or the new one, never a torn one."""
    if is_s3(path):
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")  # encoded in full first: a failure sends nothing
        return write_bytes(sink.getvalue(), path, "application/vnd.apache.parquet")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.partial"
    try:
        with open(tmp, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def write_many_atomic(items: Iterable[tuple[pa.Table, LakePath]], workers: int = 4) -> list[LakePath]:
    """`write_atomic` for many files at once: Parquet encoding and fsync release the GIL, so a few
    threads overlap them (1,000 per-account files: 2.3 s one by one, about half with 4 threads)."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lake-write") as pool:
        return list(pool.map(lambda item: write_atomic(*item), items))


def _one_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _parquet_source(path: LakePath) -> Path | pa.BufferReader:
    """What pyarrow opens for a lake file: the local path, or an S3 object's bytes; LakeError if missing."""
    if is_s3(path):
        return pa.BufferReader(read_bytes(path))
    local = Path(path)
    if not local.exists():
        raise LakeError(f"lake file missing: {local}")
    return local


@contextmanager
def _random_access(path: LakePath) -> Iterator[Path | pa.NativeFile]:
    """A lake file pyarrow can seek in: reading the footer of an S3 object fetches only its last bytes."""
    if not is_s3(path):
        yield _parquet_source(path)
        return
    uri = str(path)
    try:
        handle = s3.filesystem(uri).open_input_file(s3.fs_path(uri))
    except FileNotFoundError:
        raise LakeError(f"lake file missing: {uri}") from None
    except OSError as exc:
        raise _s3_error("read", uri, exc) from None
    with handle:
        yield handle


def check_account_file(path: LakePath, schema: pa.Schema, account_id: str) -> int:
    """Cheap pre-flight for a per-account file: readable footer, expected columns, only `account_id`
    rows (from the column statistics; on S3 only the footer's bytes are fetched). Returns the row count;
    LakeError otherwise."""
    with _random_access(path) as source:
        try:
            meta = pq.read_metadata(source)
            names = meta.schema.to_arrow_schema().names
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise LakeError(f"lake file is corrupt or partial: {path} ({_one_line(exc)})") from None
        missing = [f.name for f in schema if f.name not in names]
        if missing:
            raise LakeError(f"lake file {path} lacks columns {', '.join(missing)}")
        column = names.index("account_id")
        for group in range(meta.num_row_groups):
            chunk = meta.row_group(group)
            stats = chunk.column(column).statistics
            if chunk.num_rows == 0:
                continue
            if stats is not None and stats.has_null_count and stats.null_count:
                raise LakeError(f"lake file {path} has rows without an account_id")
            if stats is None or not stats.has_min_max:  # no statistics: read the one column
                values = set(pq.read_table(source, columns=["account_id"]).column("account_id").to_pylist())
                if values != {account_id}:
                    raise LakeError(f"lake file {path} holds rows of another account")
                break
            if stats.min != account_id or stats.max != account_id:
                raise LakeError(f"lake file {path} holds rows of another account")
        return meta.num_rows


def read_file(path: LakePath, schema: pa.Schema) -> pa.Table:
    """Read one lake file and insist on the expected columns; corrupt files raise LakeError."""
    source = _parquet_source(path)
    try:
        table = pq.read_table(source)
        names = table.column_names  # decodes the footer's column names: corrupt bytes fail here
    except (OSError, ValueError, pa.ArrowException) as exc:  # ValueError: UnicodeDecodeError from the footer
        raise LakeError(f"lake file is corrupt or partial: {path} ({_one_line(exc)})") from None
    missing = [f.name for f in schema if f.name not in names]
    if missing:
        raise LakeError(f"lake file {path} lacks columns {', '.join(missing)}")
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise LakeError(f"lake file {path} has unexpected column types ({str(exc).splitlines()[0]})") from None


def _s3_list(uri: str, recursive: bool = True) -> list:  # -> list[pyarrow.fs.FileInfo]
    import pyarrow.fs as pafs

    try:
        fs = s3.filesystem(uri)
        return fs.get_file_info(pafs.FileSelector(s3.fs_path(uri), recursive=recursive, allow_not_found=True))
    except OSError as exc:
        raise _s3_error("list", uri, exc) from None


def _s3_partition_files(lake_dir: str, dataset: str) -> list[tuple[str, date, str]]:
    """(object URI, snapshot date, account) of every partition file of the dataset on S3."""
    import pyarrow.fs as pafs

    root = s3.join(lake_dir, dataset)
    found = []
    for info in _s3_list(root):
        if info.type != pafs.FileType.File:
            continue
        parts = info.path[len(s3.fs_path(root)) + 1 :].split("/")
        day = _DATE_DIR.match(parts[0]) if len(parts) == 2 else None
        account = _ACCOUNT_FILE.match(parts[1]) if day else None
        if day and account:
            found.append((s3.SCHEME + info.path, date.fromisoformat(day.group(1)), account.group(1)))
    return sorted(found)


def _s3_exists(uri: str) -> bool:
    import pyarrow.fs as pafs

    try:
        return s3.filesystem(uri).get_file_info(s3.fs_path(uri)).type == pafs.FileType.File
    except OSError as exc:
        raise _s3_error("read", uri, exc) from None


def s3_snapshot_folders(lake_dir: str, dataset: str) -> list[date]:
    """Snapshot dates with a folder on S3: one delimited listing, however many files the dataset holds."""
    import pyarrow.fs as pafs

    days = []
    for info in _s3_list(s3.join(lake_dir, dataset), recursive=False):
        match = _DATE_DIR.match(info.base_name) if info.type == pafs.FileType.Directory else None
        if match:
            days.append(date.fromisoformat(match.group(1)))
    return sorted(days)


def dataset_files(lake_dir: LakeDir, dataset: str) -> list[LakePath]:
    """Every partition file of the dataset."""
    if is_s3(lake_dir):
        return [uri for uri, _, _ in _s3_partition_files(str(lake_dir), dataset)]
    root = Path(lake_dir) / dataset
    if not root.is_dir():
        return []
    return [path for day_dir in root.glob("snapshot_date=*") for path in day_dir.glob("account_id=*.parquet")]


def snapshot_dates(lake_dir: LakeDir, dataset: str, account_id: str | None = None) -> list[date]:
    """Snapshot dates that have a file for `account_id` (any account when None), ascending."""
    if is_s3(lake_dir):
        if account_id is None:
            return sorted({day for _, day, _ in _s3_partition_files(str(lake_dir), dataset)})
        days = s3_snapshot_folders(str(lake_dir), dataset)
        files = [str(dataset_file(lake_dir, dataset, day, account_id)) for day in days]
        with ThreadPoolExecutor(_S3_THREADS) as pool:
            return [day for day, hit in zip(days, pool.map(_s3_exists, files), strict=True) if hit]
    root = Path(lake_dir) / dataset
    if not root.is_dir():
        return []
    found: list[date] = []
    for entry in root.iterdir():
        match = _DATE_DIR.match(entry.name)
        if not match:
            continue
        if account_id is None:
            has_file = any(_ACCOUNT_FILE.match(p.name) for p in entry.iterdir())
        else:
            has_file = (entry / f"account_id={account_id}.parquet").exists()
        if has_file:
            found.append(date.fromisoformat(match.group(1)))
    return sorted(found)


def latest_snapshot_date(lake_dir: LakeDir, dataset: str, account_id: str) -> date | None:
    if is_s3(lake_dir):  # newest first, one HEAD per date until a hit: usually a listing and one HEAD
        for day in reversed(s3_snapshot_folders(str(lake_dir), dataset)):
            if _s3_exists(str(dataset_file(lake_dir, dataset, day, account_id))):
                return day
        return None
    dates = snapshot_dates(lake_dir, dataset, account_id)
    return dates[-1] if dates else None


def has_files(lake_dir: LakeDir, dataset: str) -> bool:
    return bool(snapshot_dates(lake_dir, dataset))


def _read_parquet_object(uri: str) -> pa.Table:
    try:
        return pq.read_table(pa.BufferReader(read_bytes(uri)))
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise LakeError(f"lake file is corrupt or partial: {uri} ({s3.error_line(exc)})") from None


def _read_many(uris: Sequence[str]) -> list[pa.Table]:
    if len(uris) <= 1:
        return [_read_parquet_object(u) for u in uris]
    with ThreadPoolExecutor(min(_S3_THREADS, len(uris))) as pool:
        return list(pool.map(_read_parquet_object, uris))


@contextmanager
def local_copies(paths: Sequence[LakePath]) -> Iterator[list[str]]:
    """Paths DuckDB's `read_parquet` can open, for the block: local lake files as they are, S3 objects
    downloaded to a temporary directory (DuckDB itself cannot read s3:// offline)."""
    if not any(is_s3(p) for p in paths):
        yield [str(p) for p in paths]
        return
    with tempfile.TemporaryDirectory(prefix="sm-assets-s3-") as tmp:

        def fetch(item: tuple[int, LakePath]) -> str:
            index, path = item
            if not is_s3(path):
                return str(path)
            local = Path(tmp, f"{index}.parquet")
            local.write_bytes(read_bytes(path))
            return str(local)

        with ThreadPoolExecutor(min(_S3_THREADS, len(paths))) as pool:
            local = list(pool.map(fetch, enumerate(paths)))
        yield local


# ---------------------------------------------------------------------------------------------
# DuckDB views

DUCKDB_TYPE_OF_ARROW = {
    pa.string(): "VARCHAR",
    pa.date32(): "DATE",
    pa.int64(): "BIGINT",
    pa.timestamp("us", tz="UTC"): "TIMESTAMP WITH TIME ZONE",
    pa.map_(pa.string(), pa.string()): "MAP(VARCHAR, VARCHAR)",
}


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _latest_filter(glob: str) -> str:
    # Latest file per account, found from file names so a snapshot with zero rows still counts.
    return (
        "SEMI JOIN (SELECT regexp_extract(file, 'account_id=(\\d{12})\\.parquet$', 1) AS account_id, "
        "max(regexp_extract(file, 'snapshot_date=(\\d{4}-\\d{2}-\\d{2})', 1)::DATE) AS snapshot_date "
        f"FROM glob({_sql_str(glob)}) GROUP BY 1) AS latest USING (account_id, snapshot_date)"
    )


def _files_select(glob: str, present: bool, columns: list[tuple[str, str]]) -> str:
    """SELECT over Parquet files with the view's types; a typed empty relation when there are none."""
    if present:
        exprs = [f"CAST({name} AS JSON) AS {name}" if duck == "JSON" else name for name, duck in columns]
        return f"SELECT {', '.join(exprs)} FROM read_parquet({_sql_str(glob)}, union_by_name = true)"
    exprs = [f"CAST(NULL AS {duck}) AS {name}" for name, duck in columns]
    return f"SELECT {', '.join(exprs)} WHERE false"


def table_view_columns(table: TableSpec) -> list[tuple[str, str]]:
    return [(c.name, c.duckdb_type) for c in table.lake_columns]


def schema_view_columns(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(f.name, DUCKDB_TYPE_OF_ARROW[f.type]) for f in schema]


def _replace(conn: duckdb.DuckDBPyConnection, kind: str, name: str, select_sql: str) -> None:
    """CREATE OR REPLACE a VIEW (local lake) or TABLE (S3 lake), also over an object of the other kind
    (a DuckDB file last refreshed from the other kind of lake)."""
    statement = f"CREATE OR REPLACE {kind} {name} AS {select_sql}"
    try:
        conn.execute(statement)
    except duckdb.CatalogException as exc:
        if "trying to replace with type" not in str(exc):
            raise
        conn.execute(f"DROP {'TABLE' if kind == 'VIEW' else 'VIEW'} {name}")
        conn.execute(statement)


def _typed_select(source: str, present: list[str], columns: list[tuple[str, str]]) -> str:
    """The view's columns and types from a registered Arrow relation (NULL for a column no file has)."""
    exprs = [
        f"CAST({name} AS {duck}) AS {name}" if name in present else f"CAST(NULL AS {duck}) AS {name}"
        for name, duck in columns
    ]
    return f"SELECT {', '.join(exprs)} FROM {source}"


@contextmanager
def _registered(conn: duckdb.DuckDBPyConnection, table: pa.Table) -> Iterator[str]:
    name = f"_sm_assets_arrow_{uuid.uuid4().hex}"
    conn.register(name, table)
    try:
        yield name
    finally:
        conn.unregister(name)


def _load_table(
    conn: duckdb.DuckDBPyConnection, name: str, uris: Sequence[str], columns: list[tuple[str, str]]
) -> None:
    """`name` := the rows of the S3 objects `uris`, with the view's columns and types (Arrow -> DuckDB)."""
    if not uris:
        _replace(conn, "TABLE", name, _files_select("", False, columns))
        return
    data = pa.concat_tables(_read_many(uris), promote_options="permissive")
    with _registered(conn, data) as source:
        _replace(conn, "TABLE", name, _typed_select(source, data.column_names, columns))


def create_dataset_views(
    conn: duckdb.DuckDBPyConnection,
    lake_dir: LakeDir,
    dataset: str,
    columns: list[tuple[str, str]],
    latest_columns: list[str],
    schema: str = "aws",
    view_name: str | None = None,
) -> None:
    """`<schema>.<view>_history` (every snapshot) and `<schema>.<view>` (latest snapshot per account)."""
    view_name = view_name or dataset
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    if is_s3(lake_dir):
        _create_dataset_tables(conn, str(lake_dir), dataset, columns, latest_columns, f"{schema}.{view_name}")
        return
    history = _files_select(dataset_glob(lake_dir, dataset), has_files(lake_dir, dataset), columns)
    _replace(conn, "VIEW", f"{schema}.{view_name}_history", history)
    latest_sql = f"SELECT {', '.join(latest_columns)} FROM {schema}.{view_name}_history"
    if has_files(lake_dir, dataset):
        latest_sql += " " + _latest_filter(dataset_glob(lake_dir, dataset))
    _replace(conn, "VIEW", f"{schema}.{view_name}", latest_sql)


def _create_dataset_tables(
    conn: duckdb.DuckDBPyConnection,
    lake_dir: str,
    dataset: str,
    columns: list[tuple[str, str]],
    latest_columns: list[str],
    name: str,
) -> None:
    """The S3 form of the two views: tables loaded through Arrow. The latest file per account is found from
    the object names, as the local view does, so a snapshot with zero rows still counts."""
    files = _s3_partition_files(lake_dir, dataset)  # listed and read before DuckDB is touched: a failure
    _load_table(conn, f"{name}_history", [uri for uri, _, _ in files], columns)  # keeps the old tables
    latest: dict[str, date] = {}
    for _, day, account_id in files:
        latest[account_id] = max(day, latest.get(account_id, day))
    keys = pa.table(
        {
            "account_id": pa.array(list(latest), pa.string()),
            "snapshot_date": pa.array(list(latest.values()), pa.date32()),
        }
    )
    with _registered(conn, keys) as source:
        _replace(
            conn,
            "TABLE",
            name,
            f"SELECT {', '.join(latest_columns)} FROM {name}_history "
            f"SEMI JOIN {source} AS latest USING (account_id, snapshot_date)",
        )


def refresh_inventory_views(conn: duckdb.DuckDBPyConnection, lake_dir: LakeDir) -> None:
    """(Re)define every `aws.*` view. Cheap: views hold no data (on S3: reloads the tables)."""
    for table in NORMALIZED_TABLES.values():
        create_dataset_views(conn, lake_dir, table.name, table_view_columns(table), table.column_names)
    raw_cols = schema_view_columns(RAW_SCHEMA)
    for spec in RESOURCE_SPECS:
        dataset = spec.raw_dataset
        create_dataset_views(conn, lake_dir, dataset, raw_cols, [c for c, _ in raw_cols])
    status_cols = schema_view_columns(COLLECTION_STATUS_SCHEMA)
    create_dataset_views(conn, lake_dir, COLLECTION_STATUS_DATASET, status_cols, [c for c, _ in status_cols])


# ---------------------------------------------------------------------------------------------
# Reports: one file per (table, report date)


def report_file(lake_dir: LakeDir, table: str, report_date: date) -> LakePath:
    return join(lake_dir, "reports", table, f"report_date={report_date.isoformat()}.parquet")


def create_report_views(
    conn: duckdb.DuckDBPyConnection, lake_dir: LakeDir, tables: dict[str, list[tuple[str, str]]]
) -> None:
    """`reports.<table>`: every report date written so far."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS reports")
    for table, columns in tables.items():
        if is_s3(lake_dir):
            folder_uri = s3.join(str(lake_dir), "reports", table)
            uris = sorted(
                s3.SCHEME + info.path
                for info in _s3_list(folder_uri, recursive=False)
                if _REPORT_FILE.match(info.base_name)
            )
            _load_table(conn, f"reports.{table}", uris, columns)
            continue
        folder = Path(lake_dir) / "reports" / table
        present = folder.is_dir() and any(folder.glob("report_date=*.parquet"))
        select = _files_select(str(folder / "report_date=*.parquet"), present, columns)
        _replace(conn, "VIEW", f"reports.{table}", select)

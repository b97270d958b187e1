"""Account snapshots in the lake: the raw asset's per-account files, and each account's latest snapshot.

A snapshot is one collection of one account: its raw describe output (every resource type, one file) and
its status rows (one file, written last: the commit record). See `layout` for the paths.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from sm_assets.core import lake, layout, statuses
from sm_assets.core.collection import AccountSnapshot, StatusRecord
from sm_assets.core.errors import LakeError
from sm_assets.core.layout import LakeDir, LakePath
from sm_assets.core.payloads import dumps
from sm_assets.core.schemas import COLLECTION_STATUS_SCHEMA, RAW_SCHEMA
from sm_assets.core.specs import RESOURCE_SPECS


def raw_table(snapshot: AccountSnapshot) -> pa.Table:
    """Every collected resource of the snapshot (RAW_SCHEMA), grouped by resource type."""
    order = {spec.resource_type: i for i, spec in enumerate(RESOURCE_SPECS)}
    items = sorted(snapshot.items, key=lambda i: (order.get(i.resource_type, len(order)), i.resource_type, i.region))
    rows = [
        {
            "snapshot_date": snapshot.snapshot_date,
            "collected_at": snapshot.collected_at,
            "account_id": snapshot.account_id,
            "region": item.region,
            "resource_type": item.resource_type,
            "arn": item.arn,
            "name": item.name,
            "describe_json": dumps(item.describe),
            "tags_json": None if item.tags is None else dumps(item.tags),
        }
        for item in items
    ]
    return pa.Table.from_pylist(rows, schema=RAW_SCHEMA)


def status_table(snapshot: AccountSnapshot, statuses: Iterable[StatusRecord] | None = None) -> pa.Table:
    rows = [
        {
            "snapshot_date": snapshot.snapshot_date,
            "collected_at": snapshot.collected_at,
            "account_id": snapshot.account_id,
            "region": s.region,
            "resource_type": s.resource_type,
            "status": s.status,
            "error_code": s.error_code,
            "message": s.message,
            "item_count": s.item_count,
            "api_calls": s.api_calls,
        }
        for s in (snapshot.statuses if statuses is None else statuses)
    ]
    return pa.Table.from_pylist(rows, schema=COLLECTION_STATUS_SCHEMA)


def _write_raw(table: pa.Table, path: LakePath) -> LakePath:
    """One row group per resource type, so a reader of one type skips the others' pages by their statistics."""
    if table.num_rows == 0:
        return lake.write_atomic(table, path)
    ends = pc.run_end_encode(table.column("resource_type").combine_chunks()).run_ends.to_pylist()
    return lake.write_atomic(table, path, row_groups=[e - s for s, e in zip([0, *ends[:-1]], ends, strict=True)])


@dataclass(frozen=True)
class StoredSnapshot:
    """What the raw asset reports for one account partition."""

    account_id: str
    snapshot_date: date
    collected_at: datetime
    raw_path: LakePath
    status_path: LakePath
    rows_by_type: dict[str, int]
    statuses: dict[str, int]
    api_calls: int
    api_calls_saved: int
    cells: frozenset[tuple[str, str]] = frozenset()  # the (region, resource type) pairs with a status
    denied: tuple[str, ...] = ()  # "region/type: code" of every access_denied or tags_denied status
    errors: tuple[str, ...] = ()  # "region/type: code: message" of every error status

    def metadata(self) -> dict[str, object]:
        """What the account partition's materialization records (small: one event per account)."""
        out: dict[str, object] = {
            "snapshot_date": self.snapshot_date.isoformat(),
            "dagster/row_count": sum(self.rows_by_type.values()),
            "rows_by_type": dict(self.rows_by_type),
            "statuses": dict(self.statuses),
            "api_calls": self.api_calls,
            "api_calls_saved": self.api_calls_saved,
        }
        if self.denied or self.errors:
            out["problems"] = [*self.denied, *self.errors][:10]
        return out


def store_snapshot(lake_dir: LakeDir, snapshot: AccountSnapshot) -> StoredSnapshot:
    """Write one account's snapshot: the raw file, then the status file that commits it. A crash between the
    two leaves an uncommitted raw file (ignored, later deleted) and the previous snapshot in force."""
    day, at = snapshot.snapshot_date, snapshot.collected_at
    raw_path = _write_raw(raw_table(snapshot), layout.raw_snapshot_file(lake_dir, day, snapshot.account_id, at))
    status_path = lake.write_atomic(status_table(snapshot), layout.status_file(lake_dir, day, snapshot.account_id, at))
    counts = {spec.resource_type: 0 for spec in RESOURCE_SPECS}
    for item in snapshot.items:
        counts[item.resource_type] = counts.get(item.resource_type, 0) + 1
    return StoredSnapshot(
        account_id=snapshot.account_id,
        snapshot_date=day,
        collected_at=at,
        raw_path=raw_path,
        status_path=status_path,
        rows_by_type=counts,
        statuses={s: sum(x.status == s for x in snapshot.statuses) for s in statuses.STATUSES},
        api_calls=snapshot.api_calls,
        api_calls_saved=snapshot.api_calls_saved,
        cells=frozenset((s.region, s.resource_type) for s in snapshot.statuses),
        denied=tuple(
            f"{s.region}/{s.resource_type}: {s.error_code}"
            + (" (tags only)" if s.status == statuses.TAGS_DENIED else "")
            for s in snapshot.statuses
            if s.status in (statuses.ACCESS_DENIED, statuses.TAGS_DENIED)
        ),
        errors=tuple(
            f"{s.region}/{s.resource_type}: {s.error_code}: {s.message}"
            for s in snapshot.statuses
            if s.status == statuses.ERROR
        ),
    )


class SnapshotWriter:
    """Stores snapshots on a few threads while the collection goes on (Parquet encoding and fsync release
    the GIL); `submit` returns a future of the stored snapshot, in the order accounts were submitted."""

    def __init__(self, lake_dir: LakeDir, threads: int = 4) -> None:
        self.lake_dir = lake_dir
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="snapshot-write")

    def submit(self, snapshot: AccountSnapshot) -> Future[StoredSnapshot]:
        return self._pool.submit(store_snapshot, self.lake_dir, snapshot)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Finding snapshots


@dataclass(frozen=True)
class SnapshotRef:
    """Where one account's snapshot is stored.

    Either its own files (`status_path` + `raw_paths`: the versioned raw file, or for lakes before round 2
    one file per resource type), or a daily file shared with the other accounts (`shared_day`: read the
    daily raw and status files of that day, filtered by account, snapshot_date and collected_at)."""

    account_id: str
    snapshot_date: date
    collected_at: datetime | None  # None: a pre-round-2 status file, whose name carries no version
    status_path: LakePath | None = None
    raw_paths: tuple[LakePath, ...] = ()
    shared_day: date | None = None

    @property
    def order(self) -> tuple[date, datetime]:
        return self.snapshot_date, self.collected_at or datetime.min.replace(tzinfo=UTC)


def day_folders(lake_dir: LakeDir, dataset: str) -> list[date]:
    """The snapshot days that have a folder in a staging dataset (one listing)."""
    days = []
    for entry in lake.list_folder(layout.join(lake_dir, dataset)):
        match = layout.DAY_DIR.match(entry.name)
        if entry.is_dir and match:
            days.append(date.fromisoformat(match.group(1)))
    return sorted(days)


def daily_days(lake_dir: LakeDir, table: str) -> list[date]:
    """The days that have a daily file of `table` (one listing; the schema placeholder excluded)."""
    days = []
    for entry in lake.list_folder(layout.daily_dir(lake_dir, table)):
        match = layout.AS_OF_DIR.match(entry.name)
        if entry.is_dir and match and match.group(1) != layout.PLACEHOLDER_DAY.isoformat():
            days.append(date.fromisoformat(match.group(1)))
    return sorted(days)


def staged_snapshots(lake_dir: LakeDir, day: date) -> dict[str, SnapshotRef]:
    """The committed per-account snapshots of one day: per account, the status file with the newest version."""
    status_dir = layout.day_dir(lake_dir, layout.STATUS_DATASET, day)
    raw_dir = layout.day_dir(lake_dir, layout.RAW_SNAPSHOT_DATASET, day)
    found: dict[str, SnapshotRef] = {}
    legacy: list[tuple[str, LakePath]] = []
    for entry in lake.list_folder(status_dir):
        match = layout.ACCOUNT_FILE.match(entry.name)
        if entry.is_dir or not match:
            continue
        account_id, stamp = match.group(1), match.group(2)
        if stamp is None:
            legacy.append((account_id, entry.path))
            continue
        at = datetime.fromtimestamp(int(stamp) / 1_000_000, UTC)
        ref = SnapshotRef(
            account_id,
            day,
            at,
            status_path=entry.path,
            raw_paths=(layout.join(raw_dir, f"account_id={account_id}.{stamp}.parquet"),),
        )
        if account_id not in found or ref.order > found[account_id].order:
            found[account_id] = ref
    legacy = [(a, p) for a, p in legacy if a not in found]  # a versioned collection of the same day is newer
    if legacy:
        present = {
            spec.resource_type: {
                e.name
                for e in lake.list_folder(layout.day_dir(lake_dir, layout.legacy_raw_dataset(spec.resource_type), day))
            }
            for spec in RESOURCE_SPECS
        }
        for account_id, path in legacy:
            found[account_id] = SnapshotRef(
                account_id,
                day,
                _legacy_collected_at(path),
                status_path=path,
                raw_paths=tuple(
                    layout.legacy_raw_file(lake_dir, resource_type, day, account_id)
                    for resource_type, names in present.items()
                    if f"account_id={account_id}.parquet" in names
                ),
            )
    return found


def _legacy_collected_at(path: LakePath) -> datetime | None:
    table = lake.read_file(path, COLLECTION_STATUS_SCHEMA, columns=["collected_at"])
    values = table.column("collected_at").to_pylist()
    return values[0] if values else None


def daily_snapshots(lake_dir: LakeDir, day: date) -> dict[str, SnapshotRef]:
    """The snapshots a day's daily status file was built from (every account's latest as of that day)."""
    path = layout.daily_file(lake_dir, layout.DAILY_STATUS_TABLE, day)
    table = lake.read_file(path, COLLECTION_STATUS_SCHEMA, columns=["account_id", "snapshot_date", "collected_at"])
    found: dict[str, SnapshotRef] = {}
    for row in table.group_by(["account_id", "snapshot_date", "collected_at"]).aggregate([]).to_pylist():
        ref = SnapshotRef(row["account_id"], row["snapshot_date"], row["collected_at"], shared_day=day)
        if row["account_id"] not in found or ref.order > found[row["account_id"]].order:
            found[row["account_id"]] = ref
    return found


def latest_snapshots(lake_dir: LakeDir, day: date) -> tuple[dict[str, SnapshotRef], date | None]:
    """Every account's latest committed snapshot on or before `day`, and the daily file it started from.

    Starts from the newest daily status file on or before `day` (every account's latest as of then; for
    `day` itself: its previous build) and takes a per-account file of that day onwards only where it is
    newer, so the work does not grow with the history kept and pruned per-account files are never needed."""
    base_days = [d for d in daily_days(lake_dir, layout.DAILY_STATUS_TABLE) if d <= day]
    base = base_days[-1] if base_days else None
    found = daily_snapshots(lake_dir, base) if base else {}
    for staged_day in day_folders(lake_dir, layout.STATUS_DATASET):
        if staged_day > day or (base is not None and staged_day < base):
            continue
        for account_id, ref in staged_snapshots(lake_dir, staged_day).items():
            if account_id not in found or ref.order > found[account_id].order:
                found[account_id] = ref
    return dict(sorted(found.items())), base


def previous_describes(
    lake_dir: LakeDir, account_ids: Sequence[str], resource_types: Iterable[str]
) -> dict[str, dict[str, dict]]:
    """Account -> ARN -> stored describe output of its latest snapshot, for the immutable resource types
    (incremental collection). An unreadable old file only costs the describe calls it would have saved."""
    wanted = set(resource_types)
    if not wanted:
        return {}
    today = datetime.now(UTC).date()
    try:
        latest, _ = latest_snapshots(lake_dir, today)
    except LakeError:
        return {}
    refs = {a: latest[a] for a in account_ids if a in latest}
    out: dict[str, dict[str, dict]] = {}
    shared: dict[date, list[SnapshotRef]] = {}
    for account_id, ref in refs.items():
        if ref.shared_day is not None:
            shared.setdefault(ref.shared_day, []).append(ref)
            continue
        describes: dict[str, dict] = {}
        for path in ref.raw_paths:
            try:
                table = lake.read_file(path, RAW_SCHEMA, columns=["resource_type", "arn", "describe_json"])
            except LakeError:
                continue
            describes.update(_describes(table, wanted))
        out[account_id] = describes
    for shared_day, day_refs in shared.items():
        out.update(_shared_describes(lake_dir, shared_day, day_refs, wanted))
    return out


def _describes(table: pa.Table, wanted: set[str]) -> dict[str, dict]:
    return {row["arn"]: json.loads(row["describe_json"]) for row in table.to_pylist() if row["resource_type"] in wanted}


def _shared_describes(
    lake_dir: LakeDir, day: date, refs: Sequence[SnapshotRef], wanted: set[str]
) -> dict[str, dict[str, dict]]:
    """The describes of snapshots held in a day's daily raw files (one file per resource type)."""
    keys = {(r.account_id, r.collected_at) for r in refs}
    accounts = pa.array(sorted({k[0] for k in keys}), pa.string())
    out: dict[str, dict[str, dict]] = {r.account_id: {} for r in refs}
    columns = ["account_id", "collected_at", "resource_type", "arn", "describe_json"]
    for resource_type in sorted(wanted):
        path = layout.daily_file(lake_dir, layout.legacy_raw_dataset(resource_type), day)
        try:
            table = lake.read_file(path, RAW_SCHEMA, columns=columns)
        except LakeError:
            continue  # an unreadable old file only costs the describe calls it would have saved
        for row in table.filter(pc.is_in(table.column("account_id"), accounts)).to_pylist():
            if (row["account_id"], row["collected_at"]) in keys:
                out[row["account_id"]][row["arn"]] = json.loads(row["describe_json"])
    return out


def snapshot_keys(refs: Mapping[str, SnapshotRef]) -> pa.Table:
    """(account_id, snapshot_date, collected_at) of the snapshots: what a reader of shared files keeps."""
    values = list(refs.values())
    return pa.table(
        {
            "account_id": pa.array([r.account_id for r in values], pa.string()),
            "snapshot_date": pa.array([r.snapshot_date for r in values], pa.date32()),
            "collected_at": pa.array([r.collected_at for r in values], pa.timestamp("us", tz="UTC")),
        }
    )

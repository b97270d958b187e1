"""Keep the lake's file count growing with days, not days x accounts.

A day's per-account snapshot files are only the staging area of the daily files: once a closed day's
daily files hold every snapshot collected that day, its per-account files are deleted, a retention period
after that daily build (a reader that listed them just before still finds them). Readers of the views never
see per-account files at all, so they see the old daily file or the new one, never both or neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sm_assets.core import lake, layout
from sm_assets.core.layout import LakeDir
from sm_assets.core.snapshots import daily_days, daily_snapshots, day_folders, staged_snapshots
from sm_assets.core.specs import RESOURCE_SPECS

# A daily build this old is trusted to have no reader still opening the per-account files it replaced.
RETENTION = timedelta(hours=24)


@dataclass
class Pruned:
    days: list[date] = field(default_factory=list)
    files: int = 0


def _staged_datasets() -> list[str]:
    # status first: without its status file a snapshot is no longer committed, so nobody reads its raw file
    legacy = [layout.legacy_raw_dataset(spec.resource_type) for spec in RESOURCE_SPECS]
    legacy_tables = [spec.table.name for spec in RESOURCE_SPECS]  # per-account normalized files (round 1)
    return [layout.STATUS_DATASET, layout.RAW_SNAPSHOT_DATASET, *legacy, *legacy_tables]


def prune_staged(lake_dir: LakeDir, today: date, now: datetime | None = None) -> Pruned:
    """Delete the per-account files of every closed day (before yesterday, UTC) whose daily files cover all
    of that day's snapshots and were built at least RETENTION ago."""
    now = now or datetime.now(UTC)
    pruned = Pruned()
    built = set(daily_days(lake_dir, layout.DAILY_STATUS_TABLE))
    for day in day_folders(lake_dir, layout.STATUS_DATASET):
        if day >= today - timedelta(days=1) or day not in built:
            continue
        day_folder = layout.join(layout.daily_dir(lake_dir, layout.DAILY_STATUS_TABLE), f"as_of_date={day}")
        entries = lake.list_folder(day_folder)
        built_at = max((e.modified for e in entries if e.name == layout.DAILY_FILE and e.modified), default=None)
        if built_at is None or now - built_at < RETENTION:
            continue
        covered = daily_snapshots(lake_dir, day)
        staged = staged_snapshots(lake_dir, day)
        if any(a not in covered or ref.order > covered[a].order for a, ref in staged.items()):
            continue  # a snapshot of that day is newer than its daily build: rebuild the day first
        for dataset in _staged_datasets():
            folder = layout.day_dir(lake_dir, dataset, day)
            files = [e.path for e in lake.list_folder(folder) if not e.is_dir]
            pruned.files += lake.delete_files(files)
            lake.remove_empty_folder(folder)
        pruned.days.append(day)
    return pruned

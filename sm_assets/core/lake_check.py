"""Is what the next day's tables will read readable? The latest daily files and the per-account snapshots
stored since, each checked by its footer and columns (on S3 only the footer's bytes are fetched)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sm_assets.core import lake, layout
from sm_assets.core.daily_tables import daily_table_schemas
from sm_assets.core.errors import LakeError
from sm_assets.core.layout import LakeDir
from sm_assets.core.schemas import COLLECTION_STATUS_SCHEMA, RAW_SCHEMA
from sm_assets.core.snapshots import daily_days, day_folders, staged_snapshots


@dataclass
class LakeCheck:
    checked: int = 0
    broken: list[str] = field(default_factory=list)
    latest_daily_day: str | None = None


def check_lake(lake_dir: LakeDir) -> LakeCheck:
    result = LakeCheck()
    built = daily_days(lake_dir, layout.DAILY_STATUS_TABLE)
    latest = built[-1] if built else None
    result.latest_daily_day = latest.isoformat() if latest else None

    def check(path: layout.LakePath, schema, account_id: str | None = None) -> None:  # noqa: ANN001
        result.checked += 1
        try:
            lake.check_file(path, schema, account_id)
        except LakeError as exc:
            result.broken.append(str(exc))

    if latest is not None:
        for table, schema in daily_table_schemas().items():
            check(layout.daily_file(lake_dir, table, latest), schema)
    for day in day_folders(lake_dir, layout.STATUS_DATASET):
        if latest is not None and day < latest:
            continue
        for account_id, ref in staged_snapshots(lake_dir, day).items():
            if ref.status_path is not None:
                check(ref.status_path, COLLECTION_STATUS_SCHEMA, account_id)
            for path in ref.raw_paths:
                check(path, RAW_SCHEMA, account_id)
    return result

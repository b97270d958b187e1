"""Where every dataset lives in the lake (names and paths only, no I/O).

The lake grows with days, not days x accounts:

``raw_sagemaker_account_snapshot/snapshot_date=D/account_id=A.T.parquet``
    one account's collection on day D: every resource type's describe output (RAW_SCHEMA), written by the
    account-partitioned raw asset. ``T`` (collection time, epoch microseconds) versions the file, so a new
    collection never overwrites the rows its status record does not describe yet.
``collection_status/snapshot_date=D/account_id=A.T.parquet``
    that collection's status rows. Written after the raw file of the same ``T``: it is the commit record of
    the snapshot. An account's latest snapshot of a day is the status file with the highest ``T``.
``aws/<table>/as_of_date=D/data.parquet``
    the daily tables: the whole organization as of D (each account's latest snapshot on or before D),
    normalized, plus its raw describe output (``aws/raw_sagemaker_<type>``, one file per resource type) and
    collection status (``aws/collection_status``). Readers (the DuckDB views) only ever see these: each is replaced
    whole. They are also the compacted lake: once a closed day has its daily files, its per-account
    files are deleted after a retention period.
``reports/<table>/report_date=D/data.parquet``
    the daily reports (a folder per date, so a reader's date filter skips the other files; lakes before
    round 2 held ``report_date=D.parquet``, moved into folders on upgrade).

Lakes written before round 2 hold one raw file per resource type
(``raw_sagemaker_<type>/snapshot_date=D/account_id=A.parquet``); they are read as they are and
compacted into the layout above. Their per-account normalized files (``sagemaker_<table>/...``) are
superseded by the daily tables and no longer read.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

from sm_assets.core import s3

LakeDir = Path | str  # a local directory, or an s3://bucket/prefix URI
LakePath = Path | str  # a local file, or an s3:// object URI

RAW_SNAPSHOT_DATASET = "raw_sagemaker_account_snapshot"
STATUS_DATASET = "collection_status"
DAILY_ROOT = "aws"
REPORTS_ROOT = "reports"
DAILY_FILE = "data.parquet"
DAILY_STATUS_TABLE = STATUS_DATASET  # aws/collection_status
# An empty file with each daily table's columns lives under this day, so a view's glob always matches a
# file (DuckDB fails on a glob that matches none) and the column types never depend on what is stored.
PLACEHOLDER_DAY = date(1970, 1, 1)
PLACEHOLDER_FILE = "schema.parquet"

DAY_DIR = re.compile(r"^snapshot_date=(\d{4}-\d{2}-\d{2})$")
AS_OF_DIR = re.compile(r"^as_of_date=(\d{4}-\d{2}-\d{2})$")
# account_id=A.parquet (lakes before round 2) or account_id=A.T.parquet
ACCOUNT_FILE = re.compile(r"^account_id=(\d{12})(?:\.(\d+))?\.parquet$")


def join(base: LakeDir, *parts: str) -> LakePath:
    return s3.join(base, *parts) if is_s3(base) else Path(base).joinpath(*parts)


def location_uri(path: LakePath) -> str:
    """A URI for links in metadata: file:// locally, s3:// on S3."""
    return str(path) if is_s3(path) else Path(path).as_uri()


def legacy_raw_dataset(resource_type: str) -> str:
    """The per-resource-type raw dataset of lakes written before round 2."""
    return f"raw_sagemaker_{resource_type}"


def day_dir(lake_dir: LakeDir, dataset: str, day: date) -> LakePath:
    return join(lake_dir, dataset, f"snapshot_date={day.isoformat()}")


def collection_stamp(collected_at: datetime) -> int:
    """The version a raw file carries in its name: its collection time in epoch microseconds."""
    return int(collected_at.timestamp() * 1_000_000)


def raw_snapshot_file(lake_dir: LakeDir, day: date, account_id: str, collected_at: datetime) -> LakePath:
    return join(
        day_dir(lake_dir, RAW_SNAPSHOT_DATASET, day),
        f"account_id={account_id}.{collection_stamp(collected_at)}.parquet",
    )


def status_file(lake_dir: LakeDir, day: date, account_id: str, collected_at: datetime) -> LakePath:
    return join(
        day_dir(lake_dir, STATUS_DATASET, day), f"account_id={account_id}.{collection_stamp(collected_at)}.parquet"
    )


def legacy_status_file(lake_dir: LakeDir, day: date, account_id: str) -> LakePath:
    return join(day_dir(lake_dir, STATUS_DATASET, day), f"account_id={account_id}.parquet")


def legacy_raw_file(lake_dir: LakeDir, resource_type: str, day: date, account_id: str) -> LakePath:
    return join(day_dir(lake_dir, legacy_raw_dataset(resource_type), day), f"account_id={account_id}.parquet")


def daily_dir(lake_dir: LakeDir, table: str) -> LakePath:
    return join(lake_dir, DAILY_ROOT, table)


def daily_file(lake_dir: LakeDir, table: str, day: date) -> LakePath:
    return join(daily_dir(lake_dir, table), f"as_of_date={day.isoformat()}", DAILY_FILE)


def placeholder_file(lake_dir: LakeDir, table: str) -> LakePath:
    return join(daily_dir(lake_dir, table), f"as_of_date={PLACEHOLDER_DAY.isoformat()}", PLACEHOLDER_FILE)


def daily_glob(lake_dir: LakeDir, table: str) -> str:
    return str(join(daily_dir(lake_dir, table), "as_of_date=*", "*.parquet"))


def report_dir(lake_dir: LakeDir, table: str) -> LakePath:
    return join(lake_dir, REPORTS_ROOT, table)


def report_file(lake_dir: LakeDir, table: str, report_date: date) -> LakePath:
    return join(report_dir(lake_dir, table), f"report_date={report_date.isoformat()}", DAILY_FILE)


def report_glob(lake_dir: LakeDir, table: str) -> str:
    return str(join(report_dir(lake_dir, table), "report_date=*", DAILY_FILE))


REPORT_DIR = re.compile(r"^report_date=(\d{4}-\d{2}-\d{2})$")
LEGACY_REPORT_FILE = re.compile(r"^report_date=(\d{4}-\d{2}-\d{2})\.parquet$")  # lakes before round 2


def chart_file(lake_dir: LakeDir, report_date: date) -> LakePath:
    return join(lake_dir, REPORTS_ROOT, "charts", f"model_quality_coverage_{report_date.isoformat()}.html")


def is_s3(location: LakeDir) -> bool:
    return s3.is_s3_uri(location)

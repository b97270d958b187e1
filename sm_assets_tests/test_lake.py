from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from sm_assets.core import lake
from sm_assets.core.collect import AccountSnapshot, StatusRecord
from sm_assets.core.normalize import status_table
from sm_assets.core.schemas import COLLECTION_STATUS_DATASET, COLLECTION_STATUS_SCHEMA

A, B = "111111111111", "222222222222"


def status_snapshot(account: str, day: date, regions: list[str], status: str = "ok") -> pa.Table:
    snap = AccountSnapshot(account, datetime(day.year, day.month, day.day, 5, tzinfo=UTC), tuple(regions))
    snap.statuses = [StatusRecord(r, "endpoint", status, item_count=1) for r in regions]
    return status_table(snap)


def write(tmp_path: Path, account: str, day: date, regions: list[str], status: str = "ok") -> Path:
    path = lake.dataset_file(tmp_path, COLLECTION_STATUS_DATASET, day, account)
    return lake.write_atomic(status_snapshot(account, day, regions, status), path)


def test_rewrite_replaces_never_duplicates(tmp_path: Path) -> None:
    day = date(2026, 11, 1)
    for _ in range(3):
        write(tmp_path, A, day, ["us-east-1", "eu-west-1"])
    conn = duckdb.connect()
    lake.refresh_inventory_views(conn, tmp_path)
    assert conn.execute("SELECT count(*) FROM aws.collection_status_history").fetchone() == (2,)
    leftovers = [p.name for p in (tmp_path / COLLECTION_STATUS_DATASET).rglob("*") if p.is_file()]
    assert leftovers == [f"account_id={A}.parquet"]


def test_latest_view_takes_each_accounts_newest_snapshot(tmp_path: Path) -> None:
    write(tmp_path, A, date(2026, 11, 1), ["us-east-1"], "ok")
    write(tmp_path, A, date(2026, 11, 3), ["us-east-1"], "access_denied")
    write(tmp_path, B, date(2026, 11, 2), ["us-east-1", "eu-west-1"], "ok")
    conn = duckdb.connect()
    lake.refresh_inventory_views(conn, tmp_path)
    rows = conn.execute(
        "SELECT account_id, snapshot_date, status, count(*) FROM aws.collection_status GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert rows == [(A, date(2026, 11, 3), "access_denied", 1), (B, date(2026, 11, 2), "ok", 2)]
    assert lake.snapshot_dates(tmp_path, COLLECTION_STATUS_DATASET) == [date(2026, 11, d) for d in (1, 2, 3)]
    assert lake.latest_snapshot_date(tmp_path, COLLECTION_STATUS_DATASET, A) == date(2026, 11, 3)


def test_views_exist_before_any_data(tmp_path: Path) -> None:
    conn = duckdb.connect()
    lake.refresh_inventory_views(conn, tmp_path / "empty")
    assert conn.execute("SELECT count(*) FROM aws.sagemaker_model_quality_job_definition").fetchone() == (0,)
    cols = [r[0] for r in conn.execute("DESCRIBE aws.collection_status").fetchall()]
    assert cols == COLLECTION_STATUS_SCHEMA.names


def test_corrupt_file_is_one_line_error(tmp_path: Path) -> None:
    path = write(tmp_path, A, date(2026, 11, 1), ["us-east-1"])
    path.write_bytes(path.read_bytes()[:40])  # a torn write
    with pytest.raises(lake.LakeError) as excinfo:
        lake.read_file(path, COLLECTION_STATUS_SCHEMA)
    assert "corrupt or partial" in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_failed_write_leaves_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, A, date(2026, 11, 1), ["us-east-1"])
    before = path.read_bytes()

    def explode(*_: object, **__: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(lake.pq, "write_table", explode)
    with pytest.raises(OSError, match="disk full"):
        write(tmp_path, A, date(2026, 11, 1), ["us-east-1", "eu-west-1"])
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left behind


def test_lake_check_reports_corrupt_files(tmp_path: Path) -> None:
    from sm_assets.core.config import Settings
    from sm_assets.defs.inventory.checks import lake_files_readable
    from sm_assets.defs.resources import SmAssetsConfig

    settings = Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="r")
    good = write(settings.lake_dir, A, date(2026, 11, 1), ["us-east-1"])
    bad = write(settings.lake_dir, B, date(2026, 11, 1), ["us-east-1"])
    config = SmAssetsConfig.from_settings(settings)
    assert lake_files_readable(sm_config=config).passed
    bad.write_bytes(bad.read_bytes()[:-30])  # a torn copy
    result = lake_files_readable(sm_config=config)
    assert not result.passed
    assert result.metadata["files_checked"].value == 2
    (message,) = result.metadata["broken"].value
    assert str(bad) in message and str(good) not in message

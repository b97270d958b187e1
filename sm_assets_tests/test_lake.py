from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from sm_assets.core import lake, s3
from sm_assets.core.collect import AccountSnapshot, StatusRecord
from sm_assets.core.normalize import status_table
from sm_assets.core.schemas import COLLECTION_STATUS_DATASET, COLLECTION_STATUS_SCHEMA

A, B = "111111111111", "222222222222"

# Every test here runs against a local lake and against one on moto's S3 server (see conftest):
# `root` is the lake root, a Path or an s3:// URI.


@pytest.fixture
def root(data_location: Path | str) -> Path | str:
    return lake.join(data_location, "lake")


def names_under(folder: Path | str) -> list[str]:
    """Names of every file (object) below `folder`, temporary ones included."""
    if lake.is_s3(folder):
        return sorted(i.base_name for i in lake._s3_list(str(folder)) if i.type.name == "File")
    return sorted(p.name for p in Path(folder).rglob("*") if p.is_file())


def settings_for(data_location: Path | str, tmp_path: Path, **kwargs: object):  # -> Settings
    from sm_assets.core.config import Settings

    duckdb_path = None if isinstance(data_location, Path) else tmp_path / "sm_assets.duckdb"
    return Settings.build(data_dir=data_location, duckdb_path=duckdb_path, **kwargs)  # type: ignore[arg-type]


def status_snapshot(account: str, day: date, regions: list[str], status: str = "ok") -> pa.Table:
    snap = AccountSnapshot(account, datetime(day.year, day.month, day.day, 5, tzinfo=UTC), tuple(regions))
    snap.statuses = [StatusRecord(r, "endpoint", status, item_count=1) for r in regions]
    return status_table(snap)


def write(root: Path | str, account: str, day: date, regions: list[str], status: str = "ok") -> Path | str:
    path = lake.dataset_file(root, COLLECTION_STATUS_DATASET, day, account)
    return lake.write_atomic(status_snapshot(account, day, regions, status), path)


def test_rewrite_replaces_never_duplicates(root: Path | str) -> None:
    day = date(2026, 11, 1)
    for _ in range(3):
        write(root, A, day, ["us-east-1", "eu-west-1"])
    conn = duckdb.connect()
    lake.refresh_inventory_views(conn, root)
    assert conn.execute("SELECT count(*) FROM aws.collection_status_history").fetchone() == (2,)
    assert names_under(lake.join(root, COLLECTION_STATUS_DATASET)) == [f"account_id={A}.parquet"]


def test_latest_view_takes_each_accounts_newest_snapshot(root: Path | str) -> None:
    write(root, A, date(2026, 11, 1), ["us-east-1"], "ok")
    write(root, A, date(2026, 11, 3), ["us-east-1"], "access_denied")
    write(root, B, date(2026, 11, 2), ["us-east-1", "eu-west-1"], "ok")
    conn = duckdb.connect()
    lake.refresh_inventory_views(conn, root)
    rows = conn.execute(
        "SELECT account_id, snapshot_date, status, count(*) FROM aws.collection_status GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert rows == [(A, date(2026, 11, 3), "access_denied", 1), (B, date(2026, 11, 2), "ok", 2)]
    assert lake.snapshot_dates(root, COLLECTION_STATUS_DATASET) == [date(2026, 11, d) for d in (1, 2, 3)]
    assert lake.snapshot_dates(root, COLLECTION_STATUS_DATASET, A) == [date(2026, 11, 1), date(2026, 11, 3)]
    assert lake.latest_snapshot_date(root, COLLECTION_STATUS_DATASET, A) == date(2026, 11, 3)
    assert lake.latest_snapshot_date(root, COLLECTION_STATUS_DATASET, "333333333333") is None


def test_zero_row_snapshot_is_the_latest(root: Path | str) -> None:
    write(root, A, date(2026, 11, 1), ["us-east-1"])
    write(root, A, date(2026, 11, 2), [])  # collected, nothing found: the account's latest state is empty
    conn = duckdb.connect()
    lake.refresh_inventory_views(conn, root)
    assert conn.execute("SELECT count(*) FROM aws.collection_status").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM aws.collection_status_history").fetchone() == (1,)


def test_views_exist_before_any_data(root: Path | str) -> None:
    conn = duckdb.connect()
    lake.refresh_inventory_views(conn, lake.join(root, "empty"))
    assert conn.execute("SELECT count(*) FROM aws.sagemaker_model_quality_job_definition").fetchone() == (0,)
    cols = [r[0] for r in conn.execute("DESCRIBE aws.collection_status").fetchall()]
    assert cols == COLLECTION_STATUS_SCHEMA.names


def test_local_and_s3_objects_have_identical_types(tmp_path: Path, s3_data_dir: str) -> None:
    from sm_assets.core.schemas import MODEL_QUALITY_JOB_DEFINITION

    described = {}
    for root in (tmp_path / "lake", s3.join(s3_data_dir, "lake")):
        write(root, A, date(2026, 11, 1), ["us-east-1"])
        lake.write_atomic(
            pa.Table.from_pylist([], schema=MODEL_QUALITY_JOB_DEFINITION.arrow_schema()),
            lake.dataset_file(root, MODEL_QUALITY_JOB_DEFINITION.name, date(2026, 11, 1), A),
        )
        conn = duckdb.connect()
        lake.refresh_inventory_views(conn, root)
        lake.create_report_views(conn, root, {"t": [("report_date", "DATE"), ("n", "BIGINT")]})
        described[lake.is_s3(root)] = conn.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns ORDER BY ALL"
        ).fetchall()
    assert described[True] == described[False]
    assert ("aws", MODEL_QUALITY_JOB_DEFINITION.name, "tags", "MAP(VARCHAR, VARCHAR)") in described[True]


def test_corrupt_file_is_one_line_error(root: Path | str) -> None:
    path = write(root, A, date(2026, 11, 1), ["us-east-1"])
    lake.write_bytes(lake.read_bytes(path)[:40], path)  # a torn write
    with pytest.raises(lake.LakeError) as excinfo:
        lake.read_file(path, COLLECTION_STATUS_SCHEMA)
    assert "corrupt or partial" in str(excinfo.value) and "\n" not in str(excinfo.value)
    conn = duckdb.connect()
    if lake.is_s3(root):  # the tables are loaded at refresh: the corrupt object is named there, in one line
        with pytest.raises(lake.LakeError, match="corrupt or partial") as excinfo:
            lake.refresh_inventory_views(conn, root)
        assert str(path) in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_missing_file_is_one_line_error(root: Path | str) -> None:
    path = lake.dataset_file(root, COLLECTION_STATUS_DATASET, date(2026, 11, 1), A)
    with pytest.raises(lake.LakeError, match="lake file missing") as excinfo:
        lake.read_file(path, COLLECTION_STATUS_SCHEMA)
    assert str(path) in str(excinfo.value)


def test_failed_write_leaves_previous_file(root: Path | str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(root, A, date(2026, 11, 1), ["us-east-1"])
    before = lake.read_bytes(path)

    def explode(*_: object, **__: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(lake.pq, "write_table", explode)
        with pytest.raises(OSError, match="disk full"):
            write(root, A, date(2026, 11, 1), ["us-east-1", "eu-west-1"])
    assert lake.read_bytes(path) == before
    assert names_under(lake.join(root, COLLECTION_STATUS_DATASET)) == [f"account_id={A}.parquet"]  # no partial file


def test_failed_upload_leaves_previous_object(s3_data_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    root = s3.join(s3_data_dir, "lake")
    path = write(root, A, date(2026, 11, 1), ["us-east-1"])
    before = lake.read_bytes(path)
    with monkeypatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there
        with pytest.raises(lake.LakeError) as excinfo:
            write(root, A, date(2026, 11, 1), ["us-east-1", "eu-west-1"])
    message = str(excinfo.value)
    assert message.startswith(f"cannot write {path} (endpoint http://127.0.0.1:9)") and "\n" not in message
    assert lake.read_bytes(path) == before


def test_lake_check_reports_corrupt_files(data_location: Path | str, tmp_path: Path) -> None:
    from sm_assets.defs.inventory.checks import lake_files_readable
    from sm_assets.defs.resources import SmAssetsConfig

    settings = settings_for(data_location, tmp_path, regions=["us-east-1"], role_name="r")
    good = write(settings.lake_dir, A, date(2026, 11, 1), ["us-east-1"])
    bad = write(settings.lake_dir, B, date(2026, 11, 1), ["us-east-1"])
    config = SmAssetsConfig.from_settings(settings)
    assert config.data_dir == str(data_location)
    assert lake_files_readable(sm_config=config).passed
    lake.write_bytes(lake.read_bytes(bad)[:-30], bad)  # a torn copy
    result = lake_files_readable(sm_config=config)
    assert not result.passed
    assert result.metadata["files_checked"].value == 2
    (message,) = result.metadata["broken"].value
    assert str(bad) in message and str(good) not in message


def test_reports_and_a_duckdb_file_moving_between_lake_kinds(tmp_path: Path, s3_data_dir: str) -> None:
    """One DuckDB file refreshed from a local lake (views), then from S3 (tables), then locally again."""
    columns = [("report_date", "DATE"), ("n", "BIGINT")]
    local_root, s3_root = tmp_path / "lake", s3.join(s3_data_dir, "lake")
    for root, days in ((local_root, (1,)), (s3_root, (1, 2))):
        write(root, A, date(2026, 11, 1), ["us-east-1"])
        for d in days:
            day = date(2026, 11, d)
            table = pa.table({"report_date": pa.array([day], pa.date32()), "n": pa.array([d], pa.int64())})
            lake.write_atomic(table, lake.report_file(root, "t", day))
    with duckdb.connect(str(tmp_path / "sm_assets.duckdb")) as conn:
        kinds = []
        for root in (local_root, s3_root, local_root):
            lake.refresh_inventory_views(conn, root)
            lake.create_report_views(conn, root, {"t": columns})
            kinds.append(
                conn.execute(
                    "SELECT table_type FROM information_schema.tables "
                    "WHERE table_schema = 'aws' AND table_name = 'collection_status'"
                ).fetchone()[0]
            )
            reports = conn.execute("SELECT n FROM reports.t ORDER BY report_date").fetchall()
            assert reports == ([(1,), (2,)] if lake.is_s3(root) else [(1,)])
            assert conn.execute("SELECT count(*) FROM aws.collection_status").fetchone() == (1,)
    assert kinds == ["VIEW", "BASE TABLE", "VIEW"]

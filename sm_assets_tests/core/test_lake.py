"""The lake: account snapshots, the daily files built from them and the views over those, locally and on S3.

Every test here runs against a local lake and against one on moto's S3 server (see conftest): `settings`
points at either.
"""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from sm_assets.core import lake, layout, s3
from sm_assets.core.collection import AccountSnapshot, RawItem, StatusRecord
from sm_assets.core.config import Settings
from sm_assets.core.daily_tables import build_daily_tables
from sm_assets.core.errors import LakeError
from sm_assets.core.schemas import COLLECTION_STATUS_SCHEMA
from sm_assets.core.snapshots import latest_snapshots, staged_snapshots, store_snapshot
from sm_assets.core.storage import prepare_storage
from sm_assets_tests.helpers import read_views

A, B = "111111111111", "222222222222"
ENDPOINT_TYPES = ("endpoint",)


@pytest.fixture
def settings(data_location: Path | str, tmp_path: Path) -> Settings:
    duckdb_path = None if isinstance(data_location, Path) else tmp_path / "sm_assets.duckdb"
    return Settings.build(
        data_dir=data_location, duckdb_path=duckdb_path, regions=["us-east-1", "eu-west-1"], role_name="r"
    )


def names_under(folder: Path | str) -> list[str]:
    """Names of every file (object) below `folder`, temporary ones included."""
    if lake.is_s3(folder):
        import pyarrow.fs as pafs

        fs = s3.filesystem(str(folder))
        infos = fs.get_file_info(pafs.FileSelector(s3.fs_path(str(folder)), recursive=True, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.File)
    return sorted(p.name for p in Path(folder).rglob("*") if p.is_file())


def snapshot(account: str, day: date, regions: list[str], status: str = "ok", endpoints: int = 1, hour: int = 5):
    snap = AccountSnapshot(account, datetime(day.year, day.month, day.day, hour, tzinfo=UTC), tuple(regions))
    for region in regions:
        snap.statuses.append(StatusRecord(region, "endpoint", status, item_count=endpoints if status == "ok" else 0))
        for i in range(endpoints if status == "ok" else 0):
            arn = f"arn:aws:sagemaker:{region}:{account}:endpoint/ep-{i}"
            body = {"EndpointArn": arn, "EndpointName": f"ep-{i}", "EndpointStatus": "InService"}
            snap.items.append(RawItem("endpoint", region, arn, f"ep-{i}", body, None))
    return snap


def store_and_build(settings: Settings, *snaps: AccountSnapshot, days: list[date] | None = None) -> None:
    for snap in snaps:
        store_snapshot(settings.lake_dir, snap)
    for day in days if days is not None else sorted({s.snapshot_date for s in snaps}):
        build_daily_tables(settings.lake_dir, day)
    prepare_storage(settings)


def test_recollecting_the_same_day_never_duplicates(settings: Settings) -> None:
    day = date(2026, 11, 1)
    for hour in (5, 6, 7):
        store_and_build(settings, snapshot(A, day, ["us-east-1", "eu-west-1"], hour=hour))
    with read_views(settings) as conn:
        rows = conn.execute("SELECT region, collected_at FROM aws.collection_status ORDER BY 1").fetchall()
        assert [r[0] for r in rows] == ["eu-west-1", "us-east-1"]
        assert {r[1].hour for r in rows} == {7}  # the last collection wins
        assert conn.execute("SELECT count(*) FROM aws.sagemaker_endpoint").fetchone() == (2,)
    daily = names_under(layout.daily_dir(settings.lake_dir, layout.DAILY_STATUS_TABLE))
    assert daily == [layout.DAILY_FILE, layout.PLACEHOLDER_FILE]  # one file for the day, replaced in place


def test_each_day_holds_every_accounts_latest_snapshot(settings: Settings) -> None:
    d1, d2, d3 = (date(2026, 11, d) for d in (1, 2, 3))
    store_and_build(settings, snapshot(A, d1, ["us-east-1"], endpoints=2), days=[d1])
    store_and_build(settings, snapshot(B, d2, ["us-east-1", "eu-west-1"]), days=[d2])
    store_and_build(settings, snapshot(A, d3, ["us-east-1"], status="access_denied"), days=[d3])
    with read_views(settings) as conn:
        latest = conn.execute(
            "SELECT account_id, snapshot_date, status, count(*) FROM aws.collection_status GROUP BY ALL ORDER BY 1"
        ).fetchall()
        assert latest == [(A, d3, "access_denied", 1), (B, d2, "ok", 2)]
        by_day = conn.execute(
            "SELECT as_of_date, account_id, count(*) FROM aws.sagemaker_endpoint_history GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        assert by_day == [(d1, A, 2), (d2, A, 2), (d2, B, 2), (d3, B, 2)]  # A's endpoints are unknown on d3
        assert conn.execute("SELECT count(*) FROM aws.raw_sagemaker_endpoint").fetchone() == (2,)


def test_a_day_reads_the_previous_daily_file_not_the_history(settings: Settings) -> None:
    """Day 3 starts from day 2's daily file: day 1's per-account files are not read again (here: corrupt)."""
    d1, d2, d3 = (date(2026, 11, d) for d in (1, 2, 3))
    store_and_build(settings, snapshot(A, d1, ["us-east-1"]), days=[d1])
    store_and_build(settings, snapshot(B, d2, ["us-east-1"]), days=[d2])
    for ref in staged_snapshots(settings.lake_dir, d1).values():
        for path in (ref.status_path, *ref.raw_paths):
            lake.write_bytes(b"not parquet", path)
    refs, base = latest_snapshots(settings.lake_dir, d3)
    assert base == d2 and refs[A].shared_day == d2
    store_and_build(settings, days=[d3])
    with read_views(settings) as conn:
        rows = conn.execute("SELECT DISTINCT account_id, snapshot_date FROM aws.collection_status ORDER BY 1")
        assert rows.fetchall() == [(A, d1), (B, d2)]
        assert conn.execute("SELECT count(*) FROM aws.sagemaker_endpoint").fetchone() == (2,)


def test_an_uncommitted_raw_file_is_ignored(settings: Settings) -> None:
    """A writer killed between the raw file and its status file leaves the previous snapshot in force."""
    day = date(2026, 11, 1)
    store_and_build(settings, snapshot(A, day, ["us-east-1"], endpoints=1, hour=5))
    crashed = snapshot(A, day, ["us-east-1"], endpoints=3, hour=6)
    from sm_assets.core.snapshots import raw_table

    lake.write_atomic(raw_table(crashed), layout.raw_snapshot_file(settings.lake_dir, day, A, crashed.collected_at))
    store_and_build(settings, days=[day])
    with read_views(settings) as conn:
        assert conn.execute("SELECT count(*) FROM aws.sagemaker_endpoint").fetchone() == (1,)


def test_views_exist_before_any_data(settings: Settings) -> None:
    prepare_storage(settings)
    with read_views(settings) as conn:
        assert conn.execute("SELECT count(*) FROM aws.sagemaker_model_quality_job_definition").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM reports.model_quality_coverage").fetchone() == (0,)
        cols = [r[0] for r in conn.execute("DESCRIBE aws.collection_status").fetchall()]
    assert cols == COLLECTION_STATUS_SCHEMA.names


def test_views_find_new_days_without_being_redefined(settings: Settings) -> None:
    d1, d2 = date(2026, 11, 1), date(2026, 11, 2)
    store_and_build(settings, snapshot(A, d1, ["us-east-1"]))
    before = settings.duckdb_path.stat().st_ino
    store_snapshot(settings.lake_dir, snapshot(B, d2, ["us-east-1"]))
    build_daily_tables(settings.lake_dir, d2)
    assert not prepare_storage(settings)  # nothing to redefine
    assert settings.duckdb_path.stat().st_ino == before
    with read_views(settings) as conn:
        days = conn.execute("SELECT DISTINCT snapshot_date FROM aws.collection_status ORDER BY 1").fetchall()
    assert days == [(d1,), (d2,)]


def test_local_and_s3_views_have_identical_types(tmp_path: Path, s3_data_dir: str) -> None:
    described = {}
    for data_dir, duckdb_path in ((tmp_path / "local", None), (s3_data_dir, tmp_path / "s3.duckdb")):
        settings = Settings.build(data_dir=data_dir, duckdb_path=duckdb_path, regions=["us-east-1"], role_name="r")
        store_and_build(settings, snapshot(A, date(2026, 11, 1), ["us-east-1"]))
        with read_views(settings) as conn:
            described[settings.on_s3] = conn.execute(
                "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns ORDER BY ALL"
            ).fetchall()
    assert described[True] == described[False]
    assert ("aws", "sagemaker_model_quality_job_definition", "tags", "MAP(VARCHAR, VARCHAR)") in described[True]


def test_corrupt_snapshot_file_is_a_one_line_error_and_publishes_nothing(settings: Settings) -> None:
    day = date(2026, 11, 1)
    store_and_build(settings, snapshot(A, day, ["us-east-1"]))
    before = lake.read_bytes(layout.daily_file(settings.lake_dir, "sagemaker_endpoint", day))
    store_snapshot(settings.lake_dir, snapshot(B, day, ["us-east-1"]))
    ref = staged_snapshots(settings.lake_dir, day)[B]
    lake.write_bytes(lake.read_bytes(ref.raw_paths[0])[:40], ref.raw_paths[0])  # a torn write
    with pytest.raises(LakeError) as excinfo:
        build_daily_tables(settings.lake_dir, day)
    message = str(excinfo.value)
    assert "\n" not in message and str(ref.raw_paths[0]).split("/")[-1] in message
    assert lake.read_bytes(layout.daily_file(settings.lake_dir, "sagemaker_endpoint", day)) == before


def test_missing_file_is_one_line_error(settings: Settings) -> None:
    path = layout.status_file(settings.lake_dir, date(2026, 11, 1), A, datetime(2026, 11, 1, tzinfo=UTC))
    with pytest.raises(LakeError, match="lake file missing") as excinfo:
        lake.read_file(path, COLLECTION_STATUS_SCHEMA)
    assert str(path) in str(excinfo.value)


def test_failed_write_leaves_previous_file(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    path = layout.join(settings.lake_dir, "t", "f.parquet")
    lake.write_atomic(pa.table({"n": [1]}), path)
    before = lake.read_bytes(path)

    def explode(*_: object, **__: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(lake.pq, "write_table", explode)
        with pytest.raises(OSError, match="disk full"):
            lake.write_atomic(pa.table({"n": [1, 2]}), path)
    assert lake.read_bytes(path) == before
    assert names_under(layout.join(settings.lake_dir, "t")) == ["f.parquet"]  # no partial file


def test_failed_upload_leaves_previous_object(s3_data_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = s3.join(s3_data_dir, "lake", "t", "f.parquet")
    lake.write_atomic(pa.table({"n": [1]}), path)
    before = lake.read_bytes(path)
    with monkeypatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there
        with pytest.raises(LakeError) as excinfo:
            lake.write_atomic(pa.table({"n": [1, 2]}), path)
    message = str(excinfo.value)
    assert message.startswith(f"cannot write {path} (endpoint http://127.0.0.1:9)") and "\n" not in message
    assert lake.read_bytes(path) == before


def test_failed_daily_upload_keeps_the_previous_daily_file(s3_data_dir: str, tmp_path: Path, monkeypatch) -> None:
    """A daily file goes up as one upload (multipart: completed only when every part is in): a failure
    leaves the previous object, never a torn one (DuckDB's own COPY TO s3:// would)."""
    settings = Settings.build(
        data_dir=s3_data_dir, duckdb_path=tmp_path / "x.duckdb", regions=["us-east-1"], role_name="r"
    )
    day = date(2026, 11, 1)
    store_and_build(settings, snapshot(A, day, ["us-east-1"]))
    target = layout.daily_file(settings.lake_dir, "sagemaker_endpoint", day)
    before = lake.read_bytes(target)
    store_snapshot(settings.lake_dir, snapshot(B, day, ["us-east-1"]))

    def broken_upload(local: Path, uri: str, content_type: str = "") -> str:
        raise LakeError(f"cannot write {uri}: connection reset")

    monkeypatch.setattr(lake, "upload_file", broken_upload)
    with pytest.raises(LakeError, match="connection reset"):
        build_daily_tables(settings.lake_dir, day)
    assert lake.read_bytes(target) == before


def test_lake_check_reports_corrupt_files(settings: Settings) -> None:
    import dagster as dg

    from sm_assets.core.inventory_options import InventoryOptions
    from sm_assets.defs.inventory.checks import build_lake_check
    from sm_assets.defs.resources import SmAssetsConfig
    from sm_assets.defs.shared import DEFAULT_KEYS

    lake_files_readable = build_lake_check(InventoryOptions(), DEFAULT_KEYS)

    d1, d2 = date(2026, 11, 1), date(2026, 11, 2)
    store_and_build(settings, snapshot(A, d1, ["us-east-1"]))
    store_snapshot(settings.lake_dir, snapshot(B, d2, ["us-east-1"]))
    config = SmAssetsConfig.from_settings(settings)
    assert config.data_dir == str(settings.data_location)
    context = dg.build_asset_check_context(resources={"sm_config": config})
    assert lake_files_readable(context).passed
    bad = staged_snapshots(settings.lake_dir, d2)[B].raw_paths[0]
    lake.write_bytes(lake.read_bytes(bad)[:-30], bad)  # a torn copy
    result = lake_files_readable(context)
    assert not result.passed
    (message,) = result.metadata["broken"].value
    assert str(bad) in message
    assert result.metadata["latest_daily_day"].value == d1.isoformat()


def test_a_duckdb_file_moving_between_lake_kinds_is_rebuilt(tmp_path: Path, s3_data_dir: str) -> None:
    """The views name their lake: pointing the same DuckDB file at another lake rebuilds it (by rename)."""
    duckdb_path = tmp_path / "sm_assets.duckdb"
    seen = []
    for data_dir in (tmp_path / "local", s3_data_dir, tmp_path / "local"):
        settings = Settings.build(data_dir=data_dir, duckdb_path=duckdb_path, regions=["us-east-1"], role_name="r")
        rebuilt = prepare_storage(settings)
        store_and_build(
            settings, snapshot(A, date(2026, 11, 1), ["us-east-1"], endpoints=1 + len(seen), hour=5 + len(seen))
        )
        with read_views(settings) as conn:
            seen.append((rebuilt, conn.execute("SELECT count(*) FROM aws.sagemaker_endpoint").fetchone()[0]))
    assert seen == [(True, 1), (True, 2), (True, 3)]


def test_prune_deletes_closed_days_per_account_files(settings: Settings) -> None:
    from sm_assets.core.compaction import RETENTION, prune_staged

    d1, d2 = date(2026, 11, 1), date(2026, 11, 2)
    store_and_build(settings, snapshot(A, d1, ["us-east-1"]), snapshot(B, d1, ["us-east-1"]))
    staged = layout.day_dir(settings.lake_dir, layout.STATUS_DATASET, d1)
    assert len(lake.list_folder(staged)) == 2
    assert prune_staged(settings.lake_dir, d1 + timedelta(days=1)).days == []  # not closed yet
    assert prune_staged(settings.lake_dir, d1 + timedelta(days=3)).days == []  # the build is too recent
    later = datetime.now(UTC) + RETENTION + timedelta(minutes=1)
    pruned = prune_staged(settings.lake_dir, d1 + timedelta(days=3), now=later)
    assert pruned.days == [d1] and pruned.files == 4
    assert lake.list_folder(staged) == []
    # the day can still be rebuilt (from its own daily file), and the next day still sees both accounts
    build_daily_tables(settings.lake_dir, d1)
    build_daily_tables(settings.lake_dir, d2)
    with read_views(settings) as conn:
        assert conn.execute(
            "SELECT as_of_date, count(DISTINCT account_id) FROM aws.collection_status_history GROUP BY 1 ORDER BY 1"
        ).fetchall() == [(d1, 2), (d2, 2)]


def test_prune_keeps_a_day_with_a_snapshot_newer_than_its_build(settings: Settings) -> None:
    from sm_assets.core.compaction import RETENTION, prune_staged

    d1 = date(2026, 11, 1)
    store_and_build(settings, snapshot(A, d1, ["us-east-1"], hour=5))
    store_snapshot(settings.lake_dir, snapshot(A, d1, ["us-east-1"], hour=9))  # collected after the build
    later = datetime.now(UTC) + RETENTION + timedelta(minutes=1)
    assert prune_staged(settings.lake_dir, d1 + timedelta(days=3), now=later).days == []


def test_readers_of_the_duckdb_file_never_block_a_rebuild(settings: Settings, tmp_path: Path) -> None:
    """A new catalog goes in by rename: a connection holding the old file keeps reading it."""
    from sm_assets.core import catalog

    prepare_storage(settings)
    holder = read_views(settings)
    try:
        # other view definitions (no report views): the file is rebuilt beside it and renamed into place
        assert catalog.ensure_catalog(settings.duckdb_path, settings.lake_dir, {}) is True
        assert holder.execute("SELECT count(*) FROM reports.model_quality_coverage").fetchone() == (0,)
    finally:
        holder.close()
    with read_views(settings) as fresh:
        reports_views = fresh.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'reports'")
        assert reports_views.fetchone() == (0,)


def test_a_lake_written_before_round_2_is_read_as_it_is_then_compacted(tmp_path: Path) -> None:
    """Round 1 stored one raw file per resource type and an unversioned status file per account and day (and
    per-account normalized files, now superseded): the daily tables are built from those as they are, and the
    pruning of closed days removes them once covered."""
    from sm_assets.cli.refresh import days_to_build
    from sm_assets.core.compaction import RETENTION, prune_staged
    from sm_assets.core.snapshots import raw_table, status_table

    settings = Settings.build(data_dir=tmp_path, regions=["us-east-1"], role_name="r")
    root = settings.lake_dir
    old_days = [date(2026, 11, 1), date(2026, 11, 2)]
    for i, day in enumerate(old_days):
        snap = snapshot(A, day, ["us-east-1"], endpoints=1 + i)
        raw = raw_table(snap)
        lake.write_atomic(raw, layout.legacy_raw_file(root, "endpoint", day, A))
        for spec_type in ("model_quality_job_definition", "monitoring_schedule"):  # empty, as round 1 wrote them
            lake.write_atomic(raw.schema.empty_table(), layout.legacy_raw_file(root, spec_type, day, A))
        lake.write_atomic(status_table(snap), layout.legacy_status_file(root, day, A))
        lake.write_atomic(
            pa.table({"x": [1]}),
            layout.join(root, "sagemaker_endpoint", f"snapshot_date={day}", f"account_id={A}.parquet"),
        )
    today = date(2026, 11, 5)
    assert days_to_build(settings, today) == [*old_days, today]  # what the next refresh builds, oldest first
    for day in old_days:
        build_daily_tables(root, day)
    prepare_storage(settings)
    with read_views(settings) as conn:
        assert conn.execute(
            "SELECT as_of_date, count(*) FROM aws.sagemaker_endpoint_history GROUP BY 1 ORDER BY 1"
        ).fetchall() == [(old_days[0], 1), (old_days[1], 2)]
    later = datetime.now(UTC) + RETENTION + timedelta(minutes=1)
    pruned = prune_staged(root, today, now=later)
    assert pruned.days == old_days and pruned.files == 2 * (1 + 3 + 1)  # status, 3 raw types, 1 normalized
    assert not any(Path(root, "raw_sagemaker_endpoint").rglob("*.parquet"))
    with read_views(settings) as conn:  # nothing the views read was touched
        assert conn.execute("SELECT count(*) FROM aws.sagemaker_endpoint").fetchone() == (2,)


def test_the_latest_view_opens_only_the_latest_day(settings: Settings) -> None:
    """The views bind their columns from the schema placeholder, not every file (no union_by_name): an old
    day's file that cannot even be read does not break a query of the latest day."""
    d1, d2 = date(2026, 11, 1), date(2026, 11, 2)
    store_and_build(settings, snapshot(A, d1, ["us-east-1"]), snapshot(A, d2, ["us-east-1"], endpoints=3))
    lake.write_bytes(b"not parquet", layout.daily_file(settings.lake_dir, "sagemaker_endpoint", d1))
    with read_views(settings) as conn:
        assert conn.execute("SELECT count(*) FROM aws.sagemaker_endpoint").fetchone() == (3,)
        with pytest.raises(Exception, match="not parquet|too small|corrupt|magic"):
            conn.execute("SELECT count(*) FROM aws.sagemaker_endpoint_history").fetchone()


def test_older_files_get_new_columns_and_round_1_reports_move_into_date_folders(settings: Settings) -> None:
    """When the views change, files written before a column existed are rewritten with it NULL, and round-1
    report files (report_date=D.parquet) move into their date's folder; both then read through the views."""
    from sm_assets.core import catalog
    from sm_assets.core.lake_upgrade import upgrade_lake
    from sm_assets.core.reports.schemas import SUMMARY_TABLE

    d1 = date(2026, 11, 1)
    store_and_build(settings, snapshot(A, d1, ["us-east-1"], endpoints=2))
    endpoint_file = layout.daily_file(settings.lake_dir, "sagemaker_endpoint", d1)
    stored = lake.read_table(endpoint_file)
    lake.write_atomic(stored.drop_columns(["last_modified_time"]), endpoint_file)  # as if written before that column
    legacy = layout.join(layout.report_dir(settings.lake_dir, SUMMARY_TABLE), f"report_date={d1}.parquet")
    lake.write_atomic(pa.table({"report_date": [d1], "accounts_total": [7]}), legacy)

    upgrade = upgrade_lake(settings.lake_dir)
    assert (upgrade.reports_moved, upgrade.files_rewritten, upgrade.unreadable) == (1, 2, [])
    assert "last_modified_time" in lake.file_columns(endpoint_file)
    assert not lake.list_folder(layout.report_dir(settings.lake_dir, SUMMARY_TABLE)) or all(
        entry.is_dir for entry in lake.list_folder(layout.report_dir(settings.lake_dir, SUMMARY_TABLE))
    )
    catalog.ensure_catalog(settings.duckdb_path, settings.lake_dir, {})  # other views: rebuilt
    prepare_storage(settings)
    with read_views(settings) as conn:
        assert conn.execute("SELECT count(*), count(last_modified_time) FROM aws.sagemaker_endpoint").fetchone() == (
            2,
            0,
        )
        assert conn.execute(
            f"SELECT report_date, accounts_total, fleet_coverage_pct FROM reports.{SUMMARY_TABLE}"
        ).fetchall() == [(d1, 7, None)]
    assert upgrade_lake(settings.lake_dir).files_rewritten == 0  # done once

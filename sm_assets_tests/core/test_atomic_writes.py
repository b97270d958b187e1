"""A writer SIGKILLed in the middle of `lake.write_atomic` leaves the previous snapshot readable.

The writers here are real child processes killed with SIGKILL (no `finally`, no atexit), so whatever they
left on disk is exactly what a crash, an OOM kill or a pulled plug would leave.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sm_assets.core import lake, layout
from sm_assets.core.catalog import reader_connection
from sm_assets.core.collection import AccountSnapshot, RawItem
from sm_assets.core.config import Settings
from sm_assets.core.normalize import normalized_table
from sm_assets.core.schemas import COLLECTION_STATUS_SCHEMA
from sm_assets.core.snapshots import daily_days
from sm_assets.core.specs import MODEL_QUALITY_JOB_DEFINITION_SPEC
from sm_assets.core.storage import prepare_storage

MQ = MODEL_QUALITY_JOB_DEFINITION_SPEC.table

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "111122223333"
REGION = "eu-west-1"
COLLECTED = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)
DAY = COLLECTED.date()
VIEW = f"aws.{MQ.name}"


def old_table() -> pa.Table:
    """The previous snapshot: two real normalized rows."""
    items = []
    for name in ("churn-quality", "fraud-quality"):
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-quality-job-definition/{name}"
        body = {
            "JobDefinitionArn": arn,
            "JobDefinitionName": name,
            "CreationTime": "2026-01-02T03:04:05+00:00",
            "ModelQualityAppSpecification": {"ImageUri": "img", "ProblemType": "Regression"},
            "ModelQualityJobInput": {"GroundTruthS3Input": {"S3Uri": "s3://b/gt"}},
            "ModelQualityJobOutputConfig": {"MonitoringOutputs": []},
            "JobResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/monitor",
        }
        items.append(RawItem("model_quality_job_definition", REGION, arn, name, body, [{"Key": "team", "Value": "a"}]))
    snap = AccountSnapshot(ACCOUNT, COLLECTED, (REGION,), items=items)
    return normalized_table(snap, MQ, "model_quality_job_definition")


def big_table(rows: int) -> pa.Table:
    """A new snapshot large enough that writing it takes a while (built fast, deterministic)."""
    prefix = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-quality-job-definition/def-"
    keys = pa.array([f"{prefix}{i:09d}" for i in range(rows)])
    filler = pa.array([f"{i * 2654435761 % 2**32:08x}" * 8 for i in range(rows)])  # poorly compressible
    columns = {
        "snapshot_date": pa.array([DAY] * rows, pa.date32()),
        "collected_at": pa.array([COLLECTED] * rows, pa.timestamp("us", tz="UTC")),
        "region": pa.array([REGION] * rows),
        "_key": keys,
        "account_id": pa.array([ACCOUNT] * rows),
        "job_definition_arn": keys,
        "job_definition_name": filler,
        "job_resources": filler,
    }
    schema = MQ.arrow_schema()
    return pa.table([columns.get(f.name, pa.nulls(rows, f.type)) for f in schema], schema=schema)


def target(tmp_path: Path) -> Path:
    """The day's model quality table: the file the views read, replaced whole on every rebuild."""
    return Path(layout.daily_file(tmp_path / "lake", MQ.name, DAY))


def partials(path: Path) -> list[Path]:
    return sorted(p for p in path.parent.iterdir() if p.name.endswith(".partial"))


def view_keys(lake_dir: Path) -> tuple[list[str], int, list[str]]:
    """(keys in the latest view, rows in the history view, data files the view glob matches), through the
    DuckDB file's views on a fresh connection."""
    settings = Settings.build(data_dir=lake_dir.parent, regions=[REGION], role_name="r")
    prepare_storage(settings)
    with reader_connection(settings.duckdb_path, settings.lake_dir) as conn:
        keys = [r[0] for r in conn.execute(f"SELECT _key FROM {VIEW} ORDER BY _key").fetchall()]
        (history,) = conn.execute(f"SELECT count(*) FROM {VIEW}_history").fetchone()
        glob = layout.daily_glob(lake_dir, MQ.name)
        files = [r[0] for r in conn.execute("SELECT file FROM glob(?)", [glob]).fetchall()]
    return keys, history, [f for f in files if not f.endswith(layout.PLACEHOLDER_FILE)]


CHILD_PRELUDE = """
import sys, time
from pathlib import Path
sys.path.insert(0, REPO_PATH)
from sm_assets.core import lake
from sm_assets_tests.core.test_atomic_writes import big_table
path, ready, rows = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
table = big_table(rows)

def signal_ready(text):  # atomically, so the parent never reads a half-written signal
    Path(str(ready) + ".tmp").write_text(text)
    Path(str(ready) + ".tmp").replace(ready)
"""

# The child writes real Parquet bytes of the new table, half of them, then stalls mid-write until killed.
CHILD_STALLS_MID_WRITE = (
    CHILD_PRELUDE
    + """
import io
import pyarrow.parquet as pq
real_write_table = pq.write_table

def half_then_stall(table, where, **kwargs):
    buffer = io.BytesIO()
    real_write_table(table, buffer, **kwargs)
    data = buffer.getvalue()
    where.write(data[: len(data) // 2])
    where.flush()
    signal_ready(str(len(data)))
    time.sleep(600)

pq.write_table = half_then_stall
lake.write_atomic(table, path)
"""
)

# The child writes for real; the parent kills it as soon as bytes hit the temp file.
CHILD_WRITES_FOR_REAL = (
    CHILD_PRELUDE
    + """
signal_ready("go")
lake.write_atomic(table, path)
Path(str(ready) + ".done").write_text("done")
"""
)


def start_child(script: str, path: Path, ready: Path, rows: int) -> subprocess.Popen[bytes]:
    code = textwrap.dedent(script).replace("REPO_PATH", repr(str(REPO)))
    return subprocess.Popen(
        [sys.executable, "-c", code, str(path), str(ready), str(rows)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(condition: Callable[[], bool], child: subprocess.Popen[bytes], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if child.poll() is not None:
            raise AssertionError(f"child exited ({child.returncode}) before {what}: {child.stderr.read().decode()}")
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


def sigkill(child: subprocess.Popen[bytes]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    child.stderr.close()


def test_sigkill_mid_write_keeps_previous_snapshot(tmp_path: Path) -> None:
    path = target(tmp_path)
    before = old_table()
    lake.write_atomic(before, path)
    old_bytes = path.read_bytes()
    old_keys, old_rows, _ = view_keys(tmp_path / "lake")
    assert len(old_keys) == old_rows == 2

    ready = tmp_path / "ready"
    child = start_child(CHILD_STALLS_MID_WRITE, path, ready, 20_000)
    wait_for(ready.exists, child, "the child to be mid-write")
    leftovers = partials(path)
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0  # the child really is mid-write
    sigkill(child)

    # The final path still holds the old snapshot, byte for byte, and reads back identical.
    assert path.read_bytes() == old_bytes
    assert lake.read_file(path, MQ.arrow_schema()).equals(before)
    # The killed writer's temp file is still there (SIGKILL runs no cleanup) and is itself torn...
    (leftover,) = partials(path)
    assert leftover.name.startswith(".") and leftover.stat().st_size == int(ready.read_text()) // 2
    with pytest.raises(lake.LakeError):
        lake.read_file(leftover, MQ.arrow_schema())
    # ...but no reader picks it up: the view glob, the latest-snapshot lookup and the views see the old file.
    keys, rows, files = view_keys(tmp_path / "lake")
    assert (keys, rows) == (old_keys, old_rows)
    assert files == [str(path)]
    assert daily_days(tmp_path / "lake", MQ.name) == [DAY]

    # The next successful write replaces the file and still ignores the leftover.
    lake.write_atomic(big_table(10), path)
    keys, rows, files = view_keys(tmp_path / "lake")
    assert rows == 10 and files == [str(path)]


@pytest.mark.parametrize("attempt", range(2))
def test_sigkill_during_a_real_write_never_tears_the_file(tmp_path: Path, attempt: int) -> None:
    """No monkeypatching in the child: kill it the moment bytes appear in its temp file."""
    rows = 400_000
    path = target(tmp_path)
    before = old_table()
    lake.write_atomic(before, path)

    ready = tmp_path / "ready"
    child = start_child(CHILD_WRITES_FOR_REAL, path, ready, rows)
    wait_for(ready.exists, child, "the child to start writing")
    done = Path(str(ready) + ".done")

    def bytes_written() -> bool:
        return done.exists() or any(p.stat().st_size > 0 for p in partials(path) if p.exists())

    wait_for(bytes_written, child, "the child to write bytes")
    sigkill(child)

    # Old or new, never torn: whatever is at the final path reads back whole.
    after = lake.read_file(path, MQ.arrow_schema())
    if partials(path):  # killed before the rename: the previous snapshot is intact
        assert after.equals(before)
    else:  # the write won the race (rare): then it is the complete new snapshot
        assert after.num_rows == rows
    keys, history, files = view_keys(tmp_path / "lake")
    assert files == [str(path)]
    assert history == after.num_rows
    assert keys == sorted(after.column("_key").to_pylist())


# ---------------------------------------------------------------------------------------------
# Corrupt files at the final path


def status_file(tmp_path: Path) -> Path:
    rows = [
        {
            "snapshot_date": DAY,
            "collected_at": COLLECTED,
            "account_id": ACCOUNT,
            "region": f"region-{i}",
            "resource_type": "endpoint",
            "status": "ok",
            "error_code": None,
            "message": "m" * i,
            "item_count": i,
            "api_calls": i,
        }
        for i in range(20)
    ]
    path = layout.status_file(tmp_path / "lake", DAY, ACCOUNT, COLLECTED)
    return lake.write_atomic(pa.Table.from_pylist(rows, schema=COLLECTION_STATUS_SCHEMA), path)


CORRUPTIONS = {
    "truncated-half": lambda b: b[: len(b) // 2],
    "truncated-footer": lambda b: b[:-8],
    "magic-only": lambda b: b[:4],
    "empty": lambda b: b"",
    "garbage": lambda b: b"not parquet\n" * 50,
    "bad-trailing-magic": lambda b: b[:-4] + b"XXXX",
    "corrupt-compressed-page": lambda b: b[:4] + bytes(x ^ 0xFF for x in b[4:200]) + b[200:],
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_final_file_is_a_one_line_lake_error(tmp_path: Path, corruption: str) -> None:
    path = status_file(tmp_path)
    path.write_bytes(CORRUPTIONS[corruption](path.read_bytes()))
    with pytest.raises(lake.LakeError) as excinfo:
        lake.read_file(path, COLLECTION_STATUS_SCHEMA)
    message = str(excinfo.value)
    assert "\n" not in message and str(path) in message and "corrupt or partial" in message


def test_wrong_shape_file_is_a_one_line_lake_error(tmp_path: Path) -> None:
    path = status_file(tmp_path)
    pq.write_table(pa.table({"account_id": ["x"]}), path)
    with pytest.raises(lake.LakeError, match="lacks columns") as excinfo:
        lake.read_file(path, COLLECTION_STATUS_SCHEMA)
    assert "\n" not in str(excinfo.value)
    pq.write_table(pa.table({f.name: pa.array(["not a value"]) for f in COLLECTION_STATUS_SCHEMA}), path)
    with pytest.raises(lake.LakeError, match="unexpected column types") as excinfo:
        lake.read_file(path, COLLECTION_STATUS_SCHEMA)
    assert "\n" not in str(excinfo.value)


def test_corrupt_column_name_in_footer_is_a_lake_error(tmp_path: Path) -> None:
    """One flipped byte in a column name stored in the footer (bit rot, a torn copy) must still be a LakeError."""
    path = status_file(tmp_path)
    original = path.read_bytes()
    name = b"snapshot_date"
    positions = [i for i in range(len(original)) if original.startswith(name, i)]
    assert positions
    for pos in positions:
        corrupt = bytearray(original)
        corrupt[pos] = 0xFF  # not valid UTF-8
        path.write_bytes(bytes(corrupt))
        try:
            table = lake.read_file(path, COLLECTION_STATUS_SCHEMA)
        except lake.LakeError as exc:
            assert "\n" not in str(exc)
        else:  # the corrupted copy was not the one pyarrow reads names from
            assert table.schema.equals(COLLECTION_STATUS_SCHEMA)

"""Small helpers shared by the tests that start servers or subprocesses."""

import os
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment minus anything AWS, sm-assets or Dagster, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_ASSETS_", "DAGSTER_"))}
    env.update(extra)
    return env


def fake_aws_env(endpoint: str) -> dict[str, str]:
    """What points a process at the fake AWS on `endpoint`, with its fake credentials and nothing else."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }


def processes_with_env(marker: str) -> list[int]:
    """Our own stragglers: every live process whose environment holds `marker` (e.g. a unique tmp
    DAGSTER_HOME=...); zombies (exited, waiting to be reaped) are not counted."""
    needle = marker.encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            if needle in (entry / "environ").read_bytes() and stat[stat.rindex(")") + 2] != "Z":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def lake_with(data_dir, snapshots, regions=None, days=None):  # -> Settings
    """A lake holding `snapshots` (stored as the raw asset stores them), the daily tables of `days` (default:
    every snapshot's day) and the DuckDB file's views: what the assets leave behind, without Dagster."""
    from sm_assets.core.config import Settings
    from sm_assets.core.daily_tables import build_daily_tables
    from sm_assets.core.snapshots import store_snapshot
    from sm_assets.core.storage import prepare_storage

    regions = regions or sorted({r for snap in snapshots for r in snap.regions}) or ["us-east-1"]
    settings = Settings.build(data_dir=data_dir, regions=regions, role_name="SageMakerInventoryReadOnly")
    for snap in snapshots:
        store_snapshot(settings.lake_dir, snap)
    for day in sorted(set(days) if days is not None else {snap.snapshot_date for snap in snapshots}):
        build_daily_tables(settings.lake_dir, day)
    prepare_storage(settings)
    return settings


def read_views(settings):  # -> duckdb.DuckDBPyConnection, read-only, over the DuckDB file
    from sm_assets.core.catalog import reader_connection

    return reader_connection(settings.duckdb_path, settings.lake_dir)

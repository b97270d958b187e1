"""The daily schedule on Dagster's own machinery: a real `dagster-daemon` with the queued run coordinator.

The schedule splits the demo organization's accounts into shards of 3 and emits one run per shard; the run
queue starts them (at most 2 at once, by the `sm-assets/collect` tag limit) on the default run launcher
(local processes). Every shard run must succeed and every account partition be materialized exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from sm_assets_tests.helpers import clean_env, fake_aws_env

REPO = Path(__file__).resolve().parents[2]
SHARD_SIZE = 3
TIMEOUT_S = 240


def daemon_instance_yaml() -> dict:
    """The shipped queue settings (deploy/dagster.yaml) on SQLite, with a 1 s dequeue for the test."""
    shipped = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    coordinator = shipped["run_coordinator"]
    coordinator["config"]["dequeue_interval_seconds"] = 1
    limits = coordinator["config"]["tag_concurrency_limits"]
    for limit in limits:
        if limit["key"] == "sm-assets/collect":
            limit["limit"] = 2
    return {
        "run_coordinator": coordinator,
        "run_retries": shipped["run_retries"],
        "telemetry": {"enabled": False},
    }


def seed_schedule_tick(instance: dg.DagsterInstance, env: dict[str, str]) -> None:
    """Mark the code's daily schedule as running since before its last 03:00 UTC tick, so the daemon's first
    scheduler iteration fires that tick at once instead of at the next 03:00 (internal API: the stored
    instigator state is what `dagster schedule start` writes, with an older start time)."""
    from dagster._core.scheduler.instigation import (
        InstigatorState,
        InstigatorStatus,
        InstigatorType,
        ScheduleInstigatorData,
    )
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    saved = dict(os.environ)
    os.environ.update(env)  # the code location reads SM_ASSETS_* at load
    try:
        with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(REPO / "workspace.yaml")])) as ctx:
            location = ctx.create_request_context().get_code_location("sm_assets")
            schedule = next(iter(location.get_repositories().values())).get_schedule("daily_inventory_refresh")
            instance.add_instigator_state(
                InstigatorState(
                    schedule.get_remote_origin(),
                    InstigatorType.SCHEDULE,
                    InstigatorStatus.RUNNING,
                    ScheduleInstigatorData(schedule.cron_schedule, start_timestamp=time.time() - 25 * 3600),
                )
            )
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_daily_schedule_shards_run_through_the_queue(tmp_path: Path) -> None:
    from sm_assets.core.sharding import shards
    from sm_assets.demo.fake_aws import fake_aws_server
    from sm_assets.demo.seed import seed_demo_org

    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(daemon_instance_yaml()))
    with fake_aws_server() as endpoint:
        org = seed_demo_org(endpoint, regions=("us-east-1", "us-west-2"), accounts=9, seed=5)
        accounts = org.active_account_ids
        env = clean_env(
            {
                "DAGSTER_HOME": str(home),
                "SM_ASSETS_DATA_DIR": str(data),
                "SM_ASSETS_REGIONS": "us-east-1,us-west-2",
                "SM_ASSETS_SHARD_SIZE": str(SHARD_SIZE),
                "SM_ASSETS_ACCOUNTS": ",".join(accounts),
                **fake_aws_env(endpoint),
            }
        )
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            instance.add_dynamic_partitions("aws_account", accounts)
            seed_schedule_tick(instance, env)
            log = tmp_path / "daemon.log"
            with open(log, "wb") as out:
                daemon = subprocess.Popen(
                    [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            expected_shards = len(shards(accounts, SHARD_SIZE))
            try:
                runs = wait_for_shards(instance, expected_shards, daemon, log)
            finally:
                os.killpg(daemon.pid, signal.SIGTERM)
                try:
                    daemon.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(daemon.pid, signal.SIGKILL)
                    daemon.wait()

            assert len(runs) == expected_shards == 4  # 10 accounts in shards of 3
            assert {r.tags["sm-assets/shard"] for r in runs} == {f"{i}/{expected_shards}" for i in range(1, 5)}
            assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
            ranges = [
                (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                for r in runs
            ]
            assert sorted(ranges) == sorted((s[0], s[-1]) for s in shards(accounts, SHARD_SIZE))
            key = dg.AssetKey(["raw", "sagemaker_account_snapshot"])
            assert instance.get_materialized_partitions(key) == set(accounts)
            for account in accounts:  # every account partition exactly once
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=key, asset_partitions=[account]), limit=5
                ).records
                assert len(records) == 1, account
            assert max_concurrent(instance, runs) <= 2  # the tag limit held
        finally:
            instance.dispose()


def wait_for_shards(
    instance: dg.DagsterInstance, expected: int, daemon: subprocess.Popen[bytes], log: Path
) -> list[dg.DagsterRun]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            pytest.fail(f"dagster-daemon exited with {daemon.returncode}:\n{log.read_text()[-4000:]}")
        runs = [r for r in instance.get_runs() if r.job_name == "sagemaker_inventory_job"]
        if len(runs) >= expected and all(r.is_finished for r in runs):
            return runs
        time.sleep(1)
    states = [(r.tags.get("sm-assets/shard"), r.status.value) for r in instance.get_runs()]
    pytest.fail(f"shard runs not done after {TIMEOUT_S}s: {states}\n{log.read_text()[-4000:]}")


def max_concurrent(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> int:
    records = {r.dagster_run.run_id: r for r in instance.get_run_records()}
    events = []
    for run in runs:
        record = records[run.run_id]
        events += [(record.start_time, 1), (record.end_time, -1)]
    current = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        current += delta
        peak = max(peak, current)
    return peak

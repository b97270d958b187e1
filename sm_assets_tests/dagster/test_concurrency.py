"""Concurrent runs: no DuckDB lock errors, no lost rows.

Four `dagster job execute` processes collect one account partition each at once, then two runs build the
same day's tables, reports and trend at once (each on the job's default multiprocess executor): they
race for the lake files and the DuckDB file.
"""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from sm_assets.core.specs import RESOURCE_SPECS
from sm_assets.demo.fake_aws import fake_aws_server
from sm_assets.demo.seed import seed_demo_org

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def test_four_concurrent_partition_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with fake_aws_server() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        org = seed_demo_org(endpoint, accounts=4, seed=3)
        accounts = org.collectible_account_ids[:4]
        assert len(accounts) == 4
        env = {**os.environ, "SM_ASSETS_DATA_DIR": str(data), "DAGSTER_HOME": str(home)}
        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.add_dynamic_partitions("aws_account", accounts)
        procs = [
            subprocess.Popen(
                [
                    DAGSTER,
                    "job",
                    "execute",
                    "-m",
                    "sm_assets.definitions",
                    "-j",
                    "sagemaker_inventory_job",
                    "--tags",
                    json.dumps({"dagster/partition": account}),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for account in accounts
        ]
        outputs = [p.communicate(timeout=240)[0] for p in procs]
        day = datetime.now(UTC).date().isoformat()
        daily = [
            subprocess.Popen(
                [
                    DAGSTER,
                    "job",
                    "execute",
                    "-m",
                    "sm_assets.definitions",
                    "-j",
                    "sagemaker_daily_job",
                    "--tags",
                    json.dumps({"dagster/partition": day}),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        daily_outputs = [p.communicate(timeout=240)[0] for p in daily]
    for name, proc, output in zip(
        [*accounts, "daily", "daily"], [*procs, *daily], [*outputs, *daily_outputs], strict=True
    ):
        assert proc.returncode == 0, (name, output[-12000:])
        assert "RUN_SUCCESS" in output
        assert "lock" not in output.lower(), output[-3000:]
        assert "multiprocess" in output.lower()  # the steps ran in child processes
    expected = org.expected_definition_arns()
    with duckdb.connect(str(data / "sm_assets.duckdb"), read_only=True) as conn:
        stored = conn.execute("SELECT account_id, _key FROM aws.sagemaker_model_quality_job_definition").fetchall()
        statuses = conn.execute(
            "SELECT account_id, status, count(*) FROM aws.collection_status GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        schedules = conn.execute("SELECT count(*) FROM aws.sagemaker_monitoring_schedule").fetchone()[0]
    by_account: dict[str, set[str]] = {}
    for account, key in stored:
        by_account.setdefault(account, set()).add(key)
    assert {a: by_account.get(a, set()) for a in accounts} == {a: expected[a] for a in accounts}
    # accounts x regions x resource types, every one collected (tags unreadable in the tags-denied account)
    assert sum(n for _, _, n in statuses) == 4 * 3 * len(RESOURCE_SPECS)
    assert {(a, st) for a, st, _ in statuses} <= {
        (a, "tags_denied" if a in org.tags_denied_account_ids else "ok") for a in accounts
    } | {(a, "ok") for a in accounts}
    assert schedules == sum(len(org.expected_schedule_arns(None)[a]) for a in accounts)

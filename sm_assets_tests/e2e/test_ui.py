"""The Dagster UI end to end: `sm-assets demo`, then `dagster dev` on 127.0.0.1, a run launched through GraphQL
exactly as the UI launches it, and what the UI shows (checks, column schema, lineage, the report's markdown).
Plus a headless Chromium screenshot of the asset graph (artifacts/asset-graph.png).

Everything talks to 127.0.0.1 only: the fake AWS organization runs in this process (moto, on a random port)
and the Dagster processes reach it through AWS_ENDPOINT_URL.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sm_assets.core.specs import MODEL_QUALITY_JOB_DEFINITION_SPEC
from sm_assets_tests.helpers import clean_env, fake_aws_env, free_port, processes_with_env

MODEL_QUALITY_JOB_DEFINITION = MODEL_QUALITY_JOB_DEFINITION_SPEC.table

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
LOCATION = "sm_assets"
JOB = "sagemaker_inventory_job"
DAILY_JOB = "sagemaker_daily_job"
MQ_PATH = ["aws", "sagemaker_model_quality_job_definition"]
RAW_PATH = ["raw", "sagemaker_account_snapshot"]
COVERAGE_PATH = ["reports", "model_quality_coverage"]
GROUPS = ("sagemaker_inventory", "model_quality_reports", "analytics")
RUN_TIMEOUT_S = 150
START_TIMEOUT_S = 120


# ---------------------------------------------------------------------------------------------------------
# Process and HTTP helpers


def stop_group(proc: subprocess.Popen[Any], grace_s: float = 15) -> None:
    """Interrupt a process group started with start_new_session=True, then kill whatever is left of it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to `dagster dev`
            proc.wait(timeout=grace_s)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children that outlive their parent stay in the group
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def graphql(port: int, query: str, variables: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = json.load(response)
    assert not payload.get("errors"), payload["errors"]
    return payload["data"]


def tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------------------
# The fixture: demo data, a fresh fake org, `dagster dev`, one run launched through GraphQL

WORKSPACE_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on UnauthorizedError { message }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on InvalidStepError { invalidStepKey }
    ... on PresetNotFoundError { message }
    ... on ConflictingExecutionParamsError { message }
    ... on NoModeProvidedError { message }
  }
}
"""

RUN_STATUS = """
query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status tags { key value } } } }
"""

RUN_FAILURES = """
query($runId: ID!) {
  logsForRun(runId: $runId) { __typename ... on EventConnection { events {
    __typename ... on MessageEvent { message level } } } }
}
"""


STALE_STATUS = """
query($path: [String!]!, $partition: String!) {
  assetNodeOrError(assetKey: {path: $path}) {
    __typename
    ... on AssetNode {
      staleStatus(partition: $partition)
      staleCauses(partition: $partition) { reason key { path } partitionKey }
    }
  }
}
"""


@dataclass
class UiSession:
    port: int
    data: Path
    home: Path
    run_id: str  # the account partition launched from the UI
    account_id: str
    org: Any
    log: Path
    day: str  # today: the daily tables' partition
    stale_before: dict[str, Any]  # the day's table right after the account run
    daily_run_id: str  # the day's tables and reports, launched from the UI after that

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return graphql(self.port, query, variables)


def wait_until_served(port: int, proc: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster dev exited with {proc.returncode}:\n{tail(log)}")
        try:
            entries = graphql(port, WORKSPACE_QUERY, timeout=10)["workspaceOrError"]["locationEntries"]
            states = {e["name"]: e["locationOrLoadError"] for e in entries}
            state = states.get(LOCATION) or {}
            if state.get("__typename") == "RepositoryLocation":
                return
            if state.get("__typename") == "PythonError":
                pytest.fail(f"code location {LOCATION} failed to load: {state.get('message')}")
            last = repr(states)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = repr(exc)
        time.sleep(1)
    pytest.fail(f"dagster dev did not serve {LOCATION} within {START_TIMEOUT_S}s ({last}):\n{tail(log)}")


def launch_partition_run(port: int, partition: str, job: str = JOB) -> str:
    """What the UI's "Materialize" on one partition of the job sends: launchRun with the partition tag."""
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "jobName": job},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    result = graphql(port, LAUNCH_RUN, {"params": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def wait_for_run(port: int, run_id: str, log: Path) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = "?"
    while time.monotonic() < deadline:
        status = graphql(port, RUN_STATUS, {"runId": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    pytest.fail(f"run {run_id} still {status} after {RUN_TIMEOUT_S}s:\n{tail(log)}")


def require_success(port: int, run_id: str, log: Path) -> None:
    status = wait_for_run(port, run_id, log)
    if status != "SUCCESS":
        events = graphql(port, RUN_FAILURES, {"runId": run_id})["logsForRun"].get("events", [])
        errors = [e.get("message") for e in events if e.get("level") in ("ERROR", "CRITICAL")]
        pytest.fail(f"run {run_id} ended {status}: {errors[-5:]}\n{tail(log)}")


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiSession]:
    import dagster as dg

    from sm_assets.demo.fake_aws import fake_aws_server
    from sm_assets.demo.seed import seed_demo_org

    root = tmp_path_factory.mktemp("ui")
    data = root / "data"
    home = data / "dagster_home"
    log = root / "dagster-dev.log"

    # 1. The demo, exactly as a user runs it (its own fake org lives and dies inside that subprocess).
    demo = subprocess.run(
        [sys.executable, "-m", "sm_assets.cli", "demo"],
        env=clean_env({"SM_ASSETS_DATA_DIR": str(data)}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]

    with pytest.MonkeyPatch.context() as mp:
        # Module scope: the autouse credential fixture is function-scoped, so pin the seed's credentials here.
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_CONFIG_FILE", "/dev/null")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")

        # 2. A fresh fake org that outlives the demo. Its account ids differ from the demo's (random), so
        # register them as partitions next to the demo's before anything is launched.
        with fake_aws_server() as endpoint:
            org = seed_demo_org(endpoint, accounts=3, seed=23)
            instance = dg.DagsterInstance.from_config(str(home))
            try:
                demo_accounts = list(instance.get_dynamic_partitions("aws_account"))
                new = [a for a in org.active_account_ids if a not in demo_accounts]
                instance.add_dynamic_partitions("aws_account", new)
            finally:
                instance.dispose()
            assert len(demo_accounts) >= 8, demo_accounts

            # 3. `dagster dev` from the repo root (workspace.yaml), on a free port of 127.0.0.1.
            port = free_port()
            env = clean_env(
                {
                    "DAGSTER_HOME": str(home),
                    "SM_ASSETS_DATA_DIR": str(data),
                    **fake_aws_env(endpoint),
                    # The aws_account_sensor runs at daemon start: with the accounts pinned it keeps the demo's
                    # partitions (which it would otherwise drop as "gone from the organization").
                    "SM_ASSETS_ACCOUNTS": ",".join(sorted({*demo_accounts, *org.active_account_ids})),
                    "PYTHONUNBUFFERED": "1",
                }
            )
            dagster = [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port)]
            with open(log, "wb") as log_file:
                proc = subprocess.Popen(
                    dagster, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
                )
            try:
                wait_until_served(port, proc, log)
                account_id = org.member_account_ids[0]  # the big one: several pages, every kind of definition
                assert account_id not in org.denied_account_ids
                run_id = launch_partition_run(port, account_id)
                require_success(port, run_id, log)
                day = datetime.now(UTC).date().isoformat()
                stale = graphql(port, STALE_STATUS, {"path": MQ_PATH, "partition": day})["assetNodeOrError"]
                daily_run_id = launch_partition_run(port, day, DAILY_JOB)
                require_success(port, daily_run_id, log)
                yield UiSession(port, data, home, run_id, account_id, org, log, day, stale, daily_run_id)
            finally:
                stop_group(proc)
                for pid in processes_with_env(f"DAGSTER_HOME={home}"):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------------------
# What the UI serves

CHECK_EXECUTIONS = """
query($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 20) {
    runId status evaluation { success }
  }
}
"""

ASSET_CHECKS = """
query($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    __typename
    ... on AssetNode { assetChecksOrError { __typename ... on AssetChecks { checks { name description } } } }
  }
}
"""


@pytest.mark.parametrize(
    ("path", "checks", "run"),
    [
        (RAW_PATH, ["every_region_has_status", "no_access_denied", "no_collection_errors"], "run_id"),
        (
            MQ_PATH,
            [
                "exact_columns_and_types",
                "key_unique_per_snapshot",
                "required_fields_not_null",
                "arn_matches_account_and_region",
            ],
            "daily_run_id",
        ),
    ],
)
def test_asset_checks_are_served_with_results_for_the_run(
    ui: UiSession, path: list[str], checks: list[str], run: str
) -> None:
    node = ui.gql(ASSET_CHECKS, {"path": path})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode"
    served = {c["name"]: c for c in node["assetChecksOrError"]["checks"]}
    assert set(checks) <= set(served), served
    for check in checks:
        assert served[check]["description"]
        executions = ui.gql(CHECK_EXECUTIONS, {"path": path, "check": check})["assetCheckExecutions"]
        ours = [e for e in executions if e["runId"] == getattr(ui, run)]
        assert len(ours) == 1, (check, executions)
        assert ours[0]["status"] == "SUCCEEDED" and ours[0]["evaluation"]["success"] is True, (check, ours)


ASSET_DETAILS = """
query($path: [String!]!, $partition: String!) {
  assetNodeOrError(assetKey: {path: $path}) {
    __typename
    ... on AssetNode {
      groupName
      isPartitioned
      dependencyKeys { path }
      dependedByKeys { path }
      metadataEntries { label __typename ... on TableSchemaMetadataEntry { schema { columns { name type } } } }
      assetMaterializations(partitions: [$partition], limit: 1) {
        runId
        partition
        metadataEntries {
          label
          __typename
          ... on IntMetadataEntry { intValue }
          ... on TableSchemaMetadataEntry { schema { columns { name type } } }
          ... on TableColumnLineageMetadataEntry {
            lineage { columnName columnDeps { assetKey { path } columnName } }
          }
        }
      }
    }
  }
}
"""


def test_an_account_launched_from_the_ui_leaves_the_days_tables_stale(ui: UiSession) -> None:
    assert ui.stale_before["__typename"] == "AssetNode"
    assert ui.stale_before["staleStatus"] == "STALE"
    # the cause: the account partition launched from the UI has a new materialization
    causes = {(tuple(c["key"]["path"]), c["partitionKey"], c["reason"]) for c in ui.stale_before["staleCauses"]}
    assert causes == {(tuple(RAW_PATH), ui.account_id, "has a new materialization")}
    after = ui.gql(STALE_STATUS, {"path": MQ_PATH, "partition": ui.day})["assetNodeOrError"]
    assert after["staleStatus"] == "FRESH"  # the day's run brought them up to date


def test_column_schema_lineage_and_the_run_materialization(ui: UiSession) -> None:
    node = ui.gql(ASSET_DETAILS, {"path": MQ_PATH, "partition": ui.day})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode" and node["groupName"] == "sagemaker_inventory" and node["isPartitioned"]
    expected = [{"name": c.name, "type": c.duckdb_type} for c in MODEL_QUALITY_JOB_DEFINITION.columns]
    assert len(expected) == 14

    # The definition's column schema (what the asset page's "Columns" table shows).
    (schema,) = [e for e in node["metadataEntries"] if e["label"] == "dagster/column_schema"]
    assert schema["__typename"] == "TableSchemaMetadataEntry"
    assert schema["schema"]["columns"] == expected

    # Lineage: the account snapshots feed the table; reports read it.
    upstream = {"/".join(k["path"]) for k in node["dependencyKeys"]}
    assert upstream == {"raw/sagemaker_account_snapshot"}
    downstream = {"/".join(k["path"]) for k in node["dependedByKeys"]}
    assert "reports/model_quality_coverage" in downstream

    # The day's materialization: the UI's daily run, the organization's row count, schema and column lineage.
    (materialization,) = node["assetMaterializations"]
    assert materialization["runId"] == ui.daily_run_id and materialization["partition"] == ui.day
    entries = {e["label"]: e for e in materialization["metadataEntries"]}
    import duckdb

    with duckdb.connect(str(ui.data / "sm_assets.duckdb"), read_only=True) as conn:
        total = conn.execute("SELECT count(*) FROM aws.sagemaker_model_quality_job_definition").fetchone()[0]
        (ours,) = conn.execute(
            "SELECT count(*) FROM aws.sagemaker_model_quality_job_definition WHERE account_id = ?", [ui.account_id]
        ).fetchone()
    assert ours == len(ui.org.expected_definition_arns()[ui.account_id]) > 0  # the UI-launched account is in
    assert entries["dagster/row_count"]["intValue"] == total > ours
    assert entries["dagster/column_schema"]["schema"]["columns"] == expected
    lineage = {e["columnName"]: e["columnDeps"] for e in entries["dagster/column_lineage"]["lineage"]}
    assert lineage["_key"] == [{"assetKey": {"path": RAW_PATH}, "columnName": "describe_json.JobDefinitionArn"}]
    assert lineage["tags"] == [{"assetKey": {"path": RAW_PATH}, "columnName": "tags_json"}]
    assert all(dep["assetKey"]["path"] == RAW_PATH for deps in lineage.values() for dep in deps)
    assert set(lineage) <= {c["name"] for c in expected}


REPORT_MARKDOWN = """
query($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    __typename
    ... on AssetNode {
      dependencyKeys { path }
      assetMaterializations(limit: 1) {
        runId
        partition
        metadataEntries { label __typename ... on MarkdownMetadataEntry { mdStr } ... on UrlMetadataEntry { url } }
      }
    }
  }
}
"""


def test_report_markdown_from_the_demo_is_served(ui: UiSession) -> None:
    node = ui.gql(REPORT_MARKDOWN, {"path": COVERAGE_PATH})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode"
    assert ["aws", "sagemaker_model_quality_job_definition"] in [k["path"] for k in node["dependencyKeys"]]
    (materialization,) = node["assetMaterializations"]  # the day's run launched from the UI
    assert materialization["runId"] == ui.daily_run_id
    entries = {e["label"]: e for e in materialization["metadataEntries"]}
    assert entries["summary"]["__typename"] == "MarkdownMetadataEntry"
    markdown = entries["summary"]["mdStr"]
    assert markdown.startswith(f"## Model quality monitoring: {materialization['partition']}")
    assert "| fleet coverage |" in markdown and "### 10 worst accounts" in markdown
    assert entries["chart_url"]["url"].startswith("file://") and entries["chart_url"]["url"].endswith(".html")


# ---------------------------------------------------------------------------------------------------------
# The asset graph in a real browser

# Every group expanded (the UI's own `expanded` query parameter); ids are "global@global:<group>".
GRAPH_PATH = "/asset-groups?" + urllib.parse.urlencode({"expanded": ",".join(f"global@global:{g}" for g in GROUPS)})
# A 2560x2000 CSS-pixel viewport rendered at 0.625: the whole graph, in a 1600x1250 PNG. At 1600x1000 CSS
# pixels the UI crops the graph (it opens at a fixed zoom).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=2560,2000",
    "--force-device-scale-factor=0.625",
    "--virtual-time-budget=20000",
]


def chromium(args: list[str], user_data: Path, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.Popen(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={user_data}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stdout, stderr = b"", b"timed out"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the browser's helper processes share its group
        proc.wait(timeout=10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_asset_graph_screenshot(ui: UiSession, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: install it (apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} not installed (Debian: apt-get install -y chromium); CI must have it")
    # The first visit shows a "Join the Dagster community" dialog over the graph; dismiss it as the UI does.
    assert ui.gql("mutation { setNuxSeen }")["setNuxSeen"] is True
    url = f"http://127.0.0.1:{ui.port}{GRAPH_PATH}"

    # The rendered DOM proves it is the graph (every asset, check results), not a blank page or an error.
    dom = chromium(["--dump-dom", url], tmp_path / "chromium-dom")
    html = dom.stdout.decode(errors="replace")
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    for name in (*GROUPS, "sagemaker_account_snapshot", "collection_status"):
        assert name in html, f"{name} missing from the rendered asset graph"
    # at the zoom that fits the whole graph Dagster may draw some nodes without their labels
    reports = [
        f"{table}"
        for table in (
            "model_quality_coverage",
            "model_quality_findings",
            "endpoint_monitor_coverage",
            "model_quality_fleet_summary",
        )
    ]
    assert any(name in html for name in reports), "no report asset in the rendered asset graph"
    assert "Passed" in html  # asset check results on the nodes
    assert "Something went wrong" not in html and "PythonError" not in html

    shot = tmp_path / "asset-graph.png"
    result = chromium([f"--screenshot={shot}", url], tmp_path / "chromium-shot")
    assert result.returncode == 0 and shot.exists(), result.stderr.decode(errors="replace")[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 10_000, f"screenshot is only {len(png)} bytes: blank page?"
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "asset-graph.png")

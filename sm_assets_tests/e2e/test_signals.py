"""SIGTERM and SIGINT stop `sm-assets refresh` and `sm-assets demo --serve` with every process they started.

What sends them: docker and systemd send SIGTERM to the main process (`os.kill`); a terminal's Ctrl-C sends
SIGINT to the whole foreground process group (`os.killpg`). Each command runs in a session of its own here
(so the test can do the latter), and every process it starts inherits a unique DAGSTER_HOME: after the stop,
no live process may still carry it.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sm_assets.cli.demo import patched_env
from sm_assets.core.config import DEFAULT_REGIONS, DEFAULT_ROLE_NAME, Settings
from sm_assets.core.storage import prepare_storage
from sm_assets_tests.helpers import clean_env, command_line, fake_aws_env, free_port, processes_with_env

CLI = [sys.executable, "-m", "sm_assets.cli"]
STOP_BUDGET_S = 10.0  # "within a few seconds": the commands force their exit 8 s after the signal
START_TIMEOUT_S = 240
DEFINITIONS = "SELECT account_id, _key, tags FROM aws.sagemaker_model_quality_job_definition ORDER BY ALL"
SENDERS = {
    "SIGTERM to the process (docker, systemd)": (signal.SIGTERM, os.kill),
    "SIGINT to the process group (Ctrl-C)": (signal.SIGINT, os.killpg),
}


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"exited with {proc.returncode} before {what}:\n{log.read_text()[-4000:]}")
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"not {what} within {timeout}s:\n{log.read_text()[-4000:]}")


def stop_and_time(proc: subprocess.Popen[Any], signum: int, send) -> tuple[int, float]:
    started = time.monotonic()
    send(proc.pid, signum)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        code = -999
    return code, time.monotonic() - started


def kill_leftovers(marker: str, proc: subprocess.Popen[Any]) -> None:
    """Whatever a failed test left running (never needed when the product works)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in processes_with_env(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def assert_nothing_left(marker: str, before: dict[int, str]) -> None:
    deadline = time.monotonic() + 2  # SIGKILLed processes vanish in milliseconds
    while (left := processes_with_env(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, {pid: before.get(pid) or command_line(pid) for pid in left}


# ---------------------------------------------------------------------------------------------------------
# The mechanism, in a small child process


def run_child(code: str, signum: int, tmp_path: Path) -> tuple[int, float, str, int]:
    """Run `code` (it prints "ready" and the pid of a grandchild it started), signal it, time its exit."""
    env = clean_env({"SM_ASSETS_TEST_MARKER": str(tmp_path)})
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready"), line + proc.stdout.read()
        grandchild = int(line.split()[1])
        code_, elapsed = stop_and_time(proc, signum, os.kill)
        return code_, elapsed, proc.stdout.read(), grandchild
    finally:
        kill_leftovers(f"SM_ASSETS_TEST_MARKER={tmp_path}", proc)


CHILD = """
import signal, subprocess, sys, time
from sm_assets.cli import stopping
stopping.GRACE_S = 1.5
try:
    with stopping.stop_on_signals():
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        {setup}
        print("ready", sleeper.pid, flush=True)
        {body}
except stopping.Stopped as stop:
    sleeper.kill()
    print("stopped", stop.exit_code, flush=True)
    sys.exit(stop.exit_code)
"""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_raises_stopped_in_the_main_thread(tmp_path: Path, signum: int) -> None:
    code, elapsed, out, grandchild = run_child(CHILD.format(setup="", body="time.sleep(300)"), signum, tmp_path)
    assert (code, out.split()) == (128 + signum, ["stopped", str(128 + signum)]) and elapsed < 1.5
    assert not alive(grandchild)


def test_a_signal_caught_by_someone_else_still_stops_at_the_next_check(tmp_path: Path) -> None:
    """As while Dagster executes a run in process: its handler replaces ours and only records the signal."""
    setup = "signal.signal(signal.SIGTERM, lambda *_: None)"
    body = "time.sleep(0.5)\n        stopping.check()\n        time.sleep(300)"
    code, elapsed, out, grandchild = run_child(CHILD.format(setup=setup, body=body), signal.SIGTERM, tmp_path)
    assert (code, out.split()) == (143, ["stopped", "143"]) and elapsed < 1.5
    assert not alive(grandchild)


def test_a_hung_command_is_forced_out_with_its_children(tmp_path: Path) -> None:
    """Nothing checks, nothing raises (a call that never returns): GRACE_S after the signal the process and
    everything below it are killed."""
    setup = "signal.signal(signal.SIGTERM, lambda *_: None)"
    child = CHILD.format(setup=setup, body="time.sleep(300)")
    code, elapsed, out, grandchild = run_child(child, signal.SIGTERM, tmp_path)
    assert code == 143 and "stopped" not in out and 1.4 < elapsed < 5
    assert not alive(grandchild)


# ---------------------------------------------------------------------------------------------------------
# sm-assets refresh


@dataclass
class SlowOrg:
    endpoint: str  # the fault proxy in front of the fake organization
    slow: threading.Event  # set: every SageMaker call waits before it is forwarded
    sagemaker_calls: list[int]
    baseline: Path  # a data dir after one complete refresh
    truth: list[tuple[str, str, dict[str, str]]]  # what that refresh must show, from the seeded org


def sorted_tags(tags: dict[str, str] | None) -> dict[str, str] | None:
    return None if tags is None else dict(sorted(tags.items()))


def refresh_env(data: Path, endpoint: str) -> dict[str, str]:
    return clean_env(
        {
            "DAGSTER_HOME": str(data / "dagster_home"),
            "SM_ASSETS_DATA_DIR": str(data),
            "SM_ASSETS_COLLECT_PROCESSES": "2",  # collector worker processes, not only threads
            **fake_aws_env(endpoint),
        }
    )


@pytest.fixture(scope="module")
def slow_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlowOrg]:
    from sm_assets.demo.fake_aws import fake_aws_server
    from sm_assets.demo.faults import FaultRules, fault_proxy
    from sm_assets.demo.seed import seed_demo_org

    slow, calls = threading.Event(), [0]

    def before_forward(call, _body: bytes) -> None:
        if call.service == "sagemaker":
            calls[0] += 1
            if slow.is_set():
                time.sleep(0.5)

    # Module scope outlives monkeypatch: the seed's credentials for the whole module.
    credentials = {k: v for k, v in fake_aws_env("").items() if k != "AWS_ENDPOINT_URL"}
    with patched_env({**credentials, "AWS_ENDPOINT_URL": None}), fake_aws_server() as upstream:
        org = seed_demo_org(upstream, accounts=8, seed=3)
        with fault_proxy(upstream, FaultRules(), before_forward=before_forward) as proxy:
            data = tmp_path_factory.mktemp("signals") / "baseline"
            result = subprocess.run(
                [*CLI, "refresh"], env=refresh_env(data, proxy.url), capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
            collectible = set(org.collectible_account_ids)
            tags_denied = set(org.tags_denied_account_ids)  # their tags are unknown: NULL
            truth = sorted(
                (t.account_id, d.arn, None if t.account_id in tags_denied else d.tags)
                for t in org.resources.values()
                if t.account_id in collectible
                for d in t.job_definitions
            )
            truth = [(a, k, sorted_tags(tags)) for a, k, tags in truth]
            yield SlowOrg(proxy.url, slow, calls, data, truth)


@pytest.mark.parametrize("sender", SENDERS)
def test_signal_stops_refresh_and_its_workers_leaving_the_previous_snapshot(
    slow_org: SlowOrg, tmp_path: Path, sender: str
) -> None:
    signum, send = SENDERS[sender]
    data = tmp_path / "data"
    shutil.copytree(slow_org.baseline, data)
    # The copy's DuckDB file still names the baseline's lake: point its views at the copy.
    prepare_storage(Settings.build(data_dir=data, regions=list(DEFAULT_REGIONS), role_name=DEFAULT_ROLE_NAME))
    db = data / "sm_assets.duckdb"
    before = rows(db, DEFINITIONS)
    assert [(a, k, sorted_tags(t)) for a, k, t in before] == slow_org.truth

    env = refresh_env(data, slow_org.endpoint)
    marker = f"DAGSTER_HOME={data / 'dagster_home'}"
    log = tmp_path / "refresh.log"
    slow_org.slow.set()
    try:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*CLI, "refresh"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            calls_before = slow_org.sagemaker_calls[0]
            workers = lambda: [p for p in processes_with_env(marker) if "collect_worker" in command_line(p)]  # noqa: E731
            wait_for(
                lambda: len(workers()) >= 2 and slow_org.sagemaker_calls[0] > calls_before + 4,
                120,
                "collecting in worker processes",
                proc,
                log,
            )
            tree = {pid: command_line(pid) for pid in processes_with_env(marker)}
            code, elapsed = stop_and_time(proc, signum, send)
            output = log.read_text()
            assert code == 128 + signum, output[-4000:]
            assert elapsed < STOP_BUDGET_S, f"took {elapsed:.1f}s\n{output[-4000:]}"
            assert f"sm-assets: stopped by {signal.Signals(signum).name}" in output
            assert_nothing_left(marker, tree)
            # The command's last word is one line; the workers leave the stopping to it (no stack per worker).
            assert output.rstrip().endswith(f"sm-assets: stopped by {signal.Signals(signum).name}")
            assert "collect_worker" not in output and "run_worker" not in output, output[-4000:]
            print(f"{sender}: refresh stopped in {elapsed:.1f}s with {len(tree)} processes")
        finally:
            kill_leftovers(marker, proc)
    finally:
        slow_org.slow.clear()

    # The previous snapshot stays what readers see, through the views and `sm-assets query` alike.
    assert rows(db, DEFINITIONS) == before
    query = subprocess.run(
        [*CLI, "query", "SELECT count(*) AS n FROM aws.sagemaker_model_quality_job_definition"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert query.returncode == 0 and query.stdout.splitlines()[2].strip() == str(len(before)), query.stderr
    # Nothing the stop left behind (locks, staging files, a run marked started) gets in the next refresh's way.
    again = subprocess.run([*CLI, "refresh"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert rows(db, DEFINITIONS) == before


# ---------------------------------------------------------------------------------------------------------
# sm-assets demo --serve


WORKSPACE_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name
    locationOrLoadError { __typename } } } } }
"""


def code_location_loaded(port: int) -> bool:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": WORKSPACE_QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            entries = json.load(response)["data"]["workspaceOrError"]["locationEntries"]
    except (urllib.error.URLError, OSError, KeyError, TypeError, ValueError):
        return False
    return any(e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries)


def port_is_free(port: int) -> bool:
    """Nobody listens on it (closed connections waiting in TIME_WAIT do not count, as for any server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("sender", SENDERS)
def test_signal_stops_demo_serve_and_the_whole_dagster_dev_tree(tmp_path: Path, sender: str) -> None:
    signum, send = SENDERS[sender]
    data, port = tmp_path / "demo", free_port()
    marker = f"DAGSTER_HOME={data / 'dagster_home'}"
    env = clean_env({"SM_ASSETS_DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home")})
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*CLI, "demo", "--serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: code_location_loaded(port), START_TIMEOUT_S, "serving the code location", proc, log)
        tree = {pid: command_line(pid) for pid in processes_with_env(marker)}
        commands = " | ".join(tree.values())
        for part in (" dev ", "dagster_webserver", "dagster._daemon", "grpc"):  # dev, UI, daemon, code server
            assert part in commands, commands
        fake_aws = next(line for line in log.read_text().splitlines() if "fake AWS organization on" in line)
        fake_port = int(fake_aws.rsplit(":", 1)[1])

        code, elapsed = stop_and_time(proc, signum, send)
        output = log.read_text()
        assert code == 0, output[-4000:]  # stopping the UI is how `--serve` ends
        assert elapsed < STOP_BUDGET_S, f"took {elapsed:.1f}s\n{output[-4000:]}"
        assert_nothing_left(marker, tree)
        assert port_is_free(port) and port_is_free(fake_port)
        print(f"{sender}: demo --serve stopped in {elapsed:.1f}s with {len(tree)} processes")
    finally:
        kill_leftovers(marker, proc)

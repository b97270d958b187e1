#!/usr/bin/env python
"""End-to-end collection benchmark for sm-assets against a local fake AWS (benchmarks/fake_aws_bench.py).

One run measures, against the same fleet and the same server (a separate process, so its CPU never counts
as the client's):

  (a) a sequential plain-boto3 loop making the same calls (default botocore retry config): the product's scope,
      every resource type of the registry (RESOURCE_SPECS) listed, described and tagged;
  (b) the bare collector: ``sm_assets.core.collection.collect_accounts`` as the raw asset runs it (worker
      processes, accounts in flight), storing nothing;
  (c) ``sm-assets refresh`` as a subprocess (process start included);
  (d) the limit: max(throttle floor, CPU floor), with the client's CPU per call measured in this run by the
      bare collector against the server in zero-latency / no-throttle mode;
  (e) a second ``sm-assets refresh`` of the unchanged fleet (API-call reduction from incremental collection);
  (g) (e) again with another process holding the DuckDB file open read-only for the whole refresh, alternated
      with plain runs (e'), (g'): a reader must not change the refresh time;
  (f) the day's tables + every report table over 100k and 1M synthetic raw ModelQuality definitions (with the
      endpoints, endpoint configs, other monitor types and schedules around them, in the fleet's proportions),
      peak RSS in child processes.

Every refresh also records its peak resident memory (the refresh process, and with its collector workers).

Server counters are reset between phases. Prints the tables and writes benchmarks/results.md.

The code under test is pinned: the run starts by copying sm_assets/ and benchmarks/ to a temporary directory
and re-runs itself from there with PYTHONPATH pointing at it, so every phase (in-process, the refresh
subprocesses, the workers) runs the same version even while someone edits the working tree.

    .venv/bin/python benchmarks/run_benchmark.py            # full default run (several minutes)
    .venv/bin/python benchmarks/run_benchmark.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.fake_aws_bench import (  # noqa: E402 - needs the repo on sys.path when run as a script
    CAPTURE_CONFIGURED,
    CONFIG_REPLACED,
    DEFAULT_LATENCY_S,
    DEFAULT_RATE,
    DEFAULT_REGIONS,
    DEFAULT_ROLE_NAME,
    DEFINITION_DELETED,
    MODEL_QUALITY_SCHEDULE_RATIO,
    OTHER_MONITOR_SCHEDULED,
    OTHER_MONITOR_SHARE,
    Fleet,
    generate_fleet,
    monitor_prefix,
    type_label,
)
from sm_assets.core.specs import RESOURCE_SPECS  # noqa: E402

RESULTS = Path("benchmarks") / "results.md"  # relative to the checkout the run was started from
QUICK_ACCOUNTS = 5
DEFAULT_SCALE_SIZES = "100000,1000000"
QUICK_SCALE_SIZES = "5000,20000"


def collector_processes() -> int:
    """Worker processes the product's collector uses here (SM_ASSETS_COLLECT_PROCESSES=auto)."""
    from sm_assets.core.config import parse_processes

    return parse_processes("auto")


def usable_cores() -> int:
    """Cores the collector can use: one per worker process (threads share a process's GIL), at most the CPUs."""
    return max(1, min(collector_processes(), len(os.sched_getaffinity(0))))


# --------------------------------------------------------------------------------------------------
# The fake AWS, run as a separate process
# --------------------------------------------------------------------------------------------------


class RemoteBench:
    """``python -m benchmarks.fake_aws_bench`` in a child process, driven through its /__bench endpoints."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy

    def start(self) -> str:
        a = self.args
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.fake_aws_bench",
            f"--accounts={a.accounts}",
            f"--regions={','.join(a.regions)}",
            f"--max-definitions={a.max_definitions}",
            f"--seed={a.seed}",
            f"--role-name={a.role_name}",
            f"--latency-ms={a.latency_ms}",
            f"--rate={a.rate}",
            f"--burst={a.burst}",
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=clean_env()
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("URL "):
            self.stop()
            raise RuntimeError(f"bench server did not start: {line!r}")
        self.url = line.split(" ", 1)[1]
        return self.url

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="GET" if data is None else "POST")
        with self._opener.open(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return self._call("/__bench/stats")

    def fleet(self) -> dict[str, Any]:
        return self._call("/__bench/fleet")

    def reset(self) -> None:
        self._call("/__bench/reset", {})

    def configure(self, **knobs: Any) -> None:
        self._call("/__bench/config", knobs)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment minus anything that could reach real AWS or a real Dagster instance."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_ASSETS_", "DAGSTER_"))}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def aws_env(url: str, region: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


# --------------------------------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------------------------------


@dataclass
class Phase:
    key: str
    label: str
    wall_s: float
    calls: int
    throttled: int
    client_cpu_s: float | None = None
    server_cpu_s: float | None = None
    items: int | None = None
    errors: int | None = None
    notes: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def measured(server: RemoteBench) -> Iterator[dict[str, Any]]:
    """Reset the server's counters, time the block (wall + this process's CPU), then read the counters."""
    out: dict[str, Any] = {}
    server.reset()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out["t0"] = time.time()
    yield out
    out["wall_s"] = time.perf_counter() - wall0
    out["cpu_s"] = time.process_time() - cpu0
    out["stats"] = server.stats()


def settings_for(args: argparse.Namespace, data_dir: Path, processes: int | str = "auto") -> Any:
    """The product's settings; `processes` as SM_ASSETS_COLLECT_PROCESSES (auto: what `sm-assets refresh` uses)."""
    from sm_assets.core.config import Settings

    return Settings.build(
        data_dir=data_dir, regions=args.regions, role_name=args.role_name, collect_processes=processes
    )


def bare_collector(settings: Any) -> tuple[str, Callable[[], tuple[int, int]]]:
    """(description, run) for the product's collector, as the raw asset runs it (worker processes, accounts in
    flight), without Dagster and without storing anything; run() -> (items, non-ok statuses)."""
    from sm_assets.core.accounts import resolve_account_ids
    from sm_assets.core.collection import MAX_ACCOUNTS_IN_FLIGHT, collect_accounts

    n_proc = settings.collect_processes
    detail = f", {MAX_ACCOUNTS_IN_FLIGHT} accounts in flight, {n_proc} worker process{'es' if n_proc > 1 else ''}"

    def run() -> tuple[int, int]:
        snaps = list(collect_accounts(resolve_account_ids(settings), settings).values())
        return sum(len(s.items) for s in snaps), sum(1 for s in snaps for st in s.statuses if st.status != "ok")

    return f"collect_accounts (concurrent{detail})", run


def phase_calibrate(server: RemoteBench, args: argparse.Namespace, tmp: Path) -> Phase:
    """Client CPU per call: the bare collector against a zero-latency, never-throttling server."""
    from sm_assets.core.accounts import resolve_account_ids
    from sm_assets.core.collection import collect_account

    # One process: the CPU per call is measured as this process's CPU time.
    settings = settings_for(args, tmp / "calibrate", processes=1)
    server.configure(latency_s=0, rate=None)
    try:
        # Warm-up: botocore loads and caches its service models on first use.
        collect_account(resolve_account_ids(settings)[0], settings)
        description, run = bare_collector(settings)
        with measured(server) as m:
            items, errors = run()
        setup_ms = account_setup_cpu_ms(settings)
    finally:
        server.configure(latency_s=args.latency_ms / 1000, rate=args.rate, burst=args.burst)
    s = m["stats"]
    per_call_ms = 1000 * m["cpu_s"] / max(1, s["calls"])
    server_ms = 1000 * s["server_cpu_s"] / max(1, s["calls"])
    return Phase(
        "cpu",
        "CPU calibration: bare collector, zero latency, no throttling",
        m["wall_s"],
        s["calls"],
        s["throttled"],
        m["cpu_s"],
        s["server_cpu_s"],
        items,
        errors,
        [
            description,
            f"client CPU {per_call_ms:.2f} ms/call; server CPU {server_ms:.2f} ms/call",
            f"account_setup_cpu_ms={setup_ms:.1f}",
        ],
        {**s, "account_setup_cpu_ms": setup_ms},
    )


def account_setup_cpu_ms(settings: Any, repeats: int = 5) -> float:
    """CPU the collector spends opening one account, whatever this checkout's implementation: collect_account
    with no resource specs assumes the role and builds the session and the per-region clients, and calls nothing
    else. Includes its one AssumeRole call."""
    import boto3

    from sm_assets.core.accounts import resolve_account_ids
    from sm_assets.core.collection import collect_account
    from sm_assets.core.credentials import sts_client

    account_ids = resolve_account_ids(settings)
    sts = sts_client(boto3.Session(), settings)  # shared, as collect_accounts does
    start = time.process_time()
    for i in range(repeats):
        collect_account(account_ids[i % len(account_ids)], settings, (), sts_client=sts)
    return 1000 * (time.process_time() - start) / repeats


def baseline_loop(regions: Sequence[str], role_name: str) -> tuple[int, int]:
    """The obvious sequential boto3 script: default clients, no threads, the product's scope (every resource type
    of the registry: list every page, describe each resource, read every page of its tags). Returns (items,
    failed calls)."""
    import boto3
    from botocore.exceptions import ClientError

    items = failures = 0
    session = boto3.Session()
    org = session.client("organizations", region_name="us-east-1")
    accounts = [
        a["Id"]
        for page in org.get_paginator("list_accounts").paginate()
        for a in page["Accounts"]
        if (a.get("State") or a.get("Status")) == "ACTIVE"
    ]
    sts = session.client("sts", region_name=regions[0])
    for account in sorted(accounts):
        try:
            creds = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/{role_name}", RoleSessionName="sm-assets-baseline"
            )["Credentials"]
        except ClientError:
            failures += 1
            continue
        member = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        for region in regions:
            sm = member.client("sagemaker", region_name=region)
            for spec in RESOURCE_SPECS:
                try:
                    for page in sm.get_paginator(spec.list_operation).paginate(**spec.list_params):
                        for summary in page[spec.list_result_key]:
                            try:
                                if spec.describe_operation:
                                    describe = getattr(sm, spec.describe_operation)
                                    describe(**{spec.describe_param: summary[spec.list_name_field]})
                                if spec.with_tags:
                                    tag_pages = sm.get_paginator("list_tags").paginate(
                                        ResourceArn=summary[spec.list_arn_field]
                                    )
                                    [t for p in tag_pages for t in p["Tags"]]
                                items += 1
                            except ClientError:
                                failures += 1
                except ClientError:
                    failures += 1
    return items, failures


def expected_resources(fleet: Fleet) -> int:
    return fleet.totals()["resources"]


def phase_baseline(server: RemoteBench, args: argparse.Namespace) -> Phase:
    with measured(server) as m:
        items, failures = baseline_loop(args.regions, args.role_name)
    notes = ["plain boto3, one call at a time, default (legacy, 5 attempts) retries"]
    if failures:
        notes.append(f"{failures} calls failed after retries")
    return collection_phase("a", "(a) sequential boto3 loop", m, items, failures, notes, args)


def collection_phase(
    key: str, label: str, m: dict[str, Any], items: int, errors: int, notes: list[str], args: argparse.Namespace
) -> Phase:
    """A collection phase from its measurement, with the slowest account-region in the notes."""
    s = m["stats"]
    slowest = slowest_bucket(s, args)
    if slowest:
        notes.append(slowest)
    wall, cpu = m["wall_s"], m["cpu_s"]
    return Phase(key, label, wall, s["calls"], s["throttled"], cpu, s["server_cpu_s"], items, errors, notes, s)


def slowest_bucket(stats: dict[str, Any], args: argparse.Namespace) -> str | None:
    """The account-region whose calls took longest (first to last call), against its throttle floor."""
    buckets = stats.get("by_bucket", {})
    if not buckets:
        return None
    key, b = max(buckets.items(), key=lambda kv: kv[1]["last"] - kv[1]["first"])
    answered = b["calls"] - b["throttled"]
    floor = max(0.0, (answered - args.burst) / args.rate) if args.rate else 0.0
    spans = sorted(v["last"] - v["first"] for v in buckets.values())
    return (
        f"slowest account-region {key}: {b['last'] - b['first']:.1f}s for {answered} calls "
        f"(+{b['throttled']} throttled; its throttle floor {floor:.1f}s), median account-region "
        f"{statistics.median(spans):.1f}s"
    )


def phase_collector(server: RemoteBench, args: argparse.Namespace, tmp: Path) -> Phase:
    settings = settings_for(args, tmp / "collector")
    description, run = bare_collector(settings)
    with measured(server) as m:
        items, errors = run()
    notes = [description]
    if errors:
        notes.append(f"{errors} (region, type) statuses not ok")
    return collection_phase("b", "(b) bare collector", m, items, errors, notes, args)


_ACCOUNT_LINE = re.compile(r"^\[(\d+)/(\d+)\] (\d{12}): (.*)$")


def sm_assets_command() -> list[str]:
    script = Path(sys.executable).with_name("sm-assets")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sm_assets.cli"]


def tree_rss_mib(root_pid: int) -> float:
    """Resident memory of a process and all its descendants (from /proc), in MiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            status = (entry / "status").read_text()
        except (OSError, ValueError, IndexError):
            continue
        pid = int(entry.name)
        children.setdefault(ppid, []).append(pid)
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        rss[pid] = int(match.group(1)) if match else 0
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total / 1024


class TreeRssSampler:
    """Samples the resident memory of a process tree (the refresh and its collector workers) every 0.2 s."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.peak_mib, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_mib = max(self.peak_mib, tree_rss_mib(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mib


READER_SCRIPT = (
    "import sys, duckdb\n"
    "conn = duckdb.connect(sys.argv[1], read_only=True)\n"
    "conn.execute('SELECT count(*) FROM aws.collection_status').fetchall()\n"
    "print('holding', flush=True)\n"
    "sys.stdin.readline()\n"
)


@contextlib.contextmanager
def reader_holding(duckdb_file: Path) -> Iterator[None]:
    """A process holding the DuckDB file open read-only (a notebook, a BI tool) for the whole block."""
    proc = subprocess.Popen(
        [sys.executable, "-c", READER_SCRIPT, str(duckdb_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env=clean_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        yield
        if proc.poll() is not None:
            raise RuntimeError("the reader let go of the DuckDB file before the refresh ended")
    finally:
        proc.communicate("done\n", timeout=60)


def phase_refresh(
    server: RemoteBench,
    args: argparse.Namespace,
    data_dir: Path,
    key: str,
    label: str,
    log_dir: Path,
    with_reader: bool = False,
) -> Phase:
    env = clean_env(
        {
            **aws_env(server.url, args.regions[0]),
            "SM_ASSETS_DATA_DIR": str(data_dir),
            "SM_ASSETS_REGIONS": ",".join(args.regions),
            "SM_ASSETS_ROLE_NAME": args.role_name,
            "DAGSTER_HOME": str(data_dir / "dagster_home"),
        }
    )
    (data_dir / "dagster_home").mkdir(parents=True, exist_ok=True)
    lines: list[tuple[float, str]] = []
    stderr_path = log_dir / f"refresh-{key}.stderr.log"
    reader = reader_holding(data_dir / "sm_assets.duckdb") if with_reader else contextlib.nullcontext()
    with reader, measured(server) as m, open(stderr_path, "w") as stderr:
        start = time.time()
        proc = subprocess.Popen(
            [*sm_assets_command(), "refresh"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        sampler = TreeRssSampler(proc.pid)
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.time() - start, line.rstrip("\n")))
        peak_tree_mib = sampler.stop()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        end = time.time() - start
    (log_dir / f"refresh-{key}.stdout.log").write_text("\n".join(f"{t:8.2f}s {text}" for t, text in lines) + "\n")
    s = m["stats"]
    accounts = [_ACCOUNT_LINE.match(text) for _, text in lines]
    collected = [mm for mm in accounts if mm]
    failed = sum(1 for mm in collected if "FAILED" in mm[4] or "problems" in mm[4])
    items = sum(sum(int(n) for n in re.findall(r"(?:^|, )(\d+) [a-z ]+", mm[4].split(";")[0])) for mm in collected)
    notes = [f"exit code {proc.returncode}"]
    if with_reader:
        notes.append("a reader held the DuckDB file open read-only throughout")
    notes.append(
        f"peak RSS {usage.ru_maxrss / 1024:,.0f} MiB (refresh process), {peak_tree_mib:,.0f} MiB with its worker "
        "processes (sampled every 0.2 s)"
    )
    if proc.returncode != 0:
        tail = stderr_path.read_text(errors="replace").strip().splitlines()[-15:]
        print(f"  refresh exited {proc.returncode}; stderr tail:\n    " + "\n    ".join(tail), flush=True)
    try:
        dagster, _ = run_worker(["--_worker", "dagster-steps", "--_lake", str(data_dir / "dagster_home"),
                                 "--_day", str(m["t0"])])  # fmt: skip
    except RuntimeError as exc:  # the breakdown is a nice-to-have; the measurement stands without it
        print(f"  (no Dagster step breakdown: {exc})", flush=True)
        dagster = None
    notes += refresh_breakdown(lines, end, s, m["t0"], dagster)
    slowest = slowest_bucket(s, args)
    if slowest:
        notes.append(slowest)
    return Phase(
        key,
        label,
        m["wall_s"],
        s["calls"],
        s["throttled"],
        usage.ru_utime + usage.ru_stime,
        s["server_cpu_s"],
        items,
        failed,
        notes,
        {
            **s,
            "lines": lines,
            "end_s": end,
            "returncode": proc.returncode,
            "peak_rss_mib": usage.ru_maxrss / 1024,
            "peak_tree_rss_mib": peak_tree_mib,
        },
    )


def refresh_breakdown(
    lines: list[tuple[float, str]], end: float, stats: dict[str, Any], t0: float, dagster: dict[str, Any] | None
) -> list[str]:
    """Where a refresh's wall time went: its stdout timestamps, the server's first/last SageMaker call, and the
    step timings of the Dagster runs it made (read from its DAGSTER_HOME)."""

    def first(prefix: str) -> float | None:
        return next((t for t, text in lines if text.startswith(prefix)), None)

    t_accounts, t_done, t_reports = first("accounts:"), first("done:"), first("tables and reports for")
    out: list[str] = []
    if t_accounts is not None:
        out.append(f"start + account discovery {t_accounts:.1f}s")
    buckets = stats.get("by_bucket", {}).values()
    api = (max(b["last"] for b in buckets) - min(b["first"] for b in buckets)) if buckets else None
    if t_accounts is not None and t_done is not None:
        text = f"inventory {t_done - t_accounts:.1f}s"
        if api is not None:
            text += f" (SageMaker calls in flight {api:.1f}s of it, first to last call)"
        out.append(text)
    for run in (dagster or {}).get("runs", []):
        steps = ", ".join(f"{key} {took:.1f}s" for key, _, took in run["steps"])
        out.append(
            f"Dagster run {run['job']} {run['span_s']:.1f}s: {run['before_first_step_s']:.1f}s before its first step "
            f"({run['planned']} materializations planned), then {steps}; {run['materializations']} materialization "
            "events"
        )
    times = [t for t, text in lines if _ACCOUNT_LINE.match(text)]
    if len(times) >= 3:
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        if statistics.median(gaps) > 0.2:  # one Dagster run per account (older CLI)
            out.append(f"one Dagster run per account: {statistics.median(gaps):.2f}s per account (median)")
    if t_done is not None and t_reports is not None:
        out.append(f"daily tables + reports job {t_reports - t_done:.1f}s")
    if t_reports is not None:
        out.append(f"exit {end - t_reports:.1f}s")
    return out


def worker_dagster_steps(home: Path, since: float) -> dict[str, Any]:
    """Step timings of the Dagster runs created in ``home`` since ``since`` (epoch seconds)."""
    import warnings

    warnings.filterwarnings("ignore")
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef  # not re-exported by the public dagster package

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    runs = []
    for record in instance.get_run_records():
        if record.create_timestamp.timestamp() < since:
            continue
        logs = instance.all_logs(record.dagster_run.run_id)
        if not logs:
            continue
        t0 = logs[0].timestamp
        starts: dict[str, float] = {}
        ends: dict[str, float] = {}
        counts: dict[str, int] = {}
        for entry in logs:
            event = entry.dagster_event
            if event is None:
                continue
            kind = event.event_type_value
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "STEP_START" and entry.step_key:
                starts[entry.step_key] = entry.timestamp
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and entry.step_key:
                ends[entry.step_key] = entry.timestamp
        steps = [(k, starts[k] - t0, ends.get(k, starts[k]) - starts[k]) for k in sorted(starts, key=starts.get)]
        runs.append(
            {
                "job": record.dagster_run.job_name,
                "created": record.create_timestamp.timestamp(),
                "span_s": logs[-1].timestamp - t0,
                "before_first_step_s": min(starts.values()) - t0 if starts else 0.0,
                "steps": steps,
                "planned": counts.get("ASSET_MATERIALIZATION_PLANNED", 0),
                "materializations": counts.get("ASSET_MATERIALIZATION", 0),
            }
        )
    return {"runs": sorted(runs, key=lambda r: r["created"])}


# --------------------------------------------------------------------------------------------------
# The limit
# --------------------------------------------------------------------------------------------------


@dataclass
class Limit:
    seconds: float
    throttle_floor_s: float
    cpu_floor_s: float
    busiest_bucket_calls: int
    calls: int
    cpu_per_call_ms: float
    cores: int
    latency_chain_s: float


def compute_limit(fleet: Fleet, args: argparse.Namespace, calibration: Phase) -> Limit:
    expected = fleet.expected_calls()
    busiest = max(expected["by_bucket"].values(), default=0)
    # A token bucket admits `burst` calls at once, then `rate` per second: the busiest bucket needs
    # (calls - burst) / rate seconds however the client is built.
    throttle = max(0.0, (busiest - args.burst) / args.rate) if args.rate and args.rate > 0 else 0.0
    cpu_per_call = (calibration.client_cpu_s or 0.0) / max(1, calibration.calls)
    cores = usable_cores()
    cpu = expected["total"] * cpu_per_call / cores
    return Limit(
        seconds=max(throttle, cpu),
        throttle_floor_s=throttle,
        cpu_floor_s=cpu,
        busiest_bucket_calls=busiest,
        calls=expected["total"],
        cpu_per_call_ms=1000 * cpu_per_call,
        cores=cores,
        latency_chain_s=busiest * args.latency_ms / 1000,
    )


# --------------------------------------------------------------------------------------------------
# (f) Normalize + reports at scale
# --------------------------------------------------------------------------------------------------

_PROBLEMS = ("BinaryClassification", "Regression", "MulticlassClassification")
_INSTANCES = ("ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge", "ml.m5.2xlarge")
_PURPOSES = ("churn", "fraud-score", "ltv", "demand-forecast", "search-ranking", "credit-risk", "anomaly", "ranking")
_ENDPOINT_STATUSES = ("InService",) * 7 + ("Creating", "Failed", "OutOfService", "Updating")
_SCHEDULE_STATUSES = ("Scheduled",) * 6 + ("Stopped", "Failed", "Pending")
_EXECUTIONS = ("Completed", "Completed", "CompletedWithViolations", "Failed")


def _tag_pool(seed: int, size: int = 64) -> list[str | None]:
    import random

    rng = random.Random(seed)
    keys = ("team", "env", "cost-center", "owner", "project", "data-classification", "model-version", "managed-by")
    pool: list[str | None] = []
    for _ in range(size):
        tags = [{"Key": k, "Value": f"{k}-{rng.randint(1, 40)}"} for k in rng.sample(keys, rng.randint(0, 8))]
        pool.append(json.dumps(tags, separators=(",", ":")))
    return pool


def synthetic_lake(lake_dir: Path, n_definitions: int, regions: Sequence[str], per_account: int, seed: int) -> dict:
    """Write one day of account snapshots holding ``n_definitions`` raw ModelQuality definitions and, in the
    benchmark fleet's proportions (benchmarks/fake_aws_bench.py), everything the day's tables build around them:
    an endpoint per definition with its endpoint config (CONFIG_REPLACED of them with an older config too), a
    ModelQuality schedule for MODEL_QUALITY_SCHEDULE_RATIO of the definitions, DataQuality / ModelBias /
    ModelExplainability definitions and schedules on OTHER_MONITOR_SHARE of the endpoints, and the collection
    status, exactly as the raw asset stores them: one raw file per account (every resource type, a row group
    each) and its status file. Vectorized: string columns are assembled with Arrow compute, one chunk of
    accounts at a time. Returns the rows written per resource type (+ "definitions": the ModelQuality ones)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from sm_assets.core import lake, layout
    from sm_assets.core.schemas import COLLECTION_STATUS_SCHEMA, RAW_SCHEMA
    from sm_assets.core.specs import (
        ENDPOINT_CONFIG_SPEC,
        ENDPOINT_SPEC,
        JOB_DEFINITION_SPECS,
        MONITORING_SCHEDULE_SPEC,
    )

    rng = np.random.default_rng(seed)
    n_accounts = max(1, -(-n_definitions // per_account))
    accounts = sorted({f"{n:012d}" for n in rng.integers(10**11, 10**12, 2 * n_accounts + 10)})
    accounts = [accounts[i] for i in rng.permutation(len(accounts))[:n_accounts]]
    now = datetime.now(UTC).replace(microsecond=0)
    now_epoch = int(now.timestamp())
    day = now.date()
    tag_pool = pa.array(_tag_pool(seed), pa.string())
    n_regions = len(regions)
    region_arr = pa.array(list(regions), pa.string())
    resource_types = [spec.resource_type for spec in RESOURCE_SPECS]
    counts: dict[str, int] = {t: 0 for t in resource_types} | {"files": 0}

    def choice(options: Sequence[str], n: int) -> pa.Array:
        return pc.take(pa.array(list(options), pa.string()), pa.array(rng.integers(0, len(options), n)))

    def flag(p: float, n: int) -> np.ndarray:
        return rng.random(n) < p

    def iso(epoch: np.ndarray) -> pa.Array:
        # Whole seconds, formatted as the collector stores them (datetime.isoformat of a UTC time).
        ts = pa.array(epoch.astype("int64"), pa.timestamp("s", tz="UTC"))
        return pc.strftime(ts, format="%Y-%m-%dT%H:%M:%S+00:00")

    def cat(*parts: Any) -> pa.Array:
        return pc.binary_join_element_wise(*parts, "")

    def optional(mask: np.ndarray, text: pa.Array) -> pa.Array:
        return pc.if_else(pa.array(mask), text, "")

    def json_bool(mask: np.ndarray) -> pa.Array:
        return pc.if_else(pa.array(mask), "true", "false")

    def tags(n: int) -> pa.Array:
        return pc.take(tag_pool, pa.array(rng.integers(0, len(tag_pool), n)))

    def raw(base: dict[str, Any], sel: np.ndarray, resource_type: str, arn: pa.Array, name: pa.Array,
            describe: pa.Array) -> tuple[pa.Table, np.ndarray, np.ndarray]:  # fmt: skip
        """A resource type's raw rows for the base rows `sel` (ascending: accounts stay in order), with the
        account and region index of each row."""
        n = len(arn)
        table = pa.table(
            {
                "snapshot_date": pa.array([day] * n, pa.date32()) if n else pa.array([], pa.date32()),
                "collected_at": pa.array([now] * n, RAW_SCHEMA.field("collected_at").type),
                "account_id": pc.take(base["account"], pa.array(sel)),
                "region": pc.take(base["region"], pa.array(sel)),
                "resource_type": pa.array([resource_type] * n, pa.string()),
                "arn": arn,
                "name": name,
                "describe_json": describe,
                "tags_json": tags(n),
            },
            schema=RAW_SCHEMA,
        )
        return table, base["acct_idx"][sel], base["reg_idx"][sel]

    def definitions(base: dict[str, Any], monitor_type: str, sel: np.ndarray, name: pa.Array) -> tuple:
        """Describe{T}JobDefinition answers of type T on the endpoints of the base rows `sel`."""
        m, t = len(sel), monitor_type
        spec = JOB_DEFINITION_SPECS[t]
        account, region, bucket, endpoint, prefix, num = (
            pc.take(base[k], pa.array(sel)) for k in ("account", "region", "bucket", "endpoint", "arn_prefix", "num")
        )
        arn = cat(prefix, spec.resource_type.replace("_", "-"), "/", name)
        created = iso(base["created"][sel] + rng.integers(600, 86400 * 30, m))
        kms = cat("arn:aws:kms:", region, ":", account, ":key/", pc.utf8_lpad(num, 32, "0"))
        if t in ("ModelBias", "ModelExplainability"):  # SageMaker Clarify, configured by an analysis config
            app = cat('{"ImageUri":"205585389593.dkr.ecr.', region, '.amazonaws.com/sagemaker-clarify-processing:1.0",'
                      '"ConfigUri":"', bucket, "/clarify/", name, '/analysis.json"}')  # fmt: skip
        else:
            problem = cat(',"ProblemType":"', choice(_PROBLEMS, m), '"') if t == "ModelQuality" else ""
            app = cat('{"ImageUri":"156813124566.dkr.ecr.', region, '.amazonaws.com/sagemaker-model-monitor-analyzer"',
                      problem, "}")  # fmt: skip
        attributes = {
            "ModelQuality": ',"InferenceAttribute":"prediction","ProbabilityAttribute":"probability",'
            '"ProbabilityThresholdAttribute":0.5',
            "DataQuality": "",
            "ModelBias": ',"FeaturesAttribute":"features","InferenceAttribute":"prediction",'
            '"ProbabilityAttribute":"probability","ProbabilityThresholdAttribute":0.5',
            "ModelExplainability": ',"FeaturesAttribute":"features","InferenceAttribute":"prediction"',
        }[t]
        ground_truth = (
            cat(',"GroundTruthS3Input":{"S3Uri":"', bucket, "/ground-truth/", name, '"}')
            if t in ("ModelQuality", "ModelBias")
            else ""
        )
        statistics = (
            cat(',"StatisticsResource":{"S3Uri":"', bucket, "/baselines/", name, '/statistics.json"}')
            if t == "DataQuality"
            else ""
        )
        describe = cat(
            '{"JobDefinitionArn":"', arn, '","JobDefinitionName":"', name, '","CreationTime":"', created,
            f'","{t}AppSpecification":', app,
            f',"{t}JobInput":{{"EndpointInput":{{"EndpointName":"', endpoint,
            '","LocalPath":"/opt/ml/processing/input/endpoint","S3InputMode":"File",'
            '"S3DataDistributionType":"FullyReplicated"' + attributes + "}", ground_truth,
            f'}},"{t}JobOutputConfig":{{"MonitoringOutputs":[{{"S3Output":{{"S3Uri":"', bucket,
            "/monitoring/", name, '","LocalPath":"/opt/ml/processing/output","S3UploadMode":"EndOfJob"}}]',
            optional(flag(0.4, m), cat(',"KmsKeyId":"', kms, '"')),
            '},"JobResources":{"ClusterConfig":{"InstanceCount":', choice(("1", "1", "1", "2", "3"), m),
            ',"InstanceType":"', choice(_INSTANCES, m), '","VolumeSizeInGB":', choice(("20", "30", "50"), m),
            optional(flag(0.4, m), cat(',"VolumeKmsKeyId":"', kms, '"')),
            '}},"RoleArn":"arn:aws:iam::', account, ':role/SageMakerModelMonitorExecutionRole"',
            optional(
                flag(0.7, m),
                cat(f',"{t}BaselineConfig":{{"BaseliningJobName":"', name,
                    '-baseline","ConstraintsResource":{"S3Uri":"', bucket, "/baselines/", name,
                    '/constraints.json"}', statistics, "}"),
            ),
            optional(
                flag(0.6, m),
                cat(',"NetworkConfig":{"EnableInterContainerTrafficEncryption":', json_bool(flag(0.6, m)),
                    ',"EnableNetworkIsolation":', json_bool(flag(0.5, m)),
                    optional(flag(0.5, m),
                             cat(',"VpcConfig":{"SecurityGroupIds":["sg-0', num, '"],"Subnets":["subnet-0', num,
                                 'a","subnet-0', num, 'b"]}')),
                    "}"),
            ),
            optional(flag(0.5, m), pa.array([',"StoppingCondition":{"MaxRuntimeInSeconds":3600}'] * m)),
            "}",
        )  # fmt: skip
        return raw(base, sel, spec.resource_type, arn, name, describe)

    def schedules(base: dict[str, Any], monitor_type: str, sel: np.ndarray, definition: pa.Array) -> tuple:
        """DescribeMonitoringSchedule answers: hourly schedules of type T running `definition`; the last run
        mostly within the hour, now and then hours old (stale), failed or never."""
        m, t = len(sel), monitor_type
        endpoint, prefix = (pc.take(base[k], pa.array(sel)) for k in ("endpoint", "arn_prefix"))
        name = cat(definition, "-hourly")
        arn = cat(prefix, "monitoring-schedule/", name)
        created = iso(base["created"][sel] + 1200)
        scheduled = iso(now_epoch - now_epoch % 3600 - 3600 * rng.choice(np.array([0, 0, 0, 0, 1, 5]), m))
        describe = cat(
            '{"MonitoringScheduleArn":"', arn, '","MonitoringScheduleName":"', name,
            '","MonitoringScheduleStatus":"', choice(_SCHEDULE_STATUSES, m), f'","MonitoringType":"{t}",'
            '"CreationTime":"', created, '","LastModifiedTime":"', created,
            '","MonitoringScheduleConfig":{"ScheduleConfig":{"ScheduleExpression":"cron(0 * ? * * *)"},'
            '"MonitoringJobDefinitionName":"', definition, f'","MonitoringType":"{t}"}},"EndpointName":"',
            endpoint, '"',
            optional(
                flag(0.8, m),
                cat(',"LastMonitoringExecutionSummary":{"MonitoringScheduleName":"', name, '","ScheduledTime":"',
                    scheduled, '","CreationTime":"', scheduled, '","LastModifiedTime":"', scheduled,
                    '","MonitoringExecutionStatus":"', choice(_EXECUTIONS, m), '","EndpointName":"', endpoint,
                    '","MonitoringJobDefinitionName":"', definition, f'","MonitoringType":"{t}"}}'),
            ),
            "}",
        )  # fmt: skip
        return raw(base, sel, MONITORING_SCHEDULE_SPEC.resource_type, arn, name, describe)

    def endpoints_and_configs(base: dict[str, Any], n: int) -> tuple[tuple, tuple]:
        """DescribeEndpoint answers for every base row and DescribeEndpointConfig answers for their configs
        (an endpoint that moved to a second config still has its first listed); the endpoint's
        DataCaptureConfig summary follows the config it runs."""
        replaced = flag(CONFIG_REPLACED, n)
        cfg_sel = np.repeat(np.arange(n), 1 + replaced)  # v1 for every endpoint, v2 for the replaced ones
        k = len(cfg_sel)
        second = np.r_[False, cfg_sel[1:] == cfg_sel[:-1]] if k else np.zeros(0, bool)
        current = np.cumsum(1 + replaced) - 1  # each endpoint's config row: its last one
        endpoint, bucket, prefix, region, account, num = (
            pc.take(base[key], pa.array(cfg_sel))
            for key in ("endpoint", "bucket", "arn_prefix", "region", "account", "num")
        )
        cfg_name = cat(endpoint, pc.if_else(pa.array(second), "-config-v2", "-config-v1"))
        cfg_arn = cat(prefix, "endpoint-config/", cfg_name)
        captured, enabled = flag(CAPTURE_CONFIGURED, k), flag(0.9, k)
        sampling, instances = choice(("100", "100", "50", "20"), k), choice(("1", "1", "2", "4"), k)
        modes = choice(['[{"CaptureMode":"Input"},{"CaptureMode":"Output"}]'] * 6
                       + ['[{"CaptureMode":"Input"}]', '[{"CaptureMode":"Output"}]'], k)  # fmt: skip
        cfg_created = base["created"][cfg_sel] - 600 + second * rng.integers(86400, 60 * 86400, k)
        kms = cat("arn:aws:kms:", region, ":", account, ":key/", pc.utf8_lpad(num, 32, "1"))
        cfg_describe = cat(
            '{"EndpointConfigName":"', cfg_name, '","EndpointConfigArn":"', cfg_arn,
            '","ProductionVariants":[{"VariantName":"AllTraffic","ModelName":"', endpoint,
            '-model","InitialInstanceCount":', instances, ',"InstanceType":"', choice(_INSTANCES, k),
            '","InitialVariantWeight":1.0}]',
            optional(captured, cat(',"DataCaptureConfig":{"EnableCapture":', json_bool(enabled),
                                   ',"InitialSamplingPercentage":', sampling, ',"DestinationS3Uri":"', bucket,
                                   "/datacapture/", endpoint, '","CaptureOptions":', modes, "}")),
            optional(flag(0.3, k), cat(',"KmsKeyId":"', kms, '"')),
            ',"CreationTime":"', iso(cfg_created), '"',
            optional(flag(0.2, k), pa.array([',"EnableNetworkIsolation":true'] * k)),
            "}",
        )  # fmt: skip
        configs = raw(base, cfg_sel, ENDPOINT_CONFIG_SPEC.resource_type, cfg_arn, cfg_name, cfg_describe)

        sel = np.arange(n)
        endpoint, bucket, prefix = (base[key] for key in ("endpoint", "bucket", "arn_prefix"))
        arn = cat(prefix, "endpoint/", endpoint)
        on = enabled[current]
        started = on & flag(0.9, n)
        sampled = pc.if_else(pa.array(flag(0.05, n)), "0", pc.take(sampling, pa.array(current)))
        capture = cat(',"DataCaptureConfig":{"EnableCapture":', json_bool(on), ',"CaptureStatus":"',
                      pc.if_else(pa.array(started), "Started", "Stopped"), '","CurrentSamplingPercentage":', sampled,
                      ',"DestinationS3Uri":"', bucket, "/datacapture/", endpoint, '"}')  # fmt: skip
        count = pc.take(instances, pa.array(current))
        describe = cat(
            '{"EndpointName":"', endpoint, '","EndpointArn":"', arn, '","EndpointConfigName":"',
            pc.take(cfg_name, pa.array(current)),
            '","ProductionVariants":[{"VariantName":"AllTraffic","CurrentWeight":1.0,"DesiredWeight":1.0,'
            '"CurrentInstanceCount":', count, ',"DesiredInstanceCount":', count, "}]",
            optional(captured[current], capture),
            ',"EndpointStatus":"', choice(_ENDPOINT_STATUSES, n), '","CreationTime":"', iso(base["created"]),
            '","LastModifiedTime":"', iso(base["created"] + 3600), '"}',
        )  # fmt: skip
        return raw(base, sel, ENDPOINT_SPEC.resource_type, arn, endpoint, describe), configs

    chunk_accounts = max(1, 100_000 // per_account)
    remaining = n_definitions
    for c0 in range(0, n_accounts, chunk_accounts):
        chunk = accounts[c0 : c0 + chunk_accounts]
        sizes = np.array([min(per_account, max(0, remaining - i * per_account)) for i in range(len(chunk))])
        remaining -= int(sizes.sum())
        n = int(sizes.sum())
        # The base rows: one per ModelQuality definition and its endpoint, accounts in order.
        acct_idx = np.repeat(np.arange(len(chunk)), sizes)
        idx = np.concatenate([np.arange(s) for s in sizes]) if n else np.array([], dtype=int)
        reg_idx = idx % n_regions
        account = pc.take(pa.array(chunk, pa.string()), pa.array(acct_idx))
        region = pc.take(region_arr, pa.array(reg_idx))
        purpose = choice(_PURPOSES, n)
        num = pc.utf8_lpad(pa.array(idx).cast(pa.string()), width=6, padding="0")
        base = {
            "account": account,
            "region": region,
            "acct_idx": acct_idx,
            "reg_idx": reg_idx,
            "num": num,
            "endpoint": cat(purpose, "-", num, "-ep"),
            "bucket": cat("s3://sagemaker-", region, "-", account),
            "arn_prefix": cat("arn:aws:sagemaker:", region, ":", account, ":"),
            "created": 1_704_067_200 + rng.integers(0, 500 * 86400, n),
        }
        everything = np.arange(n)
        endpoints, configs = endpoints_and_configs(base, n)
        tables: dict[str, list[tuple]] = {t: [] for t in resource_types}
        tables[ENDPOINT_SPEC.resource_type].append(endpoints)
        tables[ENDPOINT_CONFIG_SPEC.resource_type].append(configs)
        schedule_type = MONITORING_SCHEDULE_SPEC.resource_type
        mq_name = cat("mq-", purpose, "-", num)
        tables[JOB_DEFINITION_SPECS["ModelQuality"].resource_type].append(
            definitions(base, "ModelQuality", everything, mq_name)
        )
        scheduled = np.flatnonzero(flag(MODEL_QUALITY_SCHEDULE_RATIO, n))
        tables[schedule_type].append(schedules(base, "ModelQuality", scheduled, pc.take(mq_name, pa.array(scheduled))))
        for monitor_type, share in OTHER_MONITOR_SHARE.items():
            watched = flag(share, n)
            deleted = flag(DEFINITION_DELETED, n)  # the schedule outlived its definition
            name = cat(f"{monitor_prefix(monitor_type)}-", base["endpoint"])
            kept = np.flatnonzero(watched & ~deleted)
            tables[JOB_DEFINITION_SPECS[monitor_type].resource_type].append(
                definitions(base, monitor_type, kept, pc.take(name, pa.array(kept)))
            )
            with_schedule = np.flatnonzero(watched & (deleted | flag(OTHER_MONITOR_SCHEDULED, n)))
            tables[schedule_type].append(
                schedules(base, monitor_type, with_schedule, pc.take(name, pa.array(with_schedule)))
            )
        merged: dict[str, tuple[pa.Table, np.ndarray, np.ndarray]] = {}
        for resource_type, parts in tables.items():
            table = pa.concat_tables([p[0] for p in parts])
            acct_of, reg_of = np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])
            order = np.argsort(acct_of, kind="stable")  # schedules of several types: accounts back in order
            merged[resource_type] = (table.take(pa.array(order)), acct_of[order], reg_of[order])
            counts[resource_type] += table.num_rows
        for i, account_id in enumerate(chunk):
            parts, per_region = [], {}
            for resource_type, (table, acct_of, reg_of) in merged.items():
                lo, hi = np.searchsorted(acct_of, [i, i + 1])
                parts.append(table.slice(lo, hi - lo))
                per_region[resource_type] = np.bincount(reg_of[lo:hi], minlength=n_regions)
            raw_path = layout.raw_snapshot_file(lake_dir, day, account_id, now)
            lake.write_atomic(pa.concat_tables(parts), raw_path, row_groups=[p.num_rows for p in parts if p.num_rows])
            counts["files"] += 1
            status_rows = [
                {
                    "snapshot_date": day,
                    "collected_at": now,
                    "account_id": account_id,
                    "region": r,
                    "resource_type": resource_type,
                    "status": "ok",
                    "error_code": None,
                    "message": None,
                    "item_count": int(per_region[resource_type][j]),
                    "api_calls": 0,
                }
                for j, r in enumerate(regions)
                for resource_type in resource_types
            ]
            status = pa.Table.from_pylist(status_rows, schema=COLLECTION_STATUS_SCHEMA)
            lake.write_atomic(status, layout.status_file(lake_dir, day, account_id, now))
            counts["files"] += 1
    definitions_written = counts[JOB_DEFINITION_SPECS["ModelQuality"].resource_type]
    return {**counts, "definitions": definitions_written, "accounts": n_accounts, "snapshot_date": day.isoformat()}


def worker_normalize(lake_dir: Path, day: str) -> dict[str, Any]:
    """The day's tables, as the daily asset builds them (`build_daily_tables`: every account's latest snapshot,
    one DuckDB pass per table, one file per table)."""
    from sm_assets.core.daily_tables import build_daily_tables

    t0 = time.perf_counter()
    build = build_daily_tables(lake_dir, date.fromisoformat(day))
    rows = {name: out.rows for name, out in build.outputs.items()}
    return {
        "normalizer": "sm_assets.core.daily_tables.build_daily_tables",
        "seconds": time.perf_counter() - t0,
        "rows": sum(rows.values()),
        "files": len(build.outputs),
        "accounts": build.accounts,
    }


def worker_reports(lake_dir: Path, regions: Sequence[str], day: str) -> dict[str, Any]:
    """Every report of the day as the report asset builds them: computed from the day's tables and written."""
    from sm_assets.core.reports.publish import publish_reports

    t0 = time.perf_counter()
    published = publish_reports(lake_dir, date.fromisoformat(day), list(regions))
    return {
        "seconds": time.perf_counter() - t0,
        "tables": len(published.paths),
        "coverage_rows": len(published.result.coverage),
        "findings_rows": published.result.findings.num_rows,
        "endpoint_monitor_rows": len(published.result.endpoint_monitor),
        "reason": published.result.reason,
    }


# A wrapper process whose only child is the worker: its RUSAGE_CHILDREN.ru_maxrss is the worker's peak RSS
# and nothing else's (this runner's own children, e.g. the Dagster refresh, would otherwise count).
_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[1:])\n"
    "print('RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)\n"
    "sys.exit(rc)\n"
)


def run_worker(args: list[str]) -> tuple[dict[str, Any], float]:
    """Run this script as a worker; returns (its RESULT json, its peak RSS in MiB)."""
    cmd = [sys.executable, "-c", _RSS_WRAPPER, sys.executable, str(Path(__file__).resolve()), *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=clean_env())
    result: dict[str, Any] = {}
    rss_kb = 0
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
        elif line.startswith("RSS_KB "):
            rss_kb = int(line.split()[1])
    if proc.returncode != 0 or not result:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"worker {args[:2]} failed ({proc.returncode}): " + " | ".join(tail))
    return result, rss_kb / 1024


@dataclass
class ScaleResult:
    definitions: int
    generated: dict[str, Any]
    generate_s: float
    normalize: list[tuple[dict[str, Any], float]]  # (worker result, peak RSS MiB) per normalizer run
    reports: dict[str, Any]
    reports_rss_mib: float


def phase_scale(args: argparse.Namespace, tmp: Path) -> list[ScaleResult]:
    results = []
    for n in args.scale_sizes:
        lake = tmp / f"scale-{n}" / "lake"
        t0 = time.perf_counter()
        generated = synthetic_lake(lake, n, args.regions, args.scale_per_account, args.seed)
        generate_s = time.perf_counter() - t0
        rows = sum(generated[spec.resource_type] for spec in RESOURCE_SPECS)
        print(
            f"  (f) {n:,} model quality definitions ({rows:,} raw rows of {len(RESOURCE_SPECS)} resource types): "
            f"generated {generated['files']} files in {generate_s:.1f}s",
            flush=True,
        )
        runs = []
        norm, norm_rss = run_worker(
            ["--_worker", "normalize", "--_lake", str(lake), "--_day", generated["snapshot_date"]]
        )
        runs.append((norm, norm_rss))
        print(
            f"      daily tables {norm['seconds']:.1f}s ({norm['files']} files, {norm['rows']:,} rows), "
            f"peak RSS {norm_rss:.0f} MiB",
            flush=True,
        )
        rep, rep_rss = run_worker(
            ["--_worker", "reports", "--_lake", str(lake), "--regions", ",".join(args.regions),
             "--_day", generated["snapshot_date"]]
        )  # fmt: skip
        print(
            f"      reports {rep['seconds']:.1f}s ({rep['tables']} tables: {rep['coverage_rows']:,} coverage, "
            f"{rep['findings_rows']:,} findings, {rep['endpoint_monitor_rows']:,} endpoint monitor rows), "
            f"peak RSS {rep_rss:.0f} MiB",
            flush=True,
        )
        results.append(ScaleResult(n, generated, generate_s, runs, rep, rep_rss))
        shutil.rmtree(lake.parent, ignore_errors=True)
    return results


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def _num(value: float | int | None, fmt: str = "{:,.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join([line, sep, *body])


def main_table(phases: dict[str, Phase], limit: Limit | None, expected_items: int) -> str:
    base = phases.get("a")
    headers = ["phase", "wall s", "API calls", "throttled", "resources", "client CPU s", "server CPU s", "vs (a)"]
    headers += ["vs limit", "notes"]
    rows = []
    for key in ("a", "b", "c", "e", "g", "e2", "g2"):
        p = phases.get(key)
        if p is None:
            continue
        rows.append(
            [
                p.label,
                _num(p.wall_s),
                _num(p.calls, "{:,}"),
                _num(p.throttled, "{:,}"),
                _num(p.items, "{:,}") + ("" if p.items == expected_items else f" (of {expected_items:,}!)"),
                _num(p.client_cpu_s),
                _num(p.server_cpu_s),
                "–" if base is None else "1.0x" if p is base else f"{base.wall_s / p.wall_s:.1f}x faster",
                f"{p.wall_s / limit.seconds:.1f}x" if limit and limit.seconds else "–",
                "; ".join(p.notes[:1] + [n for n in p.notes[1:] if "failed" in n or "not ok" in n]),
            ]
        )
    if "c" in phases and "e" in phases:
        c, e = phases["c"], phases["e"]
        saved = c.calls - e.calls
        e_row = next(r for r in rows if r[0] == e.label)
        e_row[-1] += f"; {-saved:+,} calls vs (c) ({100 * saved / max(1, c.calls):.0f}% fewer)" if saved else ""
    if limit is not None:
        floor = "throttle" if limit.throttle_floor_s >= limit.cpu_floor_s else "CPU"
        rows.append(
            [
                "(d) limit = max(throttle floor, CPU floor)",
                _num(limit.seconds, "{:,.2f}"),
                _num(limit.calls, "{:,}"),
                "0",
                f"{expected_items:,}",
                _num(limit.cpu_floor_s, "{:,.2f}"),
                "–",
                f"{base.wall_s / limit.seconds:.0f}x faster" if base and limit.seconds else "–",
                "1.0x",
                f"{floor}-bound: throttle floor {limit.throttle_floor_s:.2f}s, CPU floor {limit.cpu_floor_s:.2f}s",
            ]
        )
    return markdown_table(headers, rows)


def detail_lines(phases: dict[str, Phase], limit: Limit | None, args: argparse.Namespace) -> list[str]:
    out = []
    cpu = phases.get("cpu")
    if cpu is not None:
        accounts = cpu.stats.get("by_operation", {}).get("sts.AssumeRole", {}).get("calls", 0)
        setup_ms = cpu.stats.get("account_setup_cpu_ms", 0.0)
        setup_s = accounts * setup_ms / 1000
        out.append(
            f"- CPU calibration ({cpu.notes[0]}, zero latency, no throttling): {cpu.calls:,} calls in "
            f"{cpu.wall_s:.2f}s wall, {cpu.client_cpu_s:.2f}s client CPU -> **"
            f"{1000 * (cpu.client_cpu_s or 0) / max(1, cpu.calls):.2f} ms client CPU per call**. Of that, opening "
            f"each account (AssumeRole, the role's session, {len(args.regions)} SageMaker clients: collect_account "
            f"with no resource types) costs {setup_ms:.0f} ms CPU, x {accounts} accounts = {setup_s:.2f}s "
            f"({100 * setup_s / max(1e-9, cpu.client_cpu_s or 0):.0f}%); the calls themselves "
            f"{1000 * max(0.0, (cpu.client_cpu_s or 0) - setup_s) / max(1, cpu.calls):.2f} ms each. "
            f"The server spent {cpu.server_cpu_s:.2f}s CPU ({1000 * (cpu.server_cpu_s or 0) / max(1, cpu.calls):.2f} "
            "ms/call), in its own process."
        )
    if limit is not None:
        out.append(
            f"- (d) throttle floor = (busiest account-region's {limit.busiest_bucket_calls} SageMaker calls - burst "
            f"{args.burst:g}) / {args.rate:g} calls/s = {limit.throttle_floor_s:.2f}s (the bucket starts full, so "
            f"`burst` calls need no wait; calls/rate without the burst would say "
            f"{limit.busiest_bucket_calls / args.rate if args.rate else 0:.2f}s). CPU floor = {limit.calls:,} calls x "
            f"{limit.cpu_per_call_ms:.2f} ms / {limit.cores} core(s) = {limit.cpu_floor_s:.2f}s: the collector runs "
            f"{collector_processes()} worker process(es) (SM_ASSETS_COLLECT_PROCESSES=auto), and a process's threads "
            f"share its GIL, so it can use {limit.cores} of this machine's {os.cpu_count()} cores (the fake server "
            "runs on the same cores, so this floor is optimistic). "
            f"For reference, the latency chain of the busiest account-region run call by call is "
            f"{limit.busiest_bucket_calls} x {args.latency_ms:g} ms = {limit.latency_chain_s:.2f}s."
        )
    for key in ("a", "b", "c", "e", "g", "e2", "g2"):
        p = phases.get(key)
        if p is not None and len(p.notes) > 1:
            out.append(f"- {p.label}: " + "; ".join(p.notes[1:]))
    b, c = phases.get("b"), phases.get("c")
    if b is not None and c is not None:
        accounts = args.accounts
        out.append(
            f"- **Dagster's part of the refresh** = ((c) - (b)) / accounts = ({c.wall_s:.1f}s - {b.wall_s:.1f}s) / "
            f"{accounts} = **{1000 * (c.wall_s - b.wall_s) / accounts:.1f} ms per account**; (c) / (b) = "
            f"**{c.wall_s / b.wall_s:.2f}x**. (c) includes the process start, account discovery, the shard runs, the "
            "day's tables and the reports; (b) is the collection alone."
        )
    plain = [phases[k].wall_s for k in ("e", "e2") if k in phases]
    held = [phases[k].wall_s for k in ("g", "g2") if k in phases]
    if plain and held:
        p_med, h_med = statistics.median(plain), statistics.median(held)
        codes = [phases[k].stats.get("returncode") for k in ("g", "g2") if k in phases]
        out.append(
            f"- **A reader holding the DuckDB file** (read-only, for the whole refresh): median of "
            f"{'/'.join(f'{x:.1f}' for x in held)}s vs {'/'.join(f'{x:.1f}' for x in plain)}s without = "
            f"**{100 * (h_med - p_med) / p_med:+.1f}%**, exit codes {codes}."
        )
    if "c" in phases and "e" in phases:
        c, e = phases["c"], phases["e"]

        def admitted(phase: Phase) -> dict[str, int]:
            ops = phase.stats.get("by_operation", {})
            return {op: v["calls"] - v["throttled"] for op, v in ops.items()}

        c_ops, e_ops = admitted(c), admitted(e)
        diffs = [
            f"{op.split('.', 1)[1]} {c_ops.get(op, 0):,} -> {e_ops.get(op, 0):,}"
            for op in sorted(set(c_ops) | set(e_ops))
            if c_ops.get(op, 0) != e_ops.get(op, 0)
        ]
        out.append(
            f"- (e) vs (c): {c.calls:,} -> {e.calls:,} API calls including throttled attempts; answered calls "
            f"{sum(c_ops.values()):,} -> {sum(e_ops.values()):,}"
            + (f" ({', '.join(diffs)})" if diffs else " (no operation changed its call count)")
        )
    return out


def scale_table(results: list[ScaleResult]) -> str:
    headers = [
        "raw model quality definitions",
        "raw rows: "
        + " / ".join(
            f"{monitor_prefix(spec.monitor_type).upper()} defs" if spec.monitor_type else type_label(spec.resource_type)
            for spec in RESOURCE_SPECS
        ),
        "files",
        "generate s",
        "normalizer",
        "normalize s",
        "normalize peak RSS MiB",
        "reports s",
        "report rows: coverage / findings / endpoint monitor",
        "reports peak RSS MiB",
    ]
    rows = []
    for r in results:
        for i, (norm, rss) in enumerate(r.normalize):
            first = i == 0
            rows.append(
                [
                    f"{r.definitions:,}" if first else "″",
                    " / ".join(f"{r.generated[spec.resource_type]:,}" for spec in RESOURCE_SPECS) if first else "″",
                    f"{r.generated['files']:,}" if first else "″",
                    f"{r.generate_s:.1f}" if first else "",
                    norm["normalizer"],
                    f"{norm['seconds']:.1f}",
                    f"{rss:,.0f}",
                    f"{r.reports['seconds']:.1f}" if first else "",
                    f"{r.reports['coverage_rows']:,} / {r.reports['findings_rows']:,} / "
                    f"{r.reports['endpoint_monitor_rows']:,}"
                    if first
                    else "",
                    f"{r.reports_rss_mib:,.0f}" if first else "",
                ]
            )
    return markdown_table(headers, rows)


def write_results(
    path: Path,
    args: argparse.Namespace,
    fleet: Fleet,
    phases: dict[str, Phase],
    limit: Limit | None,
    scale: list[ScaleResult],
    table: str,
) -> None:
    totals = fleet.totals()
    expected = fleet.expected_calls()
    by_operation = ", ".join(f"{op} {n:,}" for op, n in expected["by_operation"].items())
    lines = [
        "# sm-assets collection benchmark",
        "",
        f"Command: `{args.command_line}`",
        "",
        f"Code under test: {args.code}.",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node() or 'host'}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.platform()}. Load average (1/5/15 min) "
        f"{'/'.join(f'{x:.1f}' for x in args.load_start)} at the start, "
        f"{'/'.join(f'{x:.1f}' for x in args.load_end)} at the end (other work on the machine shares the cores).",
        "",
        f"Fleet (seed {args.seed}): {totals['accounts']} accounts x {totals['regions']} regions "
        f"({', '.join(args.regions)}), up to {args.max_definitions} model quality definitions per account-region: "
        f"{fleet.inventory_text()} ({totals['resources']:,} resources of {len(RESOURCE_SPECS)} types). A full "
        f"collection (list, describe and ListTags for every type of the registry) needs {expected['total']:,} "
        f"calls ({expected['organizations']} ListAccounts page{'s' if expected['organizations'] != 1 else ''}, "
        f"{expected['sts']} AssumeRole, "
        f"{expected['sagemaker']:,} SageMaker: {by_operation}). Server: {args.latency_ms:g} ms per call, SageMaker "
        f"throttled at "
        f"{args.rate:g} calls/s per account-region (burst {args.burst:g}); the server runs in its own process.",
        "",
        table,
        "",
        *detail_lines(phases, limit, args),
        "",
    ]
    if scale:
        lines += [
            "## Normalize + reports at scale",
            "",
            f"Synthetic account snapshots stored as the raw asset stores them (one raw file per account, every "
            f"resource type, and its status file), {args.scale_per_account:,} model quality definitions per "
            "account spread over the regions, and around them in the benchmark fleet's proportions: one endpoint "
            f"per definition with its endpoint config ({CONFIG_REPLACED:.0%} of the endpoints with an older config "
            f"too, {CAPTURE_CONFIGURED:.0%} of the configs capturing data), a ModelQuality schedule for "
            f"{MODEL_QUALITY_SCHEDULE_RATIO:.0%} of the definitions, and "
            + ", ".join(f"{t} definitions on {share:.0%}" for t, share in OTHER_MONITOR_SHARE.items())
            + f" of the endpoints ({OTHER_MONITOR_SCHEDULED:.0%} of them scheduled; of {DEFINITION_DELETED:.0%} "
            'only the schedule is left, its definition deleted). "normalize" is the day\'s tables '
            '(`build_daily_tables`: raw and normalized files per table, one file each), "reports" every report table '
            "of the day "
            "computed from them and written (`publish_reports`). Each runs in a child process; peak RSS is "
            "`getrusage(RUSAGE_CHILDREN).ru_maxrss` of a wrapper whose only child is that worker.",
            "",
            scale_table(scale),
            "",
        ]
    path.write_text("\n".join(lines))


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--accounts", type=int, default=None, help="accounts in the fake org (default 50; --quick: 5)")
    p.add_argument("--regions", default=",".join(DEFAULT_REGIONS), help="comma-separated (default %(default)s)")
    p.add_argument("--max-definitions", type=int, default=12, help="definitions per account-region, 0..N")
    p.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_S * 1000, help="per-call latency (25)")
    p.add_argument("--rate", type=float, default=DEFAULT_RATE, help="SageMaker calls/s per account-region (8)")
    p.add_argument("--burst", type=float, default=None, help="token bucket size (default: = rate)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--role-name", default=DEFAULT_ROLE_NAME)
    p.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_ACCOUNTS} accounts, small scale sizes")
    p.add_argument("--skip-baseline", action="store_true", help="skip (a)")
    p.add_argument("--skip-refresh", action="store_true", help="skip (c) and (e)")
    p.add_argument("--skip-scale", action="store_true", help="skip (f)")
    p.add_argument("--skip-reader", action="store_true", help="skip (g): refreshes with a reader holding the file")
    p.add_argument("--scale-sizes", default=None, help=f"raw definitions for (f) (default {DEFAULT_SCALE_SIZES})")
    p.add_argument("--scale-per-account", type=int, default=1000, help="definitions per account in (f)")
    p.add_argument("--results", type=Path, default=None, help="markdown output (default benchmarks/results.md)")
    p.add_argument(
        "--no-snapshot", action="store_true", help="run against the working tree instead of a copy taken at start"
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary data dirs and logs")
    p.add_argument("--_worker", choices=("normalize", "reports", "dagster-steps"), help=argparse.SUPPRESS)
    p.add_argument("--_lake", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--_day", help=argparse.SUPPRESS)
    p.add_argument("--_origin", type=Path, help=argparse.SUPPRESS)  # the checkout a snapshot run was copied from
    p.add_argument("--_command", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    if args.accounts is None:
        args.accounts = QUICK_ACCOUNTS if args.quick else 50
    if args.burst is None:
        args.burst = args.rate
    sizes = args.scale_sizes or (QUICK_SCALE_SIZES if args.quick else DEFAULT_SCALE_SIZES)
    args.scale_sizes = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    args.origin = args._origin or REPO
    if args.results is None:
        args.results = args.origin / RESULTS
    return args


def source_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((root / "sm_assets").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def git_describe(root: Path) -> str:
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *cmd], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "sm_assets")
    return commit + (" + uncommitted sm_assets changes" if dirty else "")


def run_from_snapshot(argv: Sequence[str]) -> int:
    """Copy the code under test and run this benchmark from the copy (see the module docstring)."""
    snapshot = Path(tempfile.mkdtemp(prefix="sm-assets-bench-src-"))
    try:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results*.md")
        for name in ("sm_assets", "benchmarks"):
            shutil.copytree(REPO / name, snapshot / name, ignore=ignore)
        pythonpath = os.pathsep.join(p for p in (str(snapshot), os.environ.get("PYTHONPATH", "")) if p)
        exe = Path(sys.executable)
        shown = os.path.relpath(exe, Path.cwd()) if exe.is_relative_to(Path.cwd()) else str(exe)
        command = shlex.join([shown, *sys.argv])
        cmd = [sys.executable, str(snapshot / "benchmarks" / "run_benchmark.py"), *argv]
        cmd += ["--_origin", str(REPO), "--_command", command]
        return subprocess.call(cmd, env={**os.environ, "PYTHONPATH": pythonpath})
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args._worker and args._origin is None and not args.no_snapshot:
        return run_from_snapshot(list(sys.argv[1:] if argv is None else argv))
    if args._worker == "normalize":
        print("RESULT " + json.dumps(worker_normalize(args._lake, args._day)), flush=True)
        return 0
    if args._worker == "reports":
        print("RESULT " + json.dumps(worker_reports(args._lake, args.regions, args._day)), flush=True)
        return 0
    if args._worker == "dagster-steps":
        print("RESULT " + json.dumps(worker_dagster_steps(args._lake, float(args._day))), flush=True)
        return 0
    exe = Path(sys.executable)
    args.command_line = args._command or shlex.join(
        [os.path.relpath(exe, REPO) if exe.is_relative_to(REPO) else str(exe), *sys.argv]
    )
    args.code = f"{git_describe(args.origin)}, sm_assets sha256 {source_hash(REPO)}"
    print(f"code under test: {REPO / 'sm_assets'} ({args.code})", flush=True)
    args.load_start = os.getloadavg()
    fleet = generate_fleet(args.accounts, args.regions, args.max_definitions, seed=args.seed, role_name=args.role_name)
    tmp = Path(tempfile.mkdtemp(prefix="sm-assets-bench-"))
    server = RemoteBench(args)
    phases: dict[str, Phase] = {}
    limit: Limit | None = None
    scale: list[ScaleResult] = []
    try:
        url = server.start()
        remote = server.fleet()
        if remote["fingerprint"] != fleet.fingerprint():
            raise RuntimeError("the server generated a different fleet than this process")
        os.environ.clear()
        os.environ.update(clean_env(aws_env(url, args.regions[0])))
        s = fleet.summary()
        print(
            f"fake AWS {url}: {s['accounts']} accounts x {s['regions']} regions, {fleet.inventory_text()}; a full "
            f"collection is {s['expected_calls']['total']:,} calls (busiest account-region "
            f"{s['busiest_bucket_calls']})",
            flush=True,
        )
        steps: list[tuple[str, Callable[[], Phase]]] = [("cpu", lambda: phase_calibrate(server, args, tmp))]
        if not args.skip_baseline:
            steps.append(("a", lambda: phase_baseline(server, args)))
        steps.append(("b", lambda: phase_collector(server, args, tmp)))
        if not args.skip_refresh:
            data = tmp / "refresh"
            steps.append(("c", lambda: phase_refresh(server, args, data, "c", "(c) sm-assets refresh", tmp)))
            steps.append(
                ("e", lambda: phase_refresh(server, args, data, "e", "(e) sm-assets refresh again, unchanged", tmp))
            )
            if not args.skip_reader:
                label = "(g) (e) with a reader holding the DuckDB file"
                steps.append(("g", lambda: phase_refresh(server, args, data, "g", label, tmp, with_reader=True)))
                again = "(e') (e) once more"
                steps.append(("e2", lambda: phase_refresh(server, args, data, "e2", again, tmp)))
                label2 = "(g') (g) once more"
                steps.append(("g2", lambda: phase_refresh(server, args, data, "g2", label2, tmp, with_reader=True)))
        for key, step in steps:
            print(f"running {key} ...", flush=True)
            phase = step()
            phases[key] = phase
            print(
                f"  {phase.label}: {phase.wall_s:.2f}s, {phase.calls:,} calls, {phase.throttled:,} throttled, "
                f"client CPU {_num(phase.client_cpu_s)}s; {'; '.join(phase.notes)}",
                flush=True,
            )
            if key == "cpu":
                limit = compute_limit(fleet, args, phase)
        if not args.skip_scale:
            print("running f ...", flush=True)
            scale = phase_scale(args, tmp)
    finally:
        server.stop()
        if args.keep_tmp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    args.load_end = os.getloadavg()
    if args._origin is not None and source_hash(args.origin) != source_hash(REPO):
        args.code += "; the working tree's sm_assets changed during the run, this run used the copy taken at start"
    table = main_table(phases, limit, expected_resources(fleet))
    print()
    print(table)
    print()
    print("\n".join(detail_lines(phases, limit, args)))
    if scale:
        print()
        print(scale_table(scale))
    write_results(args.results, args, fleet, phases, limit, scale, table)
    print(f"\nwrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shard a collection over worker processes: botocore's ~3 ms of CPU per call runs under the GIL, so one
process tops out at one core. Each worker runs the threaded collector (`collection.collect_accounts`) on its
share and streams every account's snapshot back as it finishes."""

from __future__ import annotations

import contextlib
import os
import pickle
import site
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from sm_assets.core.collection import AccountSnapshot, collect_accounts, failed_snapshot
from sm_assets.core.config import Settings
from sm_assets.core.specs import ResourceSpec

MIN_ACCOUNTS_PER_PROCESS = 4
WORKER_MODULE = "sm_assets.core.collect_worker"
# Workers started ahead of their job (`prestart`): they import and load the service models while the caller
# is still starting up, and the next collection in this process takes them.
# Each with the environment it was started with: a worker only serves a collection under the same one.
_PRESTARTED: list[tuple[subprocess.Popen[bytes], dict[str, str]]] = []
_PRESTART_LOCK = threading.Lock()


def _spawn(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", WORKER_MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )


def prestart(processes: int) -> None:
    """Start `processes` collector workers now, for the next collection in this process to use. A worker that
    is never given a job exits when this process does (its stdin closes)."""
    env = worker_env()
    with _PRESTART_LOCK:
        while len(_PRESTARTED) < processes:
            _PRESTARTED.append((_spawn(env), env))


def stop_prestarted() -> None:
    """Stop the prestarted workers no collection took (they would exit with this process anyway)."""
    with _PRESTART_LOCK:
        while _PRESTARTED:
            proc, _ = _PRESTARTED.pop()
            with contextlib.suppress(OSError):
                if proc.stdin:
                    proc.stdin.close()  # EOF before a job: the worker exits at once
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _take_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A prestarted worker with this environment (credentials, endpoint), else a new one. Prestarted workers
    with another environment are stopped: they would call the wrong endpoint or as the wrong identity."""
    with _PRESTART_LOCK:
        while _PRESTARTED:
            proc, started_with = _PRESTARTED.pop(0)
            if proc.poll() is None and started_with == env:
                return proc
            proc.kill()
            proc.wait()
    return _spawn(env)


def worker_env() -> dict[str, str]:
    """The worker imports this same sm_assets: its root goes first on PYTHONPATH (the worker runs with
    -P, so the current directory cannot shadow it), unless it is a site-packages directory, which the
    worker's interpreter finds anyway and which must not move ahead of the standard library."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    site_dirs = {str(Path(d).resolve()) for d in [*site.getsitepackages(), site.getusersitepackages()]}
    if package_root not in site_dirs:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    return env


def collect_in_processes(
    account_ids: Sequence[str],
    settings: Settings,
    specs: Sequence[ResourceSpec],
    previous: Mapping[str, Mapping[str, dict[str, Any]]] | None,
    max_accounts_in_parallel: int,
    on_done: Callable[[AccountSnapshot], None] | None,
    processes: int,
    cancel: threading.Event | None = None,
) -> dict[str, AccountSnapshot]:
    """Shard the accounts over `python -m sm_assets.core.collect_worker` processes.

    Plain subprocesses, not multiprocessing: spawn would re-import the caller's __main__ (for a Dagster
    process, the whole dagster CLI) and fork is unsafe in a process with threads. Each worker reads its
    job as one pickle on stdin and sends one pickled AccountSnapshot per finished account. Its stdin
    stays open: when this process dies or gives up, the worker sees EOF and exits.
    """
    shards = [list(account_ids[i::processes]) for i in range(processes)]
    per_process = max(1, -(-max_accounts_in_parallel // processes))
    env = worker_env()
    inbox: Queue[tuple[int, str, Any]] = Queue()
    workers: list[subprocess.Popen[bytes]] = []
    worker_errors: dict[int, str] = {}
    results: dict[str, AccountSnapshot] = {}

    def read_results(index: int, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        try:
            while True:
                kind, message = pickle.load(proc.stdout)
                inbox.put((index, kind, message))
        except EOFError:
            pass
        except Exception as exc:  # noqa: BLE001 - a garbled stream counts as a dead worker
            inbox.put((index, "error", f"collector worker stream broken: {type(exc).__name__}: {exc}"))
        inbox.put((index, "exit", None))

    def stop_all(grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        for proc in workers:
            with contextlib.suppress(OSError):
                if proc.stdin:
                    proc.stdin.close()  # EOF: the worker's watchdog exits
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    finished_normally = False
    try:
        for index, shard in enumerate(shards):
            proc = _take_worker(env)
            workers.append(proc)
            threading.Thread(target=read_results, args=(index, proc), daemon=True).start()
            job = (shard, settings, tuple(specs), {a: (previous or {}).get(a, {}) for a in shard}, per_process)
            assert proc.stdin is not None
            try:
                pickle.dump(job, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                proc.stdin.flush()
            except OSError as exc:  # it died before reading its job (import error, OOM at start, ...)
                worker_errors.setdefault(index, f"collector worker did not take its job: {exc}")
        exited = 0
        while exited < len(workers) and len(results) < len(account_ids):
            if cancel is not None and cancel.is_set():
                break
            try:
                index, kind, message = inbox.get(timeout=0.5)
            except Empty:
                continue
            if kind == "snapshot":
                results[message.account_id] = message
                if on_done:
                    on_done(message)
            elif kind == "error":
                worker_errors.setdefault(index, message)
            else:
                exited += 1
        finished_normally = cancel is None or not cancel.is_set()
    finally:
        if not finished_normally:  # interrupted, failed or cancelled: stop the workers' AWS calls now
            for proc in workers:
                with contextlib.suppress(OSError):
                    proc.terminate()
        stop_all(grace_s=10 if finished_normally else 2)
    if not finished_normally:
        return results
    # A worker that died takes down only its unfinished accounts: they are recorded as errors.
    for index, shard in enumerate(shards):
        missing = [a for a in shard if a not in results]
        if not missing:
            continue
        returncode = workers[index].returncode if index < len(workers) else None
        reason = worker_errors.get(index) or f"collector worker process exited with code {returncode}"
        for account_id in missing:
            snap = failed_snapshot(account_id, settings, specs, "error", "CollectorWorkerFailed", reason[:500])
            results[account_id] = snap
            if on_done:
                on_done(snap)
    return {a: results[a] for a in account_ids}


def warm_up() -> None:
    """Build one client of each service the collector uses (no call is made), so botocore has parsed its
    models, endpoint rules and paginators into the shared loader before the first account."""
    import botocore.session

    from sm_assets.core.aws_clients import shared_loader

    session = botocore.session.get_session()
    session.register_component("data_loader", shared_loader())
    for service in ("sts", "sagemaker"):
        session.create_client(
            service, region_name="us-east-1", aws_access_key_id="warm-up", aws_secret_access_key="warm-up"
        )


def run_worker(job_stream: Any, out_stream: Any) -> None:
    """The worker side of `collect_in_processes` (see collect_worker.py)."""
    try:
        job = pickle.load(job_stream)
    except EOFError:  # a prestarted worker whose parent stopped, or needed no more workers
        return
    account_ids, settings, specs, previous, max_accounts_in_parallel = job
    lock = threading.Lock()

    def watchdog() -> None:
        # The parent keeps our stdin open while it wants results: EOF means it died or gave up.
        job_stream.read()
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True, name="parent-watchdog").start()

    def send(message: tuple[str, Any]) -> None:
        with lock:
            pickle.dump(message, out_stream, protocol=pickle.HIGHEST_PROTOCOL)
            out_stream.flush()

    try:
        collect_accounts(
            account_ids,
            settings,
            specs,
            previous=previous,
            max_accounts_in_parallel=max_accounts_in_parallel,
            on_done=lambda snap: send(("snapshot", snap)),
            processes=1,
        )
    except Exception as exc:  # noqa: BLE001 - tell the parent why, then exit non-zero
        send(("error", f"{type(exc).__name__}: {exc}"))
        raise

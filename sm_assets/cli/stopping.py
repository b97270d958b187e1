"""SIGTERM and SIGINT stop a command and everything it started, within seconds, leaving no process behind.

docker, systemd and CI stop a process with SIGTERM (to it alone or to its whole group); a terminal's Ctrl-C
sends SIGINT to the foreground group. Either raises `Stopped` (a KeyboardInterrupt, so libraries clean up as
for Ctrl-C) in the main thread: every ``finally`` runs, the fake AWS server stops, collector workers are
terminated, and ``dagster dev``, started in a process group of its own, is stopped with its whole tree
(`stop_group`).

While a Dagster run executes in process, Dagster's handlers replace ours and turn the signal into a failed
run. The signal still reaches us through the wakeup fd (the C-level handler writes it whichever Python
handler runs), so `check()` after the run stops the command instead of letting it start the next run. And
whatever happens, `GRACE_S` after the first signal every process still running below this one is killed and
this one exits: a hung call cannot keep a stopped command alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
GRACE_S = 8.0  # from the first signal to the forced exit
GROUP_GRACE_S = 4.0  # what a child process group gets to stop on its own before SIGKILL
STRAGGLER_GRACE_S = 1.0  # what is left of a group once its leader exited (code servers wait for a heartbeat)


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; the command exits with 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _StopState:
    def __init__(self) -> None:
        self.signum: int | None = None
        self.groups: set[int] = set()
        self.lock = threading.Lock()

    def requested(self, signum: int) -> None:
        with self.lock:
            if self.signum is not None:
                return
            self.signum = signum
        timer = threading.Timer(GRACE_S, self.force_exit)
        timer.daemon = True
        timer.start()

    def force_exit(self) -> None:
        for pgid in list(self.groups):
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
        for pid in descendants(os.getpid()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        os._exit(128 + (self.signum or signal.SIGTERM))


_state = _StopState()


def check() -> None:
    """Raise `Stopped` if a stop signal arrived (also while somebody else's handler was installed)."""
    if _state.signum is not None:
        raise Stopped(_state.signum)


def stop_requested() -> bool:
    return _state.signum is not None


def _handle(signum: int, _frame: FrameType | None) -> None:
    _state.requested(signum)
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Install the handlers for the duration of a command (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    saved = {s: signal.signal(s, _handle) for s in STOP_SIGNALS}
    saved_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

    def watch() -> None:
        while True:
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in STOP_SIGNALS:
                    _state.requested(signum)

    threading.Thread(target=watch, name="stop-signals", daemon=True).start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(saved_fd)
        for s, handler in saved.items():
            signal.signal(s, handler)
        writer.close()
        with contextlib.suppress(OSError):
            reader.shutdown(socket.SHUT_RDWR)
        reader.close()


def start_group(command: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """Start `command` in a session (so a process group) of its own: its whole tree, grandchildren that
    outlive it included, can then be stopped together, and a terminal's Ctrl-C reaches it only through us."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(command, start_new_session=True, **popen)
    _state.groups.add(proc.pid)
    return proc


def _group_alive(pgid: int) -> bool:
    if _HAS_PROC:  # a zombie (exited, not yet reaped by whoever inherited it) is not alive
        return any(int(fields[2]) == pgid for _, fields in _processes())
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def stop_group(proc: subprocess.Popen[bytes], grace_s: float = GROUP_GRACE_S) -> int:
    """SIGTERM to the group `start_group` made, `grace_s` for all of it to exit, then SIGKILL for what is left.
    Returns the leader's exit code."""
    deadline = time.monotonic() + grace_s
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    deadline = min(deadline, time.monotonic() + STRAGGLER_GRACE_S)
    while time.monotonic() < deadline and _group_alive(proc.pid):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    code = proc.wait()
    _state.groups.discard(proc.pid)
    return code


# ---------------------------------------------------------------------------------------------------------
# The process table (Linux /proc; elsewhere empty, and only the groups are killed)


_HAS_PROC = Path("/proc/self/stat").exists()


def _processes() -> list[tuple[int, list[str]]]:
    """(pid, stat fields after "pid (comm)": state, ppid, pgrp, ...) of every live process."""
    out = []
    for entry in Path("/proc").iterdir() if _HAS_PROC else ():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            out.append((int(entry.name), fields))
    return out


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for child, fields in _processes():
        children.setdefault(int(fields[1]), []).append(child)
    out, todo = [], list(children.get(pid, []))
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out

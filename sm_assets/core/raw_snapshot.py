"""Collect a set of accounts into the lake, one committed snapshot per account, and check what was stored.

What the account-partitioned raw asset runs: the accounts are collected concurrently
(`collection.stream_accounts`) and each one is stored as soon as it is done (`snapshots.SnapshotWriter`),
so memory follows the accounts in flight, not the shard, and each account can be reported while the
others are still being collected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from queue import Empty, Queue

from sm_assets.core.collection import AccountSnapshot, stream_accounts
from sm_assets.core.config import Settings
from sm_assets.core.snapshots import SnapshotWriter, StoredSnapshot, previous_describes
from sm_assets.core.specs import RESOURCE_SPECS

log = logging.getLogger(__name__)


def collect_into_lake(
    settings: Settings,
    account_ids: Sequence[str],
    *,
    on_collected: Callable[[AccountSnapshot], None] | None = None,
) -> Iterator[StoredSnapshot]:
    """Collect `account_ids` and store each account's snapshot; yields every stored snapshot (in the order
    the accounts finish) once its files are committed."""
    immutable = [spec.resource_type for spec in RESOURCE_SPECS if spec.immutable]
    previous = previous_describes(settings.lake_dir, account_ids, immutable)
    pending: Queue[Future[StoredSnapshot]] = Queue()
    with SnapshotWriter(settings.lake_dir) as writer:
        for snapshot in stream_accounts(account_ids, settings, previous=previous):
            if on_collected:
                on_collected(snapshot)
            pending.put(writer.submit(snapshot))
            yield from _done(pending)  # report what is stored without waiting for the rest
        while not pending.empty():
            yield pending.get().result()


def _done(pending: Queue[Future[StoredSnapshot]]) -> Iterator[StoredSnapshot]:
    while True:
        try:
            future = pending.queue[0]
        except IndexError:
            return
        if not future.done():
            return
        try:
            pending.get_nowait()
        except Empty:
            return
        yield future.result()


@dataclass
class CollectionChecks:
    """The raw asset's checks over the snapshots of a run: every (region, resource type) has a status; no
    access was denied (a warning: those counts are unknown, not zero); no region failed."""

    regions: tuple[str, ...]
    accounts: int = 0
    missing: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    api_calls: int = 0
    api_calls_saved: int = 0
    rows: int = 0

    def add(self, stored: StoredSnapshot) -> None:
        self.accounts += 1
        self.api_calls += stored.api_calls
        self.api_calls_saved += stored.api_calls_saved
        self.rows += sum(stored.rows_by_type.values())
        expected = {(r, spec.resource_type) for r in self.regions for spec in RESOURCE_SPECS}
        self.missing += [f"{stored.account_id} {r}/{t}" for r, t in sorted(expected - stored.cells)]
        self.denied += [f"{stored.account_id} {line}" for line in stored.denied]
        self.errors += [f"{stored.account_id} {line}" for line in stored.errors]

    @property
    def expected_cells(self) -> int:
        return self.accounts * len(self.regions) * len(RESOURCE_SPECS)

"""Split the accounts into shards: one run each, so memory and a retry follow the shard, not the org."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def shards(accounts_in_order: Sequence[str], size: int) -> list[list[str]]:
    """Consecutive slices of at most `size` accounts (a partition range must be contiguous in the order the
    partitions were added)."""
    if size < 1:
        raise ValueError("shard size must be >= 1")
    return [list(accounts_in_order[i : i + size]) for i in range(0, len(accounts_in_order), size)]


def contiguous_stretches(order: Sequence[str], wanted: Iterable[str]) -> list[list[str]]:
    """The wanted keys as runs of consecutive keys of `order` (each run is one partition range)."""
    wanted_set = set(wanted)
    stretches: list[list[str]] = []
    current: list[str] = []
    for key in order:
        if key in wanted_set:
            current.append(key)
        elif current:
            stretches.append(current)
            current = []
    if current:
        stretches.append(current)
    return stretches


def partition_changes(existing: Iterable[str], current: Iterable[str]) -> tuple[list[str], list[str]]:
    """(accounts to add, accounts to remove) so the partition set equals `current`."""
    existing_set, current_set = set(existing), set(current)
    return sorted(current_set - existing_set), sorted(existing_set - current_set)

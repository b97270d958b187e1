"""A check's outcome as the core computes it; the Dagster layer turns it into an AssetCheckResult."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    metadata: dict[str, object] = field(default_factory=dict)
    warn_only: bool = False  # a WARN-severity check: failing it flags the data, it does not fail the run
    description: str | None = None

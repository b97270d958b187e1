"""How one inventory shows up in a Dagster deployment (names, schedule, freshness, owners, tags), apart from
what it collects (core/config.py). Several inventories can share a code location: a key prefix keeps their
asset keys apart and prefixes every job, schedule, sensor, resource and partition name."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sm_assets.core.errors import ConfigError

# Dagster's rule for job, schedule, sensor, resource and group names; prefix parts follow it so that the
# names built from them are valid.
_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

DEFAULT_INVENTORY_CRON = "0 3 * * *"
ACCOUNT_PARTITIONS = "aws_account"
INVENTORY_GROUP = "sagemaker_inventory"
REPORTS_GROUP = "model_quality_reports"
ANALYTICS_GROUP = "analytics"
# The day's tables and reports follow the daily collection: 24 h apart, plus the refresh's own duration.
DEFAULT_FRESHNESS_WARN_HOURS = 26.0
DEFAULT_FRESHNESS_FAIL_HOURS = 30.0


def _name(value: str, what: str) -> str:
    if not _NAME_RE.match(value):
        raise ConfigError(f"{what} {value!r} may hold only letters, digits and underscores")
    return value


@dataclass(frozen=True)
class InventoryOptions:
    key_prefix: tuple[str, ...] = ()  # () keeps the historical keys: raw/..., aws/..., reports/..., analytics/...
    partition_name: str | None = None  # None: aws_account, prefixed
    inventory_group: str | None = None  # None: the historical group names, prefixed
    reports_group: str | None = None
    analytics_group: str | None = None
    inventory_cron: str = DEFAULT_INVENTORY_CRON
    timezone: str = "UTC"
    freshness_warn_hours: float | None = DEFAULT_FRESHNESS_WARN_HOURS  # None: no warn window
    freshness_fail_hours: float | None = DEFAULT_FRESHNESS_FAIL_HOURS  # None: no freshness policy
    owners: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    start_running: bool = True  # the schedule and the sensors start RUNNING (else STOPPED)

    def __post_init__(self) -> None:
        for part in self.key_prefix:
            _name(part, "key_prefix part")
        for what in ("partition_name", "inventory_group", "reports_group", "analytics_group"):
            value = getattr(self, what)
            if value is not None:
                _name(value, what)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"timezone {self.timezone!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)"
            ) from None
        bad = [o for o in self.owners if not (_EMAIL_RE.match(o) or (o.startswith("team:") and len(o) > 5))]
        if bad:
            raise ConfigError(f"owners {', '.join(map(repr, bad))}: each must be an email or team:<name>")
        warn, fail = self.freshness_warn_hours, self.freshness_fail_hours
        if any(hours is not None and hours * 60 < 1 for hours in (warn, fail)):
            raise ConfigError("freshness_warn_hours and freshness_fail_hours must be at least one minute")
        if warn is not None and (fail is None or warn >= fail):
            raise ConfigError(f"freshness_warn_hours {warn} must be less than freshness_fail_hours {fail}")

    def key(self, *path: str) -> tuple[str, ...]:
        """An asset key path of this inventory."""
        return (*self.key_prefix, *path)

    def name(self, base: str) -> str:
        """A job, schedule, sensor or resource name of this inventory: `base`, after the prefix parts."""
        return "_".join((*self.key_prefix, base))

    @property
    def account_partitions(self) -> str:
        return self.partition_name or self.name(ACCOUNT_PARTITIONS)

    @property
    def groups(self) -> tuple[str, str, str]:
        """(inventory, reports, analytics) group names."""
        return (
            self.inventory_group or self.name(INVENTORY_GROUP),
            self.reports_group or self.name(REPORTS_GROUP),
            self.analytics_group or self.name(ANALYTICS_GROUP),
        )

"""What every asset of one inventory shares: its keys, owners, tags and freshness policy."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import dagster as dg

from sm_assets.core import layout
from sm_assets.core.inventory_options import InventoryOptions
from sm_assets.core.reports.schemas import REPORT_TABLES, TREND_30D_TABLE
from sm_assets.core.specs import RESOURCE_SPECS

DAILY_START_DATE = "2026-01-01"
# end_offset=1: today's tables can be built as soon as today's snapshots exist.
daily_partitions = dg.DailyPartitionsDefinition(start_date=DAILY_START_DATE, end_offset=1, timezone="UTC")


@dataclass(frozen=True)
class InventoryKeys:
    raw: dg.AssetKey
    status: dg.AssetKey
    tables: dict[str, dg.AssetKey]  # by resource type
    reports: dict[str, dg.AssetKey]  # by report table
    trend: dg.AssetKey

    @classmethod
    def of(cls, options: InventoryOptions) -> "InventoryKeys":
        def key(*path: str) -> dg.AssetKey:
            return dg.AssetKey(list(options.key(*path)))

        return cls(
            raw=key("raw", "sagemaker_account_snapshot"),
            status=key("aws", layout.DAILY_STATUS_TABLE),
            tables={s.resource_type: key("aws", s.table.name) for s in RESOURCE_SPECS},
            reports={table: key("reports", table) for table in REPORT_TABLES},
            trend=key("analytics", TREND_30D_TABLE),
        )

    @property
    def daily(self) -> list[dg.AssetKey]:
        """The day's tables: collection status, then one per resource type."""
        return [self.status, *self.tables.values()]

    @property
    def everything(self) -> list[dg.AssetKey]:
        return [self.raw, *self.daily, *self.reports.values(), self.trend]


DEFAULT_KEYS = InventoryKeys.of(InventoryOptions())


def freshness_policy(options: InventoryOptions) -> dg.FreshnessPolicy | None:
    """The daily tables and reports are overdue when their latest materialization (of any day) is older than
    the fail window: the UI shows it, and the freshness daemon records the state change."""
    if options.freshness_fail_hours is None:
        return None
    warn = options.freshness_warn_hours
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=options.freshness_fail_hours),
        warn_window=timedelta(hours=warn) if warn is not None else None,
    )


def asset_attributes(options: InventoryOptions, layer: str, *, fresh: bool = True) -> dict[str, Any]:
    """owners, tags (`layer`: raw, daily, report or analytics, then the configured tags) and, for the
    daily assets, the freshness policy: keyword arguments of both `@asset` and `AssetSpec`."""
    attributes: dict[str, Any] = {"owners": list(options.owners), "tags": {"layer": layer, **options.tags}}
    if fresh:
        attributes["freshness_policy"] = freshness_policy(options)
    return attributes

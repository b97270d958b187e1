"""One run for a day's tables, reports and the downstream trend (what `sm-assets refresh` launches after the
collection; the automation sensor launches the same assets when account snapshots change)."""

from typing import TYPE_CHECKING

import dagster as dg

from sm_assets.core.inventory_options import InventoryOptions
from sm_assets.defs.shared import InventoryKeys, daily_partitions

if TYPE_CHECKING:  # what define_asset_job returns (not exported by dagster)
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def build_daily_job(options: InventoryOptions, keys: InventoryKeys) -> "UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        options.name("sagemaker_daily_job"),
        selection=dg.AssetSelection.assets(*keys.daily, *keys.reports.values(), keys.trend),
        partitions_def=daily_partitions,
        description="Build one day's aws/* tables, the coverage reports and the downstream trend.",
    )

"""One run for a day's tables, reports and the downstream trend (what `sm-assets refresh` launches after the
collection; the automation sensor launches the same assets when account snapshots change)."""

import dagster as dg

from sm_assets.defs.inventory.assets import DAILY_KEYS, daily_partitions
from sm_assets.defs.reports.assets import REPORT_ASSETS

daily_job = dg.define_asset_job(
    "sagemaker_daily_job",
    selection=dg.AssetSelection.assets(*DAILY_KEYS, *REPORT_ASSETS),
    partitions_def=daily_partitions,
    description="Build one day's aws/* tables, the coverage reports and the downstream trend.",
)

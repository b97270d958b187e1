"""A lake-wide check: what the next day's tables will read is readable and has its dataset's columns."""

import dagster as dg

from sm_assets.core.lake_check import check_lake
from sm_assets.defs.inventory.assets import STATUS_KEY
from sm_assets.defs.resources import SmAssetsConfig


@dg.asset_check(
    asset=STATUS_KEY,
    name="lake_files_readable",
    description="The latest daily files and every account snapshot stored since read back with their columns: "
    "a corrupt or partial lake file is reported here, never read silently.",
)
def lake_files_readable(sm_config: SmAssetsConfig) -> dg.AssetCheckResult:
    result = check_lake(sm_config.settings().lake_dir)
    return dg.AssetCheckResult(
        passed=not result.broken,
        metadata={
            "files_checked": result.checked,
            "broken": dg.MetadataValue.json(result.broken[:100]),
            "latest_daily_day": result.latest_daily_day or "",
        },
    )

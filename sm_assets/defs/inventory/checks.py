"""A lake-wide check: what the next day's tables will read is readable and has its dataset's columns."""

import dagster as dg

from sm_assets.core.inventory_options import InventoryOptions
from sm_assets.core.lake_check import check_lake
from sm_assets.defs.resources import resource_keys
from sm_assets.defs.shared import InventoryKeys


def build_lake_check(options: InventoryOptions, keys: InventoryKeys) -> dg.AssetChecksDefinition:
    config_key, _ = resource_keys(options)

    # Not blocking: it guards the NEXT build (today's tables already failed on any file they could not read),
    # so the day's reports need not wait for a scan of every snapshot stored since.
    @dg.asset_check(
        asset=keys.status,
        name="lake_files_readable",
        required_resource_keys={config_key},
        blocking=False,
        description="The latest daily files and every account snapshot stored since read back with their columns: "
        "a corrupt or partial lake file is reported here, never read silently.",
    )
    def lake_files_readable(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        result = check_lake(getattr(context.resources, config_key).settings().lake_dir)
        return dg.AssetCheckResult(
            passed=not result.broken,
            metadata={
                "files_checked": result.checked,
                "broken": dg.MetadataValue.json(result.broken[:100]),
                "latest_daily_day": result.latest_daily_day or "",
            },
        )

    return lake_files_readable

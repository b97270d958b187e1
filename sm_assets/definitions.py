"""The sm-assets code location (`dagster dev` loads `defs` from here)."""

import dagster as dg

from sm_assets.core.config import Settings
from sm_assets.defs.inventory.assets import INVENTORY_ASSETS
from sm_assets.defs.inventory.automation import (
    automation_sensor,
    aws_account_sensor,
    daily_inventory_refresh,
    inventory_job,
)
from sm_assets.defs.inventory.checks import lake_files_readable
from sm_assets.defs.reports.assets import REPORT_ASSETS
from sm_assets.defs.reports.automation import daily_job
from sm_assets.defs.resources import build_resources


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[*INVENTORY_ASSETS, *REPORT_ASSETS],
        asset_checks=[lake_files_readable],
        jobs=[inventory_job, daily_job],
        schedules=[daily_inventory_refresh],
        sensors=[aws_account_sensor, automation_sensor],
        resources=build_resources(settings),
    )


defs = build_definitions(Settings.from_env())

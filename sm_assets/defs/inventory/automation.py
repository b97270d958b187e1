"""Keep the aws_account partitions in sync with the organization, and refresh them daily."""

from collections.abc import Iterable, Sequence

import dagster as dg

from sm_assets.core.collect import AccountDiscoveryError, resolve_account_ids
from sm_assets.core.config import ConfigError
from sm_assets.defs.inventory.assets import INVENTORY_ASSETS, aws_account_partitions
from sm_assets.defs.resources import SmAssetsConfig

inventory_job = dg.define_asset_job(
    "sagemaker_inventory_job",
    selection=dg.AssetSelection.assets(*INVENTORY_ASSETS),
    description="Collect account partitions (raw + normalized tables); a partition range runs as one batch.",
)


def all_accounts_run_tags(account_ids: Sequence[str]) -> dict[str, str]:
    """Tags for ONE run over every account partition (the assets use a single-run backfill policy),
    instead of one run (and one process start) per account."""
    return {
        "dagster/asset_partition_range_start": account_ids[0],
        "dagster/asset_partition_range_end": account_ids[-1],
    }


def partition_changes(existing: Iterable[str], current: Iterable[str]) -> tuple[list[str], list[str]]:
    """(accounts to add, accounts to remove) so the partition set equals `current`."""
    existing_set, current_set = set(existing), set(current)
    return sorted(current_set - existing_set), sorted(existing_set - current_set)


def sync_account_partitions(instance: dg.DagsterInstance, account_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    added, removed = partition_changes(instance.get_dynamic_partitions(aws_account_partitions.name), account_ids)
    if added:
        instance.add_dynamic_partitions(aws_account_partitions.name, added)
    for account_id in removed:
        instance.delete_dynamic_partition(aws_account_partitions.name, account_id)
    return added, removed


@dg.sensor(
    name="aws_account_sensor",
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition for every ACTIVE organization account (or SM_ASSETS_ACCOUNTS); removes gone ones.",
)
def aws_account_sensor(
    context: dg.SensorEvaluationContext, sm_config: SmAssetsConfig
) -> dg.SensorResult | dg.SkipReason:
    try:
        account_ids = resolve_account_ids(sm_config.settings())
    except (AccountDiscoveryError, ConfigError) as exc:
        # Never drop partitions because discovery failed once.
        return dg.SkipReason(str(exc))
    except Exception as exc:  # noqa: BLE001 - credentials/network problems must not crash the daemon tick
        return dg.SkipReason(f"Account discovery failed: {type(exc).__name__}: {exc}")
    added, removed = partition_changes(
        context.instance.get_dynamic_partitions(aws_account_partitions.name), account_ids
    )
    context.log.info(f"accounts: {len(account_ids)}, adding {len(added)}, removing {len(removed)}")
    return dg.SensorResult(
        dynamic_partitions_requests=[
            *([aws_account_partitions.build_add_request(added)] if added else []),
            *([aws_account_partitions.build_delete_request(removed)] if removed else []),
        ]
    )


@dg.schedule(
    name="daily_inventory_refresh",
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    job=inventory_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh every account partition once a day (03:00 UTC), as one batched run.",
)
def daily_inventory_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    accounts = context.instance.get_dynamic_partitions(aws_account_partitions.name)
    if not accounts:
        return dg.SkipReason("No aws_account partitions yet: the aws_account_sensor adds them.")
    day = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(run_key=f"inventory:{day}", tags=all_accounts_run_tags(accounts))

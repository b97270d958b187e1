"""Keep the account partitions in sync with the organization, and collect every account daily, in shards."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import dagster as dg

from sm_assets.core.accounts import resolve_account_ids
from sm_assets.core.errors import AccountDiscoveryError, ConfigError
from sm_assets.core.inventory_options import ACCOUNT_PARTITIONS, InventoryOptions
from sm_assets.core.sharding import partition_changes, shards
from sm_assets.defs.resources import SmAssetsConfig, resource_keys
from sm_assets.defs.shared import InventoryKeys

if TYPE_CHECKING:  # what define_asset_job returns (not exported by dagster)
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

SHARD_TAG = "sm-assets/shard"  # "i/n" of the day's shards
# One value for every collection run (of every inventory): deploy/dagster.yaml limits how many run at once.
COLLECT_TAG = "sm-assets/collect"


def shard_run_tags(account_ids: Sequence[str], index: int, count: int) -> dict[str, str]:
    """Tags for ONE run over a contiguous range of account partitions (the raw asset has a single-run
    backfill policy), instead of one run (and one process start) per account."""
    return {
        "dagster/asset_partition_range_start": account_ids[0],
        "dagster/asset_partition_range_end": account_ids[-1],
        SHARD_TAG: f"{index + 1}/{count}",
        COLLECT_TAG: "daily",
        # With run retries on (deploy/dagster.yaml), a failed shard is re-run alone.
        "dagster/max_retries": "2",
        "dagster/retry_on_asset_or_op_failure": "true",
    }


def sync_account_partitions(
    instance: dg.DagsterInstance, account_ids: Sequence[str], partition_name: str = ACCOUNT_PARTITIONS
) -> tuple[list[str], list[str]]:
    added, removed = partition_changes(instance.get_dynamic_partitions(partition_name), account_ids)
    if added:
        instance.add_dynamic_partitions(partition_name, added)
    for account_id in removed:
        instance.delete_dynamic_partition(partition_name, account_id)
    return added, removed


def build_inventory_job(options: InventoryOptions, keys: InventoryKeys) -> "UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        options.name("sagemaker_inventory_job"),
        selection=dg.AssetSelection.assets(keys.raw),
        description="Collect account partitions into raw snapshots; a partition range runs as one batch.",
    )


def build_automation(
    options: InventoryOptions,
    keys: InventoryKeys,
    account_partitions: dg.DynamicPartitionsDefinition,
    inventory_job: "UnresolvedAssetJobDefinition",
) -> tuple[list[dg.SensorDefinition], list[dg.ScheduleDefinition]]:
    """The account sensor, the sharded daily schedule and the automation sensor of one inventory."""
    config_key, _ = resource_keys(options)
    running = options.start_running
    sensor_status = dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
    owners = list(options.owners) or None

    @dg.sensor(
        name=options.name("aws_account_sensor"),
        minimum_interval_seconds=3600,
        default_status=sensor_status,
        required_resource_keys={config_key},
        owners=owners,
        description=f"Adds an {account_partitions.name} partition for every ACTIVE organization account (or the "
        "configured accounts); removes gone ones.",
    )
    def aws_account_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        sm_config: SmAssetsConfig = getattr(context.resources, config_key)
        try:
            account_ids = resolve_account_ids(sm_config.settings())
        except (AccountDiscoveryError, ConfigError) as exc:
            # Never drop partitions because discovery failed once.
            return dg.SkipReason(str(exc))
        except Exception as exc:  # noqa: BLE001 - credentials/network problems must not crash the daemon tick
            return dg.SkipReason(f"Account discovery failed: {type(exc).__name__}: {exc}")
        added, removed = partition_changes(
            context.instance.get_dynamic_partitions(account_partitions.name), account_ids
        )
        context.log.info(f"accounts: {len(account_ids)}, adding {len(added)}, removing {len(removed)}")
        return dg.SensorResult(
            dynamic_partitions_requests=[
                *([account_partitions.build_add_request(added)] if added else []),
                *([account_partitions.build_delete_request(removed)] if removed else []),
            ]
        )

    @dg.schedule(
        name=options.name("daily_inventory_refresh"),
        cron_schedule=options.inventory_cron,
        execution_timezone=options.timezone,
        job=inventory_job,
        default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
        required_resource_keys={config_key},
        owners=owners,
        description=f"Collect every account partition ({options.inventory_cron}, {options.timezone}): one run per "
        "shard of shard_size accounts, queued by the run coordinator. The day's tables and reports follow when "
        "the last shard is done.",
    )
    def daily_inventory_refresh(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
        accounts = context.instance.get_dynamic_partitions(account_partitions.name)
        if not accounts:
            return dg.SkipReason(f"No {account_partitions.name} partitions yet: the account sensor adds them.")
        day = context.scheduled_execution_time.date().isoformat()
        # Only the shard size is read: the tick need not prove the lake writable (the runs do).
        parts = shards(accounts, getattr(context.resources, config_key).settings(check_writable=False).shard_size)
        return [
            dg.RunRequest(run_key=f"inventory:{day}:{i + 1}/{len(parts)}", tags=shard_run_tags(shard, i, len(parts)))
            for i, shard in enumerate(parts)
        ]

    automation_sensor = dg.AutomationConditionSensorDefinition(
        options.name("sm_assets_automation_sensor"),
        # This inventory's assets only: an automation sensor may not share an asset with another one (a
        # second inventory's, or the default sensor that covers the deployment's own assets).
        target=dg.AssetSelection.assets(*keys.daily, *keys.reports.values(), keys.trend),
        default_status=sensor_status,
        minimum_interval_seconds=60,
        description="Builds the latest day's tables and reports once account snapshots changed and no collection runs.",
    )
    return [aws_account_sensor, automation_sensor], [daily_inventory_refresh]

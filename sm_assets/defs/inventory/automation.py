"""Keep the aws_account partitions in sync with the organization, and collect every account daily, in shards."""

from collections.abc import Sequence

import dagster as dg

from sm_assets.core.accounts import resolve_account_ids
from sm_assets.core.errors import AccountDiscoveryError, ConfigError
from sm_assets.core.sharding import partition_changes, shards
from sm_assets.defs.inventory.assets import DAILY_KEYS, RAW_KEY, aws_account_partitions
from sm_assets.defs.resources import SmAssetsConfig

SHARD_TAG = "sm-assets/shard"  # "i/n" of the day's shards
# One value for every collection run: deploy/dagster.yaml limits how many run at once with it.
COLLECT_TAG = "sm-assets/collect"

inventory_job = dg.define_asset_job(
    "sagemaker_inventory_job",
    selection=dg.AssetSelection.assets(RAW_KEY),
    description="Collect account partitions into raw snapshots; a partition range runs as one batch.",
)


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
    description="Collect every account partition once a day (03:00 UTC): one run per shard of SM_ASSETS_SHARD_SIZE "
    "accounts, queued by the run coordinator. The day's tables and reports follow when the last shard is done.",
)
def daily_inventory_refresh(
    context: dg.ScheduleEvaluationContext, sm_config: SmAssetsConfig
) -> list[dg.RunRequest] | dg.SkipReason:
    accounts = context.instance.get_dynamic_partitions(aws_account_partitions.name)
    if not accounts:
        return dg.SkipReason("No aws_account partitions yet: the aws_account_sensor adds them.")
    day = context.scheduled_execution_time.date().isoformat()
    parts = shards(accounts, sm_config.shard_size)
    return [
        dg.RunRequest(run_key=f"inventory:{day}:{i + 1}/{len(parts)}", tags=shard_run_tags(shard, i, len(parts)))
        for i, shard in enumerate(parts)
    ]


automation_sensor = dg.AutomationConditionSensorDefinition(
    "sm_assets_automation_sensor",
    target=dg.AssetSelection.assets(*DAILY_KEYS).downstream(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Builds the latest day's tables and reports once account snapshots changed and no collection runs.",
)

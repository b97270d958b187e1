"""The inventory assets: one account-partitioned raw snapshot, and the daily tables built from it."""

from collections.abc import Iterator
from datetime import date

import dagster as dg

from sm_assets.core import daily_tables, layout, raw_snapshot, storage
from sm_assets.core.errors import LakeError
from sm_assets.core.inventory_options import ACCOUNT_PARTITIONS, InventoryOptions
from sm_assets.core.layout import collection_stamp
from sm_assets.core.schemas import COLLECTION_STATUS_SCHEMA, TableSpec
from sm_assets.core.snapshots import StoredSnapshot
from sm_assets.core.specs import RESOURCE_SPECS, ResourceSpec
from sm_assets.defs.resources import SmAssetsConfig, resource_keys
from sm_assets.defs.shared import DEFAULT_KEYS, InventoryKeys, asset_attributes, daily_partitions

# The default inventory's (no key prefix) partitions and keys, for the CLI and the tests.
aws_account_partitions = dg.DynamicPartitionsDefinition(name=ACCOUNT_PARTITIONS)
RAW_KEY = DEFAULT_KEYS.raw
STATUS_KEY = DEFAULT_KEYS.status
TABLE_KEYS = DEFAULT_KEYS.tables
DAILY_KEYS = DEFAULT_KEYS.daily

# Dagster reads a materialization's data version from this tag (staleness of what depends on it).
DATA_VERSION_TAG = "dagster/data_version"

CHECK_EVERY_REGION = "every_region_has_status"
CHECK_NOT_DENIED = "no_access_denied"
CHECK_NO_ERRORS = "no_collection_errors"

# The latest day only, when any account partition was newly materialized and none is still running (a
# sharded schedule's queued runs count as running): after the last shard, or after one account launched
# from the UI. Never-collected accounts don't block it.
DAILY_TABLES_CONDITION = (
    dg.AutomationCondition.in_latest_time_window()
    & dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("latest_day_after_any_account_update")


def _schema(columns: list[tuple[str, str, str]]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, type_, description=desc) for name, type_, desc in columns])


RAW_TABLE_SCHEMA = _schema(
    [
        ("snapshot_date", "DATE", "UTC collection date"),
        ("collected_at", "TIMESTAMP WITH TIME ZONE", "When the account was collected"),
        ("account_id", "VARCHAR", "Member account"),
        ("region", "VARCHAR", "Region"),
        ("resource_type", "VARCHAR", "SageMaker resource type"),
        ("arn", "VARCHAR", "Resource ARN"),
        ("name", "VARCHAR", "Resource name"),
        ("describe_json", "VARCHAR", "Describe output verbatim (unknown fields kept, secrets redacted)"),
        ("tags_json", "VARCHAR", "ListTags result verbatim"),
    ]
)
STATUS_TABLE_SCHEMA = _schema([(f.name, str(f.type), "") for f in COLLECTION_STATUS_SCHEMA])


def table_schema(table: TableSpec) -> dg.TableSchema:
    return _schema([(c.name, c.duckdb_type, c.description) for c in table.columns])


def column_lineage(spec: ResourceSpec, raw_key: dg.AssetKey) -> dg.TableColumnLineage:
    """Each column from the raw describe field it is read from (``describe_json.<Field>``)."""
    raw_column = {"Tags": "tags_json"}
    return dg.TableColumnLineage(
        deps_by_column={
            c.name: [
                dg.TableColumnDep(asset_key=raw_key, column_name=raw_column.get(f, f"describe_json.{f}"))
                for f in c.source_fields
            ]
            for c in spec.table.columns
            if c.source_fields
        }
    )


def _snapshot_event(stored: StoredSnapshot, raw_key: dg.AssetKey) -> dg.AssetMaterialization:
    """One account partition's materialization, as soon as its snapshot is committed; the collection time
    is its data version, so the day's tables show as stale until rebuilt."""
    metadata = {k: dg.MetadataValue.json(v) if isinstance(v, list | dict) else v for k, v in stored.metadata().items()}
    return dg.AssetMaterialization(
        asset_key=raw_key,
        partition=stored.account_id,
        metadata={**metadata, "path": dg.MetadataValue.path(str(stored.raw_path))},
        tags={DATA_VERSION_TAG: str(collection_stamp(stored.collected_at))},
    )


def build_raw_snapshot_asset(
    options: InventoryOptions, keys: InventoryKeys, account_partitions: dg.DynamicPartitionsDefinition
) -> dg.AssetsDefinition:
    config_key, _ = resource_keys(options)
    raw_key = keys.raw

    # Not blocking: the inventory job materializes this asset alone, and a region that failed or was denied
    # is data (status rows): it must not fail a shard run (and retry it whole) for one region. The day's
    # tables turn the day red instead when a snapshot holds errors.
    @dg.asset(
        key=raw_key,
        partitions_def=account_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        # Each account partition is reported by its own AssetMaterialization the moment it is stored.
        output_required=False,
        group_name=options.groups[0],
        kinds={"aws", "parquet"},
        **asset_attributes(options, "raw", fresh=False),
        metadata={"dagster/column_schema": RAW_TABLE_SCHEMA},
        required_resource_keys={config_key},
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_EVERY_REGION, asset=raw_key, description="Every configured region has a status", blocking=False
            ),
            dg.AssetCheckSpec(
                CHECK_NOT_DENIED, asset=raw_key, description="No region was access_denied (WARN)", blocking=False
            ),
            dg.AssetCheckSpec(
                CHECK_NO_ERRORS, asset=raw_key, description="No region failed with an error", blocking=False
            ),
        ],
    )
    def sagemaker_account_snapshot(
        context: dg.AssetExecutionContext,
    ) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
        """One account's SageMaker inventory per collection: every resource type's describe output (list,
        describe, ListTags) in every configured region, and a status per (region, resource type): ok,
        access_denied or error. A denied account is recorded as such, never as an account with zero resources.
        A run over many account partitions collects them concurrently and reports each as it is stored."""
        sm_config: SmAssetsConfig = getattr(context.resources, config_key)
        settings = sm_config.settings()
        accounts = list(context.partition_keys)
        checks = raw_snapshot.CollectionChecks(settings.regions)
        # Every log line is an event-log row: about ten progress lines, and the first problems.
        log_every, warned = max(1, len(accounts) // 10), 0
        for stored in raw_snapshot.collect_into_lake(settings, accounts):
            checks.add(stored)
            if checks.accounts % log_every == 0 or checks.accounts == len(accounts):
                context.log.info(f"stored {checks.accounts}/{len(accounts)} accounts")
            for problem in (*stored.denied, *stored.errors)[: max(0, 20 - warned)]:
                context.log.warning(f"{stored.account_id} {problem}")
                warned += 1
            yield _snapshot_event(stored, raw_key)
        yield dg.AssetCheckResult(
            asset_key=raw_key,
            check_name=CHECK_EVERY_REGION,
            passed=not checks.missing,
            metadata={"missing": dg.MetadataValue.json(checks.missing[:100]), "expected": checks.expected_cells},
        )
        yield dg.AssetCheckResult(
            asset_key=raw_key,
            check_name=CHECK_NOT_DENIED,
            passed=not checks.denied,
            severity=dg.AssetCheckSeverity.WARN,
            description="Access was denied: these accounts' counts are unknown, not zero.",
            metadata={"denied": dg.MetadataValue.json(checks.denied[:100]), "denied_count": len(checks.denied)},
        )
        yield dg.AssetCheckResult(
            asset_key=raw_key,
            check_name=CHECK_NO_ERRORS,
            passed=not checks.errors,
            metadata={
                "errors": dg.MetadataValue.json(checks.errors[:100]),
                "error_count": len(checks.errors),
                "api_calls": checks.api_calls,
                "api_calls_saved": checks.api_calls_saved,
            },
        )

    return sagemaker_account_snapshot


def _daily_specs(options: InventoryOptions, keys: InventoryKeys) -> list[dg.AssetSpec]:
    def spec(key: dg.AssetKey, description: str, schema: dg.TableSchema, table: str) -> dg.AssetSpec:
        return dg.AssetSpec(
            key,
            deps=[dg.AssetDep(keys.raw, partition_mapping=dg.AllPartitionMapping())],
            group_name=options.groups[0],
            kinds={"duckdb", "parquet"},
            description=description,
            automation_condition=DAILY_TABLES_CONDITION,
            **asset_attributes(options, "daily"),
            metadata={"dagster/column_schema": schema, "dagster/table_name": f"sm_assets.aws.{table}"},
        )

    return [
        spec(
            keys.status,
            "Collection status as of the day: each account's latest snapshot on or before it, one row per "
            "(account, region, resource type): ok, access_denied or error.",
            STATUS_TABLE_SCHEMA,
            layout.DAILY_STATUS_TABLE,
        ),
        *[
            spec(
                keys.tables[s.resource_type],
                f"{s.table.description} The whole organization as of the day (each account's latest snapshot on "
                f"or before it): `aws.{s.table.name}` is the latest day, `aws.{s.table.name}_history` every day.",
                table_schema(s.table),
                s.table.name,
            )
            for s in RESOURCE_SPECS
        ],
    ]


def build_daily_tables_asset(options: InventoryOptions, keys: InventoryKeys) -> dg.AssetsDefinition:
    config_key, _ = resource_keys(options)

    @dg.multi_asset(
        specs=_daily_specs(options, keys),
        check_specs=[
            # Partitioned like the tables: each day's evaluation is recorded for that day. Blocking: a table
            # with the wrong columns, duplicate keys, missing required fields or foreign ARNs would make the
            # same run's reports wrong, so they are skipped (the table's files are written either way).
            dg.AssetCheckSpec(
                name,
                asset=keys.tables[s.resource_type],
                description=desc,
                partitions_def=daily_partitions,
                blocking=True,
            )
            for s in RESOURCE_SPECS
            for name, desc in daily_tables.TABLE_CHECKS
        ],
        partitions_def=daily_partitions,
        name=options.name("sagemaker_daily_tables"),
        required_resource_keys={config_key},
    )
    def sagemaker_daily_tables(
        context: dg.AssetExecutionContext,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Build the day's tables from each account's latest snapshot on or before the day, one file per
        table; the raw describe output they were built from is kept beside them (`aws.raw_sagemaker_<type>`)."""
        settings = getattr(context.resources, config_key).settings()
        day = date.fromisoformat(context.partition_key)
        try:
            storage.prepare_storage(settings)
            build = daily_tables.build_daily_tables(settings.lake_dir, day)
        except LakeError as exc:
            raise dg.Failure(str(exc)) from None
        common = {"as_of_date": day.isoformat(), "accounts": build.accounts}
        if build.base_day:
            common["unchanged_accounts_from"] = build.base_day.isoformat()
        if build.pruned_days:
            common["pruned_days"] = dg.MetadataValue.json([d.isoformat() for d in build.pruned_days])
            common["pruned_files"] = build.pruned_files
        status = build.outputs[layout.DAILY_STATUS_TABLE]
        yield dg.MaterializeResult(
            asset_key=keys.status,
            metadata={
                **common,
                "dagster/row_count": status.rows,
                "statuses": dg.MetadataValue.json(build.status_counts),
                "path": dg.MetadataValue.path(str(status.path)),
            },
        )
        for spec in RESOURCE_SPECS:
            output = build.outputs[spec.table.name]
            raw = build.outputs[daily_tables.raw_table_name(spec.resource_type)]
            yield dg.MaterializeResult(
                asset_key=keys.tables[spec.resource_type],
                metadata={
                    **common,
                    "dagster/row_count": output.rows,
                    "rows_by_region": dg.MetadataValue.json(output.rows_by_region),
                    "dagster/column_schema": table_schema(spec.table),
                    "dagster/column_lineage": column_lineage(spec, keys.raw),
                    "path": dg.MetadataValue.path(str(output.path)),
                    "raw_path": dg.MetadataValue.path(str(raw.path)),
                },
            )
            for check in output.checks:
                yield dg.AssetCheckResult(
                    asset_key=keys.tables[spec.resource_type],
                    check_name=check.name,
                    passed=check.passed,
                    metadata={
                        k: dg.MetadataValue.json(v) if isinstance(v, list | dict) else v
                        for k, v in check.metadata.items()
                    },
                )
        if build.errors:
            # Everything reachable is stored above; still make the run red when data is missing for a reason
            # other than denied access, so a scheduled run never looks green with holes in it.
            raise dg.Failure(
                description=f"collection failed in {len(build.errors)} account-region-type cell(s) as of {day}",
                metadata={"errors": dg.MetadataValue.json(build.errors[:100])},
            )

    return sagemaker_daily_tables

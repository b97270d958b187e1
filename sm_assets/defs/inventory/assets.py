"""Account-partitioned inventory assets: raw describe output per account, then normalized tables."""

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from sm_assets.core.collect import AccountSnapshot, collect_account
from sm_assets.core.config import Settings
from sm_assets.core.lake import LakeError, dataset_file, latest_snapshot_date, read_file, write_atomic
from sm_assets.core.lake import refresh_inventory_views as refresh_views
from sm_assets.core.normalize import normalized_table, raw_table, snapshot_from_raw, status_table
from sm_assets.core.schemas import (
    COLLECTION_STATUS_DATASET,
    COLLECTION_STATUS_SCHEMA,
    RAW_SCHEMA,
    TableSpec,
)
from sm_assets.core.specs import RESOURCE_SPECS, ResourceSpec
from sm_assets.defs.resources import SmAssetsConfig

GROUP = "sagemaker_inventory"
aws_account_partitions = dg.DynamicPartitionsDefinition(name="aws_account")

STATUS_KEY = dg.AssetKey(["raw", "collection_status"])
RAW_KEYS: dict[str, dg.AssetKey] = {
    s.resource_type: dg.AssetKey(["raw", f"sagemaker_{s.resource_type}"]) for s in RESOURCE_SPECS
}
NORMALIZED_KEYS: dict[str, dg.AssetKey] = {s.resource_type: dg.AssetKey(["aws", s.table.name]) for s in RESOURCE_SPECS}

# Checks on the collection: the region-completeness one guards data, the access one is a warning.
CHECK_EVERY_REGION = "every_region_has_status"
CHECK_NOT_DENIED = "no_access_denied"
CHECK_NO_ERRORS = "no_collection_errors"


def _schema_metadata(columns: list[tuple[str, str, str]]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, type_, description=desc) for name, type_, desc in columns])


RAW_TABLE_SCHEMA = _schema_metadata(
    [
        ("snapshot_date", "DATE", "UTC collection date"),
        ("collected_at", "TIMESTAMP WITH TIME ZONE", "When the account was collected"),
        ("account_id", "VARCHAR", "Member account"),
        ("region", "VARCHAR", "Region"),
        ("resource_type", "VARCHAR", "SageMaker resource type"),
        ("arn", "VARCHAR", "Resource ARN"),
        ("name", "VARCHAR", "Resource name"),
        ("describe_json", "VARCHAR", "Describe output verbatim (unknown fields kept, timestamps ISO-8601)"),
        ("tags_json", "VARCHAR", "ListTags result verbatim"),
    ]
)
STATUS_TABLE_SCHEMA = _schema_metadata([(f.name, str(f.type), "") for f in COLLECTION_STATUS_SCHEMA])


def table_schema(table: TableSpec) -> dg.TableSchema:
    return _schema_metadata([(c.name, c.duckdb_type, c.description) for c in table.columns])


def column_lineage(spec: ResourceSpec) -> dg.TableColumnLineage:
    return dg.TableColumnLineage(
        deps_by_column={
            c.name: [dg.TableColumnDep(asset_key=RAW_KEYS[spec.resource_type], column_name=f) for f in c.source_fields]
            for c in spec.table.columns
            if c.source_fields
        }
    )


def _lake_path(settings: Settings, dataset: str, snapshot_date: date, account_id: str) -> Path:
    return dataset_file(settings.lake_dir, dataset, snapshot_date, account_id)


def write_snapshot(settings: Settings, snapshot: AccountSnapshot) -> dict[str, Path]:
    """Store one account snapshot: a status file plus one raw file per resource type."""
    paths = {
        spec.resource_type: write_atomic(
            raw_table(snapshot, spec.resource_type),
            _lake_path(settings, spec.raw_dataset, snapshot.snapshot_date, snapshot.account_id),
        )
        for spec in RESOURCE_SPECS
    }
    # The status file goes last: its presence marks the snapshot as complete.
    paths[COLLECTION_STATUS_DATASET] = write_atomic(
        status_table(snapshot),
        _lake_path(settings, COLLECTION_STATUS_DATASET, snapshot.snapshot_date, snapshot.account_id),
    )
    return paths


def _status_checks(snapshot: AccountSnapshot, stored_status_path: Path) -> list[dg.AssetCheckResult]:
    stored = read_file(stored_status_path, COLLECTION_STATUS_SCHEMA).to_pylist()
    expected = {(r, s.resource_type) for r in snapshot.regions for s in RESOURCE_SPECS}
    present = {(row["region"], row["resource_type"]) for row in stored}
    missing = sorted(expected - present)
    denied = [
        f"{r['region']}/{r['resource_type']}: {r['error_code']}" for r in stored if r["status"] == "access_denied"
    ]
    errors = [
        f"{r['region']}/{r['resource_type']}: {r['error_code']}: {r['message']}"
        for r in stored
        if r["status"] == "error"
    ]
    return [
        dg.AssetCheckResult(
            asset_key=STATUS_KEY,
            check_name=CHECK_EVERY_REGION,
            passed=not missing,
            metadata={
                "missing": dg.MetadataValue.json([list(m) for m in missing]),
                "configured": len(expected),
            },
        ),
        dg.AssetCheckResult(
            asset_key=STATUS_KEY,
            check_name=CHECK_NOT_DENIED,
            passed=not denied,
            severity=dg.AssetCheckSeverity.WARN,
            description="Access was denied: this account's counts are unknown, not zero.",
            metadata={"denied": dg.MetadataValue.json(denied)},
        ),
        dg.AssetCheckResult(
            asset_key=STATUS_KEY,
            check_name=CHECK_NO_ERRORS,
            passed=not errors,
            metadata={"errors": dg.MetadataValue.json(errors)},
        ),
    ]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            STATUS_KEY,
            description="One collection-status record per (region, resource type): ok, access_denied or error.",
            kinds={"aws", "parquet"},
            group_name=GROUP,
            metadata={"dagster/column_schema": STATUS_TABLE_SCHEMA},
        ),
        *[
            dg.AssetSpec(
                RAW_KEYS[spec.resource_type],
                description=(
                    f"Raw SageMaker {spec.resource_type.replace('_', ' ')} output per account and snapshot date, "
                    f"verbatim from {', '.join(spec.api_operations)}."
                ),
                kinds={"aws", "parquet"},
                group_name=GROUP,
                metadata={"dagster/column_schema": RAW_TABLE_SCHEMA},
            )
            for spec in RESOURCE_SPECS
        ],
    ],
    check_specs=[
        dg.AssetCheckSpec(CHECK_EVERY_REGION, asset=STATUS_KEY, description="Every configured region has a status"),
        dg.AssetCheckSpec(CHECK_NOT_DENIED, asset=STATUS_KEY, description="No region was access_denied (WARN)"),
        dg.AssetCheckSpec(CHECK_NO_ERRORS, asset=STATUS_KEY, description="No region failed with an error"),
    ],
    partitions_def=aws_account_partitions,
    name="collect_sagemaker_account",
)
def collect_sagemaker_account(
    context: dg.AssetExecutionContext, sm_config: SmAssetsConfig
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Assume the read-only role in one member account and collect every configured region:
    model quality job definitions (list, describe, tags), endpoints and ModelQuality monitoring schedules.
    A denied account is recorded as access_denied, never as an account with zero resources."""
    settings = sm_config.settings()
    account_id = context.partition_key
    snapshot = collect_account(account_id, settings)
    paths = write_snapshot(settings, snapshot)
    for status in snapshot.statuses:
        if status.status != "ok":
            context.log.warning(
                f"{account_id} {status.region} {status.resource_type}: {status.status} "
                f"{status.error_code}: {status.message}"
            )
    common = {"snapshot_date": snapshot.snapshot_date.isoformat(), "account_id": account_id}
    yield dg.MaterializeResult(
        asset_key=STATUS_KEY,
        metadata={
            **common,
            "dagster/row_count": len(snapshot.statuses),
            "statuses": dg.MetadataValue.json(
                {s: sum(x.status == s for x in snapshot.statuses) for s in ("ok", "access_denied", "error")}
            ),
            "api_calls": sum(s.api_calls for s in snapshot.statuses),
            "path": dg.MetadataValue.path(str(paths[COLLECTION_STATUS_DATASET])),
        },
    )
    for spec in RESOURCE_SPECS:
        yield dg.MaterializeResult(
            asset_key=RAW_KEYS[spec.resource_type],
            metadata={
                **common,
                "dagster/row_count": len(snapshot.items_of(spec.resource_type)),
                "path": dg.MetadataValue.path(str(paths[spec.resource_type])),
            },
        )
    yield from _status_checks(snapshot, paths[COLLECTION_STATUS_DATASET])


# ---------------------------------------------------------------------------------------------
# Normalized tables


def run_table_checks(
    conn: duckdb.DuckDBPyConnection, spec: ResourceSpec, path: Path, key: dg.AssetKey
) -> list[dg.AssetCheckResult]:
    """Partition-scoped checks on the file just written, plus the view's exact columns and types."""
    table = spec.table
    expected = [(c.name, c.duckdb_type) for c in table.columns]
    actual = [(r[0], r[1]) for r in conn.execute(f"DESCRIBE aws.{table.name}").fetchall()]
    src = f"read_parquet('{str(path).replace(chr(39), chr(39) * 2)}')"
    total, distinct = conn.execute(f"SELECT count(*), count(DISTINCT _key) FROM {src}").fetchone()
    required = [c.name for c in table.columns if c.required]
    null_counts = conn.execute(
        f"SELECT {', '.join(f'count(*) FILTER (WHERE {c} IS NULL)' for c in required)} FROM {src}"
    ).fetchone()
    nulls = {c: n for c, n in zip(required, null_counts, strict=True) if n}
    # arn:partition:sagemaker:REGION:ACCOUNT:...
    mismatched = conn.execute(
        f"SELECT _key FROM {src} WHERE split_part(_key, ':', 4) <> region "
        f"OR split_part(_key, ':', 5) <> account_id LIMIT 20"
    ).fetchall()
    return [
        dg.AssetCheckResult(
            asset_key=key,
            check_name="exact_columns_and_types",
            passed=actual == expected,
            metadata={"expected": dg.MetadataValue.json(expected), "actual": dg.MetadataValue.json(actual)},
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name="key_unique_per_snapshot",
            passed=total == distinct,
            metadata={"rows": total, "distinct_keys": distinct},
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name="required_fields_not_null",
            passed=not nulls,
            metadata={
                "null_counts": dg.MetadataValue.json(nulls),
                "required": dg.MetadataValue.json(required),
            },
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name="arn_matches_account_and_region",
            passed=not mismatched,
            metadata={"mismatched_keys": dg.MetadataValue.json([m[0] for m in mismatched])},
        ),
    ]


TABLE_CHECKS = (
    ("exact_columns_and_types", "The DuckDB view has exactly the DDSQL columns and types, in order"),
    ("key_unique_per_snapshot", "_key is unique within the snapshot"),
    ("required_fields_not_null", "Required fields are never NULL"),
    ("arn_matches_account_and_region", "Each ARN's account and region match the row's"),
)


def build_normalized_asset(spec: ResourceSpec) -> dg.AssetsDefinition:
    key = NORMALIZED_KEYS[spec.resource_type]
    table = spec.table

    @dg.asset(
        key=key,
        deps=[RAW_KEYS[spec.resource_type], STATUS_KEY],
        partitions_def=aws_account_partitions,
        group_name=GROUP,
        kinds={"duckdb", "parquet"},
        description=(
            f"{table.description} History keyed by (snapshot_date, account_id, region, _key) in "
            f"`aws.{table.name}_history`; the latest snapshot per account in the view `aws.{table.name}`."
        ),
        metadata={
            "dagster/column_schema": table_schema(table),
            "dagster/table_name": f"sm_assets.aws.{table.name}",
        },
        check_specs=[dg.AssetCheckSpec(name, asset=key, description=desc) for name, desc in TABLE_CHECKS],
    )
    def _normalized(
        context: dg.AssetExecutionContext, sm_config: SmAssetsConfig, duckdb: DuckDBResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        settings = sm_config.settings()
        account_id = context.partition_key
        snapshot_date = latest_snapshot_date(settings.lake_dir, COLLECTION_STATUS_DATASET, account_id)
        if snapshot_date is None:
            raise dg.Failure(f"No collected snapshot for account {account_id}: materialize the raw assets first")
        status = read_file(
            _lake_path(settings, COLLECTION_STATUS_DATASET, snapshot_date, account_id),
            COLLECTION_STATUS_SCHEMA,
        )
        raw_path = _lake_path(settings, spec.raw_dataset, snapshot_date, account_id)
        try:
            raw = read_file(raw_path, RAW_SCHEMA)
        except LakeError as exc:
            raise dg.Failure(str(exc)) from None
        collected_at: datetime = status.column("collected_at")[0].as_py()
        snapshot = snapshot_from_raw(raw, account_id, collected_at)
        out = write_atomic(
            normalized_table(snapshot, table, spec.resource_type),
            _lake_path(settings, table.name, snapshot_date, account_id),
        )
        with duckdb.get_connection() as conn:
            refresh_views(conn, settings.lake_dir)
            checks = run_table_checks(conn, spec, out, key)
            by_region = dict(
                conn.execute(
                    f"SELECT region, count(*) FROM read_parquet('{out}') GROUP BY region ORDER BY region"
                ).fetchall()
            )
        yield dg.MaterializeResult(
            metadata={
                "snapshot_date": snapshot_date.isoformat(),
                "dagster/row_count": sum(by_region.values()),
                "rows_by_region": dg.MetadataValue.json(by_region),
                "dagster/column_schema": table_schema(table),
                "dagster/column_lineage": column_lineage(spec),
                "dagster/table_name": f"sm_assets.aws.{table.name}",
                "path": dg.MetadataValue.path(str(out)),
            }
        )
        yield from checks
        # Everything reachable is stored above; still make the run red when data is missing for a
        # reason other than denied access, so a scheduled run never looks green with holes in it.
        failed = [
            f"{row['region']}: {row['error_code']}: {row['message']}"
            for row in status.to_pylist()
            if row["resource_type"] == spec.resource_type and row["status"] == "error"
        ]
        if failed:
            raise dg.Failure(
                description=f"{account_id}: {spec.resource_type} collection failed in {len(failed)} region(s)",
                metadata={"errors": dg.MetadataValue.json(failed)},
            )

    return _normalized


NORMALIZED_ASSETS = [build_normalized_asset(spec) for spec in RESOURCE_SPECS]
INVENTORY_ASSETS = [collect_sagemaker_account, *NORMALIZED_ASSETS]

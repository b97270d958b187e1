"""Account-partitioned inventory assets: raw describe output per account, then normalized tables."""

import json
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from dagster_duckdb import DuckDBResource

from sm_assets.core.collect import AccountSnapshot, collect_accounts
from sm_assets.core.config import Settings
from sm_assets.core.lake import (
    LakeError,
    LakePath,
    check_account_file,
    dataset_file,
    latest_snapshot_date,
    local_copies,
    read_file,
    write_many_atomic,
)
from sm_assets.core.lake import refresh_inventory_views as refresh_views
from sm_assets.core.normalize import (
    NormalizeError,
    normalize_files_per_account,
    normalize_raw_files,
    raw_table,
    status_table,
)
from sm_assets.core.schemas import (
    COLLECTION_STATUS_DATASET,
    COLLECTION_STATUS_SCHEMA,
    RAW_SCHEMA,
    TableSpec,
)
from sm_assets.core.specs import MODEL_QUALITY_JOB_DEFINITION_SPEC, RESOURCE_SPECS, ResourceSpec
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


def _lake_path(settings: Settings, dataset: str, snapshot_date: date, account_id: str) -> LakePath:
    return dataset_file(settings.lake_dir, dataset, snapshot_date, account_id)


def write_snapshots(settings: Settings, snapshots: list[AccountSnapshot]) -> dict[str, dict[str, LakePath]]:
    """Store account snapshots: per account a status file plus one raw file per resource type, written by
    a few threads, 64 accounts at a time (their Arrow tables are in memory meanwhile). Within a group every
    raw file goes before any status file: a status file marks its snapshot complete."""
    paths: dict[str, dict[str, LakePath]] = {snap.account_id: {} for snap in snapshots}
    for start in range(0, len(snapshots), 64):
        chunk = snapshots[start : start + 64]
        raw = [
            (snap, spec.resource_type, spec.raw_dataset, raw_table(snap, spec.resource_type))
            for snap in chunk
            for spec in RESOURCE_SPECS
        ]
        status = [(snap, COLLECTION_STATUS_DATASET, COLLECTION_STATUS_DATASET, status_table(snap)) for snap in chunk]
        for group in (raw, status):
            written = write_many_atomic(
                (table, _lake_path(settings, dataset, snap.snapshot_date, snap.account_id))
                for snap, _, dataset, table in group
            )
            for (snap, key, _, _), path in zip(group, written, strict=True):
                paths[snap.account_id][key] = path
    return paths


def _status_checks(regions: tuple[str, ...], stored_status_paths: dict[str, LakePath]) -> list[dg.AssetCheckResult]:
    """Checks over the status files just written, for every account of the run."""
    expected = {(r, s.resource_type) for r in regions for s in RESOURCE_SPECS}
    missing, denied, errors = [], [], []
    for account_id, path in sorted(stored_status_paths.items()):
        stored = read_file(path, COLLECTION_STATUS_SCHEMA).to_pylist()
        present = {(row["region"], row["resource_type"]) for row in stored}
        missing += [f"{account_id} {r}/{t}" for r, t in sorted(expected - present)]
        denied += [
            f"{account_id} {r['region']}/{r['resource_type']}: {r['error_code']}"
            for r in stored
            if r["status"] == "access_denied"
        ]
        errors += [
            f"{account_id} {r['region']}/{r['resource_type']}: {r['error_code']}: {r['message']}"
            for r in stored
            if r["status"] == "error"
        ]
    accounts = len(stored_status_paths)
    return [
        dg.AssetCheckResult(
            asset_key=STATUS_KEY,
            check_name=CHECK_EVERY_REGION,
            passed=not missing,
            metadata={"missing": dg.MetadataValue.json(missing[:100]), "expected": len(expected) * accounts},
        ),
        dg.AssetCheckResult(
            asset_key=STATUS_KEY,
            check_name=CHECK_NOT_DENIED,
            passed=not denied,
            severity=dg.AssetCheckSeverity.WARN,
            description="Access was denied: these accounts' counts are unknown, not zero.",
            metadata={"denied": dg.MetadataValue.json(denied[:100]), "denied_count": len(denied)},
        ),
        dg.AssetCheckResult(
            asset_key=STATUS_KEY,
            check_name=CHECK_NO_ERRORS,
            passed=not errors,
            metadata={"errors": dg.MetadataValue.json(errors[:100]), "error_count": len(errors)},
        ),
    ]


def previous_describes(settings: Settings, account_id: str) -> dict[str, dict]:
    """ARN -> stored describe output of the account's latest raw snapshot (for incremental collection)."""
    spec = MODEL_QUALITY_JOB_DEFINITION_SPEC
    day = latest_snapshot_date(settings.lake_dir, spec.raw_dataset, account_id)
    if day is None:
        return {}
    try:
        raw = read_file(_lake_path(settings, spec.raw_dataset, day, account_id), RAW_SCHEMA)
    except LakeError:
        return {}  # an unreadable old file only costs the describe calls
    return {row["arn"]: json.loads(row["describe_json"]) for row in raw.select(["arn", "describe_json"]).to_pylist()}


def _emit(
    context: dg.AssetExecutionContext, key: dg.AssetKey, per_account: dict[str, dict], total: dict
) -> dg.MaterializeResult:
    """One result for the run, which Dagster records for every account partition of the run; each
    partition's event also gets that account's own metadata (row counts, path), so a batch of N
    accounts costs N events of constant size."""
    if len(per_account) == 1:
        return dg.MaterializeResult(asset_key=key, metadata=next(iter(per_account.values())))
    for account_id, metadata in per_account.items():
        context.add_asset_metadata(metadata, asset_key=key, partition_key=account_id)
    return dg.MaterializeResult(
        asset_key=key,
        metadata={"run_" + k.split("/")[-1]: v for k, v in total.items() if not k.startswith("dagster/column")},
    )


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
    backfill_policy=dg.BackfillPolicy.single_run(),
    name="collect_sagemaker_account",
)
def collect_sagemaker_account(
    context: dg.AssetExecutionContext, sm_config: SmAssetsConfig
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Assume the read-only role in each member account of the run and collect every configured region:
    model quality job definitions (list, describe, tags), endpoints and ModelQuality monitoring schedules.
    A denied account is recorded as access_denied, never as an account with zero resources.
    Many accounts in one run are collected concurrently (single-run backfill policy)."""
    settings = sm_config.settings()
    accounts = list(context.partition_keys)
    previous = {a: previous_describes(settings, a) for a in accounts}
    done = 0

    # Every log line is an event-log row (~20-30 ms on the SQLite instance): report about 10% steps.
    log_every = max(1, len(accounts) // 10)

    def progress(snap: AccountSnapshot) -> None:
        nonlocal done
        done += 1
        if done % log_every and done != len(accounts):
            return
        state = "access denied" if snap.denied and not snap.items else f"{len(snap.items)} resources"
        context.log.info(f"collected {done}/{len(accounts)} accounts (latest {snap.account_id}: {state})")

    snapshots = collect_accounts(accounts, settings, previous=previous, on_done=progress)
    paths = write_snapshots(settings, list(snapshots.values()))
    for snap in snapshots.values():
        bad = [s for s in snap.statuses if s.status != "ok"]
        if bad and len(bad) == len(snap.statuses) and len({(s.error_code, s.message) for s in bad}) == 1:
            context.log.warning(
                f"{snap.account_id} (every region): {bad[0].status} {bad[0].error_code}: {bad[0].message}"
            )
            continue
        for status in bad:
            context.log.warning(
                f"{snap.account_id} {status.region} {status.resource_type}: {status.status} "
                f"{status.error_code}: {status.message}"
            )

    def common(snap: AccountSnapshot) -> dict:
        return {"snapshot_date": snap.snapshot_date.isoformat(), "account_id": snap.account_id}

    status_meta = {
        a: {
            **common(snap),
            "dagster/row_count": len(snap.statuses),
            "statuses": dg.MetadataValue.json(
                {s: sum(x.status == s for x in snap.statuses) for s in ("ok", "access_denied", "error")}
            ),
            "api_calls": sum(s.api_calls for s in snap.statuses) + snap.assume_role_calls,
            "api_calls_saved": sum(s.api_calls_saved for s in snap.statuses),
            "path": dg.MetadataValue.path(str(paths[a][COLLECTION_STATUS_DATASET])),
        }
        for a, snap in snapshots.items()
    }
    all_statuses = [s for snap in snapshots.values() for s in snap.statuses]
    status_total = {
        "accounts": len(snapshots),
        "dagster/row_count": len(all_statuses),
        "statuses": dg.MetadataValue.json(
            {s: sum(x.status == s for x in all_statuses) for s in ("ok", "access_denied", "error")}
        ),
        "api_calls": sum(m["api_calls"] for m in status_meta.values()),
        "api_calls_saved": sum(m["api_calls_saved"] for m in status_meta.values()),
    }
    yield _emit(context, STATUS_KEY, status_meta, status_total)
    for spec in RESOURCE_SPECS:
        per_account = {
            a: {
                **common(snap),
                "dagster/row_count": len(snap.items_of(spec.resource_type)),
                "path": dg.MetadataValue.path(str(paths[a][spec.resource_type])),
            }
            for a, snap in snapshots.items()
        }
        total = {
            "accounts": len(snapshots),
            "dagster/row_count": sum(m["dagster/row_count"] for m in per_account.values()),
        }
        yield _emit(context, RAW_KEYS[spec.resource_type], per_account, total)
    yield from _status_checks(settings.regions, {a: p[COLLECTION_STATUS_DATASET] for a, p in paths.items()})


# ---------------------------------------------------------------------------------------------
# Normalized tables


def _sql_path(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def run_table_checks(
    conn: duckdb.DuckDBPyConnection, spec: ResourceSpec, paths: Sequence[Path | str], key: dg.AssetKey
) -> list[dg.AssetCheckResult]:
    """Checks scoped to the partitions of the run (the files just written, as local paths: see
    lake.local_copies), plus the view's exact columns and types."""
    table = spec.table
    expected = [(c.name, c.duckdb_type) for c in table.columns]
    actual = [(r[0], r[1]) for r in conn.execute(f"DESCRIBE aws.{table.name}").fetchall()]
    src = f"read_parquet([{', '.join(_sql_path(p) for p in paths)}])"
    duplicates = conn.execute(
        f"SELECT account_id, _key, count(*) FROM {src} GROUP BY ALL HAVING count(*) > 1 LIMIT 20"
    ).fetchall()
    total = conn.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
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
            passed=not duplicates,
            metadata={"rows": total, "duplicated_keys": dg.MetadataValue.json([list(d) for d in duplicates])},
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


def scratch_connection() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def normalize_accounts(
    settings: Settings, spec: ResourceSpec, account_ids: list[str], conn: duckdb.DuckDBPyConnection
) -> dict[str, tuple[LakePath, date, list[dict], dict[str, int]]]:
    """Normalize each account's latest raw snapshot into its table file.

    Returns account -> (file, snapshot date, status rows, rows by region). The raw files go through
    DuckDB in batches (normalize.normalize_files_per_account), not one query per account.
    """
    plan: dict[str, tuple[LakePath, date, list[dict]]] = {}
    for account_id in account_ids:
        snapshot_date = latest_snapshot_date(settings.lake_dir, COLLECTION_STATUS_DATASET, account_id)
        if snapshot_date is None:
            raise dg.Failure(f"No collected snapshot for account {account_id}: materialize the raw assets first")
        raw_path = _lake_path(settings, spec.raw_dataset, snapshot_date, account_id)
        try:
            status = read_file(
                _lake_path(settings, COLLECTION_STATUS_DATASET, snapshot_date, account_id), COLLECTION_STATUS_SCHEMA
            )
            check_account_file(raw_path, RAW_SCHEMA, account_id)
        except LakeError as exc:
            raise dg.Failure(str(exc)) from None
        plan[account_id] = (raw_path, snapshot_date, status.to_pylist())
    written: dict[str, tuple[LakePath, date, list[dict], dict[str, int]]] = {}
    try:
        # On S3, DuckDB reads local copies (no httpfs offline); locally these are the lake files themselves.
        with local_copies([raw_path for raw_path, _, _ in plan.values()]) as local_paths:
            raw_files = dict(zip(plan, local_paths, strict=True))
            for batch in normalize_files_per_account(conn, raw_files, spec.table):
                outs = write_many_atomic(
                    (table, _lake_path(settings, spec.table.name, plan[a][1], a)) for a, table in batch.items()
                )
                for (account_id, table), out in zip(batch.items(), outs, strict=True):
                    _, day, status = plan[account_id]
                    written[account_id] = (out, day, status, rows_by_region(table))
    except duckdb.Error as exc:
        raise dg.Failure(_name_the_bad_file(spec, plan, conn, exc)) from None
    except (LakeError, NormalizeError) as exc:
        raise dg.Failure(str(exc)) from None
    return written


def _name_the_bad_file(
    spec: ResourceSpec,
    plan: dict[str, tuple[LakePath, date, list[dict]]],
    conn: duckdb.DuckDBPyConnection,
    exc: Exception,
) -> str:
    """One line naming the raw file a batched query choked on: a damaged data page (the footer check
    passed) or a payload DuckDB cannot parse. Only on failure, so reading file by file is fine."""
    for raw_path, _, _ in plan.values():
        try:
            read_file(raw_path, RAW_SCHEMA)
            with local_copies([raw_path]) as (local,):
                normalize_raw_files(conn, [local], spec.table)
        except LakeError as lake_exc:
            return str(lake_exc)
        except duckdb.Error as file_exc:
            return f"cannot normalize {raw_path}: {str(file_exc).splitlines()[0]}"
    return f"normalizing {spec.raw_dataset} failed: {str(exc).splitlines()[0]}"


def rows_by_region(table: pa.Table) -> dict[str, int]:
    return {e["values"].as_py(): e["counts"].as_py() for e in pc.value_counts(table.column("region"))}


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
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def _normalized(
        context: dg.AssetExecutionContext, sm_config: SmAssetsConfig, duckdb: DuckDBResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        settings = sm_config.settings()
        # In-memory DuckDB (`duckdb` here is the resource): normalizing needs no lock on the shared file.
        with scratch_connection() as scratch:
            written = normalize_accounts(settings, spec, list(context.partition_keys), scratch)
        with local_copies([out for out, _, _, _ in written.values()]) as paths, duckdb.get_connection() as conn:
            refresh_views(conn, settings.lake_dir)
            checks = run_table_checks(conn, spec, paths, key)
        schema_meta = {
            "dagster/column_schema": table_schema(table),
            "dagster/column_lineage": column_lineage(spec),
            "dagster/table_name": f"sm_assets.aws.{table.name}",
        }
        per_account = {
            a: {
                "snapshot_date": day.isoformat(),
                "dagster/row_count": sum(regions.values()),
                "rows_by_region": dg.MetadataValue.json(dict(sorted(regions.items()))),
                **schema_meta,
                "path": dg.MetadataValue.path(str(out)),
            }
            for a, (out, day, _, regions) in written.items()
        }
        total_rows = sum(sum(regions.values()) for *_, regions in written.values())
        total = {"accounts": len(written), "dagster/row_count": total_rows, **schema_meta}
        yield _emit(context, key, per_account, total)
        yield from checks
        # Everything reachable is stored above; still make the run red when data is missing for a
        # reason other than denied access, so a scheduled run never looks green with holes in it.
        failed = [
            f"{a} {row['region']}: {row['error_code']}: {row['message']}"
            for a, (_, _, status, _) in written.items()
            for row in status
            if row["resource_type"] == spec.resource_type and row["status"] == "error"
        ]
        if failed:
            raise dg.Failure(
                description=f"{spec.resource_type} collection failed in {len(failed)} account-region(s)",
                metadata={"errors": dg.MetadataValue.json(failed[:100])},
            )

    return _normalized


NORMALIZED_ASSETS = [build_normalized_asset(spec) for spec in RESOURCE_SPECS]
INVENTORY_ASSETS = [collect_sagemaker_account, *NORMALIZED_ASSETS]

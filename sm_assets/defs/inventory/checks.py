"""A lake-wide check: every stored file is readable and has its dataset's columns."""

import dagster as dg
import pyarrow as pa

from sm_assets.core.lake import LakeError, dataset_files, read_file, snapshot_dates
from sm_assets.core.schemas import COLLECTION_STATUS_DATASET, COLLECTION_STATUS_SCHEMA, RAW_SCHEMA
from sm_assets.core.specs import RESOURCE_SPECS
from sm_assets.defs.inventory.assets import STATUS_KEY
from sm_assets.defs.resources import SmAssetsConfig


def lake_datasets() -> dict[str, pa.Schema]:
    datasets: dict[str, pa.Schema] = {COLLECTION_STATUS_DATASET: COLLECTION_STATUS_SCHEMA}
    for spec in RESOURCE_SPECS:
        datasets[spec.raw_dataset] = RAW_SCHEMA
        datasets[spec.table.name] = spec.table.arrow_schema()
    return datasets


@dg.asset_check(
    asset=STATUS_KEY,
    name="lake_files_readable",
    description="Every account's latest file of every dataset reads back with its columns: a corrupt or "
    "partial lake file is reported here, never read silently.",
)
def lake_files_readable(sm_config: SmAssetsConfig) -> dg.AssetCheckResult:
    settings = sm_config.settings()
    broken: list[str] = []
    checked = 0
    for dataset, schema in lake_datasets().items():
        for path in dataset_files(settings.lake_dir, dataset):
            checked += 1
            try:
                read_file(path, schema)
            except LakeError as exc:
                broken.append(str(exc))
    days = snapshot_dates(settings.lake_dir, COLLECTION_STATUS_DATASET)
    return dg.AssetCheckResult(
        passed=not broken,
        metadata={
            "files_checked": checked,
            "broken": dg.MetadataValue.json(broken[:100]),
            "snapshot_dates": len(days),
        },
    )

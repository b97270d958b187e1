"""Dagster resources: the sm-assets settings and the DuckDB file (dagster-duckdb)."""

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import BaseModel, Field

from sm_assets.core.config import Settings
from sm_assets.core.inventory_options import InventoryOptions


class SettingsFields(BaseModel):
    """The collection settings (`Settings.build`'s keyword arguments), declared once for both the component's
    attributes and SmAssetsConfig's config. No defaults here: unset (None) means the SM_ASSETS_* environment
    variable, else the built-in default (core/config.py)."""

    data_dir: str | None = Field(
        default=None,
        description="The lake: a local directory (also holds sm_assets.duckdb) or s3://bucket/prefix "
        "(SM_ASSETS_DATA_DIR; default ./data)",
    )
    regions: list[str] | None = Field(
        default=None, description="Regions collected in every account (SM_ASSETS_REGIONS; default 3 regions)"
    )
    role_name: str | None = Field(
        default=None,
        description="Read-only role assumed in each member account (SM_ASSETS_ROLE_NAME; default "
        "SageMakerInventoryReadOnly)",
    )
    external_id: str | None = Field(
        default=None, description="ExternalId for AssumeRole, if the role needs one (SM_ASSETS_EXTERNAL_ID)"
    )
    accounts: list[str] | None = Field(
        default=None,
        description="Explicit account ids; unset: the ACTIVE accounts of the AWS Organization (SM_ASSETS_ACCOUNTS)",
    )
    coverage_drop_warn_points: float | None = Field(
        default=None,
        description="WARN when fleet coverage drops by more than this many points day over day "
        "(SM_ASSETS_COVERAGE_DROP_WARN_POINTS; default 5)",
    )
    redact_secrets: bool | None = Field(
        default=None,
        description="Replace Environment values and secret-looking ContainerArguments before storing anything "
        "(SM_ASSETS_REDACT_SECRETS; default true)",
    )
    collect_processes: int | None = Field(
        default=None,
        description="Worker processes collecting accounts in parallel (SM_ASSETS_COLLECT_PROCESSES; default: "
        "one per usable CPU, at most 8)",
    )
    duckdb_path: str | None = Field(
        default=None,
        description="Local DuckDB file of views (SM_ASSETS_DUCKDB_PATH; default <data_dir>/sm_assets.duckdb, "
        "./data/ when the lake is on S3)",
    )
    shard_size: int | None = Field(
        default=None, description="Accounts per run of the daily schedule (SM_ASSETS_SHARD_SIZE; default 500)"
    )
    stale_after_days: int | None = Field(
        default=None,
        description="Reports count a snapshot older than this many days as stale (SM_ASSETS_STALE_AFTER_DAYS; "
        "default 7)",
    )
    home_region: str | None = Field(
        default=None,
        description="Region for Organizations and STS (SM_ASSETS_HOME_REGION; default: the region chain's, else "
        "the partition's Organizations region)",
    )

    def settings_overrides(self) -> dict[str, object]:
        """The settings given here (the rest come from the environment or the defaults)."""
        return self.model_dump(include=set(SettingsFields.model_fields), exclude_none=True)


class SmAssetsConfig(dg.ConfigurableResource, SettingsFields):
    """What one inventory collects and where its lake lives. Built from the validated settings, so every
    value is shown in the UI; a launchpad override is validated again when a run starts."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "SmAssetsConfig":
        return cls(**settings.build_inputs())

    def settings(self, check_writable: bool = True) -> Settings:
        # Re-validated here so launchpad overrides get the same one-line errors as the environment.
        return Settings.build(**self.settings_overrides(), check_writable=check_writable)


def resource_keys(options: InventoryOptions) -> tuple[str, str]:
    """(settings, DuckDB) resource keys: `sm_config` and `duckdb`, prefixed like the inventory's other names."""
    return options.name("sm_config"), options.name("duckdb")


def build_resources(settings: Settings, options: InventoryOptions | None = None) -> dict[str, dg.ConfigurableResource]:
    config_key, duckdb_key = resource_keys(options or InventoryOptions())
    return {
        config_key: SmAssetsConfig.from_settings(settings),
        # Read-only: the file holds views only, and a reader must never make a refresh wait.
        duckdb_key: DuckDBResource(database=str(settings.duckdb_path), connection_config={"access_mode": "READ_ONLY"}),
    }

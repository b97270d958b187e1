"""Dagster resources: the sm-assets settings and the DuckDB file (dagster-duckdb)."""

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from sm_assets.core.config import Settings


class SmAssetsConfig(dg.ConfigurableResource):
    """Where the lake lives and what to collect. Defaults come from the SM_ASSETS_* environment variables."""

    data_dir: str = Field(
        description="Directory holding the Parquet lake and sm_assets.duckdb, or s3://bucket/prefix for the lake"
    )
    regions: list[str] = Field(description="Regions to collect in every account")
    role_name: str = Field(description="Read-only role assumed in each member account")
    external_id: str | None = Field(default=None, description="ExternalId for AssumeRole, if the role needs one")
    accounts: list[str] | None = Field(
        default=None, description="Explicit account ids; when unset, ACTIVE accounts from AWS Organizations"
    )
    coverage_drop_warn_points: float = Field(
        default=5.0, description="WARN when fleet coverage drops by more than this many points day over day"
    )
    redact_secrets: bool = Field(
        default=True,
        description="Replace Environment values and secret-looking ContainerArguments before storing anything",
    )
    collect_processes: int = Field(
        default=1,
        description="Worker processes collecting accounts in parallel (SM_ASSETS_COLLECT_PROCESSES; 1: threads only)",
    )
    duckdb_path: str | None = Field(
        default=None, description="Local DuckDB file (default: <data_dir>/sm_assets.duckdb, ./data/ on S3)"
    )
    shard_size: int = Field(default=500, description="Accounts per run of the daily schedule (SM_ASSETS_SHARD_SIZE)")

    @classmethod
    def from_settings(cls, settings: Settings) -> "SmAssetsConfig":
        return cls(
            data_dir=settings.data_location,
            regions=list(settings.regions),
            role_name=settings.role_name,
            external_id=settings.external_id,
            accounts=list(settings.accounts) if settings.accounts else None,
            coverage_drop_warn_points=settings.coverage_drop_warn_points,
            redact_secrets=settings.redact_secrets,
            collect_processes=settings.collect_processes,
            duckdb_path=str(settings.duckdb_file) if settings.duckdb_file else None,
            shard_size=settings.shard_size,
        )

    def settings(self) -> Settings:
        # Re-validated here so launchpad overrides get the same one-line errors as the environment.
        return Settings.build(
            data_dir=self.data_dir,
            regions=self.regions,
            role_name=self.role_name,
            external_id=self.external_id,
            accounts=self.accounts,
            coverage_drop_warn_points=self.coverage_drop_warn_points,
            redact_secrets=self.redact_secrets,
            collect_processes=self.collect_processes,
            duckdb_path=self.duckdb_path,
            shard_size=self.shard_size,
        )


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "sm_config": SmAssetsConfig.from_settings(settings),
        # Read-only: the file holds views only, and a reader must never make a refresh wait.
        "duckdb": DuckDBResource(database=str(settings.duckdb_path), connection_config={"access_mode": "READ_ONLY"}),
    }

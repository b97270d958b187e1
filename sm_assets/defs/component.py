"""The `sm_assets.SageMakerMonitoringInventory` component, its Python twin `build_defs`, and the assembly of one
inventory's definitions that both use (this repository's own code location too: sm_assets/defs/defs.yaml)."""

from typing import Any, get_args

import dagster as dg
from pydantic import Field, model_validator

from sm_assets.core.config import Settings
from sm_assets.core.errors import ConfigError
from sm_assets.core.inventory_options import InventoryOptions
from sm_assets.defs.inventory.assets import build_daily_tables_asset, build_raw_snapshot_asset
from sm_assets.defs.inventory.automation import build_automation, build_inventory_job
from sm_assets.defs.inventory.checks import build_lake_check
from sm_assets.defs.reports.assets import build_report_assets
from sm_assets.defs.reports.automation import build_daily_job
from sm_assets.defs.resources import SettingsFields, build_resources
from sm_assets.defs.shared import InventoryKeys

DEFAULTS = InventoryOptions()


def build_inventory_definitions(settings: Settings, options: InventoryOptions = DEFAULTS) -> dg.Definitions:
    """One inventory: the account-partitioned raw snapshot, the day's tables and reports, their checks, the two
    jobs, the account sensor, the sharded daily schedule, the automation sensor and the two resources."""
    keys = InventoryKeys.of(options)
    account_partitions = dg.DynamicPartitionsDefinition(name=options.account_partitions)
    inventory_job = build_inventory_job(options, keys)
    sensors, schedules = build_automation(options, keys, account_partitions, inventory_job)
    return dg.Definitions(
        assets=[
            build_raw_snapshot_asset(options, keys, account_partitions),
            build_daily_tables_asset(options, keys),
            *build_report_assets(options, keys),
        ],
        asset_checks=[build_lake_check(options, keys)],
        jobs=[inventory_job, build_daily_job(options, keys)],
        schedules=schedules,
        sensors=sensors,
        resources=build_resources(settings, options),
    )


def _holds_text(annotation: Any) -> bool:
    return annotation is str or any(_holds_text(arg) for arg in get_args(annotation))


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class GroupNames(dg.Resolvable, dg.Model):
    """Asset group names; unset: sagemaker_inventory, model_quality_reports and analytics, after the key prefix."""

    inventory: str | None = Field(default=None, description="The raw snapshot and the day's aws/* tables")
    reports: str | None = Field(default=None, description="The reports/* tables")
    analytics: str | None = Field(default=None, description="The downstream 30-day trend")


class SageMakerMonitoringInventory(dg.Component, dg.Resolvable, dg.Model, SettingsFields):
    """SageMaker Model Monitor inventory of an AWS organization (or a list of accounts), as Dagster assets.

    One account-partitioned raw snapshot, the day's DDSQL-compatible tables (aws/*), daily coverage reports
    (reports/*) and a 30-day trend, with an account sensor, a sharded daily schedule and an automation sensor.
    Collection settings left unset come from the SM_ASSETS_* environment variables, then the built-in defaults.
    Two instances in one code location need distinct `key_prefix` values (and their own `data_dir`).
    """

    key_prefix: str | list[str] | None = Field(
        default=None,
        description="Prefix of every asset key (a/b or [a, b]); its parts, joined by _, also prefix the job, "
        "schedule, sensor, resource and partition names. Unset: raw/..., aws/..., reports/..., analytics/...",
    )
    partition_name: str | None = Field(
        default=None, description="Name of the account partitions (default: aws_account, after the prefix)"
    )
    group_names: GroupNames | None = Field(default=None, description="Asset group names")
    inventory_cron: str = Field(
        default=DEFAULTS.inventory_cron, description="When the daily schedule collects every account"
    )
    timezone: str = Field(default=DEFAULTS.timezone, description="Time zone of inventory_cron")
    freshness_warn_hours: float | None = Field(
        default=DEFAULTS.freshness_warn_hours,
        description="The day's tables and reports WARN when not materialized for this long (null: no warning)",
    )
    freshness_fail_hours: float | None = Field(
        default=DEFAULTS.freshness_fail_hours,
        description="... and are overdue (FAIL) after this long (null: no freshness policy)",
    )
    owners: list[str] = Field(
        default=[], description="Owners of every asset, the schedule and the account sensor: emails or team:<name>"
    )
    tags: dict[str, str] = Field(default={}, description="Tags added to every asset (beside layer: raw/daily/...)")
    start_running: bool = Field(
        default=DEFAULTS.start_running, description="Schedule and sensors start RUNNING (false: STOPPED)"
    )

    @model_validator(mode="before")
    @classmethod
    def _numbers_back_to_text(cls, data: Any) -> Any:
        """defs.yaml values pass through Jinja's native rendering, which reads a quoted account id such as
        "222222222222" as an int: text attributes get their text back (the digits are the same)."""
        if not isinstance(data, dict):
            return data
        fixed = dict(data)
        for name, value in data.items():
            if name in cls.model_fields and _holds_text(cls.model_fields[name].annotation):
                if isinstance(value, list):
                    fixed[name] = [_as_text(v) for v in value]
                elif isinstance(value, dict):
                    fixed[name] = {k: _as_text(v) for k, v in value.items()}
                else:
                    fixed[name] = _as_text(value)
        return fixed

    def options(self) -> InventoryOptions:
        prefix = self.key_prefix.split("/") if isinstance(self.key_prefix, str) else self.key_prefix or []
        groups = self.group_names or GroupNames()
        return InventoryOptions(
            key_prefix=tuple(prefix),
            partition_name=self.partition_name,
            inventory_group=groups.inventory,
            reports_group=groups.reports,
            analytics_group=groups.analytics,
            inventory_cron=self.inventory_cron,
            timezone=self.timezone,
            freshness_warn_hours=self.freshness_warn_hours,
            freshness_fail_hours=self.freshness_fail_hours,
            owners=tuple(self.owners),
            tags=dict(self.tags),
            start_running=self.start_running,
        )

    def definitions(self) -> dg.Definitions:
        try:
            # Validated, not written to: loading definitions (`dg check defs`, a code server) must not need
            # write access to the lake; every run checks that itself.
            settings = Settings.from_env(check_writable=False, overrides=self.settings_overrides())
            options = self.options()
        except ConfigError as exc:
            raise ConfigError(f"{type(self).__name__}: {exc}") from None
        return build_inventory_definitions(settings, options)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return self.definitions()


def build_defs(**attributes: Any) -> dg.Definitions:
    """The component's definitions from Python, for `dg.Definitions.merge`: the same attributes as in
    defs.yaml, as keyword arguments (e.g. ``build_defs(key_prefix="org_a", data_dir="s3://lake/org-a")``)."""
    return SageMakerMonitoringInventory(**attributes).definitions()

"""`sm-assets refresh`: sync the account partitions, collect every account through Dagster in shards, then
build today's tables and reports."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sm_assets.cli import stopping
from sm_assets.core import layout
from sm_assets.core.accounts import resolve_account_ids
from sm_assets.core.config import Settings, validate_accounts
from sm_assets.core.errors import AccountDiscoveryError
from sm_assets.core.sharding import contiguous_stretches, shards
from sm_assets.core.snapshots import daily_days, day_folders
from sm_assets.core.specs import RESOURCE_SPECS
from sm_assets.core.storage import prepare_storage

INSTANCE_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
# INFO keeps the progress lines and warnings on stderr, without DEBUG step chatter.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
COLLECTION_FAILED = "collection failed in"  # the daily tables' Failure when snapshots hold errors
# One planned event per asset for a run over many partitions, instead of one per partition (~10 ms each).
PLANNED_EVENTS_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


class CliError(RuntimeError):
    """Printed as one line, exit code 2."""


@dataclass
class AccountOutcome:
    """One account of a refresh, from its partition's materialization (or its absence)."""

    account_id: str
    run_ok: bool
    stored: bool = False
    statuses: dict[str, int] = field(default_factory=dict)
    rows_by_type: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def denied(self) -> bool:
        return self.statuses.get("access_denied", 0) > 0

    @property
    def failed(self) -> bool:
        return not self.run_ok or not self.stored or self.statuses.get("error", 0) > 0

    def describe(self) -> str:
        if not self.stored:
            return "FAILED (see the run in the Dagster UI)"
        if self.denied and not any(self.statuses.get(s, 0) for s in ("ok", "error")):
            code = self.problems[0].split(": ", 1)[-1] if self.problems else "?"
            return f"access denied ({code}): reported, not collected"
        text = ", ".join(f"{self.rows_by_type.get(spec.resource_type, 0)} {label}" for spec, label in _LABELS)
        return text + (f"; problems: {', '.join(self.problems)}" if self.problems else "")


_LABELS = [
    (spec, spec.resource_type.replace("_job_definition", " definition").replace("_", " ") + "s")
    for spec in RESOURCE_SPECS
]


def ensure_dagster_home(settings: Settings) -> Path:
    """$DAGSTER_HOME, by default next to the data (set in the environment, as Dagster reads it there)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(settings.data_dir / "dagster_home")
        os.environ["DAGSTER_HOME"] = home
    Path(home).mkdir(parents=True, exist_ok=True)
    yaml = Path(home) / "dagster.yaml"
    if not yaml.exists():
        yaml.write_text(INSTANCE_YAML)
    return Path(home)


def dagster_instance(settings: Settings):  # -> dg.DagsterInstance (imported lazily: dagster is slow to import)
    import dagster as dg

    ensure_dagster_home(settings)
    return dg.DagsterInstance.get()


def unexpected_failure(result) -> bool:  # result: dg.ExecuteInProcessResult
    """True when a step failed for any reason other than the regions whose collection failed (those
    accounts carry `error` statuses and are reported as failed on their own)."""
    for event in result.all_events:
        if event.is_step_failure:
            user = event.step_failure_data.user_failure_data
            if user is None or COLLECTION_FAILED not in (user.description or ""):
                return True
    return False


def _outcomes(result, accounts: Sequence[str]) -> list[AccountOutcome]:
    run_ok = result.success or not unexpected_failure(result)
    stored: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.partition is not None:
            stored[materialization.partition] = {k: v.value for k, v in materialization.metadata.items()}
    out = []
    for account_id in accounts:
        meta = stored.get(account_id)
        if meta is None:
            out.append(AccountOutcome(account_id, run_ok))
            continue
        out.append(
            AccountOutcome(
                account_id,
                run_ok,
                stored=True,
                statuses=dict(meta.get("statuses") or {}),
                rows_by_type=dict(meta.get("rows_by_type") or {}),
                problems=list(meta.get("problems") or []),
            )
        )
    return out


def days_to_build(settings: Settings, today: date) -> list[date]:
    """Today, and every earlier day with account snapshots but no daily tables yet (a lake written before
    round 2, or a day whose tables were never built): oldest first, so each day starts from the one before."""
    built = set(daily_days(settings.lake_dir, layout.DAILY_STATUS_TABLE))
    staged = [d for d in day_folders(settings.lake_dir, layout.STATUS_DATASET) if d < today and d not in built]
    return [*staged, today]


def run_refresh(
    settings: Settings, account_ids: Sequence[str] | None = None, echo: Callable[[str], None] = print
) -> list[AccountOutcome]:
    """Sync the account partitions, collect them in shards (one in-process run each), then build the day's
    tables and reports (one run)."""
    from sm_assets.core import process_shards

    os.environ.setdefault(PLANNED_EVENTS_ENV, "1")
    ensure_dagster_home(settings)  # the environment is final before the workers inherit it
    if settings.collect_processes > 1:
        # The collector's workers import and load their service models while Dagster starts up here.
        process_shards.prestart(settings.collect_processes)
    try:
        return _refresh(settings, account_ids, echo)
    finally:
        process_shards.stop_prestarted()  # those no collection took


def _refresh(
    settings: Settings, account_ids: Sequence[str] | None, echo: Callable[[str], None]
) -> list[AccountOutcome]:
    from sm_assets.definitions import build_definitions
    from sm_assets.defs.inventory.assets import aws_account_partitions
    from sm_assets.defs.inventory.automation import shard_run_tags, sync_account_partitions

    prepare_storage(settings)
    instance = dagster_instance(settings)
    if account_ids:
        ids = list(validate_accounts(list(account_ids)))
        # A partial refresh only adds partitions; it must not drop the accounts it was not asked about.
        existing = set(instance.get_dynamic_partitions(aws_account_partitions.name))
        added, removed = [a for a in ids if a not in existing], []
        if added:
            instance.add_dynamic_partitions(aws_account_partitions.name, added)
    else:
        try:
            ids = resolve_account_ids(settings)
        except AccountDiscoveryError as exc:
            raise CliError(str(exc)) from None
        added, removed = sync_account_partitions(instance, ids)
    echo(
        f"accounts: {len(ids)} (partitions added {len(added)}, removed {len(removed)}); "
        f"regions: {', '.join(settings.regions)}"
    )
    defs = build_definitions(settings)
    job = defs.resolve_job_def("sagemaker_inventory_job")
    # A run covers a contiguous range of the partitions (in the order they were added), at most a shard.
    order = list(instance.get_dynamic_partitions(aws_account_partitions.name))
    runs = [shard for stretch in contiguous_stretches(order, ids) for shard in shards(stretch, settings.shard_size)]
    outcomes: list[AccountOutcome] = []
    for index, shard in enumerate(runs):
        result = job.execute_in_process(
            instance=instance,
            tags=shard_run_tags(shard, index, len(runs)),
            run_config=QUIET_LOGS,
            raise_on_error=False,
        )
        stopping.check()  # a signal during the run failed it; stop instead of starting the next one
        for outcome in _outcomes(result, shard):
            outcomes.append(outcome)
            echo(f"[{len(outcomes)}/{len(ids)}] {outcome.account_id}: {outcome.describe()}")
    failed = [o.account_id for o in outcomes if o.failed]
    denied = [o.account_id for o in outcomes if o.denied]
    echo(f"done: {len(outcomes) - len(failed)} collected, {len(denied)} with denied access, {len(failed)} failed")
    daily = defs.resolve_job_def("sagemaker_daily_job")
    for day in days_to_build(settings, datetime.now(UTC).date()):
        report = daily.execute_in_process(
            partition_key=day.isoformat(), instance=instance, run_config=QUIET_LOGS, raise_on_error=False
        )
        stopping.check()
        ok = report.success or not unexpected_failure(report)
        echo(f"tables and reports for {day}: {'materialized' if ok else 'FAILED (see the run in the Dagster UI)'}")
        if not ok:
            outcomes.append(AccountOutcome(f"reports {day}", False))
    return outcomes


def exit_code(outcomes: Sequence[AccountOutcome]) -> int:
    return 1 if any(o.failed for o in outcomes) else 0

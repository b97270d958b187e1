"""`sm-assets`: refresh the inventory through Dagster, run the demo, query the DuckDB file."""

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from sm_assets.core.collect import AccountDiscoveryError, resolve_account_ids
from sm_assets.core.config import ConfigError, Settings, validate_accounts
from sm_assets.core.lake import LakeError, dataset_file, latest_snapshot_date, read_file
from sm_assets.core.schemas import COLLECTION_STATUS_DATASET, COLLECTION_STATUS_SCHEMA

DEMO_MARKER = ".sm-assets-demo"
DEMO_MEMBERS = 9  # one of them lacks the role, so 8 accounts have data
INSTANCE_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


class CliError(RuntimeError):
    """Printed as one line, exit code 2."""


@dataclass
class AccountOutcome:
    account_id: str
    run_ok: bool
    statuses: list[dict] = field(default_factory=list)

    @property
    def denied(self) -> bool:
        return any(s["status"] == "access_denied" for s in self.statuses)

    @property
    def errors(self) -> list[dict]:
        return [s for s in self.statuses if s["status"] == "error"]

    @property
    def failed(self) -> bool:
        return not self.run_ok or bool(self.errors) or not self.statuses

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.statuses:
            out[s["resource_type"]] = out.get(s["resource_type"], 0) + (s["item_count"] or 0)
        return out

    def describe(self) -> str:
        if not self.run_ok:
            return "FAILED (see the run in the Dagster UI)"
        if self.denied and all(s["status"] == "access_denied" for s in self.statuses):
            first = self.statuses[0]
            return f"access denied ({first['error_code']}): reported, not collected"
        c = self.counts()
        text = (
            f"{c.get('model_quality_job_definition', 0)} job definitions, {c.get('endpoint', 0)} endpoints, "
            f"{c.get('monitoring_schedule', 0)} schedules"
        )
        problems = [
            f"{s['region']}/{s['resource_type']} {s['status']} {s['error_code']}"
            for s in self.statuses
            if s["status"] != "ok"
        ]
        return text + (f"; problems: {', '.join(problems)}" if problems else "")


def dagster_instance(
    settings: Settings,
):  # -> dg.DagsterInstance (imported lazily: dagster is slow to import)
    import dagster as dg

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(settings.data_dir / "dagster_home")
        os.environ["DAGSTER_HOME"] = home
    Path(home).mkdir(parents=True, exist_ok=True)
    yaml = Path(home) / "dagster.yaml"
    if not yaml.exists():
        yaml.write_text(INSTANCE_YAML)
    return dg.DagsterInstance.get()


def read_statuses(settings: Settings, account_id: str) -> list[dict]:
    day = latest_snapshot_date(settings.lake_dir, COLLECTION_STATUS_DATASET, account_id)
    if day is None:
        return []
    path = dataset_file(settings.lake_dir, COLLECTION_STATUS_DATASET, day, account_id)
    return read_file(path, COLLECTION_STATUS_SCHEMA).to_pylist()


def run_refresh(
    settings: Settings, account_ids: Sequence[str] | None = None, echo: Callable[[str], None] = print
) -> list[AccountOutcome]:
    """Sync the account partitions, then materialize each account through Dagster (in-process runs)."""
    from sm_assets.definitions import build_definitions
    from sm_assets.defs.inventory.assets import aws_account_partitions
    from sm_assets.defs.inventory.automation import all_accounts_run_tags, sync_account_partitions
    from sm_assets.doctor import check_duckdb

    db = check_duckdb(settings)
    if not db.ok:  # fail fast with one line instead of a run full of retries and tracebacks
        raise CliError(f"{db.detail}; fix: {db.fix}")
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
    # One run for all accounts: partitions are listed in the order they were added, so a run over a
    # subset is a run per contiguous stretch of that order.
    order = list(instance.get_dynamic_partitions(aws_account_partitions.name))
    wanted = set(ids)
    outcomes: list[AccountOutcome] = []
    for stretch in contiguous_stretches(order, wanted):
        result = job.execute_in_process(
            instance=instance,
            tags=all_accounts_run_tags(stretch),
            run_config=QUIET_LOGS,
            raise_on_error=False,
        )
        for account_id in stretch:
            run_ok = result.success or not unexpected_failure(result)
            outcome = AccountOutcome(account_id, run_ok, read_statuses(settings, account_id))
            outcomes.append(outcome)
            echo(f"[{len(outcomes)}/{len(ids)}] {account_id}: {outcome.describe()}")
    failed = [o.account_id for o in outcomes if o.failed]
    denied = [o.account_id for o in outcomes if o.denied]
    echo(f"done: {len(outcomes) - len(failed)} collected, {len(denied)} with denied access, {len(failed)} failed")
    day = datetime.now(UTC).date().isoformat()
    report_job = defs.resolve_job_def("model_quality_report_job")
    report = report_job.execute_in_process(
        partition_key=day, instance=instance, run_config=QUIET_LOGS, raise_on_error=False
    )
    echo(f"reports for {day}: {'materialized' if report.success else 'FAILED (see the run in the Dagster UI)'}")
    if not report.success:
        outcomes.append(AccountOutcome("reports", False))
    return outcomes


def render_report(settings: Settings, day: date | None = None) -> str:
    """Fleet summary and the 10 worst accounts as terminal tables (computed from the stored history)."""
    from sm_assets.core import reports

    day = day or datetime.now(UTC).date()
    require_duckdb_file(settings)
    try:
        with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
            result = reports.compute_reports(conn, day, settings.regions)
    except duckdb.Error as exc:
        raise CliError(f"report failed: {str(exc).splitlines()[0]}") from None
    if result.reason:
        return f"Model quality report for {day}: {result.reason}"
    summary = result.summary.iloc[0]
    fleet = result.summary[
        [
            "report_date",
            "accounts_total",
            "accounts_ok",
            "accounts_denied",
            "accounts_error",
            "endpoints_in_service",
            "endpoints_with_active_schedule",
            "fleet_coverage_pct",
            "findings_high",
            "findings_medium",
            "findings_low",
        ]
    ]
    if pd.isna(summary["previous_report_date"]):
        change = "no previous report date"
    else:
        pts = summary["coverage_change_pts"]
        pts_text = "n/a" if pd.isna(pts) else f"{pts:+.1f}"
        change = (
            f"since {summary['previous_report_date']}: coverage {pts_text} points, "
            f"findings {int(summary['findings_change']):+d}"
        )
    return "\n".join(
        [
            f"Model quality monitoring report for {day}",
            "",
            reports.format_terminal_table(fleet.T.reset_index().set_axis(["metric", "value"], axis=1)),
            "",
            f"Change {change}",
            "",
            "Worst accounts by coverage:",
            reports.format_terminal_table(reports.worst_accounts(result.coverage, 10)),
        ]
    )


# INFO keeps the per-account progress lines and warnings on stderr, without DEBUG step chatter.
COLLECTION_FAILED = "collection failed in"  # the normalized assets' Failure description
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def contiguous_stretches(order: Sequence[str], wanted: set[str]) -> list[list[str]]:
    stretches: list[list[str]] = []
    current: list[str] = []
    for key in order:
        if key in wanted:
            current.append(key)
        elif current:
            stretches.append(current)
            current = []
    if current:
        stretches.append(current)
    return stretches


def unexpected_failure(result) -> bool:  # result: dg.ExecuteInProcessResult
    """True when a step failed for any reason other than the regions whose collection failed (those
    accounts carry `error` statuses and are reported as failed on their own)."""
    for event in result.all_events:
        if event.is_step_failure:
            user = event.step_failure_data.user_failure_data
            if user is None or COLLECTION_FAILED not in (user.description or ""):
                return True
    return False


def exit_code(outcomes: Sequence[AccountOutcome]) -> int:
    return 1 if any(o.failed for o in outcomes) else 0


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]], max_width: int = 60) -> str:
    def cell(v: object) -> str:
        text = "NULL" if v is None else str(v)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    body = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def require_duckdb_file(settings: Settings) -> None:
    if not settings.duckdb_path.exists():
        raise CliError(f"no DuckDB file at {settings.duckdb_path}: run `sm-assets refresh` (or `make demo`) first")


def run_query(settings: Settings, sql: str) -> str:
    require_duckdb_file(settings)
    try:
        with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
            cursor = conn.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall()
    except duckdb.Error as exc:
        raise CliError(f"query failed: {str(exc).splitlines()[0]}") from None
    return format_table(columns, rows) + f"\n({len(rows)} rows)"


@contextmanager
def patched_env(values: dict[str, str | None]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def reset_demo_dir(data_dir: Path) -> None:
    """The demo owns its data dir: wipe a previous demo, refuse to touch anything else."""
    marker = data_dir / DEMO_MARKER
    holds_data = (data_dir / "lake").exists() or (data_dir / "sm_assets.duckdb").exists()
    if holds_data and not marker.exists():
        raise CliError(
            f"{data_dir} holds non-demo sm-assets data; point SM_ASSETS_DATA_DIR at another directory for the demo"
        )
    for name in ("lake", "sm_assets.duckdb", "sm_assets.duckdb.wal", "dagster_home"):
        path = data_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text("This directory was written by `sm-assets demo` and is reset by it.\n")


DEMO_QUERIES = (
    "SELECT account_id, count(*) AS definitions, count(*) FILTER (WHERE model_quality_baseline_config IS NULL) "
    "AS without_baseline FROM aws.sagemaker_model_quality_job_definition GROUP BY account_id ORDER BY account_id",
    "SELECT account_id, region, resource_type, status, error_code FROM aws.collection_status "
    "WHERE status <> 'ok' ORDER BY ALL",
)


def dagster_dev_command(port: int) -> list[str]:
    """`dagster dev` on 127.0.0.1 for this code location (the same as `make dev`)."""
    dagster = Path(sys.executable).with_name("dagster")
    return [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port), "-m", "sm_assets.definitions"]


def run_demo(settings: Settings, echo: Callable[[str], None] = print, serve: bool = False, port: int = 3000) -> int:
    from sm_assets.demo.fake_aws import fake_aws_server
    from sm_assets.demo.seed import seed_demo_org

    if settings.on_s3:  # the demo wipes its data dir on every run: never an S3 prefix
        raise CliError(
            f"the demo resets its data dir and works on a local one only; unset SM_ASSETS_DATA_DIR "
            f"({settings.data_location}) or point it at a local directory"
        )
    reset_demo_dir(settings.data_dir)
    if os.environ.get("DAGSTER_HOME") is None:
        os.environ["DAGSTER_HOME"] = str(settings.data_dir / "dagster_home")
    with fake_aws_server() as endpoint:
        fake_env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": None,
            "AWS_PROFILE": None,
            "AWS_DEFAULT_REGION": settings.regions[0],
        }
        with patched_env(fake_env):
            echo(f"demo: fake AWS organization on {endpoint}")
            org = seed_demo_org(endpoint, regions=settings.regions, role_name=settings.role_name, accounts=DEMO_MEMBERS)
            echo(
                f"demo: seeded {len(org.member_account_ids)} member accounts x {len(settings.regions)} regions "
                f"({len(org.denied_account_ids)} without the {settings.role_name} role)"
            )
            outcomes = run_refresh(settings, echo=echo)
            for sql in DEMO_QUERIES:
                echo('\n$ sm-assets query "' + sql + '"')
                echo(run_query(settings, sql))
            echo("\n$ sm-assets report")
            echo(render_report(settings))
            if serve:
                # The UI's runs reach the same fake organization, so partitions launched there collect.
                env = {**os.environ, "SM_ASSETS_DATA_DIR": str(settings.data_dir)}
                echo(f"\ndemo: Dagster UI on http://127.0.0.1:{port} against the fake organization; Ctrl-C stops both")
                try:
                    code = subprocess.call(dagster_dev_command(port), env=env)
                except KeyboardInterrupt:
                    code = 0
                return code or exit_code(outcomes)
    echo(
        "\nBrowse it: `make demo-ui` (the demo again, then the Dagster UI against the fake organization, so\n"
        "partitions launched there collect), or `make dev` (or DAGSTER_HOME="
        f"{os.environ['DAGSTER_HOME']} .venv/bin/dagster dev) to browse what is stored; "
        f'query it: .venv/bin/sm-assets query "SELECT * FROM aws.sagemaker_model_quality_job_definition" '
        f"(DuckDB file {settings.duckdb_path})"
    )
    return exit_code(outcomes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sm-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    refresh = sub.add_parser("refresh", help="sync account partitions, then collect every account through Dagster")
    refresh.add_argument("--account", action="append", help="only this account (repeatable)")
    sub.add_parser("sync-accounts", help="only sync the aws_account partitions with the organization")
    demo = sub.add_parser("demo", help="seed a fake organization on 127.0.0.1 and refresh it")
    demo.add_argument(
        "--serve", action="store_true", help="then run the Dagster UI against the fake organization until Ctrl-C"
    )
    demo.add_argument("--port", type=int, default=3000, help="UI port with --serve (default: 3000)")
    doctor = sub.add_parser("doctor", help="check credentials, Organizations, AssumeRole, regions and the data dir")
    doctor.add_argument("--sample", type=int, default=3, help="accounts to try AssumeRole on (default: 3)")
    report = sub.add_parser("report", help="print the fleet summary and the worst accounts for a date")
    report.add_argument("--date", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today, UTC)")
    query = sub.add_parser("query", help="run SQL against the DuckDB file and print a table")
    query.add_argument("sql")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # The doctor reports an unwritable data dir as one of its checks instead of failing on it; query and
        # report only read the DuckDB file (no write access to the lake, no S3 call).
        settings = Settings.from_env(check_writable=args.command not in ("doctor", "query", "report"))
        if args.command == "doctor":
            from sm_assets.doctor import main_doctor

            return main_doctor(settings, args.sample)
        if args.command == "refresh":
            return exit_code(run_refresh(settings, args.account))
        if args.command == "sync-accounts":
            from sm_assets.defs.inventory.automation import sync_account_partitions

            try:
                ids = resolve_account_ids(settings)
            except AccountDiscoveryError as exc:
                raise CliError(str(exc)) from None
            added, removed = sync_account_partitions(dagster_instance(settings), ids)
            print(f"accounts: {len(ids)}; added {added or 'none'}; removed {removed or 'none'}")
            return 0
        if args.command == "demo":
            return run_demo(settings, serve=args.serve, port=args.port)
        if args.command == "report":
            print(render_report(settings, args.date))
            return 0
        if args.command == "query":
            print(run_query(settings, args.sql))
            return 0
    except (ConfigError, CliError, LakeError) as exc:
        print(f"sm-assets: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""`sm-assets`: refresh the inventory through Dagster, run the demo, query what is stored."""

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date

from sm_assets.cli import stopping
from sm_assets.cli.refresh import CliError, dagster_instance, exit_code, run_refresh
from sm_assets.core.accounts import resolve_account_ids
from sm_assets.core.config import Settings
from sm_assets.core.errors import AccountDiscoveryError, ConfigError, LakeError


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
    query = sub.add_parser("query", help="run SQL against the DuckDB file (read-only) and print a table")
    query.add_argument("sql")
    iam = sub.add_parser(
        "iam-policy", help="print the IAM policies for the configured partition, role name and ExternalId (JSON)"
    )
    iam.add_argument(
        "document",
        nargs="?",
        choices=("caller", "member", "trust"),
        help="only this one: the caller's policy, the member role's policy or its trust policy (default: all three)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with stopping.stop_on_signals():
            return _run(args)
    except stopping.Stopped as stop:
        print(f"sm-assets: stopped by {stop}", file=sys.stderr)
        return stop.exit_code


def _run(args: argparse.Namespace) -> int:
    try:
        # The doctor reports an unwritable data dir as one of its checks instead of failing on it; query and
        # report only read (no write access to the lake needed).
        settings = Settings.from_env(check_writable=args.command not in ("doctor", "query", "report", "iam-policy"))
        if args.command == "iam-policy":
            from sm_assets.core.iam_policies import render_policies

            policies = render_policies(settings)
            print(json.dumps(policies[args.document] if args.document else policies, indent=2))
            return 0
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
            from sm_assets.cli.demo import run_demo

            return run_demo(settings, serve=args.serve, port=args.port)
        if args.command == "report":
            from sm_assets.cli.query import render_report

            print(render_report(settings, args.date))
            return 0
        if args.command == "query":
            from sm_assets.cli.query import run_query

            print(run_query(settings, args.sql))
            return 0
    except (ConfigError, CliError, LakeError) as exc:
        print(f"sm-assets: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())

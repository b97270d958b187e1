"""`sm-assets demo`: a fake organization on 127.0.0.1, refreshed through Dagster, then (with --serve) the UI."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sm_assets.cli import stopping
from sm_assets.cli.query import render_report, run_query
from sm_assets.cli.refresh import CliError, exit_code, run_refresh
from sm_assets.core.config import Settings

DEMO_MARKER = ".sm-assets-demo"
DEMO_MEMBERS = 9  # one of them lacks the role, so 8 accounts have data
DEMO_QUERIES = (
    "SELECT account_id, count(*) AS definitions, count(*) FILTER (WHERE model_quality_baseline_config IS NULL) "
    "AS without_baseline FROM aws.sagemaker_model_quality_job_definition GROUP BY account_id ORDER BY account_id",
    "SELECT account_id, region, resource_type, status, error_code FROM aws.collection_status "
    "WHERE status <> 'ok' ORDER BY ALL",
    # DDSQL's tag idiom, as Datadog writes it (README: Example DDSQL-style queries)
    "SELECT tags->'team' AS team, count(*) AS definitions FROM aws.sagemaker_model_quality_job_definition "
    "GROUP BY ALL ORDER BY ALL",
)


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


def dagster_dev_command(port: int) -> list[str]:
    """`dagster dev` on 127.0.0.1 for this code location (the same as `make dev`)."""
    dagster = Path(sys.executable).with_name("dagster")
    return [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port), "-m", "sm_assets.definitions"]


def serve_ui(settings: Settings, port: int, echo: Callable[[str], None]) -> int:
    """`dagster dev` until it exits or a stop signal (Ctrl-C, SIGTERM) arrives; then its whole process tree
    stops within seconds (a stop is the normal end: exit code 0)."""
    # The UI's runs reach the same fake organization, so partitions launched there collect.
    env = {**os.environ, "SM_ASSETS_DATA_DIR": str(settings.data_dir)}
    echo(f"\ndemo: Dagster UI on http://127.0.0.1:{port} against the fake organization; Ctrl-C stops both")
    proc = stopping.start_group(dagster_dev_command(port), env=env)
    try:
        return proc.wait()
    except stopping.Stopped:
        return 0
    finally:
        stopping.stop_group(proc)  # however it ended, nothing of its tree keeps running


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
                return serve_ui(settings, port, echo) or exit_code(outcomes)
    echo(
        "\nBrowse it: `make demo-ui` (the demo again, then the Dagster UI against the fake organization, so\n"
        "partitions launched there collect), or `make dev` (or DAGSTER_HOME="
        f"{os.environ['DAGSTER_HOME']} .venv/bin/dagster dev) to browse what is stored; "
        f'query it: .venv/bin/sm-assets query "SELECT * FROM aws.sagemaker_model_quality_job_definition" '
        f"(DuckDB file {settings.duckdb_path})"
    )
    return exit_code(outcomes)

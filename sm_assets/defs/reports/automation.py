"""The daily report run, after the inventory refresh."""

import dagster as dg

from sm_assets.defs.reports.assets import REPORT_ASSETS

report_job = dg.define_asset_job(
    "model_quality_report_job",
    selection=dg.AssetSelection.assets(*REPORT_ASSETS),
    description="Build the coverage reports (and the downstream trend) for one day.",
)


@dg.schedule(
    name="daily_model_quality_report",
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    job=report_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Report on today's snapshots at 06:00 UTC, three hours after the inventory refresh.",
)
def daily_model_quality_report(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(run_key=day, partition_key=day)

"""Model quality monitoring reports, computed from one day's tables (no Dagster here).

Four report tables: ``model_quality_coverage`` (one row per report_date, account_id and region),
``model_quality_findings`` (one per finding), ``model_quality_fleet_summary`` (one per report_date) and
``endpoint_monitor_coverage`` (one per endpoint and monitoring type). The counting rules and severities
are in docs/reports.md.
"""

from sm_assets.core.reports.agreement import check_findings_agreement, report_checks
from sm_assets.core.reports.compute import (
    ReportResult,
    compute_reports,
    coverage_trend,
    day_views,
    report_day,
    stored_summary,
)
from sm_assets.core.reports.formatting import (
    format_terminal_table,
    monitor_matrix,
    states_by_monitor_type,
    summary_markdown,
    worst_accounts,
)
from sm_assets.core.reports.frames import arrow_schema, empty_frame, empty_table, findings_by_severity, to_arrow
from sm_assets.core.reports.schemas import (
    COVERAGE_COLUMNS,
    COVERAGE_SCHEMA,
    COVERAGE_TABLE,
    ENDPOINT_MONITOR_COLUMNS,
    ENDPOINT_MONITOR_SCHEMA,
    ENDPOINT_MONITOR_TABLE,
    FINDING_SEVERITY,
    FINDINGS_COLUMNS,
    FINDINGS_SCHEMA,
    FINDINGS_TABLE,
    REPORT_TABLES,
    SEVERITIES,
    SUMMARY_COLUMNS,
    SUMMARY_SCHEMA,
    SUMMARY_TABLE,
    TREND_COLUMNS,
    TREND_SCHEMA,
    WORST_ACCOUNTS_COLUMNS,
    WORST_ACCOUNTS_SCHEMA,
)

__all__ = [
    "ENDPOINT_MONITOR_COLUMNS",
    "ENDPOINT_MONITOR_SCHEMA",
    "ENDPOINT_MONITOR_TABLE",
    "monitor_matrix",
    "states_by_monitor_type",
    "COVERAGE_COLUMNS",
    "COVERAGE_SCHEMA",
    "COVERAGE_TABLE",
    "FINDINGS_COLUMNS",
    "FINDINGS_SCHEMA",
    "FINDINGS_TABLE",
    "FINDING_SEVERITY",
    "REPORT_TABLES",
    "SEVERITIES",
    "SUMMARY_COLUMNS",
    "SUMMARY_SCHEMA",
    "SUMMARY_TABLE",
    "TREND_COLUMNS",
    "TREND_SCHEMA",
    "WORST_ACCOUNTS_COLUMNS",
    "WORST_ACCOUNTS_SCHEMA",
    "ReportResult",
    "arrow_schema",
    "check_findings_agreement",
    "compute_reports",
    "coverage_trend",
    "day_views",
    "empty_frame",
    "empty_table",
    "findings_by_severity",
    "format_terminal_table",
    "report_checks",
    "report_day",
    "stored_summary",
    "summary_markdown",
    "to_arrow",
    "worst_accounts",
]

"""Model quality monitoring reports, computed from one day's tables (no Dagster here).

Three report tables, one row per (report_date, account_id, region), per finding, and per report_date:
``model_quality_coverage``, ``model_quality_findings`` and ``model_quality_fleet_summary``. The counting
rules and severities are in docs/reports.md.
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
from sm_assets.core.reports.formatting import format_terminal_table, summary_markdown, worst_accounts
from sm_assets.core.reports.frames import arrow_schema, empty_frame, empty_table, findings_by_severity, to_arrow
from sm_assets.core.reports.schemas import (
    COVERAGE_COLUMNS,
    COVERAGE_SCHEMA,
    COVERAGE_TABLE,
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

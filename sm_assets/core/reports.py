"""Model quality monitoring reports, computed from stored history as of a report date.

Pure reporting core (no Dagster): DuckDB SQL over the ``aws.*_history`` views plus small pandas
presentation helpers. Three report tables:

* ``model_quality_coverage``: one row per (report_date, account_id, region);
* ``model_quality_findings``: one row per finding;
* ``model_quality_fleet_summary``: one row per report_date.

As-of semantics
---------------
The report for date D uses, for each account, its latest snapshot with ``snapshot_date <= D``, found in
``aws.collection_status_history`` (not the resource tables: an account with zero resources has no
resource rows). "Collected accounts" are the accounts with any status row on or before D. Every
collected account gets a row for every configured region. Within the snapshot, a (region,
resource_type) with no status row counts as ``error`` ("not collected"), as does any status value other
than ``ok`` / ``access_denied``. Status rows and resources in regions that are not configured are
ignored. Region status: any ``access_denied`` -> access_denied, else any ``error`` -> error, else ok.
An account-region whose collection is not ok is unknown: all its counts and its coverage are NULL
and it yields no resource findings, only one ``collection_denied`` / ``collection_error`` finding.

Rules (ok account-regions only, resources of the snapshot used)
---------------------------------------------------------------
* ModelQuality schedule: ``monitoring_type`` (falling back to
  ``MonitoringScheduleConfig.MonitoringType`` when the column is NULL) = ``ModelQuality``. Other
  monitoring types are ignored everywhere.
* A schedule names an endpoint via its ``endpoint_name`` column, falling back to
  ``LastMonitoringExecutionSummary.EndpointName`` when the column is NULL.
* Active schedule: status ``Scheduled`` (Pending / Stopped / Failed are not active).
* A definition names an endpoint via ``ModelQualityJobInput.EndpointInput.EndpointName``; it is
  batch transform when ``ModelQualityJobInput.BatchTransformInput`` is an object. Batch transform
  definitions name no endpoint, so they are never ``definition_endpoint_missing``.
* A definition is scheduled when any ModelQuality schedule (any status) in the same account and
  region names it via ``MonitoringScheduleConfig.MonitoringJobDefinitionName``.
* Baseline: ``ModelQualityBaselineConfig.ConstraintsResource.S3Uri`` is a non-empty string.
* Network isolated / intercontainer encrypted: the NetworkConfig flag is JSON ``true``; an absent
  NetworkConfig (or flag) counts as neither.
* In VPC: ``NetworkConfig.VpcConfig.Subnets`` is a non-empty array.
* KMS output: ``ModelQualityJobOutputConfig.KmsKeyId`` set; KMS volume:
  ``JobResources.ClusterConfig.VolumeKmsKeyId`` set.
* Intercontainer encryption finding only when ``JobResources.ClusterConfig.InstanceCount >= 2``
  (AWS Config's rule); a missing InstanceCount is the API default, 1.
* Failing monitor: a ModelQuality schedule (any status) whose last execution is ``Failed`` OR whose
  schedule status is ``Failed``; counted once per schedule in ``schedules_last_failed`` (so that
  column is broader than its name: it includes schedules that failed to start and never ran).
* Violations: a ModelQuality schedule (any status) whose last execution is
  ``CompletedWithViolations``.

Findings and severities
-----------------------
==================================== ======== =====================================================
finding                              severity why
==================================== ======== =====================================================
network_isolation_disabled           high     Security Hub SageMaker.25 (absent NetworkConfig too)
intercontainer_encryption_disabled   medium   Security Hub SageMaker.13, only if InstanceCount >= 2
endpoint_unmonitored                 medium   in-service endpoint, no Scheduled ModelQuality schedule
monitor_failing                      medium   a monitor exists but produces no results
no_baseline                          medium   without constraints no violation can be raised
collection_denied                    medium   blind spot: resource_arn is NULL (role ARN unknown)
definition_endpoint_missing          low      stale definition pointing at a deleted endpoint
definition_unscheduled               low      configured but never run
monitor_violations                   low      the monitor works and reports model drift
collection_error                     low      usually transient; resource_arn is NULL
==================================== ======== =====================================================

Every finding agrees with a coverage column; see :func:`check_findings_agreement`.

DataFrame dtypes: BIGINT -> ``Int64``, DOUBLE -> ``Float64`` (NULL is ``pd.NA``), DATE ->
``datetime.date`` objects, VARCHAR -> ``str``. :func:`to_arrow` converts with the exact schema.
Findings, one row per finding (millions at fleet scale), stay an Arrow table with the exact schema
from DuckDB to Parquet; :func:`check_findings_agreement` and :func:`findings_by_severity` take it as
is (or a DataFrame).

Scale: a report scans each history view once. The account-regions' status and the per-resource
flags are materialized as temporary tables (dropped afterwards); coverage is aggregated from them and
the findings are built from them, one sorted query per severity. The previous report date's findings
are only counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sm_assets.core.schemas import Column

COVERAGE_TABLE = "model_quality_coverage"
FINDINGS_TABLE = "model_quality_findings"
SUMMARY_TABLE = "model_quality_fleet_summary"

_ARROW = {"DATE": pa.date32(), "VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64()}


def _rc(name: str, duckdb_type: str, description: str, required: bool = False) -> Column:
    return Column(name, duckdb_type, _ARROW[duckdb_type], description, (), required)


_NULL_IF_NOT_OK = " NULL when collection is not ok."

COVERAGE_SCHEMA: tuple[Column, ...] = (
    _rc("report_date", "DATE", "Date the report is computed as of", required=True),
    _rc("account_id", "VARCHAR", "AWS account", required=True),
    _rc("region", "VARCHAR", "Configured AWS region", required=True),
    _rc("snapshot_date", "DATE", "The account's latest snapshot on or before report_date", required=True),
    _rc("collection_status", "VARCHAR", "ok | access_denied | error for this account-region", required=True),
    _rc("endpoints_total", "BIGINT", "Endpoints, any status." + _NULL_IF_NOT_OK),
    _rc("endpoints_in_service", "BIGINT", "Endpoints with EndpointStatus InService." + _NULL_IF_NOT_OK),
    _rc(
        "endpoints_with_definition",
        "BIGINT",
        "In-service endpoints named by a model quality job definition's EndpointInput." + _NULL_IF_NOT_OK,
    ),
    _rc(
        "endpoints_with_active_schedule",
        "BIGINT",
        "In-service endpoints with a Scheduled ModelQuality monitoring schedule." + _NULL_IF_NOT_OK,
    ),
    _rc(
        "coverage_pct",
        "DOUBLE",
        "100 * endpoints_with_active_schedule / endpoints_in_service; NULL when no in-service endpoints "
        "or collection not ok",
    ),
    _rc("definitions_total", "BIGINT", "Model quality job definitions." + _NULL_IF_NOT_OK),
    _rc(
        "definitions_with_baseline",
        "BIGINT",
        "Definitions with ModelQualityBaselineConfig.ConstraintsResource.S3Uri." + _NULL_IF_NOT_OK,
    ),
    _rc(
        "definitions_network_isolated",
        "BIGINT",
        "Definitions with NetworkConfig.EnableNetworkIsolation true." + _NULL_IF_NOT_OK,
    ),
    _rc(
        "definitions_intercontainer_encrypted",
        "BIGINT",
        "Definitions with NetworkConfig.EnableInterContainerTrafficEncryption true." + _NULL_IF_NOT_OK,
    ),
    _rc("definitions_in_vpc", "BIGINT", "Definitions with VpcConfig subnets." + _NULL_IF_NOT_OK),
    _rc("definitions_kms_output", "BIGINT", "Definitions with an output KmsKeyId." + _NULL_IF_NOT_OK),
    _rc("definitions_kms_volume", "BIGINT", "Definitions with a VolumeKmsKeyId." + _NULL_IF_NOT_OK),
    _rc("definitions_batch_transform", "BIGINT", "Definitions with BatchTransformInput." + _NULL_IF_NOT_OK),
    _rc(
        "definitions_endpoint_missing",
        "BIGINT",
        "Definitions whose EndpointInput names an endpoint absent from the account-region." + _NULL_IF_NOT_OK,
    ),
    _rc("definitions_unscheduled", "BIGINT", "Definitions no ModelQuality schedule names." + _NULL_IF_NOT_OK),
    _rc(
        "schedules_last_failed",
        "BIGINT",
        "ModelQuality schedules whose last execution Failed or whose status is Failed." + _NULL_IF_NOT_OK,
    ),
    _rc(
        "schedules_last_with_violations",
        "BIGINT",
        "ModelQuality schedules whose last execution is CompletedWithViolations." + _NULL_IF_NOT_OK,
    ),
)

FINDINGS_SCHEMA: tuple[Column, ...] = (
    _rc("report_date", "DATE", "Date the report is computed as of", required=True),
    _rc("account_id", "VARCHAR", "AWS account", required=True),
    _rc("region", "VARCHAR", "AWS region", required=True),
    _rc("resource_arn", "VARCHAR", "ARN of the offending resource; NULL for collection findings"),
    _rc("finding", "VARCHAR", "Finding code (see FINDING_SEVERITY)", required=True),
    _rc("severity", "VARCHAR", "high | medium | low", required=True),
    _rc("detail", "VARCHAR", "Human-readable explanation"),
)

SUMMARY_SCHEMA: tuple[Column, ...] = (
    _rc("report_date", "DATE", "Date the report is computed as of", required=True),
    _rc("accounts_total", "BIGINT", "Accounts with a snapshot on or before report_date", required=True),
    _rc("accounts_ok", "BIGINT", "Accounts whose every configured region is ok", required=True),
    _rc("accounts_denied", "BIGINT", "Accounts with any access_denied region", required=True),
    _rc("accounts_error", "BIGINT", "Accounts not denied with any error region", required=True),
    _rc("endpoints_in_service", "BIGINT", "In-service endpoints in ok regions", required=True),
    _rc(
        "endpoints_with_active_schedule",
        "BIGINT",
        "In-service endpoints with an active ModelQuality schedule, ok regions",
        required=True,
    ),
    _rc("fleet_coverage_pct", "DOUBLE", "100 * active / in service; NULL when no in-service endpoints"),
    _rc("findings_high", "BIGINT", "Findings with severity high", required=True),
    _rc("findings_medium", "BIGINT", "Findings with severity medium", required=True),
    _rc("findings_low", "BIGINT", "Findings with severity low", required=True),
    _rc("previous_report_date", "DATE", "Latest earlier date with any snapshot; NULL if none"),
    _rc(
        "coverage_change_pts",
        "DOUBLE",
        "fleet_coverage_pct minus the previous report's; NULL if either is NULL",
    ),
    _rc("findings_change", "BIGINT", "Total findings minus the previous report's; NULL if no previous"),
)

TREND_SCHEMA: tuple[Column, ...] = (
    _rc("report_date", "DATE", "A date with at least one snapshot", required=True),
    _rc("accounts_total", "BIGINT", "Accounts with a snapshot on or before report_date", required=True),
    _rc("accounts_ok", "BIGINT", "Accounts whose every region is ok", required=True),
    _rc("endpoints_in_service", "BIGINT", "In-service endpoints in ok regions", required=True),
    _rc("endpoints_with_active_schedule", "BIGINT", "Covered in-service endpoints, ok regions", required=True),
    _rc("fleet_coverage_pct", "DOUBLE", "Fleet coverage as of report_date"),
)

WORST_ACCOUNTS_SCHEMA: tuple[Column, ...] = (
    _rc("account_id", "VARCHAR", "AWS account", required=True),
    _rc("collection_status", "VARCHAR", "ok | access_denied | error (account rule)", required=True),
    _rc("snapshot_date", "DATE", "Snapshot used"),
    _rc("regions_ok", "BIGINT", "Configured regions collected ok", required=True),
    _rc("regions_total", "BIGINT", "Configured regions", required=True),
    _rc("endpoints_in_service", "BIGINT", "In-service endpoints over ok regions; NULL if no ok region"),
    _rc("endpoints_with_active_schedule", "BIGINT", "Covered in-service endpoints over ok regions"),
    _rc("endpoints_unmonitored", "BIGINT", "endpoints_in_service - endpoints_with_active_schedule"),
    _rc("coverage_pct", "DOUBLE", "Account coverage over ok regions; NULL when unknown or no endpoints"),
)

COVERAGE_COLUMNS: tuple[str, ...] = tuple(c.name for c in COVERAGE_SCHEMA)
FINDINGS_COLUMNS: tuple[str, ...] = tuple(c.name for c in FINDINGS_SCHEMA)
SUMMARY_COLUMNS: tuple[str, ...] = tuple(c.name for c in SUMMARY_SCHEMA)
TREND_COLUMNS: tuple[str, ...] = tuple(c.name for c in TREND_SCHEMA)
WORST_ACCOUNTS_COLUMNS: tuple[str, ...] = tuple(c.name for c in WORST_ACCOUNTS_SCHEMA)

REPORT_TABLES: dict[str, tuple[Column, ...]] = {
    COVERAGE_TABLE: COVERAGE_SCHEMA,
    FINDINGS_TABLE: FINDINGS_SCHEMA,
    SUMMARY_TABLE: SUMMARY_SCHEMA,
}

SEVERITIES: tuple[str, ...] = ("high", "medium", "low")

FINDING_SEVERITY: dict[str, str] = {
    "network_isolation_disabled": "high",
    "intercontainer_encryption_disabled": "medium",
    "endpoint_unmonitored": "medium",
    "monitor_failing": "medium",
    "no_baseline": "medium",
    "collection_denied": "medium",
    "definition_endpoint_missing": "low",
    "definition_unscheduled": "low",
    "monitor_violations": "low",
    "collection_error": "low",
}

RESOURCE_TYPES: tuple[str, ...] = ("model_quality_job_definition", "endpoint", "monitoring_schedule")

# --------------------------------------------------------------------------------------------------
# SQL. Parameters: $report_date DATE, $regions VARCHAR[], $all_regions BOOLEAN, $resource_types.
#
# The building blocks are named CTE bodies. The trend runs them as one coverage query; a full report
# materializes the status and the per-resource flags once into temporary tables (one scan of each
# history view), then reads coverage and findings from those.
# --------------------------------------------------------------------------------------------------

_CTES: dict[str, str] = {
    "snap": """
    -- each account's latest snapshot on or before the report date, from collection status because
    -- an account with zero resources has no resource rows
    SELECT account_id, max(snapshot_date) AS snapshot_date
    FROM aws.collection_status_history
    WHERE snapshot_date <= $report_date
    GROUP BY account_id
""",
    "snap_status": """
    SELECT h.*
    FROM aws.collection_status_history h
    JOIN snap s ON h.account_id = s.account_id AND h.snapshot_date = s.snapshot_date
""",
    "account_regions": """
    SELECT s.account_id, s.snapshot_date, r.region
    FROM snap s CROSS JOIN (SELECT DISTINCT unnest($regions::VARCHAR[]) AS region) r
    WHERE NOT $all_regions
    UNION
    -- trend without configured regions: whatever regions each snapshot recorded
    SELECT account_id, snapshot_date, region FROM snap_status WHERE $all_regions
""",
    "status_cells": """
    -- every expected (account, region, resource_type); a missing status row means not collected
    SELECT
        ar.account_id, ar.snapshot_date, ar.region, t.resource_type,
        CASE WHEN h.status IN ('ok', 'access_denied') THEN h.status ELSE 'error' END AS status,
        h.error_code,
        CASE WHEN h.status IS NULL
             THEN 'not collected: no collection status row in snapshot ' || CAST(ar.snapshot_date AS VARCHAR)
             ELSE h.message END AS message
    FROM account_regions ar
    CROSS JOIN (SELECT unnest($resource_types::VARCHAR[]) AS resource_type) t
    LEFT JOIN snap_status h
        ON h.account_id = ar.account_id AND h.region = ar.region AND h.resource_type = t.resource_type
""",
    "region_status": """
    SELECT
        account_id, snapshot_date, region,
        CASE WHEN bool_or(status = 'access_denied') THEN 'access_denied'
             WHEN bool_or(status = 'error') THEN 'error'
             ELSE 'ok' END AS collection_status,
        string_agg(
            CASE WHEN status <> 'ok' THEN
                resource_type || ': ' || status || coalesce(' [' || error_code || ']', '')
                || coalesce(' ' || message, '')
            END, '; ' ORDER BY resource_type) AS status_detail
    FROM status_cells
    GROUP BY account_id, snapshot_date, region
""",
    "ok_regions": """
    SELECT account_id, snapshot_date, region FROM region_status WHERE collection_status = 'ok'
""",
    "ep": """
    SELECT
        e.account_id, e.region, e.endpoint_arn, e.endpoint_name, e.endpoint_status,
        coalesce(e.endpoint_status = 'InService', false) AS in_service
    FROM aws.sagemaker_endpoint_history e
    JOIN ok_regions o
        ON e.account_id = o.account_id AND e.snapshot_date = o.snapshot_date AND e.region = o.region
    -- implied by the join; as constants they skip the files of other snapshot dates
    WHERE e.snapshot_date BETWEEN $snapshot_from AND $report_date
""",
    "defs": """
    SELECT
        d.account_id, d.region, d.job_definition_arn, d.job_definition_name,
        d.network_config IS NULL AS network_config_absent,
        nullif(d.model_quality_job_input ->> '$.EndpointInput.EndpointName', '') AS endpoint_name,
        coalesce(json_type(d.model_quality_job_input, '$.BatchTransformInput') = 'OBJECT', false)
            AS batch_transform,
        nullif(d.model_quality_baseline_config ->> '$.ConstraintsResource.S3Uri', '') IS NOT NULL
            AS has_baseline,
        coalesce(lower(d.network_config ->> '$.EnableNetworkIsolation') = 'true', false) AS network_isolated,
        coalesce(lower(d.network_config ->> '$.EnableInterContainerTrafficEncryption') = 'true', false)
            AS intercontainer_encrypted,
        coalesce(json_array_length(d.network_config, '$.VpcConfig.Subnets') > 0, false) AS in_vpc,
        nullif(d.model_quality_job_output_config ->> '$.KmsKeyId', '') IS NOT NULL AS kms_output,
        nullif(d.job_resources ->> '$.ClusterConfig.VolumeKmsKeyId', '') IS NOT NULL AS kms_volume,
        -- InstanceCount defaults to 1 in the API
        coalesce(TRY_CAST(d.job_resources ->> '$.ClusterConfig.InstanceCount' AS BIGINT), 1) AS instance_count
    FROM aws.sagemaker_model_quality_job_definition_history d
    JOIN ok_regions o
        ON d.account_id = o.account_id AND d.snapshot_date = o.snapshot_date AND d.region = o.region
    WHERE d.snapshot_date BETWEEN $snapshot_from AND $report_date
""",
    "sched": """
    SELECT
        s.account_id, s.region, s.monitoring_schedule_arn, s.monitoring_schedule_name,
        coalesce(nullif(s.endpoint_name, ''),
                 nullif(s.last_monitoring_execution_summary ->> '$.EndpointName', '')) AS endpoint_name,
        s.monitoring_schedule_config ->> '$.MonitoringJobDefinitionName' AS job_definition_name,
        s.monitoring_schedule_status AS schedule_status,
        s.failure_reason,
        s.last_monitoring_execution_summary ->> '$.MonitoringExecutionStatus' AS last_execution_status,
        s.last_monitoring_execution_summary ->> '$.FailureReason' AS last_execution_failure_reason
    FROM aws.sagemaker_monitoring_schedule_history s
    JOIN ok_regions o
        ON s.account_id = o.account_id AND s.snapshot_date = o.snapshot_date AND s.region = o.region
    WHERE coalesce(s.monitoring_type, s.monitoring_schedule_config ->> '$.MonitoringType') = 'ModelQuality'
        AND s.snapshot_date BETWEEN $snapshot_from AND $report_date
""",
    "ep_active": """
    -- EXISTS: a semi-join probe per row, no DISTINCT set of names to build first
    SELECT
        ep.*,
        EXISTS (
            SELECT 1 FROM sched s
            WHERE s.account_id = ep.account_id AND s.region = ep.region AND s.endpoint_name = ep.endpoint_name
                AND s.schedule_status = 'Scheduled'
        ) AS has_active_schedule
    FROM ep
""",
    "ep_flags": """
    SELECT
        ep.*,
        EXISTS (
            SELECT 1 FROM defs d
            WHERE d.account_id = ep.account_id AND d.region = ep.region AND d.endpoint_name = ep.endpoint_name
        ) AS has_definition
    FROM ep_active ep
""",
    "def_flags": """
    SELECT
        d.*,
        d.endpoint_name IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM ep
            WHERE ep.account_id = d.account_id AND ep.region = d.region AND ep.endpoint_name = d.endpoint_name
        ) AS endpoint_missing,
        NOT EXISTS (
            SELECT 1 FROM sched s
            WHERE s.account_id = d.account_id AND s.region = d.region
                AND s.job_definition_name = d.job_definition_name
        ) AS unscheduled
    FROM defs d
""",
    "sched_flags": """
    SELECT
        s.*,
        coalesce(s.last_execution_status = 'Failed', false)
            OR coalesce(s.schedule_status = 'Failed', false) AS failing,
        coalesce(s.last_execution_status = 'CompletedWithViolations', false) AS violations
    FROM sched s
""",
}

# What each CTE reads (other CTEs only).
_CTE_DEPS: dict[str, tuple[str, ...]] = {
    "snap": (),
    "snap_status": ("snap",),
    "account_regions": ("snap", "snap_status"),
    "status_cells": ("account_regions", "snap_status"),
    "region_status": ("status_cells",),
    "ok_regions": ("region_status",),
    "ep": ("ok_regions",),
    "defs": ("ok_regions",),
    "sched": ("ok_regions",),
    "ep_active": ("ep", "sched"),
    "ep_flags": ("ep_active", "defs"),
    "def_flags": ("defs", "ep", "sched"),
    "sched_flags": ("sched",),
}


def _with(targets: Sequence[str], tables: Mapping[str, str], extra: Sequence[str] = ()) -> str:
    """A WITH clause defining ``targets`` and whatever they need; names in ``tables`` read that
    (temporary) table instead of being computed. ``extra``: more CTE definitions appended as is."""
    needed: set[str] = set()

    def visit(name: str) -> None:
        if name not in needed:
            needed.add(name)
            if name not in tables:
                for dep in _CTE_DEPS[name]:
                    visit(dep)

    for target in targets:
        visit(target)
    defs = [
        f"{name} AS NOT MATERIALIZED (SELECT * FROM {tables[name]})" if name in tables else f"{name} AS ({_CTES[name]})"
        for name in _CTES
        if name in needed
    ]
    return "WITH\n" + ",\n".join([*defs, *extra]) + "\n"


# Aggregates per ok account-region; the coverage query turns them into NULL when not ok.
_EP_AGGS = {
    "endpoints_total": "count(*)",
    "endpoints_in_service": "count(*) FILTER (WHERE in_service)",
    "endpoints_with_definition": "count(*) FILTER (WHERE in_service AND has_definition)",
    "endpoints_with_active_schedule": "count(*) FILTER (WHERE in_service AND has_active_schedule)",
}
_DEF_AGGS = {
    "definitions_total": "count(*)",
    "definitions_with_baseline": "count(*) FILTER (WHERE has_baseline)",
    "definitions_network_isolated": "count(*) FILTER (WHERE network_isolated)",
    "definitions_intercontainer_encrypted": "count(*) FILTER (WHERE intercontainer_encrypted)",
    "definitions_in_vpc": "count(*) FILTER (WHERE in_vpc)",
    "definitions_kms_output": "count(*) FILTER (WHERE kms_output)",
    "definitions_kms_volume": "count(*) FILTER (WHERE kms_volume)",
    "definitions_batch_transform": "count(*) FILTER (WHERE batch_transform)",
    "definitions_endpoint_missing": "count(*) FILTER (WHERE endpoint_missing)",
    "definitions_unscheduled": "count(*) FILTER (WHERE unscheduled)",
}
_SCHED_AGGS = {
    "schedules_last_failed": "count(*) FILTER (WHERE failing)",
    "schedules_last_with_violations": "count(*) FILTER (WHERE violations)",
}
_AGG_SOURCES = (
    ("ep_agg", "ep_flags", _EP_AGGS),
    ("def_agg", "def_flags", _DEF_AGGS),
    ("sched_agg", "sched_flags", _SCHED_AGGS),
)


def _coverage_sql(tables: Mapping[str, str]) -> str:
    agg_ctes = []
    col_exprs: dict[str, str] = {}
    for alias, source, aggs in _AGG_SOURCES:
        select = ",\n        ".join(f"{expr} AS {name}" for name, expr in aggs.items())
        agg_ctes.append(
            f"{alias} AS (\n    SELECT account_id, region,\n        {select}\n"
            f"    FROM {source} GROUP BY account_id, region\n)"
        )
        for name in aggs:
            # ok with no resources -> 0; not ok -> NULL (unknown, never 0)
            col_exprs[name] = (
                f"CASE WHEN rs.collection_status = 'ok' THEN CAST(coalesce({alias}.{name}, 0) AS BIGINT) END"
            )
    col_exprs["coverage_pct"] = (
        "CASE WHEN rs.collection_status = 'ok' AND coalesce(ep_agg.endpoints_in_service, 0) > 0 "
        "THEN 100.0 * ep_agg.endpoints_with_active_schedule / ep_agg.endpoints_in_service END"
    )
    fixed = {
        "report_date": "CAST($report_date AS DATE)",
        "account_id": "rs.account_id",
        "region": "rs.region",
        "snapshot_date": "rs.snapshot_date",
        "collection_status": "rs.collection_status",
    }
    select = ",\n    ".join(f"{(fixed | col_exprs)[c]} AS {c}" for c in COVERAGE_COLUMNS)
    joins = "\n".join(
        f"LEFT JOIN {alias} ON {alias}.account_id = rs.account_id AND {alias}.region = rs.region"
        for alias, _, _ in _AGG_SOURCES
    )
    return (
        _with(["region_status", *(source for _, source, _ in _AGG_SOURCES)], tables, agg_ctes)
        + f"SELECT\n    {select}\nFROM region_status rs\n{joins}\nORDER BY rs.account_id, rs.region"
    )


# One rule per finding code: (source CTE, resource_arn, condition, detail). Collection findings have a
# NULL resource_arn: the collector's role ARN is not part of the status contract.
_FINDING_RULES: dict[str, tuple[str, str, str, str]] = {
    "endpoint_unmonitored": (
        "ep_flags",
        "endpoint_arn",
        "in_service AND NOT has_active_schedule",
        """'endpoint ' || endpoint_name || ' is InService with no Scheduled ModelQuality monitoring schedule'
        || CASE WHEN has_definition THEN ' (a model quality job definition targets it)'
                ELSE ' (no model quality job definition targets it)' END""",
    ),
    "definition_endpoint_missing": (
        "def_flags",
        "job_definition_arn",
        "endpoint_missing",
        """'job definition ' || job_definition_name || ' targets endpoint ' || endpoint_name
        || ', which does not exist in this account and region'""",
    ),
    "definition_unscheduled": (
        "def_flags",
        "job_definition_arn",
        "unscheduled",
        "'no ModelQuality monitoring schedule uses job definition ' || job_definition_name",
    ),
    "no_baseline": (
        "def_flags",
        "job_definition_arn",
        "NOT has_baseline",
        "'job definition ' || job_definition_name || ' has no ModelQualityBaselineConfig.ConstraintsResource'",
    ),
    "network_isolation_disabled": (
        "def_flags",
        "job_definition_arn",
        "NOT network_isolated",
        """'job definition ' || job_definition_name || ': '
        || CASE WHEN network_config_absent THEN 'NetworkConfig is absent'
                ELSE 'NetworkConfig.EnableNetworkIsolation is not true' END
        || ' (Security Hub SageMaker.25)'""",
    ),
    "intercontainer_encryption_disabled": (
        "def_flags",
        "job_definition_arn",
        "NOT intercontainer_encrypted AND instance_count >= 2",
        """'job definition ' || job_definition_name || ' runs on ' || CAST(instance_count AS VARCHAR)
        || ' instances without EnableInterContainerTrafficEncryption (Security Hub SageMaker.13)'""",
    ),
    "monitor_failing": (
        "sched_flags",
        "monitoring_schedule_arn",
        "failing",
        """'schedule ' || monitoring_schedule_name || ': '
        || concat_ws('; ',
            CASE WHEN schedule_status = 'Failed'
                 THEN 'schedule status Failed' || coalesce(' (' || failure_reason || ')', '') END,
            CASE WHEN last_execution_status = 'Failed'
                 THEN 'last execution Failed'
                      || coalesce(' (' || last_execution_failure_reason || ')', '') END)""",
    ),
    "monitor_violations": (
        "sched_flags",
        "monitoring_schedule_arn",
        "violations",
        """'schedule ' || monitoring_schedule_name || ': last execution CompletedWithViolations'
        || coalesce(' (endpoint ' || endpoint_name || ')', '')""",
    ),
    "collection_denied": ("region_status", "NULL", "collection_status = 'access_denied'", "status_detail"),
    "collection_error": ("region_status", "NULL", "collection_status = 'error'", "status_detail"),
}


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _findings_sql(tables: Mapping[str, str], severities: Sequence[str] = SEVERITIES) -> str:
    """Findings of the given severities, in report order. Severity and its rank are constants of each
    rule: no join, and the first sort key is an integer."""
    rules = {code: rule for code, rule in _FINDING_RULES.items() if FINDING_SEVERITY[code] in severities}
    branches = "\n    UNION ALL\n".join(
        f"    SELECT {SEVERITIES.index(FINDING_SEVERITY[code])} AS severity_rank, account_id, region,\n"
        f"        {arn} AS resource_arn, {_sql_str(code)} AS finding, {_sql_str(FINDING_SEVERITY[code])} AS severity,\n"
        f"        {detail} AS detail\n"
        f"    FROM {source} WHERE {condition}"
        for code, (source, arn, condition, detail) in rules.items()
    )
    sources = list(dict.fromkeys(source for source, _, _, _ in rules.values()))
    return (
        _with(sources, tables)
        + "SELECT CAST($report_date AS DATE) AS report_date, account_id, region, resource_arn, finding, severity, "
        + f"detail\nFROM (\n{branches}\n) AS f\n"
        + "ORDER BY severity_rank, account_id, region, finding, resource_arn NULLS FIRST"
    )


def _finding_counts_sql(tables: Mapping[str, str]) -> str:
    """Number of findings per code, without building them (the previous report's summary)."""
    branches = "\nUNION ALL\n".join(
        f"SELECT {_sql_str(code)} AS finding, count(*) AS n FROM {source} WHERE {condition}"
        for code, (source, _, condition, _) in _FINDING_RULES.items()
    )
    sources = list(dict.fromkeys(source for source, _, _, _ in _FINDING_RULES.values()))
    return _with(sources, tables) + branches


_NO_TABLES: dict[str, str] = {}

# What the fleet numbers of a trend date need: account-region status and the endpoint counts, so the
# definitions (the costly JSON) are never read.
_TREND_COVERAGE_COLUMNS = ("account_id", "collection_status", "endpoints_in_service", "endpoints_with_active_schedule")


def _trend_coverage_sql() -> str:
    counts = ("endpoints_in_service", "endpoints_with_active_schedule")
    aggs = ", ".join(f"{_EP_AGGS[name]} AS {name}" for name in counts)
    select = ", ".join(
        f"CASE WHEN rs.collection_status = 'ok' THEN CAST(coalesce(ep_agg.{name}, 0) AS BIGINT) END AS {name}"
        for name in counts
    )
    agg = f"ep_agg AS (SELECT account_id, region, {aggs} FROM ep_active GROUP BY account_id, region)"
    return (
        _with(["region_status", "ep_active"], _NO_TABLES, [agg])
        + f"SELECT rs.account_id, rs.collection_status, {select}\nFROM region_status rs\n"
        + "LEFT JOIN ep_agg ON ep_agg.account_id = rs.account_id AND ep_agg.region = rs.region\n"
        + "ORDER BY rs.account_id, rs.region"
    )


_TREND_COVERAGE_SQL = _trend_coverage_sql()  # one statement per trend date

# Per date: the oldest of the accounts' latest snapshots on or before it (what a report for it reads).
_SNAPSHOT_FROM_SQL = """
SELECT d, min(latest) FROM (
    SELECT t.d, h.account_id, max(h.snapshot_date) AS latest
    FROM (SELECT unnest($dates::DATE[]) AS d) t
    JOIN aws.collection_status_history h ON h.snapshot_date <= t.d
    GROUP BY t.d, h.account_id
)
GROUP BY d
"""
_TREND_COVERAGE_SCHEMA = tuple(c for c in COVERAGE_SCHEMA if c.name in _TREND_COVERAGE_COLUMNS)

# Materialization stages of a full report: (CTE computed, CTE names it stands for afterwards).
# The flags tables hold every column of what they extend, so they stand for it too (and the raw table
# is dropped). The endpoint flags need the definitions and the definition flags need the endpoints:
# the endpoints, cheap to copy (no JSON), go first, raw; definitions are read once, into their flags.
_STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("region_status", ("region_status",)),
    ("sched_flags", ("sched_flags", "sched")),
    ("ep", ("ep",)),
    ("def_flags", ("def_flags", "defs")),
    ("ep_flags", ("ep_flags", "ep")),
)


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


@dataclass
class ReportResult:
    report_date: date
    coverage: pd.DataFrame  # COVERAGE_COLUMNS
    # FINDINGS_COLUMNS with the exact FINDINGS_SCHEMA: an Arrow table, because it holds one row per finding
    # (millions at fleet scale) and is written to Parquet as is; ``findings.to_pandas()`` for a DataFrame.
    findings: pa.Table
    summary: pd.DataFrame  # SUMMARY_COLUMNS, one row (zero rows when reason is set)
    reason: str | None = None  # set when there is no snapshot on or before report_date
    snapshot_dates_used: dict[str, date] = field(default_factory=dict)
    # Fleet numbers of the previous report date, for display only: its own change columns are NULL.
    previous_summary: pd.DataFrame | None = None
    regions: tuple[str, ...] = ()  # the configured regions the report was computed for

    def markdown(self, n: int = 10) -> str:
        if self.summary.empty:
            return f"## Model quality monitoring: {self.report_date}\n\n{self.reason or 'No data.'}\n"
        previous = None if self.previous_summary is None else self.previous_summary.iloc[0]
        return summary_markdown(self.summary.iloc[0], worst_accounts(self.coverage, n), previous)


def compute_reports(conn: duckdb.DuckDBPyConnection, report_date: date, regions: Sequence[str]) -> ReportResult:
    """Compute coverage, findings and fleet summary as of ``report_date`` from stored history.

    The previous report (latest earlier date with any snapshot) is recomputed from history too (its
    fleet numbers only: its findings are counted, not built).
    """
    report_date = _as_date(report_date)
    regions = _check_regions(regions)
    ((earliest, has_any, previous_date),) = _rows(
        conn,
        "SELECT min(snapshot_date), count(*) FILTER (WHERE snapshot_date <= $d) > 0, "
        "max(snapshot_date) FILTER (WHERE snapshot_date < $d) FROM aws.collection_status_history",
        {"d": report_date},
    )
    if not has_any:
        reason = f"no collection snapshots on or before {report_date}" + (
            f" (earliest snapshot is {earliest})" if earliest else " (collection history is empty)"
        )
        return ReportResult(
            report_date=report_date,
            coverage=empty_frame(COVERAGE_SCHEMA),
            findings=empty_table(FINDINGS_SCHEMA),
            summary=empty_frame(SUMMARY_SCHEMA),
            reason=reason,
            regions=tuple(regions),
        )

    prev = None
    if previous_date is not None:
        # first: its temporary tables are gone before this date's findings take memory
        with _materialized(conn, _params(previous_date, regions)) as core:
            prev = _fleet_numbers(core.coverage(), core.severity_counts())

    with _materialized(conn, _params(report_date, regions)) as core:
        coverage = core.coverage()
        used = core.snapshot_dates_used()
        findings = core.take_findings()
    fleet = _fleet_numbers(coverage, findings_by_severity(findings))

    previous_summary = None
    change: dict[str, Any] = {
        "previous_report_date": previous_date,
        "coverage_change_pts": None,
        "findings_change": None,
    }
    if prev is not None:
        previous_summary = _conform(pd.DataFrame([{"report_date": previous_date, **prev}]), SUMMARY_SCHEMA)
        if fleet["fleet_coverage_pct"] is not None and prev["fleet_coverage_pct"] is not None:
            change["coverage_change_pts"] = fleet["fleet_coverage_pct"] - prev["fleet_coverage_pct"]
        change["findings_change"] = _findings_total(fleet) - _findings_total(prev)

    summary = _conform(pd.DataFrame([{"report_date": report_date, **fleet, **change}]), SUMMARY_SCHEMA)
    return ReportResult(
        report_date=report_date,
        coverage=coverage,
        findings=findings,
        summary=summary,
        reason=None,
        snapshot_dates_used=used,
        previous_summary=previous_summary,
        regions=tuple(regions),
    )


def previous_report_date(conn: duckdb.DuckDBPyConnection, report_date: date) -> date | None:
    """Latest date strictly before ``report_date`` that has any snapshot."""
    ((previous,),) = _rows(
        conn,
        "SELECT max(snapshot_date) FROM aws.collection_status_history WHERE snapshot_date < $d",
        {"d": _as_date(report_date)},
    )
    return previous


def coverage_trend(
    conn: duckdb.DuckDBPyConnection,
    end_date: date,
    days: int = 30,
    regions: Sequence[str] | None = None,
    *,
    reuse: ReportResult | None = None,
) -> pd.DataFrame:
    """Fleet coverage per snapshot date in the ``days`` days ending at ``end_date`` (TREND_COLUMNS).

    Each date is computed from history as of that date. Pass the configured ``regions`` to match the
    coverage report exactly; ``None`` uses the regions each account's snapshot recorded. ``reuse``: a
    report computed for the same regions; its date and its previous date are taken from its summaries
    instead of being computed again.
    """
    if days < 1:
        raise ValueError("days must be >= 1")
    end_date = _as_date(end_date)
    start = end_date - timedelta(days=days - 1)
    dates = [
        r[0]
        for r in _rows(
            conn,
            "SELECT DISTINCT snapshot_date FROM aws.collection_status_history "
            "WHERE snapshot_date BETWEEN $s AND $e ORDER BY snapshot_date",
            {"s": start, "e": end_date},
        )
    ]
    checked = None if regions is None else _check_regions(regions)
    known: dict[date, dict[str, Any]] = {}
    if reuse is not None and checked is not None and list(reuse.regions) == checked:
        for summary in (reuse.summary, reuse.previous_summary):
            if summary is not None and not summary.empty:
                row = _row_dict(summary.iloc[0])
                known[_as_date(row["report_date"])] = row
    todo = [d for d in dates if d not in known]
    # each date's oldest snapshot in use, in one query: the per-date scans then skip older files
    snapshot_from = dict(_rows(conn, _SNAPSHOT_FROM_SQL, {"dates": todo})) if todo else {}
    rows = []
    for d in dates:  # one query per date, never per resource
        fleet = known.get(d)
        if fleet is None:
            params = _params(d, checked, snapshot_from.get(d))
            fleet = _fleet_numbers(_fetch(conn, _TREND_COVERAGE_SQL, params, _TREND_COVERAGE_SCHEMA), None)
        rows.append({"report_date": d, **{c: fleet[c] for c in TREND_COLUMNS if c != "report_date"}})
    return _conform(pd.DataFrame(rows, columns=list(TREND_COLUMNS)), TREND_SCHEMA)


def check_findings_agreement(coverage: pd.DataFrame, findings: pa.Table | pd.DataFrame) -> list[str]:
    """Mismatches between findings and coverage counts, as readable strings (empty list = agreement).

    Per (report_date, account_id, region): ok rows must satisfy
      endpoint_unmonitored = endpoints_in_service - endpoints_with_active_schedule,
      definition_endpoint_missing = definitions_endpoint_missing,
      definition_unscheduled = definitions_unscheduled,
      no_baseline = definitions_total - definitions_with_baseline,
      network_isolation_disabled = definitions_total - definitions_network_isolated,
      monitor_failing = schedules_last_failed, monitor_violations = schedules_last_with_violations,
      intercontainer_encryption_disabled <= definitions_total - definitions_intercontainer_encrypted
        (an inequality: single-instance definitions are exempt),
      no collection findings and no NULL counts;
    access_denied rows: exactly one collection_denied, nothing else, all counts and coverage NULL;
    error rows: exactly one collection_error, likewise. Findings for account-regions missing from
    coverage, unknown finding codes and wrong severities are mismatches too.
    """
    problems: list[str] = []
    # Only counts matter: group the (possibly millions of) findings first, then check the groups.
    groups = _finding_groups(findings)

    unknown = groups[~groups["finding"].isin(list(FINDING_SEVERITY))]
    for code in sorted(set(unknown["finding"].astype(str))):
        problems.append(f"unknown finding code {code!r}")
    expected_sev = groups["finding"].map(FINDING_SEVERITY)
    bad_sev = groups[expected_sev.notna() & (groups["severity"] != expected_sev)]
    for code in sorted(set(bad_sev["finding"])):
        problems.append(f"finding {code} has severity other than {FINDING_SEVERITY[code]!r}")

    known = groups[groups["finding"].isin(list(FINDING_SEVERITY))]
    codes = list(FINDING_SEVERITY)
    if known.empty:
        counts = pd.DataFrame(columns=["_key", *codes])
    else:
        # string keys on both sides so the merge never trips on date vs object dtypes
        counts = (
            known.assign(_key=_key_series(known))
            .groupby(["_key", "finding"])["n"]
            .sum()
            .unstack("finding", fill_value=0)
            .reindex(columns=codes, fill_value=0)
            .reset_index()
        )
    left = coverage.assign(_key=_key_series(coverage))
    merged = left.merge(counts, on="_key", how="outer", indicator=True)
    for key in merged.loc[merged["_merge"] == "right_only", "_key"]:
        problems.append(f"{key}: findings for an account-region that has no coverage row")
    merged = merged[merged["_merge"] != "right_only"].reset_index(drop=True)
    for code in FINDING_SEVERITY:
        merged[code] = merged[code].fillna(0).astype("int64")

    status = merged["collection_status"]
    ok, denied, error = status.eq("ok"), status.eq("access_denied"), status.eq("error")
    count_cols = [c.name for c in COVERAGE_SCHEMA if c.duckdb_type == "BIGINT"] + ["coverage_pct"]

    def col(name: str) -> pd.Series:
        return merged[name].astype("Float64")

    equal_rules: dict[str, pd.Series] = {
        "endpoint_unmonitored": col("endpoints_in_service") - col("endpoints_with_active_schedule"),
        "definition_endpoint_missing": col("definitions_endpoint_missing"),
        "definition_unscheduled": col("definitions_unscheduled"),
        "no_baseline": col("definitions_total") - col("definitions_with_baseline"),
        "network_isolation_disabled": col("definitions_total") - col("definitions_network_isolated"),
        "monitor_failing": col("schedules_last_failed"),
        "monitor_violations": col("schedules_last_with_violations"),
        "collection_denied": pd.Series(0, index=merged.index, dtype="Float64").mask(denied, 1),
        "collection_error": pd.Series(0, index=merged.index, dtype="Float64").mask(error, 1),
    }
    for code, expected in equal_rules.items():
        # not-ok rows expect zero resource findings
        expected = expected.where(ok | code.startswith("collection_"), 0)
        bad = (merged[code].astype("Float64") != expected).fillna(True)
        for i in merged.index[bad]:
            problems.append(
                f"{merged.at[i, '_key']}: {code} findings={merged.at[i, code]} but coverage implies "
                f"{_fmt_num(expected.at[i])} (collection_status={status.at[i]})"
            )

    ic_limit = (col("definitions_total") - col("definitions_intercontainer_encrypted")).where(ok, 0)
    ic_code = "intercontainer_encryption_disabled"
    bad = (merged[ic_code].astype("Float64") > ic_limit).fillna(True)
    for i in merged.index[bad]:
        problems.append(
            f"{merged.at[i, '_key']}: {ic_code} findings={merged.at[i, ic_code]} exceed "
            f"definitions_total - definitions_intercontainer_encrypted = {_fmt_num(ic_limit.at[i])}"
        )

    for name in count_cols:
        if name == "coverage_pct":
            wrong = ~ok & merged[name].notna()
        else:
            wrong = (ok & merged[name].isna()) | (~ok & merged[name].notna())
        for i in merged.index[wrong]:
            rule = "must be NULL" if not ok.at[i] else "must not be NULL"
            problems.append(f"{merged.at[i, '_key']}: {name} {rule} (collection_status={status.at[i]})")
    return problems


def worst_accounts(coverage_df: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """Account-level coverage (sums over ok regions), worst first (WORST_ACCOUNTS_COLUMNS).

    Order: known coverage ascending (ties: denied, error, ok; then most unmonitored endpoints), then
    accounts with NULL coverage (denied, error, ok-without-endpoints). Uses the latest report_date.
    """
    if coverage_df.empty:
        return empty_frame(WORST_ACCOUNTS_SCHEMA)
    cov = coverage_df[coverage_df["report_date"] == coverage_df["report_date"].max()]
    ok = cov["collection_status"].eq("ok")
    work = pd.DataFrame(
        {
            "account_id": cov["account_id"],
            "snapshot_date": cov["snapshot_date"],
            "ok": ok,
            "denied": cov["collection_status"].eq("access_denied"),
            "error": cov["collection_status"].eq("error"),
            "ins": cov["endpoints_in_service"].astype("Float64").where(ok),
            "act": cov["endpoints_with_active_schedule"].astype("Float64").where(ok),
        }
    )
    grouped = work.groupby("account_id", sort=True)
    acc = grouped.agg(
        snapshot_date=("snapshot_date", "max"),
        regions_ok=("ok", "sum"),
        regions_total=("ok", "size"),
        denied=("denied", "any"),
        error=("error", "any"),
    )
    sums = grouped[["ins", "act"]].sum(min_count=1)  # all regions unknown -> NULL, not 0
    acc["endpoints_in_service"] = sums["ins"]
    acc["endpoints_with_active_schedule"] = sums["act"]
    acc["endpoints_unmonitored"] = sums["ins"] - sums["act"]
    acc["coverage_pct"] = (100 * sums["act"] / sums["ins"]).where(sums["ins"] > 0)
    acc["collection_status"] = "ok"
    acc.loc[acc["error"], "collection_status"] = "error"
    acc.loc[acc["denied"], "collection_status"] = "access_denied"
    acc["_null"] = acc["coverage_pct"].isna()
    acc["_rank"] = acc["collection_status"].map({"access_denied": 0, "error": 1, "ok": 2})
    acc["_unmon"] = acc["endpoints_unmonitored"].fillna(0)
    acc = acc.reset_index().sort_values(
        ["_null", "coverage_pct", "_rank", "_unmon", "account_id"],
        ascending=[True, True, True, False, True],
        na_position="last",
    )
    return _conform(acc.head(n), WORST_ACCOUNTS_SCHEMA)


def summary_markdown(
    summary_row: Mapping[str, Any] | pd.Series,
    worst_df: pd.DataFrame,
    previous_row: Mapping[str, Any] | pd.Series | None,
) -> str:
    """Markdown: fleet summary, the worst accounts table, and the change since the previous date."""
    s = _row_dict(summary_row)
    total = _findings_total(s)
    lines = [
        f"## Model quality monitoring: {s['report_date']}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| accounts (ok / denied / error) | {s['accounts_total']} ({s['accounts_ok']} / "
        f"{s['accounts_denied']} / {s['accounts_error']}) |",
        f"| in-service endpoints (ok regions) | {s['endpoints_in_service']} |",
        f"| with an active ModelQuality schedule | {s['endpoints_with_active_schedule']} |",
        f"| fleet coverage | {_pct(s['fleet_coverage_pct'])} |",
        f"| findings (high / medium / low) | {total} ({s['findings_high']} / {s['findings_medium']} / "
        f"{s['findings_low']}) |",
        "",
        f"### {len(worst_df)} worst accounts",
        "",
        _markdown_table(worst_df) if len(worst_df) else "_No accounts._",
        "",
    ]
    if previous_row is not None:
        p = _row_dict(previous_row)
        prev_total = _findings_total(p)
        cov_change = (
            None
            if s["fleet_coverage_pct"] is None or p["fleet_coverage_pct"] is None
            else s["fleet_coverage_pct"] - p["fleet_coverage_pct"]
        )
        lines += [
            f"### Change since {p['report_date']}",
            "",
            f"- coverage: {_signed(cov_change, ' pts', 1)} ({_pct(p['fleet_coverage_pct'])} -> "
            f"{_pct(s['fleet_coverage_pct'])})",
            f"- findings: {_signed(total - prev_total)} ({prev_total} -> {total})",
        ]
    elif s.get("previous_report_date") is not None:
        lines += [
            f"### Change since {s['previous_report_date']}",
            "",
            f"- coverage: {_signed(s.get('coverage_change_pts'), ' pts', 1)}",
            f"- findings: {_signed(s.get('findings_change'))}",
        ]
    else:
        lines += ["### Change", "", "No previous report date."]
    return "\n".join(lines) + "\n"


def format_terminal_table(df: pd.DataFrame) -> str:
    """Plain aligned text table: numbers right-aligned, floats to 1 decimal, NULL as '-'."""
    headers = [str(c) for c in df.columns]
    cells = [[_cell(v) for v in row] for row in df.itertuples(index=False, name=None)]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    right = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells]
    return "\n".join(out)


def empty_frame(columns: Sequence[Column]) -> pd.DataFrame:
    """A zero-row DataFrame with the report dtypes."""
    return _conform(pd.DataFrame({c.name: [] for c in columns}), columns)


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    """Arrow schema of a report table (all fields nullable, like the lake's TableSpec schemas)."""
    return pa.schema([pa.field(c.name, c.arrow_type) for c in columns])


def empty_table(columns: Sequence[Column]) -> pa.Table:
    """A zero-row Arrow table with the report schema."""
    return arrow_schema(columns).empty_table()


def to_arrow(df: pd.DataFrame | pa.Table, columns: Sequence[Column]) -> pa.Table:
    """The table as Arrow with the exact report schema (column order, DATE, BIGINT); Arrow input is
    selected and cast without a copy through pandas."""
    names = [c.name for c in columns]
    if isinstance(df, pa.Table):
        return df.select(names).cast(arrow_schema(columns))
    return pa.Table.from_pandas(df[names], schema=arrow_schema(columns), preserve_index=False)


def findings_by_severity(findings: pa.Table | pd.DataFrame) -> dict[str, int]:
    """Number of findings per severity present, most frequent first (like ``value_counts``)."""
    if isinstance(findings, pd.DataFrame):
        return {str(k): int(v) for k, v in findings["severity"].value_counts().items()}
    counts = pc.value_counts(findings.column("severity")).to_pylist()  # order of first appearance
    ordered = sorted(counts, key=lambda c: -c["counts"])  # stable: ties keep that order
    return {c["values"]: int(c["counts"]) for c in ordered}


# --------------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------------


def _params(report_date: date, regions: list[str] | None, snapshot_from: date | None = None) -> dict[str, Any]:
    """Query parameters. ``snapshot_from``: the earliest snapshot the report uses (the oldest of the
    accounts' latest snapshots on or before the report date); resource scans read no older files."""
    return {
        "report_date": report_date,
        "regions": regions or [],
        "all_regions": regions is None,
        "resource_types": list(RESOURCE_TYPES),
        "snapshot_from": snapshot_from or date.min,
    }


class _Core:
    """A report date's status and per-resource flags, materialized once as temporary tables."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, params: dict[str, Any], tables: dict[str, str]) -> None:
        self.conn, self.params, self.tables = conn, params, tables

    def coverage(self) -> pd.DataFrame:
        return _fetch(self.conn, _coverage_sql(self.tables), self.params, COVERAGE_SCHEMA)

    def take_findings(self) -> pa.Table:
        """Every finding, in report order. The last use of this core: it drops each temporary table as
        soon as no remaining query reads it.

        One sorted query per severity (the first sort key) gives the same rows in the same order as one
        query, but each sort holds only its severity's rows; the severities reading the most tables run
        first so that those tables are freed while the findings accumulate."""
        reads = {
            level: {source for code, (source, _, _, _) in _FINDING_RULES.items() if FINDING_SEVERITY[code] == level}
            for level in SEVERITIES
        }
        order = sorted(SEVERITIES, key=lambda level: -len(reads[level]))
        parts: dict[str, pa.Table] = {}
        for i, level in enumerate(order):
            sql = _findings_sql(self.tables, [level])
            parts[level] = _fetch_arrow(self.conn, sql, self.params, FINDINGS_SCHEMA)
            later = set().union(*(reads[other] for other in order[i + 1 :]))
            for source in sorted(reads[level] - later):
                self.conn.execute(f"DROP TABLE IF EXISTS {self.tables[source]}")
        return pa.concat_tables([parts[level] for level in SEVERITIES])

    def severity_counts(self) -> dict[str, int]:
        out = dict.fromkeys(SEVERITIES, 0)
        for code, n in _rows(self.conn, _finding_counts_sql(self.tables), self.params):
            out[FINDING_SEVERITY[code]] += int(n)
        return out

    def snapshot_dates_used(self) -> dict[str, date]:
        # every account with a snapshot has a row per configured region (at least one region)
        sql = f"SELECT DISTINCT account_id, snapshot_date FROM {self.tables['region_status']} ORDER BY account_id"
        return dict(_rows(self.conn, sql, {}))


@contextmanager
def _materialized(conn: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> Iterator[_Core]:
    """Each history view is scanned (and its JSON parsed) once per report date, not once per query.

    Temporary tables are private to the connection (and allowed on a read-only one); they are dropped
    on the way out, error or not.
    """
    prefix = f"temp.main._sm_report_{uuid.uuid4().hex[:12]}_"
    tables: dict[str, str] = {}
    live: list[str] = []
    try:
        for cte, stands_for in _STAGES:
            name = prefix + cte
            sql = f"CREATE TEMP TABLE {name} AS " + _with([cte], tables) + f"SELECT * FROM {cte}"
            conn.execute(sql, _used_params(sql, params))
            live.append(name)
            tables.update(dict.fromkeys(stands_for, name))
            if cte == "region_status":
                ((snapshot_from,),) = _rows(conn, f"SELECT min(snapshot_date) FROM {name}", {})
                params = params | {"snapshot_from": snapshot_from or params["report_date"]}
            for old in [t for t in live if t not in tables.values()]:  # superseded by its flags table
                conn.execute(f"DROP TABLE {old}")
                live.remove(old)
        yield _Core(conn, params, tables)
    finally:
        for name in live:
            # never mask the error being raised; the tables die with the connection anyway
            with suppress(duckdb.Error):
                conn.execute(f"DROP TABLE IF EXISTS {name}")


def _used_params(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    # DuckDB rejects named parameters a statement does not use
    return {k: v for k, v in params.items() if f"${k}" in sql}


def _fleet_numbers(coverage: pd.DataFrame, severity_counts: Mapping[str, int] | None) -> dict[str, Any]:
    status = coverage["collection_status"]
    per_account = (
        pd.DataFrame(
            {
                "account_id": coverage["account_id"],
                "denied": status.eq("access_denied"),
                "error": status.eq("error"),
            }
        )
        .groupby("account_id")[["denied", "error"]]
        .any()
    )
    denied = per_account["denied"]
    error = per_account["error"] & ~denied
    ok = status.eq("ok")
    in_service = int(coverage.loc[ok, "endpoints_in_service"].sum())
    active = int(coverage.loc[ok, "endpoints_with_active_schedule"].sum())
    out: dict[str, Any] = {
        "accounts_total": len(per_account),
        "accounts_ok": int((~denied & ~error).sum()),
        "accounts_denied": int(denied.sum()),
        "accounts_error": int(error.sum()),
        "endpoints_in_service": in_service,
        "endpoints_with_active_schedule": active,
        "fleet_coverage_pct": 100.0 * active / in_service if in_service else None,
    }
    if severity_counts is not None:
        for level in SEVERITIES:
            out[f"findings_{level}"] = int(severity_counts.get(level, 0))
    return out


def _findings_total(row: Mapping[str, Any]) -> int:
    return sum(int(row[f"findings_{level}"]) for level in SEVERITIES)


def _fetch_arrow(
    conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], columns: Sequence[Column]
) -> pa.Table:
    relation = conn.sql(sql, params=_used_params(sql, params))
    # duckdb >= 1.4 / 2.x name; older releases only have .arrow()
    table = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
    return table.select([c.name for c in columns]).cast(arrow_schema(columns))


def _fetch(
    conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], columns: Sequence[Column]
) -> pd.DataFrame:
    return _arrow_to_pandas(_fetch_arrow(conn, sql, params, columns))


_GROUP_KEYS = ["report_date", "account_id", "region", "finding", "severity"]


def _finding_groups(findings: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Number of findings ``n`` per (report_date, account_id, region, finding, severity), NULL keys kept."""
    if isinstance(findings, pd.DataFrame):
        if findings.empty:
            return pd.DataFrame({**{k: pd.Series(dtype=object) for k in _GROUP_KEYS}, "n": pd.Series(dtype="int64")})
        return findings.groupby(_GROUP_KEYS, dropna=False, sort=False).size().rename("n").reset_index()
    grouped = findings.select(_GROUP_KEYS).group_by(_GROUP_KEYS).aggregate([([], "count_all")])
    return grouped.rename_columns([*_GROUP_KEYS, "n"]).to_pandas(date_as_object=True)


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return conn.execute(sql, _used_params(sql, params)).fetchall()


def _conform(df: pd.DataFrame, columns: Sequence[Column]) -> pd.DataFrame:
    """Exact column order and report dtypes, whatever dtypes pandas inferred on the way."""
    data = {}
    for c in columns:
        values = df[c.name] if c.name in df else pd.Series([None] * len(df), dtype=object)
        if c.duckdb_type == "DATE":
            values = values.map(lambda v: None if _isna(v) else _as_date(v)).astype(object)
        elif c.duckdb_type == "BIGINT":
            values = values.astype("Int64")
        elif c.duckdb_type == "DOUBLE":
            values = values.astype("Float64")
        else:
            values = values.astype(object).where(values.notna(), None)
        data[c.name] = pa.array(values, type=c.arrow_type, from_pandas=True)
    return _arrow_to_pandas(pa.table(data, schema=arrow_schema(columns)))


def _arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    mapper = {pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype()}
    return table.to_pandas(types_mapper=mapper.get, date_as_object=True)


def _key_series(df: pd.DataFrame) -> pd.Series:
    return df["report_date"].astype(str) + " " + df["account_id"].astype(str) + " " + df["region"].astype(str)


def _check_regions(regions: Sequence[str]) -> list[str]:
    if isinstance(regions, str):
        raise TypeError("regions must be a sequence of region names, not a single string")
    out = list(dict.fromkeys(regions))  # dedupe, keep order
    if not out:
        raise ValueError("at least one configured region is required")
    return out


def _as_date(value: Any) -> date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _isna(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _row_dict(row: Mapping[str, Any] | pd.Series) -> dict[str, Any]:
    items = row.items()
    return {k: (None if _isna(v) else v) for k, v in items}


def _pct(value: Any) -> str:
    return "n/a" if value is None or _isna(value) else f"{float(value):.1f}%"


def _signed(value: Any, unit: str = "", decimals: int = 0) -> str:
    if value is None or _isna(value):
        return "n/a"
    return f"{float(value):+.{decimals}f}{unit}"


def _fmt_num(value: Any) -> str:
    if _isna(value):
        return "NULL"
    return str(int(value)) if float(value).is_integer() else f"{float(value):.1f}"


def _cell(value: Any) -> str:
    if value is None or _isna(value):
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _markdown_table(df: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = [
        "| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |"
        for row in df.itertuples(index=False, name=None)
    ]
    return "\n".join([header, sep, *rows])

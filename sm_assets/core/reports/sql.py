"""The reports' SQL, as named CTE blocks over one day's tables.

The day's tables are temporary views named ``day_<table>`` (see `compute.day_views`): the organization as of
the report date, each account's latest snapshot. Parameters: $report_date DATE, $regions VARCHAR[],
$resource_types VARCHAR[], $stale_before DATE (snapshots older than this are stale). A report materializes
the region status and the per-resource flags once into temporary tables (`STAGES`), then reads coverage,
the endpoint monitor coverage and the findings from those. docs/reports.md states every rule in words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sm_assets.core import statuses
from sm_assets.core.duck import sql_list, sql_string
from sm_assets.core.reports.schemas import (
    CAPTURE_NEEDS,
    COVERAGE_COLUMNS,
    ENCRYPTION_CONTROLS,
    FINDING_SEVERITY,
    NETWORK_ISOLATION_CONTROLS,
    SERVING_STATUSES,
    SEVERITIES,
)
from sm_assets.core.specs import JOB_DEFINITION_SPECS, monitor_type_snake

COUNTED = sql_list(statuses.COUNTED)  # statuses whose resource counts are known


def _all_definitions() -> str:
    """Every job definition of the four types, with what the posture findings and the schedules read."""
    branches = []
    for monitor_type, spec in JOB_DEFINITION_SPECS.items():
        branches.append(f"""
    SELECT
        {sql_string(monitor_type)} AS monitor_type, d.account_id, d.region, d.job_definition_arn,
        d.job_definition_name,
        d.network_config IS NULL AS network_config_absent,
        coalesce(lower(d.network_config ->> '$.EnableNetworkIsolation') = 'true', false) AS network_isolated,
        coalesce(lower(d.network_config ->> '$.EnableInterContainerTrafficEncryption') = 'true', false)
            AS intercontainer_encrypted,
        coalesce(TRY_CAST(d.job_resources ->> '$.ClusterConfig.InstanceCount' AS BIGINT), 1) AS instance_count
    FROM day_{spec.table.name} d
    JOIN counted_regions o ON d.account_id = o.account_id AND d.region = o.region""")
    return "\n    UNION ALL".join(branches) + "\n"


def _monitor_types() -> str:
    rows = ", ".join(
        f"({sql_string(t)}, {str(needs_input).lower()}, {str(needs_output).lower()})"
        for t, (needs_input, needs_output) in CAPTURE_NEEDS.items()
    )
    return f"SELECT * FROM (VALUES {rows}) AS t(monitor_type, needs_input, needs_output)\n"


# How often a ScheduleExpression runs, in hours: cron(0 * ? * * *) hourly, cron(0 */N ? * * *) or the
# documented cron(0 H/N ? * * *) every N hours, anything else daily.
_INTERVAL_HOURS = r"""
        CASE WHEN regexp_full_match(expr, 'cron\(0 \* \? \* \* \*\)') THEN 1
             WHEN regexp_full_match(expr, 'cron\(0 (\*|\d{1,2})/\d{1,2} \? \* \* \*\)')
                  THEN greatest(1, CAST(regexp_extract(expr, '/(\d{1,2}) ', 1) AS INTEGER))
             ELSE 24 END"""

_CTES: dict[str, str] = {
    "snap": """
    -- the snapshot each account's tables come from, from collection status because an account with
    -- zero resources has no resource rows
    SELECT DISTINCT account_id, snapshot_date FROM day_collection_status
""",
    "snap_status": """
    SELECT * FROM day_collection_status
""",
    "account_regions": """
    SELECT s.account_id, s.snapshot_date, r.region
    FROM snap s CROSS JOIN (SELECT DISTINCT unnest($regions::VARCHAR[]) AS region) r
""",
    "status_cells": f"""
    -- every expected (account, region, resource_type); a missing status row means not collected
    SELECT
        ar.account_id, ar.snapshot_date, ar.region, t.resource_type,
        CASE WHEN list_contains({sql_list(statuses.STATUSES)}, h.status) THEN h.status ELSE 'error' END AS status,
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
        CASE WHEN snapshot_date < CAST($stale_before AS DATE) THEN 'stale'
             WHEN bool_or(status = 'access_denied') THEN 'access_denied'
             WHEN bool_or(status = 'error') THEN 'error'
             WHEN bool_or(status = 'region_disabled') THEN 'region_disabled'
             WHEN bool_or(status = 'tags_denied') THEN 'tags_denied'
             ELSE 'ok' END AS collection_status,
        string_agg(
            CASE WHEN status <> 'ok' OR error_code IS NOT NULL THEN
                resource_type || ': ' || status || coalesce(' [' || error_code || ']', '')
                || coalesce(' ' || message, '')
            END, '; ' ORDER BY resource_type) AS status_detail,
        -- resources a describe or ListTags refused (ValidationException): noted on an ok status row
        bool_or(status IN ('ok', 'tags_denied') AND error_code = 'ValidationException') AS resources_skipped
    FROM status_cells
    GROUP BY account_id, snapshot_date, region
""",
    "counted_regions": f"""
    SELECT account_id, snapshot_date, region, collection_status FROM region_status
    WHERE list_contains({COUNTED}, collection_status)
""",
    "ep": f"""
    SELECT
        e.account_id, e.region, e.endpoint_arn, e.endpoint_name, e.endpoint_status, o.snapshot_date,
        coalesce(e.endpoint_status = 'InService', false) AS in_service,
        coalesce(list_contains({sql_list(SERVING_STATUSES)}, e.endpoint_status), false) AS serving,
        -- capture works only when DescribeEndpoint reports it enabled, started and sampling
        NOT (e.data_capture_config IS NOT NULL
             AND coalesce(lower(e.data_capture_config ->> '$.EnableCapture') = 'true', false)
             AND coalesce(e.data_capture_config ->> '$.CaptureStatus' = 'Started', false)
             AND coalesce(TRY_CAST(e.data_capture_config ->> '$.CurrentSamplingPercentage' AS DOUBLE), 1) > 0)
            AS capture_disabled,
        -- what is captured is only in the endpoint config (CaptureOptions); no config read: nothing proven
        coalesce(list_has_any(c.modes, ['Input', 'InputAndOutput']), false) AS captures_input,
        coalesce(list_has_any(c.modes, ['Output', 'InputAndOutput']), false) AS captures_output
    FROM day_sagemaker_endpoint e
    JOIN counted_regions o ON e.account_id = o.account_id AND e.region = o.region
    LEFT JOIN (
        SELECT account_id, region, endpoint_config_name,
               json_extract_string(data_capture_config, '$.CaptureOptions[*].CaptureMode') AS modes
        FROM day_sagemaker_endpoint_config
    ) c ON c.account_id = e.account_id AND c.region = e.region AND c.endpoint_config_name = e.endpoint_config_name
""",
    "defs": """
    -- the ModelQuality definitions, with what the model quality coverage counts read
    SELECT
        d.account_id, d.region, d.job_definition_arn, d.job_definition_name,
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
        nullif(d.job_resources ->> '$.ClusterConfig.VolumeKmsKeyId', '') IS NOT NULL AS kms_volume
    FROM day_sagemaker_model_quality_job_definition d
    JOIN counted_regions o ON d.account_id = o.account_id AND d.region = o.region
""",
    "all_defs": _all_definitions(),
    "sched": """
    SELECT
        s.account_id, s.region, s.collected_at, s.monitoring_schedule_arn, s.monitoring_schedule_name,
        coalesce(nullif(s.endpoint_name, ''),
                 nullif(s.last_monitoring_execution_summary ->> '$.EndpointName', '')) AS endpoint_name,
        -- a schedule with an inline MonitoringJobDefinition (the oldest API form) is DataQuality
        coalesce(s.monitoring_type, s.monitoring_schedule_config ->> '$.MonitoringType', 'DataQuality')
            AS monitoring_type,
        nullif(s.monitoring_schedule_config ->> '$.MonitoringJobDefinitionName', '') AS job_definition_name,
        coalesce(json_type(s.monitoring_schedule_config, '$.MonitoringJobDefinition') = 'OBJECT', false)
            AS inline_definition,
        s.monitoring_schedule_status AS schedule_status,
        s.failure_reason,
        s.last_monitoring_execution_summary ->> '$.MonitoringExecutionStatus' AS last_execution_status,
        TRY_CAST(s.last_monitoring_execution_summary ->> '$.ScheduledTime' AS TIMESTAMPTZ)
            AS last_execution_scheduled_time,
        s.last_monitoring_execution_summary ->> '$.FailureReason' AS last_execution_failure_reason,
        regexp_replace(trim(coalesce(s.monitoring_schedule_config ->> '$.ScheduleConfig.ScheduleExpression', '')),
                       '\\s+', ' ', 'g') AS schedule_expression
    FROM day_sagemaker_monitoring_schedule s
    JOIN counted_regions o ON s.account_id = o.account_id AND s.region = o.region
""",
    "sched_flags": f"""
    SELECT
        s.*,
        {_INTERVAL_HOURS.replace("expr", "s.schedule_expression")} AS interval_hours,
        s.monitoring_type = 'ModelQuality' AS model_quality,
        coalesce(s.last_execution_status = 'Failed', false)
            OR coalesce(s.schedule_status = 'Failed', false) AS failing,
        coalesce(s.last_execution_status = 'CompletedWithViolations', false) AS violations,
        s.last_execution_status IS NULL AS never_ran,
        coalesce(s.last_execution_status IN ('Failed', 'Stopped'), false) AS last_failed,
        -- DuckDB reads interval_hours, defined above in this SELECT
        coalesce(s.last_execution_scheduled_time
                 < s.collected_at - to_hours(CAST(2 * interval_hours AS BIGINT)), false) AS stale,
        CASE WHEN s.job_definition_name IS NULL THEN NOT s.inline_definition
             ELSE NOT EXISTS (
                 SELECT 1 FROM all_defs d
                 WHERE d.account_id = s.account_id AND d.region = s.region
                     AND d.monitor_type = s.monitoring_type AND d.job_definition_name = s.job_definition_name)
        END AS definition_missing
    FROM sched s
""",
    "ep_active": """
    -- EXISTS: a semi-join probe per row, no DISTINCT set of names to build first
    SELECT
        ep.*,
        EXISTS (
            SELECT 1 FROM sched_flags s
            WHERE s.account_id = ep.account_id AND s.region = ep.region AND s.endpoint_name = ep.endpoint_name
                AND s.model_quality AND s.schedule_status = 'Scheduled'
        ) AS has_active_schedule,
        EXISTS (
            SELECT 1 FROM sched_flags s
            WHERE s.account_id = ep.account_id AND s.region = ep.region
                AND lower(s.endpoint_name) = lower(ep.endpoint_name)
        ) AS named_by_schedule
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
            SELECT 1 FROM sched_flags s
            WHERE s.account_id = d.account_id AND s.region = d.region AND s.model_quality
                AND s.job_definition_name = d.job_definition_name
        ) AS unscheduled
    FROM defs d
""",
    "monitor_types": _monitor_types(),
    "schedule_judgements": """
    -- every schedule of type T naming endpoint E (SageMaker endpoint names are case-insensitive), judged
    SELECT
        e.account_id, e.region, e.endpoint_arn, t.monitor_type, s.monitoring_schedule_name,
        s.last_execution_status, s.last_execution_scheduled_time,
        list_sort(list_filter([
            CASE WHEN s.schedule_status IS DISTINCT FROM 'Scheduled' THEN 'schedule_not_scheduled' END,
            CASE WHEN s.definition_missing THEN 'definition_missing' END,
            CASE WHEN e.capture_disabled THEN 'capture_disabled' END,
            CASE WHEN t.needs_output AND NOT e.captures_output THEN 'capture_missing_output' END,
            CASE WHEN t.needs_input AND NOT e.captures_input THEN 'capture_missing_input' END,
            CASE WHEN s.never_ran THEN 'never_ran' END,
            CASE WHEN s.last_failed THEN 'last_execution_failed' END,
            CASE WHEN s.stale THEN 'stale' END
        ], r -> r IS NOT NULL)) AS reasons
    FROM ep_flags e
    CROSS JOIN monitor_types t
    JOIN sched_flags s
        ON s.account_id = e.account_id AND s.region = e.region AND s.monitoring_type = t.monitor_type
        AND lower(s.endpoint_name) = lower(e.endpoint_name)
""",
    "endpoint_monitor": """
    -- one row per endpoint and monitoring type: the schedule with the fewest reasons decides (ties: the
    -- most recent last execution, then the name)
    SELECT
        CAST($report_date AS DATE) AS report_date, e.account_id, e.region, e.endpoint_name, t.monitor_type,
        e.endpoint_arn, e.snapshot_date, e.endpoint_status, e.serving,
        CASE WHEN j.monitoring_schedule_name IS NULL THEN 'missing'
             WHEN len(j.reasons) = 0 THEN 'effective'
             ELSE 'degraded' END AS state,
        coalesce(j.reasons, ['no_schedule']) AS reasons,
        j.monitoring_schedule_name AS schedule_name, j.last_execution_status, j.last_execution_scheduled_time
    FROM ep_flags e
    CROSS JOIN monitor_types t
    LEFT JOIN (
        SELECT * FROM schedule_judgements
        QUALIFY row_number() OVER (
            PARTITION BY account_id, region, endpoint_arn, monitor_type
            ORDER BY len(reasons), last_execution_scheduled_time DESC NULLS LAST, monitoring_schedule_name) = 1
    ) j ON j.account_id = e.account_id AND j.region = e.region AND j.endpoint_arn = e.endpoint_arn
        AND j.monitor_type = t.monitor_type
""",
}

# What each CTE reads (other CTEs only).
_CTE_DEPS: dict[str, tuple[str, ...]] = {
    "snap": (),
    "snap_status": ("snap",),
    "account_regions": ("snap", "snap_status"),
    "status_cells": ("account_regions", "snap_status"),
    "region_status": ("status_cells",),
    "counted_regions": ("region_status",),
    "ep": ("counted_regions",),
    "defs": ("counted_regions",),
    "all_defs": ("counted_regions",),
    "sched": ("counted_regions",),
    "sched_flags": ("sched", "all_defs"),
    "ep_active": ("ep", "sched_flags"),
    "ep_flags": ("ep_active", "defs"),
    "def_flags": ("defs", "ep", "sched_flags"),
    "monitor_types": (),
    "schedule_judgements": ("ep_flags", "monitor_types", "sched_flags"),
    "endpoint_monitor": ("ep_flags", "monitor_types", "schedule_judgements"),
}


def with_clause(targets: Sequence[str], tables: Mapping[str, str], extra: Sequence[str] = ()) -> str:
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


# Aggregates per counted account-region; the coverage query turns them into NULL when not counted.
EP_AGGS = {
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
    "schedules_last_failed": "count(*) FILTER (WHERE model_quality AND failing)",
    "schedules_last_with_violations": "count(*) FILTER (WHERE model_quality AND violations)",
}
_MONITOR_AGGS = {
    "endpoints_serving": "count(*) FILTER (WHERE serving AND monitor_type = 'ModelQuality')",
    "endpoints_effectively_watched": (
        "count(*) FILTER (WHERE serving AND monitor_type = 'ModelQuality' AND state = 'effective')"
    ),
}
_AGG_SOURCES = (
    ("ep_agg", "ep_flags", EP_AGGS),
    ("def_agg", "def_flags", _DEF_AGGS),
    ("sched_agg", "sched_flags", _SCHED_AGGS),
    ("monitor_agg", "endpoint_monitor", _MONITOR_AGGS),
)


def coverage_sql(tables: Mapping[str, str]) -> str:
    agg_ctes = []
    col_exprs: dict[str, str] = {}
    counted = f"list_contains({COUNTED}, rs.collection_status)"
    for alias, source, aggs in _AGG_SOURCES:
        select = ",\n        ".join(f"{expr} AS {name}" for name, expr in aggs.items())
        agg_ctes.append(
            f"{alias} AS (\n    SELECT account_id, region,\n        {select}\n"
            f"    FROM {source} GROUP BY account_id, region\n)"
        )
        for name in aggs:
            # counted with no resources -> 0; not counted -> NULL (unknown, never 0)
            col_exprs[name] = f"CASE WHEN {counted} THEN CAST(coalesce({alias}.{name}, 0) AS BIGINT) END"
    col_exprs["coverage_pct"] = (
        f"CASE WHEN {counted} AND coalesce(ep_agg.endpoints_in_service, 0) > 0 "
        "THEN 100.0 * ep_agg.endpoints_with_active_schedule / ep_agg.endpoints_in_service END"
    )
    col_exprs["effective_coverage_pct"] = (
        f"CASE WHEN {counted} AND coalesce(monitor_agg.endpoints_serving, 0) > 0 "
        "THEN 100.0 * monitor_agg.endpoints_effectively_watched / monitor_agg.endpoints_serving END"
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
        with_clause(["region_status", *(source for _, source, _ in _AGG_SOURCES)], tables, agg_ctes)
        + f"SELECT\n    {select}\nFROM region_status rs\n{joins}\nORDER BY rs.account_id, rs.region"
    )


def endpoint_monitor_sql(tables: Mapping[str, str]) -> str:
    return (
        with_clause(["endpoint_monitor"], tables)
        + "SELECT * FROM endpoint_monitor ORDER BY account_id, region, endpoint_name, monitor_type"
    )


@dataclass(frozen=True)
class FindingRule:
    """One source of findings: rows of ``source`` where ``condition`` holds (SQL over its columns)."""

    code: str
    source: str  # a CTE
    arn: str  # SQL: the offending resource's ARN (NULL for collection findings)
    condition: str
    detail: str  # SQL: the human-readable explanation
    monitor_type: str = "NULL"  # SQL: the monitoring type concerned
    config_rule: str | None = None
    control: str | None = None

    @property
    def severity(self) -> str:
        return FINDING_SEVERITY[self.code]


def _posture_rules() -> list[FindingRule]:
    """Network isolation and inter-container encryption of every job-definition type, each with the AWS
    Config rule and the Security Hub control that check the same."""
    out = []
    for monitor_type in JOB_DEFINITION_SPECS:
        label = monitor_type_snake(monitor_type).replace("_", " ")
        where = f"monitor_type = {sql_string(monitor_type)}"
        rule, control = NETWORK_ISOLATION_CONTROLS[monitor_type]
        out.append(
            FindingRule(
                "network_isolation_disabled",
                "all_defs",
                "job_definition_arn",
                f"{where} AND NOT network_isolated",
                f"""'{label} job definition ' || job_definition_name || ': '
        || CASE WHEN network_config_absent THEN 'NetworkConfig is absent'
                ELSE 'NetworkConfig.EnableNetworkIsolation is not true' END
        || ' (Security Hub {control})'""",
                sql_string(monitor_type),
                rule,
                control,
            )
        )
        rule, control = ENCRYPTION_CONTROLS[monitor_type]
        out.append(
            FindingRule(
                "intercontainer_encryption_disabled",
                "all_defs",
                "job_definition_arn",
                # the Config rule applies from two instances on: one instance has no traffic between containers
                f"{where} AND NOT intercontainer_encrypted AND instance_count >= 2",
                f"""'{label} job definition ' || job_definition_name || ' runs on ' || CAST(instance_count AS VARCHAR)
        || ' instances without EnableInterContainerTrafficEncryption (Security Hub {control})'""",
                sql_string(monitor_type),
                rule,
                control,
            )
        )
    return out


_MQ = "'ModelQuality'"

FINDING_RULES: tuple[FindingRule, ...] = (
    FindingRule(
        "endpoint_unmonitored",
        "ep_flags",
        "endpoint_arn",
        "in_service AND NOT has_active_schedule",
        """'endpoint ' || endpoint_name || ' is InService with no Scheduled ModelQuality monitoring schedule'
        || CASE WHEN has_definition THEN ' (a model quality job definition targets it)'
                ELSE ' (no model quality job definition targets it)' END""",
        _MQ,
    ),
    FindingRule(
        "capture_disabled",
        "ep_flags",
        "endpoint_arn",
        "serving AND named_by_schedule AND capture_disabled",
        """'endpoint ' || endpoint_name || ' is monitored but captures no traffic (DataCaptureConfig absent, '
        || 'not enabled, not Started or sampling 0%): its monitors have nothing to read'""",
    ),
    FindingRule(
        "definition_endpoint_missing",
        "def_flags",
        "job_definition_arn",
        "endpoint_missing",
        """'job definition ' || job_definition_name || ' targets endpoint ' || endpoint_name
        || ', which does not exist in this account and region'""",
        _MQ,
    ),
    FindingRule(
        "definition_unscheduled",
        "def_flags",
        "job_definition_arn",
        "unscheduled",
        "'no ModelQuality monitoring schedule uses job definition ' || job_definition_name",
        _MQ,
    ),
    FindingRule(
        "no_baseline",
        "def_flags",
        "job_definition_arn",
        "NOT has_baseline",
        "'job definition ' || job_definition_name || ' has no ModelQualityBaselineConfig.ConstraintsResource'",
        _MQ,
    ),
    *_posture_rules(),
    FindingRule(
        "schedule_definition_missing",
        "sched_flags",
        "monitoring_schedule_arn",
        "definition_missing",
        """'schedule ' || monitoring_schedule_name || ' runs ' || monitoring_type || ' job definition '
        || coalesce(job_definition_name, '(none named)') || ', which does not exist in this account and region'""",
        "monitoring_type",
    ),
    FindingRule(
        "monitor_failing",
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
        "monitoring_type",
    ),
    FindingRule(
        "monitor_stale",
        "sched_flags",
        "monitoring_schedule_arn",
        "schedule_status = 'Scheduled' AND stale",
        """'schedule ' || monitoring_schedule_name || ' last ran at ' || strftime(last_execution_scheduled_time,
        '%Y-%m-%dT%H:%MZ') || ', more than two intervals (' || CAST(interval_hours AS VARCHAR) || ' h) ago'""",
        "monitoring_type",
    ),
    FindingRule(
        "monitor_never_ran",
        "sched_flags",
        "monitoring_schedule_arn",
        "schedule_status = 'Scheduled' AND never_ran",
        "'schedule ' || monitoring_schedule_name || ' is Scheduled but has never run'",
        "monitoring_type",
    ),
    FindingRule(
        "monitor_violations",
        "sched_flags",
        "monitoring_schedule_arn",
        "violations",
        """'schedule ' || monitoring_schedule_name || ': last execution CompletedWithViolations'
        || coalesce(' (endpoint ' || endpoint_name || ')', '')""",
        "monitoring_type",
    ),
    FindingRule("collection_denied", "region_status", "NULL", "collection_status = 'access_denied'", "status_detail"),
    FindingRule("collection_error", "region_status", "NULL", "collection_status = 'error'", "status_detail"),
    FindingRule(
        "collection_stale",
        "region_status",
        "NULL",
        "collection_status = 'stale'",
        """'latest snapshot is from ' || CAST(snapshot_date AS VARCHAR) || ', older than the stale age: '
        || 'not counted (account closed, left the organization, or no longer collected?)'""",
    ),
    FindingRule(
        "collection_tags_denied", "region_status", "NULL", "collection_status = 'tags_denied'", "status_detail"
    ),
    FindingRule(
        "collection_skipped_resources",
        "region_status",
        "NULL",
        "resources_skipped AND list_contains(['ok', 'tags_denied'], collection_status)",
        "status_detail",
    ),
)


def findings_sql(tables: Mapping[str, str], severities: Sequence[str] = SEVERITIES) -> str:
    """Findings of the given severities, in report order. Severity and its rank are constants of each
    rule: no join, and the first sort key is an integer."""
    rules = [rule for rule in FINDING_RULES if rule.severity in severities]
    branches = "\n    UNION ALL\n".join(
        f"    SELECT {SEVERITIES.index(r.severity)} AS severity_rank, account_id, region,\n"
        f"        {r.arn} AS resource_arn, {sql_string(r.code)} AS finding, {sql_string(r.severity)} AS severity,\n"
        f"        {r.detail} AS detail, {r.monitor_type} AS monitor_type,\n"
        f"        {sql_string(r.config_rule) if r.config_rule else 'NULL'} AS config_rule,\n"
        f"        {sql_string(r.control) if r.control else 'NULL'} AS security_hub_control\n"
        f"    FROM {r.source} WHERE {r.condition}"
        for r in rules
    )
    sources = list(dict.fromkeys(r.source for r in rules))
    return (
        with_clause(sources, tables)
        + "SELECT CAST($report_date AS DATE) AS report_date, account_id, region, resource_arn, finding, severity, "
        + f"detail, monitor_type, config_rule, security_hub_control\nFROM (\n{branches}\n) AS f\n"
        + "ORDER BY severity_rank, account_id, region, finding, resource_arn NULLS FIRST"
    )


def finding_counts_sql(tables: Mapping[str, str]) -> str:
    """Number of findings per code, without building them (the previous report's summary)."""
    branches = "\nUNION ALL\n".join(
        f"SELECT {sql_string(r.code)} AS finding, count(*) AS n FROM {r.source} WHERE {r.condition}"
        for r in FINDING_RULES
    )
    sources = list(dict.fromkeys(r.source for r in FINDING_RULES))
    return with_clause(sources, tables) + branches


# Materialization stages of a full report: (CTE computed, CTE names it stands for afterwards).
# The flags tables hold every column of what they extend, so they stand for it too (and the raw table
# is dropped). The endpoint flags need the definitions and the definition flags need the endpoints:
# the endpoints, cheap to copy (no JSON), go first, raw; definitions are read once, into their flags.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("region_status", ("region_status",)),
    ("all_defs", ("all_defs",)),
    ("sched_flags", ("sched_flags", "sched")),
    ("ep", ("ep",)),
    ("def_flags", ("def_flags", "defs")),
    ("ep_flags", ("ep_flags", "ep_active", "ep")),
    ("endpoint_monitor", ("endpoint_monitor",)),
)

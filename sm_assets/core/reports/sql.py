"""The reports' SQL, as named CTE blocks over one day's tables.

The day's tables are temporary views named ``day_<table>`` (see `compute.day_views`): the organization as of
the report date, each account's latest snapshot. Parameters: $report_date DATE, $regions VARCHAR[],
$resource_types VARCHAR[]. A report materializes the region status and the per-resource flags once into
temporary tables (`STAGES`), then reads coverage and findings from those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sm_assets.core.reports.schemas import COVERAGE_COLUMNS, FINDING_SEVERITY, SEVERITIES

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
    FROM day_sagemaker_endpoint e
    JOIN ok_regions o ON e.account_id = o.account_id AND e.region = o.region
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
    FROM day_sagemaker_model_quality_job_definition d
    JOIN ok_regions o ON d.account_id = o.account_id AND d.region = o.region
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
    FROM day_sagemaker_monitoring_schedule s
    JOIN ok_regions o ON s.account_id = o.account_id AND s.region = o.region
    WHERE coalesce(s.monitoring_type, s.monitoring_schedule_config ->> '$.MonitoringType') = 'ModelQuality'
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


# Aggregates per ok account-region; the coverage query turns them into NULL when not ok.
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
    "schedules_last_failed": "count(*) FILTER (WHERE failing)",
    "schedules_last_with_violations": "count(*) FILTER (WHERE violations)",
}
_AGG_SOURCES = (
    ("ep_agg", "ep_flags", EP_AGGS),
    ("def_agg", "def_flags", _DEF_AGGS),
    ("sched_agg", "sched_flags", _SCHED_AGGS),
)


def coverage_sql(tables: Mapping[str, str]) -> str:
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
        with_clause(["region_status", *(source for _, source, _ in _AGG_SOURCES)], tables, agg_ctes)
        + f"SELECT\n    {select}\nFROM region_status rs\n{joins}\nORDER BY rs.account_id, rs.region"
    )


# One rule per finding code: (source CTE, resource_arn, condition, detail). Collection findings have a
# NULL resource_arn: the collector's role ARN is not part of the status contract.
FINDING_RULES: dict[str, tuple[str, str, str, str]] = {
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


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def findings_sql(tables: Mapping[str, str], severities: Sequence[str] = SEVERITIES) -> str:
    """Findings of the given severities, in report order. Severity and its rank are constants of each
    rule: no join, and the first sort key is an integer."""
    rules = {code: rule for code, rule in FINDING_RULES.items() if FINDING_SEVERITY[code] in severities}
    branches = "\n    UNION ALL\n".join(
        f"    SELECT {SEVERITIES.index(FINDING_SEVERITY[code])} AS severity_rank, account_id, region,\n"
        f"        {arn} AS resource_arn, {sql_str(code)} AS finding, {sql_str(FINDING_SEVERITY[code])} AS severity,\n"
        f"        {detail} AS detail\n"
        f"    FROM {source} WHERE {condition}"
        for code, (source, arn, condition, detail) in rules.items()
    )
    sources = list(dict.fromkeys(source for source, _, _, _ in rules.values()))
    return (
        with_clause(sources, tables)
        + "SELECT CAST($report_date AS DATE) AS report_date, account_id, region, resource_arn, finding, severity, "
        + f"detail\nFROM (\n{branches}\n) AS f\n"
        + "ORDER BY severity_rank, account_id, region, finding, resource_arn NULLS FIRST"
    )


def finding_counts_sql(tables: Mapping[str, str]) -> str:
    """Number of findings per code, without building them (the previous report's summary)."""
    branches = "\nUNION ALL\n".join(
        f"SELECT {sql_str(code)} AS finding, count(*) AS n FROM {source} WHERE {condition}"
        for code, (source, _, condition, _) in FINDING_RULES.items()
    )
    sources = list(dict.fromkeys(source for source, _, _, _ in FINDING_RULES.values()))
    return with_clause(sources, tables) + branches


# Materialization stages of a full report: (CTE computed, CTE names it stands for afterwards).
# The flags tables hold every column of what they extend, so they stand for it too (and the raw table
# is dropped). The endpoint flags need the definitions and the definition flags need the endpoints:
# the endpoints, cheap to copy (no JSON), go first, raw; definitions are read once, into their flags.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("region_status", ("region_status",)),
    ("sched_flags", ("sched_flags", "sched")),
    ("ep", ("ep",)),
    ("def_flags", ("def_flags", "defs")),
    ("ep_flags", ("ep_flags", "ep")),
)

"""Reporting core: hand-built snapshots with known answers for every coverage column and finding.

History (regions us-east-1, eu-west-1):

* account A (111111111111) on day 1: us-east-1 one covered endpoint + a definition without baseline;
  eu-west-1 ok with only a Creating endpoint (coverage NULL, counts 0).
* account B (222222222222) on day 2: us-east-1 ok, 2 in-service endpoints, 1 covered;
  eu-west-1 has no status rows at all (error, "not collected").
* account A on day 3: the rich us-east-1 scenario below; eu-west-1 endpoint collection errored
  (its definitions were collected but must be ignored).
* account C (333333333333) on day 3: AssumeRole denied, access_denied for every region and type.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from sm_assets.core import lake, layout, reports
from sm_assets.core.schemas import COLLECTION_STATUS_SCHEMA
from sm_assets.core.specs import (
    ENDPOINT_CONFIG_SPEC,
    ENDPOINT_SPEC,
    MODEL_QUALITY_JOB_DEFINITION_SPEC,
    MONITORING_SCHEDULE_SPEC,
    RESOURCE_SPECS,
)

ENDPOINT = ENDPOINT_SPEC.table
MODEL_QUALITY_JOB_DEFINITION = MODEL_QUALITY_JOB_DEFINITION_SPEC.table
MONITORING_SCHEDULE = MONITORING_SCHEDULE_SPEC.table

REGIONS = ["us-east-1", "eu-west-1"]
US, EU = REGIONS
A, B, C = "111111111111", "222222222222", "333333333333"
DAY0 = date(2024, 4, 30)
DAY1, DAY2, DAY3, DAY4 = (date(2024, 5, d) for d in (1, 2, 3, 4))
TYPES = tuple(spec.resource_type for spec in RESOURCE_SPECS)

# --------------------------------------------------------------------------------------------------
# Fixture builders
# --------------------------------------------------------------------------------------------------


def _write_day(lake_dir: Path, day: date, history: dict[str, list[dict[str, Any]]]) -> None:
    """The daily tables of `day` as the daily asset builds them: each account's latest snapshot on or
    before `day` (computed here in plain Python), one file per table."""
    status = history["collection_status"]
    latest: dict[str, date] = {}
    for row in status:
        if row["snapshot_date"] <= day:
            latest[row["account_id"]] = max(row["snapshot_date"], latest.get(row["account_id"], row["snapshot_date"]))
    schemas = {"collection_status": COLLECTION_STATUS_SCHEMA} | {
        spec.table.name: spec.table.arrow_schema() for spec in RESOURCE_SPECS
    }
    for table, schema in schemas.items():
        rows = [
            {k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()}
            for row in history.get(table, [])
            if latest.get(row["account_id"]) == row["snapshot_date"]
        ]
        lake.write_atomic(pa.Table.from_pylist(rows, schema=schema), layout.daily_file(lake_dir, table, day))


def _ts(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 6, 0, tzinfo=UTC)


def _status(
    day: date,
    account: str,
    region: str,
    status: str = "ok",
    types: tuple[str, ...] = TYPES,
    error_code: str | None = None,
    message: str | None = None,
) -> list[dict[str, Any]]:
    return [
        {
            "snapshot_date": day,
            "collected_at": _ts(day),
            "account_id": account,
            "region": region,
            "resource_type": t,
            "status": status,
            "error_code": error_code,
            "message": message,
            "item_count": 0,
            "api_calls": 1,
        }
        for t in types
    ]


def _arn(account: str, region: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name}"


def _endpoint(day: date, account: str, region: str, name: str, status: str = "InService") -> dict[str, Any]:
    arn = _arn(account, region, "endpoint", name)
    return {
        "snapshot_date": day,
        "collected_at": _ts(day),
        "region": region,
        "_key": arn,
        "account_id": account,
        "endpoint_arn": arn,
        "endpoint_config_name": f"{name}-config",
        "endpoint_name": name,
        "endpoint_status": status,
        # capture working: the model quality fixture is about schedules and definitions
        "data_capture_config": {
            "EnableCapture": True,
            "CaptureStatus": "Started",
            "CurrentSamplingPercentage": 100,
            "DestinationS3Uri": "s3://capture/",
        },
    }


def _endpoint_config(endpoint: dict[str, Any]) -> dict[str, Any]:
    """The config of a fixture endpoint: captures Input and Output."""
    name = endpoint["endpoint_config_name"]
    arn = _arn(endpoint["account_id"], endpoint["region"], "endpoint-config", name)
    return {
        **{k: endpoint[k] for k in ("snapshot_date", "collected_at", "region", "account_id")},
        "_key": arn,
        "endpoint_config_arn": arn,
        "endpoint_config_name": name,
        "data_capture_config": {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": "s3://capture/",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
    }


def _definition(
    day: date,
    account: str,
    region: str,
    name: str,
    *,
    endpoint: str | None = None,
    batch: bool = False,
    baseline: bool | dict[str, Any] = True,
    network: dict[str, Any] | None = None,
    instances: int = 1,
    kms_output: bool = False,
    kms_volume: bool = False,
) -> dict[str, Any]:
    arn = _arn(account, region, "model-quality-job-definition", name)
    job_input: dict[str, Any] = (
        {"BatchTransformInput": {"DataCapturedDestinationS3Uri": "s3://capture/", "LocalPath": "/in"}}
        if batch
        else {"EndpointInput": {"EndpointName": endpoint, "LocalPath": "/in"}}
    )
    job_input["GroundTruthS3Input"] = {"S3Uri": "s3://truth/"}
    if baseline is True:
        baseline_cfg: dict[str, Any] | None = {
            "BaseliningJobName": f"{name}-baseline",
            "ConstraintsResource": {"S3Uri": f"s3://baselines/{name}/constraints.json"},
        }
    else:
        baseline_cfg = baseline or None
    cluster: dict[str, Any] = {
        "InstanceCount": instances,
        "InstanceType": "ml.m5.large",
        "VolumeSizeInGB": 20,
    }
    if kms_volume:
        cluster["VolumeKmsKeyId"] = "arn:aws:kms:us-east-1:111111111111:key/vol"
    output: dict[str, Any] = {"MonitoringOutputs": [{"S3Output": {"S3Uri": "s3://out/", "LocalPath": "/o"}}]}
    if kms_output:
        output["KmsKeyId"] = "arn:aws:kms:us-east-1:111111111111:key/out"
    return {
        "snapshot_date": day,
        "collected_at": _ts(day),
        "region": region,
        "_key": arn,
        "account_id": account,
        "creation_time": _ts(day),
        "job_definition_arn": arn,
        "job_definition_name": name,
        "job_resources": {"ClusterConfig": cluster},
        "model_quality_app_specification": {"ImageUri": "img", "ProblemType": "BinaryClassification"},
        "model_quality_baseline_config": baseline_cfg,
        "model_quality_job_input": job_input,
        "model_quality_job_output_config": output,
        "network_config": network,
        "role_arn": f"arn:aws:iam::{account}:role/monitor",
    }


def _schedule(
    day: date,
    account: str,
    region: str,
    name: str,
    *,
    endpoint: str | None,
    definition: str,
    status: str = "Scheduled",
    last: str | None = "Completed",
    summary_endpoint: str | None = None,
    monitoring_type: str | None = "ModelQuality",
    failure_reason: str | None = None,
) -> dict[str, Any]:
    arn = _arn(account, region, "monitoring-schedule", name)
    summary = None
    if last is not None:
        summary = {
            "MonitoringScheduleName": name,
            "MonitoringExecutionStatus": last,
            "ScheduledTime": f"{day.isoformat()}T05:00:00Z",  # an hour before the collection: not stale
        }
        if summary_endpoint:
            summary["EndpointName"] = summary_endpoint
        if last == "Failed":
            summary["FailureReason"] = "ground truth missing"
    return {
        "snapshot_date": day,
        "collected_at": _ts(day),
        "region": region,
        "_key": arn,
        "account_id": account,
        "endpoint_name": endpoint,
        "failure_reason": failure_reason,
        "last_monitoring_execution_summary": summary,
        "monitoring_schedule_arn": arn,
        "monitoring_schedule_config": {
            "MonitoringJobDefinitionName": definition,
            "MonitoringType": monitoring_type or "ModelQuality",
            "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
        },
        "monitoring_schedule_name": name,
        "monitoring_schedule_status": status,
        "monitoring_type": monitoring_type,
    }


ISOLATED_ENCRYPTED_VPC = {
    "EnableInterContainerTrafficEncryption": True,
    "EnableNetworkIsolation": True,
    "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]},
}


def _history() -> dict[str, list[dict[str, Any]]]:
    status: list[dict[str, Any]] = []
    endpoints: list[dict[str, Any]] = []
    definitions: list[dict[str, Any]] = []
    schedules: list[dict[str, Any]] = []

    # A @ day 1: us-east-1 fully covered but its definition has no baseline; eu-west-1 nothing in service.
    status += _status(DAY1, A, US) + _status(DAY1, A, EU)
    endpoints += [_endpoint(DAY1, A, US, "ep-a1"), _endpoint(DAY1, A, EU, "ep-a-eu", "Creating")]
    definitions += [
        _definition(DAY1, A, US, "def-a1", endpoint="ep-a1", baseline=False, network=ISOLATED_ENCRYPTED_VPC)
    ]
    schedules += [_schedule(DAY1, A, US, "sch-a1", endpoint="ep-a1", definition="def-a1")]

    # B @ day 2: us-east-1 half covered; eu-west-1 has no status rows (not collected -> error).
    status += _status(DAY2, B, US)
    endpoints += [_endpoint(DAY2, B, US, "ep-b1"), _endpoint(DAY2, B, US, "ep-b2")]
    definitions += [_definition(DAY2, B, US, "def-b1", endpoint="ep-b1", network=ISOLATED_ENCRYPTED_VPC)]
    schedules += [_schedule(DAY2, B, US, "sch-b1", endpoint="ep-b1", definition="def-b1")]

    # A @ day 3, us-east-1: the rich scenario.
    status += _status(DAY3, A, US)
    endpoints += [
        _endpoint(DAY3, A, US, "ep-mon"),  # covered by sch-mon
        _endpoint(DAY3, A, US, "ep-stopped"),  # only a Stopped schedule: unmonitored
        _endpoint(DAY3, A, US, "ep-dq"),  # only a DataQuality schedule: unmonitored, no definition
        _endpoint(DAY3, A, US, "ep-creating", "Creating"),  # not in service: never counted as such
        _endpoint(DAY3, A, US, "ep-failing"),  # covered via the summary's EndpointName fallback
    ]
    definitions += [
        _definition(
            DAY3,
            A,
            US,
            "def-mon",
            endpoint="ep-mon",
            network=ISOLATED_ENCRYPTED_VPC,
            instances=2,
            kms_output=True,
            kms_volume=True,
        ),
        # absent NetworkConfig: neither isolated nor encrypted; 2 instances -> intercontainer finding
        _definition(DAY3, A, US, "def-stopped", endpoint="ep-stopped", baseline=False, network=None, instances=2),
        _definition(
            DAY3,
            A,
            US,
            "def-creating",
            endpoint="ep-creating",
            network={"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": False},
            kms_output=True,
        ),
        # isolation off; 1 instance -> no intercontainer finding
        _definition(
            DAY3,
            A,
            US,
            "def-failing",
            endpoint="ep-failing",
            network={"EnableNetworkIsolation": False, "EnableInterContainerTrafficEncryption": False},
        ),
        _definition(
            DAY3,
            A,
            US,
            "def-ghost",
            endpoint="ep-ghost",
            network={"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True},
            kms_volume=True,
        ),
        # batch transform: not endpoint-missing; unscheduled; 3 instances without encryption
        _definition(
            DAY3,
            A,
            US,
            "def-batch",
            batch=True,
            instances=3,
            kms_output=True,
            network={
                "EnableNetworkIsolation": True,
                "EnableInterContainerTrafficEncryption": False,
                "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1", "subnet-2"]},
            },
        ),
        # baseline block without ConstraintsResource; only a DataQuality schedule names it
        _definition(
            DAY3,
            A,
            US,
            "def-orphan",
            endpoint="ep-creating",
            baseline={"BaseliningJobName": "bl-orphan"},
            network={
                "EnableNetworkIsolation": True,
                "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": []},
            },
        ),
    ]
    schedules += [
        _schedule(DAY3, A, US, "sch-mon", endpoint="ep-mon", definition="def-mon", last="CompletedWithViolations"),
        _schedule(
            DAY3,
            A,
            US,
            "sch-stopped",
            endpoint="ep-stopped",
            definition="def-stopped",
            status="Stopped",
            last="CompletedWithViolations",
        ),
        # monitoring_type column NULL: falls back to MonitoringScheduleConfig.MonitoringType
        _schedule(
            DAY3,
            A,
            US,
            "sch-creating",
            endpoint="ep-creating",
            definition="def-creating",
            monitoring_type=None,
        ),
        _schedule(
            DAY3,
            A,
            US,
            "sch-failing",
            endpoint=None,
            summary_endpoint="ep-failing",
            definition="def-failing",
            last="Failed",
        ),
        _schedule(
            DAY3,
            A,
            US,
            "sch-broken",
            endpoint="ep-ghost",
            definition="def-ghost",
            status="Failed",
            last=None,
            failure_reason="role cannot be assumed",
        ),
        # DataQuality: ignored for coverage, scheduling and failing
        _schedule(
            DAY3,
            A,
            US,
            "sch-dq",
            endpoint="ep-dq",
            definition="def-orphan",
            monitoring_type="DataQuality",
            last="Failed",
        ),
    ]

    # A @ day 3, eu-west-1: endpoint collection throttled; the collected definition must be ignored.
    status += _status(DAY3, A, EU, types=tuple(t for t in TYPES if t != "endpoint"))
    status += _status(
        DAY3, A, EU, "error", types=("endpoint",), error_code="ThrottlingException", message="Rate exceeded"
    )
    definitions += [_definition(DAY3, A, EU, "def-eu", endpoint="nowhere", baseline=False, instances=4)]

    # C @ day 3: AssumeRole denied everywhere.
    for region in REGIONS:
        status += _status(
            DAY3,
            C,
            region,
            "access_denied",
            error_code="AccessDenied",
            message="not authorized to perform sts:AssumeRole",
        )

    return {
        "collection_status": status,
        ENDPOINT.name: endpoints,
        MODEL_QUALITY_JOB_DEFINITION.name: definitions,
        MONITORING_SCHEDULE.name: schedules,
        ENDPOINT_CONFIG_SPEC.table.name: [_endpoint_config(e) for e in endpoints],
    }


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Daily tables for days 1 to 4 (day 4: nothing new collected, the org as of day 3), no stored reports."""
    root = tmp_path_factory.mktemp("reports") / "lake"
    history = _history()
    for day in (DAY1, DAY2, DAY3, DAY4):
        _write_day(root, day, history)
    return root


@pytest.fixture(scope="module")
def conn() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:")


@pytest.fixture(scope="module")
def day3(conn: duckdb.DuckDBPyConnection, lake_dir: Path) -> reports.ReportResult:
    return reports.compute_reports(conn, lake_dir, DAY3, REGIONS)


@pytest.fixture(scope="module")
def day2(conn: duckdb.DuckDBPyConnection, lake_dir: Path) -> reports.ReportResult:
    return reports.compute_reports(conn, lake_dir, DAY2, REGIONS)


def _row(df: pd.DataFrame, account: str, region: str) -> dict[str, Any]:
    rows = df[(df["account_id"] == account) & (df["region"] == region)]
    assert len(rows) == 1
    return {k: (None if pd.isna(v) else v) for k, v in rows.iloc[0].items()}


def _finding_arns(findings: pd.DataFrame, account: str, region: str, finding: str) -> list[str | None]:
    rows = findings[
        (findings["account_id"] == account) & (findings["region"] == region) & (findings["finding"] == finding)
    ]
    return sorted(rows["resource_arn"].tolist(), key=str)


def _us(kind: str, name: str) -> str:
    return _arn(A, US, kind, name)


COUNT_COLUMNS = [
    c
    for c in reports.COVERAGE_COLUMNS
    if c not in ("report_date", "account_id", "region", "snapshot_date", "collection_status")
]

# --------------------------------------------------------------------------------------------------
# Coverage
# --------------------------------------------------------------------------------------------------


def test_coverage_rich_account_region_every_column(day3: reports.ReportResult) -> None:
    assert _row(day3.coverage, A, US) == {
        "report_date": DAY3,
        "account_id": A,
        "region": US,
        "snapshot_date": DAY3,
        "collection_status": "ok",
        "endpoints_total": 5,  # includes the Creating endpoint
        "endpoints_in_service": 4,  # ep-mon, ep-stopped, ep-dq, ep-failing
        "endpoints_with_definition": 3,  # ep-mon, ep-stopped, ep-failing (ep-creating not in service)
        "endpoints_with_active_schedule": 2,  # ep-mon, ep-failing (Stopped and DataQuality don't count)
        "coverage_pct": 50.0,
        "definitions_total": 7,
        "definitions_with_baseline": 5,  # not def-stopped (NULL block), def-orphan (no ConstraintsResource)
        "definitions_network_isolated": 5,  # not def-stopped (absent NetworkConfig), def-failing
        "definitions_intercontainer_encrypted": 2,  # def-mon, def-ghost
        "definitions_in_vpc": 2,  # def-mon, def-batch (def-orphan has an empty subnet list)
        "definitions_kms_output": 3,  # def-mon, def-creating, def-batch
        "definitions_kms_volume": 2,  # def-mon, def-ghost
        "definitions_batch_transform": 1,  # def-batch
        "definitions_endpoint_missing": 1,  # def-ghost only (batch is not endpoint-missing)
        "definitions_unscheduled": 2,  # def-batch, def-orphan (its DataQuality schedule is ignored)
        "schedules_last_failed": 2,  # sch-failing (last execution), sch-broken (status); not sch-dq
        "schedules_last_with_violations": 2,  # sch-mon, sch-stopped
        "endpoints_serving": 4,  # the in-service ones
        "endpoints_effectively_watched": 1,  # ep-mon; sch-failing's last run failed, sch-stopped is Stopped
        "effective_coverage_pct": 25.0,
    }


def test_coverage_zero_in_service_is_null_coverage_with_zero_counts(day2: reports.ReportResult) -> None:
    row = _row(day2.coverage, A, EU)
    assert row["collection_status"] == "ok"
    assert row["snapshot_date"] == DAY1
    assert row["endpoints_total"] == 1
    assert row["coverage_pct"] is None and row["effective_coverage_pct"] is None
    pct = ("endpoints_total", "coverage_pct", "effective_coverage_pct")
    assert {c: row[c] for c in COUNT_COLUMNS if c not in pct} == {c: 0 for c in COUNT_COLUMNS if c not in pct}


@pytest.mark.parametrize(
    ("account", "region", "status"),
    [(A, EU, "error"), (B, EU, "error"), (C, US, "access_denied"), (C, EU, "access_denied")],
)
def test_coverage_not_ok_is_all_null(day3: reports.ReportResult, account: str, region: str, status: str) -> None:
    row = _row(day3.coverage, account, region)
    assert row["collection_status"] == status
    # unknown, never 0 or 100
    assert {c: row[c] for c in COUNT_COLUMNS} == dict.fromkeys(COUNT_COLUMNS)


def test_coverage_rows_and_dtypes(day3: reports.ReportResult) -> None:
    cov = day3.coverage
    assert list(cov.columns) == list(reports.COVERAGE_COLUMNS)
    assert list(zip(cov["account_id"], cov["region"], cov["collection_status"], strict=True)) == [
        (A, EU, "error"),
        (A, US, "ok"),
        (B, EU, "error"),
        (B, US, "ok"),
        (C, EU, "access_denied"),
        (C, US, "access_denied"),
    ]
    assert str(cov["endpoints_total"].dtype) == "Int64"
    assert str(cov["coverage_pct"].dtype) == "Float64"
    assert _row(cov, B, US)["coverage_pct"] == 50.0
    table = reports.to_arrow(cov, reports.COVERAGE_SCHEMA)
    assert str(table.schema.field("report_date").type) == "date32[day]"
    assert str(table.schema.field("endpoints_total").type) == "int64"
    assert table.column("endpoints_total").null_count == 4


# --------------------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------------------


def test_findings_rich_account_region(day3: reports.ReportResult) -> None:
    f = day3.findings.to_pandas()
    assert _finding_arns(f, A, US, "endpoint_unmonitored") == [
        _us("endpoint", "ep-dq"),
        _us("endpoint", "ep-stopped"),
    ]
    assert _finding_arns(f, A, US, "definition_endpoint_missing") == [_us("model-quality-job-definition", "def-ghost")]
    assert _finding_arns(f, A, US, "definition_unscheduled") == [
        _us("model-quality-job-definition", "def-batch"),
        _us("model-quality-job-definition", "def-orphan"),
    ]
    assert _finding_arns(f, A, US, "no_baseline") == [
        _us("model-quality-job-definition", "def-orphan"),
        _us("model-quality-job-definition", "def-stopped"),
    ]
    assert _finding_arns(f, A, US, "network_isolation_disabled") == [
        _us("model-quality-job-definition", "def-failing"),
        _us("model-quality-job-definition", "def-stopped"),
    ]
    # def-failing and def-creating run 1 instance unencrypted: exempt; def-mon is encrypted
    assert _finding_arns(f, A, US, "intercontainer_encryption_disabled") == [
        _us("model-quality-job-definition", "def-batch"),
        _us("model-quality-job-definition", "def-stopped"),
    ]
    # every monitoring type fails the same way: sch-dq (DataQuality) too
    assert _finding_arns(f, A, US, "monitor_failing") == [
        _us("monitoring-schedule", "sch-broken"),
        _us("monitoring-schedule", "sch-dq"),
        _us("monitoring-schedule", "sch-failing"),
    ]
    # sch-dq runs def-orphan as a DataQuality definition: def-orphan is a model quality one
    assert _finding_arns(f, A, US, "schedule_definition_missing") == [_us("monitoring-schedule", "sch-dq")]
    for code in ("capture_disabled", "monitor_stale", "monitor_never_ran"):
        assert _finding_arns(f, A, US, code) == [], code
    assert _finding_arns(f, A, US, "monitor_violations") == [
        _us("monitoring-schedule", "sch-mon"),
        _us("monitoring-schedule", "sch-stopped"),
    ]
    rich = f[(f["account_id"] == A) & (f["region"] == US)]
    assert len(rich) == 17
    assert rich["severity"].value_counts().to_dict() == {"medium": 10, "low": 5, "high": 2}


def test_findings_details(day3: reports.ReportResult) -> None:
    f = day3.findings.to_pandas().set_index("resource_arn")
    detail = f["detail"]
    assert detail[_us("endpoint", "ep-dq")] == (
        "endpoint ep-dq is InService with no Scheduled ModelQuality monitoring schedule "
        "(no model quality job definition targets it)"
    )
    net = f[f["finding"] == "network_isolation_disabled"]["detail"]
    assert net[_us("model-quality-job-definition", "def-stopped")] == (
        "model quality job definition def-stopped: NetworkConfig is absent (Security Hub SageMaker.25)"
    )
    ic = f[f["finding"] == "intercontainer_encryption_disabled"]["detail"]
    assert ic[_us("model-quality-job-definition", "def-batch")] == (
        "model quality job definition def-batch runs on 3 instances without EnableInterContainerTrafficEncryption "
        "(Security Hub SageMaker.13)"
    )
    failing = f[f["finding"] == "monitor_failing"]["detail"]
    assert failing[_us("monitoring-schedule", "sch-broken")] == (
        "schedule sch-broken: schedule status Failed (role cannot be assumed)"
    )
    assert failing[_us("monitoring-schedule", "sch-failing")] == (
        "schedule sch-failing: last execution Failed (ground truth missing)"
    )


def test_findings_collection_rows(day3: reports.ReportResult) -> None:
    f = day3.findings.to_pandas()
    coll = f[f["finding"].str.startswith("collection_")].sort_values(["account_id", "region"])
    assert list(zip(coll["account_id"], coll["region"], coll["finding"], coll["severity"], strict=True)) == [
        (A, EU, "collection_error", "low"),
        (B, EU, "collection_error", "low"),
        (C, EU, "collection_denied", "medium"),
        (C, US, "collection_denied", "medium"),
    ]
    assert coll["resource_arn"].isna().all()
    details = dict(zip(zip(coll["account_id"], coll["region"], strict=True), coll["detail"], strict=True))
    assert details[(A, EU)] == "endpoint: error [ThrottlingException] Rate exceeded"
    assert details[(B, EU)] == "; ".join(
        f"{t}: error not collected: no collection status row in snapshot 2024-05-02" for t in sorted(TYPES)
    )
    assert "; endpoint: access_denied [AccessDenied] not authorized" in details[(C, US)]
    # nothing else from non-ok regions (def-eu would otherwise raise three findings)
    not_ok = f[f["region"].eq(EU) | f["account_id"].eq(C)]
    assert len(not_ok) == 4


def test_findings_total_order_and_columns(day3: reports.ReportResult) -> None:
    assert day3.findings.schema == reports.arrow_schema(reports.FINDINGS_SCHEMA)
    f = day3.findings.to_pandas()
    assert list(f.columns) == list(reports.FINDINGS_COLUMNS)
    assert (f["report_date"] == DAY3).all()
    # 17 (A us) + 1 (A eu error) + 2 (B: unmonitored ep-b2, eu error) + 2 (C denied)
    assert len(f) == 22
    ranks = f["severity"].map({"high": 0, "medium": 1, "low": 2}).tolist()
    assert ranks == sorted(ranks)
    # the full report order: severity, account, region, finding, resource (collection findings first)
    keys = [
        (rank, account, region, finding, arn or "")
        for rank, account, region, finding, arn in zip(
            ranks, f["account_id"], f["region"], f["finding"], f["resource_arn"], strict=True
        )
    ]
    assert keys == sorted(keys)
    assert _finding_arns(f, B, US, "endpoint_unmonitored") == [_arn(B, US, "endpoint", "ep-b2")]


def test_finding_severity_table() -> None:
    assert reports.FINDING_SEVERITY["network_isolation_disabled"] == "high"
    assert reports.FINDING_SEVERITY["intercontainer_encryption_disabled"] == "medium"
    assert set(reports.FINDING_SEVERITY.values()) == set(reports.SEVERITIES)
    assert len(reports.FINDING_SEVERITY) == 17


# --------------------------------------------------------------------------------------------------
# Agreement
# --------------------------------------------------------------------------------------------------


def test_agreement_holds_on_fixture(day2: reports.ReportResult, day3: reports.ReportResult) -> None:
    assert reports.check_findings_agreement(day3.coverage, day3.findings) == []
    assert reports.check_findings_agreement(day2.coverage, day2.findings) == []


def test_agreement_detects_dropped_finding(day3: reports.ReportResult) -> None:
    f = day3.findings.to_pandas()
    drop = f.index[(f["finding"] == "endpoint_unmonitored") & (f["account_id"] == A)][0]
    problems = reports.check_findings_agreement(day3.coverage, f.drop(index=drop))
    assert problems == [
        "2024-05-03 111111111111 us-east-1: endpoint_unmonitored findings=1 but coverage implies 2 "
        "(collection_status=ok)"
    ]
    # the Arrow table (what compute_reports returns) is checked the same way
    dropped = pa.Table.from_pandas(f.drop(index=drop), schema=day3.findings.schema, preserve_index=False)
    assert reports.check_findings_agreement(day3.coverage, dropped) == problems


def test_agreement_detects_planted_coverage_and_stray_findings(day3: reports.ReportResult) -> None:
    cov = day3.coverage.copy()
    cov.loc[(cov["account_id"] == A) & (cov["region"] == US), "definitions_with_baseline"] = 6
    findings = day3.findings.to_pandas()
    stray = findings.iloc[[0]].assign(account_id=C, region=US, finding="no_baseline", severity="medium")
    problems = reports.check_findings_agreement(cov, pd.concat([findings, stray], ignore_index=True))
    assert problems == [
        "2024-05-03 111111111111 us-east-1: no_baseline findings=2 but coverage implies 1 (collection_status=ok)",
        "2024-05-03 333333333333 us-east-1: no_baseline findings=1 but coverage implies 0 "
        "(collection_status=access_denied)",
    ]


def test_agreement_detects_zero_instead_of_null(day3: reports.ReportResult) -> None:
    cov = day3.coverage.copy()
    cov.loc[(cov["account_id"] == C) & (cov["region"] == EU), "endpoints_total"] = 0
    assert reports.check_findings_agreement(cov, day3.findings) == [
        "2024-05-03 333333333333 eu-west-1: endpoints_total must be NULL (collection_status=access_denied)"
    ]


# --------------------------------------------------------------------------------------------------
# As-of semantics
# --------------------------------------------------------------------------------------------------


def test_as_of_day2_uses_a_at_day1_and_b_at_day2(day2: reports.ReportResult) -> None:
    assert day2.reason is None
    assert day2.snapshot_dates_used == {A: DAY1, B: DAY2}
    assert set(zip(day2.coverage["account_id"], day2.coverage["snapshot_date"], strict=True)) == {
        (A, DAY1),
        (B, DAY2),
    }
    a_us = _row(day2.coverage, A, US)
    assert (a_us["endpoints_in_service"], a_us["coverage_pct"], a_us["definitions_total"]) == (1, 100.0, 1)
    findings = day2.findings.to_pandas()
    assert findings["finding"].value_counts().to_dict() == {
        "no_baseline": 1,
        "endpoint_unmonitored": 1,
        "collection_error": 1,
    }
    assert (findings["report_date"] == DAY2).all()


def test_as_of_day3_uses_a_at_day3_b_at_day2(day3: reports.ReportResult) -> None:
    assert day3.snapshot_dates_used == {A: DAY3, B: DAY2, C: DAY3}
    assert _row(day3.coverage, B, US)["snapshot_date"] == DAY2
    assert _row(day3.coverage, A, US)["snapshot_date"] == DAY3


def test_as_of_before_any_snapshot_is_empty_with_reason(conn: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    result = reports.compute_reports(conn, lake_dir, DAY0, REGIONS)
    assert result.reason == "no daily tables for 2024-04-30 (the first day with tables is 2024-05-01)"
    assert result.coverage.empty and result.findings.num_rows == 0 and result.summary.empty
    assert result.findings.schema == reports.arrow_schema(reports.FINDINGS_SCHEMA)
    assert list(result.coverage.columns) == list(reports.COVERAGE_COLUMNS)
    assert list(result.summary.columns) == list(reports.SUMMARY_COLUMNS)
    assert result.snapshot_dates_used == {}
    assert result.previous_summary is None
    assert "no daily tables for 2024-04-30" in result.markdown()
    # downstream helpers accept the empty frames
    assert reports.check_findings_agreement(result.coverage, result.findings) == []
    assert reports.worst_accounts(result.coverage).empty
    header = reports.format_terminal_table(result.summary).splitlines()[0]
    assert header.split()[:2] == ["report_date", "accounts_total"]


def test_empty_history_reason(tmp_path: Path) -> None:
    result = reports.compute_reports(duckdb.connect(), tmp_path / "lake", DAY3, REGIONS)
    assert result.reason == "no daily tables for 2024-05-03 (none built yet: materialize the aws/* tables first)"


def test_previous_report_date_prefers_its_stored_summary(
    conn: duckdb.DuckDBPyConnection, lake_dir: Path, tmp_path: Path
) -> None:
    """The change since the previous date is against that date's published summary when there is one."""
    import shutil

    copy = tmp_path / "lake"
    shutil.copytree(lake_dir, copy)
    stored = reports.compute_reports(conn, copy, DAY2, REGIONS).summary.copy()
    stored.loc[0, "fleet_coverage_pct"] = 10.0  # as published then (say, before a fix), not as recomputed
    lake.write_atomic(
        reports.to_arrow(stored, reports.SUMMARY_SCHEMA), layout.report_file(copy, reports.SUMMARY_TABLE, DAY2)
    )
    s = _summary(reports.compute_reports(conn, copy, DAY3, REGIONS))
    assert (s["previous_report_date"], s["coverage_change_pts"]) == (DAY2, 40.0)


def test_regions_validation(conn: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    with pytest.raises(TypeError):
        reports.compute_reports(conn, lake_dir, DAY3, "us-east-1")
    with pytest.raises(ValueError):
        reports.compute_reports(conn, lake_dir, DAY3, [])


def test_configured_region_subset_ignores_other_regions(conn: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    result = reports.compute_reports(conn, lake_dir, DAY3, [US])
    assert sorted(result.coverage["account_id"]) == [A, B, C]
    assert (result.coverage["region"] == US).all()
    assert result.summary.iloc[0]["accounts_ok"] == 2  # A and B are ok in us-east-1 alone
    assert result.summary.iloc[0]["accounts_denied"] == 1


# --------------------------------------------------------------------------------------------------
# Fleet summary
# --------------------------------------------------------------------------------------------------


def _summary(result: reports.ReportResult) -> dict[str, Any]:
    assert len(result.summary) == 1
    return {k: (None if pd.isna(v) else v) for k, v in result.summary.iloc[0].items()}


def _effective(serving: int, model_quality: int) -> dict[str, Any]:
    """The summary's per-type columns when only ModelQuality monitors are effective (the fixture's case)."""
    out: dict[str, Any] = {"accounts_stale": 0, "endpoints_serving": serving}
    for prefix in ("data_quality", "model_quality", "model_bias", "model_explainability"):
        watched = model_quality if prefix == "model_quality" else 0
        out[f"{prefix}_endpoints_effectively_watched"] = watched
        out[f"{prefix}_effective_coverage_pct"] = pytest.approx(100.0 * watched / serving)
    return out


def test_fleet_summary_day1(conn: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    s = _summary(reports.compute_reports(conn, lake_dir, DAY1, REGIONS))
    assert s == {
        "report_date": DAY1,
        "accounts_total": 1,
        "accounts_ok": 1,
        "accounts_denied": 0,
        "accounts_error": 0,
        "endpoints_in_service": 1,
        "endpoints_with_active_schedule": 1,
        "fleet_coverage_pct": 100.0,
        "findings_high": 0,
        "findings_medium": 1,
        "findings_low": 0,
        "previous_report_date": None,
        "coverage_change_pts": None,
        "findings_change": None,
        **_effective(serving=1, model_quality=1),
    }


def test_fleet_summary_day2(day2: reports.ReportResult) -> None:
    s = _summary(day2)
    assert s["fleet_coverage_pct"] == pytest.approx(200 / 3)
    assert s["coverage_change_pts"] == pytest.approx(200 / 3 - 100)
    del s["fleet_coverage_pct"], s["coverage_change_pts"]
    assert s == {
        "report_date": DAY2,
        "accounts_total": 2,
        "accounts_ok": 1,
        "accounts_denied": 0,
        "accounts_error": 1,
        "endpoints_in_service": 3,
        "endpoints_with_active_schedule": 2,
        "findings_high": 0,
        "findings_medium": 2,
        "findings_low": 1,
        "previous_report_date": DAY1,
        "findings_change": 2,
        **_effective(serving=3, model_quality=2),
    }


def test_fleet_summary_day3(day3: reports.ReportResult) -> None:
    s = _summary(day3)
    assert s["coverage_change_pts"] == pytest.approx(50 - 200 / 3)
    del s["coverage_change_pts"]
    assert s == {
        "report_date": DAY3,
        "accounts_total": 3,
        "accounts_ok": 0,
        "accounts_denied": 1,
        "accounts_error": 2,
        "endpoints_in_service": 6,
        "endpoints_with_active_schedule": 3,
        "fleet_coverage_pct": 50.0,
        "findings_high": 2,
        "findings_medium": 13,  # + sch-dq failing, sch-dq's definition missing
        "findings_low": 7,
        "previous_report_date": DAY2,
        "findings_change": 19,
        **_effective(serving=6, model_quality=2),
    }
    prev = {k: (None if pd.isna(v) else v) for k, v in day3.previous_summary.iloc[0].items()}
    assert (prev["report_date"], prev["endpoints_in_service"], prev["findings_medium"]) == (DAY2, 3, 2)
    assert list(day3.summary.columns) == list(reports.SUMMARY_COLUMNS)


def test_fleet_summary_date_without_snapshot_compares_to_latest_snapshot_date(
    conn: duckdb.DuckDBPyConnection,
    lake_dir: Path,
) -> None:
    s = _summary(reports.compute_reports(conn, lake_dir, DAY4, REGIONS))
    assert (s["report_date"], s["previous_report_date"], s["fleet_coverage_pct"]) == (DAY4, DAY3, 50.0)
    assert (s["coverage_change_pts"], s["findings_change"]) == (0.0, 0)


# --------------------------------------------------------------------------------------------------
# Presentation helpers
# --------------------------------------------------------------------------------------------------


def test_worst_accounts_day3(day3: reports.ReportResult) -> None:
    w = reports.worst_accounts(day3.coverage)
    assert list(w.columns) == list(reports.WORST_ACCOUNTS_COLUMNS)
    rows = [tuple(None if pd.isna(v) else v for v in r) for r in w.itertuples(index=False, name=None)]
    assert rows == [
        # equal 50% coverage: more unmonitored endpoints first
        (A, "error", DAY3, 1, 2, 4, 2, 2, 50.0),
        (B, "error", DAY2, 1, 2, 2, 1, 1, 50.0),
        (C, "access_denied", DAY3, 0, 2, None, None, None, None),
    ]


def test_worst_accounts_ordering_and_limit() -> None:
    def cov_row(account: str, region: str, status: str, ins: int | None, act: int | None) -> dict[str, Any]:
        return {
            "report_date": DAY3,
            "account_id": account,
            "region": region,
            "snapshot_date": DAY3,
            "collection_status": status,
            "endpoints_in_service": ins,
            "endpoints_with_active_schedule": act,
        }

    # plain pandas dtypes (object columns with None): the helper must not depend on report dtypes
    cov = pd.DataFrame(
        [
            cov_row("ok-none", US, "ok", 0, 0),  # NULL coverage, ok
            cov_row("denied", US, "access_denied", None, None),
            cov_row("error", US, "error", None, None),
            cov_row("low", US, "ok", 5, 1),  # 20%
            cov_row("high", US, "ok", 4, 3),  # 75%
        ]
    )
    w = reports.worst_accounts(cov)
    assert w["account_id"].tolist() == ["low", "high", "denied", "error", "ok-none"]
    assert w["coverage_pct"].tolist()[:2] == [20.0, 75.0]
    assert reports.worst_accounts(cov, n=2)["account_id"].tolist() == ["low", "high"]
    assert reports.worst_accounts(cov.iloc[0:0]).empty


def test_summary_markdown(day3: reports.ReportResult) -> None:
    md = reports.summary_markdown(
        day3.summary.iloc[0], reports.worst_accounts(day3.coverage), day3.previous_summary.iloc[0]
    )
    assert md.startswith("## Model quality monitoring: 2024-05-03\n")
    assert "| accounts (ok / denied / error) | 3 (0 / 1 / 2) |" in md
    assert "| fleet coverage | 50.0% |" in md
    assert "| findings (high / medium / low) | 22 (2 / 13 / 7) |" in md
    assert "### 3 worst accounts" in md
    assert "| 111111111111 | error | 2024-05-03 | 1 | 2 | 4 | 2 | 2 | 50.0 |" in md
    assert "| 333333333333 | access_denied | 2024-05-03 | 0 | 2 | - | - | - | - |" in md
    assert "### Change since 2024-05-03" not in md
    assert "### Change since 2024-05-02" in md
    assert "- coverage: -16.7 pts (66.7% -> 50.0%)" in md
    assert "- findings: +19 (3 -> 22)" in md
    assert md == day3.markdown()


def test_summary_markdown_without_previous(conn: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    day1 = reports.compute_reports(conn, lake_dir, DAY1, REGIONS)
    md = reports.summary_markdown(day1.summary.iloc[0], reports.worst_accounts(day1.coverage), None)
    assert md.endswith("### Change\n\nNo previous report date.\n")
    # the summary row's own change columns are used when no previous row is passed
    day3 = reports.compute_reports(conn, lake_dir, DAY3, REGIONS)
    md3 = reports.summary_markdown(day3.summary.iloc[0], reports.worst_accounts(day3.coverage), None)
    assert "- coverage: -16.7 pts\n- findings: +19\n" in md3


def test_format_terminal_table() -> None:
    df = pd.DataFrame(
        {
            "account_id": ["111111111111", "2"],
            "coverage_pct": pd.array([50.0, None], dtype="Float64"),
            "n": pd.array([4, 12], dtype="Int64"),
            "snapshot_date": [DAY3, None],
        }
    )
    assert reports.format_terminal_table(df) == "\n".join(
        [
            "account_id      coverage_pct    n  snapshot_date",
            "------------  --------------  ---  ---------------",
            "111111111111            50.0    4  2024-05-03",
            "2                          -   12  -",
        ]
    )


def test_coverage_trend_reads_the_stored_summaries(
    conn: duckdb.DuckDBPyConnection, lake_dir: Path, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "lake"
    shutil.copytree(lake_dir, copy)
    assert reports.coverage_trend(conn, copy, DAY3, days=30).empty  # nothing published yet
    for day in (DAY1, DAY2, DAY3):
        summary = reports.compute_reports(conn, copy, day, REGIONS).summary
        lake.write_atomic(
            reports.to_arrow(summary, reports.SUMMARY_SCHEMA), layout.report_file(copy, reports.SUMMARY_TABLE, day)
        )
    trend = reports.coverage_trend(conn, copy, DAY3, days=30)
    assert list(trend.columns) == list(reports.TREND_COLUMNS)
    assert trend["report_date"].tolist() == [DAY1, DAY2, DAY3]
    assert trend["fleet_coverage_pct"].round(2).tolist() == [100.0, 66.67, 50.0]
    assert trend["endpoints_in_service"].tolist() == [1, 3, 6]
    assert trend["accounts_total"].tolist() == [1, 2, 3]
    short = reports.coverage_trend(conn, copy, DAY3, days=2)
    assert short["report_date"].tolist() == [DAY2, DAY3]


def test_coverage_trend_includes_the_report_being_built(
    conn: duckdb.DuckDBPyConnection, lake_dir: Path, day3: reports.ReportResult
) -> None:
    # nothing stored: day3's summary and its previous (day2) are the trend
    trend = reports.coverage_trend(conn, lake_dir, DAY3, days=30, reuse=day3)
    assert trend["report_date"].tolist() == [DAY2, DAY3]
    assert trend["fleet_coverage_pct"].round(2).tolist() == [66.67, 50.0]


def test_compute_reports_leaves_no_temporary_tables(conn: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    reports.compute_reports(conn, lake_dir, DAY3, REGIONS)
    assert conn.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [(0,)]


# --------------------------------------------------------------------------------------------------
# Report semantics of a real org: stale snapshots, resources skipped on ValidationException
# --------------------------------------------------------------------------------------------------

DAY13 = DAY3 + timedelta(days=10)


def test_old_snapshots_are_stale_and_skipped_resources_are_reported(tmp_path: Path) -> None:
    """Ten days on, only A was collected again: B (last seen on day 2) and C (day 3) are stale, never
    counted as current; A's status row notes a resource a describe refused with ValidationException."""
    history = _history()
    history["collection_status"] += _status(DAY13, A, US) + _status(DAY13, A, EU)
    for row in history["collection_status"]:
        if row["snapshot_date"] == DAY13 and row["region"] == US and row["resource_type"] == "endpoint":
            row["error_code"] = "ValidationException"
            row["message"] = "skipped 1: ep-gone (describe: ValidationException: Could not find endpoint)"
    lake_dir = tmp_path / "lake"
    _write_day(lake_dir, DAY13, history)
    with duckdb.connect() as conn:
        result = reports.compute_reports(conn, lake_dir, DAY13, REGIONS, stale_after_days=7)
    statuses = {(r.account_id, r.region): r.collection_status for r in result.coverage.itertuples()}
    assert statuses == {
        (A, US): "ok",
        (A, EU): "ok",
        (B, US): "stale",
        (B, EU): "stale",
        (C, US): "stale",  # stale wins over its old access_denied: the account is gone, not denied
        (C, EU): "stale",
    }
    stale = result.coverage[result.coverage["collection_status"] == "stale"]
    assert stale[COUNT_COLUMNS].isna().all().all()
    f = result.findings.to_pandas()
    collection = sorted(
        (r.account_id, r.region, r.finding) for r in f.itertuples() if r.finding.startswith("collection_")
    )
    assert collection == [
        (A, US, "collection_skipped_resources"),
        (B, EU, "collection_stale"),
        (B, US, "collection_stale"),
        (C, EU, "collection_stale"),
        (C, US, "collection_stale"),
    ]
    (skipped,) = f[f["finding"] == "collection_skipped_resources"]["detail"]
    assert "ep-gone" in skipped and "ValidationException" in skipped
    summary = result.summary.iloc[0]
    assert (summary["accounts_total"], summary["accounts_ok"], summary["accounts_stale"]) == (3, 1, 2)
    assert reports.check_findings_agreement(result.coverage, result.findings) == []
    # with a longer stale age, B and C are current again
    with duckdb.connect() as conn:
        lenient = reports.compute_reports(conn, lake_dir, DAY13, REGIONS, stale_after_days=30)
    assert "stale" not in set(lenient.coverage["collection_status"])

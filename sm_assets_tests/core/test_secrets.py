"""Secrets planted in the fake org never reach the lake, the DuckDB file, the Dagster instance or the logs."""

import json
import os
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from sm_assets.core.config import Settings
from sm_assets.core.redact import REDACTED, redact_secrets

SECRETS = [
    "hunter2-Pl4nted-DB",
    "tok-Pl4nted-api-0042",
    "Pl4nted-arg-pass",
    "Pl4nted-next-arg-key",
    "AKIAPL4NTEDKEY000042",
    "Pl4nted-url-pass",
]


def test_redaction_unit() -> None:
    body = {
        "ModelQualityAppSpecification": {
            "ImageUri": "img",
            "Environment": {"DB_PASSWORD": "x", "LOG_LEVEL": "debug"},
            "ContainerArguments": [
                "--epochs=3",
                "--password=x",
                "--api-key",
                "y",
                "--verbose",
                "AKIAABCDEFGHIJKLMNOP",
                "--db=postgres://u:pw@host/db",
                "--token",
                "--next",
            ],
        },
        "Nested": [{"Environment": {"A": "1"}}],
    }
    out = redact_secrets(body)
    spec = out["ModelQualityAppSpecification"]
    assert spec["Environment"] == {"DB_PASSWORD": REDACTED, "LOG_LEVEL": REDACTED}
    assert spec["ContainerArguments"] == [
        "--epochs=3",
        f"--password={REDACTED}",
        "--api-key",
        REDACTED,
        "--verbose",
        REDACTED,
        REDACTED,
        "--token",
        "--next",
    ]
    assert out["Nested"] == [{"Environment": {"A": REDACTED}}]
    assert body["ModelQualityAppSpecification"]["Environment"]["DB_PASSWORD"] == "x"  # input untouched


def plant_secrets(account_id: str) -> None:
    creds = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="plant"
    )["Credentials"]
    sm = boto3.client(
        "sagemaker",
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    app: dict[str, Any] = {
        "ImageUri": "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer",
        "ProblemType": "BinaryClassification",
        "Environment": {"DB_PASSWORD": SECRETS[0], "API_TOKEN": SECRETS[1]},
        "ContainerArguments": [
            f"--password={SECRETS[2]}",
            "--api-key",
            SECRETS[3],
            SECRETS[4],
            f"--db=postgres://svc:{SECRETS[5]}@db.internal/ml",
            "--epochs=3",
        ],
    }
    sm.create_model_quality_job_definition(
        JobDefinitionName="leaky",
        ModelQualityAppSpecification=app,
        ModelQualityJobInput={
            "EndpointInput": {"EndpointName": "leaky-ep", "LocalPath": "/opt/ml/input"},
            "GroundTruthS3Input": {"S3Uri": "s3://b/gt"},
        },
        ModelQualityJobOutputConfig={"MonitoringOutputs": [{"S3Output": {"S3Uri": "s3://b/o", "LocalPath": "/o"}}]},
        JobResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}},
        RoleArn=f"arn:aws:iam::{account_id}:role/monitor",
    )


def texts_in(data_dir: Path) -> str:
    """Everything stored: raw bytes of every file plus the decoded contents of every Parquet file."""
    chunks = []
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        chunks.append(path.read_bytes().decode("utf-8", "replace"))
        if path.suffix == ".parquet":
            chunks.append(json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False))
    return "\n".join(chunks)


@pytest.mark.parametrize("redact", [True, False])
def test_planted_secrets_never_stored_or_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], redact: bool
) -> None:
    from sm_assets.cli.refresh import run_refresh
    from sm_assets.demo.fake_aws import fake_aws_server
    from sm_assets.demo.seed import seed_demo_org

    data = tmp_path / "data"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    with fake_aws_server() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        org = seed_demo_org(endpoint, accounts=3, seed=5)
        target = org.collectible_account_ids[-1]
        plant_secrets(target)
        env = {"SM_ASSETS_DATA_DIR": str(data), "SM_ASSETS_REDACT_SECRETS": "true" if redact else "false"}
        settings = Settings.from_env({**os.environ, **env})
        outcomes = run_refresh(settings, account_ids=[target])
    assert [(o.account_id, o.failed) for o in outcomes] == [(target, False)]
    stored = texts_in(data) + texts_in(tmp_path / "dagster_home")
    captured = capfd.readouterr()
    logs = captured.out + captured.err
    assert "DB_PASSWORD" in stored and "API_TOKEN" in stored  # key names stay
    if redact:
        for secret in SECRETS:
            assert secret not in stored, secret
            assert secret not in logs, secret
        assert REDACTED in stored
    else:
        # The opt-out keeps values verbatim, which also proves the scan above can see them.
        assert SECRETS[0] in stored and SECRETS[2] in stored

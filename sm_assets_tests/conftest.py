from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from sm_assets.demo.seed import DemoOrg


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS: fake credentials, no profile, no endpoint override."""
    for var in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_REGION",
        "SM_ASSETS_DUCKDB_PATH",
        "SM_ASSETS_ACCOUNTS",
        "SM_ASSETS_REGIONS",
        "SM_ASSETS_ROLE_NAME",
        "SM_ASSETS_EXTERNAL_ID",
        "SM_ASSETS_HOME_REGION",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


DEMO_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


@pytest.fixture(scope="module")
def org() -> Iterator["DemoOrg"]:
    """The demo organization seeded once per test module, under moto's in-process mock."""
    import os

    from moto import mock_aws

    from sm_assets.demo.fake_aws import install_moto_extensions
    from sm_assets.demo.seed import seed_demo_org

    # Module scope outlives monkeypatch: save and restore by hand.
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    install_moto_extensions()
    with mock_aws():
        yield seed_demo_org(None, regions=DEMO_REGIONS)
    for k, v in saved.items():
        if v is not None:
            os.environ[k] = v


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in process, with the repo's SageMaker extensions (every test sees the same fake AWS)."""
    from moto import mock_aws

    from sm_assets.demo.fake_aws import install_moto_extensions

    install_moto_extensions()
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a real HTTP endpoint: pyarrow's S3 client is not boto3, so an
    in-process mock_aws cannot intercept it)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def create_bucket(endpoint: str, bucket: str) -> None:
    import pyarrow.fs as pafs

    pafs.S3FileSystem(endpoint_override=endpoint, region="us-east-1", allow_bucket_creation=True).create_dir(bucket)


@pytest.fixture
def s3_data_dir(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://<fresh bucket>/sm-assets`` on the S3 server. AWS_ENDPOINT_URL_S3 is service-specific: SageMaker,
    STS and Organizations calls still go wherever they went (the fake organization)."""
    import uuid

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    bucket = f"sm-assets-{uuid.uuid4().hex[:12]}"
    create_bucket(s3_endpoint, bucket)
    return f"s3://{bucket}/sm-assets"


@pytest.fixture(params=["local", "s3"])
def lake_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def data_location(lake_kind: str, request: pytest.FixtureRequest, tmp_path: "Path") -> "Path | str":
    """SM_ASSETS_DATA_DIR for both kinds of lake: a local directory, or an s3:// prefix on moto's S3 server."""
    if lake_kind == "local":
        return tmp_path
    return request.getfixturevalue("s3_data_dir")

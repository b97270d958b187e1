from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sm_assets.demo.seed import DemoOrg


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS: fake credentials, no profile, no endpoint override."""
    for var in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "SM_ASSETS_ACCOUNTS",
        "SM_ASSETS_REGIONS",
        "SM_ASSETS_ROLE_NAME",
        "SM_ASSETS_EXTERNAL_ID",
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
    from moto import mock_aws

    with mock_aws():
        yield

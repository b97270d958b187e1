from pathlib import Path

import pytest

from sm_assets.core.config import DEFAULT_REGIONS, DEFAULT_ROLE_NAME, ConfigError, Settings
from sm_assets.defs.resources import SmAssetsConfig


def test_defaults_from_empty_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.data_dir == (tmp_path / "data").resolve()
    assert settings.regions == DEFAULT_REGIONS
    assert settings.role_name == DEFAULT_ROLE_NAME
    assert settings.accounts is None and settings.external_id is None
    assert settings.duckdb_path == settings.data_dir / "sm_assets.duckdb"


def test_explicit_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "SM_ASSETS_DATA_DIR": str(tmp_path / "lake-here"),
            "SM_ASSETS_REGIONS": " eu-west-1, us-east-1 ,eu-west-1",
            "SM_ASSETS_ROLE_NAME": "Inventory",
            "SM_ASSETS_EXTERNAL_ID": "ext-123",
            "SM_ASSETS_ACCOUNTS": "111111111111,222222222222",
        }
    )
    assert settings.regions == ("eu-west-1", "us-east-1")
    assert settings.accounts == ("111111111111", "222222222222")
    assert settings.external_id == "ext-123"
    assert settings.data_dir.is_dir()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SM_ASSETS_ACCOUNTS": "12345"}, "malformed account id(s): '12345'"),
        ({"SM_ASSETS_ACCOUNTS": "111111111111,abc111111111"}, "'abc111111111'"),
        ({"SM_ASSETS_REGIONS": "us-east-1,mars-north-1"}, "unknown region name(s): mars-north-1"),
        ({"SM_ASSETS_REGIONS": " , "}, None),  # empty list falls back to the default regions
        ({"SM_ASSETS_ROLE_NAME": "bad role/name"}, "not a valid IAM role name"),
    ],
)
def test_bad_configuration_is_one_clear_line(tmp_path: Path, env: dict[str, str], needle: str | None) -> None:
    env = {"SM_ASSETS_DATA_DIR": str(tmp_path), **env}
    if needle is None:
        assert Settings.from_env(env).regions == DEFAULT_REGIONS
        return
    with pytest.raises(ConfigError) as excinfo:
        Settings.from_env(env)
    message = str(excinfo.value)
    assert needle in message
    assert "\n" not in message


def test_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="is not writable") as excinfo:
        Settings.from_env({"SM_ASSETS_DATA_DIR": str(blocker / "data")})
    assert "\n" not in str(excinfo.value)


# ---------------------------------------------------------------------------------------------------------
# The lake on S3


def test_s3_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_data_dir: str) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"SM_ASSETS_DATA_DIR": s3_data_dir + "//"})
    assert settings.on_s3 and settings.data_location == s3_data_dir
    assert settings.lake_dir == f"{s3_data_dir}/lake"
    # DuckDB keeps its file on local disk: ./data/sm_assets.duckdb unless SM_ASSETS_DUCKDB_PATH says otherwise.
    assert settings.duckdb_path == (tmp_path / "data" / "sm_assets.duckdb").resolve()
    assert settings.data_dir == settings.duckdb_path.parent and settings.data_dir.is_dir()
    custom = Settings.from_env({"SM_ASSETS_DATA_DIR": s3_data_dir, "SM_ASSETS_DUCKDB_PATH": "state/inv.duckdb"})
    assert custom.duckdb_path == (tmp_path / "state" / "inv.duckdb").resolve()
    again = SmAssetsConfig.from_settings(custom).settings()
    assert (again.data_location, again.duckdb_path) == (s3_data_dir, custom.duckdb_path)


def test_duckdb_path_for_a_local_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"SM_ASSETS_DATA_DIR": str(tmp_path / "d"), "SM_ASSETS_DUCKDB_PATH": str(tmp_path / "db" / "x.duckdb")}
    )
    assert settings.duckdb_path == tmp_path / "db" / "x.duckdb" and settings.lake_dir == tmp_path / "d" / "lake"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SM_ASSETS_DATA_DIR": "s3://"}, "does not name a valid S3 bucket"),
        ({"SM_ASSETS_DATA_DIR": "s3://Bad_Bucket/x"}, "does not name a valid S3 bucket"),
        ({"SM_ASSETS_DATA_DIR": "gs://bucket/x"}, "only local directories and s3://bucket/prefix URIs"),
        ({"SM_ASSETS_DUCKDB_PATH": "s3://bucket/sm.duckdb"}, "must be a local file path"),
        ({"SM_ASSETS_DUCKDB_PATH": "."}, "is a directory"),
    ],
)
def test_bad_s3_configuration_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as excinfo:
        Settings.from_env({"SM_ASSETS_DATA_DIR": "s3://bucket/x", **env}, check_writable=False)
    assert needle in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_missing_bucket_is_one_line(tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    env = {"SM_ASSETS_DATA_DIR": "s3://not-a-bucket-here/p", "SM_ASSETS_DUCKDB_PATH": str(tmp_path / "s.duckdb")}
    with pytest.raises(ConfigError) as excinfo:
        Settings.from_env(env)
    message = str(excinfo.value)
    assert message.startswith("SM_ASSETS_DATA_DIR 's3://not-a-bucket-here/p' is not writable")
    assert "bucket does not exist" in message and "\n" not in message


def test_unreachable_endpoint_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there
    env = {"SM_ASSETS_DATA_DIR": "s3://some-bucket/p", "SM_ASSETS_DUCKDB_PATH": str(tmp_path / "s.duckdb")}
    with pytest.raises(ConfigError) as excinfo:
        Settings.from_env(env)
    message = str(excinfo.value)
    assert "'s3://some-bucket/p' is not writable (endpoint http://127.0.0.1:9)" in message and "\n" not in message


def test_s3_endpoint_and_region_follow_botocore(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sm_assets.core import s3

    assert s3.endpoint_and_region() == (None, "us-east-1")  # AWS itself (conftest sets AWS_DEFAULT_REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1111")
    assert s3.endpoint_and_region()[0] == "http://127.0.0.1:1111"  # the global override applies to S3 too
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:2222")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert s3.endpoint_and_region() == ("http://127.0.0.1:2222", "eu-west-1")  # the S3-specific one wins
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    config = tmp_path / "config"
    config.write_text(
        "[profile lake]\nregion = ap-south-1\nservices = lake-services\n\n"
        "[services lake-services]\ns3 =\n  endpoint_url = http://127.0.0.1:3333\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "lake")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert s3.endpoint_and_region() == ("http://127.0.0.1:3333", "ap-south-1")  # a profile's services section

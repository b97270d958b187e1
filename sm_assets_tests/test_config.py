from pathlib import Path

import pytest

from sm_assets.core.config import DEFAULT_REGIONS, DEFAULT_ROLE_NAME, ConfigError, Settings


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

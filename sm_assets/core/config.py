"""Settings from the environment, validated up front so bad input fails with one clear line."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
DEFAULT_ROLE_NAME = "SageMakerInventoryReadOnly"
DEFAULT_DATA_DIR = "./data"
DEFAULT_COVERAGE_DROP_WARN_POINTS = 5.0

_ACCOUNT_RE = re.compile(r"^\d{12}$")
# IAM role names: 1-64 chars of [\w+=,.@-]
_ROLE_RE = re.compile(r"^[\w+=,.@-]{1,64}$")


class ConfigError(ValueError):
    """A configuration problem, explained in one line."""


@lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region botocore's bundled endpoint data knows for SageMaker, across partitions."""
    import boto3

    session = boto3.session.Session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("sagemaker", partition_name=partition))
    return frozenset(regions)


def parse_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def validate_regions(regions: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if not regions:
        raise ConfigError("SM_ASSETS_REGIONS is empty: give at least one region, e.g. us-east-1")
    unknown = [r for r in regions if r not in known_regions()]
    if unknown:
        raise ConfigError(
            f"SM_ASSETS_REGIONS has unknown region name(s): {', '.join(unknown)} "
            "(expected names like us-east-1, eu-west-1)"
        )
    return tuple(dict.fromkeys(regions))


def validate_accounts(accounts: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    bad = [a for a in accounts if not _ACCOUNT_RE.match(a)]
    if bad:
        raise ConfigError(
            f"SM_ASSETS_ACCOUNTS has malformed account id(s): {', '.join(repr(b) for b in bad)} "
            "(each must be exactly 12 digits)"
        )
    return tuple(dict.fromkeys(accounts))


def validate_role_name(role_name: str) -> str:
    if not _ROLE_RE.match(role_name):
        raise ConfigError(f"SM_ASSETS_ROLE_NAME {role_name!r} is not a valid IAM role name")
    return role_name


def parse_bool(name: str, value: bool | str) -> bool:
    if isinstance(value, bool):
        return value
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} {value!r} must be true or false")


def validate_points(value: float | str) -> float:
    try:
        points = float(value)
    except ValueError:
        raise ConfigError(f"SM_ASSETS_COVERAGE_DROP_WARN_POINTS {value!r} is not a number") from None
    if not 0 <= points <= 100:
        raise ConfigError(f"SM_ASSETS_COVERAGE_DROP_WARN_POINTS {points} must lie in [0, 100]")
    return points


def parse_processes(value: int | str) -> int:
    """SM_ASSETS_COLLECT_PROCESSES: a positive count, or "auto" (one per CPU core, at most 8)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"SM_ASSETS_COLLECT_PROCESSES {value!r} is not a number or 'auto'") from None
    if not 1 <= count <= 64:
        raise ConfigError(f"SM_ASSETS_COLLECT_PROCESSES {count} must lie in [1, 64]")
    return count


def ensure_writable_dir(path: Path) -> Path:
    """Create the data dir if needed and prove we can write into it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(f"SM_ASSETS_DATA_DIR {str(path)!r} is not writable: {exc.strerror or exc}") from None
    return path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    regions: tuple[str, ...]
    role_name: str
    external_id: str | None
    accounts: tuple[str, ...] | None  # None: discover through AWS Organizations
    coverage_drop_warn_points: float = DEFAULT_COVERAGE_DROP_WARN_POINTS
    redact_secrets: bool = True  # Environment values / secret-looking ContainerArguments never stored
    # Worker processes for collection (1: threads in this process only; moto's in-process mock needs that).
    collect_processes: int = 1

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "sm_assets.duckdb"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @classmethod
    def build(
        cls,
        *,
        data_dir: str | os.PathLike[str],
        regions: list[str] | tuple[str, ...],
        role_name: str,
        external_id: str | None = None,
        accounts: list[str] | tuple[str, ...] | None = None,
        coverage_drop_warn_points: float | str = DEFAULT_COVERAGE_DROP_WARN_POINTS,
        redact_secrets: bool | str = True,
        collect_processes: int | str = 1,
        check_writable: bool = True,
    ) -> Settings:
        path = Path(data_dir).expanduser().resolve()
        if check_writable:
            ensure_writable_dir(path)
        return cls(
            data_dir=path,
            regions=validate_regions(list(regions)),
            role_name=validate_role_name(role_name),
            external_id=external_id or None,
            accounts=validate_accounts(list(accounts)) if accounts else None,
            coverage_drop_warn_points=validate_points(coverage_drop_warn_points),
            redact_secrets=parse_bool("SM_ASSETS_REDACT_SECRETS", redact_secrets),
            collect_processes=parse_processes(collect_processes),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, check_writable: bool = True) -> Settings:
        env = os.environ if env is None else env
        return cls.build(
            data_dir=env.get("SM_ASSETS_DATA_DIR") or DEFAULT_DATA_DIR,
            regions=parse_list(env.get("SM_ASSETS_REGIONS")) or list(DEFAULT_REGIONS),
            role_name=env.get("SM_ASSETS_ROLE_NAME") or DEFAULT_ROLE_NAME,
            external_id=env.get("SM_ASSETS_EXTERNAL_ID"),
            accounts=parse_list(env.get("SM_ASSETS_ACCOUNTS")) or None,
            coverage_drop_warn_points=env.get("SM_ASSETS_COVERAGE_DROP_WARN_POINTS")
            or DEFAULT_COVERAGE_DROP_WARN_POINTS,
            redact_secrets=env.get("SM_ASSETS_REDACT_SECRETS") or True,
            collect_processes=env.get("SM_ASSETS_COLLECT_PROCESSES") or "auto",
            check_writable=check_writable,
        )

"""Settings from the environment, validated up front so bad input fails with one clear line."""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sm_assets.core import s3
from sm_assets.core.aws_clients import aws_partition, organizations_region, partition_regions, partitions
from sm_assets.core.errors import ConfigError

DEFAULT_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
DEFAULT_ROLE_NAME = "SageMakerInventoryReadOnly"
DEFAULT_DATA_DIR = "./data"
DUCKDB_FILE = "sm_assets.duckdb"
DEFAULT_COVERAGE_DROP_WARN_POINTS = 5.0
DEFAULT_SHARD_SIZE = 500  # accounts per scheduled run: memory and a retry's cost follow the shard
DEFAULT_STALE_AFTER_DAYS = 7  # an as-of snapshot older than this is stale in the reports

_ACCOUNT_RE = re.compile(r"^\d{12}$")
# IAM role names: 1-64 chars of [\w+=,.@-]
_ROLE_RE = re.compile(r"^[\w+=,.@-]{1,64}$")


@lru_cache(maxsize=4)
def known_regions(service: str = "sagemaker") -> frozenset[str]:
    """Every region botocore's bundled endpoint data knows for `service`, across partitions."""
    return frozenset(r for partition in partitions() for r in partition_regions(partition, service))


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


def validate_partition(regions: tuple[str, ...]) -> str:
    """The one partition (aws, aws-us-gov, aws-cn, ...) all the regions lie in: credentials, ARNs and the
    Organizations and STS endpoints all belong to one partition, so one configuration collects one."""
    by_partition: dict[str, list[str]] = {}
    for region in regions:
        by_partition.setdefault(aws_partition(region), []).append(region)
    if len(by_partition) > 1:
        named = [f"{p} ({', '.join(rs)})" for p, rs in by_partition.items()]
        mixed = ", ".join(named[:-1]) + " and " + named[-1]
        raise ConfigError(
            f"SM_ASSETS_REGIONS mixes AWS partitions {mixed}: credentials and ARNs belong to one partition, "
            "so configure (and run) one sm-assets per partition"
        )
    return next(iter(by_partition))


def chain_region() -> str | None:
    """The region of the standard boto3 chain: AWS_DEFAULT_REGION, else the profile's region."""
    import boto3

    return boto3.session.Session().region_name


def resolve_home_region(configured: str | None, regions: tuple[str, ...]) -> tuple[str, str]:
    """(home region, where it came from): where Organizations and STS are called. SM_ASSETS_HOME_REGION,
    else the region chain's region when it lies in the collected partition, else the partition's
    Organizations region (the one region every account of the partition has enabled)."""
    partition = aws_partition(regions[0])
    if configured:
        if configured not in known_regions("sts"):
            raise ConfigError(
                f"SM_ASSETS_HOME_REGION {configured!r} is not a region with an STS endpoint "
                "(expected names like us-east-1, us-gov-west-1, cn-northwest-1)"
            )
        home_partition = aws_partition(configured)
        if home_partition != partition:
            raise ConfigError(
                f"SM_ASSETS_HOME_REGION {configured} is in partition {home_partition} but SM_ASSETS_REGIONS "
                f"({', '.join(regions)}) in {partition}: set a home region of {partition}"
            )
        return configured, "SM_ASSETS_HOME_REGION"
    fallback = organizations_region(regions[0])
    chain = chain_region()
    if chain and chain in known_regions("sts"):
        if aws_partition(chain) == partition:
            return chain, "the AWS region chain"
        return fallback, f"{partition}'s Organizations region; the chain's {chain} is in {aws_partition(chain)}"
    return fallback, f"{partition}'s Organizations region"


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


def usable_cpus(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a container's CPU limit,
    which the affinity mask doesn't show)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota: the affinity stands
    return max(1, cpus)


def parse_processes(value: int | str) -> int:
    """SM_ASSETS_COLLECT_PROCESSES: a positive count, or "auto" (one per usable CPU, at most 8)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return min(8, usable_cpus())
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"SM_ASSETS_COLLECT_PROCESSES {value!r} is not a number or 'auto'") from None
    if not 1 <= count <= 64:
        raise ConfigError(f"SM_ASSETS_COLLECT_PROCESSES {count} must lie in [1, 64]")
    return count


def parse_shard_size(value: int | str) -> int:
    """SM_ASSETS_SHARD_SIZE: accounts per run of the daily schedule (and of `sm-assets refresh`)."""
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"SM_ASSETS_SHARD_SIZE {value!r} is not a number") from None
    if not 1 <= size <= 100_000:
        raise ConfigError(f"SM_ASSETS_SHARD_SIZE {size} must lie in [1, 100000]")
    return size


def ensure_writable_dir(path: Path, setting: str = "SM_ASSETS_DATA_DIR") -> Path:
    """Create the data dir if needed and prove we can write into it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{setting} {str(path)!r} is not writable: {exc.strerror or exc}") from None
    return path


def parse_data_dir(data_dir: str | os.PathLike[str]) -> tuple[Path | None, str | None]:
    """(local directory, None) or (None, normalized s3:// URI) for SM_ASSETS_DATA_DIR."""
    text = os.fspath(data_dir)
    if s3.is_s3_uri(text):
        return None, s3.normalize_uri(text)
    if s3.has_scheme(text):
        raise ConfigError(
            f"SM_ASSETS_DATA_DIR {text!r}: only local directories and s3://bucket/prefix URIs are supported"
        )
    return Path(text).expanduser().resolve(), None


def parse_duckdb_path(value: str | os.PathLike[str]) -> Path:
    """SM_ASSETS_DUCKDB_PATH: a local file (DuckDB cannot keep its database file on S3)."""
    text = os.fspath(value)
    if s3.has_scheme(text):
        raise ConfigError(f"SM_ASSETS_DUCKDB_PATH {text!r} must be a local file path: DuckDB keeps its file on disk")
    path = Path(text).expanduser().resolve()
    if path.is_dir():
        raise ConfigError(f"SM_ASSETS_DUCKDB_PATH {text!r} is a directory: give a file, e.g. ./data/{DUCKDB_FILE}")
    return path


def parse_stale_days(value: int | str) -> int:
    """SM_ASSETS_STALE_AFTER_DAYS: how old an account's latest snapshot may be and still count as current."""
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"SM_ASSETS_STALE_AFTER_DAYS {value!r} is not a number") from None
    if not 1 <= days <= 3650:
        raise ConfigError(f"SM_ASSETS_STALE_AFTER_DAYS {days} must lie in [1, 3650]")
    return days


@dataclass(frozen=True)
class Settings:
    # The local directory: the lake (unless data_uri is set), the DuckDB file by default, the CLI's DAGSTER_HOME.
    # With an s3:// SM_ASSETS_DATA_DIR it is the directory of the (local) DuckDB file.
    data_dir: Path
    regions: tuple[str, ...]
    role_name: str
    external_id: str | None
    accounts: tuple[str, ...] | None  # None: discover through AWS Organizations
    coverage_drop_warn_points: float = DEFAULT_COVERAGE_DROP_WARN_POINTS
    redact_secrets: bool = True  # Environment values / secret-looking ContainerArguments never stored
    # Worker processes for collection (1: threads in this process only; moto's in-process mock needs that).
    collect_processes: int = 1
    data_uri: str | None = None  # s3://bucket/prefix when SM_ASSETS_DATA_DIR is on S3
    duckdb_file: Path | None = None  # SM_ASSETS_DUCKDB_PATH, when set
    shard_size: int = DEFAULT_SHARD_SIZE
    stale_after_days: int = DEFAULT_STALE_AFTER_DAYS
    # Where Organizations and STS are called (SM_ASSETS_HOME_REGION, resolved); never a member region.
    home_region: str = "us-east-1"
    home_region_source: str = field(default="SM_ASSETS_HOME_REGION", compare=False)  # shown by the doctor

    @property
    def partition(self) -> str:
        """aws, aws-us-gov, aws-cn, ...: every configured region, and the home region, lie in it (build checks)."""
        return aws_partition(self.regions[0])

    @property
    def organizations_region(self) -> str:
        """The region Organizations' endpoint for the home region's partition signs in."""
        return organizations_region(self.home_region)

    @property
    def duckdb_path(self) -> Path:
        return self.duckdb_file or self.data_dir / DUCKDB_FILE

    @property
    def lake_dir(self) -> Path | str:
        """The lake root: a local Path, or an ``s3://bucket/prefix/lake`` URI (see sm_assets.core.lake)."""
        return f"{self.data_uri}/lake" if self.data_uri else self.data_dir / "lake"

    @property
    def on_s3(self) -> bool:
        return self.data_uri is not None

    @property
    def data_location(self) -> str:
        """SM_ASSETS_DATA_DIR as configured: the s3:// URI or the local directory."""
        return self.data_uri or str(self.data_dir)

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
        duckdb_path: str | os.PathLike[str] | None = None,
        shard_size: int | str = DEFAULT_SHARD_SIZE,
        stale_after_days: int | str = DEFAULT_STALE_AFTER_DAYS,
        home_region: str | None = None,
        check_writable: bool = True,
    ) -> Settings:
        path, data_uri = parse_data_dir(data_dir)
        duckdb_file = parse_duckdb_path(duckdb_path) if duckdb_path else None
        if path is None:  # on S3: local state lives next to the DuckDB file
            duckdb_file = duckdb_file or Path(DEFAULT_DATA_DIR, DUCKDB_FILE).resolve()
            path = duckdb_file.parent
        if check_writable:
            if duckdb_file is not None and (data_uri or duckdb_file.parent != path):
                ensure_writable_dir(duckdb_file.parent, "SM_ASSETS_DUCKDB_PATH")
            if not data_uri:
                ensure_writable_dir(path)
        valid_regions = validate_regions(list(regions))
        validate_partition(valid_regions)
        home, home_source = resolve_home_region(home_region or None, valid_regions)
        settings = cls(
            data_dir=path,
            data_uri=data_uri,
            duckdb_file=duckdb_file,
            regions=valid_regions,
            home_region=home,
            home_region_source=home_source,
            role_name=validate_role_name(role_name),
            external_id=external_id or None,
            accounts=validate_accounts(list(accounts)) if accounts else None,
            coverage_drop_warn_points=validate_points(coverage_drop_warn_points),
            redact_secrets=parse_bool("SM_ASSETS_REDACT_SECRETS", redact_secrets),
            collect_processes=parse_processes(collect_processes),
            shard_size=parse_shard_size(shard_size),
            stale_after_days=parse_stale_days(stale_after_days),
        )
        if check_writable and data_uri:  # after the cheap checks: this one is a network call
            s3.ensure_writable(data_uri)
        return settings

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        check_writable: bool = True,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Settings from the SM_ASSETS_* variables; `overrides` (`build` keyword arguments, e.g. a Dagster
        component's attributes) win over them, and a None override means "not set here"."""
        env = os.environ if env is None else env
        inputs: dict[str, Any] = dict(
            data_dir=env.get("SM_ASSETS_DATA_DIR") or DEFAULT_DATA_DIR,
            regions=parse_list(env.get("SM_ASSETS_REGIONS")) or list(DEFAULT_REGIONS),
            role_name=env.get("SM_ASSETS_ROLE_NAME") or DEFAULT_ROLE_NAME,
            external_id=env.get("SM_ASSETS_EXTERNAL_ID"),
            accounts=parse_list(env.get("SM_ASSETS_ACCOUNTS")) or None,
            coverage_drop_warn_points=env.get("SM_ASSETS_COVERAGE_DROP_WARN_POINTS")
            or DEFAULT_COVERAGE_DROP_WARN_POINTS,
            redact_secrets=env.get("SM_ASSETS_REDACT_SECRETS") or True,
            collect_processes=env.get("SM_ASSETS_COLLECT_PROCESSES") or "auto",
            duckdb_path=env.get("SM_ASSETS_DUCKDB_PATH") or None,
            shard_size=env.get("SM_ASSETS_SHARD_SIZE") or DEFAULT_SHARD_SIZE,
            stale_after_days=env.get("SM_ASSETS_STALE_AFTER_DAYS") or DEFAULT_STALE_AFTER_DAYS,
            home_region=env.get("SM_ASSETS_HOME_REGION") or None,
        )
        inputs.update({name: value for name, value in (overrides or {}).items() if value is not None})
        return cls.build(**inputs, check_writable=check_writable)

    def build_inputs(self) -> dict[str, Any]:
        """The `build` keyword arguments that give these settings back, as plain values (str, list, number)."""
        return {
            "data_dir": self.data_location,
            "regions": list(self.regions),
            "role_name": self.role_name,
            "external_id": self.external_id,
            "accounts": list(self.accounts) if self.accounts else None,
            "coverage_drop_warn_points": self.coverage_drop_warn_points,
            "redact_secrets": self.redact_secrets,
            "collect_processes": self.collect_processes,
            "duckdb_path": str(self.duckdb_file) if self.duckdb_file else None,
            "shard_size": self.shard_size,
            "stale_after_days": self.stale_after_days,
            "home_region": self.home_region,
        }

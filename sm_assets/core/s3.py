"""S3 access for the lake, through pyarrow's S3 filesystem.

DuckDB's httpfs extension is downloaded on first use, which an offline deployment cannot do, so the lake
on S3 is read and written with pyarrow (the AWS C++ SDK) and handed to DuckDB as Arrow.

Where requests go follows botocore's configuration, exactly as for the boto3 clients: the endpoint from
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` or a profile's ``endpoint_url`` (pyarrow's SDK does not read
these itself), the region from ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / the profile, or, against AWS itself,
the bucket's own region. Credentials come from the AWS SDK's default chain of the deploying environment:
environment variables, the shared config and credentials files (``AWS_PROFILE``), web identity, container
and instance roles; never from the member-account roles the collector assumes.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from sm_assets.core.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

SCHEME = "s3://"
_ANY_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# The environment botocore's endpoint and region resolution reads: the cache key of the resolved filesystem.
_ENV_KEYS = (
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


def is_s3_uri(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SCHEME)


def has_scheme(value: str) -> bool:
    return bool(_ANY_SCHEME.match(value))


def normalize_uri(uri: str, setting: str = "SM_ASSETS_DATA_DIR") -> str:
    """``s3://bucket/a//b/`` -> ``s3://bucket/a/b``; a missing or malformed bucket is a one-line ConfigError."""
    bucket, _, prefix = uri[len(SCHEME) :].partition("/")
    if not _BUCKET.match(bucket):
        raise ConfigError(
            f"{setting} {uri!r} does not name a valid S3 bucket (expected s3://bucket/prefix, "
            "bucket names are 3-63 lowercase letters, digits, dots and hyphens)"
        )
    prefix = "/".join(part for part in prefix.split("/") if part)
    return f"{SCHEME}{bucket}/{prefix}" if prefix else f"{SCHEME}{bucket}"


def fs_path(uri: str) -> str:
    """The filesystem path pyarrow expects: ``bucket/key``."""
    return uri[len(SCHEME) :]


def bucket_of(uri: str) -> str:
    return fs_path(uri).split("/", 1)[0]


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def error_line(exc: BaseException) -> str:
    """First line of an SDK error, without the request id noise."""
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    return re.sub(r"\s*\(Request ID: [^)]*\)", "", text)


@lru_cache(maxsize=4)
def _endpoint_and_region(env: tuple[str | None, ...]) -> tuple[str | None, str | None]:
    del env  # the cache key only: botocore reads the same variables from os.environ
    import botocore.session
    from botocore.configprovider import ConfiguredEndpointProvider

    session = botocore.session.get_session()
    endpoint = None
    try:
        if not session.get_config_variable("ignore_configured_endpoint_urls"):
            endpoint = ConfiguredEndpointProvider(
                full_config=session.full_config, scoped_config=session.get_scoped_config(), client_name="s3"
            ).provide()
        region = os.environ.get("AWS_REGION") or session.get_config_variable("region")
    except Exception as exc:  # a broken profile: the same one-line error every boto3 client would hit
        raise ConfigError(f"AWS configuration for S3 cannot be read: {error_line(exc)}") from None
    return endpoint or None, region or None


def endpoint_and_region() -> tuple[str | None, str | None]:
    """The S3 endpoint override and region botocore would use here (None: AWS's own / unset)."""
    return _endpoint_and_region(tuple(os.environ.get(k) for k in _ENV_KEYS))


@lru_cache(maxsize=32)
def bucket_region(bucket: str) -> str | None:
    import pyarrow.fs as pafs

    try:
        return pafs.resolve_s3_region(bucket)
    except OSError:
        return None  # no route to AWS's global endpoint (a VPC endpoint, say): use the configured region


@lru_cache(maxsize=8)
def _filesystem(endpoint: str | None, region: str | None) -> pafs.S3FileSystem:
    import pyarrow.fs as pafs

    return pafs.S3FileSystem(
        endpoint_override=endpoint,
        region=region,
        # One PutObject on close for small objects instead of create/upload/complete multipart calls.
        allow_delayed_open=True,
        connect_timeout=5,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    )


def filesystem(uri: str) -> pafs.S3FileSystem:
    """A (cached) pyarrow S3 filesystem for the bucket of `uri`."""
    endpoint, region = endpoint_and_region()
    if endpoint is None:
        region = bucket_region(bucket_of(uri)) or region
    return _filesystem(endpoint, region or "us-east-1")


@lru_cache(maxsize=8)
def _client(endpoint: str | None, region: str | None):  # -> botocore S3 client
    import boto3

    return boto3.session.Session().client("s3", region_name=region)


def client(bucket: str):  # -> botocore S3 client
    """A (cached) boto3 S3 client for the bucket: botocore's own chain picks the endpoint and credentials."""
    endpoint, region = endpoint_and_region()
    if endpoint is None:
        region = bucket_region(bucket) or region
    return _client(endpoint, region or "us-east-1")


def describe_target() -> str:
    endpoint, region = endpoint_and_region()
    return f"endpoint {endpoint}" if endpoint else f"region {region or 'auto'}"


WRITE_CHECK_OBJECT = ".sm-assets-write-check"  # overwritten by every check: no s3:DeleteObject needed


def ensure_writable(uri: str, setting: str = "SM_ASSETS_DATA_DIR") -> str:
    """Prove the bucket is reachable and `uri` writable: one small PUT of a fixed key under it."""
    try:
        fs = filesystem(uri)
        with fs.open_output_stream(fs_path(join(uri, WRITE_CHECK_OBJECT))) as out:
            out.write(b"written by sm-assets to check that the lake is writable\n")
    except OSError as exc:
        raise ConfigError(f"{setting} {uri!r} is not writable ({describe_target()}): {error_line(exc)}") from None
    return uri

"""boto3 clients as the collector configures them: adaptive retries, one shared service-model loader; and the
AWS partitions (aws, aws-us-gov, aws-cn, ...) as botocore's bundled endpoint data describes them."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import UnknownRegionError
from botocore.regions import EndpointResolver

from sm_assets.core.payloads import keep_unknown_fields
from sm_assets.core.specs import RESOURCE_SPECS, ResourceSpec

USER_AGENT = "sm-assets/0.1"
CLIENT_LOCK = threading.Lock()  # boto3 sessions are not thread-safe; clients are


def client_config(max_pool_connections: int = 10) -> Config:
    # Adaptive retry mode rate-limits the client itself once AWS starts throttling.
    return Config(
        retries={"mode": "adaptive", "max_attempts": 10},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=max_pool_connections,
        user_agent_extra=USER_AGENT,
    )


_LOADER: Any = None


def shared_loader() -> Any:
    """One botocore data loader for every session: parsed service models are cached on it, so opening
    another account's session is cheap."""
    global _LOADER
    with CLIENT_LOCK:
        if _LOADER is None:
            _LOADER = botocore.session.get_session().get_component("data_loader")
        return _LOADER


def sagemaker_client(session: boto3.Session, region: str, specs: Sequence[ResourceSpec] = RESOURCE_SPECS) -> Any:
    with CLIENT_LOCK:
        client = session.client("sagemaker", region_name=region, config=client_config())
    # botocore's event names match whole dotted parts only, so register each describe operation by name.
    for spec in specs:
        if spec.describe_operation:
            client.meta.events.register(f"after-call.sagemaker.{spec.api_operations[1]}", keep_unknown_fields)
    return client


# ---------------------------------------------------------------------------------------------------------
# Partitions, from botocore's endpoint data (never a hand-kept list: new regions arrive with botocore)


@lru_cache(maxsize=1)
def _endpoints() -> EndpointResolver:
    return EndpointResolver(shared_loader().load_data("endpoints"))


@lru_cache(maxsize=256)
def aws_partition(region: str) -> str:
    """The partition botocore puts `region` in: aws, aws-us-gov, aws-cn, ... (KeyError for none)."""
    try:
        return _endpoints().get_partition_for_region(region)
    except UnknownRegionError:
        raise KeyError(region) from None


@lru_cache(maxsize=64)
def partition_regions(partition: str, service: str) -> tuple[str, ...]:
    """The regions of `partition` where botocore knows an endpoint of `service`."""
    return tuple(botocore.session.get_session().get_available_regions(service, partition_name=partition))


def partitions() -> tuple[str, ...]:
    return tuple(botocore.session.get_session().get_available_partitions())


@lru_cache(maxsize=64)
def organizations_region(region: str) -> str:
    """The region AWS Organizations signs in for `region`'s partition: its one endpoint lives there
    (us-east-1 in aws, us-gov-west-1 in aws-us-gov, cn-northwest-1 in aws-cn). Clients are created in that
    region, so a local AWS_ENDPOINT_URL sees the same credential scope as the real endpoint."""
    endpoint = _endpoints().construct_endpoint("organizations", region) or {}
    return str((endpoint.get("credentialScope") or {}).get("region") or region)

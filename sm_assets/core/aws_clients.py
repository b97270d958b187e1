"""boto3 clients as the collector configures them: adaptive retries, one shared service-model loader."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

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


def aws_partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


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

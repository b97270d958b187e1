"""The member role's credentials: one AssumeRole per account, renewed before they expire."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import boto3
import botocore.session
from botocore.credentials import RefreshableCredentials

from sm_assets.core.aws_clients import client_config, shared_loader
from sm_assets.core.config import Settings
from sm_assets.core.errors import EXPIRED_TOKEN_CODES

log = logging.getLogger(__name__)

ROLE_SESSION_NAME = "sm-assets-inventory"
# Renew assumed-role credentials this long before they expire, so no call goes out with stale ones.
CREDENTIAL_RENEW_MARGIN = timedelta(minutes=5)
MAX_RENEWALS_PER_CALL = 3


def role_arn(account_id: str, settings: Settings) -> str:
    return f"arn:{settings.partition}:iam::{account_id}:role/{settings.role_name}"


def assume_role(sts: Any, account_id: str, settings: Settings) -> dict[str, Any]:
    params: dict[str, Any] = {"RoleArn": role_arn(account_id, settings), "RoleSessionName": ROLE_SESSION_NAME}
    if settings.external_id:
        params["ExternalId"] = settings.external_id
    return sts.assume_role(**params)["Credentials"]


def sts_client(session: boto3.Session, settings: Settings, max_pool_connections: int = 10) -> Any:
    """STS in the home region, at the endpoint botocore resolves there (regional by default): never a member
    region, which the collector's own account may not have enabled."""
    return session.client(
        "sts", region_name=settings.home_region, config=client_config(max_pool_connections=max_pool_connections)
    )


def assume_role_session(
    account_id: str, settings: Settings, base_session: boto3.Session | None = None
) -> boto3.Session:
    """A boto3 session with the member role's credentials (used by the doctor and ad-hoc callers)."""
    creds = assume_role(sts_client(base_session or boto3.Session(), settings), account_id, settings)
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


class _RoleCredentials(RefreshableCredentials):
    """botocore renews these before they expire; `expire` makes it renew them now."""

    def expire(self, access_key: str) -> None:
        with self._refresh_lock:
            if self._access_key == access_key:  # else another thread renewed them already
                self._expiry_time = self._time_fetcher()


class AccountCredentials:
    """The member role's credentials for one account, shared by its region clients: one AssumeRole per
    renewal, renewed before they expire, and at once when AWS rejects them as expired (that call is retried)."""

    def __init__(self, account_id: str, settings: Settings, sts: Any) -> None:
        self.account_id, self.settings, self.sts = account_id, settings, sts
        self.assume_calls = 0
        margin = CREDENTIAL_RENEW_MARGIN.total_seconds()
        self.credentials = _RoleCredentials.create_from_metadata(
            self._assume(), self._assume, "sts-assume-role", advisory_timeout=2 * margin, mandatory_timeout=margin
        )
        botocore_session = botocore.session.get_session()
        botocore_session.register_component("data_loader", shared_loader())
        botocore_session._credentials = self.credentials  # botocore has no public setter for refreshable ones
        self.session = boto3.Session(botocore_session=botocore_session)

    def _assume(self) -> dict[str, str]:
        creds = assume_role(self.sts, self.account_id, self.settings)
        self.assume_calls += 1  # botocore runs refreshes one at a time
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    def renew_on_expiry(self, client: Any) -> None:
        """Retry a call AWS rejected as expired, signed with renewed credentials (botocore re-signs retries)."""

        def remember_key(request: Any, **_: Any) -> None:
            request.context["sm_assets_access_key"] = self.credentials.get_frozen_credentials().access_key

        def renew_and_retry(response: Any, request_dict: dict[str, Any], **_: Any) -> int | None:
            code = response[1].get("Error", {}).get("Code") if response else None
            context = request_dict["context"]
            renewals = context.get("sm_assets_renewals", 0)
            if code not in EXPIRED_TOKEN_CODES or renewals >= MAX_RENEWALS_PER_CALL:
                return None
            context["sm_assets_renewals"] = renewals + 1
            log.info("%s: %s, renewing credentials", self.account_id, code)
            self.credentials.expire(context.get("sm_assets_access_key", ""))
            return 0  # retry at once

        client.meta.events.register("before-sign.sagemaker", remember_key)
        client.meta.events.register("needs-retry.sagemaker", renew_and_retry)

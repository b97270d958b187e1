"""Which accounts to collect: AWS Organizations' ACTIVE accounts, or an explicit list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sm_assets.core.aws_clients import client_config, organizations_region
from sm_assets.core.config import Settings
from sm_assets.core.errors import AccountDiscoveryError, aws_error


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    state: str  # ACTIVE, SUSPENDED, PENDING_CLOSURE, CLOSED (or the legacy Status value)


def account_state(account: dict[str, Any]) -> str:
    # Organizations is retiring Account.Status in favour of Account.State.
    return str(account.get("State") or account.get("Status") or "UNKNOWN").upper()


def list_org_accounts(session: boto3.Session | None = None, region: str | None = None) -> list[Account]:
    """Every account of the organization (all pages), whatever its state. `region`: the Organizations
    region (Settings.organizations_region); by default the one of the session's partition."""
    session = session or boto3.Session()
    region = region or organizations_region(session.region_name or "us-east-1")
    client = session.client("organizations", region_name=region, config=client_config())
    accounts: list[Account] = []
    try:
        for page in client.get_paginator("list_accounts").paginate():
            for raw in page.get("Accounts", []):
                accounts.append(Account(raw["Id"], raw.get("Name", ""), account_state(raw)))
    except ClientError as exc:
        code, _ = aws_error(exc)
        raise AccountDiscoveryError(
            f"AWS Organizations ListAccounts failed ({code}) in {region}: run from the management account or a "
            "delegated administrator, or set SM_ASSETS_ACCOUNTS=111111111111,222222222222 to list accounts "
            "explicitly"
        ) from None
    except BotoCoreError as exc:
        raise AccountDiscoveryError(f"AWS Organizations ListAccounts failed: {exc}") from None
    return accounts


def resolve_account_ids(settings: Settings, session: boto3.Session | None = None) -> list[str]:
    """The accounts to collect: SM_ASSETS_ACCOUNTS if set, else the organization's ACTIVE accounts."""
    if settings.accounts:
        return list(settings.accounts)
    accounts = list_org_accounts(session, region=settings.organizations_region)
    return sorted(a.account_id for a in accounts if a.state == "ACTIVE")

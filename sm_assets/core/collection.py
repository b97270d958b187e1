"""Collect SageMaker resources from member accounts with boto3 (no Dagster here).

Flow per account: AssumeRole once -> for every configured region (in parallel) and every resource
spec: list every page, describe each resource, read every page of its tags. Each (region, resource
type) gets a status record, so a denied or broken region is never mistaken for an empty one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from queue import Queue
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sm_assets.core import statuses
from sm_assets.core.aws_clients import CLIENT_LOCK, sagemaker_client
from sm_assets.core.config import Settings
from sm_assets.core.credentials import AccountCredentials, sts_client
from sm_assets.core.errors import (
    ACCESS_DENIED_CODES,
    NOT_FOUND_CODES,
    REGION_NOT_ENABLED_CODES,
    VALIDATION_CODES,
    aws_error,
)
from sm_assets.core.payloads import payload, to_jsonable
from sm_assets.core.redact import redact_secrets
from sm_assets.core.specs import RESOURCE_SPECS, ResourceSpec

log = logging.getLogger(__name__)

# Up to this many accounts are collected at once (AWS throttles per account and region, so they don't compete).
MAX_ACCOUNTS_IN_FLIGHT = 64


@dataclass
class RawItem:
    resource_type: str
    region: str
    arn: str
    name: str
    describe: dict[str, Any]
    tags: list[dict[str, str]] | None  # None when tags are not collected for this type


@dataclass
class StatusRecord:
    region: str
    resource_type: str
    status: str  # one of statuses.STATUSES
    error_code: str | None = None
    message: str | None = None
    item_count: int = 0
    api_calls: int = 0
    api_calls_saved: int = 0  # describes skipped thanks to the previous snapshot (not stored)


@dataclass
class AccountSnapshot:
    account_id: str
    collected_at: datetime
    regions: tuple[str, ...]
    items: list[RawItem] = field(default_factory=list)
    statuses: list[StatusRecord] = field(default_factory=list)
    assume_role_calls: int = 0

    @property
    def snapshot_date(self) -> date:
        return self.collected_at.date()

    def items_of(self, resource_type: str) -> list[RawItem]:
        return [i for i in self.items if i.resource_type == resource_type]

    def statuses_of(self, resource_type: str) -> list[StatusRecord]:
        return [s for s in self.statuses if s.resource_type == resource_type]

    @property
    def denied(self) -> bool:
        return any(s.status == statuses.ACCESS_DENIED for s in self.statuses)

    @property
    def errors(self) -> list[StatusRecord]:
        return [s for s in self.statuses if s.status == statuses.ERROR]

    @property
    def api_calls(self) -> int:
        return sum(s.api_calls for s in self.statuses) + self.assume_role_calls

    @property
    def api_calls_saved(self) -> int:
        return sum(s.api_calls_saved for s in self.statuses)


def failed_snapshot(
    account_id: str,
    settings: Settings,
    specs: Sequence[ResourceSpec],
    status: str,
    code: str,
    message: str,
) -> AccountSnapshot:
    """An account none of whose regions could be collected: one status record per (region, type)."""
    snapshot = AccountSnapshot(account_id=account_id, collected_at=datetime.now(UTC), regions=settings.regions)
    snapshot.statuses = [
        StatusRecord(region, spec.resource_type, status, code, message) for region in settings.regions for spec in specs
    ]
    return snapshot


def _error_details(exc: Exception) -> tuple[str, str, str]:
    """(status, code, one-line message) for an exception raised while collecting."""
    code, message = aws_error(exc)
    if isinstance(exc, ClientError) and code in ACCESS_DENIED_CODES:
        return statuses.ACCESS_DENIED, code, message
    return statuses.ERROR, code, message


class _CallCounter:
    """Counts API calls made by one client (retries included), via botocore's event hooks."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, **_: Any) -> None:
        with self._lock:
            self.count += 1


def collect_resource(
    client: Any,
    spec: ResourceSpec,
    region: str,
    redact: bool = True,
    previous: Mapping[str, dict[str, Any]] | None = None,
) -> tuple[list[RawItem], StatusRecord]:
    """List, describe and tag every resource of one type in one region.

    Immutable resources found in `previous` (same ARN and CreationTime) reuse the stored describe output;
    their tags are still read, because tags can change.
    """
    counter = _CallCounter()
    saved = 0
    client.meta.events.register("before-send.sagemaker.*", counter)
    items: list[RawItem] = []
    skipped: list[str] = []  # resources a describe or ListTags refused with ValidationException
    try:
        tags_denied: str | None = None
        for page in client.get_paginator(spec.list_operation).paginate(**spec.list_params):
            for summary in page.get(spec.list_result_key, []):
                name = summary[spec.list_name_field]
                known = (previous or {}).get(summary.get(spec.list_arn_field, ""))
                if (
                    spec.immutable
                    and known is not None
                    and known.get("CreationTime") == to_jsonable(summary.get("CreationTime"))
                ):
                    body = known
                    saved += 1
                elif spec.describe_operation:
                    try:
                        described = getattr(client, spec.describe_operation)(**{spec.describe_param: name})
                    except ClientError as exc:
                        if _skip(exc, spec, name, "describe", skipped):
                            continue
                        raise
                    body = payload(described)
                else:
                    body = payload(summary)
                if redact:
                    body = redact_secrets(body)
                tags: list[dict[str, str]] | None = None
                arn = body.get(spec.arn_field) or summary[spec.list_arn_field]
                if spec.with_tags and tags_denied is None:
                    try:
                        tags = [
                            {"Key": t["Key"], "Value": t.get("Value", "")}
                            for tag_page in client.get_paginator("list_tags").paginate(ResourceArn=arn)
                            for t in tag_page.get("Tags", [])
                        ]
                    except ClientError as exc:
                        code = aws_error(exc)[0]
                        if code in ACCESS_DENIED_CODES - REGION_NOT_ENABLED_CODES:
                            # Keep the resource; say loudly that its tags could not be read.
                            tags_denied = code
                        elif _skip(exc, spec, name, "ListTags", skipped):
                            continue
                        else:
                            raise
                items.append(RawItem(spec.resource_type, region, arn, name, body, tags))
        if tags_denied:
            status = StatusRecord(
                region,
                spec.resource_type,
                statuses.TAGS_DENIED,
                tags_denied,
                f"ListTags denied ({tags_denied}); resources collected, tags not",
            )
        else:
            status = StatusRecord(region, spec.resource_type, statuses.OK)
        if skipped:
            # Recorded on the status row (the region is still collected): what was left out, and why.
            status.error_code = status.error_code or "ValidationException"
            status.message = "; ".join(filter(None, [status.message, f"skipped {len(skipped)}: " + "; ".join(skipped)]))
    except Exception as exc:  # noqa: BLE001 - one bad region/payload must not hide the others
        state, code, message = _error_details(exc)
        if code in REGION_NOT_ENABLED_CODES:
            state = statuses.REGION_DISABLED
            message = f"region {region} is not enabled for this account (opt-in region): {message}"
        log.debug("%s %s in %s: %s %s", spec.resource_type, state, region, code, message)
        status = StatusRecord(region, spec.resource_type, state, code, message)
        items = []  # a partial listing must not pass for the whole truth
    finally:
        client.meta.events.unregister("before-send.sagemaker.*", counter)
    status.item_count = len(items)
    status.api_calls = counter.count
    status.api_calls_saved = saved
    return items, status


def _skip(exc: ClientError, spec: ResourceSpec, name: str, call: str, skipped: list[str]) -> bool:
    """True when the resource is to be left out: it vanished since the list (not found: an info line), or
    SageMaker refused the call with ValidationException (a warning, and a note on the status row; SageMaker
    also answers that way for an endpoint or config deleted since the list)."""
    code, message = aws_error(exc)
    if code in NOT_FOUND_CODES:
        log.info("%s %s vanished before %s; skipped", spec.resource_type, name, call)
        return True
    if code in VALIDATION_CODES:
        log.warning("%s %s: %s answered %s (%s); skipped", spec.resource_type, name, call, code, message)
        skipped.append(f"{name} ({call}: {code}: {message})"[:300])
        return True
    return False


def _collect_region(
    creds: AccountCredentials,
    region: str,
    specs: Sequence[ResourceSpec],
    settings: Settings,
    previous: Mapping[str, dict[str, Any]] | None,
) -> list[tuple[list[RawItem], StatusRecord]]:
    client = sagemaker_client(creds.session, region, specs)
    creds.renew_on_expiry(client)
    return [collect_resource(client, spec, region, settings.redact_secrets, previous) for spec in specs]


def collect_account(
    account_id: str,
    settings: Settings,
    specs: Sequence[ResourceSpec] = RESOURCE_SPECS,
    *,
    base_session: boto3.Session | None = None,
    sts_client: Any = None,
    previous: Mapping[str, dict[str, Any]] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AccountSnapshot:
    """Collect every spec in every configured region of one account. Never raises for AWS faults.

    `previous` maps ARN -> stored describe output of an earlier snapshot: immutable resources whose
    ARN and CreationTime still match are not described again.
    """
    snapshot = AccountSnapshot(account_id=account_id, collected_at=now(), regions=settings.regions)
    if sts_client is None:
        with CLIENT_LOCK:
            sts_client = _sts(base_session or boto3.Session(), settings)
    try:
        creds = AccountCredentials(account_id, settings, sts_client)
    except (ClientError, BotoCoreError) as exc:
        state, code, message = _error_details(exc)
        log.info("AssumeRole into %s failed: %s %s", account_id, code, message)
        snapshot.statuses = [
            StatusRecord(region, spec.resource_type, state, code, f"AssumeRole: {message}", api_calls=0)
            for region in settings.regions
            for spec in specs
        ]
        return snapshot

    # One worker per region: calls to one (account, region) stay sequential, under its throttle.
    with ThreadPoolExecutor(max_workers=min(8, len(settings.regions))) as pool:
        for results in pool.map(lambda r: _collect_region(creds, r, specs, settings, previous), settings.regions):
            for items, status in results:
                snapshot.items.extend(items)
                snapshot.statuses.append(status)
    snapshot.assume_role_calls = creds.assume_calls
    return snapshot


def _sts(session: boto3.Session, settings: Settings, max_pool_connections: int = 10) -> Any:
    return sts_client(session, settings, max_pool_connections)


def collect_accounts(
    account_ids: Sequence[str],
    settings: Settings,
    specs: Sequence[ResourceSpec] = RESOURCE_SPECS,
    *,
    previous: Mapping[str, Mapping[str, dict[str, Any]]] | None = None,
    max_accounts_in_parallel: int = MAX_ACCOUNTS_IN_FLIGHT,
    on_done: Callable[[AccountSnapshot], None] | None = None,
    processes: int | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, AccountSnapshot]:
    """Collect many accounts concurrently; each account still gets its own region workers, and
    `on_done` reports each account as it completes.

    Threads do the waiting (the work is mostly network wait; boto3 clients are thread-safe). But
    botocore spends ~3 ms of CPU per call under the GIL, so one process tops out at one core: with
    `processes` > 1 (default `settings.collect_processes`) the accounts are sharded over that many
    worker processes (`process_shards`), each running the threaded collector on its share.
    Setting `cancel` stops the collection early: accounts not started are left out of the result.
    """
    from sm_assets.core import process_shards

    processes = settings.collect_processes if processes is None else processes
    # A worker process costs ~0.5 s to start; below a few accounts per worker it doesn't pay.
    processes = max(1, min(processes, len(account_ids) // process_shards.MIN_ACCOUNTS_PER_PROCESS))
    if processes > 1:
        return process_shards.collect_in_processes(
            account_ids, settings, specs, previous, max_accounts_in_parallel, on_done, processes, cancel
        )
    with CLIENT_LOCK:
        sts = _sts(boto3.Session(), settings, max_pool_connections=max_accounts_in_parallel)
    results: dict[str, AccountSnapshot] = {}

    def one(account_id: str) -> AccountSnapshot | None:
        if cancel is not None and cancel.is_set():
            return None
        snap = collect_account(account_id, settings, specs, sts_client=sts, previous=(previous or {}).get(account_id))
        if on_done:
            on_done(snap)
        return snap

    workers = max(1, min(max_accounts_in_parallel, len(account_ids)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for snap in pool.map(one, account_ids):
            if snap is not None:
                results[snap.account_id] = snap
    return results


def stream_accounts(
    account_ids: Sequence[str],
    settings: Settings,
    specs: Sequence[ResourceSpec] = RESOURCE_SPECS,
    *,
    previous: Mapping[str, Mapping[str, dict[str, Any]]] | None = None,
    max_accounts_in_parallel: int = MAX_ACCOUNTS_IN_FLIGHT,
    processes: int | None = None,
) -> Iterator[AccountSnapshot]:
    """`collect_accounts`, yielding each account's snapshot as soon as it is collected, so the caller
    stores and drops it while the others are still in flight (memory follows the accounts in flight).

    The collection runs in a background thread; closing the iterator early stops it.
    """
    inbox: Queue[AccountSnapshot | BaseException | None] = Queue()
    cancel = threading.Event()

    def run() -> None:
        try:
            collect_accounts(
                account_ids,
                settings,
                specs,
                previous=previous,
                max_accounts_in_parallel=max_accounts_in_parallel,
                on_done=inbox.put,
                processes=processes,
                cancel=cancel,
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            inbox.put(exc)
        inbox.put(None)

    thread = threading.Thread(target=run, name="sm-assets-collect", daemon=True)
    thread.start()
    try:
        while (item := inbox.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set()
        thread.join()

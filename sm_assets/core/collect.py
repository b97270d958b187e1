"""Collect SageMaker resources from member accounts with boto3 (no Dagster here).

Flow per account: AssumeRole once -> for every configured region (in parallel) and every resource
spec: list every page, describe each resource, read every page of its tags. Each (region, resource
type) gets a status record, so a denied or broken region is never mistaken for an empty one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import site
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from queue import Queue
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from sm_assets.core.config import Settings
from sm_assets.core.redact import redact_secrets
from sm_assets.core.specs import RESOURCE_SPECS, ResourceSpec

log = logging.getLogger(__name__)

ROLE_SESSION_NAME = "sm-assets-inventory"
USER_AGENT = "sm-assets/0.1"

# Codes that mean "we are not allowed to look", as opposed to a fault worth retrying or fixing.
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        # An opt-in region that is not enabled for the account rejects the (valid) credentials.
        "UnrecognizedClientException",
        "InvalidClientTokenId",
    }
)
NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException", "ValidationException"})
# Valid role credentials rejected by one region: the account has not enabled that (opt-in) region.
REGION_NOT_ENABLED_CODES = frozenset({"UnrecognizedClientException", "InvalidClientTokenId"})


class AccountDiscoveryError(RuntimeError):
    """Organizations could not list the accounts; the message says what to do instead."""


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


# ---------------------------------------------------------------------------------------------
# Accounts


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    state: str  # ACTIVE, SUSPENDED, PENDING_CLOSURE, CLOSED (or the legacy Status value)


def account_state(account: dict[str, Any]) -> str:
    # Organizations is retiring Account.Status in favour of Account.State.
    return str(account.get("State") or account.get("Status") or "UNKNOWN").upper()


def list_org_accounts(session: boto3.Session | None = None) -> list[Account]:
    """Every account of the organization (all pages), whatever its state."""
    session = session or boto3.Session()
    client = session.client("organizations", region_name="us-east-1", config=client_config())
    accounts: list[Account] = []
    try:
        for page in client.get_paginator("list_accounts").paginate():
            for raw in page.get("Accounts", []):
                accounts.append(Account(raw["Id"], raw.get("Name", ""), account_state(raw)))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise AccountDiscoveryError(
            f"AWS Organizations ListAccounts failed ({code}): run from the management account or a "
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
    return sorted(a.account_id for a in list_org_accounts(session) if a.state == "ACTIVE")


# ---------------------------------------------------------------------------------------------
# Raw payload handling


def to_jsonable(value: Any) -> Any:
    """botocore values -> JSON values; datetimes become ISO-8601 strings in UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def merge_unknown_fields(parsed: Any, raw: Any) -> None:
    """Copy into `parsed` every key of the raw JSON body that botocore's model dropped."""
    if isinstance(parsed, dict) and isinstance(raw, dict):
        for key, raw_value in raw.items():
            if key not in parsed:
                parsed[key] = raw_value
            else:
                merge_unknown_fields(parsed[key], raw_value)
    elif isinstance(parsed, list) and isinstance(raw, list) and len(parsed) == len(raw):
        for parsed_item, raw_item in zip(parsed, raw, strict=True):
            merge_unknown_fields(parsed_item, raw_item)


def _keep_unknown_fields(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
    # botocore parses against its bundled model and drops fields AWS added later; the raw body has them.
    if http_response is None or http_response.status_code >= 300:
        return
    try:
        raw = json.loads(http_response.content or b"{}")
    except ValueError:
        return
    merge_unknown_fields(parsed, raw)


def payload(response: dict[str, Any]) -> dict[str, Any]:
    """A describe response without botocore's bookkeeping, as JSON values."""
    return to_jsonable({k: v for k, v in response.items() if k != "ResponseMetadata"})


# ---------------------------------------------------------------------------------------------
# Collection results


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
    status: str  # ok | access_denied | error
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
        return any(s.status == "access_denied" for s in self.statuses)

    @property
    def errors(self) -> list[StatusRecord]:
        return [s for s in self.statuses if s.status == "error"]


def _error_details(exc: Exception) -> tuple[str, str, str]:
    """(status, code, one-line message) for an exception raised while collecting."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "ClientError"))
        message = str(err.get("Message", exc)).splitlines()[0] if str(err.get("Message", "")) else str(exc)
        status = "access_denied" if code in ACCESS_DENIED_CODES else "error"
        return status, code, message
    return "error", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


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
                        if exc.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
                            log.info("%s %s vanished before describe; skipped", spec.resource_type, name)
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
                        code = exc.response.get("Error", {}).get("Code")
                        if code in NOT_FOUND_CODES:
                            continue
                        if code not in ACCESS_DENIED_CODES:
                            raise
                        # Keep the resource; say loudly that its tags could not be read.
                        tags_denied = f"ListTags denied ({code}); tags not collected"
                items.append(RawItem(spec.resource_type, region, arn, name, body, tags))
        if tags_denied:
            status = StatusRecord(region, spec.resource_type, "access_denied", "ListTagsDenied", tags_denied)
        else:
            status = StatusRecord(region, spec.resource_type, "ok")
    except Exception as exc:  # noqa: BLE001 - one bad region/payload must not hide the others
        state, code, message = _error_details(exc)
        if code in REGION_NOT_ENABLED_CODES:
            message = f"region {region} is probably not enabled for this account (opt-in region): {message}"
        log.debug("%s %s in %s: %s %s", spec.resource_type, state, region, code, message)
        status = StatusRecord(region, spec.resource_type, state, code, message)
        items = []  # a partial listing must not pass for the whole truth
    finally:
        client.meta.events.unregister("before-send.sagemaker.*", counter)
    status.item_count = len(items)
    status.api_calls = counter.count
    status.api_calls_saved = saved
    return items, status


EXPIRED_TOKEN_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
# Renew assumed-role credentials this long before they expire, so no call goes out with stale ones.
CREDENTIAL_RENEW_MARGIN = timedelta(minutes=5)
MAX_RENEWALS_PER_CALL = 3
_CLIENT_LOCK = threading.Lock()  # boto3 sessions are not thread-safe; clients are


def role_arn(account_id: str, settings: Settings) -> str:
    return f"arn:{aws_partition(settings.regions[0])}:iam::{account_id}:role/{settings.role_name}"


def assume_role(sts: Any, account_id: str, settings: Settings) -> dict[str, Any]:
    params: dict[str, Any] = {"RoleArn": role_arn(account_id, settings), "RoleSessionName": ROLE_SESSION_NAME}
    if settings.external_id:
        params["ExternalId"] = settings.external_id
    return sts.assume_role(**params)["Credentials"]


def assume_role_session(
    account_id: str, settings: Settings, base_session: boto3.Session | None = None
) -> boto3.Session:
    """A boto3 session with the member role's credentials (used by the doctor and ad-hoc callers)."""
    base_session = base_session or boto3.Session()
    sts = base_session.client("sts", region_name=settings.regions[0], config=client_config())
    creds = assume_role(sts, account_id, settings)
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def sagemaker_client(session: boto3.Session, region: str, specs: Sequence[ResourceSpec] = RESOURCE_SPECS) -> Any:
    with _CLIENT_LOCK:
        client = session.client("sagemaker", region_name=region, config=client_config())
    # botocore's event names match whole dotted parts only, so register each describe operation by name.
    for spec in specs:
        if spec.describe_operation:
            client.meta.events.register(f"after-call.sagemaker.{spec.api_operations[1]}", _keep_unknown_fields)
    return client


_LOADER: Any = None


def _shared_loader() -> Any:
    global _LOADER
    with _CLIENT_LOCK:
        if _LOADER is None:
            _LOADER = botocore.session.get_session().get_component("data_loader")
        return _LOADER


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
        # Share one loader: parsed service models are cached on it, so each account's session is cheap.
        botocore_session.register_component("data_loader", _shared_loader())
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
        base_session = base_session or boto3.Session()
        with _CLIENT_LOCK:
            sts_client = base_session.client("sts", region_name=settings.regions[0], config=client_config())
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


def collect_accounts(
    account_ids: Sequence[str],
    settings: Settings,
    specs: Sequence[ResourceSpec] = RESOURCE_SPECS,
    *,
    previous: Mapping[str, Mapping[str, dict[str, Any]]] | None = None,
    max_accounts_in_parallel: int = 64,
    on_done: Callable[[AccountSnapshot], None] | None = None,
    processes: int | None = None,
) -> dict[str, AccountSnapshot]:
    """Collect many accounts concurrently; each account still gets its own region workers, and
    `on_done` reports each account as it completes.

    Threads do the waiting (the work is mostly network wait; boto3 clients are thread-safe). But
    botocore spends ~3 ms of CPU per call under the GIL, so one process tops out at one core: with
    `processes` > 1 (default `settings.collect_processes`) the accounts are sharded over that many
    worker processes, each running the threaded collector on its share.
    """
    processes = settings.collect_processes if processes is None else processes
    # A worker process costs ~0.5 s to start; below a few accounts per worker it doesn't pay.
    processes = max(1, min(processes, len(account_ids) // MIN_ACCOUNTS_PER_PROCESS))
    if processes > 1:
        return _collect_in_processes(
            account_ids, settings, specs, previous, max_accounts_in_parallel, on_done, processes
        )
    base_session = boto3.Session()
    sts_client = base_session.client(
        "sts", region_name=settings.regions[0], config=client_config(max_pool_connections=max_accounts_in_parallel)
    )
    results: dict[str, AccountSnapshot] = {}

    def one(account_id: str) -> AccountSnapshot:
        snap = collect_account(
            account_id, settings, specs, sts_client=sts_client, previous=(previous or {}).get(account_id)
        )
        if on_done:
            on_done(snap)
        return snap

    workers = max(1, min(max_accounts_in_parallel, len(account_ids)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for snap in pool.map(one, account_ids):
            results[snap.account_id] = snap
    return results


MIN_ACCOUNTS_PER_PROCESS = 4


def _worker_env() -> dict[str, str]:
    """The worker imports this same sm_assets: its root goes first on PYTHONPATH (the worker runs with
    -P, so the current directory cannot shadow it), unless it is a site-packages directory, which the
    worker's interpreter finds anyway and which must not move ahead of the standard library."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    site_dirs = {str(Path(d).resolve()) for d in [*site.getsitepackages(), site.getusersitepackages()]}
    if package_root not in site_dirs:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    return env


def _collect_in_processes(
    account_ids: Sequence[str],
    settings: Settings,
    specs: Sequence[ResourceSpec],
    previous: Mapping[str, Mapping[str, dict[str, Any]]] | None,
    max_accounts_in_parallel: int,
    on_done: Callable[[AccountSnapshot], None] | None,
    processes: int,
) -> dict[str, AccountSnapshot]:
    """Shard the accounts over `python -m sm_assets.core.collect_worker` processes.

    Plain subprocesses, not multiprocessing: spawn would re-import the caller's __main__ (for a Dagster
    process, the whole dagster CLI) and fork is unsafe in a process with threads. Each worker reads its
    job as one pickle on stdin and sends one pickled AccountSnapshot per finished account. Its stdin
    stays open: when this process dies or gives up, the worker sees EOF and exits.
    """
    shards = [list(account_ids[i::processes]) for i in range(processes)]
    per_process = max(1, -(-max_accounts_in_parallel // processes))
    env = _worker_env()
    inbox: Queue[tuple[int, str, Any]] = Queue()
    workers: list[subprocess.Popen[bytes]] = []
    worker_errors: dict[int, str] = {}
    results: dict[str, AccountSnapshot] = {}

    def read_results(index: int, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        try:
            while True:
                kind, payload = pickle.load(proc.stdout)
                inbox.put((index, kind, payload))
        except EOFError:
            pass
        except Exception as exc:  # noqa: BLE001 - a garbled stream counts as a dead worker
            inbox.put((index, "error", f"collector worker stream broken: {type(exc).__name__}: {exc}"))
        inbox.put((index, "exit", None))

    def stop_all(grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        for proc in workers:
            with contextlib.suppress(OSError):
                if proc.stdin:
                    proc.stdin.close()  # EOF: the worker's watchdog exits
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    finished_normally = False
    try:
        for index, shard in enumerate(shards):
            proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "sm_assets.core.collect_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            workers.append(proc)
            threading.Thread(target=read_results, args=(index, proc), daemon=True).start()
            job = (shard, settings, tuple(specs), {a: (previous or {}).get(a, {}) for a in shard}, per_process)
            assert proc.stdin is not None
            try:
                pickle.dump(job, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                proc.stdin.flush()
            except OSError as exc:  # it died before reading its job (import error, OOM at start, ...)
                worker_errors.setdefault(index, f"collector worker did not take its job: {exc}")
        exited = 0
        while exited < len(workers) and len(results) < len(account_ids):
            index, kind, payload = inbox.get()
            if kind == "snapshot":
                results[payload.account_id] = payload
                if on_done:
                    on_done(payload)
            elif kind == "error":
                worker_errors.setdefault(index, payload)
            else:
                exited += 1
        finished_normally = True
    finally:
        if not finished_normally:  # interrupted or failed: stop the workers' AWS calls now
            for proc in workers:
                with contextlib.suppress(OSError):
                    proc.terminate()
        stop_all(grace_s=10 if finished_normally else 2)
    # A worker that died takes down only its unfinished accounts: they are recorded as errors.
    for index, shard in enumerate(shards):
        missing = [a for a in shard if a not in results]
        if not missing:
            continue
        returncode = workers[index].returncode if index < len(workers) else None
        reason = worker_errors.get(index) or f"collector worker process exited with code {returncode}"
        for account_id in missing:
            snap = AccountSnapshot(account_id=account_id, collected_at=datetime.now(UTC), regions=settings.regions)
            snap.statuses = [
                StatusRecord(region, spec.resource_type, "error", "CollectorWorkerFailed", reason[:500])
                for region in settings.regions
                for spec in specs
            ]
            results[account_id] = snap
            if on_done:
                on_done(snap)
    return {a: results[a] for a in account_ids}


def run_worker(job_stream: Any, out_stream: Any) -> None:
    """The worker side of `_collect_in_processes` (see collect_worker.py)."""
    account_ids, settings, specs, previous, max_accounts_in_parallel = pickle.load(job_stream)
    lock = threading.Lock()

    def watchdog() -> None:
        # The parent keeps our stdin open while it wants results: EOF means it died or gave up.
        job_stream.read()
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True, name="parent-watchdog").start()

    def send(message: tuple[str, Any]) -> None:
        with lock:
            pickle.dump(message, out_stream, protocol=pickle.HIGHEST_PROTOCOL)
            out_stream.flush()

    try:
        collect_accounts(
            account_ids,
            settings,
            specs,
            previous=previous,
            max_accounts_in_parallel=max_accounts_in_parallel,
            on_done=lambda snap: send(("snapshot", snap)),
            processes=1,
        )
    except Exception as exc:  # noqa: BLE001 - tell the parent why, then exit non-zero
        send(("error", f"{type(exc).__name__}: {exc}"))
        raise

"""A fault-injecting HTTP proxy for the fake AWS: the failures of a real organization, on the real wire.

Put it between boto3 and ``fake_aws_server()`` (``AWS_ENDPOINT_URL=proxy.url``). Each request is identified
like AWS would: the operation from ``X-Amz-Target`` (JSON protocols) or the ``Action`` form field (STS's
query protocol), service and region from the SigV4 credential scope, and the account from the access key
(looked up in this process's moto backends, so only for an in-process moto). A request either gets a fault,
in the service's own error format, or is forwarded unchanged. Listens on 127.0.0.1 only.

Probabilistic faults are decided by hashing (seed, rule, request content, how often that exact request was
seen), so a run injects the same faults whatever order the collector's threads send requests in.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import re
import socket
import struct
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

KINDS = (
    "throttle",
    "http_5xx",
    "reset",
    "timeout",
    "access_denied",
    "expired_token",
    "region_not_enabled",
    "organizations_denied",
)
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"})
_CORAL = "com.amazon.coral.service#"  # AWS's framework-level errors carry this prefix; botocore strips it


class Call(NamedTuple):
    service: str  # signing name from the credential scope: sagemaker, sts, organizations
    operation: str  # ListEndpoints, AssumeRole, ...
    account: str  # the account moto attributes the access key to
    region: str


@dataclass(frozen=True)
class Fault:
    """Inject ``kind`` into matching calls. Empty filters match everything.

    A rule fires with ``probability``, at most ``first`` times when set (``first=3``: the first three
    matching calls). ``expired_token`` instead fires on every call an access key makes after its first
    ``after`` matching calls, until the caller gets new credentials.
    """

    kind: str
    probability: float = 1.0
    first: int | None = None
    service: str | None = "sagemaker"
    operations: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    status: int = 503  # http_5xx: 500 (InternalFailure) or 503 (ServiceUnavailable)
    after: int = 0  # expired_token: calls each access key may make before it expires

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.kind == "http_5xx" and self.status not in (500, 503):
            raise ValueError("http_5xx status must be 500 or 503")

    def matches(self, call: Call) -> bool:
        return (
            (self.service is None or call.service == self.service)
            and (not self.operations or call.operation in self.operations)
            and (not self.regions or call.region in self.regions)
            and (not self.accounts or call.account in self.accounts)
        )


@dataclass(frozen=True)
class FaultRules:
    faults: tuple[Fault, ...] = ()
    timeout_sleep: float = 2.0  # `timeout` holds the request this long (longer than the client's read timeout)


# Constructors. `where` filters: service= (default "sagemaker"; None: any), operations=, regions=, accounts=
# (each a name or an iterable of names).
Where = str | Iterable[str] | None


def _rule(kind: str, probability: float, first: int | None, where: dict[str, Where], **extra: int) -> Fault:
    service = where.pop("service", "sagemaker")
    sets = {k: frozenset([v] if isinstance(v, str) else v) for k, v in where.items() if v is not None}
    return Fault(kind, probability, first, service, **sets, **extra)  # type: ignore[arg-type]


def throttle(probability: float = 1.0, *, first: int | None = None, **where: Where) -> Fault:
    return _rule("throttle", probability, first, where)


def http_5xx(probability: float = 1.0, *, status: int = 503, first: int | None = None, **where: Where) -> Fault:
    return _rule("http_5xx", probability, first, where, status=status)


def reset(probability: float = 1.0, *, first: int | None = None, **where: Where) -> Fault:
    return _rule("reset", probability, first, where)


def timeout(probability: float = 1.0, *, first: int | None = None, **where: Where) -> Fault:
    return _rule("timeout", probability, first, where)


def access_denied(*operations: str, **where: Where) -> Fault:
    """E.g. ``access_denied("ListTags", accounts=[...])``: an SCP denying one action."""
    return _rule("access_denied", 1.0, None, {**where, "operations": operations})


def expired_token(after: int, **where: Where) -> Fault:
    return _rule("expired_token", 1.0, None, where, after=after)


def region_not_enabled(region: str, **where: Where) -> Fault:
    return _rule("region_not_enabled", 1.0, None, {**where, "regions": region})


def organizations_denied() -> Fault:
    return Fault("organizations_denied", service="organizations", operations=frozenset({"ListAccounts"}))


# (HTTP status, error code, message) as AWS sends them; {op}/{who} are filled in per call.
_ERRORS: dict[str, tuple[int, str, str]] = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "http_500": (500, "InternalFailure", "We encountered an internal error. Please try again."),
    "http_503": (503, "ServiceUnavailable", "Service is unavailable. Please try again later."),
    "access_denied": (
        400,
        "AccessDeniedException",
        "User: {who} is not authorized to perform: {service}:{op} with an explicit deny in a service control policy",
    ),
    "expired_token": (400, _CORAL + "ExpiredTokenException", "The security token included in the request is expired"),
    "region_not_enabled": (
        400,
        _CORAL + "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    ),
    "organizations_denied": (400, "AccessDeniedException", "You don't have permissions to access this resource."),
}
# STS speaks the query protocol: XML errors, and its own codes for some of them.
_QUERY_CODES = {
    "ThrottlingException": (400, "Throttling"),
    "AccessDeniedException": (403, "AccessDenied"),
    "ExpiredTokenException": (400, "ExpiredToken"),
    "UnrecognizedClientException": (403, "InvalidClientTokenId"),
}


def _account_of(access_key: str) -> str:
    from moto.iam.models import get_account_id_from  # moto's own rule: key -> account, else its default account

    return get_account_id_from(access_key)


def _principal(access_key: str, account: str) -> str:
    from moto.sts.models import sts_backends

    for backend in list(sts_backends[account].values()):
        role = backend.get_assumed_role_from_access_key(access_key)
        if role is not None:
            return role.arn
    return f"arn:aws:iam::{account}:user/{access_key}"


class FaultProxy:
    """The running proxy: ``url``, plus what it saw (``requests``, ``calls``) and did (``injected`` by kind)."""

    def __init__(
        self, upstream_url: str, rules: FaultRules, seed: int, before_forward: Callable[[Call, bytes], None] | None
    ) -> None:
        upstream = urlsplit(upstream_url)
        if upstream.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError("the fault proxy only forwards to a local fake AWS")
        self.upstream = (upstream.hostname, upstream.port or 80)
        self.rules, self.seed, self.before_forward = rules, seed, before_forward
        self.url = ""
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._fired: Counter[int] = Counter()  # rule index -> times fired
        self._seen: Counter[tuple[object, ...]] = Counter()  # identical-request counts, for the dice
        self._key_calls: Counter[tuple[int, str]] = Counter()  # (rule, access key) -> matching calls
        self.closing = threading.Event()  # set on exit: `timeout` faults stop holding their requests

    def calls_of(self, service: str, operation: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.service == service and operation in (None, c.operation)]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        call, access_key, protocol = self._identify(handler, body)
        with self._lock:
            self.requests += 1
            self.calls.append(call)
            fault = self._choose(call, access_key, body)
            if fault is not None:
                self.injected[fault.kind] += 1
        if fault is None:
            if self.before_forward is not None:
                self.before_forward(call, body)
            self._forward(handler, body)
        elif fault.kind in ("reset", "timeout"):
            if fault.kind == "timeout":
                self.closing.wait(self.rules.timeout_sleep)
            self._drop(handler)
        else:
            key = f"http_{fault.status}" if fault.kind == "http_5xx" else fault.kind
            status, code, message = _ERRORS[key]
            message = message.format(who=_principal(access_key, call.account), service=call.service, op=call.operation)
            self._send_error(handler, protocol, status, code, message)

    @staticmethod
    def _identify(handler: BaseHTTPRequestHandler, body: bytes) -> tuple[Call, str, str]:
        scope = _SCOPE.search(handler.headers.get("Authorization", ""))
        access_key, region, service = scope.groups() if scope else ("", "", "")
        target = handler.headers.get("X-Amz-Target")
        if target:
            return Call(service, target.rpartition(".")[2], _account_of(access_key), region), access_key, "json"
        form = parse_qs(urlsplit(handler.path).query)
        if "form-urlencoded" in handler.headers.get("Content-Type", ""):
            form.update(parse_qs(body.decode("utf-8", "replace")))
        operation = form.get("Action", [""])[0]
        return Call(service, operation, _account_of(access_key), region), access_key, "query"

    def _choose(self, call: Call, access_key: str, body: bytes) -> Fault | None:
        # Caller holds the lock.
        digest = hashlib.sha256(body).hexdigest()
        for index, fault in enumerate(self.rules.faults):
            if not fault.matches(call):
                continue
            if fault.kind == "expired_token":
                self._key_calls[index, access_key] += 1
                if self._key_calls[index, access_key] > fault.after:
                    return fault
                continue
            if fault.first is not None and self._fired[index] >= fault.first:
                continue
            if fault.probability < 1.0:
                seen_key = (index, call, digest)
                self._seen[seen_key] += 1
                roll = hashlib.sha256(f"{self.seed}|{seen_key}|{self._seen[seen_key]}".encode()).digest()
                if int.from_bytes(roll[:8], "big") / 2**64 >= fault.probability:
                    continue
            self._fired[index] += 1
            return fault
        return None

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
            for name, value in handler.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            data = response.read()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        finally:
            conn.close()
        self._reply(handler, response.status, headers, data)

    @staticmethod
    def _send_error(handler: BaseHTTPRequestHandler, protocol: str, status: int, code: str, message: str) -> None:
        request_id = str(uuid.uuid4())
        if protocol == "json":
            body = json.dumps({"__type": code, "message": message}).encode()
            headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)]
        else:
            status, code = _QUERY_CODES.get(code.rpartition("#")[2], (status, code.rpartition("#")[2]))
            kind = "Receiver" if status >= 500 else "Sender"
            body = (
                '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        FaultProxy._reply(handler, status, headers, body)

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        handler.send_response_only(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    @staticmethod
    def _drop(handler: BaseHTTPRequestHandler) -> None:
        """Close without a response; SO_LINGER 0 turns the close into a TCP RST (connection reset)."""
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as AWS endpoints do
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no delayed-ACK stalls
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        try:
            self.server.proxy.handle(self)
        except (OSError, http.client.HTTPException):
            self.close_connection = True

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet, like the fake server
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    proxy: FaultProxy


@contextlib.contextmanager
def fault_proxy(
    upstream_url: str,
    rules: FaultRules,
    seed: int = 0,
    *,
    before_forward: Callable[[Call, bytes], None] | None = None,
) -> Iterator[FaultProxy]:
    """Run the proxy on 127.0.0.1 in front of ``upstream_url``. ``before_forward(call, body)`` runs before
    each forwarded request, e.g. to change the fake's state between a list and a describe."""
    proxy = FaultProxy(upstream_url, rules, seed, before_forward)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.proxy = proxy
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.closing.set()
        server.shutdown()
        server.server_close()
        thread.join()

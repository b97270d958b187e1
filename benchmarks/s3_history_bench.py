#!/usr/bin/env python
"""Does the S3 traffic of one ``sm-assets refresh`` grow with the history the lake keeps?

Target (the issue's): on an S3 lake (moto server), the bytes read per refresh do not grow with history:
measured with 1 and 30 days of history, within 10%.

How it measures:

* SageMaker, STS and Organizations: the benchmark fake AWS (``benchmarks/fake_aws_bench.py``, a child
  process, zero latency, no throttling), at ``AWS_ENDPOINT_URL``.
* S3: a moto server (``moto.server.ThreadedMotoServer`` in a child process) behind a counting reverse proxy
  run by this script (``AWS_ENDPOINT_URL_S3`` points at the proxy). The proxy forwards every request and
  records its kind (GET object, LIST, HEAD, PUT, ...), the object key, the response body bytes of GETs
  and the payload bytes of PUTs/uploaded parts.
* One real ``sm-assets refresh`` into an empty template lake; that lake holds exactly one day (today).
* Per history length N: a lake whose today is a copy of the template, and whose days today-1 .. today-N
  are copies of it re-dated (every date column and ``collected_at`` shifted by the day offset, as well as
  the folder names and the collection stamp of the per-account file names), so every past day looks like
  a day that was collected, built and reported. Its DuckDB file is built before the measurement (its
  cost, a one-time cost on a new sm-assets version or lake location, is reported apart).
* The measured refresh: ``sm-assets refresh`` of that lake (a fresh DAGSTER_HOME, the same fleet), with
  the proxy's counters reset just before it. It collects every account again and rebuilds today's daily
  tables and reports, replacing today's files.

The code under test is pinned: ``sm_assets/`` and ``benchmarks/`` are copied to a temporary directory at
the start and every child process imports them from there (PYTHONPATH), so edits to the working tree
during the run do not mix versions.

    .venv/bin/python benchmarks/s3_history_bench.py                  # 40 accounts, 1 vs 30 days
    .venv/bin/python benchmarks/s3_history_bench.py --accounts 10 --histories 1,5 --results /tmp/x.md

Writes ``benchmarks/results-s3-history.md`` and prints the same tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.client import HTTPConnection, HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results-s3-history.md"
BUCKET = "sm-assets-history-bench"
TEMPLATE_PREFIX = "template"
DEFAULT_REGIONS = "us-east-1,us-west-2,eu-west-1"
ROLE_NAME = "SageMakerInventoryReadOnly"
TOLERANCE = 0.10  # the target: bytes read with 30 days within 10% of those with 1 day
MICROS_PER_DAY = 86_400 * 1_000_000
# Headers that describe one hop of a connection, never forwarded by the proxy.
HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect"}
)
DAY_IN_KEY = re.compile(r"(snapshot_date=|as_of_date=|report_date=|model_quality_coverage_)(\d{4}-\d{2}-\d{2})")
STAMPED_FILE = re.compile(r"(account_id=\d{12}\.)(\d+)(\.parquet)$")


# --------------------------------------------------------------------------------------------------
# The counting S3 proxy
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Request:
    """One request the proxy forwarded."""

    op: str  # GET (object), LIST, HEAD, PUT, UPLOAD_PART, CREATE_MULTIPART, COMPLETE_MULTIPART, DELETE, ...
    key: str  # the object key (LIST: its prefix parameter)
    status: int
    body_bytes: int  # response body bytes (what a GET reads)
    payload_bytes: int  # request payload bytes (what a PUT or part upload writes)
    client: str = ""  # who sent it, from its User-Agent (see `client_of`)
    range: str = ""  # the Range header of a GET, if any


def client_of(user_agent: str) -> str:
    """The S3 client behind a request: DuckDB's httpfs, pyarrow's S3FileSystem (AWS SDK for C++) or boto3."""
    agent = user_agent.lower()
    if "duckdb" in agent:
        return "DuckDB httpfs"
    if "aws-sdk-cpp" in agent or "arrow" in agent:
        return "pyarrow S3FileSystem"
    if "boto" in agent:
        return "boto3"
    return user_agent.split(" ", 1)[0] or "unknown"


def classify(method: str, path: str, headers: Mapping[str, str]) -> tuple[str, str]:
    """(operation, key) of a path-style S3 request: ``/bucket/key?query``."""
    url = urlsplit(path)
    _, _, key = url.path.lstrip("/").partition("/")
    key = unquote(key)
    query = parse_qs(url.query, keep_blank_values=True)
    if method == "GET":
        if key:
            return "GET", key
        if "location" in query or "versioning" in query:
            return "GET_BUCKET_META", ""
        return "LIST", query.get("prefix", [""])[0]
    if method == "PUT":
        if not key:
            return "PUT_BUCKET", ""
        if "partNumber" in query:
            return "UPLOAD_PART", key
        return ("COPY" if "x-amz-copy-source" in {k.lower() for k in headers} else "PUT"), key
    if method == "POST":
        if "uploads" in query:
            return "CREATE_MULTIPART", key
        if "uploadId" in query:
            return "COMPLETE_MULTIPART", key
        if "delete" in query:
            return "DELETE_MANY", ""
        return "POST", key
    if method == "DELETE":
        return ("ABORT_MULTIPART" if "uploadId" in query else "DELETE"), key
    return method, key


class S3Traffic:
    """Thread-safe log of the requests the proxy forwarded; reset before a measurement, read after it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[S3Request] = []

    def record(self, request: S3Request) -> None:
        with self._lock:
            self._requests.append(request)

    def reset(self) -> None:
        with self._lock:
            self._requests = []

    def snapshot(self) -> list[S3Request]:
        with self._lock:
            return list(self._requests)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs expect; also answers Expect: 100-continue
    server: CountingProxy

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self) -> None:
        body = self._read_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        status, reply_headers, data = self.server.upstream(self.command, self.path, body, headers)
        self.send_response_only(status)
        length = None
        for name, value in reply_headers:
            lower = name.lower()
            if lower == "content-length":
                length = value
            elif lower not in HOP_HEADERS:
                self.send_header(name, value)
        # A HEAD answer carries the object's length without its body; everything else: the body's length.
        self.send_header("Content-Length", (length or "0") if self.command == "HEAD" else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        op, key = classify(self.command, self.path, self.headers)
        decoded = self.headers.get("x-amz-decoded-content-length")  # aws-chunked bodies carry signatures
        payload = int(decoded) if decoded else len(body)
        self.server.traffic.record(
            S3Request(
                op,
                key,
                status,
                len(data) if self.command != "HEAD" else 0,
                payload if body else 0,
                client_of(self.headers.get("User-Agent", "")),
                self.headers.get("Range", ""),
            )
        )


class CountingProxy(ThreadingHTTPServer):
    """A reverse proxy on 127.0.0.1 in front of one S3 server, recording every request in `traffic`."""

    daemon_threads = True

    def __init__(self, upstream_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream_port = upstream_port
        self.traffic = S3Traffic()
        self._local = threading.local()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def upstream(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send one request to the S3 server on this thread's keep-alive connection (reopened once if the
        server closed it)."""
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = HTTPConnection("127.0.0.1", self.upstream_port, timeout=120)
            try:
                conn.request(method, path, body=body or None, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
            except (HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
                continue
            if reply.will_close:
                conn.close()
                self._local.conn = None
            return reply.status, reply.getheaders(), data
        raise AssertionError("unreachable")

    def start(self) -> str:
        self._thread = threading.Thread(target=self.serve_forever, name="s3-proxy", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


# --------------------------------------------------------------------------------------------------
# Child servers: the fake AWS and moto's S3
# --------------------------------------------------------------------------------------------------

MOTO_S3_CHILD = """
from moto.server import ThreadedMotoServer
import signal, threading
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("PORT", server.get_host_and_port()[1], flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
server.stop()
"""


class ChildServer:
    """A server in a child process that prints ``<tag> <value>`` on its first line once it listens."""

    def __init__(self, cmd: list[str], tag: str, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith(tag + " "):
            self.stop()
            raise RuntimeError(f"{shlex.join(cmd[:3])} did not start: {line!r}")
        self.value = line.split(" ", 1)[1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment minus anything that could reach real AWS, a real Dagster instance or a proxy."""
    drop = ("AWS_", "SM_ASSETS_", "DAGSTER_")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(drop) and k.lower() not in ("http_proxy", "https_proxy")
    }
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------------
# Lakes with history
# --------------------------------------------------------------------------------------------------


def s3_client(endpoint: str) -> Any:  # -> botocore S3 client
    """A boto3 client straight to the S3 server (the proxy never sees the set-up traffic)."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("s3", endpoint_url=endpoint)


def list_objects(client: Any, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        out.extend(page.get("Contents", []))
    return out


def redate_key(key: str, days: int) -> str:
    """The key of the same object `days` earlier: its day folder/file name and its collection stamp."""

    def shift(match: re.Match[str]) -> str:
        return match.group(1) + (date.fromisoformat(match.group(2)) - timedelta(days=days)).isoformat()

    key = DAY_IN_KEY.sub(shift, key)
    return STAMPED_FILE.sub(lambda m: f"{m.group(1)}{int(m.group(2)) - days * MICROS_PER_DAY}{m.group(3)}", key)


def redate_parquet(data: bytes, days: int) -> bytes:
    """The same Parquet file `days` earlier: every date column and ``collected_at`` shifted, row groups kept
    (the per-account raw files hold one per resource type)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    def shifted(table: pa.Table) -> pa.Table:
        for i, f in enumerate(table.schema):
            column = table.column(i)
            if pa.types.is_date32(f.type):
                column = pc.subtract(column.cast(pa.int32()), pa.scalar(days, pa.int32())).cast(pa.date32())
            elif f.name == "collected_at" and pa.types.is_timestamp(f.type):
                column = pc.subtract(column, pa.scalar(timedelta(days=days), pa.duration(f.type.unit)))
            else:
                continue
            table = table.set_column(i, f, column)
        return table

    source = pq.ParquetFile(pa.BufferReader(data))
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, source.schema_arrow, compression="zstd") as writer:
        for group in range(source.num_row_groups):
            table = shifted(source.read_row_group(group))
            writer.write_table(table, row_group_size=max(1, table.num_rows))
    return sink.getvalue().to_pybytes()


def redate_object(key: str, data: bytes, today: date, days: int) -> tuple[str, bytes]:
    if days == 0:
        return key, data
    if key.endswith(".parquet"):
        return redate_key(key, days), redate_parquet(data, days)
    old, new = today.isoformat(), (today - timedelta(days=days)).isoformat()
    return redate_key(key, days), data.replace(old.encode(), new.encode())  # the chart's HTML


def object_day(key: str) -> date | None:
    """The day an object belongs to (None: the schema placeholders and other fixed files)."""
    match = DAY_IN_KEY.search(key)
    if not match:
        return None
    day = date.fromisoformat(match.group(2))
    return None if day == date(1970, 1, 1) else day


def build_history_lake(client: Any, prefix: str, today: date, history_days: int) -> int:
    """Copy the template lake to `prefix`: today as it is, plus `history_days` re-dated past days.
    Returns the number of objects written."""
    template = f"{TEMPLATE_PREFIX}/lake/"
    objects = [o["Key"] for o in list_objects(client, template)]
    foreign = {object_day(k) for k in objects} - {None, today}
    if foreign:
        raise RuntimeError(f"the template lake holds other days than {today}: {sorted(foreign)}")
    bodies = {k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in objects}

    def write(job: tuple[str, int]) -> None:
        key, days = job
        new_key, data = redate_object(key, bodies[key], today, days)
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/lake/" + new_key[len(template) :], Body=data)

    jobs = [(k, d) for k in objects for d in ([0] if object_day(k) is None else range(history_days + 1))]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, jobs))
    return len(jobs)


# --------------------------------------------------------------------------------------------------
# Running sm-assets
# --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One measured child process (a refresh, or the catalog build)."""

    label: str
    wall_s: float
    returncode: int
    stdout: str
    requests: list[S3Request]


@dataclass
class Scenario:
    history_days: int
    prefix: str
    objects_written: int = 0
    catalog: Run | None = None
    refresh: Run | None = None
    objects_after: list[dict[str, Any]] = field(default_factory=list)


class Bench:
    """The servers, the pinned code and the environment every sm-assets child process gets."""

    def __init__(self, args: argparse.Namespace, code: Path, tmp: Path) -> None:
        self.args, self.code, self.tmp = args, code, tmp
        base = clean_env({"PYTHONPATH": str(code)})
        self.aws = ChildServer(
            [
                sys.executable,
                "-m",
                "benchmarks.fake_aws_bench",
                f"--accounts={args.accounts}",
                f"--regions={args.regions}",
                f"--max-definitions={args.max_definitions}",
                f"--seed={args.seed}",
                f"--role-name={ROLE_NAME}",
                "--zero-latency",
                "--no-throttle",
            ],
            "URL",
            code,
            base,
        )
        self.moto = ChildServer([sys.executable, "-c", MOTO_S3_CHILD], "PORT", tmp, base)
        self.s3_url = f"http://127.0.0.1:{self.moto.value}"
        self.proxy = CountingProxy(int(self.moto.value))
        self.proxy.start()
        self.client = s3_client(self.s3_url)
        self.client.create_bucket(Bucket=BUCKET)

    def stop(self) -> None:
        self.proxy.stop()
        self.moto.stop()
        self.aws.stop()

    def env(self, prefix: str, home: Path) -> dict[str, str]:
        home.mkdir(parents=True, exist_ok=True)
        return clean_env(
            {
                "PYTHONPATH": str(self.code),
                "AWS_ENDPOINT_URL": self.aws.value,
                "AWS_ENDPOINT_URL_S3": self.proxy.url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true",
                "SM_ASSETS_DATA_DIR": f"s3://{BUCKET}/{prefix}",
                "SM_ASSETS_DUCKDB_PATH": str(home / "sm_assets.duckdb"),
                "SM_ASSETS_REGIONS": self.args.regions,
                "SM_ASSETS_ROLE_NAME": ROLE_NAME,
                "DAGSTER_HOME": str(home / "dagster_home"),
            }
        )

    def measure(self, label: str, cmd: list[str], env: dict[str, str], cwd: Path) -> Run:
        """Run `cmd` with the proxy's counters reset just before it; its traffic is what it sent."""
        self.proxy.traffic.reset()
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        requests = self.proxy.traffic.snapshot()
        (self.tmp / f"{label}.stdout.log").write_text(done.stdout)
        (self.tmp / f"{label}.stderr.log").write_text(done.stderr)
        if done.returncode not in (0, 1):  # 1: some account failed, reported in the output; 2: config/lake error
            tail = "\n    ".join(done.stderr.strip().splitlines()[-20:])
            raise RuntimeError(f"{label}: {shlex.join(cmd)} exited {done.returncode}:\n    {tail}")
        return Run(label, wall, done.returncode, done.stdout, requests)

    def refresh(self, label: str, prefix: str, home: Path) -> Run:
        script = Path(sys.executable).with_name("sm-assets")
        cmd = [str(script)] if script.exists() else [sys.executable, "-m", "sm_assets.cli"]
        return self.measure(label, [*cmd, "refresh"], self.env(prefix, home), home)

    def build_catalog(self, label: str, prefix: str, home: Path) -> Run:
        """The DuckDB file of the lake, as the first refresh of a deployment builds it (CREATE VIEW lists the
        history globs), so that the measured refresh finds it current, as every later refresh does."""
        code = (
            "from sm_assets.core.config import Settings\n"
            "from sm_assets.core.storage import prepare_storage\n"
            "print('REBUILT', prepare_storage(Settings.from_env()))\n"
        )
        return self.measure(label, [sys.executable, "-c", code], self.env(prefix, home), home)


# --------------------------------------------------------------------------------------------------
# Tallies
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    gets: int
    get_bytes: int
    lists: int
    list_bytes: int
    heads: int
    puts: int
    put_bytes: int
    deletes: int
    other: int


def totals(requests: Sequence[S3Request]) -> Totals:
    ops = Counter(r.op for r in requests)
    writes = ("PUT", "UPLOAD_PART")
    return Totals(
        gets=ops["GET"],
        get_bytes=sum(r.body_bytes for r in requests if r.op == "GET"),
        lists=ops["LIST"],
        list_bytes=sum(r.body_bytes for r in requests if r.op == "LIST"),
        heads=ops["HEAD"],
        puts=sum(ops[o] for o in writes),
        put_bytes=sum(r.payload_bytes for r in requests if r.op in writes),
        deletes=ops["DELETE"] + ops["DELETE_MANY"],
        other=sum(n for o, n in ops.items() if o not in ("GET", "LIST", "HEAD", "DELETE", "DELETE_MANY", *writes)),
    )


def lake_relative(key: str, prefix: str) -> str:
    for root in (f"{prefix}/lake/", f"{prefix}/"):
        if key.startswith(root):
            return key[len(root) :]
    return key


def dataset_of(relative: str) -> str:
    """The dataset folder of a lake key: ``aws/<table>``, ``reports/<table>``, or the top folder."""
    parts = relative.split("/")
    if parts[0] in ("aws", "reports") and len(parts) > 1:
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else f"(root) {parts[0]}"


def age_of(relative: str, today: date) -> str:
    """``today``, ``today-1``, ..., or ``no day`` (placeholders, listings of whole datasets)."""
    day = object_day(relative)
    if day is None:
        return "no day"
    return "today" if day == today else f"today-{(today - day).days}"


def pattern_of(relative: str, today: date) -> str:
    """A key with its day made relative and its collection stamp elided, comparable across lakes."""
    day = object_day(relative)
    if day is not None:
        relative = relative.replace(day.isoformat(), age_of(relative, today).replace("today", "D"))
    return STAMPED_FILE.sub(lambda m: f"{m.group(1)}*{m.group(3)}", relative)


def grouped(
    requests: Sequence[S3Request], ops: Sequence[str], key: Callable[[S3Request], str]
) -> dict[str, tuple[int, int]]:
    """group -> (requests, response body bytes) of the requests of kinds `ops`."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in requests:
        if r.op in ops:
            cell = out[key(r)]
            cell[0] += 1
            cell[1] += r.body_bytes
    return {k: (v[0], v[1]) for k, v in out.items()}


def age_bucket(age: str) -> str:
    if age in ("today", "today-1", "no day"):
        return age
    return "today-2 and older"


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], text_columns: int = 1) -> str:
    """A markdown table: the first `text_columns` columns left-aligned, the numbers right-aligned."""

    def cell(value: object) -> str:
        return f"{value:,}" if isinstance(value, int) else str(value)

    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i < text_columns else "---:" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(new: float, old: float) -> str:
    return f"{new / old:.3f}" if old else "n/a"


def comparison(
    first: Scenario, last: Scenario, ops: Sequence[str], key: Callable[[S3Request, str], str]
) -> list[tuple[str, int, int, int, int, int]]:
    """(group, requests 1st, bytes 1st, requests last, bytes last, byte difference), biggest difference first."""
    assert first.refresh and last.refresh
    a = grouped(first.refresh.requests, ops, lambda r: key(r, first.prefix))
    b = grouped(last.refresh.requests, ops, lambda r: key(r, last.prefix))
    rows = [
        (g, a.get(g, (0, 0))[0], a.get(g, (0, 0))[1], b.get(g, (0, 0))[0], b.get(g, (0, 0))[1], 0)
        for g in sorted(set(a) | set(b))
    ]
    rows = [(g, n1, b1, n2, b2, b2 - b1) for g, n1, b1, n2, b2, _ in rows]
    return sorted(rows, key=lambda r: (-abs(r[5]), -abs(r[3] - r[1]), natural(r[0])))


def natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that orders ``D-2`` before ``D-10``."""
    return tuple((1, int(part)) if part.isdigit() else (0, part) for part in re.split(r"(\d+)", text))


def object_census(objects: Sequence[dict[str, Any]], prefix: str) -> list[tuple[str, int, int, str, int]]:
    """(dataset folder, objects, days, dated objects per day, bytes) of a lake's listing."""
    count: Counter[str] = Counter()
    dated: Counter[str] = Counter()
    size: Counter[str] = Counter()
    days: dict[str, set[date]] = defaultdict(set)
    for o in objects:
        relative = lake_relative(o["Key"], prefix)
        ds = dataset_of(relative)
        count[ds] += 1
        size[ds] += o["Size"]
        day = object_day(relative)
        if day is not None:
            dated[ds] += 1
            days[ds].add(day)
    return [
        (ds, count[ds], len(days[ds]), f"{dated[ds] / len(days[ds]):.1f}" if days[ds] else "-", size[ds])
        for ds in sorted(count)
    ]


def refresh_day(run: Run) -> str | None:
    match = re.search(r"tables and reports for (\d{4}-\d{2}-\d{2}): (\S+)", run.stdout)
    return match.group(1) if match else None


def compared(scenarios: Sequence[Scenario], target_days: int) -> tuple[Scenario, Scenario]:
    """The two refreshes the target compares: the shortest history, and `target_days` (else the longest)."""
    ordered = sorted(scenarios, key=lambda s: s.history_days)
    target = next((s for s in ordered if s.history_days == target_days), ordered[-1])
    return ordered[0], target


def main_table(scenarios: Sequence[Scenario], base: Scenario) -> str:
    assert base.refresh
    base_bytes = totals(base.refresh.requests).get_bytes
    rows = []
    previous: tuple[int, int] | None = None
    for s in scenarios:
        assert s.refresh
        t = totals(s.refresh.requests)
        per_day = "-" if previous is None else f"{(t.get_bytes - previous[1]) / (s.history_days - previous[0]):,.0f}"
        previous = (s.history_days, t.get_bytes)
        rows.append(
            (
                s.history_days,
                t.gets,
                t.get_bytes,
                ratio(t.get_bytes, base_bytes),
                per_day,
                t.lists,
                t.list_bytes,
                t.heads,
                t.puts,
                t.put_bytes,
                f"{s.refresh.wall_s:.1f}",
            )
        )
    headers = (
        "history days",
        "S3 GET requests",
        "bytes read (GET bodies)",
        f"bytes read / {base.history_days}-day",
        "bytes read per extra day (vs row above)",
        "LIST requests",
        "LIST response bytes",
        "HEAD requests",
        "PUT/part requests",
        "PUT/upload bytes",
        "refresh wall s",
    )
    return table(headers, rows)


# Who reads what, from reading the code at the commit this benchmark was written against: annotates the
# diagnosis only (the numbers come from the traffic alone).
KNOWN_READERS = {
    ("reports/model_quality_fleet_summary", "pyarrow S3FileSystem"): (
        "`coverage_trend` (sm_assets/core/reports/compute.py) lists the folder and reads the stored summary "
        "of every report date in its 30-day window (`stored_summary`: HEAD + one whole-object GET each), "
        "plus the previous date's in `compute_reports`: grows with history up to 30 days, then stops"
    ),
    ("reports/model_quality_fleet_summary", "DuckDB httpfs"): (
        "the `analytics/model_quality_coverage_trend_30d` asset (`trend_30d`, sm_assets/core/reports/"
        "publish.py) queries the view `reports.model_quality_fleet_summary` `WHERE report_date BETWEEN ...`; "
        "the view is `read_parquet('.../report_date=*.parquet', union_by_name = true)`: the date is in the "
        "file name, not a hive folder, and the filter is on a column, so DuckDB opens every summary file "
        "ever written: grows with all history"
    ),
}


def read_spans(
    requests: Sequence[S3Request], prefix: str, today: date
) -> dict[tuple[str, str], tuple[int, int, int, str]]:
    """(dataset, client) -> (GETs, bytes, distinct dated objects, span of days read) of a refresh's GETs."""
    gets: Counter[tuple[str, str]] = Counter()
    size: Counter[tuple[str, str]] = Counter()
    objects: dict[tuple[str, str], set[str]] = defaultdict(set)
    ages: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in requests:
        if r.op != "GET":
            continue
        relative = lake_relative(r.key, prefix)
        group = (dataset_of(relative), r.client)
        gets[group] += 1
        size[group] += r.body_bytes
        day = object_day(relative)
        if day is not None:
            objects[group].add(relative)
            ages[group].append((today - day).days)

    def label(age: int) -> str:
        return "D" if age == 0 else f"D-{age}"

    def span(values: list[int]) -> str:
        return f"{label(max(values))} .. {label(min(values))}" if values else "-"

    return {g: (gets[g], size[g], len(objects[g]), span(ages[g])) for g in gets}


def diagnosis(base: Scenario, other: Scenario, scenarios: Sequence[Scenario], today: date) -> list[str]:
    """Markdown lines naming the datasets, clients and objects behind a growth of the bytes read."""
    assert base.refresh and other.refresh
    b, o = totals(base.refresh.requests), totals(other.refresh.requests)
    extra_days = other.history_days - base.history_days
    by_dataset = comparison(base, other, ("GET",), lambda r, p: dataset_of(lake_relative(r.key, p)))
    growing = [r for r in by_dataset if r[5] > 0.01 * b.get_bytes]
    grown = sum(r[5] for r in growing)
    rest_ratio = ratio(o.get_bytes - sum(r[4] for r in growing), b.get_bytes - sum(r[2] for r in growing))
    n1, n2 = base.history_days, other.history_days
    lines = [
        "## Where the growth comes from",
        "",
        f"Bytes read grew by {o.get_bytes - b.get_bytes:,} bytes ({o.get_bytes / b.get_bytes - 1:+.1%}) with "
        f"{extra_days} more days of history: {(o.get_bytes - b.get_bytes) / extra_days:,.0f} bytes and "
        f"{(o.gets - b.gets) / extra_days:.1f} GETs per extra day kept. "
        + (
            f"{grown / (o.get_bytes - b.get_bytes):.0%} of it is reads of "
            + ", ".join(f"`{r[0]}`" for r in growing)
            + f"; without those, the {n2}-day / {n1}-day ratio of the bytes read is {rest_ratio}."
            if growing and o.get_bytes > b.get_bytes
            else ""
        ),
        "",
    ]
    beyond = [s for s in scenarios if s.history_days > n2 and s.refresh]
    if beyond:
        last = beyond[-1]
        assert last.refresh
        more = totals(last.refresh.requests)
        lines += [
            f"It does not stop at {n2} days: from {n2} to {last.history_days} days of history the bytes read grow "
            f"by {(more.get_bytes - o.get_bytes) / (last.history_days - n2):,.0f} bytes and "
            f"{(more.gets - o.gets) / (last.history_days - n2):.1f} GETs per extra day (ratio to {n1} day: "
            f"{ratio(more.get_bytes, b.get_bytes)}).",
            "",
        ]
    if not growing:
        return lines
    spans = {s.history_days: read_spans(s.refresh.requests, s.prefix, today) for s in scenarios if s.refresh}
    groups = sorted({g for per in spans.values() for g in per if g[0] in {r[0] for r in growing}})
    headers = ["dataset", "client"]
    for s in scenarios:
        headers += [f"GETs ({s.history_days} d)", f"bytes ({s.history_days} d)", f"days read ({s.history_days} d)"]
    rows = []
    for group in groups:
        row: list[object] = [f"`{group[0]}`", group[1]]
        for s in scenarios:
            gets, size, _, span = spans[s.history_days].get(group, (0, 0, 0, "-"))
            row += [gets, size, span]
        rows.append(row)
    lines += [
        "Who reads them, and which days (`D` = today):",
        "",
        table(headers, rows, text_columns=2),
        "",
    ]
    known = [(g, KNOWN_READERS[g]) for g in groups if g in KNOWN_READERS]
    if known:
        lines += [
            "The readers behind these requests (from reading the code at this commit):",
            "",
            *[f"* `{g[0]}` via {g[1]}: {text}." for g, text in known],
            "",
        ]
    return lines


KNOWN_LISTERS = {
    "aws/collection_status": (
        "`prune_staged` (sm_assets/core/compaction.py) lists the daily status folder of every closed day that "
        "still has per-account files, to read its build time; in a lake in steady state those days are pruned "
        "24 h after their build, so this count stays at a day or two there"
    ),
    "collection_status": "the listing of the per-account day folders (`day_folders`): one entry per day kept",
    "reports/model_quality_fleet_summary": "one listing each by `coverage_trend` and by DuckDB's glob of the view",
}


def list_notes(lists: Sequence[tuple[str, int, int, int, int, int]]) -> list[str]:
    """Who sends the LIST requests whose count or size grew (from reading the code at this commit)."""
    notes = [
        f"* `{g}`: {KNOWN_LISTERS[g]}." for g, n1, b1, n2, b2, _ in lists if (n2, b2) != (n1, b1) and g in KNOWN_LISTERS
    ]
    return (
        ["LIST requests that grew, and who sends them (from reading the code at this commit):", "", *notes, ""]
        if notes
        else []
    )


def key_cell(group: str) -> str:
    """A per-key group (``key<TAB>client``) as a table cell."""
    key, _, client = group.partition("\t")
    return f"`{key}` ({client})"


def render(
    args: argparse.Namespace, scenarios: list[Scenario], template: Run, today: date, meta: dict[str, str]
) -> str:
    base, other = compared(scenarios, args.target_days)
    assert base.refresh and other.refresh
    b, o = totals(base.refresh.requests), totals(other.refresh.requests)
    byte_ratio = o.get_bytes / b.get_bytes if b.get_bytes else float("nan")
    ok = abs(byte_ratio - 1) <= args.tolerance
    verdict = (
        f"**Bytes read, {other.history_days}-day / {base.history_days}-day history: {byte_ratio:.3f}** "
        f"(target: within {args.tolerance:.0%}) -> **{'MET' if ok else 'NOT MET'}**. "
        f"GET requests {ratio(o.gets, b.gets)}x, LIST requests {ratio(o.lists, b.lists)}x, "
        f"PUT/upload bytes {ratio(o.put_bytes, b.put_bytes)}x."
    )
    n1, n2 = base.history_days, other.history_days
    cmp_headers = (f"GETs ({n1} d)", f"bytes ({n1} d)", f"GETs ({n2} d)", f"bytes ({n2} d)", "bytes difference")

    def rows_of(groups: Sequence[tuple[str, int, int, int, int, int]], code: bool = True) -> list[tuple[object, ...]]:
        return [(f"`{g}`" if code else g, *rest) for g, *rest in groups]

    datasets = comparison(base, other, ("GET",), lambda r, p: dataset_of(lake_relative(r.key, p)))
    clients = comparison(base, other, ("GET",), lambda r, p: r.client)
    ages = comparison(base, other, ("GET",), lambda r, p: age_bucket(age_of(lake_relative(r.key, p), today)))
    patterns = comparison(
        base, other, ("GET",), lambda r, p: f"{pattern_of(lake_relative(r.key, p), today)}\t{r.client}"
    )
    patterns = [r for r in patterns if r[5] or r[1] != r[3]]
    lists = comparison(base, other, ("LIST",), lambda r, p: dataset_of(lake_relative(r.key, p)))
    catalog_rows = []
    for s in scenarios:
        assert s.catalog
        c = totals(s.catalog.requests)
        catalog_rows.append((s.history_days, c.gets, c.get_bytes, c.lists, c.heads, f"{s.catalog.wall_s:.1f}"))
    tt = totals(template.requests)
    census = object_census(other.objects_after, other.prefix)
    sizes = ", ".join(f"{s.history_days} d: {len(s.objects_after):,}" for s in scenarios)
    exit_codes = ", ".join(f"{s.history_days} d: {s.refresh.returncode}" for s in scenarios if s.refresh)
    built = ", ".join(sorted({refresh_day(s.refresh) or "?" for s in scenarios if s.refresh}))
    lines = [
        "# S3 traffic of one refresh vs. history kept",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"* commit: {meta['commit']}",
        f"* date: {meta['date']}",
        f"* machine: {meta['machine']}",
        f"* fake organization: {meta['fleet']}",
        f"* software: {meta['software']}",
        "",
        "Target: *on an S3 lake (moto server), the bytes read per refresh do not grow with history: measured "
        "with 1 and 30 days of history, within 10%.*",
        "",
        verdict,
        "",
        main_table(scenarios, base),
        "",
        "Every number is what the counting proxy in front of the moto S3 server saw during one "
        "`sm-assets refresh` (a child process: collection of every account, today's daily tables, reports): "
        "GET = GetObject (ranged or whole; bytes = response bodies), LIST = ListObjects(V2), PUT/part = "
        "PutObject and UploadPart (bytes = payload). The DuckDB file was current before the refresh (see "
        "the catalog build below).",
        "",
        *([] if ok else diagnosis(base, other, scenarios, today)),
        "## GET bytes by client",
        "",
        table(("client", *cmp_headers), rows_of(clients, code=False)),
        "",
        "## GET bytes by dataset folder",
        "",
        table(("dataset folder", *cmp_headers), rows_of(datasets)),
        "",
        "## GET bytes by the day of the object read",
        "",
        table(("day", *cmp_headers), rows_of(ages, code=False)),
        "",
        "## Top per-key differences (GET)",
        "",
        "Keys with their day made relative to today (`D`, `D-1`, ...) and the collection stamp elided (`*`), "
        "so the two lakes' keys compare; only the keys whose requests or bytes differ, biggest first.",
        "",
        table(
            ("key (client)", *cmp_headers),
            [(key_cell(g), *rest) for g, *rest in patterns[: args.top]],
        )
        if patterns
        else "(none: both refreshes read the same objects, byte for byte)",
        "",
        *([f"({len(patterns) - args.top} more keys differ, each by less.)", ""] if len(patterns) > args.top else []),
        "## LIST requests by prefix",
        "",
        table(
            ("LIST prefix (dataset)", f"LISTs ({n1} d)", f"bytes ({n1} d)", f"LISTs ({n2} d)", f"bytes ({n2} d)")
            + ("bytes difference",),
            rows_of(lists),
        ),
        "",
        *list_notes(lists),
        f"## Objects in the lake with {other.history_days} days of history",
        "",
        f"After the measured refresh (objects per lake: {sizes}). A day's per-account folders hold one "
        "collection per account; today's also the measured refresh's new one (versioned names):",
        "",
        table(("dataset folder", "objects", "days", "dated objects per day", "bytes"), rows_of(census)),
        "",
        "## One-time cost: building the DuckDB file",
        "",
        "Before each measured refresh the lake's DuckDB file is built (`prepare_storage`), as the first "
        "refresh of a deployment, a new sm-assets version or a new lake location does (CREATE VIEW binds "
        "every view over its history glob). Later refreshes find it current and skip this.",
        "",
        table(("history days", "GET requests", "bytes read", "LIST requests", "HEAD requests", "wall s"), catalog_rows),
        "",
        "## How the history was made",
        "",
        f"1. One `sm-assets refresh` into an empty lake (`s3://{BUCKET}/{TEMPLATE_PREFIX}`): {tt.gets:,} GETs, "
        f"{tt.get_bytes:,} bytes read, {tt.puts:,} PUTs, {tt.put_bytes:,} bytes written, "
        f"{template.wall_s:.1f} s. It holds one day, {today}.",
        f"2. For each history length N, a lake `s3://{BUCKET}/history-N`: today copied as it is, and each "
        "of the N days before it a re-dated copy of every dated object (per-account raw and status files "
        "with the collection stamp in their names shifted, daily files, reports and the chart): "
        "`snapshot_date`, `report_date`, every other DATE column and `collected_at` shifted by the day "
        "offset; row groups kept. Objects written: "
        + ", ".join(f"{s.history_days} d: {s.objects_written:,}" for s in scenarios)
        + ".",
        "3. Its DuckDB file built (above), then the measured `sm-assets refresh` with a fresh DAGSTER_HOME "
        "and the same fake organization: it collects every account again (incremental collection reads "
        "the stored describes) and replaces today's daily tables and reports.",
        "",
        "Notes:",
        "",
        "* Nothing was pruned: the daily step deletes the per-account files of closed days only 24 h after "
        "their daily build (judged on the daily file's LastModified), and every copy was just written. So "
        "the lakes keep every day's per-account files, which a lake in steady state would have deleted "
        "(it keeps them for today and yesterday only); the LIST traffic over per-account folders is an "
        f"upper bound. DELETE requests during the measured refreshes: {b.deletes} and {o.deletes}.",
        f"* Today is the UTC date the run started on; the measured refreshes built {built}.",
        f"* Refresh exit codes: {exit_codes} (template: {template.returncode}).",
        "* Wall seconds include process start and Dagster's in-process runs; the two servers and the proxy "
        "share the machine's cores with the refresh, so they are indicative only.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


@contextmanager
def pinned_code(no_snapshot: bool) -> Iterator[Path]:
    """A copy of ``sm_assets/`` and ``benchmarks/`` every child process imports (or the checkout itself)."""
    if no_snapshot:
        yield REPO
        return
    folder = Path(tempfile.mkdtemp(prefix="sm-assets-s3-history-src-"))
    try:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results*.md")
        for name in ("sm_assets", "benchmarks"):
            shutil.copytree(REPO / name, folder / name, ignore=ignore)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def git(*cmd: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *cmd], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def run_metadata(args: argparse.Namespace, bench: Bench) -> dict[str, str]:
    import boto3
    import duckdb
    import moto
    import pyarrow

    exe = Path(sys.executable)
    shown = os.path.relpath(exe, REPO) if exe.is_relative_to(REPO) else str(exe)
    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if "results-s3-history" not in line]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(bench.aws.value + "/__bench/fleet", timeout=30) as answer:
        fleet = json.loads(answer.read())
    return {
        "command": shlex.join([shown, *sys.argv]),
        "commit": (git("rev-parse", "--short", "HEAD") or "unknown")
        + (f" + uncommitted changes to {', '.join(changed[:6])}{' ...' if len(changed) > 6 else ''}" if changed else "")
        + "; the run used a copy of sm_assets/ and benchmarks/ taken at its start",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}",
        "fleet": (
            f"benchmarks/fake_aws_bench.py, {args.accounts} accounts x {len(args.regions.split(','))} regions "
            f"({args.regions}), up to {args.max_definitions} job definitions per account-region, seed {args.seed}, "
            f"zero latency, no throttling"
            + (
                f"; {fleet.get('definitions', '?')} definitions, {fleet.get('endpoints', '?')} endpoints"
                if fleet
                else ""
            )
        ),
        "software": f"moto {moto.__version__}, DuckDB {duckdb.__version__}, pyarrow {pyarrow.__version__}, "
        f"boto3 {boto3.__version__}",
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--accounts", type=int, default=40, help="accounts in the fake organization (default 40)")
    p.add_argument("--regions", default=DEFAULT_REGIONS, help="comma-separated (default %(default)s)")
    p.add_argument("--max-definitions", type=int, default=12, help="job definitions per account-region, 0..N")
    p.add_argument("--seed", type=int, default=1, help="fleet seed")
    p.add_argument(
        "--histories",
        default="1,30,60",
        help="days of history before today to measure (default %(default)s: 60 shows whether growth stops at 30)",
    )
    p.add_argument("--target-days", type=int, default=30, help="the history compared with the shortest (30)")
    p.add_argument("--top", type=int, default=15, help="per-key differences listed (15)")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, help="allowed growth of bytes read (0.10)")
    p.add_argument("--results", type=Path, default=RESULTS, help="markdown output (default %(default)s)")
    p.add_argument("--no-snapshot", action="store_true", help="run the working tree, not a copy taken at start")
    p.add_argument("--keep-tmp", action="store_true", help="keep the logs and per-request traffic")
    args = p.parse_args(argv)
    args.history_list = sorted({int(h) for h in args.histories.split(",") if h.strip()})
    if len(args.history_list) < 2:
        p.error("--histories needs at least two lengths")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="sm-assets-s3-history-"))
    with pinned_code(args.no_snapshot) as code:
        bench = Bench(args, code, tmp)
        try:
            today = datetime.now(UTC).date()
            meta = run_metadata(args, bench)
            print(f"fake AWS {bench.aws.value}, S3 {bench.s3_url} behind {bench.proxy.url}; code {code}", flush=True)
            template = bench.refresh("template-refresh", TEMPLATE_PREFIX, tmp / "template")
            t = totals(template.requests)
            print(f"template lake: {t.puts} PUTs, {t.put_bytes:,} bytes, {template.wall_s:.1f} s", flush=True)
            if refresh_day(template) != today.isoformat():
                raise RuntimeError(f"the template refresh built {refresh_day(template)}, not {today}")
            scenarios = []
            for days in args.history_list:
                s = Scenario(days, f"history-{days}")
                s.objects_written = build_history_lake(bench.client, s.prefix, today, days)
                home = tmp / s.prefix
                s.catalog = bench.build_catalog(f"{s.prefix}-catalog", s.prefix, home)
                s.refresh = bench.refresh(f"{s.prefix}-refresh", s.prefix, home)
                if refresh_day(s.refresh) != today.isoformat():
                    raise RuntimeError(f"{s.prefix}: the refresh built {refresh_day(s.refresh)}, not {today}")
                s.objects_after = list_objects(bench.client, f"{s.prefix}/")
                r = totals(s.refresh.requests)
                print(
                    f"{days:>3} days of history: {s.objects_written:,} objects written; refresh: {r.gets:,} GETs, "
                    f"{r.get_bytes:,} bytes read, {r.lists:,} LISTs, {r.puts:,} PUTs, {r.put_bytes:,} bytes "
                    f"written, {s.refresh.wall_s:.1f} s",
                    flush=True,
                )
                scenarios.append(s)
            if args.keep_tmp:
                for s in scenarios:
                    assert s.refresh
                    rows = [r.__dict__ for r in s.refresh.requests]
                    (tmp / f"{s.prefix}-requests.json").write_text(json.dumps(rows, indent=0))
        finally:
            bench.stop()
    text = render(args, scenarios, template, today, meta)
    args.results.write_text(text)
    print()
    print(text)
    print(f"written: {args.results}")
    if args.keep_tmp:
        print(f"logs and per-request traffic kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

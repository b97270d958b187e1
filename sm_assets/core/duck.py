"""DuckDB connections for the core: in-memory, and able to read an S3 lake directly.

S3 goes through DuckDB's httpfs extension, installed from PyPI (`duckdb-extension-httpfs`, whose version
matches DuckDB's) into DuckDB's extension directory from the package's own file: nothing is downloaded.
The credentials, region and endpoint are the ones botocore resolves from the standard chain
(environment, profiles, SSO, web identity, container and instance roles; `AWS_ENDPOINT_URL_S3` /
`AWS_ENDPOINT_URL`), handed to DuckDB as a temporary secret that lives only as long as the connection.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import duckdb

from sm_assets.core import s3
from sm_assets.core.errors import ConfigError
from sm_assets.core.layout import LakeDir, is_s3

# The daily tables and reports stream through DuckDB; above this it spills to a temporary directory.
MEMORY_LIMIT = "1GB"


# httpfs reads and globs s3://; aws gives a plain DuckDB reader `PROVIDER credential_chain` secrets.
S3_EXTENSIONS = ("httpfs", "aws")


def extension_file(name: str) -> Path:
    """The extension file that the `duckdb-extension-<name>` wheel holds for this DuckDB version."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    path = (
        Path(
            next(iter(spec.submodule_search_locations)),
            "extensions",
            f"v{duckdb.__version__}",
            f"{name}.duckdb_extension",
        )
        if spec and spec.submodule_search_locations
        else None
    )
    if path is None or not path.exists():
        raise ConfigError(
            f"DuckDB's {name} extension for DuckDB {duckdb.__version__} is not installed: "
            f"pip install duckdb-extension-{name}=={duckdb.__version__} (an S3 lake needs it)"
        )
    return path


def install_extensions(conn: duckdb.DuckDBPyConnection) -> None:
    """Install the S3 extensions from their wheels into DuckDB's extension directory (no download), so any
    DuckDB 1.5 client of this machine, the plain `duckdb` CLI included, autoloads them; then load httpfs.
    Where that directory is not writable, httpfs is loaded from the wheel for this connection only."""
    installed = {
        name for (name,) in conn.execute("SELECT extension_name FROM duckdb_extensions() WHERE installed").fetchall()
    }
    try:
        for name in S3_EXTENSIONS:
            if name not in installed:
                conn.execute(f"INSTALL {sql_string(str(extension_file(name)))}")
        conn.execute("LOAD httpfs")
    except duckdb.IOException:
        conn.execute(f"LOAD {sql_string(str(extension_file('httpfs')))}")


def s3_secret_sql(bucket: str) -> str:
    """CREATE TEMPORARY SECRET for the bucket, from botocore's credentials, endpoint and region."""
    import botocore.session

    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigError("no AWS credentials found for the S3 lake (standard chain: environment, profile, role)")
    frozen = credentials.get_frozen_credentials()
    endpoint, region = s3.endpoint_and_region()
    params = {"KEY_ID": frozen.access_key, "SECRET": frozen.secret_key}
    if frozen.token:
        params["SESSION_TOKEN"] = frozen.token
    if endpoint:
        parsed = urlparse(endpoint)
        params |= {"ENDPOINT": parsed.netloc or parsed.path, "URL_STYLE": "path"}
        options = f", USE_SSL {'true' if parsed.scheme == 'https' else 'false'}"
    else:
        options = ""
        region = s3.bucket_region(bucket) or region
    params["REGION"] = region or "us-east-1"
    body = ", ".join(f"{k} {sql_string(v)}" for k, v in params.items())
    scope = sql_string("s3://" + bucket)
    return f"CREATE OR REPLACE TEMPORARY SECRET sm_assets_lake (TYPE s3, {body}{options}, SCOPE {scope})"


def enable_s3(conn: duckdb.DuckDBPyConnection, lake_dir: LakeDir) -> None:
    """Let `conn` read (and glob) the S3 lake at `lake_dir`."""
    install_extensions(conn)
    conn.execute(s3_secret_sql(s3.bucket_of(str(lake_dir))))


def connect(lake_dir: LakeDir | None = None, *, memory_limit: str = MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """An in-memory connection (no file, so no lock anybody could wait on) that reads `lake_dir`."""
    spill = Path(tempfile.gettempdir(), "sm-assets-duckdb")
    conn = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": str(spill)})
    if lake_dir is not None and is_s3(lake_dir):
        enable_s3(conn, lake_dir)
    return conn


# The one place SQL text is quoted (DuckDB has no quoting API): every literal and identifier the core
# builds SQL from goes through these.


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A quoted SQL identifier (column, member of a struct)."""
    return '"' + name.replace('"', '""') + '"'


def sql_list(values: Sequence[str]) -> str:
    """A SQL list literal of strings, e.g. the file list of read_parquet."""
    return "[" + ", ".join(sql_string(v) for v in values) + "]"

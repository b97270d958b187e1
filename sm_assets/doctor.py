"""`sm-assets doctor`: check, one line each, everything a refresh needs, and say how to fix what is missing.

Checks, in order (later AWS checks are skipped when an earlier one makes them meaningless):

- credentials     sts:GetCallerIdentity in the home region: who am I
- home_region     the partition, the home region (SM_ASSETS_HOME_REGION or its default) and whether STS answers
                  there; an opt-in home region the caller's account has not enabled is told from bad credentials
                  by asking STS in the partition's Organizations region too
- organizations   one page of organizations:ListAccounts in the partition's Organizations region (skipped when
                  SM_ASSETS_ACCOUNTS is set)
- assume_role     sts:AssumeRole into a sample of the accounts a refresh would collect
- regions         one cheap SageMaker call (ListEndpoints, MaxResults=1) per configured region, in the first
                  account whose role could be assumed: tells an opt-in region that is not enabled
- data_dir        SM_ASSETS_DATA_DIR exists (or can be created) and is writable; for s3://bucket/prefix: the bucket
                  lists and takes a PUT (of one fixed small object, .sm-assets-write-check) and the DuckDB
                  file's local directory is writable
- duckdb          the DuckDB file opens read-only (missing is fine: the first refresh creates it)

Nothing here writes to AWS (beyond that one check object on S3), the lake or the DuckDB file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from sm_assets.core.accounts import account_state
from sm_assets.core.aws_clients import client_config
from sm_assets.core.config import Settings, ensure_writable_dir
from sm_assets.core.credentials import assume_role_session, role_arn
from sm_assets.core.errors import DENIED_CODES, REGION_NOT_ENABLED_CODES, ConfigError, LakeError
from sm_assets.core.layout import DAILY_STATUS_TABLE

MEMBER_ROLE_POLICY = "sm_assets/iam/member-role-policy.json"
MEMBER_TRUST_POLICY = "sm_assets/iam/member-role-trust-policy.json"
CALLER_POLICY = "sm_assets/iam/caller-policy.json"

ORG_PAGE_SIZE = 20

# The doctor should answer in seconds: a few quick retries instead of the collector's patient ones.
_DOCTOR_RETRIES = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=20)


@dataclass(frozen=True)
class DoctorCheck:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    skipped: bool = False  # not run because it does not apply or an earlier check failed (never a failure)


def _config() -> Config:
    return client_config().merge(_DOCTOR_RETRIES)


def _error(exc: Exception) -> tuple[str, str]:
    """(code, first line of the message) of an AWS exception."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or "ClientError")
        message = str(err.get("Message") or exc).splitlines()[0]
        return code, message
    text = str(exc).splitlines()[0] if str(exc) else ""
    return type(exc).__name__, text


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _skip(name: str, why: str) -> DoctorCheck:
    return DoctorCheck(name, True, why, skipped=True)


# ---------------------------------------------------------------------------------------------------------
# AWS checks


def _caller_identity(session: boto3.Session, region: str) -> tuple[dict, str]:
    """(sts:GetCallerIdentity answer, the STS endpoint botocore resolved) in `region`."""
    sts = session.client("sts", region_name=region, config=_config())
    return sts.get_caller_identity(), str(sts.meta.endpoint_url)


def _home(settings: Settings) -> str:
    return f"partition {settings.partition}, home region {settings.home_region} ({settings.home_region_source})"


def check_credentials(session: boto3.Session, settings: Settings) -> tuple[DoctorCheck, DoctorCheck, str | None]:
    """(credentials check, home_region check, caller ARN or None): sts:GetCallerIdentity in the home region.
    When STS there rejects the credentials the way a region not enabled does, they are tried once more in the
    partition's Organizations region (enabled in every account): working there, the home region is the fault."""
    home, fallback = settings.home_region, settings.organizations_region
    try:
        try:
            who, endpoint = _caller_identity(session, home)
        except ClientError as exc:
            if _error(exc)[0] not in REGION_NOT_ENABLED_CODES or home == fallback:
                raise
            home_code = _error(exc)[0]
            who, _ = _caller_identity(session, fallback)  # raises again when the credentials are the fault
            account = str(who.get("Account", "?"))
            arn = str(who.get("Arn", ""))
            return (
                DoctorCheck("credentials", True, f"{arn} (account {account}; answered by STS in {fallback})"),
                DoctorCheck(
                    "home_region",
                    False,
                    f"{_home(settings)}: STS there rejects the credentials ({home_code}) that STS in {fallback} "
                    f"accepts: {home} is an opt-in region not enabled in account {account}",
                    f"enable {home} in account {account} (Account > AWS Regions, or `aws account enable-region "
                    f"--region-name {home}`), or set SM_ASSETS_HOME_REGION to a region enabled there, e.g. {fallback}",
                ),
                arn,
            )
    except NoCredentialsError:
        return (
            DoctorCheck(
                "credentials",
                False,
                "no AWS credentials found",
                "configure the standard boto3 chain: AWS_PROFILE (run `aws sso login` for SSO profiles), "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an instance/task role",
            ),
            _skip("home_region", f"{_home(settings)}: no working credentials to try STS with"),
            None,
        )
    except (ClientError, BotoCoreError) as exc:
        code, message = _error(exc)
        return (
            DoctorCheck(
                "credentials",
                False,
                _short(f"sts:GetCallerIdentity in {home} failed ({code}): {message}"),
                "refresh or replace the credentials (expired session? `aws sso login`; wrong keys? keys of "
                f"another partition than {settings.partition}?); the caller needs {CALLER_POLICY}",
            ),
            _skip("home_region", f"{_home(settings)}: no working credentials to try STS with"),
            None,
        )
    arn = str(who.get("Arn", ""))
    return (
        DoctorCheck("credentials", True, f"{arn} (account {who.get('Account', '?')})"),
        DoctorCheck(
            "home_region",
            True,
            f"{_home(settings)}: STS answers at {endpoint}; Organizations is called in {fallback}",
        ),
        arn,
    )


def check_organizations(session: boto3.Session, settings: Settings) -> tuple[DoctorCheck, list[str]]:
    """(check, the ACTIVE account ids on the first ListAccounts page)."""
    if settings.accounts:
        return _skip(
            "organizations",
            f"SM_ASSETS_ACCOUNTS is set ({_plural(len(settings.accounts), 'account')}), ListAccounts not needed",
        ), []
    try:
        org = session.client("organizations", region_name=settings.organizations_region, config=_config())
        page = org.list_accounts(MaxResults=ORG_PAGE_SIZE)
    except (ClientError, BotoCoreError) as exc:
        code, message = _error(exc)
        return DoctorCheck(
            "organizations",
            False,
            _short(f"organizations:ListAccounts in {settings.organizations_region} failed ({code}): {message}"),
            "run from the management account or a delegated administrator for Organizations "
            f"(caller policy {CALLER_POLICY}), or list the accounts explicitly: "
            "SM_ASSETS_ACCOUNTS=111111111111,222222222222",
        ), []
    accounts = page.get("Accounts", [])
    active = sorted(a["Id"] for a in accounts if account_state(a) == "ACTIVE")
    more = ", more pages follow" if page.get("NextToken") else ""
    if not accounts:
        return DoctorCheck(
            "organizations",
            False,
            "organizations:ListAccounts returned no accounts",
            "is this identity in an organization? Otherwise set SM_ASSETS_ACCOUNTS=111111111111,...",
        ), []
    return DoctorCheck(
        "organizations",
        True,
        f"ListAccounts ok: {len(accounts)} accounts on the first page, {len(active)} ACTIVE{more}",
    ), active


def trust_principal(caller_arn: str | None) -> str:
    """What a member role's trust policy names for this caller: an assumed-role session trusts its role."""
    if not caller_arn:
        return "the collector identity"
    match = re.match(r"^arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/", caller_arn)
    if match:
        return f"arn:{match[1]}:iam::{match[2]}:role/{match[3]}"
    return caller_arn


def check_assume_role(
    session: boto3.Session, settings: Settings, accounts: Sequence[str], caller_arn: str | None
) -> tuple[DoctorCheck, dict[str, boto3.Session]]:
    """(check, member sessions of the sampled accounts whose role could be assumed, in sample order)."""
    if not accounts:
        return _skip("assume_role", "no accounts to sample (fix the organizations check or set SM_ASSETS_ACCOUNTS)"), {}
    sessions: dict[str, boto3.Session] = {}
    failures: list[str] = []
    for account_id in accounts:
        try:
            sessions[account_id] = assume_role_session(account_id, settings, session)
        except (ClientError, BotoCoreError) as exc:
            code, _ = _error(exc)
            failures.append(f"{account_id} ({code})")
    role = settings.role_name
    if not failures:
        return DoctorCheck(
            "assume_role",
            True,
            f"assumed {role} in {len(accounts)}/{len(accounts)} sampled accounts: {', '.join(accounts)}",
        ), sessions
    failed_ids = [f.split(" ", 1)[0] for f in failures]
    external = (
        f"; its trust policy must require sts:ExternalId = SM_ASSETS_EXTERNAL_ID ({settings.external_id!r})"
        if settings.external_id
        else ""
    )
    return DoctorCheck(
        "assume_role",
        False,
        f"AssumeRole {role} failed in {len(failures)}/{len(accounts)} sampled accounts: {', '.join(failures)}",
        f"create role {role} in {', '.join(failed_ids)} with the permissions of {MEMBER_ROLE_POLICY} and a trust "
        f"policy like {MEMBER_TRUST_POLICY} trusting {trust_principal(caller_arn)}{external} "
        f"(e.g. {role_arn(failed_ids[0], settings)}); the caller needs sts:AssumeRole ({CALLER_POLICY}); "
        f"`sm-assets iam-policy` prints the three for {settings.partition} and role {role}. "
        "Accounts left this way are collected as access_denied.",
    ), sessions


def check_regions(member_session: boto3.Session, account_id: str, regions: Sequence[str]) -> DoctorCheck:
    """ListEndpoints (MaxResults=1) in every configured region of one member account."""
    not_enabled: list[str] = []
    denied: list[str] = []
    broken: list[str] = []
    for region in regions:
        try:
            client = member_session.client("sagemaker", region_name=region, config=_config())
            client.list_endpoints(MaxResults=1)
        except (ClientError, BotoCoreError) as exc:
            code, message = _error(exc)
            if code in REGION_NOT_ENABLED_CODES:
                not_enabled.append(region)
            elif code in DENIED_CODES:
                denied.append(region)
            else:
                broken.append(f"{region} ({code}: {_short(message, 80)})")
    if not (not_enabled or denied or broken):
        return DoctorCheck("regions", True, f"SageMaker answers in {', '.join(regions)} (account {account_id})")
    problems, fixes = [], []
    if not_enabled:
        problems.append(f"not enabled in account {account_id}: {', '.join(not_enabled)}")
        fixes.append(
            f"enable the opt-in region(s) {', '.join(not_enabled)} for the organization's accounts "
            "(Account > AWS Regions, or `aws account enable-region --region-name REGION`) "
            "or drop them from SM_ASSETS_REGIONS"
        )
    if denied:
        problems.append(f"sagemaker:ListEndpoints denied in {', '.join(denied)}")
        fixes.append(
            f"attach {MEMBER_ROLE_POLICY} to the member role (check SCPs that deny SageMaker in those regions)"
        )
    if broken:
        problems.append(f"SageMaker failed in {', '.join(broken)}")
        fixes.append("check network access to the SageMaker endpoints (proxy, VPC endpoints, AWS_ENDPOINT_URL)")
    return DoctorCheck("regions", False, "; ".join(problems), "; ".join(fixes))


# ---------------------------------------------------------------------------------------------------------
# Local checks


def check_s3_data_dir(settings: Settings) -> DoctorCheck:
    """The S3 lake: the bucket lists (s3:ListBucket) and takes a PUT (s3:PutObject); the DuckDB file's local
    directory is writable."""
    from sm_assets.core import s3
    from sm_assets.core.snapshots import daily_days

    uri = settings.data_location
    fix = (
        f"create the bucket or fix SM_ASSETS_DATA_DIR; the deploying identity needs s3:ListBucket on "
        f"arn:{settings.partition}:s3:::{s3.bucket_of(uri)} and s3:GetObject/s3:PutObject/s3:DeleteObject on its "
        "objects; check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL and network access to S3"
    )
    try:
        days = len(daily_days(settings.lake_dir, DAILY_STATUS_TABLE))
        s3.ensure_writable(uri)
    except (ConfigError, LakeError) as exc:
        return DoctorCheck("data_dir", False, _short(str(exc), 300), fix)
    try:
        ensure_writable_dir(settings.duckdb_path.parent, "SM_ASSETS_DUCKDB_PATH")
    except ConfigError as exc:
        return DoctorCheck(
            "data_dir", False, str(exc), "point SM_ASSETS_DUCKDB_PATH at a file in a writable local directory"
        )
    return DoctorCheck(
        "data_dir",
        True,
        f"{uri} is reachable and writable ({s3.describe_target()}; {_plural(days, 'day')} of daily tables); "
        f"DuckDB file in {settings.duckdb_path.parent}",
    )


def check_data_dir(settings: Settings) -> DoctorCheck:
    if settings.on_s3:
        return check_s3_data_dir(settings)
    try:
        ensure_writable_dir(settings.data_dir)
    except ConfigError as exc:
        return DoctorCheck(
            "data_dir",
            False,
            str(exc),
            "point SM_ASSETS_DATA_DIR at a writable directory, or fix the directory's owner/permissions",
        )
    return DoctorCheck("data_dir", True, f"{settings.data_dir} is writable")


def check_duckdb(settings: Settings) -> DoctorCheck:
    import duckdb

    path = settings.duckdb_path
    if not path.exists():
        return DoctorCheck("duckdb", True, f"no file yet at {path} (the first `sm-assets refresh` creates it)")
    try:
        with duckdb.connect(str(path), read_only=True) as conn:
            rows = conn.execute(
                "SELECT table_schema, count(*) FROM information_schema.tables "
                "WHERE table_catalog = current_database() GROUP BY ALL ORDER BY ALL"
            ).fetchall()
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "lock" in message.lower():
            return DoctorCheck(
                "duckdb",
                False,
                _short(f"{path} is locked by another process: {message}", 240),
                "a client opened the file read-write and holds its lock; sm-assets never writes this file in place "
                "(a refresh writes only lake files, and new views replace the file by rename), so refreshes are not "
                "affected, but other readers are: open it read-only (`duckdb -readonly`, access_mode READ_ONLY)",
            )
        return DoctorCheck(
            "duckdb",
            False,
            _short(f"{path} cannot be opened ({type(exc).__name__}): {message}", 240),
            "the file holds only views over the Parquet lake: the next `sm-assets refresh` (or any daily tables "
            "run) replaces it; no data is lost",
        )
    views = ", ".join(f"{schema}: {n}" for schema, n in rows) or "none yet"
    return DoctorCheck("duckdb", True, f"{path} opens read-only; views by schema: {views}")


# ---------------------------------------------------------------------------------------------------------
# Entry points


def sample_accounts(settings: Settings, discovered: Sequence[str], sample: int) -> list[str]:
    """The accounts AssumeRole is tried on: the first `sample` configured (or discovered ACTIVE) accounts."""
    candidates = list(settings.accounts) if settings.accounts else list(discovered)
    return candidates[: max(0, sample)]


def run_doctor(settings: Settings, sample: int = 3, *, base_session: boto3.Session | None = None) -> list[DoctorCheck]:
    session = base_session or boto3.Session()
    checks: list[DoctorCheck] = []
    credentials, home_region, caller_arn = check_credentials(session, settings)
    checks += [credentials, home_region]
    if credentials.ok:
        organizations, discovered = check_organizations(session, settings)
        checks.append(organizations)
        if not home_region.ok:  # AssumeRole goes through STS in the home region
            checks.append(_skip("assume_role", f"STS does not answer in the home region {settings.home_region}"))
            sessions = {}
        else:
            assumed, sessions = check_assume_role(
                session, settings, sample_accounts(settings, discovered, sample), caller_arn
            )
            checks.append(assumed)
        if sessions:
            account_id, member = next(iter(sessions.items()))
            checks.append(check_regions(member, account_id, settings.regions))
        else:
            checks.append(_skip("regions", "no account whose role could be assumed"))
    else:
        for name in ("organizations", "assume_role", "regions"):
            checks.append(_skip(name, "no working credentials"))
    checks.append(check_data_dir(settings))
    checks.append(check_duckdb(settings))
    return checks


def format_check(check: DoctorCheck) -> str:
    status = "skip" if check.skipped else "ok  " if check.ok else "FAIL"
    line = f"{status} {check.name}: {check.detail}"
    if not check.ok and check.fix:
        line += f"  fix: {check.fix}"
    return line


def format_doctor(checks: Sequence[DoctorCheck]) -> str:
    return "\n".join(format_check(c) for c in checks)


def doctor_exit_code(checks: Sequence[DoctorCheck]) -> int:
    """0 when every check passed (or did not apply), 1 when any failed."""
    return 0 if all(c.ok for c in checks) else 1


def main_doctor(
    settings: Settings,
    sample: int = 3,
    echo: Callable[[str], None] = print,
    *,
    base_session: boto3.Session | None = None,
) -> int:
    """What `sm-assets doctor` runs: print one line per check, return the exit code."""
    checks = run_doctor(settings, sample, base_session=base_session)
    echo(format_doctor(checks))
    failed = [c.name for c in checks if not c.ok]
    skipped = sum(c.skipped for c in checks)
    summary = f"doctor: {len(checks) - len(failed) - skipped} ok"
    summary += f", {skipped} skipped" if skipped else ""
    summary += f", {len(failed)} failed" + (f" ({', '.join(failed)})" if failed else "")
    echo(summary)
    return doctor_exit_code(checks)

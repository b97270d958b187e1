"""The shipped IAM policies allow exactly what sm-assets calls, and nothing more.

A full `sm_assets.cli.demo.run_demo` runs in this process with every botocore client instrumented: each API
call is recorded as `<iam prefix>:<Operation>` with the credentials that signed it. Seeding calls (made by
`sm_assets.demo.seed` with the management / OrganizationAccountAccessRole credentials) happen before
`run_refresh` starts, so only calls made while `run_refresh` runs are attributed to the collector; each of
those must also come from the collector's modules (checked on the call stack). Right after the refresh,
against the same fake organization, `sm-assets doctor` (`sm_assets.doctor.run_doctor`) runs too: it is the
other shipped code path that needs these policies (it is what uses `sts:GetCallerIdentity`).

Credentials decide which policy applies: calls signed with the caller's own keys need the caller policy,
calls signed with keys that AssumeRole returned for the inventory role need the member-role policy.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
import pytest

import sm_assets
from sm_assets.core.config import DEFAULT_ROLE_NAME, Settings
from sm_assets.core.specs import RESOURCE_SPECS

IAM_DIR = Path(sm_assets.__file__).parent / "iam"
CALLER_POLICY = json.loads((IAM_DIR / "caller-policy.json").read_text())
MEMBER_POLICY = json.loads((IAM_DIR / "member-role-policy.json").read_text())
TRUST_POLICY = json.loads((IAM_DIR / "member-role-trust-policy.json").read_text())
INVENTORY_ROLE_ARN_PATTERN = f"arn:aws:iam::*:role/{DEFAULT_ROLE_NAME}"
CALLER_KEY = "testing"  # the demo's (and this module's) caller credentials
READ_ONLY_VERB = re.compile(r"^(List|Describe|Get)[A-Za-z0-9]*$")


# ---------------------------------------------------------------------------------------------
# IAM evaluation (the subset the shipped policies use: Allow/Deny, Action, Resource, wildcards)


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def wildcard_match(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    """IAM wildcards: `*` any run of characters, `?` exactly one (actions compare case-insensitively)."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    stmts = policy["Statement"]
    return [stmts] if isinstance(stmts, dict) else list(stmts)


def policy_actions(policy: dict[str, Any]) -> list[str]:
    return [a for s in statements(policy) if s["Effect"] == "Allow" for a in _as_list(s.get("Action"))]


def unused_actions(policy: dict[str, Any], used: set[str]) -> list[str]:
    """Policy actions (wildcards included) that match none of the `used` operations."""
    return [a for a in policy_actions(policy) if not any(wildcard_match(a, u, case_sensitive=False) for u in used)]


def statement_matches(stmt: dict[str, Any], action: str, resource: str) -> bool:
    # Conditions cannot be evaluated here: a conditional Allow never counts (conservative).
    if "Condition" in stmt and stmt["Effect"] == "Allow":
        return False
    actions_ok = any(wildcard_match(p, action, case_sensitive=False) for p in _as_list(stmt.get("Action")))
    resources_ok = any(wildcard_match(p, resource, case_sensitive=True) for p in _as_list(stmt.get("Resource")))
    return actions_ok and resources_ok


def allows(policy: dict[str, Any], action: str, resource: str = "*") -> bool:
    """Explicit Deny wins; otherwise some Allow must match. `resource="*"` means "not resource-scoped"."""
    stmts = statements(policy)
    if any(s["Effect"] == "Deny" and statement_matches(s, action, resource) for s in stmts):
        return False
    return any(s["Effect"] == "Allow" and statement_matches(s, action, resource) for s in stmts)


def test_wildcard_matcher() -> None:
    assert wildcard_match("sagemaker:List*", "sagemaker:ListTags", case_sensitive=False)
    assert wildcard_match("SageMaker:list*", "sagemaker:ListTags", case_sensitive=False)
    assert not wildcard_match("sagemaker:List*", "sagemaker:DescribeEndpoint", case_sensitive=False)
    assert wildcard_match("sagemaker:Describe?onitoring*", "sagemaker:DescribeMonitoringSchedule", case_sensitive=False)
    assert wildcard_match("arn:aws:iam::*:role/R", "arn:aws:iam::123456789012:role/R", case_sensitive=True)
    assert not wildcard_match("arn:aws:iam::*:role/R", "arn:aws:iam::123456789012:role/r", case_sensitive=True)
    assert not wildcard_match("arn:aws:iam::*:role/R", "arn:aws:iam::123456789012:role/R2", case_sensitive=True)
    assert not wildcard_match("a.b", "axb", case_sensitive=True)  # regex characters are literal
    deny = {
        "Statement": [
            {"Effect": "Allow", "Action": "s:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s:X", "Resource": "*"},
        ]
    }
    assert allows(deny, "s:Y") and not allows(deny, "s:X")
    scoped = {"Statement": {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": INVENTORY_ROLE_ARN_PATTERN}}
    assert allows(scoped, "sts:AssumeRole", f"arn:aws:iam::111122223333:role/{DEFAULT_ROLE_NAME}")
    assert not allows(scoped, "sts:AssumeRole", "arn:aws:iam::111122223333:role/Admin")
    assert not allows(scoped, "sts:AssumeRole")  # not granted on every resource


# ---------------------------------------------------------------------------------------------
# Static least-privilege checks (fast)


@pytest.mark.parametrize("name,policy", [("caller", CALLER_POLICY), ("member", MEMBER_POLICY)])
def test_policy_is_least_privilege(name: str, policy: dict[str, Any]) -> None:
    assert policy["Version"] == "2012-10-17"
    for stmt in statements(policy):
        assert stmt["Effect"] == "Allow", stmt
        assert not {"NotAction", "NotResource", "NotPrincipal", "Principal"} & set(stmt), stmt
        for action in _as_list(stmt["Action"]):
            service, _, verb = action.partition(":")
            assert action != "*" and verb and "*" not in service and verb != "*", f"{name}: {action} is a wildcard"
            assert READ_ONLY_VERB.match(verb) or action == "sts:AssumeRole", f"{name}: {action} is not read-only"
    if name == "member":
        assert all(a.startswith("sagemaker:") for a in policy_actions(policy))
    else:
        assert not [a for a in policy_actions(policy) if a.startswith("sagemaker:")]
        # AssumeRole only on the inventory role, never on every role.
        for stmt in statements(policy):
            if any(wildcard_match(a, "sts:AssumeRole", case_sensitive=False) for a in _as_list(stmt["Action"])):
                assert _as_list(stmt["Resource"]) == [INVENTORY_ROLE_ARN_PATTERN]


def test_trust_policy_names_one_principal_and_requires_external_id() -> None:
    (stmt,) = statements(TRUST_POLICY)
    assert stmt["Effect"] == "Allow" and _as_list(stmt["Action"]) == ["sts:AssumeRole"]
    principals = _as_list(stmt["Principal"]["AWS"])
    assert principals and all(p != "*" and ":role/" in p for p in principals)
    assert "sts:ExternalId" in stmt["Condition"]["StringEquals"]


def test_every_spec_operation_is_in_the_member_policy() -> None:
    needed = sorted({f"sagemaker:{op}" for spec in RESOURCE_SPECS for op in spec.api_operations})
    assert [op for op in needed if not allows(MEMBER_POLICY, op)] == []
    # And the other way round: no member action that no spec calls.
    assert unused_actions(MEMBER_POLICY, set(needed)) == []


# ---------------------------------------------------------------------------------------------
# Recording a full demo run


# The collector's modules: every AWS call a refresh makes starts in one of them.
COLLECTOR_MODULES = frozenset(
    f"sm_assets/core/{name}.py" for name in ("collection", "accounts", "credentials", "process_shards")
)


@dataclass(frozen=True)
class Call:
    phase: str  # "seed" (before run_refresh), "collect" (while run_refresh runs), "doctor" (right after)
    action: str  # iam prefix:Operation
    identity: str  # "caller", "role:<assumed role arn>" or "unknown:<access key>"
    resource: str  # RoleArn / ResourceArn parameter, else "*"
    modules: frozenset[str]  # sm_assets source files on the call stack, e.g. "sm_assets/core/collection.py"


@dataclass
class Recorder:
    phase: str = "seed"
    calls: list[Call] = field(default_factory=list)
    doctor_checks: list[Any] = field(default_factory=list)
    assumed: dict[str, str] = field(default_factory=dict)  # access key id -> role ARN it was issued for
    lock: threading.Lock = field(default_factory=threading.Lock)

    def identity(self, access_key: str | None) -> str:
        if access_key == CALLER_KEY:
            return "caller"
        with self.lock:
            role = self.assumed.get(access_key or "")
        return f"role:{role}" if role else f"unknown:{access_key}"

    def instrument(self, client: Any, access_key: str | None) -> None:
        # `before-call` sees the serialized request; the API parameters (RoleArn, ResourceArn) are only
        # visible at `before-parameter-build`, which shares the per-call `context` dict with both.
        def keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["iam_test_params"] = dict(params)

        def before_call(model: Any, context: dict[str, Any], **_: Any) -> None:
            params = context.get("iam_test_params", {})
            prefix = model.service_model.signing_name or model.service_model.endpoint_prefix
            package = str(Path(sm_assets.__file__).parent.parent) + "/"
            modules = frozenset(
                f.filename.removeprefix(package)
                for f in traceback.extract_stack()
                if f.filename.startswith(package + "sm_assets/")
            )
            call = Call(
                phase=self.phase,
                action=f"{prefix}:{model.name}",
                identity=self.identity(access_key),
                resource=str(params.get("RoleArn") or params.get("ResourceArn") or "*"),
                modules=modules,
            )
            with self.lock:
                self.calls.append(call)

        def after_assume_role(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            creds = parsed.get("Credentials") or {}
            role_arn = context.get("iam_test_params", {}).get("RoleArn")
            if creds.get("AccessKeyId") and role_arn:
                with self.lock:
                    self.assumed[creds["AccessKeyId"]] = role_arn

        client.meta.events.register("before-parameter-build.*.*", keep_params)
        client.meta.events.register("before-call.*.*", before_call)
        client.meta.events.register("after-call.sts.AssumeRole", after_assume_role)


@pytest.fixture(scope="module")
def demo_calls(tmp_path_factory: pytest.TempPathFactory) -> Recorder:
    """Run the whole demo once, in process, with every botocore client instrumented."""
    import sm_assets.cli.demo as cli

    recorder = Recorder()
    real_create_client = botocore.session.Session.create_client
    real_run_refresh = cli.run_refresh

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = real_create_client(self, *args, **kwargs)
        access_key = kwargs.get("aws_access_key_id")
        if access_key is None:
            creds = self.get_credentials()
            access_key = creds.access_key if creds is not None else None
        recorder.instrument(client, access_key)
        return client

    def run_refresh(settings: Settings, *args: Any, **kwargs: Any) -> Any:
        from sm_assets.doctor import run_doctor

        recorder.phase = "collect"
        try:
            outcomes = real_run_refresh(settings, *args, **kwargs)
            recorder.phase = "doctor"  # still inside the demo's fake AWS and its environment
            recorder.doctor_checks = run_doctor(settings)
            return outcomes
        finally:
            recorder.phase = "after"

    data = tmp_path_factory.mktemp("iam-demo")
    output: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        # Same isolation as conftest's autouse fixture (which is function-scoped, so not yet active here).
        for var in (
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "SM_ASSETS_ACCOUNTS",
            "SM_ASSETS_REGIONS",
            "SM_ASSETS_ROLE_NAME",
            "SM_ASSETS_EXTERNAL_ID",
            "SM_ASSETS_HOME_REGION",
        ):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", CALLER_KEY)
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", "/dev/null")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        mp.setenv("SM_ASSETS_DATA_DIR", str(data / "data"))
        mp.setenv("DAGSTER_HOME", str(data / "data" / "dagster_home"))
        # The recorder hooks botocore in this process: keep the collector's calls here (worker processes
        # run the same collector code, so the calls recorded are the calls they would make).
        mp.setenv("SM_ASSETS_COLLECT_PROCESSES", "1")
        mp.setattr(botocore.session.Session, "create_client", create_client)
        mp.setattr(cli, "run_refresh", run_refresh)
        code = cli.run_demo(Settings.from_env(), echo=output.append)
    assert code == 0, "\n".join(output[-40:])
    return recorder


def collector_calls(recorder: Recorder) -> list[Call]:
    return [c for c in recorder.calls if c.phase == "collect"]


def product_calls(recorder: Recorder) -> list[Call]:
    """What a real deployment does with the policies: refresh, and `sm-assets doctor`."""
    return [c for c in recorder.calls if c.phase in ("collect", "doctor")]


def used_actions(recorder: Recorder, identity_prefix: str) -> set[str]:
    return {c.action for c in product_calls(recorder) if c.identity.startswith(identity_prefix)}


def test_recording_separates_seeding_from_collection(demo_calls: Recorder) -> None:
    seed = {c.action for c in demo_calls.calls if c.phase == "seed"}
    assert {"organizations:CreateOrganization", "sagemaker:CreateModelQualityJobDefinition"} <= seed
    collected = collector_calls(demo_calls)
    assert collected and not [c for c in demo_calls.calls if c.phase == "after"]
    # Every call while run_refresh ran was made by the collector module, not by Dagster or the fake server.
    assert [c for c in collected if not c.modules & COLLECTOR_MODULES] == []
    doctor = [c for c in demo_calls.calls if c.phase == "doctor"]
    assert doctor and [c for c in doctor if "sm_assets/doctor.py" not in c.modules] == []
    assert {c.action for c in doctor} >= {"sts:GetCallerIdentity", "sts:AssumeRole", "sagemaker:ListEndpoints"}
    assert demo_calls.doctor_checks[0].name == "credentials" and demo_calls.doctor_checks[0].ok
    assert {c.action for c in collected} >= {
        "organizations:ListAccounts",
        "sts:AssumeRole",
        "sagemaker:ListModelQualityJobDefinitions",
        "sagemaker:DescribeModelQualityJobDefinition",
        "sagemaker:ListMonitoringSchedules",
        "sagemaker:DescribeMonitoringSchedule",
        "sagemaker:ListEndpoints",
        "sagemaker:ListTags",
    }
    assert not [
        c.action for c in collected if not READ_ONLY_VERB.match(c.action.split(":")[1]) and c.action != "sts:AssumeRole"
    ]


def test_every_call_is_allowed_by_the_shipped_policies(demo_calls: Recorder) -> None:
    denied = []
    for call in sorted(set(product_calls(demo_calls)), key=lambda c: (c.phase, c.action, c.identity, c.resource)):
        if call.identity == "caller":
            ok = allows(CALLER_POLICY, call.action, call.resource)
        elif call.identity.startswith("role:"):
            role_arn = call.identity.removeprefix("role:")
            # Member credentials come only from the inventory role, which carries the member policy.
            ok = wildcard_match(INVENTORY_ROLE_ARN_PATTERN, role_arn, case_sensitive=True) and allows(
                MEMBER_POLICY, call.action, call.resource
            )
        else:
            ok = False  # signed with credentials that are neither the caller's nor the inventory role's
        if not ok:
            denied.append((call.phase, call.identity, call.action, call.resource))
    assert denied == []


def test_assume_role_targets_only_the_inventory_role(demo_calls: Recorder) -> None:
    assumes = [c for c in product_calls(demo_calls) if c.action == "sts:AssumeRole"]
    assert assumes and all(c.identity == "caller" for c in assumes)
    assert all(wildcard_match(INVENTORY_ROLE_ARN_PATTERN, c.resource, case_sensitive=True) for c in assumes)
    # SageMaker is only ever read through the assumed role, Organizations/STS only as the caller.
    for call in product_calls(demo_calls):
        expected = "role:" if call.action.startswith("sagemaker:") else "caller"
        assert call.identity.startswith(expected), call


def test_every_member_policy_action_is_used(demo_calls: Recorder) -> None:
    used = used_actions(demo_calls, "role:")
    assert unused_actions(MEMBER_POLICY, used) == []


def test_every_caller_policy_action_is_used(demo_calls: Recorder) -> None:
    used = used_actions(demo_calls, "caller")
    assert unused_actions(CALLER_POLICY, used) == []

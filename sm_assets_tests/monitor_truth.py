"""What `reports.endpoint_monitor_coverage` must say about the seeded demo organization, computed in plain
Python from the seed's ground truth (`DemoOrg`) and the rules as docs/reports.md states them; it never runs
the product's SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sm_assets.demo.seed import DemoOrg, EndpointTruth, RegionTruth, ScheduleTruth, schedule_interval

MONITOR_TYPES = ("DataQuality", "ModelQuality", "ModelBias", "ModelExplainability")
# (needs Input, needs Output), per the rules.
NEEDS = {
    "DataQuality": (True, False),
    "ModelQuality": (False, True),
    "ModelBias": (True, True),
    "ModelExplainability": (True, False),
}
SERVING = {"InService", "Updating", "SystemUpdating"}


@dataclass(frozen=True)
class Judgement:
    state: str
    reasons: tuple[str, ...]
    schedule_name: str | None
    last_execution_status: str | None


def capture_disabled(endpoint: EndpointTruth) -> bool:
    return (
        endpoint.capture_enabled is not True
        or endpoint.capture_status != "Started"
        or endpoint.sampling_percentage == 0
    )


def _reasons(
    schedule: ScheduleTruth, endpoint: EndpointTruth, modes: set[str], monitor_type: str, collected_at: datetime
) -> tuple[str, ...]:
    needs_input, needs_output = NEEDS[monitor_type]
    out = []
    if schedule.status != "Scheduled":
        out.append("schedule_not_scheduled")
    if not schedule.definition_exists:
        out.append("definition_missing")
    if capture_disabled(endpoint):
        out.append("capture_disabled")
    if needs_output and not modes & {"Output", "InputAndOutput"}:
        out.append("capture_missing_output")
    if needs_input and not modes & {"Input", "InputAndOutput"}:
        out.append("capture_missing_input")
    if schedule.last_execution_status is None:
        out.append("never_ran")
    if schedule.last_execution_status in ("Failed", "Stopped"):
        out.append("last_execution_failed")
    last = schedule.last_execution_scheduled_time
    if last is not None and last < collected_at - 2 * schedule_interval(schedule.schedule_expression):
        out.append("stale")
    return tuple(sorted(out))


def judge(truth: RegionTruth, endpoint: EndpointTruth, monitor_type: str, collected_at: datetime) -> Judgement:
    configs = {c.name: c for c in truth.endpoint_configs}
    config = configs.get(endpoint.config_name)
    modes = set(config.capture_modes) if config is not None else set()
    candidates = [
        s
        for s in truth.schedules
        if s.monitoring_type == monitor_type and s.endpoint_name and s.endpoint_name.lower() == endpoint.name.lower()
    ]
    if not candidates:
        return Judgement("missing", ("no_schedule",), None, None)
    judged = [(_reasons(s, endpoint, modes, monitor_type, collected_at), s) for s in candidates]

    def rank(item: tuple[tuple[str, ...], ScheduleTruth]) -> tuple:
        reasons, s = item
        last = s.last_execution_scheduled_time
        return (len(reasons), -(last.timestamp()) if last else float("inf"), s.name)

    reasons, best = min(judged, key=rank)
    return Judgement("effective" if not reasons else "degraded", reasons, best.name, best.last_execution_status)


def expected_endpoint_monitor(
    org: DemoOrg, collected_at: dict[str, datetime]
) -> dict[tuple[str, str, str, str], Judgement]:
    """(account, region, endpoint name, monitor type) -> judgement, for every endpoint of every collected
    account-region (denied accounts and disabled regions have none to judge)."""
    out = {}
    for (account, region), truth in org.resources.items():
        if account in org.denied_account_ids or truth.region_disabled:
            continue
        for endpoint in truth.endpoints:
            for monitor_type in MONITOR_TYPES:
                out[(account, region, endpoint.name, monitor_type)] = judge(
                    truth, endpoint, monitor_type, collected_at[account]
                )
    return out

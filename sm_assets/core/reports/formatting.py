"""Reports for people: the worst accounts, the markdown summary, terminal tables."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd
from tabulate import tabulate

from sm_assets.core import statuses
from sm_assets.core.reports.frames import conform, empty_frame, findings_total, isna, row_dict
from sm_assets.core.reports.schemas import WORST_ACCOUNTS_SCHEMA
from sm_assets.core.specs import MONITOR_TYPES


def worst_accounts(coverage_df: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """Account-level coverage (sums over ok regions), worst first (WORST_ACCOUNTS_COLUMNS).

    Order: known coverage ascending (ties: denied, error, ok; then most unmonitored endpoints), then
    accounts with NULL coverage (denied, error, ok-without-endpoints). Uses the latest report_date.
    """
    if coverage_df.empty:
        return empty_frame(WORST_ACCOUNTS_SCHEMA)
    cov = coverage_df[coverage_df["report_date"] == coverage_df["report_date"].max()]
    ok = cov["collection_status"].isin(statuses.COUNTED)
    work = pd.DataFrame(
        {
            "account_id": cov["account_id"],
            "snapshot_date": cov["snapshot_date"],
            "ok": ok,
            "denied": cov["collection_status"].eq("access_denied"),
            "error": cov["collection_status"].eq("error"),
            "stale": cov["collection_status"].eq(statuses.STALE),
            "ins": cov["endpoints_in_service"].astype("Float64").where(ok),
            "act": cov["endpoints_with_active_schedule"].astype("Float64").where(ok),
        }
    )
    grouped = work.groupby("account_id", sort=True)
    acc = grouped.agg(
        snapshot_date=("snapshot_date", "max"),
        regions_ok=("ok", "sum"),
        regions_total=("ok", "size"),
        denied=("denied", "any"),
        error=("error", "any"),
        stale=("stale", "any"),
    )
    sums = grouped[["ins", "act"]].sum(min_count=1)  # all regions unknown -> NULL, not 0
    acc["endpoints_in_service"] = sums["ins"]
    acc["endpoints_with_active_schedule"] = sums["act"]
    acc["endpoints_unmonitored"] = sums["ins"] - sums["act"]
    acc["coverage_pct"] = (100 * sums["act"] / sums["ins"]).where(sums["ins"] > 0)
    acc["collection_status"] = "ok"
    acc.loc[acc["stale"], "collection_status"] = statuses.STALE
    acc.loc[acc["error"], "collection_status"] = "error"
    acc.loc[acc["denied"], "collection_status"] = "access_denied"
    acc["_null"] = acc["coverage_pct"].isna()
    acc["_rank"] = acc["collection_status"].map({"access_denied": 0, "error": 1, statuses.STALE: 2, "ok": 3})
    acc["_unmon"] = acc["endpoints_unmonitored"].fillna(0)
    acc = acc.reset_index().sort_values(
        ["_null", "coverage_pct", "_rank", "_unmon", "account_id"],
        ascending=[True, True, True, False, True],
        na_position="last",
    )
    return conform(acc.head(n), WORST_ACCOUNTS_SCHEMA)


def summary_markdown(
    summary_row: Mapping[str, Any] | pd.Series,
    worst_df: pd.DataFrame,
    previous_row: Mapping[str, Any] | pd.Series | None,
) -> str:
    """Markdown: fleet summary, the worst accounts table, and the change since the previous date."""
    s = row_dict(summary_row)
    total = findings_total(s)
    lines = [
        f"## Model quality monitoring: {s['report_date']}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| accounts (ok / denied / error) | {s['accounts_total']} ({s['accounts_ok']} / "
        f"{s['accounts_denied']} / {s['accounts_error']}) |",
        f"| in-service endpoints (ok regions) | {s['endpoints_in_service']} |",
        f"| with an active ModelQuality schedule | {s['endpoints_with_active_schedule']} |",
        f"| fleet coverage | {pct(s['fleet_coverage_pct'])} |",
        f"| findings (high / medium / low) | {total} ({s['findings_high']} / {s['findings_medium']} / "
        f"{s['findings_low']}) |",
        "",
        f"### {len(worst_df)} worst accounts",
        "",
        markdown_table(worst_df) if len(worst_df) else "_No accounts._",
        "",
    ]
    if previous_row is not None:
        p = row_dict(previous_row)
        prev_total = findings_total(p)
        cov_change = (
            None
            if s["fleet_coverage_pct"] is None or p["fleet_coverage_pct"] is None
            else s["fleet_coverage_pct"] - p["fleet_coverage_pct"]
        )
        lines += [
            f"### Change since {p['report_date']}",
            "",
            f"- coverage: {signed(cov_change, ' pts', 1)} ({pct(p['fleet_coverage_pct'])} -> "
            f"{pct(s['fleet_coverage_pct'])})",
            f"- findings: {signed(total - prev_total)} ({prev_total} -> {total})",
        ]
    elif s.get("previous_report_date") is not None:
        lines += [
            f"### Change since {s['previous_report_date']}",
            "",
            f"- coverage: {signed(s.get('coverage_change_pts'), ' pts', 1)}",
            f"- findings: {signed(s.get('findings_change'))}",
        ]
    else:
        lines += ["### Change", "", "No previous report date."]
    return "\n".join(lines) + "\n"


def format_terminal_table(df: pd.DataFrame) -> str:
    """The frame as a terminal table: numbers right-aligned, floats to 1 decimal, NULL as '-'."""
    return text_table([str(c) for c in df.columns], df.itertuples(index=False, name=None), floatfmt=".1f")


def text_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    missing: str = "-",
    floatfmt: str = "g",
    max_width: int | None = None,
) -> str:
    """Plain aligned text (tabulate's "simple" format): numeric columns right-aligned, the others left-aligned
    and never read as numbers (an account id keeps its leading zeros); NULL as `missing`; text longer than
    `max_width` cut with an ellipsis."""

    def is_number(v: Any) -> bool:
        return isinstance(v, numbers.Number) and not isinstance(v, bool)

    def value(v: Any) -> Any:
        if v is None or isna(v):
            return None
        if is_number(v):
            return v
        text = cell(v)
        return text if max_width is None or len(text) <= max_width else text[: max_width - 1] + "…"

    body = [[value(v) for v in row] for row in rows]
    textual = [i for i in range(len(headers)) if not all(is_number(r[i]) for r in body if r[i] is not None)]
    return tabulate(
        body,
        headers=list(headers),
        tablefmt="simple",
        floatfmt=floatfmt,
        missingval=missing,
        numalign="right",
        stralign="left",
        disable_numparse=textual,
    )


def pct(value: Any) -> str:
    return "n/a" if value is None or isna(value) else f"{float(value):.1f}%"


def signed(value: Any, unit: str = "", decimals: int = 0) -> str:
    if value is None or isna(value):
        return "n/a"
    return f"{float(value):+.{decimals}f}{unit}"


def cell(value: Any) -> str:
    if value is None or isna(value):
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def markdown_table(df: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = [
        "| " + " | ".join(cell(v).replace("|", "\\|") for v in row) + " |"
        for row in df.itertuples(index=False, name=None)
    ]
    return "\n".join([header, sep, *rows])


MONITOR_STATES = ("effective", "degraded", "missing")


def monitor_matrix(endpoint_monitor: pd.DataFrame) -> pd.DataFrame:
    """Serving endpoints by monitoring type and state: one row per type, then the most common reasons."""
    serving = (
        endpoint_monitor[endpoint_monitor["serving"].astype(bool)] if not endpoint_monitor.empty else endpoint_monitor
    )
    out = []
    for monitor_type in MONITOR_TYPES:
        rows = serving[serving["monitor_type"] == monitor_type] if not serving.empty else serving
        counts = {state: int((rows["state"] == state).sum()) if not rows.empty else 0 for state in MONITOR_STATES}
        total = sum(counts.values())
        reasons = pd.Series([r for rs in rows["reasons"] for r in rs if r != "no_schedule"], dtype=object)
        top = ", ".join(f"{r} {n}" for r, n in reasons.value_counts().head(3).items()) if len(reasons) else ""
        out.append(
            {
                "monitor_type": monitor_type,
                "serving_endpoints": total,
                **counts,
                "effective_pct": round(100.0 * counts["effective"] / total, 1) if total else None,
                "top_reasons": top,
            }
        )
    return pd.DataFrame(out)


def states_by_monitor_type(endpoint_monitor: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{monitor type: {state: serving endpoints}} (the endpoint monitor report's metadata)."""
    matrix = monitor_matrix(endpoint_monitor)
    return {row.monitor_type: {s: int(getattr(row, s)) for s in MONITOR_STATES} for row in matrix.itertuples()}

"""A self-contained HTML chart (inline SVG, no scripts, no downloads): coverage by account + trend."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _bars_svg(accounts: pd.DataFrame) -> str:
    row_h, label_w, bar_w = 22, 190, 420
    rows = []
    for i, r in enumerate(accounts.itertuples(index=False)):
        y = 10 + i * row_h
        pct = _num(r.coverage_pct)
        label = html.escape(f"{r.account_id}")
        if pct is None:
            note = html.escape(str(r.collection_status if r.collection_status != "ok" else "no in-service endpoints"))
            rows.append(f'<text x="{label_w + 4}" y="{y + 14}" fill="#888">unknown ({note})</text>')
        else:
            color = "#c0392b" if pct < 50 else "#e67e22" if pct < 80 else "#27ae60"
            rows.append(
                f'<rect x="{label_w}" y="{y}" width="{bar_w * pct / 100:.1f}" height="{row_h - 6}" '
                f'fill="{color}"/><text x="{label_w + bar_w * pct / 100 + 4:.1f}" y="{y + 14}">'
                f"{pct:.1f}%</text>"
            )
        rows.append(f'<text x="0" y="{y + 14}">{label}</text>')
    height = 20 + row_h * len(accounts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 80}" height="{height}" '
        f'font-family="sans-serif" font-size="12">{"".join(rows)}</svg>'
    )


def _trend_svg(trend: pd.DataFrame) -> str:
    w, h, pad = 640, 200, 36
    points = [(str(r.report_date), _num(r.fleet_coverage_pct)) for r in trend.itertuples(index=False)]
    known = [(i, p) for i, (_, p) in enumerate(points) if p is not None]
    if not known:
        return "<p>No fleet coverage yet.</p>"
    step = (w - 2 * pad) / max(1, len(points) - 1)

    def xy(i: int, pct: float) -> tuple[float, float]:
        return pad + i * step, h - pad - (h - 2 * pad) * pct / 100

    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, p) for i, p in known))
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#2c3e50"><title>{html.escape(points[i][0])}: '
        f"{p:.1f}%</title></circle>"
        for i, p in known
        for x, y in [xy(i, p)]
    )
    axis = (
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#999"/>'
        f'<text x="4" y="{pad}">100%</text><text x="4" y="{h - pad}">0%</text>'
        f'<text x="{pad}" y="{h - 8}">{html.escape(points[0][0])}</text>'
        f'<text x="{w - pad - 70}" y="{h - 8}">{html.escape(points[-1][0])}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
        f'font-size="11">{axis}<polyline points="{path}" fill="none" stroke="#2c3e50" stroke-width="2"/>'
        f"{dots}</svg>"
    )


def coverage_chart_html(report_date: str, accounts: pd.DataFrame, trend: pd.DataFrame) -> str:
    """accounts: WORST_ACCOUNTS columns (account_id, collection_status, coverage_pct, ...);
    trend: TREND columns (report_date, fleet_coverage_pct, ...)."""
    title = f"Model quality monitoring coverage, {html.escape(report_date)}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body style='font-family:sans-serif'><h1>{title}</h1>"
        "<h2>Coverage by account (in-service endpoints with an active ModelQuality schedule)</h2>"
        f"{_bars_svg(accounts)}<h2>Fleet coverage trend</h2>{_trend_svg(trend)}</body></html>"
    )

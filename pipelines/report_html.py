"""The KPI report as one self-contained HTML file: Plotly charts with plotly.js inline.

A bank's intranet, like this machine, reaches no CDN: the installed package's plotly.min.js
goes into the file once (with the first chart), so the file opens offline and can be mailed.
"""

from __future__ import annotations

import html
from pathlib import Path

from pipelines.cli.figures import interval, money, percent, points

GROUP_LABELS = {"treatment": "Treatment (optimized)", "control": "Holdout (default arm)"}
GROUP_COLOURS = {"treatment": "31, 119, 180", "control": "255, 127, 14"}


def conversion_by_day(report: dict):
    """Conversion rate per decision day and group, with its Wilson 95% band."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for group, label in GROUP_LABELS.items():
        days = [d for d in report["days"] if d[group]["conversion_rate"] is not None]
        x = [str(d["date"]) for d in days]
        rgb = GROUP_COLOURS[group]
        band_x = x + x[::-1]
        band_y = [d[group]["ci_high"] for d in days] + [d[group]["ci_low"] for d in days][::-1]
        band = {"mode": "lines", "fill": "toself", "fillcolor": f"rgba({rgb}, 0.15)", "line": {"width": 0}}
        fig.add_trace(go.Scatter(x=band_x, y=band_y, hoverinfo="skip", name=f"{label}: 95% band", **band))
        fig.add_trace(go.Scatter(x=x, y=[d[group]["conversion_rate"] for d in days], mode="lines+markers",
                                 line={"color": f"rgb({rgb})"}, name=label))  # fmt: skip
    fig.update_layout(title="Conversion rate per decision day (matured sends)", yaxis_tickformat=".1%")
    return fig


def lift_by_day(report: dict):
    """Lift in percentage points per day with its 95% interval, and the window's pooled lift."""
    import plotly.graph_objects as go

    days = [d for d in report["days"] if d["lift"]["absolute"] is not None]
    lift = [d["lift"]["absolute"] * 100 for d in days]
    fig = go.Figure(
        go.Scatter(
            x=[str(d["date"]) for d in days],
            y=lift,
            mode="markers",
            name="lift per day",
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [d["lift"]["ci_high"] * 100 - v for d, v in zip(days, lift, strict=True)],
                "arrayminus": [v - d["lift"]["ci_low"] * 100 for d, v in zip(days, lift, strict=True)],
            },
        )
    )
    pooled = report["performance"]["lift"]
    if pooled["absolute"] is not None:
        fig.add_hline(y=pooled["absolute"] * 100, line_dash="dash",
                      annotation_text=f"window: {points(pooled['absolute'])} "
                      f"({interval(pooled['ci_low'], pooled['ci_high'], points)})")  # fmt: skip
    fig.add_hline(y=0, line_color="grey")
    fig.update_layout(title="Lift over the holdout (percentage points, 95% CI)", yaxis_ticksuffix=" pp")
    return fig


def arm_posteriors(report: dict):
    """Posterior mean conversion per arm with its 95% credible interval."""
    import plotly.graph_objects as go

    arms = report["arms"]
    means = [a["posterior_mean"] for a in arms]
    fig = go.Figure(
        go.Scatter(
            x=means,
            y=[a["arm_key"] for a in arms],
            mode="markers",
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [a["ci_high"] - m for a, m in zip(arms, means, strict=True)],
                "arrayminus": [m - a["ci_low"] for a, m in zip(arms, means, strict=True)],
            },
            customdata=[a["prob_best"] for a in arms],
            hovertemplate="%{y}<br>mean %{x:.2%}<br>P(best) %{customdata:.1%}<extra></extra>",
        )
    )
    fig.update_layout(title="Posterior mean conversion per arm (95% credible interval)",
                      xaxis_tickformat=".1%", height=max(320, 60 + 28 * len(arms)))  # fmt: skip
    return fig


CHARTS = (conversion_by_day, lift_by_day, arm_posteriors)


def _summary_html(report: dict) -> str:
    perf = report["performance"]
    t, c = perf["treatment"], perf["control"]
    rows = [
        ("Sends", f"{t['sends']:,}", f"{c['sends']:,}"),
        ("Matured", f"{t['matured']:,}", f"{c['matured']:,}"),
        ("Conversions", f"{t['conversions']:,}", f"{c['conversions']:,}"),
        ("Conversion rate", percent(t["conversion_rate"]), percent(c["conversion_rate"])),
        ("Opened", percent(t["open_rate"]), percent(c["open_rate"])),
        ("Click-through", percent(t["click_through_rate"]), percent(c["click_through_rate"])),
        ("Viewed the landing page", percent(t["view_rate"]), percent(c["view_rate"])),
        ("Revenue", money(t["revenue"]), money(c["revenue"])),
        ("Cost", money(t["cost"]), money(c["cost"])),
    ]
    lift = perf["lift"]
    body = "".join(f"<tr><th>{html.escape(a)}</th><td>{b}</td><td>{c_}</td></tr>" for a, b, c_ in rows)
    return (
        f"<table><tr><th></th><th>{GROUP_LABELS['treatment']}</th><th>{GROUP_LABELS['control']}</th></tr>"
        f"{body}</table><p>Lift {points(lift['absolute'])} "
        f"(95% CI {interval(lift['ci_low'], lift['ci_high'], points)}), ROI {percent(perf['roi'])}, "
        f"exploration share {percent(perf['exploration_share'])}, pending {perf['pending']:,}.</p>"
    )


def write_html(report: dict, path: Path) -> Path:
    import plotly.io as pio

    # plotly.js once, with the first chart; the later ones use it
    charts = [
        pio.to_html(chart(report), include_plotlyjs=k == 0, full_html=False) for k, chart in enumerate(CHARTS)
    ]
    window = report["window"]
    title = html.escape(f"{report['campaign']}: {window['since']} to {window['until']}")
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:right}</style>"
        f"</head><body><h1>{title}</h1><p>as of {report['as_of']:%Y-%m-%d %H:%M} UTC</p>"
        f"{_summary_html(report)}{''.join(charts)}</body></html>"
    )
    path.write_text(page, encoding="utf-8")
    return path

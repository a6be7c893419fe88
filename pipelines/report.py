"""A campaign's KPI report for marketing ops: one window of decision days, as figures.

Everything here is pipelines.performance's: the pooled KPIs are :func:`campaign_performance`
of the window, the per-day rows are the same function on each day that has decisions (so the
attribution rule stays written once), and the per-arm / per-parameter-value posteriors are
:func:`parameter_performance` on the marts' statistics. This module only gathers them and
flattens them into the one tidy table the CSV export writes.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from pipelines.campaign_store import Campaign
from pipelines.performance import (
    Window,
    campaign_performance,
    learning_statistics,
    parameter_performance,
    wilson_interval,
)

GROUPS = ("treatment", "control")


def campaign_report(engine: sa.Engine, campaign: Campaign, window: Window, *, now: datetime) -> dict:
    """The pooled KPIs of ``window``, one row per decision day with decisions, and the posteriors."""
    performance = campaign_performance(engine, campaign, window, now=now)
    days = [
        _day_row(campaign_performance(engine, campaign, Window(day, day), now=now))
        for day in decision_days(engine, campaign.campaign_id, window)
    ]
    _, pulls, rewards, source = learning_statistics(engine, campaign.campaign_id, None, None)
    parameters = parameter_performance(engine, campaign, pulls, rewards, source)
    return {
        "campaign": campaign.spec.name,
        "window": performance["window"],
        "as_of": now,
        "performance": performance,
        "days": days,
        "arms": parameters["arms"],
        "parameters": parameters["parameters"],
        "posteriors": {k: parameters[k] for k in ("prior", "prob_best_method", "statistics", "reward_kind")},
    }


def decision_days(engine: sa.Engine, campaign_id: int, window: Window) -> list[date]:
    """The days of ``window`` with at least one decision (a quiet day gets no row)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """select distinct decision_date from ops.decisions
                   where campaign_id = :c and decision_date between :a and :b order by 1"""
            ),
            {"c": campaign_id, "a": window.since, "b": window.until},
        )
        return [r[0] for r in rows]


def _day_row(performance: dict) -> dict:
    """One decision day: per group its sends, matured, conversions, rate and Wilson 95% band."""
    row: dict = {"date": performance["window"]["since"]}
    for group in GROUPS:
        figures = performance[group]
        matured = figures["matured"]
        low, high = wilson_interval(figures["conversions"], matured) if matured else (None, None)
        row[group] = {
            key: figures[key] for key in ("sends", "matured", "pending", "conversions", "conversion_rate")
        } | {"ci_low": low, "ci_high": high}
    row["lift"] = {key: performance["lift"][key] for key in ("absolute", "ci_low", "ci_high")}
    return row


# -- the one tidy table of the CSV export ----------------------------------------------------
CSV_FIELDS = ("section", "date", "group", "arm", "parameter", "value", "measure", "figure")


def tidy_rows(report: dict) -> list[dict]:
    """Long format: one row per figure, named by section (summary, day, arm, parameter), its keys
    (date, group, arm, parameter, value) and the measure. Rates are fractions, not percentages."""
    rows: list[dict] = []
    perf = report["performance"]

    def add(section: str, measure: str, figure, **keys) -> None:
        names = {"section": section, "measure": measure, "figure": figure}
        rows.append(dict.fromkeys(CSV_FIELDS) | keys | names)

    for group in GROUPS:
        for measure, figure in perf[group].items():
            add("summary", measure, figure, group=group)
    for measure in ("absolute", "ci_low", "ci_high", "relative"):
        add("summary", f"lift_{measure}", perf["lift"][measure])
    for measure in ("revenue", "cost", "roi", "exploration_share", "pending"):
        add("summary", measure, perf[measure])
    add("summary", "regret_estimate", perf["regret"]["estimate"])
    for day in report["days"]:
        for group in GROUPS:
            for measure, figure in day[group].items():
                add("day", measure, figure, date=day["date"], group=group)
        for measure, figure in day["lift"].items():
            add("day", f"lift_{measure}", figure, date=day["date"])
    for arm in report["arms"]:
        for measure in POSTERIOR_MEASURES:
            add("arm", measure, arm[measure], arm=arm["arm_key"])
    for value in report["parameters"]:
        for measure in POSTERIOR_MEASURES:
            add("parameter", measure, value[measure], parameter=value["parameter"], value=value["value"])
    return rows


POSTERIOR_MEASURES = ("sends", "matured", "rewards", "posterior_mean", "ci_low", "ci_high", "prob_best")

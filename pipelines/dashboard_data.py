"""The dashboard's figures beyond pipelines/performance.py: per-day conversion with Wilson bands,
the cumulative lift, the sample-ratio-mismatch check of the holdout, and heatmaps of posteriors.

Every figure comes from pipelines/performance.py's functions: a day's conversion is what
:func:`~pipelines.performance.campaign_performance` gives for a one-day window (its attribution
query and maturity rule, grouped by day: :func:`performance_by_day`), the posteriors are its
:func:`posteriors`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import combinations

import numpy as np
import sqlalchemy as sa

from pipelines.campaign_spec import arm_key
from pipelines.campaign_store import Campaign
from pipelines.domain import SEGMENTS
from pipelines.errors import UserError
from pipelines.performance import (
    Window,
    lift,
    performance_by_day,
    policy_prior,
    posteriors,
    wilson_interval,
)

MAX_DAILY_DAYS = 366  # a year at most per request
SRM_ALPHA = 0.001  # the usual threshold: a mismatch this unlikely by chance means broken assignment
# Heatmaps of two parameters, drawn when the campaign varies both (rows x columns).
HEATMAP_PAIRS = (("offer_type", "channel"), ("time_of_day", "day_of_week"))
GROUPS = ("treatment", "control")


def daily_performance(engine: sa.Engine, campaign: Campaign, window: Window, *, now: datetime) -> dict:
    """Per decision day of ``window``: each group's sends, matured, conversions, rate with its
    Wilson 95% interval, revenue and cost; the lift pooled from the first day through that day
    (Newcombe's CI); and the sample-ratio check of the holdout over the whole window."""
    if window.days > MAX_DAILY_DAYS:
        raise UserError(f"since: the daily view spans at most {MAX_DAILY_DAYS} days, got {window.days}")
    days, totals = [], {g: {"sends": 0, "matured": 0, "conversions": 0} for g in GROUPS}
    by_day = performance_by_day(engine, campaign, window, now=now)
    empty = {"sends": 0, "matured": 0, "conversions": 0, "conversion_rate": None, "revenue": 0.0, "cost": 0.0}
    for offset in range(window.days):
        day = window.since + timedelta(days=offset)
        one = by_day.get(day, {g: empty for g in GROUPS})
        row: dict = {"date": day}
        for g in GROUPS:
            figures = one[g]
            for k in totals[g]:
                totals[g][k] += figures[k]
            row[g] = {k: figures[k] for k in ("sends", "matured", "conversions", "conversion_rate")}
            row[g] |= _wilson(figures["conversions"], figures["matured"])
            row[g] |= {"revenue": figures["revenue"], "cost": figures["cost"]}
        t, c = totals["treatment"], totals["control"]
        row["cumulative_lift"] = lift(t["conversions"], t["matured"], c["conversions"], c["matured"])
        days.append(row)
    holdout = campaign.spec.holdout_share
    return {
        "campaign_id": campaign.campaign_id,
        "campaign": campaign.spec.name,
        "window": {"since": window.since, "until": window.until, "days": window.days},
        "as_of": now,
        "holdout_share": holdout,
        "days": days,
        "sample_ratio": sample_ratio(totals["control"]["sends"], totals["treatment"]["sends"], holdout),
    }


def _wilson(successes: int, n: int) -> dict:
    low, high = wilson_interval(successes, n) if n else (None, None)
    return {"ci_low": low, "ci_high": high}


def sample_ratio(control: int, treatment: int, holdout_share: float) -> dict:
    """Chi-square goodness of fit of the observed control share against ``holdout_share``: a small
    p-value (below :data:`SRM_ALPHA`) says the holdout is not assigned as configured."""
    from scipy import stats

    sends = control + treatment
    out = {
        "control_sends": control,
        "sends": sends,
        "observed_share": control / sends if sends else None,
        "expected_share": holdout_share,
        "alpha": SRM_ALPHA,
        "chi2": None,
        "p_value": None,
        "mismatch": None,
        "reason": None,
    }
    if not sends:
        return out | {"reason": "no decision in the window"}
    if holdout_share in (0.0, 1.0):  # one expected count is 0: any decision there is a mismatch
        expected_control = sends * holdout_share
        return out | {"mismatch": control != expected_control, "reason": "no holdout share to test"}
    expected = [sends * holdout_share, sends * (1 - holdout_share)]
    chi2, p = stats.chisquare([control, treatment], expected)
    return out | {"chi2": float(chi2), "p_value": float(p), "mismatch": bool(p < SRM_ALPHA)}


def heatmaps(campaign: Campaign, pulls: np.ndarray, rewards: np.ndarray) -> list[dict]:
    """Posteriors (mean, 95% credible interval, P(best) among the cells) of the parameter pairs of
    :data:`HEATMAP_PAIRS` the campaign varies, pooled over the arms of each cell, and of segment x
    arm (P(best) among a segment's arms). ``pulls``/``rewards``: matured sends and reward sums per
    (segment, arm), as pipelines.performance.learning_statistics gives them."""
    prior = policy_prior(campaign)
    rewards = np.minimum(rewards, pulls)
    matured, reward_sum = pulls.sum(axis=0), rewards.sum(axis=0)
    values = campaign.spec.parameters
    pairs = [p for p in HEATMAP_PAIRS if all(len(values.get(n, ())) > 1 for n in p)]
    if not pairs:  # neither pair varies: the first two parameters that do
        pairs = list(combinations([n for n, v in values.items() if len(v) > 1], 2))[:1]
    maps = []
    for rows_name, cols_name in pairs:
        rows, cols = list(values[rows_name]), list(values[cols_name])
        has = np.array(
            [
                [p[rows_name] == r and p[cols_name] == c for p in campaign.arm_params]
                for r in rows
                for c in cols
            ],
            dtype=float,
        )
        offered = has.sum(axis=1) > 0  # a cell whose arms are all excluded is not on offer: blank
        on = iter(
            posteriors(has[offered] @ matured, has[offered] @ matured, has[offered] @ reward_sum, prior)
        )
        maps.append(_heatmap(rows_name, cols_name, rows, cols, [next(on) if o else None for o in offered]))
    arm_keys = [arm_key(p) for p in campaign.arm_params]
    by_segment = [
        row for s in range(len(SEGMENTS)) for row in posteriors(pulls[s], pulls[s], rewards[s], prior)
    ]
    maps.append(_heatmap("segment", "arm", list(SEGMENTS), arm_keys, by_segment))
    return maps


CELL_FIELDS = ("matured", "rewards", "posterior_mean", "ci_low", "ci_high", "prob_best")


def _heatmap(rows_name: str, cols_name: str, rows: list, cols: list, flat: list) -> dict:
    """One heatmap: ``flat`` (row-major, a posterior or None per cell) cut into rows."""
    width = len(cols)
    cells = [
        [
            None if cell is None else {"row": r, "column": c} | {k: cell[k] for k in CELL_FIELDS}
            for c, cell in zip(cols, flat[i * width : (i + 1) * width], strict=True)
        ]
        for i, r in enumerate(rows)
    ]
    return {
        "rows_parameter": rows_name,
        "columns_parameter": cols_name,
        "rows": rows,
        "columns": cols,
        "cells": cells,
    }

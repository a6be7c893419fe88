"""The database side of capacity-aware allocation: a day's prices and the list's exact repair.

Why prices are solved in every bucket (and not in a step before the buckets): the DAG runs a
list's buckets as independent tasks. Each bucket solves the *same* LP — on the same sample (the
audience of a fixed set of shards, see :func:`day_allocation`), with the same seeds — so every
bucket gets the same prices whatever the bucket count or order, and writes the same
``ops.day_prices`` row. The sample's cost is paid once per bucket (a few thousand customers).

Why the repair runs in ``finish_list``: capacities are per list, and only the step that sees every
bucket can hold them exactly. Each decision carries its best free arm and the value a move there
loses (written by the bucket), so the repair reads the list's rows and moves the least-regret
overflow; the list is the same for any bucket count because the rows are.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

import numpy as np
import sqlalchemy as sa

from pipelines import allocation as alloc_mod
from pipelines.allocation import Allocation, allocation_for
from pipelines.audience import eligible_audience
from pipelines.campaign_store import Campaign
from pipelines.db import read_frame
from pipelines.shards import N_SHARDS

log = logging.getLogger(__name__)

SAMPLE = 4_000  # treatment customers the LP is solved on (x the campaign's arms variables)


def day_allocation(
    engine: sa.Engine, campaign: Campaign, day: date, seed: int, model: Any = None
) -> Allocation | None:
    """The campaign's allocation with the day's prices, solved on a sample and stored in
    ``ops.day_prices``; None for a campaign that does not opt in."""
    from pipelines.decide import (
        _control_choices,
        _scores,
        build_policy,
        decision_stats,
        pending_sends,
        priced_inputs,
    )

    alloc = allocation_for(campaign.spec, campaign.arm_params)
    if alloc is None or not alloc.kinds:
        return alloc
    with engine.connect() as conn:
        pulls, rewards = decision_stats(conn, campaign)
        pending = pending_sends(conn, campaign)
        # The sample: shards 0, 64/m, 2*64/m, ... with m the power of two that shard 0's size says
        # holds SAMPLE customers — a rule on the audience alone, so every bucket reads the same one.
        customers, allowed = eligible_audience(conn, campaign, day, bucket=(0, N_SHARDS))
        m = 1
        while m < N_SHARDS and len(customers) * m < SAMPLE:
            m *= 2
        if m > 1:
            customers, allowed = eligible_audience(conn, campaign, day, bucket=(0, N_SHARDS // m))
    scale = N_SHARDS / m  # the sample's shards are m of N_SHARDS: counts scale by this
    control = customers["is_control"].to_numpy(dtype=bool)
    static = _control_choices(campaign, customers, allowed)["arm_idx"][control]
    treat = np.flatnonzero(~control)
    n_treat = len(treat)
    treat = treat[:: max(1, int(np.ceil(n_treat / SAMPLE)))]  # an even stride in customer-id order
    policy = build_policy(campaign, pulls, rewards, model, pending)
    proba = _scores(campaign, model, customers, allowed, treat)
    rng = np.random.default_rng([seed, 10_000])  # not a shard's stream (shards are 0..63)
    segments = customers["segment_idx"].to_numpy(dtype=np.int64)[treat]
    values, probs = priced_inputs(policy, alloc, segments, allowed[treat], proba, *rng.spawn(2))
    n_list = len(customers) * scale
    priced = alloc_mod.solve_prices(
        alloc,
        values,
        allowed[treat],
        probs,
        n_list,
        n_treat * scale,
        alloc_mod.list_usage(alloc, static) * scale,
    )
    store_prices(engine, campaign, day, priced, len(treat), n_list)
    log.info(
        "%s %s: capacity prices %s from %d sampled customers",
        campaign.name,
        day,
        dict(zip(priced.names, np.round(priced.prices, 6).tolist(), strict=True)),
        len(treat),
    )
    return priced


def store_prices(
    engine: sa.Engine, campaign: Campaign, day: date, alloc: Allocation, n_sample: int, n_list: float
) -> None:
    keep = alloc.explore_keep if alloc.explore_keep is not None else np.ones(len(alloc.kinds))
    rows = [
        {"name": n, "kind": k, "limit": float(lim), "price": float(p), "explore_keep": float(t)}
        for n, k, lim, p, t in zip(alloc.names, alloc.kinds, alloc.limits, alloc.prices, keep, strict=True)
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into ops.day_prices (campaign_id, price_date, prices, n_sample, n_list_estimate)
                   values (:c, :d, cast(:p as jsonb), :m, :n)
                   on conflict (campaign_id, price_date) do update set prices = excluded.prices,
                       n_sample = excluded.n_sample, n_list_estimate = excluded.n_list_estimate,
                       solved_at = now()"""
            ),
            {"c": campaign.campaign_id, "d": day, "p": json.dumps(rows), "m": n_sample, "n": n_list},
        )


def stored_allocation(conn: sa.Connection, campaign: Campaign, day: date) -> Allocation | None:
    """The campaign's allocation with the prices the batch stored for ``day`` (zero prices when it
    stored none, or the capacities changed since); None for a campaign that does not opt in."""
    alloc = allocation_for(campaign.spec, campaign.arm_params)
    if alloc is None or not alloc.kinds:
        return alloc
    stored = conn.execute(
        sa.text("select prices from ops.day_prices where campaign_id = :c and price_date = :d"),
        {"c": campaign.campaign_id, "d": day},
    ).scalar()
    if stored is None or [r["name"] for r in stored] != list(alloc.names):
        return alloc
    return alloc.with_prices(
        np.array([r["price"] for r in stored], dtype=np.float64),
        np.array([r["explore_keep"] for r in stored], dtype=np.float64),
    )


def day_counts(conn: sa.Connection, campaign: Campaign, day: date) -> np.ndarray:
    """The day's decisions per arm of the campaign, batch and real time, shape (K,)."""
    rows = conn.execute(
        sa.text(
            "select arm_id, count(*) from ops.decisions where campaign_id = :c and decision_date = :d "
            "group by arm_id"
        ),
        {"c": campaign.campaign_id, "d": day},
    ).all()
    index = {a: i for i, a in enumerate(campaign.arm_ids)}
    counts = np.zeros(len(campaign.arm_ids), dtype=np.int64)
    for arm_id, n in rows:
        if arm_id in index:
            counts[index[arm_id]] = n
    return counts


def exhausted_arms(alloc: Allocation, counts: np.ndarray) -> np.ndarray:
    """Arms (K,) a further send of which would overrun a capacity, given the day's per-arm counts.
    A share cap counts the day's sends with the new one."""
    n = int(counts.sum()) + 1
    used = alloc.usage @ counts
    left = alloc.budgets(n) - used
    return ((alloc.usage > left[:, None] + 1e-9) & (alloc.usage > 0)).any(axis=0)


def repair_list(conn: sa.Connection, campaign: Campaign, day: date) -> tuple[int, np.ndarray]:
    """Hold the list's capacities exactly (pipelines/allocation.py: :func:`repair`), in the caller's
    transaction. Returns (decisions moved, the remaining overrun per capacity, zero unless only
    unmovable sends overrun)."""
    alloc = allocation_for(campaign.spec, campaign.arm_params)
    if alloc is None or not alloc.kinds:
        return 0, np.zeros(0)
    frame = read_frame(
        conn,
        "select decision_id, arm_id, treatment_group, fallback_arm_id, capacity_regret "
        "from ops.decisions where campaign_id = %(c)s and decision_date = %(d)s and source = 'batch' "
        "order by decision_id",
        {"c": campaign.campaign_id, "d": day},
    )
    index = {a: i for i, a in enumerate(campaign.arm_ids)}
    arm = frame["arm_id"].map(index).to_numpy(dtype=np.int64)
    fallback = frame["fallback_arm_id"].map(index).fillna(-1).to_numpy(dtype=np.int64)
    movable = (frame["treatment_group"] == "treatment").to_numpy()
    regret = frame["capacity_regret"].to_numpy(dtype=np.float64)
    new, moved = alloc_mod.repair(alloc, arm, movable, fallback, regret, np.arange(len(frame)))
    ids = frame["decision_id"].to_numpy()[moved].tolist()
    if ids:
        conn.execute(
            sa.text(
                """update ops.decisions set arm_id = fallback_arm_id, propensity = fallback_propensity,
                       selected_by = :s, explored = false, blend_score = blend_score - capacity_regret,
                       bandit_score = null, model_score = null, capacity_regret = 0
                   where campaign_id = :c and decision_date = :d and decision_id = any(:ids)"""
            ),
            {"s": alloc_mod.SELECTED_BY_CAPACITY, "c": campaign.campaign_id, "d": day, "ids": ids},
        )
    over = np.maximum(alloc_mod.list_usage(alloc, new) - alloc.budgets(len(new)), 0.0)
    if (over > 1e-9).any():
        log.warning(
            "%s %s: capacities still overrun by %s (sends that cannot move)",
            campaign.name,
            day,
            dict(zip(alloc.names, over.tolist(), strict=True)),
        )
    log.info("%s %s: capacity repair moved %d of %d decisions", campaign.name, day, len(ids), len(frame))
    return len(ids), over

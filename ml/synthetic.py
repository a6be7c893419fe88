"""A small synthetic world shaped like ``analytics.training_examples``, for tests and benchmarks.

Not the simulator (``pipelines/simulator`` owns the realistic one): this is a cheap,
fully vectorized truth with a known signal — customer effects, arm effects and two
customer x arm interactions — logged by an epsilon-greedy policy whose propensities
are exact. Kept in ``ml/`` so the tests and ``benchmarks/`` share it without
importing ``pipelines``.
"""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd

from ml.features import ARM_COLUMNS

# Two campaigns that vary different parameters (the others are null in their arms).
CAMPAIGN_PARAMETERS: dict[int, dict[str, tuple[str, ...]]] = {
    1: {"offer_type": ("credit_card", "loan", "savings_account", "investment_product"),
        "channel": ("email", "sms", "app_push")},
    2: {"discount": ("rate_reduction", "fee_waiver", "cashback", "loyalty_points"),
        "time_of_day": ("morning", "afternoon", "evening")},
}
GENDERS = ("F", "M", "X")
SEGMENT_NAMES = ("young_low", "young_mid", "young_high", "middle_low", "middle_mid", "middle_high",
                 "senior_low", "senior_mid", "senior_high")


def make_arms() -> pd.DataFrame:
    """Arms of the synthetic campaigns: arm_id, campaign_id and the six parameter columns."""
    rows = []
    arm_id = 1
    for campaign_id, params in CAMPAIGN_PARAMETERS.items():
        names = list(params)
        for combo in itertools.product(*params.values()):
            row = {"arm_id": arm_id, "campaign_id": campaign_id, **dict.fromkeys(ARM_COLUMNS)}
            row.update(zip(names, combo, strict=True))
            rows.append(row)
            arm_id += 1
    return pd.DataFrame(rows)


def make_customers(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Customer attributes with plausible ranges, shape (n, 10) including customer_id."""
    age = rng.integers(18, 85, n)
    income = np.round(rng.lognormal(10.8, 0.6, n), 2)
    engagement = rng.beta(2.0, 3.0, n)
    return pd.DataFrame(
        {
            "customer_id": np.char.add("C", np.arange(n).astype(str)),
            "age": age,
            "gender": np.asarray(GENDERS)[rng.choice(3, n, p=[0.49, 0.49, 0.02])],
            "income": income,
            "loyalty_points": rng.poisson(800, n),
            "tenure_years": np.round(rng.gamma(2.0, 3.0, n), 2),
            "products_held": rng.integers(1, 7, n),
            "digital_engagement": np.round(engagement, 4),
            "website_visits": rng.poisson(2 + 20 * engagement),
            "past_purchases": rng.poisson(1.5, n),
        }
    )


def true_logit(frame: pd.DataFrame) -> np.ndarray:
    """The truth: log-odds of conversion for row-aligned (customer, arm) rows."""
    age = frame["age"].to_numpy(float)
    engagement = frame["digital_engagement"].to_numpy(float)
    income = frame["income"].to_numpy(float)
    logit = -3.4 + 1.5 * engagement + 0.3 * np.log(income / 50_000.0) + 0.15 * frame["past_purchases"]
    offer = frame["offer_type"].astype("string").fillna("")
    channel = frame["channel"].astype("string").fillna("")
    discount = frame["discount"].astype("string").fillna("")
    time_of_day = frame["time_of_day"].astype("string").fillna("")
    logit += np.where(offer == "investment_product", 1.6 * (age > 50) - 0.8, 0.0)
    logit += np.where(offer == "loan", 0.8 * (age < 35), 0.0)
    logit += np.where(channel == "app_push", 3.0 * engagement - 1.0, 0.0)
    logit += np.where(channel == "sms", 0.2, 0.0)
    logit += np.where(discount == "cashback", 0.5, 0.0) + np.where(discount == "fee_waiver", -0.3, 0.0)
    logit += np.where(time_of_day == "evening", 0.3 * engagement, 0.0)
    return np.asarray(logit, dtype=float)


def make_training_examples(
    n: int,
    seed: int = 0,
    *,
    n_days: int = 28,
    n_customers: int | None = None,
    epsilon: float = 0.3,
    control_share: float = 0.1,
    start: dt.date = dt.date(2026, 1, 1),
) -> pd.DataFrame:
    """Logged decisions with matured rewards, columns as in ``analytics.training_examples``.

    Parameters
    ----------
    n : int
        Number of decisions.
    seed : int
        Seed of the only generator used.
    n_days : int
        Decisions spread uniformly over this many consecutive days from ``start``.
    n_customers : int, optional
        Size of the customer pool; default ``max(200, n // 4)``.
    epsilon : float
        Exploration share of the logging policy: uniform arm with probability ``epsilon``,
        else the arm that is best on average for the customer's segment.
    control_share : float
        Share of decisions in the holdout control group (no send: base rate only).

    Returns
    -------
    DataFrame of n rows sorted by decision_date.
    """
    rng = np.random.default_rng(seed)
    arms = make_arms()
    customers = make_customers(n_customers or max(200, n // 4), rng)
    who = rng.integers(0, len(customers), n)
    frame = customers.iloc[who].reset_index(drop=True)
    campaign_ids = np.asarray(sorted(CAMPAIGN_PARAMETERS))
    frame.insert(0, "campaign_id", campaign_ids[rng.integers(0, len(campaign_ids), n)])
    segment = _segment_index(frame["age"].to_numpy(), frame["income"].to_numpy())
    frame["segment"] = np.asarray(SEGMENT_NAMES)[segment]

    arm_index, propensity = _log_policy(frame, arms, segment, epsilon, rng)
    arm_rows = arms.iloc[arm_index].reset_index(drop=True)
    frame["arm_id"] = arm_rows["arm_id"].to_numpy()
    for column in ARM_COLUMNS:
        frame[column] = arm_rows[column].to_numpy()

    control = rng.random(n) < control_share
    logit = np.where(control, -3.2, true_logit(frame))
    converted = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    days = rng.integers(0, n_days, n)
    frame["decision_date"] = pd.to_datetime(start) + pd.to_timedelta(days, unit="D")
    frame["decision_id"] = np.char.add("D", np.arange(n).astype(str))
    frame["propensity"] = propensity
    frame["policy"] = "epsilon_greedy"
    frame["treatment_group"] = np.where(control, "control", "treatment")
    frame["source"] = "batch"
    frame["converted"] = converted
    frame["reward"] = converted.astype(float)
    frame["revenue"] = np.round(converted * rng.gamma(2.0, 60.0, n), 2)
    frame["decision_date"] = frame["decision_date"].dt.date
    return frame.sort_values(["decision_date", "decision_id"], kind="stable").reset_index(drop=True)


def _segment_index(age: np.ndarray, income: np.ndarray) -> np.ndarray:
    age_band = np.searchsorted([0, 30, 55], age, side="right") - 1
    income_band = np.searchsorted([0.0, 40_000.0, 100_000.0], income, side="right") - 1
    return age_band * 3 + income_band


def _log_policy(
    frame: pd.DataFrame, arms: pd.DataFrame, segment: np.ndarray, epsilon: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Epsilon-greedy per (campaign, segment): arm index into ``arms`` and its exact propensity."""
    n = len(frame)
    arm_index = np.empty(n, dtype=np.int64)
    propensity = np.empty(n)
    campaign = frame["campaign_id"].to_numpy()
    for campaign_id in np.unique(campaign):
        rows = np.flatnonzero(campaign == campaign_id)
        options = np.flatnonzero(arms["campaign_id"].to_numpy() == campaign_id)
        # The greedy arm of each segment: a fixed, deliberately imperfect rule.
        greedy = options[segment[rows] % len(options)]
        explore = rng.random(rows.size) < epsilon
        chosen = np.where(explore, options[rng.integers(0, len(options), rows.size)], greedy)
        arm_index[rows] = chosen
        propensity[rows] = epsilon / len(options) + (1.0 - epsilon) * (chosen == greedy)
    return arm_index, propensity

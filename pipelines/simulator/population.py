"""A synthetic bank customer base, and what the simulator knows about it that policies do not.

:func:`generate_customers` is the stable entry point (the demo loads its customer base
with it). The distributions are plausible for a retail bank, not fitted to real data:
age 18-90 centred in the mid-forties; log-normal income peaking in mid-life (about 10%
above 100k); tenure bounded by age; digital engagement falling with age.

:func:`latent_effects` derives each customer's unobserved heterogeneity from a hash of
the customer id, so the same customer keeps the same hidden propensity across days,
runs and processes without storing it anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipelines.domain import CHANNELS, CUSTOMER_COLUMNS

GENDERS = ("female", "male", "undisclosed")
_GENDER_SHARES = (0.50, 0.48, 0.02)


def customer_ids(n: int, start: int = 1) -> np.ndarray:
    """Ids ``C0000001``, ``C0000002``, ... of shape (n,)."""
    return np.char.add("C", np.char.zfill(np.arange(start, start + n).astype(str), 7)).astype(object)


def generate_customers(n: int, seed: int) -> pd.DataFrame:
    """A seeded synthetic customer base.

    Parameters
    ----------
    n : int
        Number of customers (>= 1).
    seed : int
        Seed; the same ``(n, seed)`` always gives the same frame.

    Returns
    -------
    pandas.DataFrame
        ``n`` rows: ``customer_id`` (``"C0000001"``...) then the columns of
        :data:`pipelines.domain.CUSTOMER_COLUMNS` with the types of ``raw.customers``
        (ints for counts and age, floats for income, tenure and engagement).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    age = np.clip(np.round(rng.normal(46.0, 16.0, n)), 18, 90).astype(np.int64)
    gender = np.asarray(GENDERS, dtype=object)[rng.choice(len(GENDERS), size=n, p=_GENDER_SHARES)]
    # Income peaks around 50 and is lower for the young and the retired.
    life_cycle = 0.35 * (1.0 - ((age - 50.0) / 32.0) ** 2)
    income = np.round(np.exp(np.log(42_000.0) + life_cycle + rng.normal(0.0, 0.55, n)), 2)
    tenure = np.minimum(age - 18.0, rng.exponential(2.0 + 0.25 * (age - 18.0)))
    wealth = np.log(income / 50_000.0)
    products = np.clip(1 + rng.poisson(0.6 + 0.6 * np.clip(wealth, 0, None) + 0.04 * tenure), 1, 10)
    in_programme = rng.random(n) < 0.7  # a third of customers never joined the loyalty programme
    loyalty = np.where(in_programme, rng.gamma(1.5, 400.0 * (1.0 + 0.1 * tenure) * products / 2.0), 0.0)
    engagement_mean = np.clip(0.85 - 0.012 * (age - 18.0), 0.08, 0.9)
    digital = rng.beta(6.0 * engagement_mean, 6.0 * (1.0 - engagement_mean))
    visits = rng.poisson(1.0 + 14.0 * digital)
    purchases = rng.poisson(0.3 * products + 0.05 * tenure)
    frame = pd.DataFrame(
        {
            "customer_id": customer_ids(n),
            "age": age,
            "gender": gender,
            "income": income,
            "loyalty_points": np.round(loyalty).astype(np.int64),
            "tenure_years": np.round(tenure, 1),
            "products_held": products.astype(np.int64),
            "digital_engagement": np.round(digital, 3),
            "website_visits": visits.astype(np.int64),
            "past_purchases": purchases.astype(np.int64),
        }
    )
    return frame[["customer_id", *CUSTOMER_COLUMNS]]


def channel_consent(customers: pd.DataFrame, rates: Mapping[str, float], seed: int) -> np.ndarray:
    """Which channels each customer consented to.

    Push notifications need the app, so ``app_push`` consent scales with digital
    engagement (its rate is the rate at engagement 0.5); other channels are independent
    draws with the given rate. Channels missing from ``rates`` are always granted.

    Returns
    -------
    bool array of shape (n, len(CHANNELS))
        Columns in the order of :data:`pipelines.domain.CHANNELS`.
    """
    rng = np.random.default_rng(seed)
    n = len(customers)
    engagement = customers["digital_engagement"].to_numpy(dtype=np.float64)
    consent = np.ones((n, len(CHANNELS)), dtype=bool)
    for j, channel in enumerate(CHANNELS):
        rate = rates.get(channel, 1.0)
        p = np.clip(rate * engagement / 0.5, 0.0, 1.0) if channel == "app_push" else np.full(n, rate)
        consent[:, j] = rng.random(n) < p
    return consent


def latent_effects(
    ids: pd.Series | np.ndarray, key: int, level_sd: float, channel_sd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Unobserved heterogeneity of each customer, derived from the customer id.

    Parameters
    ----------
    ids : array of str, shape (n,)
        Customer ids.
    key : int
        World key: another key gives another, independent draw for the same ids.
    level_sd : float
        Standard deviation (logit scale) of the customer's overall propensity to convert.
    channel_sd : float
        Standard deviation (logit scale) of the customer's hidden liking of each channel.

    Returns
    -------
    level : float array of shape (n,)
    channel : float array of shape (n, len(CHANNELS))
    """
    hashed = pd.util.hash_pandas_object(pd.Series(np.asarray(ids, dtype=object)), index=False).to_numpy()
    base = hashed ^ _splitmix64(np.uint64(key) + np.zeros_like(hashed))
    normals = _hash_normals(base, 1 + len(CHANNELS))
    return level_sd * normals[:, 0], channel_sd * normals[:, 1:]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Bijective 64-bit mixer (uint64 arithmetic wraps, which is the point)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _hash_normals(base: np.ndarray, k: int) -> np.ndarray:
    """``k`` independent standard normals per hash, shape (n, k), by Box-Muller."""
    n_pairs = (k + 1) // 2
    streams = _splitmix64(base[:, None] + np.arange(1, 2 * n_pairs + 1, dtype=np.uint64)[None, :])
    uniforms = ((streams >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    u1, u2 = uniforms[:, 0::2], uniforms[:, 1::2]
    radius = np.sqrt(-2.0 * np.log(u1))
    normals = np.concatenate([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)], axis=1)
    return normals[:, :k]

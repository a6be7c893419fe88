"""The bank's vocabulary: campaign parameters, customer attributes and segments.

One place for the allowed values, so campaign files, the simulator, the database
and the dbt models agree. ``dbt/models/marts/customer_features.sql`` implements
:func:`segment_of` in SQL; ``tests/pipelines/test_domain.py`` keeps the two equal.
"""

from __future__ import annotations

import numpy as np

# Campaign parameter space: parameter name -> allowed values, in a stable order.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "offer_type": ("credit_card", "loan", "savings_account", "investment_product"),
    "discount": ("rate_reduction", "fee_waiver", "cashback", "loyalty_points"),
    "channel": ("email", "sms", "app_push", "online_banking_alert", "branch"),
    "time_of_day": ("morning", "afternoon", "evening"),
    "day_of_week": ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    "cta": ("direct", "consultative", "informational"),
}

CHANNELS = PARAMETERS["channel"]

EVENT_TYPES = ("impression", "open", "click", "view", "dwell", "conversion")

# Columns of an interactions file (inbox) and of the simulator's events.
EVENT_COLUMNS = (
    "event_id",
    "decision_id",
    "customer_id",
    "campaign_id",
    "arm_id",
    "event_type",
    "value",
    "occurred_at",
)

# Customer attributes in the customers snapshot (raw.customers) and the simulator.
CUSTOMER_COLUMNS = (
    "age",
    "gender",
    "income",
    "loyalty_points",
    "tenure_years",
    "products_held",
    "digital_engagement",
    "website_visits",
    "past_purchases",
)

# Segments: age band x income band. Bounds are lower-inclusive.
AGE_BANDS = (("young", 0), ("middle", 30), ("senior", 55))
INCOME_BANDS = (("low", 0.0), ("mid", 40_000.0), ("high", 100_000.0))
SEGMENTS: tuple[str, ...] = tuple(f"{a}_{i}" for a, _ in AGE_BANDS for i, _ in INCOME_BANDS)


def segment_of(age: np.ndarray, income: np.ndarray) -> np.ndarray:
    """Segment index (into :data:`SEGMENTS`) for arrays of age and income, shape (n,)."""
    age_idx = np.searchsorted([b for _, b in AGE_BANDS], np.asarray(age), side="right") - 1
    inc_idx = np.searchsorted([b for _, b in INCOME_BANDS], np.asarray(income), side="right") - 1
    return (np.clip(age_idx, 0, None) * len(INCOME_BANDS) + np.clip(inc_idx, 0, None)).astype(np.int64)

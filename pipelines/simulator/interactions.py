"""Turn a published send list into the interaction events the bank would log next.

The daily pipeline demo publishes a send list for day D, calls
:func:`interactions_for_send_list`, and writes the events into the inbox files of the
following days (by ``occurred_at``). Conversions are drawn from the same ground truth as
the closed-loop simulator; the funnel events around them (open, click, view, dwell)
follow plausible per-channel rates. Everything is seeded: the same inputs give the same
events, whatever the row order of the send list.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd

from pipelines.domain import CHANNELS, EVENT_COLUMNS
from pipelines.simulator.arms import arm_parameters, encode_arms
from pipelines.simulator.population import latent_effects
from pipelines.simulator.scenario import ResponseSettings
from pipelines.simulator.truth import GroundTruth, response_features

# Funnel of customers who do not convert: P(open | sent), P(click | opened).
OPEN_RATE = {"email": 0.22, "sms": 0.60, "app_push": 0.35, "online_banking_alert": 0.45, "branch": 0.80}
CLICK_RATE = {"email": 0.12, "sms": 0.08, "app_push": 0.15, "online_banking_alert": 0.10, "branch": 0.30}
VIEW_RATE = 0.85  # P(view | click)
SEND_HOUR = {"morning": 9, "afternoon": 14, "evening": 19}
DEFAULT_SEND_HOUR = 11
# What a conversion is worth to the bank, by product (before noise).
CONVERSION_VALUE = {
    "credit_card": 120.0,
    "loan": 450.0,
    "savings_account": 200.0,
    "investment_product": 600.0,
}
DEFAULT_CONVERSION_VALUE = 150.0


def interactions_for_send_list(
    send_list_df: pd.DataFrame,
    customers_df: pd.DataFrame,
    campaign_arms_df: pd.DataFrame,
    day: date | datetime | str,
    seed: int,
    lag_days: int,
    *,
    response: ResponseSettings | None = None,
    world_seed: int = 0,
) -> pd.DataFrame:
    """Simulated interaction events for one day's send list.

    Parameters
    ----------
    send_list_df : DataFrame
        One row per decision: ``decision_id``, ``customer_id``, ``campaign_id``,
        ``arm_id``. The holdout group (``treatment_group == "control"``) is sent the
        campaign's static default arm, which is the logged ``arm_id``: it responds like
        anyone sent that arm, so the holdout lift measures what optimization adds.
    customers_df : DataFrame
        ``customer_id`` and the columns of :data:`pipelines.domain.CUSTOMER_COLUMNS`
        (``age``, ``income``, ``loyalty_points`` and ``digital_engagement`` are used).
    campaign_arms_df : DataFrame
        ``arm_id`` and either one column per campaign parameter or a ``params`` column
        of dicts (as in ``ops.arms``). Parameters an arm does not set contribute nothing.
    day : date, datetime or ISO string
        The send date D.
    seed : int
        Seed of the outcome draws (use one per day: e.g. the D's ordinal).
    lag_days : int
        Conversions happen within ``lag_days`` days of the send (on D itself when 0).
    response : ResponseSettings, optional
        The world's response knobs; default: those of ``benchmarks/scenarios/default.yaml``.
    world_seed : int
        Which world: hidden customer effects and daily noise. Keep it fixed across days.

    Returns
    -------
    DataFrame
        Columns :data:`EVENT_COLUMNS`: ``event_id`` (``"<decision_id>-<event_type>"``,
        unique and stable), ``event_type`` in impression/open/click/view/dwell/conversion,
        ``value`` (dwell seconds; conversion value in currency; else 0) and ``occurred_at``
        (UTC timestamps). Sorted by ``occurred_at`` then ``event_id``.
    """
    if lag_days < 0:
        raise ValueError(f"lag_days must be >= 0, got {lag_days}")
    send_day = pd.Timestamp(day).normalize().tz_localize(None).tz_localize("UTC")
    sends = _check_send_list(send_list_df).sort_values("decision_id", kind="stable").reset_index(drop=True)
    n = len(sends)
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in EVENT_COLUMNS})
    customers = _rows_for(customers_df, "customer_id", sends["customer_id"], "customers_df")
    arm_ids, arm_row = _arm_rows(campaign_arms_df, sends["arm_id"])
    params = arm_parameters(campaign_arms_df.drop_duplicates("arm_id").set_index("arm_id").loc[arm_ids])
    truth = GroundTruth(response or ResponseSettings(), encode_arms(params), world_seed=world_seed)
    level, by_channel = latent_effects(
        customers["customer_id"], world_seed, truth.settings.latent_sd, truth.settings.latent_channel_sd
    )
    p_convert = truth.pair_probabilities(
        response_features(customers), level, by_channel, arm_row, day=send_day.toordinal()
    )
    rng = np.random.default_rng([seed, send_day.toordinal()])
    draws = rng.random((n, 5))
    converted = draws[:, 0] < p_convert
    channel = [p.get("channel") for p in params]  # per arm, then per row by arm_row
    opened = converted | (draws[:, 1] < _per_arm(OPEN_RATE, channel, 0.3)[arm_row])
    clicked = opened & (converted | (draws[:, 2] < _per_arm(CLICK_RATE, channel, 0.1)[arm_row]))
    viewed = clicked & (converted | (draws[:, 3] < VIEW_RATE))

    hours = np.array([SEND_HOUR.get(p.get("time_of_day", ""), DEFAULT_SEND_HOUR) for p in params], float)
    sent_at = hours[arm_row] * 3600.0 + rng.uniform(0, 3600.0, n)  # seconds after midnight of D
    opened_at = sent_at + np.minimum(rng.exponential(2 * 3600.0, n), 6 * 3600.0)
    clicked_at = opened_at + rng.exponential(300.0, n)
    viewed_at = clicked_at + rng.uniform(2.0, 20.0, n)
    dwell = np.round(rng.lognormal(np.where(converted, 4.5, 3.5), 0.6), 1)
    horizon = (lag_days + 1) * 86_400.0 - 1.0
    delay = rng.uniform(0.0, max(lag_days, 0) * 86_400.0 + 1.0, n) + rng.exponential(1800.0, n)
    converted_at = np.minimum(viewed_at + dwell + delay, horizon)
    base_value = np.array(
        [CONVERSION_VALUE.get(p.get("offer_type", ""), DEFAULT_CONVERSION_VALUE) for p in params]
    )
    conversion_value = np.round(base_value[arm_row] * rng.lognormal(0.0, 0.3, n), 2)

    pieces = [
        ("impression", np.ones(n, dtype=bool), sent_at, np.zeros(n)),
        ("open", opened, opened_at, np.zeros(n)),
        ("click", clicked, clicked_at, np.zeros(n)),
        ("view", viewed, viewed_at, np.zeros(n)),
        ("dwell", viewed, viewed_at + dwell, dwell),
        ("conversion", converted, converted_at, conversion_value),
    ]
    frames = [_events(sends, kind, mask, seconds, value, send_day) for kind, mask, seconds, value in pieces]
    events = pd.concat(frames, ignore_index=True)
    return events.sort_values(["occurred_at", "event_id"], kind="stable").reset_index(drop=True)


def _check_send_list(send_list: pd.DataFrame) -> pd.DataFrame:
    missing = [
        c for c in ("decision_id", "customer_id", "campaign_id", "arm_id") if c not in send_list.columns
    ]
    if missing:
        raise ValueError(f"send_list_df is missing column {missing[0]!r}")
    if send_list["decision_id"].duplicated().any():
        dup = send_list.loc[send_list["decision_id"].duplicated(), "decision_id"].iloc[0]
        raise ValueError(f"send_list_df has duplicate decision_id {dup!r}")
    return send_list


def _rows_for(frame: pd.DataFrame, key: str, wanted: pd.Series, name: str) -> pd.DataFrame:
    """The rows of ``frame`` matching ``wanted`` (in that order); ValueError naming a missing key."""
    if key not in frame.columns:
        raise ValueError(f"{name} is missing column {key!r}")
    indexed = frame.drop_duplicates(key).set_index(key)
    missing = ~wanted.isin(indexed.index)
    if missing.any():
        raise ValueError(f"{name} has no row for {key} {wanted[missing].iloc[0]!r}")
    return indexed.loc[wanted.to_numpy()].reset_index()


def _arm_rows(arms: pd.DataFrame, wanted: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The distinct arm ids of the sends, and each send's position among them."""
    if "arm_id" not in arms.columns:
        raise ValueError("campaign_arms_df is missing column 'arm_id'")
    known = pd.Index(arms["arm_id"].drop_duplicates())
    missing = ~wanted.isin(known)
    if missing.any():
        raise ValueError(f"campaign_arms_df has no row for arm_id {wanted[missing].iloc[0]!r}")
    arm_ids = pd.Index(wanted.drop_duplicates())
    return arm_ids.to_numpy(), arm_ids.get_indexer(wanted)


def _per_arm(rates: dict[str, float], channel: list[str | None], default: float) -> np.ndarray:
    """Rate per arm (arms are few: a comprehension is fine)."""
    return np.array([rates.get(c, default) if c in CHANNELS else default for c in channel])


def _events(
    sends: pd.DataFrame,
    kind: str,
    mask: np.ndarray,
    seconds: np.ndarray,
    value: np.ndarray,
    send_day: pd.Timestamp,
) -> pd.DataFrame:
    rows = sends.loc[mask]
    return pd.DataFrame(
        {
            "event_id": rows["decision_id"].astype(str) + f"-{kind}",
            "decision_id": rows["decision_id"].to_numpy(),
            "customer_id": rows["customer_id"].to_numpy(),
            "campaign_id": rows["campaign_id"].to_numpy(),
            "arm_id": rows["arm_id"].to_numpy(),
            "event_type": kind,
            "value": value[mask],
            "occurred_at": send_day + pd.to_timedelta(np.round(seconds[mask], 3), unit="s"),
        }
    )

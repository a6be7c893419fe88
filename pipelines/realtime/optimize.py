"""One real-time decision: the batch's rules for one customer, logged once in `ops.decisions`.

Eligibility is the batch's audience SQL (pipelines.audience) for one customer: the audience
filter, suppressions, frequency caps counting batch and real-time sends of the week up to today,
and consent per channel (the latest record before ``now``), narrowed to the touchpoint's
channels. The holdout is the same stable hash: control gets the static default arm. Treatment
customers get the campaign's policy on the snapshot's statistics through
:func:`pipelines.decide.choose_arms`, the function the batch decides with, seeded by
(campaign, customer, idempotency key or decision id). ``max_customers`` sizes a batch list only.

The decision is inserted with ``on conflict do nothing`` and read back: the same idempotency key
gives the same decision, logged once, however many callers race.

With PostgreSQL unreachable the worker decides offline (pipelines.realtime.offline): the same
choice on the in-memory snapshot, eligibility from the row this module read last for the
customer, the decision spooled locally (pipelines.realtime.spool) and replayed later.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

import bandits
from pipelines.allocation import Allocation
from pipelines.allocation_day import day_counts, exhausted_arms, stored_allocation
from pipelines.audience import MART_CUSTOMERS, audience_params, one_customer_sql
from pipelines.campaign_store import Campaign
from pipelines.decide import ModelHandle, choose_arms
from pipelines.domain import CHANNELS, CUSTOMER_COLUMNS, SEGMENTS, segment_of
from pipelines.errors import NotFound, UserError
from pipelines.extra_features import STORE_COLUMN, configured_extra_features, extra_feature_names
from pipelines.realtime.decision_log import RealtimeDecision, log_decision
from pipelines.realtime.snapshot import CampaignState, Snapshot, has_table

if TYPE_CHECKING:  # offline imports this module
    from pipelines.realtime.offline import Offline

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 200  # an index key, as the ingest bounds its ids
CAPACITY_LOCK_CLASS = 7240312  # advisory lock (class, campaign): one capacity-counted decision at a time
CUSTOMER_LOCK_CLASS = (
    7240306  # advisory lock (class, hashtext(customer)): one decision of a customer at a time
)


class NotEligible(UserError):
    """The customer may not receive the campaign now (the message says which rule)."""


def request_seed(campaign_id: int, customer_id: str, key: str) -> int:
    """A stable 63-bit seed from (campaign, customer, idempotency key or decision id)."""
    digest = hashlib.sha256(f"{campaign_id}:{customer_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def decision_id_for(campaign_id: int, idempotency_key: str | None) -> str:
    """Deterministic for a key (a retry finds its decision by id too), random without one."""
    if idempotency_key is None:
        return f"rt-{campaign_id}-{uuid.uuid4().hex}"
    return f"rt-{campaign_id}-" + hashlib.sha256(f"{campaign_id}:{idempotency_key}".encode()).hexdigest()[:32]


def decide_one(
    engine: sa.Engine,
    snapshot: Snapshot,
    campaign_id: int,
    customer_id: str,
    *,
    attributes: dict[str, Any] | None = None,
    channels: list[str] | None = None,
    idempotency_key: str | None = None,
    model: ModelHandle | None = None,
    note: str | None = None,
    now: datetime,
    offline: Offline | None = None,
    log_decisions: bool = True,
) -> RealtimeDecision:
    """Decide and log one real-time decision (see the module doc).

    ``note``: why the caller decides without its usual model (e.g. the registry is down); it is
    stored and returned as the fallback reason. ``offline``: the worker's means to decide while
    the database is unreachable (pipelines.realtime.offline): given, the eligibility read here is
    remembered, and a connection failure (or its open circuit) decides from that memory and
    spools the decision. ``log_decisions=False`` (benchmark only) skips the insert. Raises
    NotFound (campaign not active, customer unknown without attributes), NotEligible,
    ServiceUnavailable (offline, customer not remembered) or UserError (bad attributes, channels
    or key).
    """
    if now.tzinfo is None:
        raise UserError("now must be timezone-aware")
    state = snapshot.state(campaign_id)
    customer_id = _check_text("customer_id", customer_id)
    if idempotency_key is not None:
        idempotency_key = _check_text("idempotency_key", idempotency_key)
    # Chosen before any I/O: an attempt whose commit fails ambiguously is spooled under the same id.
    decision_id = decision_id_for(campaign_id, idempotency_key)
    request = (state, customer_id, channels, idempotency_key, decision_id, model, note, now)
    if offline is None:
        return _decide_online(engine, *request, attributes, log_decisions, None)
    if offline.circuit.is_open():
        return offline.decide(*request, log_decisions=log_decisions)
    try:
        decision = _decide_online(engine, *request, attributes, log_decisions, offline)
    except sa.exc.DBAPIError as exc:
        if not offline.circuit.trip_on(exc):
            raise
        return offline.decide(*request, log_decisions=log_decisions)
    offline.decided(decision)
    return decision


def _decide_online(
    engine: sa.Engine,
    state: CampaignState,
    customer_id: str,
    channels: list[str] | None,
    idempotency_key: str | None,
    decision_id: str,
    model: ModelHandle | None,
    note: str | None,
    now: datetime,
    attributes: dict[str, Any] | None,
    log_decisions: bool,
    offline: Offline | None,
) -> RealtimeDecision:
    campaign = state.campaign
    day = now.astimezone(UTC).date()
    with engine.begin() as conn:
        if idempotency_key is not None:  # a retry: no lock, no eligibility (nothing written)
            existing = _existing(conn, campaign, idempotency_key)
            if existing is not None:
                return _replayed(existing, customer_id, campaign)
        # One request of a customer at a time, caps read and decision written in one transaction:
        # two concurrent sends cannot both pass a cap that only one of them fits under.
        conn.execute(
            sa.text("select pg_advisory_xact_lock(:k, hashtext(:c))"),
            {"k": CUSTOMER_LOCK_CLASS, "c": customer_id},
        )
        if idempotency_key is not None:  # a concurrent caller of the same key may have just logged it
            existing = _existing(conn, campaign, idempotency_key)
            if existing is not None:
                return _replayed(existing, customer_id, campaign)
        row = eligibility_row(conn, campaign, customer_id, attributes, day, now)
        if offline is not None:  # remembered even when not eligible: offline, the same answer
            offline.remember(campaign.campaign_id, customer_id, row, day)
        customer, allowed = judge_eligibility(campaign, row, channels, day)
        alloc, allowed = _day_capacity(conn, campaign, customer, allowed, day)
        decision = make_decision(
            state, customer, allowed, decision_id, idempotency_key, model, note, now, alloc
        )
        if not log_decisions or log_decision(conn, decision, str(customer["segment"].iloc[0]), day):
            return decision
        # The same key for another customer (who holds another lock) was logged first.
        existing = _existing(conn, campaign, idempotency_key or "")
    if existing is None:  # pragma: no cover - a conflict always leaves the winning row
        raise UserError(f"decision {decision_id} could not be logged")
    return _replayed(existing, customer_id, campaign)


def make_decision(
    state: CampaignState,
    customer: pd.DataFrame,
    allowed: np.ndarray,
    decision_id: str,
    idempotency_key: str | None,
    model: ModelHandle | None,
    note: str | None,
    now: datetime,
    alloc: Allocation | None = None,
) -> RealtimeDecision:
    """The decision for one eligible customer (no database), seeded by its key or id; with
    ``alloc`` the priced choice under the day's prices (pipelines/allocation.py)."""
    campaign = state.campaign
    seed = request_seed(
        campaign.campaign_id, str(customer["customer_id"].iloc[0]), idempotency_key or decision_id
    )
    out, used_model, fallback = choose(state, customer, allowed, seed, model, alloc)
    arm = int(out["arm_idx"][0])
    return RealtimeDecision(
        decision_id=decision_id,
        campaign_id=campaign.campaign_id,
        customer_id=str(customer["customer_id"].iloc[0]),
        arm_id=campaign.arm_ids[arm],
        arm_params=dict(campaign.arm_params[arm]),
        propensity=float(out["propensity"][0]),
        selected_by=str(out["selected_by"][0]),
        confidence=_number(out["confidence"][0]),
        explored=bool(out["explored"][0]),
        strategy=out["strategy"][0] or None,
        phase=out["phase"][0] or None,
        policy=campaign.spec.policy.name,
        model_version=used_model.version if used_model else None,
        treatment_group="control" if bool(customer["is_control"].iloc[0]) else "treatment",
        fallback_reason=_join(note, fallback),
        seed=seed,
        decided_at=now,
        idempotency_key=idempotency_key,
        scores={k: _number(out[k][0]) for k in ("bandit_score", "model_score", "blend_score")},
        runner_up_arm_id=campaign.arm_ids[int(out["runner_up_idx"][0])]
        if out["runner_up_idx"][0] >= 0
        else None,
        runner_up_propensity=_number(out["runner_up_propensity"][0]),
    )


def eligible_customer(
    conn: sa.Connection,
    campaign: Campaign,
    customer_id: str,
    attributes: dict[str, Any] | None,
    channels: list[str] | None,
    day: date,
    now: datetime,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The customer as the batch audience describes it (one row) and its allowed arms (1, n_arms):
    :func:`eligibility_row` judged by :func:`judge_eligibility`."""
    row = eligibility_row(conn, campaign, customer_id, attributes, day, now)
    return judge_eligibility(campaign, row, channels, day)


def eligibility_row(
    conn: sa.Connection,
    campaign: Campaign,
    customer_id: str,
    attributes: dict[str, Any] | None,
    day: date,
    now: datetime,
) -> dict[str, Any]:
    """The eligibility facts of one customer: :func:`pipelines.audience.one_customer_sql`'s row.

    A customer of the `customer_features` mart is read from it (``attributes`` are then not
    needed, and not used); another one needs valid ``attributes``. One round trip for a customer
    of the mart, two for one given by attributes.
    """
    params = audience_params(campaign, day, cap_end=day + timedelta(days=1), customer_id=customer_id)
    params |= {"until": now, "channels": sorted({c for c in _arm_channels(campaign) if c})}
    row = None
    if _mart_exists(conn):
        row = conn.exec_driver_sql(one_customer_sql(), params).mappings().one()
    if row is None or row["customer_id"] is None:
        if attributes is None:
            raise NotFound(f"customer {customer_id!r} is unknown: send its attributes to decide for it")
        values = validate_attributes(attributes)
        sql = one_customer_sql(_one_customer_sql(values))
        row = conn.exec_driver_sql(sql, params | {f"a_{k}": v for k, v in values.items()}).mappings().one()
    return dict(row)


def judge_eligibility(
    campaign: Campaign, row: Mapping[str, Any], channels: list[str] | None, day: date
) -> tuple[pd.DataFrame, np.ndarray]:
    """The customer frame (one row) and allowed arms of an eligibility row; NotEligible naming
    the rule otherwise. No database: offline decisions judge a remembered row the same way."""
    head = f"customer {row['customer_id']!r} is not eligible for campaign {campaign.name!r}: "
    if not (row["in_audience"] and not row["suppressed"] and row["under_caps"]):
        raise NotEligible(head + _why_not(campaign, row, day))
    arm_channels = _arm_channels(campaign)
    granted = set(row["granted_channels"] or ())
    allowed = np.array([[c is None or c in granted for c in arm_channels]])
    consented = allowed.any()
    allowed &= _touchpoint_mask(campaign, channels)
    if not allowed.any():
        where = f" among the touchpoint's channels {sorted(set(channels or []))}" if consented else ""
        raise NotEligible(head + f"no consent for any of its arms' channels{where}")
    frame = pd.DataFrame(
        {
            "customer_id": [str(row["customer_id"])],
            "segment": [str(row["segment"])],
            **{c: [_plain(row[c])] for c in (*CUSTOMER_COLUMNS, *extra_feature_names())},
            "segment_idx": np.array([SEGMENTS.index(row["segment"])], dtype=np.int64),
            "is_control": [float(row["holdout_draw"]) < campaign.spec.holdout_share],
        }
    )
    return frame, allowed


def _arm_channels(campaign: Campaign) -> list[str | None]:
    return [p.get("channel") for p in campaign.arm_params]


_MART_SEEN: set[str] = set()  # engines whose mart exists: dbt replaces the table, never drops it


def _mart_exists(conn: sa.Connection) -> bool:
    """Whether the mart exists (asked until it does: a fresh install serves before its first build)."""
    url = str(conn.engine.url)
    if url not in _MART_SEEN and has_table(conn, MART_CUSTOMERS):
        _MART_SEEN.add(url)
    return url in _MART_SEEN


def _plain(value: object) -> object:
    """A column value as the batch's frame holds it (numeric as float, as read_frame reads it)."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def validate_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Typed attributes of a customer not yet in the snapshot; UserError naming the first bad field.

    The rules of the customers file (pipelines.ingest.schemas.parse_customers)."""
    if not isinstance(attributes, dict):
        raise UserError("attributes must be an object of customer attributes")
    extras = configured_extra_features()
    known = (*CUSTOMER_COLUMNS, *(f.name for f in extras))
    unknown = sorted(set(attributes) - set(known))
    if unknown:
        raise UserError(f"attributes.{unknown[0]}: unknown attribute; known: {', '.join(known)}")
    missing = [c for c in CUSTOMER_COLUMNS if c not in attributes]
    if missing:
        raise UserError(
            f"attributes.{missing[0]}: missing (a customer not in the snapshot needs all of them)"
        )
    from pipelines.ingest.schemas import parse_customers

    row = {"customer_id": "x", "line_no": 1}
    for name in (n for n in known if n in attributes):  # an extra feature may be left out: null
        value = attributes[name]
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise UserError(f"attributes.{name}: expected a number or text, got {type(value).__name__}")
        row[name] = str(value)
    parsed = parse_customers(pd.DataFrame([row]), date.min, extras)  # the date is not used here
    if len(parsed.bad):
        raise UserError(f"attributes: {parsed.bad['reason'].iloc[0]}")
    good = parsed.good.iloc[0]
    values = {c: good[c] for c in CUSTOMER_COLUMNS}
    values["income"] = float(values["income"])
    values["segment"] = SEGMENTS[int(segment_of(np.array([values["age"]]), np.array([values["income"]]))[0])]
    values[STORE_COLUMN] = good[STORE_COLUMN]  # JSON text of the extra features given
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in values.items()}


def _one_customer_sql(values: dict[str, Any]) -> str:
    casts = {"age": "int", "gender": "text", "income": "numeric", "segment": "text", STORE_COLUMN: "jsonb"}
    cols = ", ".join(
        f"cast(%(a_{c})s as {casts.get(c, 'double precision')}) as {c}"
        for c in (*CUSTOMER_COLUMNS, "segment", STORE_COLUMN)
    )
    return f"(select cast(%(customer)s as text) as customer_id, {cols})"


def _touchpoint_mask(campaign: Campaign, channels: list[str] | None) -> np.ndarray:
    if channels is None:
        return np.ones((1, len(campaign.arm_ids)), dtype=bool)
    if isinstance(channels, str) or not all(isinstance(c, str) for c in channels):
        raise UserError("channels must be a list of channel names")
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise UserError(f"channels: unknown channel {unknown[0]!r}; allowed: {', '.join(CHANNELS)}")
    return np.array([[p.get("channel") in (None, *channels) for p in campaign.arm_params]])


def _why_not(campaign: Campaign, row: Mapping[str, Any], day: date) -> str:
    """Which rule keeps the customer out (checked in the audience query's order)."""
    caps = campaign.spec.frequency_caps
    if row["suppressed"]:
        return "suppressed"
    if row["sends_7d"] >= caps.max_per_week:
        return f"frequency cap: {row['sends_7d']} sends in the last 7 days (max_per_week {caps.max_per_week})"
    last = row["last_send"]
    if last is not None and last > day - timedelta(days=caps.min_days_between):
        return f"frequency cap: last send on {last} (min_days_between {caps.min_days_between})"
    return "outside the campaign's audience (age, income or segment)"


def choose(
    state: CampaignState,
    customer: pd.DataFrame,
    allowed: np.ndarray,
    seed: int,
    model: ModelHandle | None,
    alloc: Allocation | None = None,
) -> tuple[dict[str, np.ndarray], ModelHandle | None, str | None]:
    """The arm for one eligible customer (no database): choose_arms under the campaign's lock.

    A model that fails falls back to the bandit alone. Returns (choice arrays of shape (1,),
    the model used or None, the fallback reason or None)."""
    try:
        return _choose_with(state, customer, allowed, seed, model, alloc), model, None
    except Exception as exc:  # noqa: BLE001 - any scorer failure: decide without the model
        if model is None:
            raise
        log.warning("model %s failed, deciding without it: %s", model.version, type(exc).__name__)
        reason = f"model {model.version} failed ({type(exc).__name__}): bandit alone"
        return _choose_with(state, customer, allowed, seed, None, alloc), None, reason


def _choose_with(
    state: CampaignState,
    customer: pd.DataFrame,
    allowed: np.ndarray,
    seed: int,
    model: ModelHandle | None,
    alloc: Allocation | None = None,
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    with state.lock:
        policy = state.policy(model)
        if isinstance(policy, bandits.Rotation):
            # A batch hands rows to strategies by position; one request takes a stable position.
            policy.n_decisions_ = seed % (policy.params.period * len(policy.children))
        return choose_arms(state.campaign, policy, customer, allowed, rng, model, alloc)


def _day_capacity(
    conn: sa.Connection, campaign: Campaign, customer: pd.DataFrame, allowed: np.ndarray, day: date
) -> tuple[Allocation | None, np.ndarray]:
    """The day's allocation (the batch's stored prices) and the customer's arms without those a
    send of which would overrun a capacity, counting the day's sends so far, batch and real time.
    The campaign's real-time decisions of a capacity campaign are serialised (a transaction lock),
    so two requests cannot both take the last slot."""
    alloc = stored_allocation(conn, campaign, day)
    if alloc is None or not alloc.kinds:
        return alloc, allowed
    conn.execute(
        sa.text("select pg_advisory_xact_lock(:k, :c)"), {"k": CAPACITY_LOCK_CLASS, "c": campaign.campaign_id}
    )
    left = allowed & ~exhausted_arms(alloc, day_counts(conn, campaign, day))[None, :]
    if bool(customer["is_control"].iloc[0]):
        return alloc, allowed  # the holdout keeps its static arm
    if not left.any():
        raise NotEligible(f"campaign {campaign.name}: the day's capacities leave no arm for this customer")
    return alloc, left


def _existing(conn: sa.Connection, campaign: Campaign, key: str) -> sa.Row | None:
    return conn.execute(
        sa.text(
            """select d.*, a.params as arm_params from ops.decisions d
               join ops.arms a on a.arm_id = d.arm_id
               where d.campaign_id = :c and d.idempotency_key = :k"""
        ),
        {"c": campaign.campaign_id, "k": key},
    ).first()


def _replayed(row: sa.Row, customer_id: str, campaign: Campaign) -> RealtimeDecision:
    if row.customer_id != customer_id:
        raise key_used_elsewhere(row, customer_id)
    return RealtimeDecision(
        decision_id=row.decision_id,
        campaign_id=row.campaign_id,
        customer_id=row.customer_id,
        arm_id=row.arm_id,
        arm_params=dict(row.arm_params),
        propensity=float(row.propensity),
        selected_by=row.selected_by,
        confidence=_number(row.confidence),
        explored=bool(row.explored),
        strategy=row.strategy,
        phase=row.phase,
        policy=row.policy,
        model_version=row.model_version,
        treatment_group=row.treatment_group,
        fallback_reason=row.note,
        seed=int(row.seed),
        decided_at=row.decided_at,
        idempotency_key=row.idempotency_key,
        replayed=True,
        scores={k: _number(getattr(row, k)) for k in ("bandit_score", "model_score", "blend_score")},
        runner_up_arm_id=getattr(row, "runner_up_arm_id", None),
        runner_up_propensity=_number(getattr(row, "runner_up_propensity", None)),
    )


def key_used_elsewhere(earlier: Any, customer_id: str) -> UserError:
    """The error for a key whose ``earlier`` decision (a row or a RealtimeDecision) is another customer's."""
    return UserError(
        f"idempotency_key {earlier.idempotency_key!r} was already used for another customer of "
        f"campaign {earlier.campaign_id} (decision {earlier.decision_id}); use a new key per request"
    )


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{name}: must be a non-empty text")
    if len(value) > MAX_KEY_LENGTH or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise UserError(f"{name}: at most {MAX_KEY_LENGTH} printable characters")
    return value


def _arm_id_or_none(campaign: Campaign, index: int) -> int | None:
    return campaign.arm_ids[index] if index >= 0 else None


def _number(x: object) -> float | None:
    if x is None:
        return None
    value = float(x)  # type: ignore[arg-type]
    return None if math.isnan(value) else value


def _join(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    return "; ".join(kept) if kept else None

"""A real-time decision as answered, and its row in ``ops.decisions`` (logged by the online path,
replayed from the spool by pipelines.realtime.spool: the same statement, so logged once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from pipelines.decide import POLICY_VERSION


@dataclass(frozen=True)
class RealtimeDecision:
    decision_id: str
    campaign_id: int
    customer_id: str
    arm_id: int
    arm_params: dict[str, str]
    propensity: float
    selected_by: str  # bandit | model | blend | control
    confidence: float | None
    explored: bool
    strategy: str | None
    phase: str | None
    policy: str
    model_version: str | None
    treatment_group: str  # treatment | control
    fallback_reason: str | None
    seed: int
    decided_at: datetime
    idempotency_key: str | None = None
    replayed: bool = False  # True: an earlier decision of the same key, returned again
    scores: dict[str, float | None] = field(default_factory=dict)
    runner_up_arm_id: int | None = None  # the arm the policy was next most likely to choose
    runner_up_propensity: float | None = None


# Also the spool's replay: on conflict (decision_id, or the campaign's idempotency key) nothing.
INSERT_DECISION_SQL = """
insert into ops.decisions (decision_id, campaign_id, customer_id, arm_id, decision_date, decided_at,
    segment, policy, policy_version, strategy, phase, propensity, bandit_score, model_score, blend_score,
    selected_by, confidence, explored, model_version, treatment_group, source, seed, note, idempotency_key,
    runner_up_arm_id, runner_up_propensity)
values (:decision_id, :campaign_id, :customer_id, :arm_id, :day, :decided_at, :segment, :policy,
    :policy_version, :strategy, :phase, :propensity, :bandit_score, :model_score, :blend_score,
    :selected_by, :confidence, :explored, :model_version, :treatment_group, 'realtime', :seed, :note,
    :idempotency_key, :runner_up_arm_id, :runner_up_propensity)
on conflict do nothing
"""


def log_decision(conn: sa.Connection, d: RealtimeDecision, segment: str, day: date) -> bool:
    """True when this call logged the decision (False: the key was logged by another caller)."""
    return conn.execute(sa.text(INSERT_DECISION_SQL), decision_params(d, segment, day)).rowcount == 1


def decision_params(d: RealtimeDecision, segment: str, day: date) -> dict[str, Any]:
    """The parameters of :data:`INSERT_DECISION_SQL` for ``d``."""
    return {
        "decision_id": d.decision_id,
        "campaign_id": d.campaign_id,
        "customer_id": d.customer_id,
        "arm_id": d.arm_id,
        "day": day,
        "decided_at": d.decided_at,
        "segment": segment,
        "policy": d.policy,
        "policy_version": POLICY_VERSION,
        "strategy": d.strategy,
        "phase": d.phase,
        "propensity": d.propensity,
        **d.scores,
        "selected_by": d.selected_by,
        "confidence": d.confidence,
        "explored": d.explored,
        "model_version": d.model_version,
        "treatment_group": d.treatment_group,
        "seed": d.seed,
        "note": d.fallback_reason,
        "idempotency_key": d.idempotency_key,
        "runner_up_arm_id": d.runner_up_arm_id,
        "runner_up_propensity": d.runner_up_propensity,
    }

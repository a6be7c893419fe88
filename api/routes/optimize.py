"""POST /optimize: one real-time decision, made and logged by pipelines.realtime.decide_one."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import SERVICE, get_state
from api.lifespan import RealtimeEngine
from api.models import OptimizeIn, OptimizeOut, Problem
from api.routes.campaigns import BODY_ERRORS
from api.state import ServiceState
from pipelines.errors import ServiceUnavailable
from pipelines.realtime.optimize import RealtimeDecision, decide_one

router = APIRouter(tags=["real time"])


def realtime_engine(state: ServiceState = Depends(get_state)) -> RealtimeEngine:
    engine = state.components.get("realtime")
    if engine is None:
        why = state.load_problems.get("realtime", "realtime not loaded")
        raise ServiceUnavailable(f"the decision engine is not available: {why}")
    return engine


@router.post(
    "/optimize",
    response_model=OptimizeOut,
    dependencies=[SERVICE],
    responses={
        **BODY_ERRORS,
        404: {"model": Problem, "description": "The campaign is not active, or the customer is unknown."},
        422: {"model": Problem, "description": "A field is invalid, or the customer is not eligible (why)."},
        503: {
            "model": Problem,
            "description": "The decision engine is unavailable, or the database is and this worker "
            "has no recent eligibility (consent, suppressions, caps) of the customer.",
        },
    },
)
def optimize(body: OptimizeIn, realtime: RealtimeEngine = Depends(realtime_engine)) -> OptimizeOut:
    """Decide the arm for one customer with the batch's rules (consent, suppressions, caps, holdout,
    the campaign's policy); the decision is in ``ops.decisions`` (source realtime) before the 200.
    The same ``idempotency_key`` returns the same decision (``replayed``), logged once.

    With the database unreachable, a customer seen recently by this worker is decided from its
    remembered eligibility and the decision spooled locally (replayed into ``ops.decisions`` when
    the database returns); ``fallback_reason`` then starts with "database unavailable"."""
    model, note = realtime.champion.serving
    decision = decide_one(
        realtime.engine,
        realtime.snapshot,
        body.campaign_id,
        body.customer_id,
        attributes=body.attributes,
        channels=body.channels,
        idempotency_key=body.idempotency_key,
        model=model,
        note=note,
        now=realtime.now(),
        offline=realtime.offline,
        log_decisions=realtime.settings.realtime_log_decisions,
    )
    return to_response(decision)


def to_response(d: RealtimeDecision) -> OptimizeOut:
    return OptimizeOut(
        decision_id=d.decision_id,
        campaign_id=d.campaign_id,
        customer_id=d.customer_id,
        arm_id=d.arm_id,
        parameters=d.arm_params,
        propensity=d.propensity,
        selected_by=d.selected_by,
        confidence=d.confidence,
        explored=d.explored,
        policy=d.policy,
        strategy=d.strategy,
        phase=d.phase,
        model_version=d.model_version,
        group=d.treatment_group,  # type: ignore[arg-type]
        fallback_reason=d.fallback_reason,
        replayed=d.replayed,
        decided_at=d.decided_at,
    )

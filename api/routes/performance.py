"""How a campaign performs: lift against the holdout, and what the service has learnt per arm and
parameter value. Thin: pipelines.performance computes both."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi import APIRouter, Depends, Query

from api.deps import ANALYST, get_state
from api.models import Problem
from api.models_performance import CampaignPerformanceOut, ParameterPerformanceOut
from api.routes.campaigns import ERRORS, CampaignId
from api.state import ServiceState
from pipelines.campaign_store import load_campaign_by_id
from pipelines.performance import (
    DEFAULT_DAYS,
    MAX_DAYS,
    campaign_performance,
    learning_statistics,
    parameter_performance,
    resolve_window,
)

router = APIRouter(prefix="/campaigns", tags=["performance"])
READ_ERRORS = {**ERRORS, 404: {"model": Problem, "description": "The campaign is unknown."}}


def service_now(state: ServiceState) -> datetime:
    """The decision engine's clock when it is loaded (maturity as the service sees it), else UTC."""
    realtime = state.components.get("realtime")
    return realtime.now() if realtime is not None else datetime.now(UTC)


def live_statistics(state: ServiceState, campaign_id: int) -> tuple:
    """pipelines.performance.learning_statistics from this worker's snapshot, what it decides from
    (the mart for a campaign the snapshot does not hold): (campaign, pulls, rewards, source)."""
    realtime = state.components.get("realtime")
    snapshot = realtime.loaded_snapshot if realtime else None  # None: read the mart instead
    refreshed_at = realtime.refreshed_at if snapshot else None
    return learning_statistics(state.engine, campaign_id, snapshot, refreshed_at)


@router.get(
    "/{campaign_id}/performance",
    response_model=CampaignPerformanceOut,
    dependencies=[ANALYST],
    responses=READ_ERRORS,
)
def get_performance(
    campaign_id: CampaignId,
    state: ServiceState = Depends(get_state),
    since: date | None = Query(None, description="First decision day (UTC); not with days."),
    until: date | None = Query(None, description="Last decision day (UTC); default today."),
    days: int | None = Query(
        None, ge=1, le=MAX_DAYS, description=f"Days up to until (default {DEFAULT_DAYS}); not with since."
    ),
) -> dict:
    """Sends, conversions and rates of treatment and control over the window's decisions (batch and
    real time), the lift with its 95% CI (Newcombe/Wilson), revenue, cost, ROI, exploration share,
    the regret estimate and the decisions still pending (attribution window open)."""
    now = service_now(state)
    window = resolve_window(now.date(), since, until, days)  # 422 naming the bad parameter
    campaign = load_campaign_by_id(state.engine, campaign_id)  # 404 naming the campaign
    return campaign_performance(state.engine, campaign, window, now=now)


@router.get(
    "/{campaign_id}/parameters/performance",
    response_model=ParameterPerformanceOut,
    dependencies=[ANALYST],
    responses=READ_ERRORS,
)
def get_parameter_performance(campaign_id: CampaignId, state: ServiceState = Depends(get_state)) -> dict:
    """Per active arm and per parameter value: sends, matured rewards, the Beta posterior (mean, 95%
    credible interval) under the policy's prior, and the probability of being best (seeded Monte
    Carlo). From this worker's live statistics (``statistics`` says which and as of when)."""
    campaign, pulls, rewards, source = live_statistics(state, campaign_id)
    return parameter_performance(state.engine, campaign, pulls, rewards, source)

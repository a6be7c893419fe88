"""The dashboard's customer-segment and algorithm-diagnostics pages, and their JSON. Thin:
pipelines.segments_view and pipelines.diagnostics compute the figures; the pages fetch and draw
them as the other dashboard pages do (api/routes/dashboard.py signs in and serves the scripts)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.deps import ANALYST, get_state
from api.models_learning import DiagnosticsOut, SegmentsOut
from api.routes.campaigns import CampaignId
from api.routes.dashboard import _campaign_page
from api.routes.performance import READ_ERRORS, service_now
from api.state import ServiceState
from pipelines.dashboard_data import MAX_DAILY_DAYS
from pipelines.diagnostics import diagnostics
from pipelines.performance import DEFAULT_DAYS, Window, learning_statistics, resolve_window
from pipelines.segments_view import segment_view

router = APIRouter(tags=["dashboard"])


def _statistics(state: ServiceState, campaign_id: int) -> tuple:
    """learning_statistics from this worker's snapshot (the mart when the campaign is not in it)."""
    realtime = state.components.get("realtime")
    snapshot = realtime.loaded_snapshot if realtime else None
    refreshed_at = realtime.refreshed_at if snapshot else None
    return learning_statistics(state.engine, campaign_id, snapshot, refreshed_at)


def _window(
    state: ServiceState = Depends(get_state),
    since: date | None = Query(None, description="First decision day (UTC); not with days."),
    until: date | None = Query(None, description="Last decision day (UTC); default today."),
    days: int | None = Query(
        None,
        ge=1,
        le=MAX_DAILY_DAYS,
        description=f"Days up to until (default {DEFAULT_DAYS}); not with since.",
    ),
) -> Window:
    """The window as /performance/daily names it; 422 naming the bad parameter."""
    return resolve_window(service_now(state).date(), since, until, days)


@router.get(
    "/campaigns/{campaign_id}/segments",
    response_model=SegmentsOut,
    dependencies=[ANALYST],
    responses=READ_ERRORS,
)
def get_segments(campaign_id: CampaignId, state: ServiceState = Depends(get_state)) -> dict:
    """Per customer segment: sends, matured sends, the reward rate with its Wilson 95% interval, the
    best arm by posterior mean with its P(best) and credible-interval width, and the runner-up. From
    the statistics of /parameters/performance."""
    campaign, pulls, rewards, source = _statistics(state, campaign_id)
    return segment_view(state.engine, campaign, pulls, rewards, source)


@router.get(
    "/campaigns/{campaign_id}/diagnostics",
    response_model=DiagnosticsOut,
    dependencies=[ANALYST],
    responses=READ_ERRORS,
)
def get_diagnostics(
    campaign_id: CampaignId, state: ServiceState = Depends(get_state), window: Window = Depends(_window)
) -> dict:
    """Per decision day: exploration rate, allocation per arm, mean propensity, allocation entropy,
    mean posterior width, regret; days to converge; the regret estimate; and IPS, SNIPS and DR
    estimates (95% CIs) of candidate policies on the window's matured treatment decisions."""
    campaign, pulls, rewards, source = _statistics(state, campaign_id)
    return diagnostics(state.engine, campaign, window, pulls, rewards, source, now=service_now(state))


@router.get("/dashboard/campaigns/{campaign_id}/segments", include_in_schema=False)
def segments_page(
    campaign_id: CampaignId, request: Request, state: ServiceState = Depends(get_state)
) -> Response:
    return _campaign_page(request, state, campaign_id, "segments.html")


@router.get("/dashboard/campaigns/{campaign_id}/diagnostics", include_in_schema=False)
def diagnostics_page(
    campaign_id: CampaignId, request: Request, state: ServiceState = Depends(get_state)
) -> Response:
    return _campaign_page(request, state, campaign_id, "diagnostics.html")

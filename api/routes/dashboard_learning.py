"""The dashboard's customer-segment and algorithm-diagnostics pages, and their JSON. Thin:
pipelines.segments_view and pipelines.diagnostics compute the figures; the pages fetch and draw
them as the other dashboard pages do (api/routes/dashboard.py signs in and serves the scripts)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.deps import ANALYST, get_state
from api.models_learning import DiagnosticsOut, SegmentsOut
from api.routes.campaigns import CampaignId
from api.routes.dashboard import _campaign_page, daily_window
from api.routes.performance import READ_ERRORS, live_statistics, service_now
from api.state import ServiceState
from pipelines.diagnostics import diagnostics
from pipelines.performance import Window
from pipelines.segments_view import segment_view

router = APIRouter(tags=["dashboard"])


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
    campaign, pulls, rewards, source = live_statistics(state, campaign_id)
    return segment_view(state.engine, campaign, pulls, rewards, source)


@router.get(
    "/campaigns/{campaign_id}/diagnostics",
    response_model=DiagnosticsOut,
    dependencies=[ANALYST],
    responses=READ_ERRORS,
)
def get_diagnostics(
    campaign_id: CampaignId, state: ServiceState = Depends(get_state), window: Window = Depends(daily_window)
) -> dict:
    """Per decision day: exploration rate, allocation per arm, mean propensity, allocation entropy,
    mean posterior width, regret; days to converge; the regret estimate; and IPS, SNIPS and DR
    estimates (95% CIs) of candidate policies on the window's matured treatment decisions."""
    campaign, pulls, rewards, source = live_statistics(state, campaign_id)
    return diagnostics(state.engine, campaign, window, pulls, rewards, source, now=service_now(state))


def _page(template: str) -> Callable[..., Response]:
    def page(campaign_id: CampaignId, request: Request, state: ServiceState = Depends(get_state)) -> Response:
        return _campaign_page(request, state, campaign_id, template)

    return page


for _name in ("segments", "diagnostics"):  # the pages: a template each, fed by the JSON above
    router.add_api_route(
        f"/dashboard/campaigns/{{campaign_id}}/{_name}", _page(f"{_name}.html"), include_in_schema=False
    )

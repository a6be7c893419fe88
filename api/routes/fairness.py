"""The fair-lending monitor over HTTP and its dashboard page. Thin: pipelines.fairness computes."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.deps import ANALYST, get_state
from api.models_fairness import FairnessOut
from api.routes.campaigns import CampaignId
from api.routes.dashboard import _campaign_page
from api.routes.performance import READ_ERRORS
from api.state import ServiceState
from pipelines.campaign_store import load_campaign_by_id
from pipelines.fairness import campaign_fairness, latest_list_day

router = APIRouter(tags=["dashboard"])


@router.get(
    "/campaigns/{campaign_id}/fairness",
    response_model=FairnessOut,
    dependencies=[ANALYST],
    responses=READ_ERRORS,
)
def get_fairness(
    campaign_id: CampaignId,
    state: ServiceState = Depends(get_state),
    day: date | None = Query(None, description="Decision day of the batch list (default: the latest)."),
) -> dict:
    """Per offer (offer type, terms) and protected attribute (gender, age band): each group's share
    of the day's eligible audience and of the offer's recipients, the variance between the two
    (total variation distance, bootstrap 95% CI) and whether the monitor flags it."""
    campaign = load_campaign_by_id(state.engine, campaign_id)  # 404 naming the campaign
    with state.engine.connect() as conn:
        day = day or latest_list_day(conn, campaign_id, campaign.spec.name)
        return campaign_fairness(conn, campaign_id, day)


@router.get("/dashboard/campaigns/{campaign_id}/fairness", include_in_schema=False)
def fairness_page(
    campaign_id: CampaignId, request: Request, state: ServiceState = Depends(get_state)
) -> Response:
    return _campaign_page(request, state, campaign_id, "fairness.html")

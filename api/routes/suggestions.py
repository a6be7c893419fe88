"""Untested arms worth a try, for the dashboard's suggestions panel: `campaignopt suggest` over
HTTP. Thin: pipelines.suggest ranks them and writes each one's campaign-file diff.

The model is the one this worker decides with (the champion it follows), so the panel ranks by
what the service would score; a worker without one ranks by the evidence, and says why.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from api.deps import ANALYST, get_state
from api.models_suggestions import SuggestionsOut
from api.routes.campaigns import CampaignId
from api.routes.performance import READ_ERRORS, live_statistics
from api.state import ServiceState
from pipelines.suggest import load_champion, suggest

router = APIRouter(prefix="/campaigns", tags=["dashboard"])


def _serving_model(state: ServiceState):  # noqa: ANN202 - (ResponseModel or None, note)
    realtime = state.components.get("realtime")
    if realtime is None:  # a service without the decision engine: read the registry once
        return load_champion(state.settings)
    handle = realtime.champion.model
    if handle is None or handle.model is None:
        return None, f"{realtime.champion.note or 'no model serving'}; ranked by the evidence only"
    return handle.model, f"champion version {handle.version} (serving)"


@router.get(
    "/{campaign_id}/suggestions",
    response_model=SuggestionsOut,
    dependencies=[ANALYST],
    responses=READ_ERRORS,
)
def get_suggestions(
    campaign_id: CampaignId,
    state: ServiceState = Depends(get_state),
    top: int = Query(10, ge=1, le=100, description="How many candidate arms."),
    sample: int = Query(2000, ge=1, le=50_000, description="Audience customers the model scores."),
    seed: int = Query(0, ge=0, description="Seed of the audience sample and the bootstrap."),
) -> dict:
    """Arms the campaign does not send (a value it does not use, a combination it excludes),
    ranked by predicted conversion + 1 bootstrap sd (by the evidence of neighbouring arms without
    a model), the next value where the best send time sits at the campaign's edge, and for each
    the unified diff of the stored campaign definition that a person applies. The evidence is
    the statistics the parameter pages show (this worker's snapshot, else the marts)."""
    campaign, pulls, rewards, _ = live_statistics(state, campaign_id)
    model, note = _serving_model(state)
    report = suggest(
        state.engine,
        campaign.spec.name,
        model=model,
        model_note=note,
        top=top,
        sample=sample,
        seed=seed,
        statistics=(pulls, rewards),
    )
    return report.as_json()

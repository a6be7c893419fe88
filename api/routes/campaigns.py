"""Campaign definitions over HTTP, with the semantics of `campaignopt campaign apply`:
stable arm ids, a removed value retires its arms, a bad definition changes nothing."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, HTTPException, Path, status

from api.deps import ADMIN, ANALYST, get_engine
from api.models import ApplyOut, CampaignOut, CampaignSummary, Problem
from pipelines.campaign_read import campaign_detail, campaign_id_by_name, campaign_name
from pipelines.campaign_spec import CampaignSpec
from pipelines.campaign_store import apply_campaign, list_campaigns, load_campaign_by_id

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

CampaignId = Annotated[int, Path(ge=1, le=2**31 - 1, description="ops.campaigns.campaign_id")]
Engine = Annotated[sa.Engine, Depends(get_engine)]
ERRORS = {401: {"model": Problem}, 403: {"model": Problem}, 422: {"model": Problem}}
BODY_ERRORS = {**ERRORS, 400: {"model": Problem, "description": "The body is not readable (not UTF-8)."}}
EXAMPLE = {
    "name": "card-cashback",
    "start_date": "2026-11-01",
    "end_date": "2027-01-31",
    "parameters": {"discount": ["cashback", "fee_waiver"], "channel": ["email", "sms"]},
    "policy": {"name": "thompson", "params": {"prior_alpha": 1.0, "prior_beta": 30.0}},
    "holdout_share": 0.1,
}
Definition = Annotated[CampaignSpec, Body(openapi_examples={"card-cashback": {"value": EXAMPLE}})]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApplyOut,
    dependencies=[ADMIN],
    responses={**BODY_ERRORS, 409: {"model": Problem}},
)
def create_campaign(spec: Definition, engine: Engine) -> ApplyOut:
    """Create a campaign and its arms. A name already stored is 409: change it with PUT."""
    existing = campaign_id_by_name(engine, spec.name)
    if existing is not None:
        raise HTTPException(
            409, f"name: campaign {spec.name!r} exists (id {existing}); PUT /campaigns/{existing}"
        )
    return ApplyOut(**asdict(apply_campaign(engine, spec)))


@router.get("", response_model=list[CampaignSummary], dependencies=[ANALYST], responses=ERRORS)
def get_campaigns(engine: Engine) -> list[dict]:
    """Every campaign with its count of active and retired arms, by name."""
    return list_campaigns(engine)


@router.get(
    "/{campaign_id}",
    response_model=CampaignOut,
    dependencies=[ANALYST],
    responses={**ERRORS, 404: {"model": Problem}},
)
def get_campaign(campaign_id: CampaignId, engine: Engine) -> dict:
    """One campaign: its definition and every arm (retired ones with their retirement time)."""
    load_campaign_by_id(engine, campaign_id)  # 404, or 422 naming the field if it no longer validates
    return campaign_detail(engine, campaign_id)


@router.put(
    "/{campaign_id}",
    response_model=ApplyOut,
    dependencies=[ADMIN],
    responses={**BODY_ERRORS, 404: {"model": Problem}, 409: {"model": Problem}},
)
def update_campaign(campaign_id: CampaignId, spec: Definition, engine: Engine) -> ApplyOut:
    """Replace a campaign's definition (idempotent). Its name cannot change: 409 naming both."""
    stored = campaign_name(engine, campaign_id)
    if spec.name != stored:
        raise HTTPException(
            409,
            f"name: campaign {campaign_id} is {stored!r}, the body names {spec.name!r}; names cannot change",
        )
    return ApplyOut(**asdict(apply_campaign(engine, spec)))

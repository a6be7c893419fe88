"""Per-decision explanations over HTTP and on the dashboard's decision view. Thin:
pipelines.explain computes (what is stored, what is recomputed from the model version)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import ANALYST, get_state
from api.models import Problem
from api.routes.campaigns import ERRORS
from api.routes.dashboard import _page
from api.state import ServiceState
from pipelines.explain import explain_decision

router = APIRouter(tags=["decisions"])
DecisionId = Path(min_length=1, max_length=200, description="ops.decisions.decision_id")
EXPLAIN_ERRORS = {**ERRORS, 404: {"model": Problem, "description": "No decision has this id."}}


@router.get("/decisions/{decision_id}/explanation", dependencies=[ANALYST], responses=EXPLAIN_ERRORS)
def get_explanation(
    decision_id: str = DecisionId,
    top: int = Query(5, ge=1, le=50, description="Feature contributions per arm."),
    state: ServiceState = Depends(get_state),
) -> dict[str, Any]:
    """Why the customer got this arm: the logged score parts, propensity and exploration flag, and
    from the model version that scored it the model's ranking of the arms, the runner-up and the
    exact tree SHAP contributions (``model.status`` says why a part is missing: no model, the
    registry unreachable, a customer given by attributes)."""
    return explain_decision(state.engine, decision_id, top=top)


@router.get("/dashboard/decision", include_in_schema=False)
def find_decision(decision_id: str = Query(..., min_length=1, max_length=200)) -> Response:
    """The dashboard index's "explain a decision" form lands here."""
    from urllib.parse import quote

    return RedirectResponse(f"/dashboard/decisions/{quote(decision_id.strip(), safe='')}", status_code=303)


@router.get("/dashboard/decisions/{decision_id}", include_in_schema=False)
def decision_page(
    request: Request, decision_id: str = DecisionId, state: ServiceState = Depends(get_state)
) -> Response:
    return _page(request, state, "decision.html", lambda: {"e": explain_decision(state.engine, decision_id)})

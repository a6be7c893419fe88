"""The dashboard's Model and Data quality pages, their JSON (``/model/card``, ``/quality``,
``/alerts``), and acknowledging or resolving an alert from the browser. Thin: pipelines.model_card,
pipelines.quality and pipelines.alerts do the work; the pages and their sign-in are those of
api.routes.dashboard.

Writes from the browser. The dashboard's cookie is accepted for reads only (api.deps), so a
button cannot reach ``POST /alerts/{id}/acknowledge`` (which takes the key in a header, as every
write of the API). It posts a form to ``/dashboard/alerts/{id}/acknowledge`` instead, which:

- checks the cookie's key has the role the API's writes demand (admin): an analyst key may read
  the dashboard and gets 403 here;
- defends against cross-site request forgery with SameSite=Strict plus an Origin check. The
  cookie is SameSite=Strict, so a browser does not send it with a request another *site* starts.
  But a site is the registrable domain: a page on a sibling intranet host (wiki.bank.example
  against dashboard.bank.example) is the same site and would get the cookie sent. So the request
  must also carry an ``Origin`` (or, without one, a ``Referer``) equal to this service's own
  origin; every current browser sends Origin with a form POST, and a page cannot forge it. No
  per-session token is needed on top: a token defends against the same forged cross-origin POST
  that the Origin check already refuses, and would need server-side session state the dashboard
  does not otherwise have. (Behind a reverse proxy, the proxy must pass the ``Host`` header on
  unchanged, or every button is refused.)
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.deps import ANALYST, KEY_COOKIE, current_key, get_state, require_role
from api.models import Problem
from api.models_ops import AlertNoteIn, AlertOut, AlertsOut, ModelCardOut, QualityOut
from api.routes.campaigns import ERRORS
from api.routes.dashboard import _message, _page, _viewer
from api.routes.performance import service_now
from api.state import ServiceState
from pipelines import alerts
from pipelines.apikeys import ApiKey
from pipelines.errors import NotFound, UserError
from pipelines.model_card import read_model_card
from pipelines.quality import MAX_DAYS, quality_summary, with_status
from pipelines.validation import data_docs_dir

router = APIRouter(tags=["dashboard"])
WRITER = "admin"  # the role every write of the API demands (api.deps: admin may call everything)
DOWN = {503: {"model": Problem, "description": "The model registry (or the database) is unreachable."}}
NO_ALERT = {404: {"model": Problem, "description": "No such alert."}}
Action = Literal["acknowledge", "resolve"]


# -- JSON -------------------------------------------------------------------------------------
@router.get("/model/card", response_model=ModelCardOut, dependencies=[ANALYST], responses={**ERRORS, **DOWN})
def get_model_card(state: ServiceState = Depends(get_state)) -> dict:
    """The champion's card next to the challenger's, as retraining logged them to MLflow: version,
    when registered and promoted, training window and rows, holdout metrics (AUC with the gate's
    DeLong interval, log loss, Brier, ECE), calibration, lift by decile, the top 15 features, the
    off-policy estimate; and every gate decision, newest first. No champion: ``champion`` is null
    and ``champion_note`` says why. 503 naming the registry when it cannot be reached."""
    return read_model_card(state.settings)


@router.get("/quality", response_model=QualityOut, dependencies=[ANALYST], responses={**ERRORS, **DOWN})
def get_quality(
    state: ServiceState = Depends(get_state),
    days: int = Query(30, ge=1, le=MAX_DAYS, description="Logical dates up to today."),
) -> dict:
    """Quarantined rows by reason and by day, rejected inbox files, and the newest Great Expectations
    results (with their data docs page under /dashboard/data-docs/)."""
    return quality_summary(state.engine, state.settings, service_now(state).date(), days)


@router.get("/alerts", response_model=AlertsOut, dependencies=[ANALYST], responses={**ERRORS, **DOWN})
def get_alerts(
    state: ServiceState = Depends(get_state),
    since: date | None = Query(None, description="Only alerts of this day or later."),
    severity: Literal["info", "warning", "critical"] | None = Query(None, description="This and above."),
    kind: str | None = Query(None, max_length=200, description="A kind or its prefix, e.g. concept_drift."),
    open_only: bool = Query(False, alias="open", description="Only alerts not resolved."),
) -> dict:
    """The alerts of ops.alerts, newest first, as `campaignopt alerts list` shows them."""
    with state.engine.connect() as conn:
        rows = alerts.list_alerts(conn, since=since, severity=severity, kind=kind, open_only=open_only)
    return {"alerts": [with_status(r) for r in rows]}


def _mark(state: ServiceState, alert_id: int, action: Action, by: str, note: str | None) -> dict:
    """As `campaignopt alerts ack|resolve --by`: who and when in ops.alerts."""
    try:
        with state.engine.begin() as conn:
            row = getattr(alerts, f"{action}_alert")(conn, alert_id, by, note or None)
    except UserError as exc:  # ``by`` is a key's name, never empty: the alert is unknown
        raise NotFound(str(exc)) from None
    return with_status(row)


def _json_mark(action: Action):
    def mark(
        alert_id: int,
        body: AlertNoteIn | None = None,
        state: ServiceState = Depends(get_state),
        key: ApiKey = Depends(require_role(WRITER)),
    ) -> dict:
        return _mark(state, alert_id, action, key.name, body.note if body else None)

    return mark


for _action, _summary in (("acknowledge", "Acknowledge an alert: seen, still applies."),
                          ("resolve", "Resolve an alert: dealt with; a drift discount stops.")):  # fmt: skip
    router.post(
        f"/alerts/{{alert_id}}/{_action}",
        response_model=AlertOut,
        summary=_summary,
        description="Records the key's name and the time (ops.alerts, as the CLI). Admin role.",
        responses={**ERRORS, **NO_ALERT, **DOWN},
    )(_json_mark(_action))


# -- pages ------------------------------------------------------------------------------------
@router.get("/dashboard/model", include_in_schema=False)
def model_page(request: Request, state: ServiceState = Depends(get_state)) -> Response:
    return _page(request, state, "model.html", dict)


@router.get("/dashboard/quality", include_in_schema=False)
def quality_page(request: Request, state: ServiceState = Depends(get_state)) -> Response:
    return _page(request, state, "quality.html", lambda: {"max_days": MAX_DAYS})


def same_origin(request: Request) -> bool:
    """Whether the request says it comes from a page of this service (Origin, else Referer)."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed or claimed == "null":
        return False
    parts = urlsplit(claimed)
    return (parts.scheme, parts.netloc) == (request.url.scheme, request.headers.get("host", ""))


@router.post("/dashboard/alerts/{alert_id}/{action}", include_in_schema=False)
def mark_from_page(
    alert_id: int,
    action: Action,
    request: Request,
    state: ServiceState = Depends(get_state),
    note: str = Form("", max_length=2000),
) -> Response:
    """The page's Acknowledge/Resolve buttons (see the module docstring); back to the page."""
    try:
        if not same_origin(request):
            raise HTTPException(403, "this form must be sent from the dashboard's own page (Origin check)")
        # The cookie stands for the key here (api.deps takes it for reads only) once the Origin is ours.
        cookie = request.cookies.get(KEY_COOKIE)
        key = require_role(WRITER)(current_key(request, state, None, cookie, None))
        _mark(state, alert_id, action, key.name, note.strip())
    except HTTPException as exc:
        return _message(request, exc.status_code, exc.detail, "/dashboard/quality")
    except NotFound as exc:
        return _message(request, 404, str(exc), "/dashboard/quality")
    return RedirectResponse(f"/dashboard/quality#alert-{alert_id}", status_code=303)


@router.get("/dashboard/data-docs/{path:path}", include_in_schema=False)
def data_docs(path: str, request: Request, state: ServiceState = Depends(get_state)) -> Response:
    """The Great Expectations data docs site, to whoever may read the dashboard (its pages load
    only local files: pipelines.data_docs)."""
    try:
        _viewer(request, state)
    except HTTPException as exc:
        return _message(request, exc.status_code, exc.detail)
    root = data_docs_dir(state.settings).resolve()
    wanted = (root / (path or "index.html")).resolve()
    if not wanted.is_relative_to(root) or not wanted.is_file():
        return _message(request, 404, f"no data docs page {path!r}")
    return FileResponse(Path(wanted))

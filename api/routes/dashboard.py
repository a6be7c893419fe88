"""The dashboard: HTML pages under /dashboard (analyst role) drawn with Plotly in the browser, and
the JSON they read beyond /campaigns/{id}/performance and /parameters/performance. Thin:
pipelines.dashboard_data computes the figures; the pages fetch them and draw.

A browser cannot send a bearer header when it follows a link, so the pages take the key from a
cookie that POST /dashboard/login sets (HttpOnly: scripts cannot read it; SameSite=Strict: another
site cannot make the browser send it); api.deps accepts that cookie for reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import plotly
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.deps import ANALYST, KEY_COOKIE, current_key, get_state, require_role
from api.models_dashboard import DailyPerformanceOut, HeatmapsOut
from api.routes.campaigns import CampaignId
from api.routes.performance import READ_ERRORS, live_statistics, service_now
from api.state import ServiceState
from pipelines.apikeys import ApiKey
from pipelines.campaign_store import list_campaigns, load_campaign_by_id
from pipelines.dashboard_data import MAX_DAILY_DAYS, daily_performance, heatmaps
from pipelines.errors import NotFound, UserError
from pipelines.performance import DEFAULT_DAYS, Window, resolve_window

router = APIRouter(tags=["dashboard"])
HERE = Path(__file__).resolve().parents[1]
templates = Jinja2Templates(directory=HERE / "templates")
STATIC = HERE / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
COOKIE_SECONDS = 8 * 3600  # a working day; the key itself stays valid until revoked


# -- JSON -------------------------------------------------------------------------------------
def daily_window(
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
    """The window of a per-day view, as /performance names it (at most a year); 422 naming the bad
    parameter."""
    return resolve_window(service_now(state).date(), since, until, days)


@router.get(
    "/campaigns/{campaign_id}/performance/daily",
    response_model=DailyPerformanceOut,
    dependencies=[ANALYST],
    responses=READ_ERRORS,
)
def get_daily_performance(
    campaign_id: CampaignId, state: ServiceState = Depends(get_state), window: Window = Depends(daily_window)
) -> dict:
    """Per decision day: each group's conversion with its Wilson 95% interval, revenue and cost, the
    cumulative lift (Newcombe's CI); and the sample-ratio-mismatch check of the holdout share (chi-square)
    over the window. The window as /performance; at most a year."""
    campaign = load_campaign_by_id(state.engine, campaign_id)
    return daily_performance(state.engine, campaign, window, now=service_now(state))


@router.get(
    "/campaigns/{campaign_id}/parameters/heatmaps",
    response_model=HeatmapsOut,
    dependencies=[ANALYST],
    responses=READ_ERRORS,
)
def get_heatmaps(campaign_id: CampaignId, state: ServiceState = Depends(get_state)) -> dict:
    """Posterior mean reward with its 95% credible interval and P(best) per cell: offer_type x channel
    and time_of_day x day_of_week (pooled over the arms of a cell, when the campaign varies both), and
    segment x arm, from the same statistics as /parameters/performance."""
    campaign, pulls, rewards, source = live_statistics(state, campaign_id)
    return {
        "campaign_id": campaign.campaign_id,
        "campaign": campaign.spec.name,
        "reward_kind": campaign.spec.reward.kind,
        "statistics": source,
        "heatmaps": heatmaps(campaign, pulls, rewards),
    }


# -- pages ------------------------------------------------------------------------------------
def _viewer(request: Request, state: ServiceState) -> ApiKey:
    """The cookie's key if it may read the dashboard; HTTPException 401 or 403 otherwise."""
    return require_role("analyst")(current_key(request, state, None, None, request.cookies.get(KEY_COOKIE)))


def _message(request: Request, status: int, detail: str, next: str | None = None) -> Response:
    """The page for a refused or failed request: 401 offers the login form, back to this page."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    context = {"status": status, "detail": detail, "next": next or here}
    return templates.TemplateResponse(request, "message.html", context, status_code=status)


def _page(request: Request, state: ServiceState, template: str, load: Callable[[], dict]) -> Response:
    """``template`` with what ``load`` reads, once the key may see it (a refused key learns nothing,
    not even whether a campaign exists); the 401/403/404/422 page otherwise."""
    try:
        key = _viewer(request, state)
        context = load()
    except HTTPException as exc:
        return _message(request, exc.status_code, exc.detail)
    except UserError as exc:  # an unknown campaign, or one whose stored definition no longer validates
        return _message(request, 404 if isinstance(exc, NotFound) else 422, str(exc))
    return templates.TemplateResponse(request, template, {"key_name": key.name, **context})


def _campaign_page(request: Request, state: ServiceState, campaign_id: int, template: str) -> Response:
    def load() -> dict:
        return {"campaign": load_campaign_by_id(state.engine, campaign_id), "default_days": DEFAULT_DAYS}

    return _page(request, state, template, load)


@router.get("/dashboard", include_in_schema=False)
def index(request: Request, state: ServiceState = Depends(get_state)) -> Response:
    return _page(request, state, "index.html", lambda: {"campaigns": list_campaigns(state.engine)})


@router.get("/dashboard/campaigns/{campaign_id}", include_in_schema=False)
def campaign_page(
    campaign_id: CampaignId, request: Request, state: ServiceState = Depends(get_state)
) -> Response:
    return _campaign_page(request, state, campaign_id, "campaign.html")


@router.get("/dashboard/campaigns/{campaign_id}/parameters", include_in_schema=False)
def parameters_page(
    campaign_id: CampaignId, request: Request, state: ServiceState = Depends(get_state)
) -> Response:
    return _campaign_page(request, state, campaign_id, "parameters.html")


@router.get("/dashboard/login", include_in_schema=False)
def login_page(request: Request, next: str = "/dashboard") -> Response:
    return templates.TemplateResponse(request, "message.html", {"status": None, "detail": None, "next": next})


@router.post("/dashboard/login", include_in_schema=False)
def login(
    request: Request,
    state: ServiceState = Depends(get_state),
    key: str = Form(""),
    next: str = Form("/dashboard"),
) -> Response:
    """Check the key as any request would, then keep it in the cookie and go on to ``next``."""
    try:
        require_role("analyst")(current_key(request, state, None, key.strip(), None))
    except HTTPException as exc:
        return _message(request, exc.status_code, exc.detail, next)
    target = next if next.startswith("/dashboard") and not next.startswith("//") else "/dashboard"
    answer = RedirectResponse(target, status_code=303)
    answer.set_cookie(
        KEY_COOKIE,
        key.strip(),
        max_age=COOKIE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


@router.post("/dashboard/logout", include_in_schema=False)
def logout() -> Response:
    answer = RedirectResponse("/dashboard/login", status_code=303)
    answer.delete_cookie(KEY_COOKIE, httponly=True, samesite="strict")
    return answer


# -- scripts and styles: served by the app (an intranet page reaches no CDN) --------------------
STATIC_FILES = {p.name: p for p in STATIC.iterdir() if p.is_file()} | {"plotly.min.js": PLOTLY_JS}


@router.get("/dashboard/static/{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    path = STATIC_FILES.get(name)
    if path is None:
        return Response(f"no static file {name!r}", status_code=404, media_type="text/plain")
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})

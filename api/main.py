"""The FastAPI app factory: ``uvicorn --factory api.main:create_app`` (see `campaignopt serve`)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator

from api import errors
from api.lifespan import COMPONENTS, make_lifespan
from api.routes import (
    campaigns,
    dashboard,
    dashboard_learning,
    dashboard_ops,
    explain,
    fairness,
    feedback,
    health,
    optimize,
    performance,
    suggestions,
)
from api.state import Component
from pipelines.settings import Settings, get_settings

ROUTERS = (
    health.router,
    campaigns.router,
    optimize.router,
    feedback.router,
    performance.router,
    dashboard.router,
    dashboard_learning.router,
    fairness.router,
    suggestions.router,
    dashboard_ops.router,
    explain.router,
)


def create_app(settings: Settings | None = None, components: Sequence[Component] | None = None) -> FastAPI:
    """The service: routers per resource, error handlers, Prometheus metrics at /metrics."""
    settings = settings or get_settings()
    app = FastAPI(
        title="campaignopt",
        summary="Real-time campaign decisions and campaign definitions.",
        version="0.1.0",
        lifespan=make_lifespan(settings, COMPONENTS if components is None else components),
    )
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    # Its own registry per app (tests build several apps in one process); with several workers,
    # PROMETHEUS_MULTIPROC_DIR is set and /metrics sums every worker's files instead.
    Instrumentator(registry=CollectorRegistry(), excluded_handlers=["/metrics"]).instrument(app).expose(
        app, endpoint="/metrics", include_in_schema=False
    )
    return app

"""Probes: /healthz (the process answers), /readyz (it can do its work, or why not)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import get_state
from api.models import Health, Readiness
from api.state import ServiceState
from pipelines.readiness import database_problem, migrations_problem, registry_problem

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


def _problems(state: ServiceState) -> list[str]:
    problems = []
    db = database_problem(state.engine)
    if db:
        problems.append(db)
    else:
        schema = migrations_problem(state.engine, state.head_revision)
        if schema:
            problems.append(schema)
    registry = registry_problem(state.registry_uri)
    if registry:
        problems.append(registry)
    problems.extend(state.load_problems.values())
    realtime = state.components.get("realtime")
    if realtime is not None:
        problems.extend(realtime.problems())
    if not state.settings.realtime_log_decisions:
        problems.append("decision logging is off (benchmark setting)")
    return problems


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(state: ServiceState = Depends(get_state)) -> JSONResponse:
    problems = await run_in_threadpool(_problems, state)
    body = Readiness(
        status="degraded" if problems else "ok",
        reasons=problems,
        schema_head=state.head_revision,
        started_at=state.started_at,
    )
    return JSONResponse(status_code=503 if problems else 200, content=body.model_dump(mode="json"))

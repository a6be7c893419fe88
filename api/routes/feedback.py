"""POST /feedback: interaction events, stored exactly once by pipelines.realtime.record_events."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, HTTPException, Response
from pydantic import Discriminator, Field, Tag

from api.deps import SERVICE
from api.lifespan import RealtimeEngine
from api.models import EventResultOut, FeedbackEventIn, FeedbackOut, Problem
from api.routes.campaigns import BODY_ERRORS
from api.routes.optimize import realtime_engine
from pipelines.realtime.feedback import UNKNOWN_DECISION, EventResult, record_events
from pipelines.realtime.offline import SPOOLED

router = APIRouter(tags=["real time"])

MAX_EVENTS = 1000  # one request, one transaction: bounded


def _shape(body: object) -> str:
    return "events" if isinstance(body, list) else "event"


# A callable discriminator: an error is located in the shape sent ("events.1.event_type: ...",
# "event.occurred_at: ..."), not in both branches of a union.
Events = Annotated[
    Annotated[FeedbackEventIn, Tag("event")]
    | Annotated[list[FeedbackEventIn], Tag("events"), Field(min_length=1, max_length=MAX_EVENTS)],
    Discriminator(_shape),
    Body(description=f"One event, or a list of 1 to {MAX_EVENTS} events."),
]


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    dependencies=[SERVICE],
    responses={
        **BODY_ERRORS,
        202: {
            "model": FeedbackOut,
            "description": "The database is unavailable: every event is spooled locally (status "
            "``spooled``) and recorded, idempotently, when it returns.",
        },
        404: {"model": Problem, "description": "A single event (not a list) names an unknown decision."},
        422: {
            "model": Problem,
            "description": "A field of an event is invalid (the whole request is refused).",
        },
        503: {"model": Problem, "description": "The database or the decision engine is unavailable."},
    },
)
def feedback(
    events: Events, response: Response, realtime: RealtimeEngine = Depends(realtime_engine)
) -> FeedbackOut:
    """Store interaction events, idempotent by ``event_id``.

    200 with one result per event, in order: ``stored``, ``duplicate`` (the same event again),
    ``conflict`` (the id was stored with other content; the message names the fields),
    ``unknown_decision``, ``invalid``; ``outside_window`` marks an event stored but not learned
    from. ``accepted`` is true when every event was stored or a duplicate. A single event (not a
    list) whose decision is unknown is 404 naming it; nothing else in a list fails the request.
    With the database unreachable: 202, every event ``spooled`` (checked against its decision when
    recorded later).
    """
    batch = [asdict_event(e) for e in (events if isinstance(events, list) else [events])]
    results = _record(realtime, batch)
    if results[0].status == SPOOLED:
        response.status_code = 202
    if not isinstance(events, list) and results[0].status == UNKNOWN_DECISION:
        raise HTTPException(404, results[0].message)
    return FeedbackOut(
        accepted=all(r.ok or r.status == SPOOLED for r in results),
        counts=dict(Counter(r.status for r in results)),
        results=[EventResultOut(**asdict(r)) for r in results],
    )


def _record(realtime: RealtimeEngine, batch: list[dict]) -> list[EventResult]:
    """record_events, or the spool while the database is unreachable (its circuit open)."""
    offline = realtime.offline
    if not offline.circuit.is_open():
        try:
            return record_events(realtime.engine, batch, now=realtime.now())
        except sa.exc.DBAPIError as exc:
            if not offline.circuit.trip_on(exc):
                raise
    return offline.spool_feedback(batch, realtime.now())


def asdict_event(event: FeedbackEventIn) -> dict:  # the engine validates the mapping again
    return event.model_dump()

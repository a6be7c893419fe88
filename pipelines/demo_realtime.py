"""The demo's real-time part: the same engine through its second front door.

After the daily loop, `campaignopt serve` starts on a free loopback port against the demo's
database; a service API key (revoked at the end) makes real-time decisions for a few customers
of a campaign's latest list (``POST /optimize``), posts an open and a conversion for some of them
(``POST /feedback``) and reads ``GET /readyz``. Then, when chromium is installed, an analyst key
(revoked too) signs in to the dashboard and every page its index links to for the demo's
campaigns is saved as a PNG (:mod:`pipelines.screenshots`). The server is always stopped, on
error too: a service left behind by `make demo` would hold a port with nobody to stop it, so the
report prints how to start one instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from pipelines.apikeys import create_key, revoke_key
from pipelines.db import database_url
from pipelines.screenshots import Screenshot, browser_missing, screenshot_dashboard
from pipelines.serve_process import start_server, stop_server
from pipelines.settings import Settings

REQUEST_SECONDS = 30.0  # one request's bound: a cold worker scores its first call slower


@dataclass
class RealtimeSummary:
    campaign: str
    url: str | None = None  # where the service answered (stopped since)
    readiness: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    screenshots: list[Screenshot] = field(default_factory=list)
    screenshot_note: str | None = None  # why there are none


def demo_customers(engine: sa.Engine, campaign: str, n: int) -> tuple[int, list[str]]:
    """The campaign's id and ``n`` customers of its latest published list (by customer id)."""
    with engine.connect() as conn:
        campaign_id = conn.execute(
            sa.text("select campaign_id from ops.campaigns where name = :n"), {"n": campaign}
        ).scalar()
        if campaign_id is None:
            return 0, []
        customers = conn.execute(
            sa.text(
                """select d.customer_id from ops.decisions d
                   where d.campaign_id = :c and d.source = 'batch' and d.decision_date = (
                       select max(list_date) from ops.send_lists
                       where campaign_id = :c and status = 'published')
                   order by d.customer_id limit :n"""
            ),
            {"c": campaign_id, "n": n},
        ).scalars()
        return campaign_id, list(customers)


def run_realtime_demo(
    engine: sa.Engine,
    settings: Settings,
    campaign: str,
    n_customers: int,
    progress: Callable[[str], None] = print,
    screenshots: Path | None = None,
    campaign_query: str = "",
) -> RealtimeSummary:
    """Serve, decide for ``n_customers`` customers of ``campaign``, post feedback, save screenshots
    of the dashboard into ``screenshots`` (None: none), stop."""
    summary = RealtimeSummary(campaign)
    campaign_id, customers = demo_customers(engine, campaign, n_customers)
    if not customers:
        progress(f"real time: campaign {campaign} has no published list; nothing to decide")
        return summary
    key_name = f"demo-{uuid.uuid4().hex[:8]}"
    _, token = create_key(engine, key_name, "service")
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["DATABASE_URL"] = database_url(settings)  # the demo's database, embedded or not
    log_path = settings.home / "logs" / "serve-demo.log"
    server = None
    try:
        server = start_server(env, log_path)
        summary.url = server.url
        progress(f"real time: `campaignopt serve` answers at {server.url} (log {log_path})")
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_SECONDS
        ) as client:
            for i, customer in enumerate(customers):
                summary.rows.append(_decide_and_report(client, campaign_id, customer, i))
            ready = client.get("/readyz")
            summary.readiness = {"status_code": ready.status_code, **ready.json()}
        if screenshots is not None:
            _screenshots(engine, server.url, screenshots, campaign_query, summary, progress)
    finally:
        if server is not None:
            stop_server(server)
        revoke_key(engine, key_name)  # the demo leaves no live key behind
    decided = sum(1 for r in summary.rows if r.get("decision_id"))
    progress(f"real time: {decided} decisions, readyz {summary.readiness.get('status', '?')}; server stopped")
    return summary


def _screenshots(
    engine: sa.Engine, url: str, out_dir: Path, query: str, summary: RealtimeSummary, progress
) -> None:
    """The dashboard's pages for every campaign, as PNGs, signed in with a short-lived analyst key."""
    summary.screenshot_note = browser_missing()
    if summary.screenshot_note:
        progress(summary.screenshot_note)
        return
    with engine.connect() as conn:
        campaign_ids = list(conn.execute(sa.text("select campaign_id from ops.campaigns")).scalars())
    key_name = f"demo-analyst-{uuid.uuid4().hex[:8]}"
    _, token = create_key(engine, key_name, "analyst")
    try:
        summary.screenshots = screenshot_dashboard(url, token, campaign_ids, out_dir, query)
    finally:
        revoke_key(engine, key_name)
    progress(f"dashboard: {len(summary.screenshots)} pages saved as PNG in {out_dir}")


# Feedback for the i-th customer: nothing, an open, an open and a conversion (in turn).
FEEDBACK_PLAN: tuple[tuple[str, ...], ...] = ((), ("open",), ("open", "conversion"))


def _decide_and_report(client: httpx.Client, campaign_id: int, customer: str, i: int) -> dict[str, Any]:
    body = {"campaign_id": campaign_id, "customer_id": customer, "idempotency_key": f"demo-{customer}"}
    r = client.post("/optimize", json=body)
    if r.status_code != 200:  # e.g. a frequency cap: shown, not fatal
        return {"customer": customer, "decision_id": None, "feedback": f"{r.status_code}: {_detail(r)}"}
    got = r.json()
    row = {
        "customer": customer,
        "decision_id": got["decision_id"],
        "parameters": ", ".join(f"{k}={v}" for k, v in got["parameters"].items()),
        "propensity": got["propensity"],
        "selected_by": got["selected_by"],
        "group": got["group"],
        "model_version": got["model_version"],
    }
    events = [
        {
            "event_id": f"{got['decision_id']}-{kind}",
            "decision_id": got["decision_id"],
            "event_type": kind,
            "occurred_at": datetime.now(UTC).isoformat(),
            **({"value": 80.0} if kind == "conversion" else {}),
        }
        for kind in FEEDBACK_PLAN[i % len(FEEDBACK_PLAN)]
    ]
    if not events:
        return row | {"feedback": "-"}
    fb = client.post("/feedback", json=events)
    if fb.status_code != 200:
        return row | {"feedback": f"{fb.status_code}: {_detail(fb)}"}
    stored = zip(events, fb.json()["results"], strict=True)  # one result per event, in order
    return row | {"feedback": ", ".join(f"{e['event_type']} {x['status']}" for e, x in stored)}


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail", r.text))[:120]
    except ValueError:
        return r.text[:120]

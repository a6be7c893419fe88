"""A small real-time world for the /optimize and /feedback tests: a campaign stored in the
database (the running service picks it up at its next snapshot refresh), customers given by
attributes (not in the customer mart) with email and sms consent."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import sqlalchemy as sa

from pipelines.settings import Settings
from tests.api.conftest import auth
from tests.conftest import reset_tables
from tests.pipelines.seed_rows import add_campaign, insert_consents

ATTRIBUTES = {
    "age": 41,
    "gender": "F",
    "income": 52000,
    "loyalty_points": 120,
    "tenure_years": 4.0,
    "products_held": 2,
    "digital_engagement": 0.5,
    "website_visits": 6,
    "past_purchases": 1,
}
LOOSE_CAPS = {"max_per_week": 100, "min_days_between": 0}


def add_world(engine: sa.Engine, customers: list[str], *, start: date | None = None, **spec) -> int:
    """A 4-arm campaign (offer_type x channel) and consent for ``customers`` (those not given it
    yet); its id."""
    start = start or datetime.now(UTC).date() - timedelta(days=30)
    definition = {
        "name": f"rt-{uuid.uuid4().hex[:8]}",
        "start_date": start.isoformat(),
        "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email", "sms"]},
        "policy": {"name": "thompson"},
        "holdout_share": 0.0,
        "frequency_caps": LOOSE_CAPS,
    } | spec
    campaign = add_campaign(engine, definition)
    consented = datetime.combine(start - timedelta(days=30), datetime.min.time(), tzinfo=UTC)
    if customers:
        insert_consents(engine, [(c, ch, consented, True) for c in customers for ch in ("email", "sms")])
    return campaign.campaign_id


def optimize(server, token: str, campaign_id: int, customer_id: str, **extra) -> httpx.Response:
    body = {"campaign_id": campaign_id, "customer_id": customer_id, "attributes": ATTRIBUTES} | extra
    return httpx.post(f"{server.url}/optimize", json=body, headers=auth(token), timeout=30)


def fresh_world(engine: sa.Engine) -> None:
    """Empty raw and ops tables, and the tables dbt built from them (ids restart: without that, an
    earlier module's statistics of campaign 1 would count for this module's campaign 1)."""
    reset_tables(engine, every_mart=True)


def wait_until_served(server, token: str, campaign_id: int, timeout: float = 15.0) -> None:
    """Until the service's snapshot has the campaign: one refresh interval (the service may still
    serve a truncated campaign of the same id), then until it answers for it."""
    time.sleep(Settings().realtime_refresh_seconds + 1.0)
    deadline = time.monotonic() + timeout
    while True:
        body = {"campaign_id": campaign_id, "customer_id": "probe", "channels": []}
        r = httpx.post(f"{server.url}/optimize", json=body, headers=auth(token), timeout=30)
        if "unknown or not active" not in r.text:
            return
        assert time.monotonic() < deadline, f"campaign {campaign_id} not served: {r.text}"
        time.sleep(0.2)

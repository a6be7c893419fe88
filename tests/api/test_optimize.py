"""POST /optimize over real HTTP against PostgreSQL: the answer is the logged decision, keys are
idempotent, the holdout gets the default arm, and client errors are 4xx naming the cause."""

from __future__ import annotations

import uuid

import httpx
import pytest
import sqlalchemy as sa

from tests.api.conftest import auth
from tests.api.realtime_world import add_world, fresh_world, optimize, wait_until_served

CUSTOMERS = [f"opt-{i}" for i in range(40)]


@pytest.fixture(scope="module")
def campaigns(server, keys, engine: sa.Engine) -> dict[str, int]:
    """Two campaigns, no holdout and a 50 % holdout, served (one refresh wait for the module)."""
    fresh_world(engine)
    ids = {"plain": add_world(engine, CUSTOMERS), "holdout": add_world(engine, [], holdout_share=0.5)}
    for campaign_id in ids.values():
        wait_until_served(server, keys["service"], campaign_id)
    return ids


@pytest.fixture
def world(campaigns) -> int:
    return campaigns["plain"]


def _row(engine: sa.Engine, decision_id: str) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("select * from ops.decisions where decision_id = :d"), {"d": decision_id}
        ).one()


def test_the_answer_is_the_logged_decision(server, keys, world, engine) -> None:
    r = optimize(server, keys["service"], world, CUSTOMERS[0])
    assert r.status_code == 200, r.text
    got = r.json()
    row = _row(engine, got["decision_id"])  # durable before the 200
    assert row.source == "realtime"
    assert (row.campaign_id, row.customer_id, row.arm_id) == (world, CUSTOMERS[0], got["arm_id"])
    assert row.propensity == pytest.approx(got["propensity"])
    assert (row.selected_by, row.explored, row.policy) == (got["selected_by"], got["explored"], "thompson")
    assert (row.treatment_group, row.model_version, row.note) == (
        got["group"],
        got["model_version"],
        got["fallback_reason"],
    )
    assert got["group"] == "treatment" and not got["replayed"] and 0 < got["propensity"] <= 1
    with engine.connect() as conn:
        params = conn.execute(
            sa.text("select params from ops.arms where arm_id = :a"), {"a": got["arm_id"]}
        ).scalar_one()
    assert got["parameters"] == params
    # No champion is registered in the test registry: the bandit alone, and the answer says why.
    assert got["model_version"] is None
    assert got["fallback_reason"] == "no model: no champion registered yet"


def test_the_same_idempotency_key_gives_the_same_decision_logged_once(server, keys, world, engine) -> None:
    first = optimize(server, keys["service"], world, CUSTOMERS[1], idempotency_key="send-42")
    again = optimize(server, keys["service"], world, CUSTOMERS[1], idempotency_key="send-42")
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json()["decision_id"] == first.json()["decision_id"]
    assert again.json()["arm_id"] == first.json()["arm_id"]
    assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
    with engine.connect() as conn:
        n = conn.execute(
            sa.text("select count(*) from ops.decisions where idempotency_key = 'send-42'")
        ).scalar_one()
    assert n == 1


def test_a_control_customer_gets_the_default_arm(server, keys, campaigns, engine) -> None:
    campaign_id = campaigns["holdout"]
    answers = [optimize(server, keys["service"], campaign_id, c).json() for c in CUSTOMERS[:12]]
    groups = {a["group"] for a in answers}
    assert groups == {"treatment", "control"}, answers  # 12 customers at 50 %: both groups
    with engine.connect() as conn:
        default = conn.execute(
            sa.text("select arm_id from ops.arms where campaign_id = :c and is_default"), {"c": campaign_id}
        ).scalar_one()
    for a in answers:
        if a["group"] == "control":
            assert (a["arm_id"], a["selected_by"], a["propensity"]) == (default, "control", 1.0)
            assert _row(engine, a["decision_id"]).treatment_group == "control"


def test_client_errors_are_4xx_naming_the_cause(server, keys, world, engine) -> None:
    token = keys["service"]
    unknown = optimize(server, token, 987654, CUSTOMERS[0])
    assert unknown.status_code == 404 and "campaign 987654" in unknown.json()["detail"]
    body = {"campaign_id": world, "customer_id": "nobody"}
    stranger = httpx.post(f"{server.url}/optimize", json=body, headers=auth(token))
    assert stranger.status_code == 404 and "customer 'nobody' is unknown" in stranger.json()["detail"]
    bad_channel = optimize(server, token, world, CUSTOMERS[0], channels=["pigeon"])
    assert bad_channel.status_code == 422 and bad_channel.json()["detail"].startswith("channels.0")
    incomplete = optimize(server, token, world, CUSTOMERS[0], attributes={"age": 40})
    assert incomplete.status_code == 422
    assert incomplete.json()["detail"].startswith("attributes.gender: missing")
    blank = optimize(server, token, world, "  ")
    assert blank.status_code == 422 and blank.json()["detail"].startswith("customer_id")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into ops.suppressions (customer_id, campaign_id, reason, added_on) "
                "values (:c, 0, 't', current_date)"
            ),
            {"c": CUSTOMERS[2]},
        )
    suppressed = optimize(server, token, world, CUSTOMERS[2])
    assert suppressed.status_code == 422 and suppressed.json()["detail"].endswith("suppressed")
    no_channel = optimize(server, token, world, CUSTOMERS[3], channels=["branch"])
    assert no_channel.status_code == 422 and "no consent" in no_channel.json()["detail"]


ALLOWED = {"admin", "service"}


@pytest.mark.parametrize("path", ["/optimize", "/feedback"])
def test_auth_matrix(server, keys, path) -> None:
    body = (
        {"campaign_id": 987654, "customer_id": "x"}
        if path == "/optimize"
        else {
            "event_id": f"e-{uuid.uuid4().hex}",
            "decision_id": "rt-none",
            "event_type": "open",
            "occurred_at": "2026-12-01T10:00:00Z",
        }
    )
    for who in ("none", "unknown", "revoked"):
        headers = {} if who == "none" else auth(keys[who])
        r = httpx.post(server.url + path, json=body, headers=headers)
        assert r.status_code == 401, (who, r.text)
    r = httpx.post(server.url + path, json=body, headers=auth(keys["analyst"]))
    assert r.status_code == 403 and "role 'analyst' may not do this" in r.json()["detail"]
    for role in ALLOWED:  # past auth: the unknown campaign / decision is 404
        r = httpx.post(server.url + path, json=body, headers=auth(keys[role]))
        assert r.status_code == 404, (role, r.text)

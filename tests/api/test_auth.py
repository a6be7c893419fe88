"""The auth matrix of every route over real HTTP: no key / unknown / revoked -> 401, wrong role
-> 403, right role -> 2xx; the probes and /metrics are open; keys never reach the logs."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.api.conftest import auth, campaign_body

ALLOWED = {  # route -> roles that may call it
    ("POST", "/campaigns"): {"admin"},
    ("GET", "/campaigns"): {"admin", "analyst"},
    ("GET", "/campaigns/{id}"): {"admin", "analyst"},
    ("PUT", "/campaigns/{id}"): {"admin"},
}


@pytest.fixture
def campaign_id(server, keys) -> int:
    r = httpx.post(
        f"{server.url}/campaigns",
        json=campaign_body(f"auth-{uuid.uuid4().hex[:8]}"),
        headers=auth(keys["admin"]),
    )
    assert r.status_code == 201, r.text
    return r.json()["campaign_id"]


def call(server, method: str, path: str, campaign_id: int, headers: dict[str, str]) -> httpx.Response:
    body = None
    if method == "POST":
        body = campaign_body(f"auth-{uuid.uuid4().hex[:8]}")
    elif method == "PUT":
        got = httpx.get(f"{server.url}/campaigns/{campaign_id}", headers=headers)
        name = got.json()["name"] if got.status_code == 200 else "unused"
        body = campaign_body(name)
    return httpx.request(method, server.url + path.format(id=campaign_id), json=body, headers=headers)


@pytest.mark.parametrize("route", sorted(ALLOWED))
def test_auth_matrix(server, keys, campaign_id, route) -> None:
    method, path = route
    seen = {}
    for who in ("none", "unknown", "revoked", "malformed", "admin", "service", "analyst"):
        headers = {} if who == "none" else auth(keys.get(who, "not-a-key"))
        seen[who] = call(server, method, path, campaign_id, headers)
    for who in ("none", "unknown", "revoked", "malformed"):
        assert seen[who].status_code == 401, (who, seen[who].text)
        assert seen[who].headers["www-authenticate"] == "Bearer"
    assert "missing API key" in seen["none"].json()["detail"]
    for role in ("admin", "service", "analyst"):
        if role in ALLOWED[route]:
            assert seen[role].status_code in (200, 201), (role, seen[role].text)
        else:
            assert seen[role].status_code == 403, (role, seen[role].text)
            assert f"role {role!r} may not do this" in seen[role].json()["detail"]


def test_x_api_key_header_works_like_bearer(server, keys) -> None:
    assert httpx.get(f"{server.url}/campaigns", headers={"X-API-Key": keys["analyst"]}).status_code == 200
    assert httpx.get(f"{server.url}/campaigns", headers={"X-API-Key": keys["service"]}).status_code == 403
    assert httpx.get(f"{server.url}/campaigns", headers={"X-API-Key": keys["revoked"]}).status_code == 401


def test_a_key_revoked_while_in_use_is_refused_within_the_cache_time(server, engine) -> None:
    from api.deps import KEY_CACHE_SECONDS
    from pipelines.apikeys import create_key, revoke_key

    name = f"short-lived-{uuid.uuid4().hex[:6]}"
    _, token = create_key(engine, name, "analyst")
    assert httpx.get(f"{server.url}/campaigns", headers=auth(token)).status_code == 200
    revoke_key(engine, name)
    time.sleep(KEY_CACHE_SECONDS + 0.2)
    assert httpx.get(f"{server.url}/campaigns", headers=auth(token)).status_code == 401


def test_a_wrong_secret_for_a_real_key_id_is_refused(server, keys) -> None:
    real = keys["admin"]
    forged = real[:-1] + ("B" if real[-1] != "B" else "C")
    assert httpx.get(f"{server.url}/campaigns", headers=auth(forged)).status_code == 401


def test_probes_and_metrics_need_no_key_and_keys_never_reach_the_log(server, keys) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert httpx.get(server.url + path).status_code == 200, path
    log = server.log()
    assert "GET /campaigns" in log  # the access log is on ...
    for token in keys.values():
        assert token not in log and token.split("_", 2)[-1] not in log  # ... and no key is in it

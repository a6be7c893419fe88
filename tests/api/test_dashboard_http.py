"""The dashboard's JSON (per-day performance, heatmaps) and its sign-in over real HTTP, on the
hand-counted world of tests/api/dashboard_world.py."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.api.conftest import auth
from tests.api.dashboard_world import build_world, get_json


@pytest.fixture(scope="module")
def world(server, keys, engine) -> dict:
    return build_world(server, keys, engine)


def test_daily_performance_matches_the_hand_count(server, keys, world) -> None:
    body = get_json(server, keys["analyst"], f"/campaigns/{world['campaign_id']}/performance/daily")
    days = {d["date"]: d for d in body["days"]}
    assert len(body["days"]) == 30 and body["holdout_share"] == 0.2
    first, second = (
        days[str(world["today"] - timedelta(days=20))],
        days[str(world["today"] - timedelta(days=19))],
    )
    assert (first["treatment"]["conversions"], first["treatment"]["matured"]) == (8, 40)
    assert first["treatment"]["conversion_rate"] == pytest.approx(0.2)
    # Wilson 8/40: (0.2 + z²/80 -/+ z sqrt(0.2 * 0.8 / 40 + z²/6400)) / (1 + z²/40) = 0.2263 -/+ 0.1213
    assert (first["treatment"]["ci_low"], first["treatment"]["ci_high"]) == pytest.approx(
        (0.1050, 0.3476), abs=1e-4
    )
    assert first["cumulative_lift"]["absolute"] == pytest.approx(0.1)
    assert second["treatment"]["conversion_rate"] == pytest.approx(0.1)
    assert second["cumulative_lift"]["absolute"] == pytest.approx(12 / 80 - 2 / 20)
    assert first["treatment"]["cost"] == 80.0 and second["control"]["cost"] == 5.0
    yesterday = days[str(world["today"] - timedelta(days=1))]
    assert yesterday["treatment"]["sends"] == 5 and yesterday["treatment"]["conversion_rate"] is None
    assert yesterday["treatment"]["ci_low"] is None
    srm = body["sample_ratio"]
    assert (srm["control_sends"], srm["sends"], srm["expected_share"]) == (20, 105, 0.2)
    assert srm["chi2"] == pytest.approx(1 / 21 + 1 / 84) and srm["p_value"] == pytest.approx(0.8073, abs=1e-4)
    assert srm["mismatch"] is False


def test_a_bad_daily_window_is_422_naming_it(server, keys, world) -> None:
    url = f"{server.url}/campaigns/{world['campaign_id']}/performance/daily"
    for params, detail in (
        ({"days": 367}, "query days: Input should be less than or equal to 366"),
        ({"since": "2024-01-01", "until": "2025-06-01"}, "since: the daily view spans at most 366 days"),
        ({"since": "2026-02-02", "until": "2026-02-01"}, "since: 2026-02-02 is after until"),
    ):
        answer = httpx.get(url, params=params, headers=auth(keys["analyst"]), timeout=30)
        assert answer.status_code == 422 and answer.json()["detail"].startswith(detail), answer.text


def test_heatmaps_pool_the_arms_of_each_cell(server, keys, world) -> None:
    body = get_json(server, keys["analyst"], f"/campaigns/{world['campaign_id']}/parameters/heatmaps")
    pair, segments = body["heatmaps"]  # time_of_day x day_of_week is not varied: not drawn
    assert (pair["rows_parameter"], pair["columns_parameter"]) == ("offer_type", "channel")
    means = [c["posterior_mean"] for row in pair["cells"] for c in row]  # credit_card, loan x email, sms
    assert means == pytest.approx([3 / 30, 5 / 50, 1 / 10, 9 / 50])
    assert max((c for row in pair["cells"] for c in row), key=lambda c: c["prob_best"])["column"] == "sms"
    assert (segments["rows_parameter"], len(segments["rows"]), len(segments["columns"])) == ("segment", 9, 4)
    row = segments["cells"][segments["rows"].index("middle_mid")]
    assert [(c["matured"], c["rewards"]) for c in row] == [(10, 1), (0, 0), (0, 0), (40, 8)]
    assert sum(c["prob_best"] for c in row) == pytest.approx(1.0)


def test_the_cookie_signs_in_for_reads_only(server, keys, world) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        assert browser.get("/dashboard").status_code == 401
        assert browser.get("/dashboard/campaigns/99999").status_code == 401  # not even whether it exists
        wrong = browser.post("/dashboard/login", data={"key": keys["service"], "next": "/dashboard"})
        assert wrong.status_code == 403 and "needs admin or analyst" in wrong.text
        assert browser.post("/dashboard/login", data={"key": keys["revoked"]}).status_code == 401
        signed = browser.post(
            "/dashboard/login", data={"key": keys["analyst"], "next": "https://evil.example/"}
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/dashboard"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert browser.get("/dashboard").status_code == 200
        assert browser.get(f"/campaigns/{world['campaign_id']}/performance").status_code == 200
        # not for writes: a cookie alone cannot change a campaign
        assert browser.post("/campaigns", json={}).status_code == 401
        assert browser.get("/dashboard/campaigns/99999").status_code == 404
        browser.post("/dashboard/logout")
        assert browser.get("/dashboard").status_code == 401


def test_plotly_is_served_by_the_app(server) -> None:
    answer = httpx.get(f"{server.url}/dashboard/static/plotly.min.js", timeout=30)
    assert answer.status_code == 200 and "plotly.js v" in answer.text[:200]
    assert httpx.get(f"{server.url}/dashboard/static/../deps.py", timeout=30).status_code == 404

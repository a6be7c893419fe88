"""The customer-segment and algorithm-diagnostics pages: their JSON against the hand count of
tests/api/dashboard_world.py over real HTTP, and each page in headless Chromium (no console error,
the API's figures in the DOM, a screenshot under test-artifacts/dashboard/).

By hand (arm means under the prior Beta(1, 9); A1, A2 untried or in young_low all at 0.1):
    middle_mid: A0 Beta(2, 18) 0.1, A3 Beta(9, 41) 0.18 -> best A3, runner-up A0 (more evidence
        than the untried A1, A2 at the same mean), gap 0.08
    young_low: A0 Beta(2, 18), A1 Beta(5, 45), A2 = A3 = Beta(1, 9): all 0.1, four tied -> A1 (most
        evidence), runner-up A0, gap 0
    logged (80 matured treatment decisions): 40 middle_mid on A3 at propensity 0.8 (8 convert),
        40 young_low on A1 at 0.4 (4 convert); observed 12 / 80 = 0.15
    uniform (1/4): weights 0.3125 and 0.625 -> IPS (8 x 0.3125 + 4 x 0.625) / 80 = 0.0625,
        SNIPS 5 / (40 x 0.3125 + 40 x 0.625) = 5 / 37.5; DR with q = those means: middle_mid
        0.12 + 0.3125 (0.2 - 0.18) = 0.12625, young_low 0.1 + 0.625 (0.1 - 0.1) -> (0.12625 + 0.1) / 2
    greedy: middle_mid A3 (weight 1.25), young_low split four ways (0.625) -> IPS (10 + 2.5) / 80,
        SNIPS 12.5 / 75, DR (0.18 + 1.25 x 0.02 + 0.1) / 2 = 0.1525
    arm level (pooled): A1 Beta(5, 45) 0.1 vs the best tried A3 Beta(9, 41) 0.18: the 40 choices of
        A1 on T - 19 cost 40 x 0.08 = 3.2 conversions, the A3 ones nothing
"""

from __future__ import annotations

import math
from datetime import timedelta

import httpx
import pytest
from scipy import stats
from selenium.webdriver.common.by import By

from tests.api.conftest import auth
from tests.api.dashboard_world import build_world, get_json
from tests.api.test_dashboard_browser import (  # noqa: F401 -- the module's browser fixture, reused
    browser,
    console_errors,
    figures,
    loaded,
    sign_in,
    traces,
)

Z = 1.959963984540054


@pytest.fixture(scope="module")
def world(server, keys, engine) -> dict:
    return build_world(server, keys, engine)


def wilson(x: int, n: int) -> tuple[float, float]:
    p, centre = x / n, (x / n + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


def width(a: float, b: float) -> float:
    return float(stats.beta.ppf(0.975, a, b) - stats.beta.ppf(0.025, a, b))


def test_segments_match_the_hand_count_and_the_parameters_page(server, keys, world) -> None:
    cid, arms = world["campaign_id"], world["arms"]
    body = get_json(server, keys["analyst"], f"/campaigns/{cid}/segments")
    by = {s["segment"]: s for s in body["segments"]}
    assert len(by) == 9 and body["statistics"]["source"] == "service_snapshot"
    mm, yl = by["middle_mid"], by["young_low"]
    assert (mm["sends"], mm["matured"], mm["rewards"]) == (50, 50, 9)
    assert mm["reward_rate"] == pytest.approx(0.18)
    assert (mm["ci_low"], mm["ci_high"]) == pytest.approx(wilson(9, 50))
    assert (mm["best"]["arm_id"], mm["runner_up"]["arm_id"], mm["tied_arms"]) == (arms[3], arms[0], 1)
    assert mm["best"]["posterior_mean"] == pytest.approx(0.18) and mm["gap"] == pytest.approx(0.08)
    assert mm["best"]["ci_width"] == pytest.approx(width(9, 41))
    assert (yl["best"]["arm_id"], yl["runner_up"]["arm_id"], yl["tied_arms"], yl["gap"]) == (
        arms[1],
        arms[0],
        4,
        0,
    )
    assert yl["reward_rate"] == pytest.approx(0.1)
    assert by["senior_high"]["best"] is None and by["senior_high"]["matured"] == 0
    # the same posterior as the parameters page's segment x arm heatmap
    heat = get_json(server, keys["analyst"], f"/campaigns/{cid}/parameters/heatmaps")["heatmaps"][-1]
    cell = heat["cells"][heat["rows"].index("middle_mid")][3]
    assert mm["best"]["prob_best"] == cell["prob_best"] and mm["best"]["ci_low"] == cell["ci_low"]


def test_diagnostics_per_day_match_the_hand_count(server, keys, world) -> None:
    cid, arms, today = world["campaign_id"], world["arms"], world["today"]
    body = get_json(server, keys["analyst"], f"/campaigns/{cid}/diagnostics")
    days = {d["date"]: d for d in body["days"]}
    assert len(days) == 30 and body["treatment_decisions"] == 85
    assert body["exploration_rate"] == pytest.approx(40 / 85)
    first, second, last = (days[str(today - timedelta(days=k))] for k in (20, 19, 1))
    assert (first["exploration_rate"], second["exploration_rate"], last["exploration_rate"]) == (0, 1, 0)
    assert first["allocation"] == [0, 0, 0, 1] and second["allocation"] == [0, 1, 0, 0]
    assert (first["top_arm_id"], second["top_arm_id"], last["top_arm_id"]) == (arms[3], arms[1], arms[3])
    assert [d["mean_propensity"] for d in (first, second, last)] == pytest.approx([0.8, 0.4, 0.5])
    assert first["allocation_entropy"] == 0
    assert days[str(today - timedelta(days=10))]["exploration_rate"] is None
    assert first["mean_posterior_width"] == pytest.approx((width(2, 18) + 2 * width(1, 9) + width(9, 41)) / 4)
    assert second["mean_posterior_width"] == pytest.approx(
        (width(3, 27) + width(5, 45) + width(1, 9) + width(9, 41)) / 4
    )
    assert [d["cumulative_regret"] for d in (first, second, last)] == pytest.approx([0, 3.2, 3.2])
    assert body["window_regret"] == pytest.approx(3.2)
    conv = body["convergence"]  # A3 tops T - 20 and T - 1, A1 T - 19: one day held, 3 needed
    assert conv["converged"] is False and "last 1 decision day(s)" in conv["reason"]


def test_off_policy_estimates_match_the_hand_count(server, keys, world) -> None:
    body = get_json(server, keys["analyst"], f"/campaigns/{world['campaign_id']}/diagnostics")
    ope = body["off_policy"]
    assert ope["logged_decisions"] == 80 and ope["left_out"] == {
        "control": 20, "pending": 5, "unknown_segment_or_retired_arm": 0}  # fmt: skip
    assert ope["observed_value"] == pytest.approx(0.15)
    by = {p["policy"]: p for p in ope["policies"]}
    assert list(by) == ["logging", "uniform", "greedy_posterior_mean", "campaign_policy:thompson"]
    logging = by["logging"]
    assert [logging[k]["value"] for k in ("ips", "snips", "dr")] == pytest.approx([0.15] * 3)
    half = Z * math.sqrt(10.2 / 79 / 80)  # the sample deviation of 12 ones in 80 over sqrt(80)
    assert (logging["ips"]["ci_low"], logging["ips"]["ci_high"]) == pytest.approx((0.15 - half, 0.15 + half))
    uniform, greedy = by["uniform"], by["greedy_posterior_mean"]
    assert [uniform[k]["value"] for k in ("ips", "snips", "dr")] == pytest.approx(
        [0.0625, 5 / 37.5, (0.12625 + 0.1) / 2]
    )
    assert [greedy[k]["value"] for k in ("ips", "snips", "dr")] == pytest.approx(
        [12.5 / 80, 12.5 / 75, 0.1525]
    )
    assert uniform["max_weight"] == pytest.approx(0.625) and greedy["max_weight"] == pytest.approx(1.25)
    thompson = by["campaign_policy:thompson"]
    assert thompson["ips"]["n"] == 80 and thompson["reason"] is None


def test_unknown_campaigns_and_bad_windows_are_named(server, keys, world) -> None:
    headers = auth(keys["analyst"])
    for path in ("/campaigns/99999/segments", "/campaigns/99999/diagnostics"):
        answer = httpx.get(f"{server.url}{path}", headers=headers, timeout=30)
        assert answer.status_code == 404 and "99999" in answer.json()["detail"], answer.text
    url = f"{server.url}/campaigns/{world['campaign_id']}/diagnostics"
    for params, detail in (
        ({"days": 0}, "query days: Input should be greater than or equal to 1"),
        ({"since": "2026-02-02", "days": 3}, "days: give since or days, not both"),
        ({"since": "2024-01-01", "until": "2025-06-01"}, "since: the daily view spans at most 366 days"),
        ({"since": "2026-02-02", "until": "2026-02-01"}, "since: 2026-02-02 is after until"),
        ({"until": "not-a-day"}, "query until:"),
    ):
        answer = httpx.get(url, params=params, headers=headers, timeout=30)
        assert answer.status_code == 422 and answer.json()["detail"].startswith(detail), answer.text
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.post("/dashboard/login", data={"key": keys["analyst"]})
        for page in ("segments", "diagnostics"):
            answer = client.get(f"/dashboard/campaigns/99999/{page}")
            assert answer.status_code == 404 and 'data-status="404"' in answer.text


def test_the_segments_page_shows_the_apis_figures(browser, server, keys, world) -> None:  # noqa: F811
    cid = world["campaign_id"]
    sign_in(browser, server, keys["analyst"], f"/dashboard/campaigns/{cid}/segments")
    loaded(browser, "segments")
    assert console_errors(browser) == []
    body = get_json(server, keys["analyst"], f"/campaigns/{cid}/segments")
    rows = browser.find_elements(By.CSS_SELECTOR, "#segments tbody tr")

    def best(s: dict) -> tuple:
        return (s["best"]["arm_id"], s["best"]["prob_best"]) if s["best"] else None

    def shown_best(r) -> tuple:
        arm, prob = r.get_attribute("data-best-arm-id"), r.get_attribute("data-prob-best")
        return (int(arm), float(prob)) if arm else None

    shown = [
        (r.get_attribute("data-segment"), int(r.get_attribute("data-sends")), shown_best(r)) for r in rows
    ]
    assert shown == [(s["segment"], s["sends"], best(s)) for s in body["segments"]]
    mm = rows[[s[0] for s in shown].index("middle_mid")]
    assert "18.00%" in mm.text and "loan · sms" in mm.text and "+8.0 pts" in mm.text
    assert "tied with 3 others" in rows[[s[0] for s in shown].index("young_low")].text
    assert (traces(browser, "rate-chart"), traces(browser, "certainty-chart")) == (1, 2)
    nav = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "main nav a")]
    assert nav == ["Campaigns", "Performance", "Parameters", "Diagnostics", "Fairness"]


def test_the_diagnostics_page_shows_the_apis_figures(browser, server, keys, world) -> None:  # noqa: F811
    cid, day = world["campaign_id"], world["today"] - timedelta(days=19)
    sign_in(browser, server, keys["analyst"], f"/dashboard/campaigns/{cid}/diagnostics")
    loaded(browser, "diagnostics")
    assert console_errors(browser) == []
    body = get_json(server, keys["analyst"], f"/campaigns/{cid}/diagnostics")
    shown = figures(browser)
    assert float(shown["exploration-rate"]) == pytest.approx(body["exploration_rate"])
    assert float(shown["window-regret"]) == pytest.approx(body["window_regret"]) == pytest.approx(3.2)
    assert shown["days-to-converge"] == "" and "not yet" in browser.find_element(By.ID, "figures").text
    estimates = {
        r.get_attribute("data-policy"): r
        for r in browser.find_elements(By.CSS_SELECTOR, "#estimates tr[data-policy]")
    }
    assert list(estimates) == [p["policy"] for p in body["off_policy"]["policies"]]
    for p in body["off_policy"]["policies"]:
        assert float(estimates[p["policy"]].get_attribute("data-ips")) == pytest.approx(p["ips"]["value"])
    assert "6.25%" in estimates["uniform"].text
    assert [
        traces(browser, c)
        for c in ("exploration-chart", "allocation-chart", "width-chart", "regret-chart", "ope-chart")
    ] == [2, 4, 2, 1, 3]  # noqa: E501
    # the window chosen on the page reaches the JSON: one day, T - 19
    browser.get(f"{server.url}/dashboard/campaigns/{cid}/diagnostics?since={day}&until={day}")
    loaded(browser, "diagnostics-one-day")
    assert float(figures(browser)["treatment-decisions"]) == 40 and console_errors(browser) == []

"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver) against a real
`campaignopt serve`, on the hand-counted world of tests/api/dashboard_world.py: each page loads
with no console error, its figures equal the API's JSON, Plotly drew its charts, and a screenshot
of each page is kept under test-artifacts/dashboard/ for a person to look at."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from datetime import timedelta

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from pipelines.screenshots import sign_in as signed_in
from tests.api.conftest import REPO
from tests.api.dashboard_world import build_world, get_json

ARTIFACTS = REPO / "test-artifacts" / "dashboard"
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"


@pytest.fixture(scope="module")
def world(server, keys, engine) -> dict:
    return build_world(server, keys, engine)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:  # CI installs them (.ci/run): missing here is a failure
        pytest.fail(f"the browser tests need Debian's chromium and chromedriver: {INSTALL}")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2200"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {ARTIFACTS}")
    yield chrome
    chrome.quit()


def sign_in(browser, server, key: str, then: str) -> None:
    signed_in(browser, server.url, key, then)  # the demo's screenshots sign in the same way


def console_errors(browser) -> list[dict]:
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def loaded(browser, name: str) -> None:
    """Until the page's script has drawn everything (or failed), then a screenshot."""
    WebDriverWait(browser, 60).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
    )
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", (
        browser.find_element(By.ID, "error").text
    )
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def traces(browser, element_id: str) -> int:
    """Traces Plotly drew into the div (it sets .data and the js-plotly-plot class)."""
    script = "const d = document.getElementById(arguments[0]); return d.classList.contains('js-plotly-plot') ? d.data.length : -1;"  # noqa: E501
    return browser.execute_script(script, element_id)


def figures(browser) -> dict[str, str]:
    return {
        e.get_attribute("data-figure"): e.get_attribute("data-value")
        for e in browser.find_elements(By.CSS_SELECTOR, "[data-figure]")
    }  # noqa: E501


def test_without_a_key_the_page_asks_for_one_and_the_wrong_role_is_refused(
    browser, server, keys, world
) -> None:
    browser.delete_all_cookies()
    browser.get(f"{server.url}/dashboard")
    assert browser.find_element(By.CSS_SELECTOR, "section.message").get_attribute("data-status") == "401"
    assert "missing API key" in browser.find_element(By.CSS_SELECTOR, "p.detail").text
    browser.save_screenshot(str(ARTIFACTS / "401-sign-in.png"))
    sign_in(browser, server, keys["service"], "/dashboard")
    assert browser.find_element(By.CSS_SELECTOR, "section.message").get_attribute("data-status") == "403"
    assert "needs admin or analyst" in browser.find_element(By.CSS_SELECTOR, "p.detail").text
    assert console_errors(browser) == [] or all(
        "401" in e["message"] or "403" in e["message"] for e in console_errors(browser)
    )


def test_the_index_lists_the_campaigns(browser, server, keys, world) -> None:
    sign_in(browser, server, keys["analyst"], "/dashboard")
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-campaign-id='{world['campaign_id']}']")
    assert "dashboard-demo" in row.text and "20.0%" in row.text
    links = [a.get_attribute("href") for a in row.find_elements(By.TAG_NAME, "a")]
    page = f"{server.url}/dashboard/campaigns/{world['campaign_id']}"
    assert links == [
        page,
        f"{page}/parameters",
        f"{page}/segments",
        f"{page}/diagnostics",
        f"{page}/fairness",
    ]
    browser.save_screenshot(str(ARTIFACTS / "index.png"))
    assert console_errors(browser) == []


def test_the_campaign_page_shows_the_apis_figures_and_draws_them(browser, server, keys, world) -> None:
    cid = world["campaign_id"]
    sign_in(browser, server, keys["analyst"], f"/dashboard/campaigns/{cid}")
    loaded(browser, "campaign-performance")
    assert console_errors(browser) == []
    perf = get_json(server, keys["analyst"], f"/campaigns/{cid}/performance")
    daily = get_json(server, keys["analyst"], f"/campaigns/{cid}/performance/daily")
    shown = figures(browser)
    assert float(shown["treatment-sends"]) == perf["treatment"]["sends"] == 85
    assert float(shown["control-sends"]) == perf["control"]["sends"] == 20
    assert float(shown["lift"]) == pytest.approx(perf["lift"]["absolute"]) == pytest.approx(0.05)
    assert float(shown["treatment-rate"]) == pytest.approx(0.15) and float(
        shown["control-rate"]
    ) == pytest.approx(0.1)
    assert float(shown["revenue"]) == perf["revenue"] == 1400 and float(shown["roi"]) == pytest.approx(
        1220 / 180
    )
    assert (
        float(shown["holdout-share"])
        == pytest.approx(daily["sample_ratio"]["observed_share"])
        == pytest.approx(20 / 105)
    )
    lift_text = browser.find_element(By.CSS_SELECTOR, "[data-figure='lift']").text
    assert lift_text.startswith("+5.0 pts") and "95% CI" in lift_text
    assert "consistent with the configured share" in browser.find_element(By.ID, "figures").text
    # the world posts conversions only: nobody opened or clicked
    assert float(shown["treatment-ctr"]) == perf["treatment"]["click_through_rate"] == 0.0
    assert shown["treatment-dwell"] == "" and perf["treatment"]["dwell_seconds_per_view"] is None
    # two bands and two lines; the lift's band and line; sends and the funnel of the two groups
    assert (
        traces(browser, "conversion-chart"),
        traces(browser, "lift-chart"),
        traces(browser, "sends-chart"),
        traces(browser, "engagement-chart"),
    ) == (4, 2, 2, 2)
    points = browser.execute_script("return document.getElementById('conversion-chart').data[1].y;")
    day = str(world["today"] - timedelta(days=20))
    assert points[[d["date"] for d in daily["days"]].index(day)] == pytest.approx(0.2)


def test_the_window_is_chosen_on_the_page(browser, server, keys, world) -> None:
    cid, day = world["campaign_id"], world["today"] - timedelta(days=20)
    sign_in(browser, server, keys["analyst"], f"/dashboard/campaigns/{cid}?since={day}&until={day}")
    assert browser.current_url.endswith(f"?since={day}&until={day}")  # signed in, back to the same window
    loaded(browser, "campaign-performance-one-day")
    shown = figures(browser)
    assert (float(shown["treatment-sends"]), float(shown["lift"])) == (40, pytest.approx(0.1))
    assert traces(browser, "sends-chart") == 2
    assert console_errors(browser) == []


def test_the_parameters_page_shows_the_posteriors_and_heatmaps(browser, server, keys, world) -> None:
    cid = world["campaign_id"]
    sign_in(browser, server, keys["admin"], f"/dashboard/campaigns/{cid}/parameters")
    loaded(browser, "parameter-performance")
    assert console_errors(browser) == []
    body = get_json(server, keys["analyst"], f"/campaigns/{cid}/parameters/performance")
    rows = browser.find_elements(By.CSS_SELECTOR, "#arms tbody tr")
    shown = [(int(r.get_attribute("data-arm-id")), float(r.get_attribute("data-prob-best"))) for r in rows]
    assert shown == [(a["arm_id"], a["prob_best"]) for a in body["arms"]]
    assert [int(r.get_attribute("data-sends")) for r in rows] == [20, 40, 0, 45]
    best = max(body["arms"], key=lambda a: a["prob_best"])
    assert best["arm_id"] == world["arms"][3] and f"{100 * best['prob_best']:.1f}%" in rows[3].text
    assert (traces(browser, "prob-best-chart"), traces(browser, "arm-chart")) == (1, 1)
    heatmaps = browser.find_elements(By.CSS_SELECTOR, "#heatmaps .js-plotly-plot")
    assert [(h.get_attribute("data-rows"), h.get_attribute("data-columns")) for h in heatmaps] == [
        ("offer_type", "channel"),
        ("segment", "arm"),
    ]
    assert [traces(browser, h.get_attribute("id")) for h in heatmaps] == [1, 1]
    hover = browser.execute_script("return document.getElementById('heatmap-0').data[0].text[1][1];")
    assert "posterior mean 18.00%" in hover and "95% credible interval" in hover
    # the untested arms panel shows the suggestions endpoint's ranking, diffs included
    report = get_json(server, keys["analyst"], f"/campaigns/{cid}/suggestions")
    # no champion: by the evidence. loan/app_push pools its neighbours loan/sms (40 sends, 8
    # conversions) and loan/email (none) under Beta(1, 9): Beta(9, 41), mean 0.18, sd sqrt(369 / 127500)
    first = report["suggestions"][0]
    assert (report["basis"], first["arm_key"]) == ("evidence", "offer_type=loan|channel=app_push")
    assert (first["mean"], first["uncertainty"]) == pytest.approx((0.18, math.sqrt(369 / 127500)))
    assert "+  channel: [email, sms, app_push]" in first["diff"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#suggestions tbody tr")
    listed = report["suggestions"] + report["edges"]
    assert [r.get_attribute("data-arm-key") for r in rows] == [s["arm_key"] for s in listed]
    assert [float(r.get_attribute("data-mean")) for r in rows] == [s["mean"] for s in listed]
    assert browser.find_element(By.ID, "suggestions-basis").get_attribute("data-basis") == report["basis"]
    assert "add app_push to channel" in rows[0].text and "18.00%" in rows[0].text
    rows[0].find_element(By.TAG_NAME, "summary").click()
    assert "channel: [email, sms, app_push]" in rows[0].find_element(By.TAG_NAME, "pre").text
    browser.save_screenshot(str(ARTIFACTS / "parameters-suggestions.png"))

"""The fair-lending monitor over real HTTP and on its dashboard page in headless Chromium: the
figures of tests/pipelines/test_fairness.py's hand-built list (loan goes 90% to men, credit_card
only to women; both flagged by gender, neither by age band)."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.api.conftest import auth
from tests.api.dashboard_world import get_json
from tests.api.test_dashboard_browser import browser, console_errors, loaded, sign_in, traces  # noqa: F401
from tests.pipelines.test_fairness import D, build_fair_world


@pytest.fixture(scope="module")
def world(server, engine) -> int:
    return build_fair_world(engine)


def test_the_json_has_the_hand_derived_figures(server, keys, world) -> None:
    body = get_json(server, keys["analyst"], f"/campaigns/{world}/fairness")  # the latest list: D
    assert (body["date"], body["eligible"], body["treatment"]) == (D.isoformat(), 400, 360)
    flagged = {(o["value"], o["attribute"]) for o in body["offers"] if o["flagged"]}
    assert flagged == {("loan", "gender"), ("credit_card", "gender")}
    loan = next(o for o in body["offers"] if (o["value"], o["attribute"]) == ("loan", "gender"))
    assert loan["variance"] == pytest.approx(0.4) and loan["under_represented"] == ["F"]
    assert get_json(server, keys["analyst"], f"/campaigns/{world}/fairness", day=D.isoformat()) == body


def test_bad_requests_name_what_is_wrong(server, keys, world) -> None:
    def get(path: str, key: str | None = keys["analyst"], **params) -> httpx.Response:
        headers = auth(key) if key else {}
        return httpx.get(f"{server.url}{path}", params=params, headers=headers, timeout=30)

    assert get("/campaigns/99999/fairness").status_code == 404
    bad_day = get(f"/campaigns/{world}/fairness", day="2026-13-01")
    assert bad_day.status_code == 422 and "day" in bad_day.text
    assert get(f"/campaigns/{world}/fairness", key=None).status_code == 401


def test_the_page_shows_the_offers_and_draws_each(browser, server, keys, world) -> None:  # noqa: F811
    sign_in(browser, server, keys["analyst"], f"/dashboard/campaigns/{world}/fairness")
    loaded(browser, "fairness")
    rows = browser.find_elements(By.CSS_SELECTOR, "#offers tbody tr")
    body = get_json(server, keys["analyst"], f"/campaigns/{world}/fairness")
    assert [(r.get_attribute("data-offer"), r.get_attribute("data-attribute")) for r in rows] == [
        (f"{o['parameter']}={o['value']}", o["attribute"]) for o in body["offers"]
    ]
    flagged = [r for r in rows if r.get_attribute("class") == "flagged"]
    assert [r.get_attribute("data-offer") for r in flagged] == ["offer_type=credit_card", "offer_type=loan"]
    assert "variance, F short" in flagged[1].text and "40.0%" in flagged[1].text
    assert [traces(browser, f"offer-chart-{k}") for k in range(len(rows))] == [2] * len(rows)
    assert console_errors(browser) == []

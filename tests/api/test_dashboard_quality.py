"""The Data quality and alerts page over real HTTP and in a real headless Chromium, on the
hand-counted world of tests/api/quality_world.py: /quality's counts, /alerts, acknowledging and
resolving an alert through the API (admin) and through the page's buttons (the cookie, an admin
key and an Origin of the service's own; an analyst key is refused), and the data docs served."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.api.conftest import auth
from tests.api.dashboard_world import get_json
from tests.api.quality_world import (
    BAD_EVENT,
    FEW_FIELDS,
    VALIDATED_DAY,
    alert_row,
    build_quality_world,
    key_name,
)
from tests.api.test_dashboard_browser import (
    ARTIFACTS,
    browser,
    console_errors,
    figures,
    loaded,
    sign_in,
    traces,
)

__all__ = ["browser"]  # the module's one browser (its fixture)
DRIFT, REJECTED, QUARANTINE = 1, 2, 3  # the alert ids of the world


@pytest.fixture(scope="module")
def world(server, keys, engine) -> dict:
    return build_quality_world(engine)


def test_quality_counts_the_live_quarantine_of_the_window(server, keys, world) -> None:
    body = get_json(server, keys["analyst"], "/quality")
    today = world["today"]
    assert body["window"] == {"since": str(today - timedelta(days=29)), "until": str(today), "days": 30}
    q = body["quarantine"]
    assert q["rows"] == 6  # the superseded row and the one of T - 40 are not counted
    assert q["by_reason"] == [
        {"reason": FEW_FIELDS, "rows": 5, "files": 2},
        {"reason": BAD_EVENT, "rows": 1, "files": 1},
    ]
    assert [(d["date"], d["reason"], d["rows"]) for d in q["by_day"]] == [
        (str(today - timedelta(days=2)), BAD_EVENT, 1),  # by date, then reason
        (str(today - timedelta(days=2)), FEW_FIELDS, 3),
        (str(today - timedelta(days=1)), FEW_FIELDS, 2),
    ]
    assert [(f["path"], f["rows_read"], f["rows_quarantined"]) for f in body["rejected_files"]] == [
        ("inbox/c.jsonl", 10, 8)
    ]
    held = [(h["channel"], h["landing"], h["date"], h["released_by"]) for h in body["feedback_holds"]]
    assert held == [
        ("email", "file", str(today - timedelta(days=1)), None),  # of the window
        ("app_push", "file", str(today - timedelta(days=60)), None),  # still held, however old
    ]
    assert get_json(server, keys["analyst"], "/quality", days=1)["quarantine"]["rows"] == 0  # only T


def test_quality_lists_the_great_expectations_results_with_their_pages(server, keys, world) -> None:
    report = world["report"]
    body = get_json(server, keys["analyst"], "/quality")
    ours = [v for v in body["validations"] if v["batch"] == f"interactions-{VALIDATED_DAY}"]
    assert ours and (report.success, report.failed, report.evaluated) == (False, ["arm_in_campaign"], 9)
    newest = ours[0]
    assert (newest["suite"], newest["success"], newest["failed"], newest["evaluated"]) == (
        "interactions_batch",
        False,
        report.failed,
        report.evaluated,
    )
    assert report.data_docs_path.endswith(newest["data_docs_page"])
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get(f"/dashboard/data-docs/{newest['data_docs_page']}").status_code == 401
        client.post("/dashboard/login", data={"key": keys["analyst"]})
        page = client.get(f"/dashboard/data-docs/{newest['data_docs_page']}")
        assert page.status_code == 200 and "interactions_batch" in page.text
        assert client.get("/dashboard/data-docs/" + body["data_docs_index"]).status_code == 200
        assert client.get("/dashboard/data-docs/../../../etc/passwd").status_code == 404
        assert client.get("/dashboard/data-docs/%2e%2e/validation_results").status_code == 404


def test_alerts_are_acknowledged_and_resolved_by_an_admin_key_only(server, keys, engine, world) -> None:
    listed = get_json(server, keys["analyst"], "/alerts")["alerts"]
    assert [(a["alert_id"], a["severity"], a["status"]) for a in listed] == [
        (REJECTED, "critical", "open"), (DRIFT, "warning", "open"), (QUARANTINE, "warning", "resolved"),
    ]  # fmt: skip
    assert [a["alert_id"] for a in get_json(server, keys["analyst"], "/alerts", open="true")["alerts"]] == [
        2,
        1,
    ]
    url = f"{server.url}/alerts/{REJECTED}/acknowledge"
    refused = httpx.post(url, headers=auth(keys["analyst"]), timeout=30)
    assert refused.status_code == 403 and "needs admin" in refused.json()["detail"]
    assert alert_row(engine, REJECTED)["acknowledged_at"] is None
    done = httpx.post(url, json={"note": "file re-sent"}, headers=auth(keys["admin"]), timeout=30)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["acknowledged_by"]) == (
        "acknowledged",
        key_name(engine, keys["admin"]),
    )
    row = alert_row(engine, REJECTED)
    assert row["acknowledged_at"] is not None and row["note"] == "file re-sent"
    missing = httpx.post(f"{server.url}/alerts/99999/resolve", headers=auth(keys["admin"]), timeout=30)
    assert missing.status_code == 404 and "alert 99999: no such alert" in missing.json()["detail"]
    with httpx.Client(base_url=server.url, timeout=30) as client:  # the cookie alone writes nothing
        client.post("/dashboard/login", data={"key": keys["admin"]})
        assert client.post(f"/alerts/{REJECTED}/resolve").status_code == 401
        form = f"/dashboard/alerts/{REJECTED}/resolve"
        for headers in ({}, {"Origin": "https://evil.example"}, {"Origin": "null"}):
            answer = client.post(form, headers=headers)  # a forged cross-origin form: refused
            assert answer.status_code == 403 and "Origin check" in answer.text
        assert alert_row(engine, REJECTED)["resolved_at"] is None
        assert client.post(form, headers={"Referer": f"{server.url}/dashboard/quality"}).status_code == 303
    assert alert_row(engine, REJECTED)["resolved_by"] == key_name(engine, keys["admin"])


def _click(browser, alert_id: int, action: str) -> None:
    """Submit the row's form and wait for the next document; its script may still be drawing."""
    browser.execute_script("window.beforeClick = true;")
    browser.find_element(By.CSS_SELECTOR, f"#alert-{alert_id} button[data-action='{action}']").click()
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script("return !window.beforeClick && document.readyState === 'complete'")
    )


def test_the_page_shows_the_apis_figures_and_its_buttons_change_the_alert(
    browser, server, keys, engine, world
) -> None:
    sign_in(browser, server, keys["admin"], "/dashboard/quality")
    loaded(browser, "quality")
    assert console_errors(browser) == []
    quality = get_json(server, keys["analyst"], "/quality")
    shown = figures(browser)
    assert float(shown["quarantined-rows"]) == quality["quarantine"]["rows"] == 6
    assert float(shown["rejected-files"]) == len(quality["rejected_files"]) == 1
    assert (traces(browser, "reason-chart"), traces(browser, "day-chart")) == (
        1,
        2,
    )  # one bar trace per reason
    bars = browser.execute_script("return document.getElementById('reason-chart').data[0].x;")
    assert bars == [r["rows"] for r in quality["quarantine"]["by_reason"]] == [5, 1]
    validation = browser.find_element(
        By.CSS_SELECTOR, f"#validations tr[data-batch='interactions-{VALIDATED_DAY}']"
    )
    assert validation.get_attribute("data-success") == "false" and "FAILED" in validation.text
    assert (
        validation.find_element(By.LINK_TEXT, "data docs")
        .get_attribute("href")
        .startswith(f"{server.url}/dashboard/data-docs/validations/interactions_batch/")
    )
    row = browser.find_element(By.ID, f"alert-{DRIFT}")
    assert row.get_attribute("data-status") == "open" and "warning" in row.text
    holds = browser.find_elements(By.CSS_SELECTOR, "#holds tbody tr")
    assert (
        [h.get_attribute("data-status") for h in holds]
        == ["held"] * len(quality["feedback_holds"])
        == [
            "held",
            "held",
        ]
    )
    assert "open 0 against 64 expected" in holds[0].text

    _click(browser, DRIFT, "acknowledge")
    loaded(browser, "quality-after-acknowledge")  # the new page's rows come from its script, not its HTML
    assert browser.find_element(By.ID, f"alert-{DRIFT}").get_attribute("data-status") == "acknowledged"
    admin = key_name(engine, keys["admin"])
    acknowledged = alert_row(engine, DRIFT)
    assert acknowledged["acknowledged_by"] == admin and acknowledged["acknowledged_at"] is not None
    assert acknowledged["resolved_at"] is None
    assert f"acknowledged by {admin}" in browser.find_element(By.ID, f"alert-{DRIFT}").text
    _click(browser, DRIFT, "resolve")
    loaded(browser, "quality-after-resolve")
    assert browser.find_element(By.ID, f"alert-{DRIFT}").get_attribute("data-status") == "resolved"
    resolved = alert_row(engine, DRIFT)
    assert resolved["resolved_by"] == admin and resolved["acknowledged_at"] == acknowledged["acknowledged_at"]
    assert console_errors(browser) == []


def test_an_analyst_key_may_look_but_not_acknowledge(browser, server, keys, engine, world) -> None:
    with engine.begin() as conn:  # an open alert again: alert 1 reopened by hand
        conn.exec_driver_sql(
            f"update ops.alerts set acknowledged_at = null, acknowledged_by = null, resolved_at = null, "
            f"resolved_by = null where alert_id = {DRIFT}"
        )
    sign_in(browser, server, keys["analyst"], "/dashboard/quality")
    loaded(browser, "quality-analyst")
    _click(browser, DRIFT, "acknowledge")
    message = browser.find_element(By.CSS_SELECTOR, "section.message")
    assert message.get_attribute("data-status") == "403"
    assert "needs admin" in browser.find_element(By.CSS_SELECTOR, "p.detail").text
    browser.save_screenshot(str(ARTIFACTS / "quality-analyst-refused.png"))
    assert alert_row(engine, DRIFT)["acknowledged_at"] is None

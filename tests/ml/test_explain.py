"""Per-decision explanations (pipelines/explain.py): a logged decision of the daily list, scored by
a registered champion, is explained from the model version and the customer's snapshot, and the
recomputation re-derives the logged model score exactly."""

from __future__ import annotations

import json
import math
import os
from datetime import date
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from pipelines import daily
from pipelines.campaign_spec import load_campaign
from pipelines.campaign_store import apply_campaign
from pipelines.demo import write_customer_files
from pipelines.explain import explain_decision
from pipelines.retrain import retrain
from pipelines.settings import get_settings
from tests.api.conftest import auth, launch  # noqa: F401 (the service fixture)
from tests.api.dashboard_world import get_json
from tests.api.test_dashboard_browser import browser, sign_in  # noqa: F401
from tests.ml.conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 2)

pytestmark = pytest.mark.slow


@pytest.fixture
def decided(clean_engine, settings_for, examples, arms, monkeypatch, test_home) -> dict[str, sa.Row]:
    """cross_sell's list of DAY decided with a freshly promoted champion; its decisions by kind."""
    monkeypatch.setenv("CAMPAIGNOPT_HOME", str(test_home))
    get_settings.cache_clear()
    campaign_id = apply_campaign(clean_engine, load_campaign(REPO / "campaigns/cross_sell.yaml")).campaign_id
    write_customer_files(get_settings().inbox_dir, DAY, 300, seed=5)
    daily.ingest(DAY)
    daily.transform(DAY)
    trained = retrain(
        settings=get_settings(),
        examples=examples,
        arms=arms,
        config={"n_estimators": 40, "early_stopping_rounds": 10},
    )
    assert trained["promoted"]
    assert daily.decide(campaign_id, DAY)["model_version"] == trained["version"]
    with clean_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select * from ops.decisions where campaign_id = :c and decision_date = :d "
                "order by treatment_group desc, decision_id"
            ),
            {"c": campaign_id, "d": DAY},
        ).all()
    return {"treatment": rows[0], "control": rows[-1], "all": rows}  # type: ignore[dict-item]


def test_the_logged_model_score_is_rederived_and_the_contributions_add_up(clean_engine, decided) -> None:
    treated = [r for r in decided["all"] if r.treatment_group == "treatment"][:25]
    for row in treated:
        e = explain_decision(clean_engine, row.decision_id, top=3)
        m = e["model"]
        assert m["status"] == "ok" and m["version"] == row.model_version
        # The model version and the snapshot give back the logged score, to float32 precision.
        assert m["rederived"] and m["rederived_score"] == pytest.approx(row.model_score, abs=1e-5)
        c = m["contributions"]
        # Tree SHAP is exact: base rate + every contribution = the model's log-odds of this pair.
        total = c["base_log_odds"] + sum(t["contribution"] for t in c["top"]) + c["rest"]
        assert total == pytest.approx(c["log_odds"], abs=1e-6)
        assert 1 / (1 + math.exp(-c["log_odds"])) == pytest.approx(row.model_score, abs=1e-5)
        assert len(c["top"]) == 3
        assert abs(c["top"][0]["contribution"]) >= abs(c["top"][-1]["contribution"])
        # The runner-up is the model's best other arm; the chosen arm's rank follows the scores.
        scores = {a["arm_id"]: a["score"] for a in m["arm_scores"]}
        runner = m["runner_up"]
        others = {a: s for a, s in scores.items() if a != row.arm_id}
        assert runner["arm_id"] == max(others, key=others.get)
        assert runner["gap"] == pytest.approx(scores[row.arm_id] - runner["score"])
        assert m["rank_of_chosen"] == 1 + sum(s > scores[row.arm_id] for s in scores.values())
        assert e["scores"]["propensity"] == pytest.approx(row.propensity)
        # The policy's runner-up is stored with the decision (thompson_blend: by its draws).
        stored = e["policy_runner_up"]
        assert row.runner_up_arm_id is not None and row.runner_up_arm_id != row.arm_id
        assert (stored["arm_id"], stored["propensity"]) == (row.runner_up_arm_id, row.runner_up_propensity)
        assert 0 < stored["propensity"] and stored["gap"] == pytest.approx(
            row.propensity - row.runner_up_propensity
        )
        assert e["decision"]["selected_by"] == row.selected_by


def test_control_cli_unknown_id_and_an_unreachable_registry(
    clean_engine, decided, monkeypatch, capsys
) -> None:
    control = explain_decision(clean_engine, decided["control"].decision_id)
    assert control["decision"]["treatment_group"] == "control"
    assert control["why"].startswith("holdout control") and control["policy_runner_up"] is None
    row = decided["treatment"]
    code, out, _ = run_cli(monkeypatch, capsys, "explain", row.decision_id, "--json", "--top", "2")
    body = json.loads(out)
    assert code == 0 and body["decision"]["decision_id"] == row.decision_id
    assert len(body["model"]["contributions"]["top"]) == 2
    code, out, _ = run_cli(monkeypatch, capsys, "explain", row.decision_id)
    assert code == 0 and "matches the logged score" in out
    code, _, err = run_cli(monkeypatch, capsys, "explain", "nope")
    assert code == 4 and err.strip() == "error: decision 'nope' is unknown"
    # The registry down: the stored part is still shown, and the reason the rest is missing.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql+psycopg://nobody@127.0.0.1:1/mlflow")
    get_settings.cache_clear()
    down = explain_decision(clean_engine, row.decision_id)
    assert down["model"]["status"] == "unavailable" and "model version" in down["model"]["reason"]
    assert down["scores"]["model_score"] == pytest.approx(row.model_score)


def test_the_api_and_the_dashboard_show_the_explanation(
    decided,
    launch,  # noqa: F811
    engine,
    browser,  # noqa: F811
) -> None:
    from pipelines.apikeys import create_key

    # The service on this test's registry (settings_for set its tracking URI and environment).
    server = launch(
        MLFLOW_TRACKING_URI=os.environ["MLFLOW_TRACKING_URI"], CAMPAIGNOPT_ENV=os.environ["CAMPAIGNOPT_ENV"]
    )
    token = create_key(engine, f"explain-{os.getpid()}", "analyst")[1]
    row = decided["treatment"]
    body = get_json(server, token, f"/decisions/{row.decision_id}/explanation", top=2)
    assert body["model"]["rederived"] and len(body["model"]["contributions"]["top"]) == 2
    assert body == json.loads(json.dumps(explain_decision(engine, row.decision_id, top=2)))  # as the CLI
    missing = httpx.get(f"{server.url}/decisions/nope/explanation", headers=auth(token), timeout=30)
    assert missing.status_code == 404 and "decision 'nope' is unknown" in missing.text
    assert httpx.get(f"{server.url}/decisions/{row.decision_id}/explanation", timeout=30).status_code == 401

    sign_in(browser, server, token, "/dashboard")
    browser.find_element(By.NAME, "decision_id").send_keys(row.decision_id)
    browser.find_element(By.CSS_SELECTOR, "form.explain button").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "rederived"))
    assert "the same as logged" in browser.find_element(By.ID, "rederived").text
    features = [
        r.get_attribute("data-feature")
        for r in browser.find_elements(
            By.CSS_SELECTOR, "table.contributions[data-arm='chosen arm'] tbody tr[data-feature]"
        )
    ]
    assert features == [
        t["feature"] for t in explain_decision(engine, row.decision_id)["model"]["contributions"]["top"]
    ]
    browser.get(f"{server.url}/dashboard/decisions/nope")
    assert "decision 'nope' is unknown" in browser.find_element(By.TAG_NAME, "body").text

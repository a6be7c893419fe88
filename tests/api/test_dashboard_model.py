"""The Model page over real HTTP and in a real headless Chromium. Its own service (its own
registered model: a champion here must not change what the other modules' services decide), two
tiny models trained through the product's retraining (``pipelines.retrain.retrain``): version 1
promoted by the gate (no champion to beat), version 2 registered with auto-promotion off, so it
stays the challenger. Tests run in file order: the first sees the registry before any model."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pandas as pd
import pytest
from selenium.webdriver.common.by import By

from tests.api.conftest import free_port
from tests.api.dashboard_world import get_json
from tests.api.test_dashboard_browser import browser, console_errors, figures, loaded, sign_in, traces

__all__ = ["browser"]  # the module's one browser (its fixture)
TRAIN = {"n_estimators": 20, "early_stopping_rounds": 5, "validation_days": 7}  # small: ~1 s of XGBoost


@pytest.fixture(scope="module")
def env() -> str:
    return f"card{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def card_server(launch, env):
    return launch(CAMPAIGNOPT_ENV=env)


@pytest.fixture(scope="module")
def trained(card_server, env, database_url, test_home) -> dict:
    from ml.synthetic import make_arms, make_training_examples
    from pipelines.retrain import retrain
    from pipelines.settings import Settings

    settings = Settings(mlflow_tracking_uri=database_url, campaignopt_home=test_home, campaignopt_env=env)
    arms = make_arms()
    first, second = make_training_examples(4_000, seed=3), make_training_examples(4_000, seed=4)
    one = retrain(settings=settings, examples=first, arms=arms, config=TRAIN)
    two = retrain(settings=settings, examples=second, arms=arms, config=TRAIN | {"auto_promote": False})
    assert (one["version"], one["promoted"], two["version"], two["promoted"]) == ("1", True, "2", False)
    return {"runs": {"1": one, "2": two}, "examples": {"1": first, "2": second}}


def by_hand_split(examples: pd.DataFrame) -> tuple[int, int, str]:
    """Treatment rows with a label; the newest 7 decision days validate (TrainConfig's defaults)."""
    rows = examples[(examples["treatment_group"] != "control") & examples["converted"].notna()]
    days = sorted(pd.to_datetime(rows["decision_date"]).dt.normalize().unique())
    valid = pd.to_datetime(rows["decision_date"]).dt.normalize() >= days[-7]
    return int((~valid).sum()), int(valid.sum()), str(days[-7].date())


def test_without_a_champion_the_card_says_so(card_server, keys) -> None:
    body = get_json(card_server, keys["analyst"], "/model/card")
    assert (body["champion"], body["challenger"], body["gate_history"], body["versions"]) == (
        None,
        None,
        [],
        0,
    )
    assert body["champion_note"].startswith("no champion yet")


def test_the_card_reads_what_retraining_logged(card_server, keys, trained) -> None:
    body = get_json(card_server, keys["analyst"], "/model/card")
    champion, challenger = body["champion"], body["challenger"]
    assert (champion["version"], champion["aliases"], challenger["version"], challenger["aliases"]) == (
        "1", ["champion"], "2", ["challenger"],
    )  # fmt: skip
    assert champion["promoted_by"].startswith("retraining gate") and challenger["promoted_at"] is None
    for card in (champion, challenger):
        run = trained["runs"][card["version"]]
        train_rows, valid_rows, valid_from = by_hand_split(trained["examples"][card["version"]])
        assert (card["training"]["rows"], card["holdout"]["rows"]) == (train_rows, valid_rows)
        assert card["holdout"]["date_from"] == valid_from and card["training"]["examples"] == run["rows"]
        for metric in ("auc", "log_loss", "brier", "ece"):
            assert card["holdout"][metric] == pytest.approx(run["metrics"][metric], abs=1e-6)
        assert card["off_policy"]["dr_value"] == pytest.approx(run["metrics"]["ope_dr_value"], abs=1e-6)
        h = card["holdout"]
        assert h["auc_ci_low"] < h["auc"] < h["auc_ci_high"]  # the gate's DeLong interval
        # the logged tables: the ECE is their count-weighted gap, the bins and deciles hold every row
        bins = card["calibration"]
        ece = sum(abs(b["mean_predicted"] - b["observed_rate"]) * b["count"] for b in bins) / valid_rows
        assert (len(bins), sum(b["count"] for b in bins), ece) == (10, valid_rows, pytest.approx(h["ece"]))
        deciles = card["lift"]
        assert [d["decile"] for d in deciles] == list(range(1, 11)) and sum(
            d["count"] for d in deciles
        ) == valid_rows
        assert (
            deciles[0]["lift"] == pytest.approx(h["top_decile_lift"])
            and deciles[-1]["cumulative_gain"] == 1.0
        )
        shares = [f["share"] for f in card["importance"]]
        assert len(shares) == min(15, card["importance_features"]) and shares == sorted(shares, reverse=True)
        assert card["importance_features"] == card["training"]["features"]
    assert challenger["gate"]["champion_version"] == "1" and challenger["gate"]["log_loss_gain"] is not None
    assert [(g["version"], g["compared_with"], g["passed"]) for g in body["gate_history"]] == [
        ("2", "1", trained["runs"]["2"]["gate_passed"]),
        ("1", None, True),
    ]
    assert body["gate_history"][1]["reason"].startswith("no champion yet")
    assert body["gate_history"][0]["reason"] == trained["runs"]["2"]["gate"]


def test_the_model_page_shows_the_cards_and_draws_them(browser, card_server, keys, trained) -> None:
    sign_in(browser, card_server, keys["analyst"], "/dashboard/model")
    loaded(browser, "model")
    assert console_errors(browser) == []
    body = get_json(card_server, keys["analyst"], "/model/card")
    shown = figures(browser)
    for role in ("champion", "challenger"):
        card = body[role]
        assert shown[f"{role}-version"] == card["version"]
        assert float(shown[f"{role}-auc"]) == pytest.approx(card["holdout"]["auc"])
        assert float(shown[f"{role}-ece"]) == pytest.approx(card["holdout"]["ece"])
        assert int(shown[f"{role}-training-rows"]) == card["training"]["rows"]
    assert (traces(browser, "calibration-chart"), traces(browser, "lift-chart")) == (3, 2)  # + the diagonal
    assert traces(browser, "champion-importance-chart") == traces(browser, "challenger-importance-chart") == 1
    observed = browser.execute_script("return document.getElementById('calibration-chart').data[1].y;")
    assert observed == pytest.approx([b["observed_rate"] for b in body["champion"]["calibration"]])
    rows = browser.find_elements(By.CSS_SELECTOR, "#gate-history tbody tr")
    assert [r.get_attribute("data-version") for r in rows] == ["2", "1"]
    assert rows[1].get_attribute("data-verdict") == "passed"


def test_a_run_without_its_tables_shows_not_recorded(browser, card_server, keys, trained) -> None:
    """A run that never logged a table (an older model, or a lost artifact) still has its card."""
    from ml.registry import client_for
    from pipelines.retrain import tracking_uri
    from pipelines.settings import Settings

    client = client_for(tracking_uri(Settings()))
    folder = Path(urlparse(client.get_run(trained["runs"]["2"]["run_id"]).info.artifact_uri).path)
    (folder / "evaluation" / "calibration.csv").unlink()
    card = get_json(card_server, keys["analyst"], "/model/card")["challenger"]
    assert card["calibration"] is None and card["lift"] is not None
    sign_in(browser, card_server, keys["analyst"], "/dashboard/model")
    loaded(browser, "model-calibration-not-recorded")
    assert traces(browser, "calibration-chart") == 2  # the diagonal and the champion's
    assert "challenger v2: not recorded" in browser.find_element(By.ID, "calibration-chart").text
    assert console_errors(browser) == []


def test_a_registry_that_is_down_is_named_in_the_json_and_on_the_page(browser, launch, keys, env) -> None:
    registry = f"http://127.0.0.1:{free_port()}"
    down = launch(CAMPAIGNOPT_ENV=env, MLFLOW_TRACKING_URI=registry)
    answer = httpx.get(
        f"{down.url}/model/card", headers={"Authorization": f"Bearer {keys['analyst']}"}, timeout=30
    )
    assert answer.status_code == 503
    assert answer.json()["detail"] == f"model registry unreachable at {registry}: ConnectError"
    sign_in(browser, down, keys["analyst"], "/dashboard/model")
    browser.find_element(By.TAG_NAME, "body")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
    )
    error = browser.find_element(By.ID, "error").text
    assert f"503: model registry unreachable at {registry}" in error
    browser.get_log("browser")  # the 503 of the fetch is the expected console error

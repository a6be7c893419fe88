"""The hybrid in the daily list: the decide step scores with models:/NAME@champion when there is
one, and falls back to the bandit alone (with a note on every decision) when there is none or
the registry cannot be reached."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import daily
from pipelines.campaign_spec import load_campaign
from pipelines.campaign_store import apply_campaign
from pipelines.demo import write_customer_files
from pipelines.retrain import retrain
from pipelines.settings import get_settings

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 2)

pytestmark = pytest.mark.slow


def decisions(engine: sa.Engine, campaign_id: int) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "select model_version, model_score, blend_score, selected_by, note from ops.decisions "
                "where campaign_id = :c and decision_date = :d and treatment_group = 'treatment'"
            ),
            {"c": campaign_id, "d": DAY},
        ).all()


def test_decide_uses_the_champion_and_falls_back_without_one(
    clean_engine, settings_for, examples, arms, monkeypatch, test_home
) -> None:
    # settings_for gives this test its own MLflow environment; keep the session's database and home.
    monkeypatch.setenv("CAMPAIGNOPT_HOME", str(test_home))
    get_settings.cache_clear()
    campaign_id = apply_campaign(clean_engine, load_campaign(REPO / "campaigns/cross_sell.yaml")).campaign_id
    write_customer_files(get_settings().inbox_dir, DAY, 600, seed=5)
    daily.ingest(DAY)
    daily.transform(DAY)

    result = daily.decide(campaign_id, DAY)
    assert result["model_version"] is None and "no champion" in result["note"]
    rows = decisions(clean_engine, campaign_id)
    assert rows and all(r.model_version is None and r.note == result["note"] for r in rows)

    trained = retrain(
        settings=get_settings(),
        examples=examples,
        arms=arms,
        config={"n_estimators": 40, "early_stopping_rounds": 10},
    )
    assert trained["status"] == "done" and trained["promoted"]
    result = daily.decide(campaign_id, DAY)  # the draft is decided again, now with the model
    assert result["model_version"] == trained["version"] and result["note"] is None
    rows = decisions(clean_engine, campaign_id)
    assert all(r.model_version == trained["version"] for r in rows)
    assert all(0.0 < r.model_score < 1.0 and r.blend_score is not None for r in rows)

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql+psycopg://nobody@127.0.0.1:1/mlflow")
    get_settings.cache_clear()
    result = daily.decide(campaign_id, DAY)
    assert result["model_version"] is None and "registry unavailable" in result["note"]
    assert result["n_rows"] == len(decisions(clean_engine, campaign_id)) + result["n_control"]

"""A champion whose artifact is corrupt or deleted: the day's list is decided by the bandit alone,
every decision says why, and ops.alerts holds one warning for the day."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from ml.registry import client_for
from pipelines import daily
from pipelines.campaign_spec import load_campaign
from pipelines.campaign_store import apply_campaign, load_campaign_by_id
from pipelines.decide import decide_campaign
from pipelines.demo import write_customer_files
from pipelines.retrain import registry_target, retrain
from pipelines.scoring import MODEL_ALERT_KIND, load_model_for_decide
from pipelines.settings import get_settings

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 2)

pytestmark = pytest.mark.slow


def _decisions(engine: sa.Engine, campaign_id: int) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "select customer_id, arm_id, propensity, model_version, model_score, blend_score, note "
                "from ops.decisions where campaign_id = :c and decision_date = :d "
                "and treatment_group = 'treatment' order by customer_id"
            ),
            {"c": campaign_id, "d": DAY},
        ).all()


def _alerts(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("select campaign_id, kind, severity, message, details from ops.alerts "
                    "where alert_date = :d"),
            {"d": DAY},
        ).all()


def _champion_artifacts(settings) -> Path:
    target = registry_target(settings)
    client = client_for(target.tracking_uri)
    version = client.get_model_version_by_alias(target.model_name, "champion").version
    return Path(urlparse(client.get_model_version_download_uri(target.model_name, version)).path)


def test_corrupt_or_deleted_champion_falls_back_to_the_bandit_with_a_note_and_an_alert(
    clean_engine, settings_for, examples, arms, monkeypatch, test_home
) -> None:
    monkeypatch.setenv("CAMPAIGNOPT_HOME", str(test_home))  # the session's database and inbox
    get_settings.cache_clear()
    settings = get_settings()
    campaign_id = apply_campaign(clean_engine, load_campaign(REPO / "campaigns/cross_sell.yaml")).campaign_id
    campaign = load_campaign_by_id(clean_engine, campaign_id)
    write_customer_files(settings.inbox_dir, DAY, 400, seed=5)
    daily.ingest(DAY)
    daily.transform(DAY)

    # The list the bandit alone makes (decided again below: the seed is keyed by campaign and day).
    decide_campaign(clean_engine, campaign, DAY, model=None, note=None)
    bandit_alone = [(r.customer_id, r.arm_id, r.propensity) for r in _decisions(clean_engine, campaign_id)]
    assert bandit_alone

    trained = retrain(settings=settings, examples=examples, arms=arms,
                      config={"n_estimators": 40, "early_stopping_rounds": 10})
    assert trained["promoted"]
    model, note = load_model_for_decide(settings, day=DAY, engine=clean_engine)
    assert model is not None and note is None and _alerts(clean_engine) == []
    artifacts = _champion_artifacts(settings)

    (artifacts / "model.ubj").write_bytes(b"\x00 not an xgboost model \xff" * 10)  # corrupt
    for broken in ("corrupt", "deleted"):
        if broken == "deleted":
            shutil.rmtree(artifacts)
        model, note = load_model_for_decide(settings, day=DAY, engine=clean_engine)
        assert model is None and note.startswith("no model: champion unavailable (")
        assert f"models:/{trained['model_name']}/{trained['version']} cannot be loaded" in note
        result = decide_campaign(clean_engine, campaign, DAY, model=model, note=note)
        assert result.status == "draft"
        rows = _decisions(clean_engine, campaign_id)
        assert [(r.customer_id, r.arm_id, r.propensity) for r in rows] == bandit_alone, broken
        assert all(r.model_version is None and r.model_score is None and r.note == note for r in rows)

        (alert,) = _alerts(clean_engine)  # one per day, however many decide tasks hit it
        assert alert.kind == MODEL_ALERT_KIND and alert.severity == "warning" and alert.campaign_id is None
        assert "bandit alone" in alert.message and alert.details["cause"] == "artifact"

    # The daily decide as it is called today (no day/engine) falls back too; the list is made.
    outcome = daily.decide(campaign_id, DAY)
    assert outcome["model_version"] is None and "champion unavailable" in outcome["note"]
    # The day's monitoring replaces its own alerts, not this one.
    daily.monitor(DAY)
    assert [a.kind for a in _alerts(clean_engine)].count(MODEL_ALERT_KIND) == 1


def test_unreachable_registry_raises_the_same_alert(clean_engine, settings_for, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql+psycopg://nobody@127.0.0.1:1/mlflow")
    get_settings.cache_clear()
    model, note = load_model_for_decide(day=DAY, engine=clean_engine)
    assert model is None and "registry unavailable" in note
    (alert,) = _alerts(clean_engine)
    assert alert.kind == MODEL_ALERT_KIND and alert.details["cause"] == "registry"
    # Without a day and an engine (the API, old callers): the fallback only, no alert.
    model, note = load_model_for_decide()
    assert model is None and len(_alerts(clean_engine)) == 1

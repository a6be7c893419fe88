"""`campaignopt model ...` through the real entry point."""

from __future__ import annotations

import json

import pytest

from pipelines.retrain import retrain
from tests.ml.conftest import run_cli

pytestmark = pytest.mark.slow


def test_model_list_json_promote_and_rollback(settings_for, examples, arms, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "model", "list", "--json")
    assert code == 0 and json.loads(out)["versions"] == []

    fast = {"n_estimators": 60, "early_stopping_rounds": 10}
    retrain(settings=settings_for, examples=examples, arms=arms, config=fast)
    retrain(settings=settings_for, examples=examples, arms=arms, config={**fast, "auto_promote": False})

    code, out, _ = run_cli(monkeypatch, capsys, "model", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and listed["model_name"] == f"campaignopt-response-{settings_for.campaignopt_env}"
    assert [(v["version"], v["aliases"]) for v in listed["versions"]] == [
        ("2", ["challenger"]),
        ("1", ["champion"]),
    ]
    assert 0.5 < listed["versions"][1]["metrics"]["auc"] <= 1.0

    code, out, _ = run_cli(monkeypatch, capsys, "model", "list")
    assert code == 0 and "champion" in out and "challenger" in out

    # Version 2 is the same model as version 1: the gate refused it (not significantly better).
    assert listed["versions"][0]["gate"]["passed"] is False
    code, out, err = run_cli(monkeypatch, capsys, "model", "promote", "2")
    assert code == 2 and err.strip().count("\n") == 0
    assert "version 2" in err and "not passed by the gate" in err
    assert "log-loss gain" in err and "--force" in err
    code, _, err = run_cli(monkeypatch, capsys, "model", "promote", "2", "--force")
    assert code == 2 and "--force needs --reason" in err

    monkeypatch.setenv("CAMPAIGNOPT_USER", "ana.ml")
    code, out, _ = run_cli(monkeypatch, capsys, "model", "promote", "2", "--force", "--reason", "ticket ML-7")
    assert code == 0 and "version 2 is now champion (was 1)" in out
    code, out, _ = run_cli(
        monkeypatch, capsys, "model", "rollback", "--by", "ben.ops", "--reason", "lists looked off"
    )
    assert code == 0 and "from version 2 to version 1" in out

    code, out, _ = run_cli(monkeypatch, capsys, "model", "list", "--json")
    v2, v1 = json.loads(out)["versions"]
    assert v2["audit"]["promoted_by"] == "ana.ml" and v2["audit"]["promote_reason"] == "ticket ML-7"
    assert v2["audit"]["promote_forced"] == "true"
    assert v2["audit"]["rolled_back_by"] == "ben.ops" and v2["audit"]["rollback_reason"] == "lists looked off"
    assert v2["audit"]["promoted_at"] <= v2["audit"]["rolled_back_at"]
    assert v1["audit"]["restored_by"] == "ben.ops" and v1["aliases"] == ["champion"]
    assert v1["audit"]["promoted_by"].startswith("retraining gate (run ")  # the automatic promotion
    assert v1["description"].startswith("Gate PASSED: no champion yet; AUC")


def test_unknown_version_is_one_line_not_found(settings_for, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "model", "promote", "99")
    assert code == 4 and err.strip().count("\n") == 0 and err.startswith("error: ")


def test_unreachable_registry_is_one_line(settings_for, monkeypatch, capsys):
    from pipelines.settings import get_settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql+psycopg://postgres@127.0.0.1:1/mlflow")
    get_settings.cache_clear()
    code, _, err = run_cli(monkeypatch, capsys, "model", "list")
    assert code == 3 and err.strip().count("\n") == 0 and "127.0.0.1" in err


def test_help_documents_the_mlflow_ui(settings_for, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "model", "--help")
    assert code == 0 and "mlflow ui --backend-store-uri" in out
    code, out, _ = run_cli(monkeypatch, capsys, "model", "ui")
    assert code == 0 and settings_for.mlflow_tracking_uri in out

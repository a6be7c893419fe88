"""`campaignopt demo` end to end on a small base: a history day through the daily job's
functions, then the real-time service on the same database — decisions and feedback land where
the daily marts read them, the dashboard's pages are saved as screenshots, the API keys are revoked
and the server is stopped.

The full demo's figures (cross-sell's lift whose CI excludes zero, the model's AUC) take ~7-10
minutes to reach; `CAMPAIGNOPT_FULL_DEMO=1` runs that configuration and asserts them."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from pipelines.demo import DemoConfig, run_demo
from pipelines.demo_realtime import FEEDBACK_PLAN
from pipelines.demo_report import print_demo_report
from pipelines.settings import get_settings

pytestmark = pytest.mark.slow


def test_the_demo_makes_real_time_decisions_with_feedback_and_stops_the_service(
    clean_engine: sa.Engine, inbox: Path, database_url: str, monkeypatch, capsys
) -> None:
    # The session database as the (empty) registry: no champion, the registry probe reachable.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", database_url)
    get_settings.cache_clear()
    config = DemoConfig(
        start=date(2026, 11, 2), history_days=1, days=0, customers=400, retrain=False, realtime_customers=4
    )
    summary = run_demo(config, progress=lambda line: None)
    print_demo_report(summary, config)

    realtime = summary.realtime
    assert realtime is not None and realtime.campaign == "cross-sell"
    ids = [row["decision_id"] for row in realtime.rows]
    assert len(ids) == 4 and all(ids), realtime.rows
    with clean_engine.connect() as conn:
        logged = conn.execute(
            sa.text(
                """select d.decision_id, d.customer_id, d.propensity, c.name from ops.decisions d
                   join ops.campaigns c using (campaign_id)
                   where d.source = 'realtime' order by d.decision_id"""
            )
        ).all()
        events = conn.execute(
            sa.text("select decision_id, event_type from raw.interactions where source = 'realtime'")
        ).all()
        history = conn.execute(
            sa.text(
                """select decision_date, count(*), bool_and(propensity > 0 and propensity <= 1)
                   from ops.decisions where source = 'batch' group by 1 order by 1"""
            )
        ).all()
        live_demo_keys = conn.execute(
            sa.text("select count(*) from ops.api_keys where name like 'demo-%' and revoked_at is null")
        ).scalar_one()
    assert sorted(ids) == [r.decision_id for r in logged]
    assert {r.name for r in logged} == {"cross-sell"}
    by_id = {r.decision_id: r for r in logged}
    for row in realtime.rows:
        assert (by_id[row["decision_id"]].customer_id, by_id[row["decision_id"]].propensity) == (
            row["customer"],
            pytest.approx(row["propensity"]),
        )
    plan = [FEEDBACK_PLAN[i % len(FEEDBACK_PLAN)] for i in range(len(ids))]
    expected = sorted((ids[i], kind) for i, kinds in enumerate(plan) for kind in kinds)
    assert sorted(tuple(e) for e in events) == expected and len(expected) == 3  # open; open, conversion
    feedback = [row["feedback"] for row in realtime.rows]
    assert feedback == ["-", "open stored", "open stored, conversion stored", "-"]
    assert realtime.readiness["status_code"] == 200 and realtime.readiness["status"] == "ok"
    assert [(str(d), ok) for d, _, ok in history] == [("2026-11-02", True)]
    assert live_demo_keys == 0  # the demo's keys (service, analyst) are revoked
    with pytest.raises(httpx.ConnectError):  # the server is stopped
        httpx.get(realtime.url + "/healthz", timeout=2)
    out = capsys.readouterr().out
    assert "real-time decisions of cross-sell" in out and "GET /readyz: 200 ok" in out
    assert "serve    # leave it running" in out and "http://127.0.0.1:8000/dashboard" in out
    # chromium is installed here and in CI: the index and each campaign's pages it links to
    shots = {s.path.split("?")[0]: s for s in realtime.screenshots}
    campaign_pages = [p for p in shots if p.startswith("/dashboard/campaigns/")]
    assert "/dashboard" in shots and len(campaign_pages) >= 4, sorted(shots)  # 2 campaigns x 2 pages
    for shot in shots.values():
        assert shot.png.stat().st_size > 10_000 and shot.png.read_bytes()[:4] == b"\x89PNG"
        assert shot.drawn in (None, "true") and shot.console_errors == [], shot
    assert f"dashboard screenshots: {len(shots)} pages in" in out


@pytest.mark.skipif(not os.environ.get("CAMPAIGNOPT_FULL_DEMO"), reason="~7 min: CAMPAIGNOPT_FULL_DEMO=1")
def test_the_full_demo_beats_its_holdout_and_promotes_a_model_better_than_chance(
    clean_engine: sa.Engine, inbox: Path, database_url: str, monkeypatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", database_url)
    get_settings.cache_clear()
    config = DemoConfig(realtime_customers=2, screenshots=False)
    summary = run_demo(config, progress=lambda line: None)
    print_demo_report(summary, config)
    lifts = {r["campaign"]: r["lift"] for r in summary.recent_lift}
    assert lifts["cross-sell"]["ci_low"] > 0, lifts  # measured +2.55 pts: see BENCHMARKS.md, Demo
    compared = summary.model_vs_bandit
    assert compared is not None and compared["model_auc"].low > 0.6, compared  # measured 0.666
    # The model beats the bandit's own segment x arm rates on the same validation sends (DeLong):
    # measured +0.067 [+0.045, +0.089]. The demo's world (pipelines.demo.DEMO_RESPONSE) puts part of
    # the customers' differences in loyalty, engagement and web visits, which no segment holds.
    assert compared["difference"].low > 0, compared

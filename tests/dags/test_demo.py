"""`campaignopt demo` end to end on a small base: a day through the daily DAG, then the real-time
service on the same database — decisions and feedback land where the daily marts read them, the
API key is revoked and the server is stopped."""

from __future__ import annotations

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
        start=date(2026, 11, 2), days=1, customers=400, retrain_after=None, realtime_customers=4
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
    assert live_demo_keys == 0  # the demo's key is revoked
    with pytest.raises(httpx.ConnectError):  # the server is stopped
        httpx.get(realtime.url + "/healthz", timeout=2)
    out = capsys.readouterr().out
    assert "real-time decisions of cross-sell" in out and "GET /readyz: 200 ok" in out

"""Feedback anomalies (pipelines/anomalies.py): the detector on Poisson noise, and a source-day held
out of learning through the real daily transform (detection, then dbt), the real-time snapshot and
the CLI, on a hand-counted world.

The world: campaign `holds` (conversion reward, 1-day window), arms credit_card/loan x email/sms.
Every day D0..D15: 200 email and 100 sms batch decisions; opens and conversions land from files on
the decision's day. On D15 the email file carries nothing (a platform outage). Checked as of D15,
the marts count decisions of D0..D14 (stg_ops__decisions: before as_of); a decision of day d
covers days d and d + 1, so the email decisions of D14 cover the held D15 and stay pending:
email matures 14 x 200 = 2,800 of 3,000 sends (210 of D14 pending with the 10 real-time ones),
sms all 1,500 of 15 x 100.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines import daily
from pipelines.anomalies import deviation, parse_source
from pipelines.errors import UserError
from pipelines.realtime.snapshot import Snapshot
from tests.pipelines.seed_rows import add_campaign, insert_decisions, truncate_all

pytestmark = pytest.mark.slow

D0 = date(2026, 6, 1)
D15 = D0 + timedelta(days=15)
D14 = D15 - timedelta(days=1)
CAMPAIGN = {
    "name": "holds",
    "start_date": D0.isoformat(),
    "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email", "sms"]},
    "reward": {"kind": "conversion", "conversion_value": 100},
    "attribution_window_days": 1,
    "holdout_share": 0.1,
}
SENDS = {"email": 200, "sms": 100}
CLI = str(Path(sys.executable).with_name("campaignopt"))
REALTIME_EMAIL = 10  # real-time email decisions of D14, each converted (real-time feedback)


# --- the detector ---------------------------------------------------------------------------


def _poisson_day(rng, rate: float, active: int) -> float:
    return rng.poisson(rate * active) / active


def test_stable_poisson_feedback_almost_never_alarms() -> None:
    """2,000 source-days with a stable rate (60 expected events of 400 active sends): at z >= 4
    the Gaussian tail is 6e-5 per day; the robust spread adds a little. At most 2 alarms."""
    rng = np.random.default_rng(7)
    alarms = 0
    for _ in range(2000):
        history = np.array([_poisson_day(rng, 0.15, 400) for _ in range(14)])
        found = deviation("open", int(rng.poisson(60)), 400, history, z_threshold=4.0, min_history=7)
        alarms += found is not None
    assert alarms <= 2


def test_a_collapse_and_a_jump_are_found_and_named() -> None:
    rng = np.random.default_rng(11)
    history = np.array([_poisson_day(rng, 0.15, 400) for _ in range(14)])
    collapse = deviation("open", 3, 400, history, z_threshold=4.0, min_history=7)
    assert collapse is not None and collapse.direction == "collapse" and collapse.z < -4
    assert collapse.history_days == 14 and 50 < collapse.expected < 70
    jump = deviation("click", 180, 400, history, z_threshold=4.0, min_history=7)
    assert jump is not None and jump.direction == "jump" and jump.z > 4
    assert "click 180 against" in jump.describe()
    # one earlier outage in the history does not hide the next one (median and MAD, not mean)
    with_outage = np.append(history, 0.0)
    assert deviation("open", 3, 400, with_outage, z_threshold=4.0, min_history=7) is not None


def test_too_little_history_or_too_little_volume_is_not_judged() -> None:
    history = np.full(6, 0.15)
    assert deviation("open", 0, 400, history, z_threshold=4.0, min_history=7) is None  # 6 < 7 days
    small = np.full(14, 0.01)  # 4 expected of 400 sends: a day without any is not a collapse
    assert deviation("conversion", 0, 400, small, z_threshold=4.0, min_history=7) is None
    assert deviation("open", 10, 0, np.full(14, 0.15), z_threshold=4.0, min_history=7) is None  # no sends


def test_a_source_names_a_channel_and_a_landing_path() -> None:
    assert parse_source("email:file") == ("email", "file")
    assert parse_source("sms:realtime") == ("sms", "realtime")
    for bad in ("email", "email:ftp", ":file"):
        with pytest.raises(UserError, match="CHANNEL:LANDING"):
            parse_source(bad)


# --- held out of learning, end to end ------------------------------------------------------


def _events(engine: sa.Engine, rows: list[dict]) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into raw.interactions (event_id, decision_id, customer_id, campaign_id, arm_id,
                       event_type, value, occurred_at, logical_date, source_file, source)
                   select :eid, d.decision_id, d.customer_id, d.campaign_id, d.arm_id, :t, 0, :at,
                          cast(:at at time zone 'UTC' as date), :file, :src
                   from ops.decisions d where d.decision_id = :did"""
            ),
            rows,
        )


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> dict:
    truncate_all(engine)
    campaign = add_campaign(engine, CAMPAIGN)
    with engine.connect() as conn:
        arms = conn.execute(
            sa.text(
                "select arm_id, params ->> 'channel' from ops.arms where campaign_id = :c order by arm_id"
            ),
            {"c": campaign.campaign_id},
        ).all()
    by_channel = {ch: [a for a, c in arms if c == ch] for ch in SENDS}
    rng = np.random.default_rng(3)
    decisions, events = [], []
    for k in range(16):
        day = D0 + timedelta(days=k)
        for channel, n in SENDS.items():
            for i in range(n):
                did = f"{channel}-{k}-{i}"
                decisions.append(
                    {
                        "decision_id": did,
                        "campaign_id": campaign.campaign_id,
                        "customer_id": f"{channel}{i:03d}",
                        "arm_id": by_channel[channel][i % 2],
                        "decision_date": day,
                    }
                )
                if day == D15 and channel == "email":
                    continue  # the outage: the email file of D15 carries nothing
                at = datetime.combine(day, time(15), tzinfo=UTC)
                if rng.random() < 0.3:
                    events.append({"eid": f"o-{did}", "did": did, "t": "open", "at": at})
                if rng.random() < 0.08:
                    events.append({"eid": f"v-{did}", "did": did, "t": "conversion", "at": at})
    realtime = [
        {
            "decision_id": f"rt-{i}",
            "campaign_id": campaign.campaign_id,
            "customer_id": f"r{i:03d}",
            "arm_id": by_channel["email"][0],
            "decision_date": D14,
            "source": "realtime",
        }
        for i in range(REALTIME_EMAIL)
    ]
    insert_decisions(engine, decisions + realtime)
    with engine.begin() as conn:  # the service logs the segment it decided for
        conn.execute(sa.text("update ops.decisions set segment = 'middle_mid' where decision_id like 'rt-%'"))
    file_rows = [e | {"file": "seed", "src": "file"} for e in events]
    at = datetime.combine(D14, time(9), tzinfo=UTC)
    rt_rows = [
        {
            "eid": f"rt-v-{i}",
            "did": f"rt-{i}",
            "t": "conversion",
            "at": at,
            "file": "realtime:feedback",
            "src": "realtime",
        }
        for i in range(REALTIME_EMAIL)
    ]
    _events(engine, file_rows + rt_rows)
    return {"campaign": campaign, "arms": by_channel}


def _maturity(engine: sa.Engine) -> dict[str, tuple[int, int]]:
    """Per channel, (matured, pending) sends in the arm_stats mart."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """select a.params ->> 'channel', sum(s.matured), sum(s.pending)
                   from analytics.arm_stats s join ops.arms a using (arm_id) group by 1"""
            )
        ).all()
    return {ch: (int(m), int(p)) for ch, m, p in rows}


def _holds(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "select channel, landing, logical_date, released_by from ops.feedback_holds order by 1, 2"
            )
        ).all()


def _anomaly_alerts(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select alert_date, kind, severity, message, resolved_by from ops.alerts "
                "where kind like 'feedback_anomaly:%' order by kind"
            )
        ).mappings()
        return [dict(r) for r in rows]


def _email_pulls(engine: sa.Engine, world: dict, now: datetime) -> tuple[float, float]:
    """The real-time snapshot's pulls of the email and the sms arms (the mart as of D14 plus the
    real-time decisions after it, which are the 10 of D14)."""
    snapshot = Snapshot.load(engine, now=now, marts_as_of=D14)
    pulls, _ = snapshot.stats(world["campaign"].campaign_id)
    arm_ids = world["campaign"].arm_ids
    email = [arm_ids.index(a) for a in world["arms"]["email"]]
    sms = [arm_ids.index(a) for a in world["arms"]["sms"]]
    return float(pulls[:, email].sum()), float(pulls[:, sms].sum())


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "anomalies", *args], capture_output=True, text=True, timeout=120)


def test_an_outage_is_held_alerted_and_kept_out_of_learning_until_released(engine, world) -> None:
    now = datetime.combine(D15 + timedelta(days=2), time(12), tzinfo=UTC)
    result = daily.transform(D15)
    assert result["success"], result["failures"]
    (reason,) = result["feedback_holds"]
    assert reason.startswith(f"email events landed from file on {D15}: ") and "open 0 against" in reason
    assert _holds(engine) == [("email", "file", D15, None)]  # sms, and email's real-time path: normal
    (alert,) = _anomaly_alerts(engine)
    assert (alert["alert_date"], alert["kind"], alert["severity"]) == (
        D15,
        "feedback_anomaly:email:file",
        "critical",
    )
    assert f"campaignopt anomalies release --source email:file --date {D15}" in alert["message"]
    # email decisions of D14 cover D15: pending, with the real-time ones; sms learns as usual
    assert _maturity(engine) == {"email": (2800, 200 + REALTIME_EMAIL), "sms": (1500, 0)}
    held_email, sms = _email_pulls(engine, world, now)

    # a re-run of the day changes nothing
    again = daily.transform(D15)
    assert again["feedback_holds"] == result["feedback_holds"]
    assert _holds(engine) == [("email", "file", D15, None)] and len(_anomaly_alerts(engine)) == 1

    listed = _cli("list", "--open", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(h["channel"], h["landing"], h["logical_date"]) for h in json.loads(listed.stdout)] == [
        ("email", "file", D15.isoformat())
    ]
    done = _cli("release", "--source", "email:file", "--date", str(D15), "--by", "ops@bank")
    assert done.returncode == 0, done.stderr
    assert "released by ops@bank" in done.stdout
    assert _holds(engine) == [("email", "file", D15, "ops@bank")]
    assert _anomaly_alerts(engine)[0]["resolved_by"] == "ops@bank"
    # the real-time snapshot reloads on the release and folds the 10 real-time email decisions
    released_email, released_sms = _email_pulls(engine, world, now)
    assert (released_email - held_email, released_sms - sms) == (REALTIME_EMAIL, 0)

    twice = _cli("release", "--source", "email:file", "--date", str(D15), "--by", "ops@bank")
    assert twice.returncode == 2 and "already released by ops@bank" in twice.stderr
    unknown = _cli("release", "--source", "sms:file", "--date", str(D15), "--by", "ops@bank")
    assert unknown.returncode == 4 and f"sms:file on {D15}: no feedback hold" in unknown.stderr

    # the next build learns from the released day; a re-run does not hold it again
    after = daily.transform(D15)
    assert _maturity(engine) == {"email": (3000 + REALTIME_EMAIL, 0), "sms": (1500, 0)}
    assert _holds(engine) == [("email", "file", D15, "ops@bank")]
    assert _anomaly_alerts(engine)[0]["resolved_by"] == "ops@bank"
    assert after["success"] and after["feedback_holds"] == []

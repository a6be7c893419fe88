"""The incremental marts equal a full refresh of the same data, row for row, day after day.

Two databases get the same seeded world, one day at a time (2026-03-01 .. 03-10): the decisions
of each day, and events that land on their day, a few days late (inside their window or not) or
early the next day. After each day's events land, the first database builds incrementally and the
second with --full-refresh; every incremental model must then hold the same rows in both. On the
way: a feedback hold on email (source-day 03-03, held on 03-04, released on 03-06), a re-run of a
day after more of its events landed (03-05), a campaign whose definition changes (03-07: eng's
reward weights) and a re-run of an earlier day (03-08 after 03-09), then the day after it again.
Ten days hold every case: each build costs a dbt invocation per database (the suite's budget).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.campaign_spec import CampaignSpec
from pipelines.campaign_store import apply_campaign
from pipelines.settings import Settings
from pipelines.transform import run_dbt
from tests.conftest import _create_local_database, reset_tables

pytestmark = pytest.mark.slow

FIRST_DAY = date(2026, 3, 1)
CONV = {
    "name": "conv",
    "start_date": "2026-03-01",
    "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email", "sms"]},
    "channel_costs": {"email": 0.5, "sms": 2.0},
    "reward": {"kind": "conversion", "conversion_value": 100},
    "attribution_window_days": 4,
    "holdout_share": 0.2,
}
ENG = {
    "name": "eng",
    "start_date": "2026-03-01",
    "parameters": {"offer_type": ["investment_product", "savings_account"], "channel": ["email"]},
    "reward": {
        "kind": "weighted_engagement",
        "weights": {"open": 0.25, "click": 0.5},
        "conversion_value": 60,
    },
    "attribution_window_days": 2,
    "default_reward": 0.1,
}
FAST = {
    "name": "fast",
    "start_date": "2026-03-01",
    "parameters": {"offer_type": ["loan"], "channel": ["app_push", "sms"]},
    "reward": {"kind": "conversion", "conversion_value": 10},
    "attribution_window": "6h",
}
# Every incremental model and the marts summed from them; each is compared whole.
MODELS = {
    "int_decisions_attributed": "decision_id",
    "int_decisions_segmented": "decision_id",
    "int_arm_segment_daily": "campaign_id, segment, arm_id, decision_date",
    "campaign_daily_kpis": "campaign_id, kpi_date",
    "training_examples": "decision_id",
    "arm_stats": "campaign_id, arm_id",
    "segment_arm_stats": "campaign_id, segment, arm_id",
}
# Which build last wrote a row differs by construction: bookkeeping, not content.
BOOKKEEPING = {"built_as_of"}
CUSTOMERS = [f"c{i}" for i in range(40)]
DECISIONS_PER_DAY = 24


class World:
    """The seeded world, applied the same way to every database it is given."""

    def __init__(self, engines: list[sa.Engine]) -> None:
        self.engines = engines
        self.rng = np.random.default_rng(11)
        self.pending_events: list[dict] = []  # events generated, landing on a later day
        self.n_events = 0
        for eng in engines:
            reset_tables(eng)
            for spec in (CONV, ENG, FAST):
                apply_campaign(eng, CampaignSpec.model_validate(spec))
        with engines[0].connect() as conn:
            self.arms = [tuple(r) for r in conn.execute(sa.text(
                "select a.arm_id, a.campaign_id, c.name from ops.arms a"
                " join ops.campaigns c using (campaign_id) order by a.arm_id"
            ))]  # fmt: skip
        snapshots = []
        for i, cust in enumerate(CUSTOMERS):
            snapshots.append({"d": FIRST_DAY, "c": cust, "age": 20 + i, "inc": 20000 + 5000 * i})
            if i % 5 == 0:  # a later snapshot moves the customer to another segment
                snapshots.append({"d": FIRST_DAY + timedelta(days=6), "c": cust, "age": 70, "inc": 200000})
        self._execute(
            """insert into raw.customers (snapshot_date, customer_id, age, gender, income,
                   loyalty_points, tenure_years, products_held, digital_engagement, website_visits,
                   past_purchases, source_file)
               values (:d, :c, :age, 'F', :inc, 10, 2.5, 1, 0.5, 3, 1, 'seed')""",
            snapshots,
        )

    def _execute(self, sql: str, rows: list[dict] | dict | None = None) -> None:
        for eng in self.engines:
            with eng.begin() as conn:
                if rows is None or rows:
                    conn.execute(sa.text(sql), rows)

    def decide(self, day: date) -> None:
        """The decisions of ``day`` (made after its build) and their future events."""
        rows = []
        customers = self.rng.permutation(CUSTOMERS)  # one batch decision per customer and day
        for n in range(DECISIONS_PER_DAY):
            arm_id, campaign_id, name = self.arms[int(self.rng.integers(len(self.arms)))]
            decided_at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                minutes=int(self.rng.integers(6 * 60, 23 * 60 + 50))
            )
            control = self.rng.random() < 0.25
            decision_id = f"{day:%m%d}-{n}"
            rows.append({
                "id": decision_id, "cid": campaign_id, "cust": str(customers[n]),
                "arm": arm_id, "d": day, "at": decided_at, "p": 1.0 if control else 0.5,
                "x": bool(self.rng.random() < 0.3), "g": "control" if control else "treatment",
                "seg": "senior_high" if n % 11 == 0 else None,
            })  # fmt: skip
            self._plan_events(rows[-1], name)
        self._execute(
            """insert into ops.decisions (decision_id, campaign_id, customer_id, arm_id, decision_date,
                   decided_at, segment, policy, policy_version, propensity, selected_by, explored,
                   treatment_group, source)
               values (:id, :cid, :cust, :arm, :d, :at, :seg, 'thompson', 'test', :p, 'bandit', :x, :g,
                   'batch')""",
            rows,
        )

    def _plan_events(self, decision: dict, campaign: str) -> None:
        # minutes after the decision: within hours (all windows), within days (day windows),
        # or after every window
        for kind in ("open", "click", "conversion"):
            if self.rng.random() > {"open": 0.5, "click": 0.3, "conversion": 0.25}[kind]:
                continue
            spread = self.rng.choice([60, 60 * 24 * 3, 60 * 24 * 8], p=[0.4, 0.45, 0.15])
            occurred_at = decision["at"] + timedelta(minutes=int(self.rng.integers(1, spread)))
            event_day = occurred_at.date()
            # most land on their UTC day; some 1-3 days late; D's inbox also holds D + 1's first hour
            lag = int(self.rng.choice([0, 0, 0, 1, 3]))
            if lag == 0 and occurred_at.hour == 0:
                lag = -1 if self.rng.random() < 0.5 else 0
            self.n_events += 1
            self.pending_events.append({
                "eid": f"ev{self.n_events}", "did": decision["id"], "cust": decision["cust"],
                "cid": decision["cid"], "arm": decision["arm"], "t": kind,
                "v": float(self.rng.choice([0, 35.5])) if kind == "conversion" else 0,
                "at": occurred_at, "ld": event_day + timedelta(days=lag),
            })  # fmt: skip

    def land(self, day: date, *, share: float = 1.0) -> None:
        """Land the events whose logical date is ``day`` (``share`` of them: the rest land later
        for the same logical date, as a second file of the day)."""
        due = [e for e in self.pending_events if e["ld"] == day]
        now = due[: math.ceil(len(due) * share)]
        self.pending_events = [e for e in self.pending_events if e not in now]
        self._execute(
            """insert into raw.interactions (event_id, decision_id, customer_id, campaign_id, arm_id,
                   event_type, value, occurred_at, logical_date, source_file)
               values (:eid, :did, :cust, :cid, :arm, :t, :v, :at, :ld, 'seed')""",
            now,
        )


def _create_twin_database() -> Iterator[tuple[str, sa.Engine]]:
    from pipelines import migrate

    created = _create_local_database(prefix="campaignopt_full_refresh")
    if created is None:
        pytest.skip("no local PostgreSQL server for the full-refresh twin database")
    url, admin = created
    eng = sa.create_engine(url, pool_size=2, max_overflow=0)
    migrate.upgrade(eng)
    yield url, eng
    eng.dispose()
    name = url.rsplit("/", 1)[1]
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


@pytest.fixture(scope="module")
def twin() -> Iterator[tuple[str, sa.Engine]]:
    yield from _create_twin_database()


def _rows(engine: sa.Engine, model: str, order: str) -> list[tuple]:
    with engine.connect() as conn:
        result = conn.execute(sa.text(f"select * from analytics.{model} order by {order}"))
        keep = [i for i, c in enumerate(result.keys()) if c not in BOOKKEEPING]
        return [tuple(_comparable(r[i]) for i in keep) for r in result]


def _comparable(value: object) -> object:
    # float sums are added in another order: equal to 12 significant digits
    return float(f"{value:.12g}") if isinstance(value, float) else value


def _assert_same_marts(engine: sa.Engine, twin_engine: sa.Engine, day: date, step: str) -> None:
    for model, order in MODELS.items():
        incremental, full = _rows(engine, model, order), _rows(twin_engine, model, order)
        assert incremental == full, f"{model} differs from a full refresh after {step} ({day})"


def test_incremental_builds_equal_full_refreshes(engine: sa.Engine, twin: tuple[str, sa.Engine]) -> None:
    twin_url, twin_engine = twin
    twin_settings = Settings(database_url=twin_url)
    world = World([engine, twin_engine])
    models = " ".join(f"+{m},resource_type:model" for m in MODELS)  # data tests: elsewhere

    def build(day: date, step: str) -> None:
        run_dbt(day, select=models)
        run_dbt(day, select=models, settings=twin_settings, full_refresh=True)
        _assert_same_marts(engine, twin_engine, day, step)

    def hold(day: date, held_on: date) -> None:
        world._execute(
            """insert into ops.feedback_holds (channel, landing, logical_date, reason, held_at)
               values ('email', 'file', :d, 'volume', :at)""",
            {"d": day, "at": datetime(held_on.year, held_on.month, held_on.day, tzinfo=UTC)},
        )

    counts: dict[str, int] = {}
    for offset in range(10):
        day = FIRST_DAY + timedelta(days=offset)
        if day == date(2026, 3, 5):
            world.land(day, share=0.5)
            build(day, "the first half of the day's events")
        world.land(day)
        if day == date(2026, 3, 4):
            hold(date(2026, 3, 3), day)
        if day == date(2026, 3, 6):
            world._execute("update ops.feedback_holds set released_at = now(), released_by = 'test'")
        if day == date(2026, 3, 7):
            changed = CampaignSpec.model_validate(
                {**ENG, "reward": {"kind": "weighted_engagement", "weights": {"open": 0.5, "click": 0.25}}}
            )
            for eng in world.engines:
                apply_campaign(eng, changed)
        build(day, "its build")
        if day == date(2026, 3, 9):
            build(date(2026, 3, 8), "a re-run of the day before")
            build(day, "the day again after the re-run of the day before")
        with engine.connect() as conn:
            counts[day.isoformat()] = conn.execute(sa.text(
                "select count(*) filter (where held) from analytics.int_decisions_attributed"
            )).scalar_one()  # fmt: skip
        world.decide(day)

    # The world exercised what it claims: held decisions while the hold was open, none after.
    assert counts["2026-03-04"] > 0 and counts["2026-03-05"] > 0
    assert counts["2026-03-06"] == 0
    with engine.connect() as conn:
        late, matured = conn.execute(sa.text(
            """select count(*) filter (where i.logical_date > cast(i.occurred_at at time zone 'UTC' as date)),
                      (select count(*) from analytics.training_examples)
               from raw.interactions i"""
        )).one()  # fmt: skip
    assert late > 20 and matured > 150

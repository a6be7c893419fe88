"""The live attribution of pipelines.performance against the marts: on the monitor's world
(tests/pipelines/test_monitor.py, dbt built as of 2026-05-20), the figures of the window up to the
build, judged on the day after it, are those the `campaign_daily_kpis` mart pooled; the regret is
monitor's own (mon-wide: (1/4 - 1/6) x 10 conversions, derived there)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from pipelines.campaign_store import load_campaign_by_id
from pipelines.performance import Window, campaign_performance
from tests.pipelines.test_monitor import AS_OF, world  # noqa: F401 - the fixture, built here again

pytestmark = pytest.mark.slow

AFTER_BUILD = datetime.combine(AS_OF + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


@pytest.mark.parametrize("name", ["mon", "mon-new", "mon-wide"])
def test_the_live_figures_are_the_marts_figures(engine: sa.Engine, world: dict[str, int], name: str) -> None:  # noqa: F811
    campaign = load_campaign_by_id(engine, world[name])
    out = campaign_performance(
        engine, campaign, Window(date(2026, 5, 1), AS_OF - timedelta(days=1)), now=AFTER_BUILD
    )
    with engine.connect() as conn:
        mart = conn.execute(
            sa.text(
                """select sum(treatment_sends), sum(treatment_conversions), sum(control_sends),
                          sum(control_conversions), sum(pending), sum(cost), sum(revenue),
                          sum(coalesce(exploration_rate, 0) * treatment_sends)
                   from analytics.campaign_daily_kpis where campaign_id = :c and kpi_date <= :d"""
            ),
            {"c": campaign.campaign_id, "d": AS_OF},
        ).one()
    t, c = out["treatment"], out["control"]
    live = (t["sends"], t["conversions"], c["sends"], c["conversions"], out["pending"], out["cost"],
            out["revenue"], t["explored"])  # fmt: skip
    assert live == pytest.approx(tuple(float(v) for v in mart))


def test_the_regret_is_monitors_estimate(engine: sa.Engine, world: dict[str, int]) -> None:  # noqa: F811
    campaign = load_campaign_by_id(engine, world["mon-wide"])
    out = campaign_performance(engine, campaign, Window(date(2026, 5, 1), AS_OF), now=AFTER_BUILD)
    assert out["regret"] == {"estimate": pytest.approx(10 / 12), "reason": None}

"""The demo's warm history: earlier simulated days through the daily job's own functions, in-process.

A bandit needs weeks of matured sends before it beats a sensible default, but each day through
Airflow costs ~30-45 s of process start-up. So the demo runs its first days the way `campaignopt
daily` would without the scheduler: the functions of :mod:`pipelines.daily` that the DAG's tasks
call (ingest -> GX -> dbt -> decide -> publish -> monitor), in day order, in this process. Nothing
is short-cut: every list is decided by the campaign's policy from the marts and logged with its
propensities in ``ops.decisions``, and the simulator answers each published list with interaction
files in the inbox of the following days, which the next days ingest.

Two savings, neither of which changes a decision: the Great Expectations checks (of the landed
batch and of each list) are left to the days run through Airflow, and the marts are rebuilt every
``marts_every`` days (always on the first), so on the days between, the policy decides on
statistics a day older — a slower learner than the daily job, not a better one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa


@dataclass(frozen=True)
class HistoryDay:
    day: date
    lists: int
    sends: int
    marts_built: bool
    outcome: object  # what ``simulate`` returned: the simulated customers' answer to the lists


def run_history_day(
    engine: sa.Engine, day: date, *, build_marts: bool, simulate: Callable[[date], object]
) -> HistoryDay:
    """Day ``day`` through the daily job's functions; then the simulator answers its lists."""
    from pipelines import daily
    from pipelines.campaign_store import load_campaign_by_id
    from pipelines.publish import publish_list

    daily.ingest(day)
    if build_marts:
        daily.transform(day)
    published = []
    for campaign_id in daily.active_campaigns(day):
        daily.decide(campaign_id, day)
        # Published as daily.publish does, without its GX check of the list (~1.5 s a list).
        result = publish_list(engine, load_campaign_by_id(engine, campaign_id), day, validate=False)
        published.append(result)
    daily.monitor(day)
    sends = sum(p.n_rows for p in published)
    return HistoryDay(day, len(published), sends, build_marts, simulate(day))


def run_history(
    engine: sa.Engine,
    start: date,
    days: int,
    marts_every: int,
    simulate: Callable[[date], object],
    progress: Callable[[str], None],
) -> list[HistoryDay]:
    """``days`` days from ``start`` in order; a line of progress every week and at the end."""
    out = []
    scoring_log = logging.getLogger("pipelines.scoring")
    level = scoring_log.level
    # "no champion yet, deciding with the bandit alone", once per list: expected before the first retraining
    scoring_log.setLevel(logging.ERROR)
    try:
        for i in range(days):
            day = start + timedelta(days=i)
            out.append(run_history_day(engine, day, build_marts=i % marts_every == 0, simulate=simulate))
            if (i + 1) % 7 == 0 or i + 1 == days:
                sends = sum(h.sends for h in out)
                progress(f"history {start} .. {day}: {i + 1} days, {sends:,} sends decided and answered")
    finally:
        scoring_log.setLevel(level)
    return out

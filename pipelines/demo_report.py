"""The demo's closing summary: latest lists, KPIs so far, and the model's effect."""

from __future__ import annotations

import sqlalchemy as sa

from pipelines.cli.output import console, print_table
from pipelines.db import get_engine


def print_demo_report(summary, config) -> None:
    from pipelines.monitor import campaign_kpis

    engine = get_engine()
    last_day = config.start.fromordinal(config.start.toordinal() + config.days - 1)
    with engine.connect() as conn:
        lists = [
            dict(r)
            for r in conn.execute(
                sa.text(
                    """select c.name as campaign, s.list_date, s.n_rows, s.n_control, s.model_version,
                              s.csv_path
                       from ops.send_lists s join ops.campaigns c using (campaign_id)
                       where s.list_date = :d and s.status = 'published' order by c.name"""
                ),
                {"d": last_day},
            ).mappings()
        ]
        kpis = campaign_kpis(conn, last_day)
        by_model = (
            [
                dict(r)
                for r in conn.execute(
                    sa.text(
                        """select coalesce(model_version, 'none') as model_version, count(*) as matured_sends,
                              round(avg(converted::int)::numeric, 4) as conversion_rate
                       from analytics.training_examples where treatment_group = 'treatment'
                       group by 1 order by 1"""
                    )
                ).mappings()
            ]
            if _has_model_column(conn)
            else []
        )
    console.rule("campaignopt demo")
    print_table(lists, title=f"latest published send lists ({last_day})")
    cols = [
        "campaign",
        "treatment_sends",
        "treatment_rate",
        "control_sends",
        "control_rate",
        "lift",
        "lift_ci_low",
        "lift_ci_high",
        "exploration_rate",
        "estimated_regret",
        "roi",
    ]
    print_table(kpis, title="KPIs so far (matured and attributed sends)", columns=cols)
    if summary.retrain:
        console.print(f"model: {summary.retrain}")
    if by_model:
        print_table(by_model, title="treatment conversion rate by model in use (matured sends)")


def _has_model_column(conn) -> bool:
    return bool(
        conn.execute(
            sa.text(
                "select 1 from information_schema.columns where table_schema = 'analytics' "
                "and table_name = 'training_examples' and column_name = 'model_version'"
            )
        ).scalar()
    )

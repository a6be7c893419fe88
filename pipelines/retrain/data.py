"""The training set: matured examples from ``analytics.training_examples`` and the campaigns' arms."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from ml.features import ARM_COLUMNS
from ml.train import training_rows
from pipelines.extra_features import STORE_COLUMN, select_sql
from pipelines.retrain.config import RetrainConfig

TRAINING_EXAMPLES_TABLE = "analytics.training_examples"


def load_training_examples(
    engine: sa.Engine, *, as_of: dt.date | None = None, lookback_days: int | None = None
) -> pd.DataFrame:
    """Rows of ``analytics.training_examples`` with ``decision_date <= as_of`` in the lookback window.

    An empty frame when the mart does not exist yet (dbt has not built it).
    """
    with engine.connect() as conn:
        if conn.execute(sa.text("select to_regclass(:t)"), {"t": TRAINING_EXAMPLES_TABLE}).scalar() is None:
            return pd.DataFrame()
        clauses, params = [], {}
        if as_of is not None:
            clauses.append("decision_date <= :as_of")
            params["as_of"] = as_of
            if lookback_days is not None:
                clauses.append("decision_date > :since")
                params["since"] = as_of - dt.timedelta(days=lookback_days)
        where = f"where {' and '.join(clauses)}" if clauses else ""
        columns = "t.*" + (select_sql("t") if has_column(conn, TRAINING_EXAMPLES_TABLE, STORE_COLUMN) else "")
        query = (
            f"select {columns} from {TRAINING_EXAMPLES_TABLE} t {where} order by decision_date, decision_id"
        )
        examples = pd.read_sql(sa.text(query), conn, params=params)
        # The extra features are columns now; the jsonb object itself does not go to parquet.
        return examples.drop(columns=[STORE_COLUMN], errors="ignore")


def has_column(conn: sa.Connection, table: str, column: str) -> bool:
    """Whether ``table`` (schema.name) has ``column``: a mart built before a release added it does not."""
    schema, name = table.split(".")
    query = sa.text(
        "select exists (select 1 from information_schema.columns "
        "where table_schema = :s and table_name = :n and column_name = :c)"
    )
    return bool(conn.execute(query, {"s": schema, "n": name, "c": column}).scalar())


def load_arms(engine: sa.Engine, campaign_ids: list[int]) -> pd.DataFrame:
    """Active arms of the campaigns, parameters exploded to columns (as ``stg_ops__arms`` does)."""
    columns = ["arm_id", "campaign_id", *ARM_COLUMNS]
    if not campaign_ids:
        return pd.DataFrame(columns=columns)
    query = sa.text(
        """
        select arm_id, campaign_id,
               params ->> 'offer_type' as offer_type,
               params ->> 'discount' as discount,
               coalesce(params ->> 'channel', channel) as channel,
               params ->> 'time_of_day' as time_of_day,
               params ->> 'day_of_week' as day_of_week,
               params ->> 'cta' as cta
        from ops.arms
        where active and campaign_id = any(:ids)
        order by campaign_id, arm_id
        """
    )
    with engine.connect() as conn:
        if conn.execute(sa.text("select to_regclass('ops.arms')")).scalar() is None:
            return pd.DataFrame(columns=columns)  # no arms table: the off-policy estimate is skipped
        return pd.read_sql(query, conn, params={"ids": [int(c) for c in campaign_ids]})


def enough_data(examples: pd.DataFrame, config: RetrainConfig) -> str | None:
    """None when ``examples`` can train a model, else the reason it cannot."""
    if examples.empty:
        return f"{TRAINING_EXAMPLES_TABLE} holds no matured examples"
    rows = training_rows(examples, config.train)
    if len(rows) < config.min_examples:
        return f"{len(rows)} matured treatment examples, fewer than min_examples={config.min_examples}"
    n_days = pd.to_datetime(rows["decision_date"]).dt.normalize().nunique()
    if n_days < config.min_days:
        return f"examples span {n_days} decision date(s), fewer than min_days={config.min_days}"
    if rows[config.train.label].nunique() < 2:
        return f"every example has the same {config.train.label!r}: nothing to learn"
    return None

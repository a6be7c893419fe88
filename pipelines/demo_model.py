"""Does the champion model know more than the bandit alone? Both predict the same validation rows.

The bandit's knowledge is a conversion rate per (campaign, segment, arm) from the days before
the champion's validation window, shrunk towards the arm's rate over all segments (as its
empirical-Bayes prior does). The model scores each customer x arm from the customer's own
attributes. Both are judged by AUC on the matured treatment sends of the validation window, with
DeLong's interval of the difference (the rows are the same, so the AUCs are correlated).
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.db import read_frame
from pipelines.extra_features import select_sql

PRIOR_SENDS = 30.0  # weight of the arm-wide rate in a segment's estimate, in sends


def bandit_rates(train: pd.DataFrame, valid: pd.DataFrame) -> np.ndarray:
    """Each validation row's (campaign, segment, arm) conversion rate in ``train``, shrunk."""
    keys = ["campaign_id", "segment", "arm_id"]
    cell = train.groupby(keys)["converted"].agg(["sum", "count"])
    arm = train.groupby(["campaign_id", "arm_id"])["converted"].mean().rename("arm_rate")
    overall = float(train["converted"].mean())
    rows = valid[keys].join(cell, on=keys).join(arm, on=["campaign_id", "arm_id"])
    prior = rows["arm_rate"].fillna(overall)
    shrunk = (rows["sum"].fillna(0) + PRIOR_SENDS * prior) / (rows["count"].fillna(0) + PRIOR_SENDS)
    return shrunk.to_numpy()


def model_vs_bandit(engine: sa.Engine, valid_window: str) -> dict | None:
    """AUC of the champion and of the bandit's cell rates on the champion's validation window."""
    from ml.gate import auc_difference, auc_interval
    from pipelines.retrain.gate import load_champion_model

    found = re.findall(r"\d{4}-\d{2}-\d{2}", valid_window or "")
    loaded = load_champion_model()
    if len(found) != 2 or loaded is None:
        return None
    since, until = (date.fromisoformat(d) for d in found)
    with engine.connect() as conn:
        rows = read_frame(
            conn,
            f"""select t.*{select_sql("t")} from analytics.training_examples t
               where treatment_group = 'treatment' and decision_date <= %(u)s""",
            {"u": until},
        )
    # read_frame keeps PostgreSQL's booleans as text ('t'/'f')
    rows["converted"] = rows["converted"].astype(str).str.lower().isin(("t", "true", "1")).astype(int)
    day = pd.to_datetime(rows["decision_date"]).dt.date
    train, valid = rows[day < since], rows[day >= since].reset_index(drop=True)
    if train.empty or valid["converted"].nunique() < 2:
        return None
    model = loaded.model
    y = valid["converted"].to_numpy()
    model_p = np.asarray(model.predict_rows(valid), dtype=np.float64)
    bandit_p = bandit_rates(train, valid)
    return {
        "rows": len(valid),
        "window": f"{since}..{until}",
        "model_auc": auc_interval(y, model_p),
        "bandit_auc": auc_interval(y, bandit_p),
        "difference": auc_difference(y, model_p, bandit_p),
    }

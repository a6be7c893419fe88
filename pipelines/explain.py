"""Why a customer got an offer: one decision, from what was logged and the model that scored it.

Stored with every decision (``ops.decisions``, batch and real time): the arm, its propensity
(the exact probability the policy chose it with), whether the policy explored, which part
selected it (bandit, model, blend, control), the score parts (``bandit_score``: the posterior
sample or index the policy compared; ``model_score``; ``blend_score``), the confidence, the model
version and the seed.

Recomputed exactly, from the model version in the registry and the customer's snapshot valid on
the decision date (``raw.customers``: the latest on or before it, the rule of
``int_decisions_segmented``): the model's probability for each of the campaign's arms -- so the
model's ranking and its runner-up -- and XGBoost's exact tree SHAP values (``pred_contribs``) for
the chosen arm and the runner-up: per feature, how much it moved this customer's log-odds from
the model's base rate. They add up to the model's log-odds, so ``rederived`` checks the
recomputation against the logged ``model_score``. Without the model (registry down, version
deleted) or the snapshot (a real-time customer given by attributes), the stored part is shown
and the reason the rest is missing.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.errors import NotFound, ServiceUnavailable
from pipelines.extra_features import select_sql

REDERIVE_TOLERANCE = 1e-5  # the model scores in float32
_DECISION_SQL = """
select d.decision_id, d.campaign_id, c.name as campaign, d.customer_id, d.arm_id, a.params,
       d.decision_date, d.decided_at, d.segment, d.policy, d.strategy, d.phase, d.treatment_group,
       d.source, d.selected_by, d.explored, d.propensity, d.confidence, d.bandit_score,
       d.model_score, d.blend_score, d.model_version, d.seed, d.note,
       d.runner_up_arm_id, r.params as runner_up_params, d.runner_up_propensity
from ops.decisions d
join ops.campaigns c using (campaign_id)
join ops.arms a using (arm_id)
left join ops.arms r on r.arm_id = d.runner_up_arm_id
where d.decision_id = :id
"""


def explain_decision(engine: sa.Engine, decision_id: str, *, top: int = 5, target=None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The explanation of ``decision_id`` as a JSON-ready dict; NotFound when no decision has it.

    ``target``: the model registry (default: the deployment's, pipelines.retrain.registry_target).
    """
    with engine.connect() as conn:
        row = conn.execute(sa.text(_DECISION_SQL), {"id": decision_id}).mappings().first()
        if row is None:
            raise NotFound(f"decision {decision_id!r} is unknown")
        decision = {k: _plain(v) for k, v in row.items()}
        snapshot = _snapshot(conn, decision["customer_id"], row["decision_date"])
        arms = conn.execute(
            sa.text(
                "select arm_id, params from ops.arms where campaign_id = :c and (active or arm_id = :a) "
                "order by arm_id"
            ),
            {"c": row["campaign_id"], "a": row["arm_id"]},
        ).all()
    out: dict[str, Any] = {
        "decision": {k: decision[k] for k in decision if k not in _SCORES and not k.startswith("runner_up")},
        "scores": {k: decision[k] for k in _SCORES},
        "why": _why(decision),
        "policy_runner_up": _policy_runner_up(decision),
        "model": _model_part(
            decision, snapshot, [(int(a.arm_id), dict(a.params)) for a in arms], top, target
        ),
    }
    return out


_SCORES = ("propensity", "confidence", "bandit_score", "model_score", "blend_score")


def _policy_runner_up(d: dict[str, Any]) -> dict[str, Any] | None:
    """The stored runner-up: the arm the policy was next most likely to choose, with the gap in
    probability; None for the holdout, a customer with one allowed arm, or a row logged earlier."""
    if d["runner_up_arm_id"] is None:
        return None
    return {
        "arm_id": d["runner_up_arm_id"],
        "params": d["runner_up_params"],
        "propensity": d["runner_up_propensity"],
        "gap": d["propensity"] - d["runner_up_propensity"],
    }


def _why(d: dict[str, Any]) -> str:
    """One sentence a reviewer reads first."""
    if d["treatment_group"] == "control":
        return "holdout control: the campaign's static default arm, so the lift can be measured"
    by = {
        "bandit": "the bandit's score for the segment",
        "model": "the model's predicted conversion for this customer",
        "blend": "a blend of the bandit's score and the model's prediction",
    }.get(d["selected_by"], str(d["selected_by"]))
    how = "an exploration draw" if d["explored"] else "the best-scored arm"
    return (
        f"{d['strategy'] or d['policy']} chose it by {by}: {how}, drawn with probability "
        f"{d['propensity']:.3f}"
    )


def _snapshot(conn: sa.Connection, customer_id: str, day: date) -> pd.DataFrame:
    sql = f"""select c.*{select_sql("c")} from raw.customers c
              where c.customer_id = :c and c.snapshot_date <= :d
              order by c.snapshot_date desc limit 1"""
    frame = pd.read_sql(sa.text(sql), conn, params={"c": customer_id, "d": day})
    return frame.drop(columns=["extra_features"], errors="ignore")


def _model_part(
    d: dict[str, Any],
    snapshot: pd.DataFrame,
    arms: list[tuple[int, dict]],
    top: int,
    target,  # type: ignore[no-untyped-def]
) -> dict[str, Any]:
    if d["model_version"] is None:
        return {
            "status": "none",
            "reason": "decided without a model (no champion then, or a bandit-only policy)",
        }
    if snapshot.empty:
        return {
            "status": "no_snapshot",
            "reason": f"customer {d['customer_id']!r} is in no snapshot on or before {d['decision_date']} "
            "(a real-time customer given by attributes): the model's inputs were not stored",
        }
    from ml.registry import ModelUnavailable, RegistryUnavailable, UnknownModelVersion, load_version

    try:
        if target is None:
            from pipelines.retrain import registry_target

            target = registry_target()
        model, _ = load_version(target, str(d["model_version"]))
    except (RegistryUnavailable, ServiceUnavailable, UnknownModelVersion, ModelUnavailable) as exc:
        return {"status": "unavailable", "reason": f"model version {d['model_version']}: {exc}"}
    arm_ids = [a for a, _ in arms]
    scores = np.asarray(model.score_matrix(snapshot, [p for _, p in arms]))[0].astype(np.float64)
    chosen = arm_ids.index(int(d["arm_id"]))
    others = [i for i in range(len(arms)) if i != chosen]
    runner = max(others, key=lambda i: scores[i]) if others else None
    part: dict[str, Any] = {
        "status": "ok",
        "version": str(d["model_version"]),
        "arm_scores": [
            {"arm_id": a, "params": p, "score": float(s)} for (a, p), s in zip(arms, scores, strict=True)
        ],
        "rank_of_chosen": int((scores > scores[chosen]).sum()) + 1,
        "runner_up": None,
        "contributions": _contributions(model, snapshot, arms[chosen][1], top),
    }
    if runner is not None:
        part["runner_up"] = {
            "arm_id": arm_ids[runner],
            "params": arms[runner][1],
            "score": float(scores[runner]),
            "gap": float(scores[chosen] - scores[runner]),
            "contributions": _contributions(model, snapshot, arms[runner][1], top),
        }
    logged = d["model_score"]
    part["rederived_score"] = float(scores[chosen])
    part["rederived"] = (
        logged is not None and abs(float(scores[chosen]) - float(logged)) <= REDERIVE_TOLERANCE
    )
    return part


def _contributions(model, snapshot: pd.DataFrame, params: dict, top: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Exact tree SHAP values of one (customer, arm) pair, in log-odds; the ``top`` largest."""
    booster = getattr(model.classifier, "get_booster", None)
    if booster is None:
        return {"status": "unavailable", "reason": "not an XGBoost model: no exact tree SHAP values"}
    import xgboost as xgb

    row = snapshot.assign(**{k: v for k, v in params.items()})
    x = model.spec.transform(row)
    names = model.spec.feature_names
    matrix = xgb.DMatrix(x, feature_names=booster().feature_names)
    best = getattr(model.classifier, "best_iteration", None)
    upto = (0, int(best) + 1) if best is not None else (0, 0)
    values = booster().predict(matrix, pred_contribs=True, iteration_range=upto)[0].astype(np.float64)
    bias, contribs = float(values[-1]), values[:-1]
    order = np.argsort(-np.abs(contribs), kind="stable")[:top]
    logit = bias + float(contribs.sum())
    return {
        "status": "ok",
        "base_log_odds": bias,
        "log_odds": logit,
        "probability": 1.0 / (1.0 + math.exp(-logit)),
        "top": [
            {"feature": names[j], "value": _plain(x[0, j]), "contribution": float(contribs[j])} for j in order
        ],
        "rest": float(contribs.sum() - contribs[order].sum()),
    }


def _plain(value: object) -> object:
    """A JSON-ready value: dates as ISO text, numpy and Decimal numbers as float or int."""
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[union-attr]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)) or type(value).__name__ == "Decimal":
        f = float(value)  # type: ignore[arg-type]
        return None if math.isnan(f) else f
    return value

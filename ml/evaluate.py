"""Judge a response model on held-out days: numbers for the gate, PNG charts for people.

- Discrimination and calibration: AUC, log loss, Brier score, expected calibration error,
  a calibration curve, lift and cumulative gain by score decile.
- Feature importance (total gain per feature).
- An off-policy estimate of the policy "send each customer the arm the model ranks
  first", from the logged decisions and their propensities (SNIPS and doubly robust,
  from :mod:`bandits.off_policy`), with confidence intervals. This is what the
  promotion gate compares: a model can predict well and still rank arms badly.

Charts use matplotlib's object API (``Figure``), never pyplot, so no GUI backend and no
global state are involved: the PNGs render with Agg.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from bandits.off_policy import PolicyValueEstimate, doubly_robust_estimate, snips_estimate
from ml.scoring import ResponseModel

DEFAULT_WEIGHT_CLIP = 100.0


@dataclass
class Evaluation:
    """Everything :func:`evaluate` measured.

    Attributes
    ----------
    metrics : dict of str to float
        Flat numbers for MLflow and the gate (``auc``, ``log_loss``, ``brier``, ``ece``,
        ``top_decile_lift``, ``ope_dr_value``, ...). NaN when undefined.
    calibration, lift, importance : DataFrame
        The tables behind the charts.
    charts : dict of str to Path
        PNG files written (empty without ``out_dir``).
    """

    metrics: dict[str, float]
    calibration: pd.DataFrame
    lift: pd.DataFrame
    importance: pd.DataFrame
    charts: dict[str, Path] = field(default_factory=dict)


# -- numbers ---------------------------------------------------------------------------------


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """AUC, log loss, Brier score and base rates of predictions ``proba`` for labels ``y_true``."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-7, 1 - 1e-7)
    both_classes = np.unique(y).size == 2
    return {
        "n_rows": float(y.size),
        "base_rate": float(y.mean()) if y.size else float("nan"),
        "mean_prediction": float(p.mean()) if y.size else float("nan"),
        "auc": float(roc_auc_score(y, p)) if both_classes else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if y.size else float("nan"),
        "brier": float(brier_score_loss(y, p)) if y.size else float("nan"),
    }


def calibration_table(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Observed rate against mean prediction in ``n_bins`` equal-count bins of the score.

    Equal-count bins, because conversion scores crowd near zero: fixed-width bins would put
    nearly every row in the first one.
    """
    order = np.argsort(proba, kind="stable")
    rows = []
    for i, idx in enumerate(np.array_split(order, min(n_bins, max(len(order), 1)))):
        if idx.size:
            rows.append((i + 1, idx.size, float(np.mean(proba[idx])), float(np.mean(y_true[idx]))))
    return pd.DataFrame(rows, columns=["bin", "count", "mean_predicted", "observed_rate"])


def expected_calibration_error(table: pd.DataFrame) -> float:
    """Row-weighted mean absolute gap between prediction and observation over the bins."""
    if table.empty:
        return float("nan")
    gap = (table["mean_predicted"] - table["observed_rate"]).abs()
    return float((gap * table["count"]).sum() / table["count"].sum())


def lift_table(y_true: np.ndarray, proba: np.ndarray, n_groups: int = 10) -> pd.DataFrame:
    """Response rate, lift and cumulative gain by score decile, best decile first.

    Columns: ``decile`` (1 = highest scores), ``count``, ``positives``, ``response_rate``,
    ``lift`` (rate over the overall rate), ``cumulative_share`` of rows and
    ``cumulative_gain`` (share of all positives captured down to this decile).
    """
    y = np.asarray(y_true, dtype=np.float64)
    order = np.argsort(-np.asarray(proba), kind="stable")
    groups = [idx for idx in np.array_split(order, min(n_groups, max(len(order), 1))) if idx.size]
    counts = np.array([idx.size for idx in groups])
    positives = np.array([y[idx].sum() for idx in groups])
    overall = y.mean() if y.size else np.nan
    total_pos = positives.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = positives / counts
        return pd.DataFrame(
            {
                "decile": np.arange(1, len(groups) + 1),
                "count": counts,
                "positives": positives,
                "response_rate": rate,
                "lift": rate / overall,
                "cumulative_share": np.cumsum(counts) / counts.sum(),
                "cumulative_gain": np.cumsum(positives) / total_pos if total_pos else np.nan,
            }
        )


def feature_importance(classifier, feature_names: list[str]) -> pd.DataFrame:
    """Total gain per feature (zero for features no split used), highest first."""
    booster = classifier.get_booster()
    gains = booster.get_score(importance_type="total_gain")
    booster_names = booster.feature_names or [f"f{i}" for i in range(len(feature_names))]
    values = [float(gains.get(name, 0.0)) for name in booster_names]
    table = pd.DataFrame({"feature": feature_names, "total_gain": values})
    total = table["total_gain"].sum()
    table["share"] = table["total_gain"] / total if total > 0 else 0.0
    return table.sort_values("total_gain", ascending=False, kind="stable").reset_index(drop=True)


def greedy_policy_value(
    model: ResponseModel,
    logged: pd.DataFrame,
    arms: pd.DataFrame,
    *,
    reward_column: str = "reward",
    weight_clip: float | None = DEFAULT_WEIGHT_CLIP,
    confidence: float = 0.95,
    chunk_rows: int = 262_144,
) -> dict[str, float]:
    """Off-policy value of "send each customer the arm the model ranks first".

    The target policy is deterministic: probability 1 on the model's top arm among the
    campaign's arms, 0 elsewhere. Only treatment rows with a propensity in (0, 1] and a
    reward are used (control rows received nothing). Logged arms missing from ``arms``
    (e.g. retired) get target probability 0.

    Parameters
    ----------
    model : ResponseModel
    logged : DataFrame
        Logged decisions: campaign_id, arm_id, propensity, the reward column, the
        customer columns and the arm columns of the logged arm.
    arms : DataFrame
        The arms the target policy chooses from: arm_id, the arm columns, and campaign_id
        (without campaign_id, every row chooses among all arms).
    reward_column : str
    weight_clip : float or None
        Cap on importance weights (bias for variance; the count clipped is reported).
    confidence : float
        Coverage of the intervals.

    Returns
    -------
    dict of str to float
        ``ope_snips_value``, ``ope_snips_ci_low``, ``ope_snips_ci_high``, the same for
        ``ope_dr``, ``ope_logged_value`` (the logging policy's mean reward),
        ``ope_match_rate`` (share of rows whose logged arm is the model's top arm),
        ``ope_ess`` (effective sample size), ``ope_n`` and ``ope_clipped``.
    """
    data = _greedy_rows(model, logged, arms, reward_column, chunk_rows)
    if data is None:
        return _empty_policy_value()
    r, p_log, p_tgt = (data[c].to_numpy() for c in ("reward", "propensity", "target"))
    dr = doubly_robust_estimate(
        r, p_log, p_tgt, data["q_logged"].to_numpy(), data["q_target"].to_numpy(),
        clip=weight_clip, confidence=confidence,
    )
    try:
        snips = snips_estimate(r, p_log, p_tgt, clip=weight_clip, confidence=confidence)
    except ValueError:  # the model never agrees with a logged arm: SNIPS is undefined
        snips = None
    metrics = {
        "ope_n": float(len(data)),
        "ope_logged_value": float(r.mean()),
        "ope_match_rate": float(p_tgt.mean()),
        "ope_ess": dr.effective_sample_size,
        "ope_clipped": float(dr.n_clipped),
    }
    metrics.update(_estimate_fields("ope_dr", dr))
    metrics.update(_estimate_fields("ope_snips", snips))
    return metrics


def greedy_policy_terms(
    model: ResponseModel,
    logged: pd.DataFrame,
    arms: pd.DataFrame,
    *,
    reward_column: str = "reward",
    weight_clip: float | None = DEFAULT_WEIGHT_CLIP,
    chunk_rows: int = 262_144,
) -> np.ndarray | None:
    """Per-row doubly robust terms of the greedy policy (their mean is ``ope_dr_value``).

    The rows are those :func:`greedy_policy_value` uses, in the same order for any model
    given the same ``logged`` and ``arms``: two models' terms can be paired row by row.

    Returns
    -------
    float array of shape (n,), or None when fewer than 2 rows are usable.
    """
    data = _greedy_rows(model, logged, arms, reward_column, chunk_rows)
    if data is None:
        return None
    weights = data["target"].to_numpy() / data["propensity"].to_numpy()
    if weight_clip is not None:
        weights = np.minimum(weights, weight_clip)
    return data["q_target"].to_numpy() + weights * (data["reward"].to_numpy() - data["q_logged"].to_numpy())


def _greedy_rows(
    model: ResponseModel, logged: pd.DataFrame, arms: pd.DataFrame, reward_column: str, chunk_rows: int
) -> pd.DataFrame | None:
    """Reward, propensity, target probability and model values of the usable logged rows."""
    rows = _usable_logs(logged, reward_column)
    by_campaign = "campaign_id" in arms.columns and "campaign_id" in rows.columns
    keys = rows["campaign_id"].unique() if by_campaign else [None]
    parts = []
    for key in keys:
        group = rows[rows["campaign_id"].to_numpy() == key] if by_campaign else rows
        options = arms[arms["campaign_id"].to_numpy() == key] if by_campaign else arms
        if options.empty or group.empty:
            continue
        scores = model.score_matrix(group, options, chunk_rows=chunk_rows)
        top_arm = options["arm_id"].to_numpy()[np.argmax(scores, axis=1)]
        parts.append(
            pd.DataFrame(
                {
                    "reward": group[reward_column].to_numpy(dtype=np.float64),
                    "propensity": group["propensity"].to_numpy(dtype=np.float64),
                    "target": (group["arm_id"].to_numpy() == top_arm).astype(np.float64),
                    "q_logged": model.predict_rows(group).astype(np.float64),
                    "q_target": scores.max(axis=1).astype(np.float64),
                }
            )
        )
    if not parts or sum(len(p) for p in parts) < 2:
        return None
    return pd.concat(parts, ignore_index=True)


# -- charts ----------------------------------------------------------------------------------


def plot_calibration(table: pd.DataFrame, path: Path) -> Path:
    """Reliability diagram: observed rate against mean prediction per bin."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    top = float(max(table["mean_predicted"].max(), table["observed_rate"].max(), 1e-3)) * 1.05
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect")
    ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", label="model")
    ax.set(xlabel="mean predicted P(conversion)", ylabel="observed conversion rate",
           title="Calibration (equal-count bins)", xlim=(0, top), ylim=(0, top))
    ax.legend(loc="upper left")
    return _save(fig, path)


def plot_lift(table: pd.DataFrame, path: Path) -> Path:
    """Lift by decile (bars) and cumulative gain curve, side by side."""
    fig = Figure(figsize=(10, 4.5))
    left, right = fig.subplots(1, 2)
    left.bar(table["decile"], table["lift"], color="tab:blue")
    left.axhline(1.0, linestyle="--", color="grey")
    left.set(xlabel="score decile (1 = highest)", ylabel="lift over average", title="Lift by decile")
    shares = np.concatenate([[0.0], table["cumulative_share"].to_numpy()])
    gains = np.concatenate([[0.0], np.asarray(table["cumulative_gain"], dtype=float)])
    right.plot(shares, gains, marker="o", label="model")
    right.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    right.set(xlabel="share of customers contacted", ylabel="share of conversions captured",
              title="Cumulative gain", xlim=(0, 1), ylim=(0, 1.02))
    right.legend(loc="lower right")
    return _save(fig, path)


def plot_importance(table: pd.DataFrame, path: Path, top: int = 20) -> Path:
    """Horizontal bars of the ``top`` features by share of total gain."""
    head = table.head(top).iloc[::-1]
    fig = Figure(figsize=(7, max(3.0, 0.3 * len(head) + 1)))
    ax = fig.add_subplot()
    ax.barh(head["feature"], head["share"], color="tab:green")
    ax.set(xlabel="share of total gain", title=f"Feature importance (top {len(head)})")
    return _save(fig, path)


# -- all together ----------------------------------------------------------------------------


def evaluate(
    model: ResponseModel,
    valid: pd.DataFrame,
    *,
    arms: pd.DataFrame | None = None,
    label: str = "converted",
    reward_column: str | None = None,
    out_dir: Path | None = None,
    weight_clip: float | None = DEFAULT_WEIGHT_CLIP,
    confidence: float = 0.95,
) -> Evaluation:
    """Measure ``model`` on the validation rows; write charts when ``out_dir`` is given.

    Parameters
    ----------
    model : ResponseModel
    valid : DataFrame
        Validation rows (the newest days), as used in training (treatment rows).
    arms : DataFrame, optional
        Arms for the off-policy estimate (see :func:`greedy_policy_value`); without them
        the ``ope_*`` metrics are NaN.
    label : str
        Binary label column.
    reward_column : str, optional
        Reward for the off-policy estimate; default ``label``, so the estimate is in the
        same unit as the model's predictions (needed for the doubly robust term).
    out_dir : Path, optional
        Folder for ``calibration.png``, ``lift_gain.png`` and ``feature_importance.png``.

    Returns
    -------
    Evaluation
    """
    y = valid[label].to_numpy(dtype=np.int64)
    proba = model.predict_rows(valid).astype(np.float64)
    metrics = classification_metrics(y, proba)
    calibration = calibration_table(y, proba)
    lift = lift_table(y, proba)
    importance = feature_importance(model.classifier, model.spec.feature_names)
    metrics["ece"] = expected_calibration_error(calibration)
    metrics["top_decile_lift"] = float(lift["lift"].iloc[0]) if not lift.empty else float("nan")
    if arms is not None and len(arms):
        metrics.update(
            greedy_policy_value(
                model, valid, arms, reward_column=reward_column or label,
                weight_clip=weight_clip, confidence=confidence,
            )
        )
    else:
        metrics.update(_empty_policy_value())
    charts: dict[str, Path] = {}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        charts["calibration"] = plot_calibration(calibration, out_dir / "calibration.png")
        charts["lift_gain"] = plot_lift(lift, out_dir / "lift_gain.png")
        charts["feature_importance"] = plot_importance(importance, out_dir / "feature_importance.png")
    return Evaluation(metrics=metrics, calibration=calibration, lift=lift, importance=importance,
                      charts=charts)


# -- helpers ---------------------------------------------------------------------------------


def _usable_logs(logged: pd.DataFrame, reward_column: str) -> pd.DataFrame:
    rows = logged
    if "treatment_group" in rows.columns:
        rows = rows[rows["treatment_group"].to_numpy() != "control"]
    p = pd.to_numeric(rows["propensity"], errors="coerce")
    ok = (p > 0) & (p <= 1) & rows[reward_column].notna()
    return rows[ok.to_numpy()]


def _estimate_fields(prefix: str, estimate: PolicyValueEstimate | None) -> dict[str, float]:
    if estimate is None:
        return {f"{prefix}_{k}": float("nan") for k in ("value", "ci_low", "ci_high", "std_error")}
    return {
        f"{prefix}_value": estimate.value,
        f"{prefix}_ci_low": estimate.ci_low,
        f"{prefix}_ci_high": estimate.ci_high,
        f"{prefix}_std_error": estimate.std_error,
    }


def _empty_policy_value() -> dict[str, float]:
    nan = float("nan")
    out = {"ope_n": 0.0, "ope_logged_value": nan, "ope_match_rate": nan, "ope_ess": nan,
           "ope_clipped": 0.0}
    out.update(_estimate_fields("ope_dr", None))
    out.update(_estimate_fields("ope_snips", None))
    return out


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    return path

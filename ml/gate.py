"""The promotion gate: statistics with their uncertainty, and the rule that uses them.

Two questions, both answered on the challenger's validation days (the newest days, never
seen in training) and, for the comparison, on the *same rows* for both models:

1. **Is the challenger better than chance at all?** (the quality floor, which applies with
   or without a champion): the lower bound of the DeLong confidence interval of its
   validation AUC must exceed ``0.5 + min_auc_margin``. The floor is on AUC, not on an
   off-policy value against the bandit alone, because the model is blended into the
   bandit's choice rather than deployed greedily, and a greedy-policy estimate on a week of
   logs is too wide to be a floor (it is still measured, recorded and compared below).
2. **Is the challenger better than the champion?** Paired differences on the same rows:
   the per-row log-loss difference (a paired mean, normal interval), the DeLong interval of
   the difference of two correlated AUCs, and the per-row difference of the two doubly
   robust off-policy terms. The rule (see :class:`GateConfig`): the challenger must be
   *not significantly worse* in AUC or off-policy value, and in log loss either
   *significantly better* (the lower bound of the gain exceeds ``min_log_loss_gain``) or,
   with ``refresh_when_not_worse`` (the default), *not significantly worse* (the upper
   bound of the gain is >= 0). The retraining trains every challenger on a newer snapshot
   than the champion's, so a challenger level with it on the champion's own ground holds
   the newest days' customers and arms that the champion has not seen: in a campaign whose
   model learns from its own sends, a stale champion is what holds the decisions back
   (benchmarks: "## Decision quality"). A bank that wants every champion change to be a
   significant gain sets ``refresh_when_not_worse: false``; a person can still promote with
   ``campaignopt model promote VERSION --force --reason ...``, which is recorded.

Pure numpy/scipy: no MLflow, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm, rankdata

_EPS = 1e-7


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided normal-approximation confidence interval."""

    value: float
    low: float
    high: float
    std_error: float

    def to_dict(self) -> dict[str, float | None]:
        return {k: (round(v, 6) if math.isfinite(v) else None) for k, v in asdict(self).items()}

    def __str__(self) -> str:
        return f"{self.value:+.5f} [{self.low:+.5f}, {self.high:+.5f}]"


def _interval(value: float, std_error: float, confidence: float) -> Interval:
    z = float(norm.ppf(0.5 + confidence / 2))
    low, high = value - z * std_error, value + z * std_error
    return Interval(float(value), float(low), float(high), float(std_error))


# -- AUC: DeLong --------------------------------------------------------------------------------


def delong_covariance(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of ``k`` score vectors on the same rows and their DeLong covariance matrix.

    The fast algorithm of Sun & Xu (2014): midranks instead of the O(m n) pair count.

    Parameters
    ----------
    y_true : int array of shape (n,)
        Binary labels (both classes present).
    scores : float array of shape (k, n) or (n,)

    Returns
    -------
    aucs : float array of shape (k,)
    covariance : float array of shape (k, k)
    """
    y = np.asarray(y_true).astype(bool)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    positives, negatives = s[:, y], s[:, ~y]
    m, n = positives.shape[1], negatives.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least 2 rows of each class, got {m} positive and {n} negative")
    rank_pos = rankdata(positives, axis=1)
    rank_neg = rankdata(negatives, axis=1)
    rank_all = rankdata(np.hstack([positives, negatives]), axis=1)
    aucs = (rank_all[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    v_pos = (rank_all[:, :m] - rank_pos) / n  # per positive: share of negatives ranked below it
    v_neg = 1.0 - (rank_all[:, m:] - rank_neg) / m  # per negative: share of positives ranked above it
    covariance = np.atleast_2d(np.cov(v_pos)) / m + np.atleast_2d(np.cov(v_neg)) / n
    return aucs, covariance


def auc_interval(y_true: np.ndarray, proba: np.ndarray, confidence: float = 0.95) -> Interval:
    """Validation AUC with its DeLong interval."""
    aucs, cov = delong_covariance(y_true, proba)
    return _interval(aucs[0], math.sqrt(max(cov[0, 0], 0.0)), confidence)


def auc_difference(
    y_true: np.ndarray, challenger: np.ndarray, champion: np.ndarray, confidence: float = 0.95
) -> Interval:
    """AUC(challenger) - AUC(champion) on the same rows, DeLong interval for correlated AUCs."""
    aucs, cov = delong_covariance(y_true, np.vstack([challenger, champion]))
    variance = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    return _interval(aucs[0] - aucs[1], math.sqrt(max(variance, 0.0)), confidence)


# -- log loss and off-policy value: paired means ---------------------------------------------------


def row_log_loss(y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Per-row log loss (its mean is sklearn's ``log_loss`` with the same clipping)."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.clip(np.asarray(proba, dtype=np.float64), _EPS, 1 - _EPS)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def paired_mean(differences: np.ndarray, confidence: float = 0.95) -> Interval:
    """Mean of per-row paired differences with a normal interval (a paired t-test's interval).

    For a mean over thousands of rows this is what a paired bootstrap approximates, without
    its cost on a million-row validation window.
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.size < 2:
        raise ValueError(f"a paired interval needs at least 2 rows, got {d.size}")
    return _interval(d.mean(), d.std(ddof=1) / math.sqrt(d.size), confidence)


def log_loss_gain(
    y_true: np.ndarray, challenger: np.ndarray, champion: np.ndarray, confidence: float = 0.95
) -> Interval:
    """log loss(champion) - log loss(challenger) on the same rows: positive = challenger better."""
    return paired_mean(row_log_loss(y_true, champion) - row_log_loss(y_true, challenger), confidence)


# -- the rule ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateConfig:
    """When a model may become champion.

    Parameters
    ----------
    confidence : float
        Coverage of every interval (two-sided).
    min_auc_margin : float
        Quality floor, champion or not: the AUC interval's lower bound must exceed
        ``0.5 + min_auc_margin``.
    min_log_loss_gain : float
        The lower bound of the log-loss gain over the champion (same rows) must exceed this:
        0 means "significantly better".
    refresh_when_not_worse : bool
        Also accept a challenger whose log-loss gain is not significantly negative (upper
        bound >= 0): the challenger is the fresher model (see the module docstring).
    max_auc_drop : float
        Refused when the AUC difference's upper bound is below ``-max_auc_drop``
        (significantly worse by more than this).
    max_value_drop : float
        The same for the doubly robust off-policy value of the model's greedy policy (paired
        per-row terms); skipped, and said so, when the window has no arms or propensities.
    auto_promote : bool
        False: the gate still runs and records its verdict, but a person promotes.
    """

    confidence: float = 0.95
    min_auc_margin: float = 0.02
    min_log_loss_gain: float = 0.0
    max_auc_drop: float = 0.0
    max_value_drop: float = 0.0
    refresh_when_not_worse: bool = True
    auto_promote: bool = True

    def __post_init__(self) -> None:
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0.5, 1), got {self.confidence}")
        if not 0 <= self.min_auc_margin < 0.5:
            raise ValueError(f"min_auc_margin must be in [0, 0.5), got {self.min_auc_margin}")
        for name in ("max_auc_drop", "max_value_drop"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict with every number it used (recorded on the model version)."""

    passed: bool
    reason: str
    champion_version: str | None
    n_rows: int
    challenger_auc: Interval
    auc_gain: Interval | None = None
    log_loss_gain: Interval | None = None
    value_gain: Interval | None = None
    challenger_metrics: Mapping[str, float] | None = None
    champion_metrics: Mapping[str, float] | None = None

    def to_dict(self) -> dict[str, object]:
        def part(value: Interval | None):
            return value.to_dict() if value is not None else None

        return {
            "passed": self.passed,
            "reason": self.reason,
            "champion_version": self.champion_version,
            "n_rows": self.n_rows,
            "challenger_auc": part(self.challenger_auc),
            "auc_gain": part(self.auc_gain),
            "log_loss_gain": part(self.log_loss_gain),
            "value_gain": part(self.value_gain),
            "challenger": _finite(self.challenger_metrics),
            "champion": _finite(self.champion_metrics) if self.champion_metrics is not None else None,
        }


@dataclass(frozen=True)
class ValidationScores:
    """One model's predictions on the validation rows (and its per-row off-policy terms)."""

    proba: np.ndarray
    value_terms: np.ndarray | None = None
    metrics: Mapping[str, float] | None = None


def decide(
    y_true: np.ndarray,
    challenger: ValidationScores,
    champion: ValidationScores | None,
    config: GateConfig,
    *,
    champion_version: str | None = None,
    champion_note: str = "",
) -> GateDecision:
    """Apply the floor and, with a champion, the paired comparison (see the module docstring).

    ``champion`` is None when there is none, or (``champion_note`` says why) when it could
    not be loaded: then only the floor decides.
    """
    y = np.asarray(y_true)
    level = f"{config.confidence:.0%}"
    auc = auc_interval(y, challenger.proba, config.confidence)
    floor = 0.5 + config.min_auc_margin
    reasons = [
        f"AUC {auc.value:.4f}, {level} DeLong interval [{auc.low:.4f}, {auc.high:.4f}] on {y.size} rows: "
        + ("above" if auc.low > floor else "lower bound not above") + f" the floor {floor:.3f}"
    ]
    passed = auc.low > floor
    common = {"n_rows": int(y.size), "challenger_auc": auc, "challenger_metrics": challenger.metrics}
    if champion is None:
        reasons.insert(0, champion_note or "no champion yet")
        return GateDecision(passed, "; ".join(reasons), None, **common)

    ll = log_loss_gain(y, challenger.proba, champion.proba, config.confidence)
    better = ll.low > config.min_log_loss_gain
    # The same predictions are the same model (a rerun on the same snapshot): nothing fresher.
    same = np.array_equal(challenger.proba, champion.proba)
    fresher = config.refresh_when_not_worse and not better and not same and ll.high >= 0
    if better:
        verdict = "significantly better"
    elif fresher:
        verdict = "not significantly worse: the fresher model replaces the champion"
    else:
        verdict = f"not significantly above {config.min_log_loss_gain:+.5f}"
        if ll.high < 0:
            verdict += ", significantly worse"
        elif same:
            verdict += ", the champion's own predictions"
    reasons.append(f"log-loss gain over champion v{champion_version} {ll} {verdict}")
    auc_gain = auc_difference(y, challenger.proba, champion.proba, config.confidence)
    auc_worse = auc_gain.high < -config.max_auc_drop
    reasons.append(f"AUC difference {auc_gain}" + (" significantly worse" if auc_worse else " not worse"))
    value_gain = None
    value_worse = False
    if challenger.value_terms is not None and champion.value_terms is not None:
        value_gain = paired_mean(challenger.value_terms - champion.value_terms, config.confidence)
        value_worse = value_gain.high < -config.max_value_drop
        verdict = " significantly worse" if value_worse else " not worse"
        reasons.append(f"off-policy value difference {value_gain}{verdict}")
    else:
        reasons.append("off-policy value unknown on this window (no arms or propensities): not compared")
    passed = passed and (better or fresher) and not auc_worse and not value_worse
    return GateDecision(
        passed,
        "; ".join(reasons),
        champion_version,
        auc_gain=auc_gain,
        log_loss_gain=ll,
        value_gain=value_gain,
        champion_metrics=champion.metrics,
        **common,
    )


def _finite(metrics: Mapping[str, float] | None) -> dict[str, float | None]:
    out = {}
    for key, value in (metrics or {}).items():
        ok = isinstance(value, (int, float)) and math.isfinite(float(value))
        out[key] = float(value) if ok else None
    return out

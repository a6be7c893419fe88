"""Off-policy estimates of a target policy's value from logged decisions.

Every logged decision ``i`` was made by a logging policy that picked arm ``a_i`` with
probability ``logging_propensity[i]`` and observed ``reward[i]``. The target policy
would have picked the same arm with probability ``target_probability[i]``. The
importance weight ``w_i = target_probability[i] / logging_propensity[i]`` re-weights
the logged rewards to what the target policy would have earned.

- :func:`ips_estimate` — inverse propensity scoring: unbiased, high variance.
- :func:`snips_estimate` — self-normalized IPS: divides by the mean weight; slightly
  biased, much lower variance when weights are large or skewed.
- :func:`doubly_robust_estimate` — the reward model's value of the target policy plus an
  IPS correction of the model's error on the logged arm; unbiased when either the
  propensities or the reward model are right, and lower variance than IPS when the
  model is good.

Each returns a :class:`PolicyValueEstimate` with a standard error and a
normal-approximation confidence interval. Weights can be clipped at ``clip`` (this
trades a downward bias for variance; the number of clipped weights is reported).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True)
class PolicyValueEstimate:
    """An estimate of the expected reward per decision under the target policy.

    Attributes
    ----------
    estimator : str
        ``"ips"``, ``"snips"`` or ``"dr"``.
    value : float
        Estimated expected reward per decision.
    std_error : float
        Standard error of ``value`` (sample standard deviation of the per-decision
        terms over ``sqrt(n)``; delta method for SNIPS).
    ci_low, ci_high : float
        Normal-approximation confidence interval at ``confidence``.
    confidence : float
        Coverage of the interval, e.g. 0.95.
    n : int
        Number of logged decisions.
    effective_sample_size : float
        ``sum(w)**2 / sum(w**2)``: how many decisions the weights are worth; far below
        ``n`` means the target policy strays from the logging policy.
    n_clipped : int
        Number of weights capped at ``clip``.
    """

    estimator: str
    value: float
    std_error: float
    ci_low: float
    ci_high: float
    confidence: float
    n: int
    effective_sample_size: float
    n_clipped: int

    def covers(self, true_value: float) -> bool:
        """True when ``true_value`` lies inside the confidence interval."""
        return self.ci_low <= true_value <= self.ci_high


def ips_estimate(
    rewards: np.ndarray,
    logging_propensity: np.ndarray,
    target_probability: np.ndarray,
    *,
    clip: float | None = None,
    confidence: float = 0.95,
) -> PolicyValueEstimate:
    """Inverse propensity scoring estimate of the target policy's value.

    Parameters
    ----------
    rewards : float array of shape (n,)
        Observed reward of each logged decision.
    logging_propensity : float array of shape (n,)
        Probability the logging policy gave the logged arm, in (0, 1].
    target_probability : float array of shape (n,)
        Probability the target policy gives the logged arm, in [0, 1].
    clip : float, optional
        Cap on the importance weights; ``None`` for no cap.
    confidence : float
        Coverage of the confidence interval, in (0, 1).

    Returns
    -------
    PolicyValueEstimate
    """
    r, p_log, p_tgt = _check_logs(rewards, logging_propensity, target_probability)
    weights, n_clipped = _weights(p_log, p_tgt, clip)
    terms = weights * r
    return _from_terms("ips", terms, weights, n_clipped, confidence)


def snips_estimate(
    rewards: np.ndarray,
    logging_propensity: np.ndarray,
    target_probability: np.ndarray,
    *,
    clip: float | None = None,
    confidence: float = 0.95,
) -> PolicyValueEstimate:
    """Self-normalized IPS: ``sum(w * r) / sum(w)``.

    Parameters are those of :func:`ips_estimate`. The standard error comes from the
    delta method: ``std(w * (r - value)) / (mean(w) * sqrt(n))``.

    Returns
    -------
    PolicyValueEstimate
    """
    r, p_log, p_tgt = _check_logs(rewards, logging_propensity, target_probability)
    weights, n_clipped = _weights(p_log, p_tgt, clip)
    _check_confidence(confidence)
    mean_weight = float(weights.mean())
    if mean_weight <= 0.0:
        raise ValueError("target_probability is zero on every logged arm: SNIPS is undefined")
    value = float((weights * r).sum() / weights.sum())
    residual_terms = weights * (r - value) / mean_weight
    std_error = float(residual_terms.std(ddof=1) / np.sqrt(r.size))
    return _estimate("snips", value, std_error, confidence, weights, n_clipped)


def doubly_robust_estimate(
    rewards: np.ndarray,
    logging_propensity: np.ndarray,
    target_probability: np.ndarray,
    model_reward_logged: np.ndarray,
    model_value_target: np.ndarray,
    *,
    clip: float | None = None,
    confidence: float = 0.95,
) -> PolicyValueEstimate:
    """Doubly robust estimate: model value plus an importance-weighted correction.

    Per decision: ``model_value_target[i] + w_i * (rewards[i] - model_reward_logged[i])``.

    Parameters
    ----------
    rewards, logging_propensity, target_probability : float arrays of shape (n,)
        As in :func:`ips_estimate`.
    model_reward_logged : float array of shape (n,)
        The reward model's prediction for the logged arm of each decision.
    model_value_target : float array of shape (n,)
        The reward model's expected reward under the target policy for each decision's
        context: ``sum_a pi_target(a | x_i) * model(x_i, a)``.
    clip : float, optional
        Cap on the importance weights.
    confidence : float
        Coverage of the confidence interval.

    Returns
    -------
    PolicyValueEstimate
    """
    r, p_log, p_tgt = _check_logs(rewards, logging_propensity, target_probability)
    q_logged = _as_vector("model_reward_logged", model_reward_logged, r.size)
    q_target = _as_vector("model_value_target", model_value_target, r.size)
    weights, n_clipped = _weights(p_log, p_tgt, clip)
    terms = q_target + weights * (r - q_logged)
    return _from_terms("dr", terms, weights, n_clipped, confidence)


# -- helpers -----------------------------------------------------------------------------


def _as_vector(name: str, values: np.ndarray, n: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if n is not None and array.size != n:
        raise ValueError(f"{name} has {array.size} values, expected {n} (one per logged decision)")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _check_logs(
    rewards: np.ndarray, logging_propensity: np.ndarray, target_probability: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = _as_vector("rewards", rewards)
    if r.size < 2:
        raise ValueError(f"rewards needs at least 2 logged decisions for a standard error, got {r.size}")
    p_log = _as_vector("logging_propensity", logging_propensity, r.size)
    p_tgt = _as_vector("target_probability", target_probability, r.size)
    if ((p_log <= 0.0) | (p_log > 1.0)).any():
        raise ValueError("logging_propensity must lie in (0, 1]: a zero propensity cannot be re-weighted")
    if ((p_tgt < 0.0) | (p_tgt > 1.0)).any():
        raise ValueError("target_probability must lie in [0, 1]")
    return r, p_log, p_tgt


def _weights(p_log: np.ndarray, p_tgt: np.ndarray, clip: float | None) -> tuple[np.ndarray, int]:
    weights = p_tgt / p_log
    if clip is None:
        return weights, 0
    if not clip > 0.0:
        raise ValueError(f"clip must be > 0, got {clip}")
    n_clipped = int((weights > clip).sum())
    return np.minimum(weights, clip), n_clipped


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def _from_terms(
    name: str, terms: np.ndarray, weights: np.ndarray, n_clipped: int, confidence: float
) -> PolicyValueEstimate:
    _check_confidence(confidence)
    value = float(terms.mean())
    std_error = float(terms.std(ddof=1) / np.sqrt(terms.size))
    return _estimate(name, value, std_error, confidence, weights, n_clipped)


def _estimate(
    name: str, value: float, std_error: float, confidence: float, weights: np.ndarray, n_clipped: int
) -> PolicyValueEstimate:
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    sum_sq = float((weights**2).sum())
    ess = float(weights.sum() ** 2 / sum_sq) if sum_sq > 0 else 0.0
    return PolicyValueEstimate(
        estimator=name,
        value=value,
        std_error=std_error,
        ci_low=value - z * std_error,
        ci_high=value + z * std_error,
        confidence=confidence,
        n=int(weights.size),
        effective_sample_size=ess,
        n_clipped=n_clipped,
    )

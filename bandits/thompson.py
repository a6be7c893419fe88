"""Beta-Bernoulli Thompson sampling per segment x arm.

Posterior of arm ``k`` in segment ``s``::

    Beta(prior_alpha[s, k] + rewards[s, k], prior_beta[s, k] + pulls[s, k] - rewards[s, k])

Priors
------
``"flat"``
    ``Beta(prior_alpha, prior_beta)`` everywhere, or the arrays given to
    :meth:`ThompsonSampling.set_prior` (cold start from historical statistics, see
    :func:`prior_from_stats`).
``"pooled"`` (default)
    Empirical Bayes: each segment's prior adds the evidence of the *other* segments
    for the same arm, scaled down to at most ``prior_strength`` pseudo-observations.
    With ``prior_strength=None`` the strength is estimated from the data by the
    method of moments (:func:`empirical_bayes_strength`): segments that do not differ
    pool everything -- segment-level Thompson sampling then draws from exactly the
    posterior of plain (one-segment) Thompson sampling, so it cannot lose to it --
    while segments that do differ keep their own evidence. With one segment it is
    the flat prior.

Propensities
------------
The probability that Thompson sampling picks arm ``k`` is the posterior
probability that ``k`` is best, estimated by Monte Carlo with ``draws`` posterior
samples; its standard error is ``sqrt(p (1 - p) / draws) <= 0.5 / sqrt(draws)``
(0.016 for the default 1000 draws, 0.035 for 200). The arm is then *sampled from
that Monte Carlo estimate* -- equivalently, each customer takes the argmax of one
of the ``draws`` posterior samples picked uniformly at random -- so every choice is
an exact Thompson draw marginally, and the logged propensity is exactly the
probability the arm was drawn with (never 0 for the drawn arm).

Throughput: customers with the same segment and allowed-arm mask share one
posterior, so without a model the Monte Carlo vector is computed once per unique
(segment, mask) group per ``decide`` call and its customers sample from it
categorically -- the same distribution as per-customer Thompson draws up to the
Monte Carlo error, at the cost of ``groups x draws x arms`` instead of
``customers x draws x arms``. The ``draws`` posterior samples of a segment are drawn
once per call and shared by its mask groups. With per-customer model scores (the
blend of :mod:`bandits.hybrid`) every customer gets its own Monte Carlo vector from
``blend_draws`` samples of the segment's posterior (chunked, ``customers x
blend_draws x arms`` work at most); fewer draws there keep the cost down, with the
accuracy above. Arms that cannot win any sample for a customer (their best sample
is below another arm's worst) are skipped exactly, which cuts the work several-fold
once posteriors have concentrated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits._arrays import MC_BUDGET, group_rows, tie_mask
from bandits._params import discount, flag, non_negative, one_of, positive, positive_int
from bandits.base import (
    SELECTED_BY_BLEND,
    STRATEGY_THOMPSON,
    Choice,
    ChunkedPolicy,
    Plan,
)

PRIORS = ("pooled", "flat")


@dataclass(frozen=True)
class ThompsonParams:
    """Hyperparameters of :class:`ThompsonSampling`.

    Attributes
    ----------
    prior : {"pooled", "flat"}
        Prior family, see the module docstring.
    prior_alpha, prior_beta : float > 0
        Base Beta prior (pseudo-successes and pseudo-failures).
    prior_strength : float >= 0, inf, or None
        Cap on the pseudo-observations the pooled prior borrows from other segments;
        None estimates it from the data (empirical Bayes), inf borrows everything.
    gamma : float in (0, 1]
        Discount: counts are multiplied by ``gamma`` before each update (each
        :meth:`~bandits.base.Policy.partial_fit` call); 1 keeps all evidence.
    draws : int >= 1
        Monte Carlo posterior samples per (segment, mask) group.
    blend_draws : int >= 1
        Monte Carlo samples per customer when model scores enter the value.
    reuse_draws : bool
        Keep the posterior samples and Monte Carlo results across calls until the
        statistics change, so repeated single-customer decisions (the real-time API)
        skip the sampling. Choices stay exact Thompson draws with exact propensities,
        but calls then share samples and depend on call order (by default they are
        shared within one call only, which a seed reproduces).
    """

    prior: str = "pooled"
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    prior_strength: float | None = None
    gamma: float = 1.0
    draws: int = 1000
    blend_draws: int = 200
    reuse_draws: bool = False

    def __post_init__(self) -> None:
        one_of("prior", self.prior, PRIORS)
        positive("prior_alpha", self.prior_alpha)
        positive("prior_beta", self.prior_beta)
        if self.prior_strength is not None:
            non_negative("prior_strength", self.prior_strength, allow_inf=True)
        discount("gamma", self.gamma)
        positive_int("draws", self.draws)
        positive_int("blend_draws", self.blend_draws)
        flag("reuse_draws", self.reuse_draws)


def prior_from_stats(
    pulls: np.ndarray,
    rewards: np.ndarray,
    strength: float,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A Beta prior built from historical statistics, for a cold start.

    The historical evidence keeps its mean but counts for at most ``strength``
    pseudo-observations per cell, so old data guides without dominating.

    Parameters
    ----------
    pulls, rewards : arrays of the same shape, e.g. (n_segments, n_arms) or (n_arms,)
        Historical sends and the sum of their rewards.
    strength : float >= 0 (inf keeps all the evidence)
    prior_alpha, prior_beta : float > 0
        The base prior the evidence is added to.

    Returns
    -------
    alpha, beta : float64 arrays of the shape of ``pulls``
    """
    pulls = np.asarray(pulls, dtype=np.float64)
    rewards = np.asarray(rewards, dtype=np.float64)
    if pulls.shape != rewards.shape:
        raise ValueError(f"pulls and rewards must have the same shape, got {pulls.shape} and {rewards.shape}")
    if (pulls < 0).any() or (rewards < 0).any() or (rewards > pulls + 1e-9).any():
        raise ValueError("stats must satisfy 0 <= rewards <= pulls")
    non_negative("strength", strength, allow_inf=True)
    positive("prior_alpha", prior_alpha)
    positive("prior_beta", prior_beta)
    scale = _shrink(pulls, float(strength))
    failures = np.clip(pulls - rewards, 0.0, None)
    return prior_alpha + scale * rewards, prior_beta + scale * failures


def pooled_posterior(
    pulls: np.ndarray,
    rewards: np.ndarray,
    prior_alpha: float | np.ndarray,
    prior_beta: float | np.ndarray,
    *,
    pooled: bool = True,
    strength: float | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Beta posterior per (segment, arm) under the pooled empirical-Bayes prior.

    The base prior plus the other segments' evidence for the same arm (leave-one-out,
    so a segment's own evidence does not count twice), scaled down to at most
    ``strength`` pseudo-observations. Thompson sampling, epsilon-greedy and the
    lifecycle all rank arms by this posterior.

    Parameters
    ----------
    pulls, rewards : arrays of shape (n_segments, n_arms)
    prior_alpha, prior_beta : float > 0, or arrays broadcastable to (n_segments, n_arms)
    pooled : bool
        False (or a single segment): the base prior alone, no borrowing.
    strength : float >= 0, inf, or None
        None: :func:`empirical_bayes_strength` of the data.

    Returns
    -------
    alpha, beta : float64 arrays of shape (n_segments, n_arms)
        Posterior parameters; ``alpha + beta - prior_alpha - prior_beta`` is the
        segment's effective number of observations (own plus borrowed).
    strength : float
        The strength used (NaN without pooling).
    """
    pulls = np.asarray(pulls, dtype=np.float64)
    rewards = np.asarray(rewards, dtype=np.float64)
    used = float("nan")
    prior_a = np.broadcast_to(np.asarray(prior_alpha, dtype=np.float64), pulls.shape)
    prior_b = np.broadcast_to(np.asarray(prior_beta, dtype=np.float64), pulls.shape)
    if pooled and pulls.shape[0] > 1:
        used = empirical_bayes_strength(pulls, rewards) if strength is None else float(strength)
        other_pulls = np.clip(pulls.sum(axis=0) - pulls, 0.0, None)
        other_rewards = np.clip(rewards.sum(axis=0) - rewards, 0.0, other_pulls)
        scale = _shrink(other_pulls, used)
        prior_a = prior_a + scale * other_rewards
        prior_b = prior_b + scale * (other_pulls - other_rewards)
    alpha = prior_a + rewards
    beta = prior_b + np.clip(pulls - rewards, 0.0, None)
    return alpha, beta, used


def _shrink(pulls: np.ndarray, strength: float) -> np.ndarray:
    """Factor that scales ``pulls`` down to at most ``strength`` pseudo-observations."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pulls > strength, strength / np.maximum(pulls, 1e-300), 1.0)


def empirical_bayes_strength(pulls: np.ndarray, rewards: np.ndarray) -> float:
    """Method-of-moments estimate of how many observations a segment's prior is worth.

    Model: segment rates of arm ``k`` are drawn from a Beta with the arm's pooled
    mean ``m_k`` and concentration ``kappa`` (common to all arms). Under that model
    the chi-square statistic ``X_k = sum_s n_sk (p_sk - m_k)^2 / (m_k (1 - m_k))``
    has expectation ``(S_k - 1) + rho (n_k - sum_s n_sk^2 / n_k)`` with
    ``rho = 1 / (kappa + 1)``; solving over all arms gives ``rho`` and ``kappa``.

    Parameters
    ----------
    pulls, rewards : arrays of shape (n_segments, n_arms)

    Returns
    -------
    float
        ``kappa`` >= 0, or inf when the segments show no heterogeneity beyond noise
        (or there is not yet data to tell). Rewards in [0, 1] that are not 0/1 have
        less than Bernoulli noise, which biases the estimate towards pooling.
    """
    pulls = np.asarray(pulls, dtype=np.float64)
    rewards = np.asarray(rewards, dtype=np.float64)
    n_k = pulls.sum(axis=0)
    r_k = rewards.sum(axis=0)
    seen = pulls > 0
    s_k = seen.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        m_k = r_k / n_k
        p_sk = np.where(seen, rewards / pulls, 0.0)
        var_k = m_k * (1.0 - m_k)
        # Arms observed in 2+ segments with a mean strictly inside (0, 1) carry information.
        use = (s_k >= 2) & (var_k > 0)
        if not use.any():
            return float("inf")
        x_k = (pulls * (p_sk - m_k) ** 2).sum(axis=0) / var_k
        spread_k = n_k - (pulls**2).sum(axis=0) / n_k
    num = float((x_k[use] - (s_k[use] - 1)).sum())
    den = float(spread_k[use].sum())
    if den <= 0 or num <= 0:
        return float("inf")
    rho = num / den
    return max(1.0 / rho - 1.0, 0.0)


@dataclass
class GroupDraws:
    """Monte Carlo results for customers grouped by (segment, allowed mask).

    Attributes
    ----------
    inverse : int array of shape (m,)
        Group of each customer.
    pool : int array of shape (g,)
        Row of ``theta`` (the group's segment) for each group.
    theta : float array of shape (s, draws, n_arms)
        Posterior samples of the segments present.
    best : int array of shape (g, draws)
        Argmax over the group's allowed arms of each sample.
    probs : float64 array of shape (g, n_arms)
        Share of samples in which each arm is best.
    greedy : bool array of shape (g, n_arms)
        Allowed arms with the highest posterior mean.
    """

    inverse: np.ndarray
    pool: np.ndarray
    theta: np.ndarray
    best: np.ndarray
    probs: np.ndarray
    greedy: np.ndarray

    def draw(self, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pick one posterior sample per row uniformly; return (group, sample, arm)."""
        group = self.inverse[rows]
        d = np.asarray(rng.integers(self.best.shape[1], size=rows.shape[0]))
        return group, d, self.best[group, d].astype(np.int64)


class ThompsonSampling(ChunkedPolicy):
    """Beta-Bernoulli Thompson sampling per segment x arm.

    Parameters
    ----------
    n_arms, n_segments : int
    params : ThompsonParams, optional

    Attributes
    ----------
    alpha_, beta_ : float64 arrays of shape (n_segments, n_arms)
        Posterior parameters (prior plus evidence).
    prior_alpha_, prior_beta_ : float64 arrays of shape (n_segments, n_arms)
        The base prior (``params.prior_alpha``/``prior_beta`` or :meth:`set_prior`).
    prior_strength_ : float
        Strength the pooled prior used at the last update (NaN for a flat prior).
    """

    name = "thompson"
    params: ThompsonParams

    def __init__(self, n_arms: int, n_segments: int = 1, params: ThompsonParams | None = None) -> None:
        super().__init__(n_arms, n_segments)
        params = ThompsonParams() if params is None else params
        if not isinstance(params, ThompsonParams):
            raise TypeError(f"params must be ThompsonParams, got {type(params).__name__}")
        self.params = params
        shape = (self.n_segments, self.n_arms)
        self.prior_alpha_ = np.full(shape, float(params.prior_alpha))
        self.prior_beta_ = np.full(shape, float(params.prior_beta))
        # Per-call caches (kept across calls with reuse_draws): posterior samples per
        # (segment, draws) and Monte Carlo results per (segment, draws, mask).
        self._pools: dict[tuple[int, int], np.ndarray] = {}
        self._groups: dict[tuple[int, int, bytes], tuple[np.ndarray, np.ndarray]] = {}
        self._after_update()

    # -- learning -------------------------------------------------------------------
    def set_prior(self, alpha: np.ndarray, beta: np.ndarray) -> ThompsonSampling:
        """Replace the base prior, e.g. with :func:`prior_from_stats` of a past campaign.

        Parameters
        ----------
        alpha, beta : arrays of shape (n_arms,) or (n_segments, n_arms), all > 0
        """
        shape = (self.n_segments, self.n_arms)
        try:
            a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), shape).copy()
            b = np.broadcast_to(np.asarray(beta, dtype=np.float64), shape).copy()
        except ValueError:
            raise ValueError(
                f"prior arrays must have shape {(self.n_arms,)} or {shape}, "
                f"got {np.shape(alpha)} and {np.shape(beta)}"
            ) from None
        if not (np.isfinite(a).all() and np.isfinite(b).all() and (a > 0).all() and (b > 0).all()):
            raise ValueError("prior alpha and beta must be finite and > 0")
        self.prior_alpha_, self.prior_beta_ = a, b
        self._after_update()
        return self

    def _before_update(self) -> None:
        self._discount(self.params.gamma)

    def _after_update(self) -> None:
        self.alpha_, self.beta_, self.prior_strength_ = pooled_posterior(
            self.pulls_,
            self.rewards_,
            self.prior_alpha_,
            self.prior_beta_,
            pooled=self.params.prior == "pooled",
            strength=self.params.prior_strength,
        )
        self._pools.clear()
        self._groups.clear()

    # -- posterior ------------------------------------------------------------------
    def posterior_mean(self) -> np.ndarray:
        """Posterior mean reward rate, shape (n_segments, n_arms)."""
        return self.alpha_ / (self.alpha_ + self.beta_)

    def _begin_batch(self) -> None:
        pass  # the caches below fill lazily during the call

    def _end_batch(self) -> None:
        if not self.params.reuse_draws:
            self._pools.clear()
            self._groups.clear()

    def _sample_pool(
        self, segments: np.ndarray, draws: int, rng: np.random.Generator, dtype: type
    ) -> np.ndarray:
        """Posterior samples for each segment in ``segments`` (s,), shape (s, draws, n_arms).

        Drawn once per segment and call (or, with ``reuse_draws``, until the
        statistics change) and shared by all its customers.
        """
        missing = [s for s in segments.tolist() if (s, draws) not in self._pools]
        if missing:
            idx = np.asarray(missing)
            fresh = rng.beta(
                self.alpha_[idx][:, None, :], self.beta_[idx][:, None, :], size=(idx.size, draws, self.n_arms)
            )
            for i, s in enumerate(missing):  # a loop over segments, not customers
                self._pools[(s, draws)] = fresh[i]
        return np.stack([self._pools[(s, draws)] for s in segments.tolist()]).astype(dtype, copy=False)

    def group_draws(self, segments: np.ndarray, allowed: np.ndarray, rng: np.random.Generator) -> GroupDraws:
        """Monte Carlo P(arm is best) once per (segment, mask) group of the call.

        Parameters
        ----------
        segments : int array of shape (m,)
        allowed : bool array of shape (m, n_arms)
        """
        first, inverse = group_rows(segments, allowed)
        gseg, gmask = segments[first], allowed[first]
        useg, pool = np.unique(gseg, return_inverse=True)
        draws, k = self.params.draws, self.n_arms
        theta = self._sample_pool(useg, draws, rng, np.float64)
        g = first.shape[0]
        best = np.empty((g, draws), dtype=np.intp)
        probs = np.empty((g, k))
        # Groups seen earlier in the call (previous chunks) reuse their result.
        keys = [(s, draws, gmask[i].tobytes()) for i, s in enumerate(gseg.tolist())]
        todo = []
        for i, key in enumerate(keys):
            hit = self._groups.get(key)
            if hit is None:
                todo.append(i)
            else:
                best[i], probs[i] = hit
        step = max(1, MC_BUDGET // (draws * k))
        for lo in range(0, len(todo), step):
            rows = np.asarray(todo[lo : lo + step])
            vals = np.where(gmask[rows, None, :], theta[pool[rows]], -np.inf)
            top = vals.argmax(axis=2)
            counts = np.bincount((np.arange(rows.size)[:, None] * k + top).ravel(), minlength=rows.size * k)
            best[rows] = top
            probs[rows] = counts.reshape(rows.size, k) / draws
            for i in rows.tolist():
                self._groups[keys[i]] = (best[i], probs[i])
        greedy = tie_mask(self.posterior_mean()[gseg], gmask)
        return GroupDraws(inverse, pool.reshape(-1), theta, best, probs, greedy)

    # -- deciding -------------------------------------------------------------------
    def _blend_weight(self, model_proba: np.ndarray | None) -> float | None:
        """Weight of the posterior sample in the value, or None for the bandit alone."""
        return None

    def _plan(
        self,
        segments: np.ndarray,
        allowed: np.ndarray,
        model_proba: np.ndarray | None,
        rng: np.random.Generator,
        start: int,
    ) -> Plan:
        weight = self._blend_weight(model_proba)
        if weight is None or model_proba is None:
            return self._plan_bandit(segments, allowed, model_proba, rng)
        return self._plan_blend(segments, allowed, model_proba, weight, rng)

    def _plan_bandit(
        self,
        segments: np.ndarray,
        allowed: np.ndarray,
        model_proba: np.ndarray | None,
        rng: np.random.Generator,
    ) -> Plan:
        gd = self.group_draws(segments, allowed, rng)

        def sample(rows: np.ndarray, rng: np.random.Generator) -> Choice:
            group, d, arm = gd.draw(rows, rng)
            score = gd.theta[gd.pool[group], d, arm]
            p_best = gd.probs[group, arm]
            return Choice.build(
                arm,
                strategy=STRATEGY_THOMPSON,
                explored=~gd.greedy[group, arm],
                bandit_score=score,
                model_score=None if model_proba is None else model_proba[rows, arm],
                blend_score=score,
                confidence=p_best,
                bandit_confidence=p_best,
            )

        return Plan(gd.probs[gd.inverse], sample)

    def _plan_blend(
        self,
        segments: np.ndarray,
        allowed: np.ndarray,
        model_proba: np.ndarray,
        weight: float,
        rng: np.random.Generator,
    ) -> Plan:
        m, k, draws = segments.shape[0], self.n_arms, self.params.blend_draws
        useg, pool = np.unique(segments, return_inverse=True)
        # float32 halves the memory traffic of the (customers x draws x arms) temporaries.
        theta = self._sample_pool(useg, draws, rng, np.float32)
        w_theta = theta * np.float32(weight)
        offset = ((1.0 - weight) * model_proba).astype(np.float32)
        offset[~allowed] = -np.inf
        best = np.empty((m, draws), dtype=np.int16 if k < 2**15 else np.int32)
        counts = np.empty((m, k), dtype=np.int64)
        w_theta_t = np.ascontiguousarray(w_theta.transpose(0, 2, 1))
        # Candidates: arms whose best sample reaches the best worst-sample of the row.
        upper = w_theta.max(axis=1)[pool] + offset
        lower = (w_theta.min(axis=1)[pool] + offset).max(axis=1)
        n_cand = (upper >= lower[:, None]).sum(axis=1)
        # Rows sorted by candidate count, so each step scans about its rows' own count.
        order = np.argsort(n_cand, kind="stable")
        step = max(1, MC_BUDGET // (draws * k))
        for lo in range(0, m, step):
            rows = order[lo : lo + step]
            top = _blend_argmax(
                w_theta, w_theta_t, pool[rows], offset[rows], upper[rows], int(n_cand[rows].max())
            )
            best[rows] = top
            flat = (np.arange(rows.size)[:, None] * k + top).ravel()
            counts[rows] = np.bincount(flat, minlength=rows.size * k).reshape(rows.size, k)
        probs = counts / draws
        mean_value = weight * self.posterior_mean()[segments] + (1.0 - weight) * model_proba
        greedy = tie_mask(mean_value, allowed)

        def sample(rows: np.ndarray, rng: np.random.Generator) -> Choice:
            d = np.asarray(rng.integers(draws, size=rows.shape[0]))
            arm = best[rows, d].astype(np.int64)
            score = theta[pool[rows], d, arm].astype(np.float64)
            model = model_proba[rows, arm].astype(np.float64)
            p_best = probs[rows, arm]
            return Choice.build(
                arm,
                strategy=STRATEGY_THOMPSON,
                explored=~greedy[rows, arm],
                bandit_score=score,
                model_score=model,
                blend_score=weight * score + (1.0 - weight) * model,
                confidence=p_best,
                selected_by=SELECTED_BY_BLEND,
                bandit_confidence=None,
            )

        return Plan(probs, sample)


def _blend_argmax(
    w_theta: np.ndarray,
    w_theta_t: np.ndarray,
    pool: np.ndarray,
    offset: np.ndarray,
    upper: np.ndarray,
    n_cand: int,
) -> np.ndarray:
    """Best arm of every (customer, posterior sample) for the blended value.

    Computes ``argmax_k (w_theta[pool[i], d, k] + offset[i, k])`` exactly. An arm whose
    best sample cannot reach another arm's worst sample never wins, so only the
    ``n_cand`` arms with the highest upper bound are scanned: once posteriors
    concentrate that is a handful of the arms. Float32 addition is monotone, so the
    pruning never drops a winner.

    Parameters
    ----------
    w_theta : float32 array of shape (s, draws, n_arms)
        Weighted posterior samples per segment.
    w_theta_t : float32 array of shape (s, n_arms, draws)
        The same, arm-major (contiguous rows of draws for the candidate scan).
    pool : int array of shape (r,)
        Segment row of each customer.
    offset : float32 array of shape (r, n_arms)
        ``(1 - w) * model_proba``, -inf on disallowed arms.
    upper : float32 array of shape (r, n_arms)
        ``w_theta.max(axis=1)[pool] + offset``.
    n_cand : int
        Most candidates of any row (arms with ``upper`` >= the row's best lower bound).

    Returns
    -------
    int array of shape (r, draws)
    """
    k = offset.shape[1]
    if 2 * n_cand > k:  # little to prune: scan every arm at once
        vals = w_theta[pool]
        vals += offset[:, None, :]
        return vals.argmax(axis=2)
    # Running max over the candidates, best upper bound first: n_cand passes over (r, draws).
    order = np.argsort(-upper, axis=1, kind="stable")[:, :n_cand]
    cand_offset = np.take_along_axis(offset, order, axis=1)
    best_val = w_theta_t[pool, order[:, 0]] + cand_offset[:, :1]
    best_arm = np.repeat(order[:, :1], w_theta.shape[1], axis=1)
    for j in range(1, n_cand):  # a loop over candidate arms, not customers
        val = w_theta_t[pool, order[:, j]]
        val += cand_offset[:, j : j + 1]
        better = val > best_val  # strict: the earlier candidate keeps ties, like argmax
        np.maximum(val, best_val, out=best_val)
        np.copyto(best_arm, order[:, j : j + 1], where=better)
    return best_arm

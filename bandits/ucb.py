"""Upper confidence bounds per segment x arm, for daily batches as well as single decisions.

Index
-----
``index="kl"`` (default): KL-UCB (Garivier & Cappé, 2011). The index of arm ``k`` in
segment ``s`` is the largest rate ``q`` in ``[mean, 1]`` with::

    n[s, k] * KL(mean[s, k], q) <= c * ln N[s]

where ``KL(p, q)`` is the Bernoulli divergence, ``n`` the arm's pulls and ``N`` the
segment's total pulls (the theory's extra ``3 ln ln N`` is dropped, as the authors do
in practice). It is solved by bisection, vectorized over (segments x arms).

``index="ucb1"``: the classic ``mean + c * sqrt(2 ln N / n)``.

Why KL-UCB rather than UCB1 (or UCB1-Tuned / UCB-V): rewards here are rare events
(conversion rates around 3 %) in [0, 1]. UCB1's bonus ignores the scale of the
rewards: at n = 1,000 and N = 50,000 it is 0.15, five times the base rate, so its index
orders arms by how often they were pulled, not by how well they convert. The KL bound
is on the reward scale -- its width behaves like ``sqrt(2 mean (1 - mean) ln N / n)``,
0.026 in the same example -- never exceeds 1, is valid for any reward in [0, 1]
(weighted engagement too, not only 0/1 conversions), and is asymptotically optimal
for Bernoulli rewards. Variance-aware bounds (UCB1-Tuned, UCB-V) also narrow the bonus
but lean on a variance estimated from a handful of conversions and keep a
``3 ln N / n`` term that dominates at these counts. And the KL bound inverts in closed
form -- the pulls at which the index falls to a level ``L`` are ``c ln N / KL(mean, L)``
-- which makes the batch allocation below exact and cheap. ``c`` scales the
exploration in both indices; ``c = 0`` is greedy.

Arms never tried in the segment have an infinite index: they go first.

Batch allocation
----------------
A daily batch holds thousands of customers of a segment, decided at once from the same
statistics. Sending all of them the one arm with the top index (``allocation="argmax"``,
the textbook rule) turns UCB into a round robin of whole batches. With
``allocation="fill"`` (default) the batch is spread by *hallucinated pulls*: customers
are handed out one at a time to the arm with the top index, and each hand-out is
counted as a pull observed at the arm's current mean, which lowers that arm's index
(an untried arm first gets one pull, then is hallucinated at its segment's mean
reward). The result is water-filling: arms receive sends until their indices fall to a
common level ``L``, and an arm whose index is below ``L`` gets none. A clearly best arm
keeps its index above everyone else's for as many pulls as the batch has and gets the
batch; near-tied arms share it; with one customer it is the plain argmax (exact ties
shared uniformly). It is computed in closed form, not customer by customer: for a level
``L`` each arm's number of sends is ``ceil(pulls_to_reach(L) - n)``, and ``L`` is found
by bisection, vectorized over segments; sends at the final level (exact ties, within
``1e-12``) are shared evenly, so allocations can be fractional.

Eligibility masks: customers with the same segment and allowed arms form a group, and
groups allocate one after the other, each on top of the hallucinated pulls of those
before it -- most restricted group first, as a customer with fewer options should
choose first. This is the one-at-a-time rule above with customers ordered by group.
Past 32 groups in a segment, the remaining groups allocate side by side from the same
state. Batches longer than one chunk (``chunk_size``) carry their hallucinated pulls
from chunk to chunk within a call. The index's ``N`` stays the segment's real total
during the allocation. Inside ``interleaved`` (or the lifecycle's initialization mix)
the policy plans as if it decided every row of the chunk, so it spreads a little more
than its share needs.

Propensities
------------
A group's allocation, divided by the group's size, is the probability of each arm for
each of its customers: exact, deterministic given the statistics and the batch, and
zero outside the allowed arms. Customers get their arms by systematic sampling in a
random order: the group's rows are shuffled, row ``i`` of ``m`` takes the arm whose
cumulative share covers ``(i + u) / m`` for one uniform ``u`` per group. Each customer's
arm then has exactly the logged probability, and the counts per arm match the
allocation up to rounding. With ``allocation="argmax"`` the policy is deterministic
except for ties: the propensity is ``1 / #tied-best`` (1 without ties).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits._arrays import TIE_TOL, group_rows, sample_categorical, tie_mask, uniform_over
from bandits._params import discount, flag, non_negative, one_of
from bandits.base import SELECTED_BY_BANDIT, SELECTED_BY_BLEND, STRATEGY_UCB, Choice, ChunkedPolicy, Plan

INDICES = ("kl", "ucb1")
ALLOCATIONS = ("fill", "argmax")

#: Mask groups of a segment allocated one after the other; later ones side by side.
MAX_ROUNDS = 32
_KL_STEPS = 60  # bisection steps of kl_ucb: 2**-60 is below the float spacing near 1
_FILL_STEPS = 200  # upper bound on the bisection steps of the water level
_Q_EPS = 1e-15  # KL(p, q) is evaluated with q in [eps, 1 - eps]


@dataclass(frozen=True)
class UCBParams:
    """Hyperparameters of :class:`UCB`.

    Attributes
    ----------
    c : float >= 0
        Scale of the exploration: the budget ``c * ln N`` of the KL index, or the
        width of the UCB1 bonus (1 is UCB1). 0 is greedy.
    pooled : bool
        Ignore segments: one index from the statistics of all segments.
    gamma : float in (0, 1]
        Discount applied to the counts before each update (discounted UCB).
    index : {"kl", "ucb1"}
        KL-UCB (default) or UCB1, see the module docstring.
    allocation : {"fill", "argmax"}
        Spread a batch by hallucinated pulls (default), or send it all to the top index.
    count_pending : bool
        Count the sends still pending (:meth:`Policy.set_pending`) as pulls at the arm's
        mean (default); False ignores them, as UCB did before.
    """

    c: float = 1.0
    pooled: bool = False
    gamma: float = 1.0
    index: str = "kl"
    allocation: str = "fill"
    count_pending: bool = True

    def __post_init__(self) -> None:
        non_negative("c", self.c)
        flag("pooled", self.pooled)
        flag("count_pending", self.count_pending)
        discount("gamma", self.gamma)
        one_of("index", self.index, INDICES)
        one_of("allocation", self.allocation, ALLOCATIONS)


# -- the index ------------------------------------------------------------------------
def bernoulli_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``KL(Bernoulli(p) || Bernoulli(q))``, elementwise (broadcast), with ``q`` kept in (0, 1).

    ``p`` must lie in [0, 1]. Written with ``log1p`` so that it stays accurate when ``q``
    is close to ``p``.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.minimum(np.maximum(np.asarray(q, dtype=np.float64), _Q_EPS), 1.0 - _Q_EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(p > 0, p * np.log1p((q - p) / p), 0.0)
        second = np.where(p < 1, (1.0 - p) * np.log1p((p - q) / (1.0 - p)), 0.0)
    out: np.ndarray = np.maximum(-(first + second), 0.0)
    return out


def kl_ucb(mean: np.ndarray, pulls: np.ndarray, budget: np.ndarray | float) -> np.ndarray:
    """The KL upper confidence bound, elementwise (broadcast).

    Parameters
    ----------
    mean : float array in [0, 1]
    pulls : float array > 0 (0 gives 1)
    budget : float array or float >= 0
        ``c * ln N``.

    Returns
    -------
    float64 array
        The largest ``q`` in ``[mean, 1]`` with ``pulls * KL(mean, q) <= budget``,
        from below to within ``2**-60``: never below ``mean``, never above 1.
    """
    mean, pulls, budget = np.broadcast_arrays(
        np.clip(np.asarray(mean, dtype=np.float64), 0.0, 1.0),
        np.asarray(pulls, dtype=np.float64),
        np.asarray(budget, dtype=np.float64),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.where(pulls > 0, budget / np.where(pulls > 0, pulls, 1.0), np.inf)
    lo = mean.copy()
    hi = np.ones_like(lo)
    for _ in range(_KL_STEPS):
        mid = 0.5 * (lo + hi)
        ok = bernoulli_kl(mean, mid) <= target
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return lo


def _index(kind: str, mean: np.ndarray, pulls: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Index of arms with these means and pulls (> 0); ``budget`` is c ln N (kl) or 2 c^2 ln N."""
    if kind == "kl":
        return kl_ucb(mean, pulls, budget)
    return mean + np.sqrt(budget / pulls)


def pulls_to_reach(kind: str, mean: np.ndarray, level: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Pulls ``n*`` at which the index falls to ``level``: ``index(mean, n) > level`` iff ``n < n*``.

    Elementwise (broadcast). ``inf`` where the index never falls to ``level`` (it is
    below the mean, or at the mean with a positive budget); 0 where it never exceeds it.
    ``budget`` is ``c ln N`` for ``kind="kl"`` and ``2 c^2 ln N`` for ``"ucb1"``.
    """
    mean = np.asarray(mean, dtype=np.float64)
    level = np.asarray(level, dtype=np.float64)
    budget = np.asarray(budget, dtype=np.float64)
    if kind == "kl":
        divergence = bernoulli_kl(mean, level)
        stuck = mean >= 1.0  # the KL index of a mean of 1 is 1 whatever the pulls
    else:
        divergence = (level - mean) ** 2
        stuck = np.zeros(mean.shape, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        above = np.where(divergence > 0, budget / np.where(divergence > 0, divergence, 1.0), np.inf)
    at_mean = np.where((budget > 0) & ~stuck, np.inf, 0.0)
    if kind == "kl":
        above = np.where(level >= 1.0, 0.0, above)  # the KL index never exceeds 1
    below = np.where(level < mean, np.inf, at_mean)
    out: np.ndarray = np.where(level > mean, np.where(budget > 0, above, 0.0), below)
    return out


# -- the batch allocation -------------------------------------------------------------
def fill_allocation(
    kind: str,
    allowed: np.ndarray,
    untried: np.ndarray,
    mean: np.ndarray,
    pulls: np.ndarray,
    budget: np.ndarray,
    m: np.ndarray,
) -> np.ndarray:
    """Water-fill ``m`` sends per row over the allowed arms by hallucinated pulls.

    Hand the sends out one at a time to the arm with the top index, counting each as a
    pull at the arm's mean; an ``untried`` arm has an infinite index for its first send.
    Computed for all rows at once by bisection on the common level of the indices.

    Parameters
    ----------
    kind : {"kl", "ucb1"}
    allowed, untried : bool arrays of shape (r, n_arms)
        Each row needs an allowed arm.
    mean : float array of shape (r, n_arms)
        Mean the pulls are hallucinated at (for untried arms: after their first send).
    pulls : float array of shape (r, n_arms)
        Pulls so far (real plus hallucinated); ignored for untried arms.
    budget : float array of shape (r,)
        ``c ln N`` (kl) or ``2 c^2 ln N`` (ucb1).
    m : float array of shape (r,)
        Sends to allocate, >= 1.

    Returns
    -------
    float64 array of shape (r, n_arms)
        Sends per arm: zero on disallowed arms, rows sum to ``m``. Integer but where
        sends at the final level are shared between (near-)tied arms.
    """
    allowed = np.asarray(allowed, dtype=bool)
    forced = allowed & np.asarray(untried, dtype=bool)
    mean = np.asarray(mean, dtype=np.float64)
    base = np.where(forced, 0.0, np.asarray(pulls, dtype=np.float64))
    budget = np.asarray(budget, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    r, k = allowed.shape
    out = np.zeros((r, k))
    if r == 0:
        return out
    n_forced = forced.sum(axis=1).astype(np.float64)
    rest = m - n_forced  # sends left once every untried arm had its first one

    # 1. More untried arms than sends: the sends go to them, evenly.
    only_forced = rest <= 0
    if only_forced.any():
        out[only_forced] = forced[only_forced] * (m / np.maximum(n_forced, 1.0))[only_forced, None]

    # 2. Indices that never fall (no exploration budget, or a KL mean of 1): after the
    #    first sends of the untried arms, the rest goes to the arms at the top, evenly.
    masked_mean = np.where(allowed, mean, -np.inf)
    stuck = allowed & (mean >= 1.0) if kind == "kl" else np.zeros_like(allowed)
    flat = ~only_forced & ((budget <= 0) | stuck.any(axis=1))
    if flat.any():
        top = np.where(
            (budget <= 0)[:, None],
            allowed & (masked_mean >= masked_mean.max(axis=1, keepdims=True) - TIE_TOL),
            stuck,
        )[flat]
        out[flat] = forced[flat] + rest[flat, None] * top / top.sum(axis=1, keepdims=True)

    # 3. The general case: bisection on the level L.
    rows = np.flatnonzero(~only_forced & ~flat)
    if rows.size:
        out[rows] = _fill_by_level(
            kind, allowed[rows], forced[rows], mean[rows], base[rows], budget[rows], m[rows]
        )
    return out


def _fill_by_level(
    kind: str,
    allowed: np.ndarray,
    forced: np.ndarray,
    mean: np.ndarray,
    base: np.ndarray,
    budget: np.ndarray,
    m: np.ndarray,
) -> np.ndarray:
    """Case 3 of :func:`fill_allocation`: every allowed index falls with more pulls."""
    b = budget[:, None]

    def sends_above(level: np.ndarray) -> np.ndarray:
        """Per arm, the hallucinated sends whose index before the send exceeds ``level``."""
        target = pulls_to_reach(kind, mean, level[:, None], b)
        with np.errstate(invalid="ignore"):
            count = np.where(
                forced, np.maximum(1.0, np.ceil(target)), np.maximum(0.0, np.ceil(target - base))
            )
        return np.where(allowed, count, 0.0)

    # Every index decreases towards its mean: the level lies between the highest mean
    # (infinitely many sends above it) and a bound on the highest first finite index
    # (only the untried arms' first sends above it, fewer than m). For KL the bound is
    # Pinsker's, KL(p, q) >= 2 (q - p)^2, capped at 1.
    first_pulls = np.where(forced | ~allowed, 1.0, base)
    if kind == "kl":
        bound = np.minimum(mean + np.sqrt(b / (2.0 * first_pulls)), 1.0)
    else:
        bound = mean + np.sqrt(b / first_pulls)
    hi = np.where(allowed, bound, -np.inf).max(axis=1) + TIE_TOL
    lo = np.where(allowed, mean, -np.inf).max(axis=1)
    for _ in range(_FILL_STEPS):
        if (hi - lo <= TIE_TOL).all():
            break
        mid = 0.5 * (lo + hi)
        total = sends_above(mid).sum(axis=1)
        over = total > m
        exact = total == m  # the level separates the m-th send from the next: done
        lo = np.where(exact, mid, np.where(over, mid, lo))
        hi = np.where(over, hi, mid)
    sends = sends_above(hi)
    # The sends left are those at the level (values in (lo, hi]): tied, shared evenly.
    left = m - sends.sum(axis=1)
    extra = sends_above(lo) - sends
    unbounded = np.isinf(extra)
    weight = np.where(unbounded.any(axis=1, keepdims=True), unbounded, np.where(unbounded, 0.0, extra))
    total = weight.sum(axis=1, keepdims=True)
    share = np.where(total > 0, weight / np.where(total > 0, total, 1.0), 0.0)
    out: np.ndarray = sends + np.maximum(left, 0.0)[:, None] * share
    return out


def sample_systematic(probs: np.ndarray, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One arm per row: rows of a group share ``probs[group]`` and are sampled systematically.

    The rows of each group are put in a random order; the ``i``-th of ``m`` takes the arm
    whose cumulative probability covers ``(i + u) / m``, one uniform ``u`` per group. Each
    row gets arm ``a`` with probability exactly ``probs[group, a]``; the counts per arm
    are those probabilities times ``m``, rounded up or down.

    Parameters
    ----------
    probs : float array of shape (g, n_arms)
        Rows sum to 1.
    group : int array of shape (r,)
        Group of each row.
    rng : numpy.random.Generator

    Returns
    -------
    int64 array of shape (r,)
    """
    r = group.shape[0]
    if r == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.asarray(rng.random(r)), group))
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, r])
    position = np.arange(r) - np.repeat(starts, sizes)
    u = np.repeat(rng.random(starts.shape[0]), sizes)
    x = (position + u) / np.repeat(sizes, sizes)
    cdf = np.cumsum(probs, axis=1)[g]
    arm = (cdf <= (x * cdf[:, -1])[:, None]).sum(axis=1)
    # Never an arm of probability 0, whatever the rounding: the last positive arm at most.
    p = probs[g]
    last = p.shape[1] - 1 - np.argmax(p[:, ::-1] > 0, axis=1)
    out = np.empty(r, dtype=np.int64)
    out[order] = np.minimum(arm, last)
    return out


class UCB(ChunkedPolicy):
    """KL-UCB (or UCB1) per segment x arm, batches spread by hallucinated pulls.

    Parameters
    ----------
    n_arms, n_segments : int
    params : UCBParams, optional

    Attributes
    ----------
    index_ : float64 array of shape (n_segments, n_arms)
        The index, the pending sends (:meth:`set_pending`) counted as pulls at the arm's mean;
        ``inf`` for arms with neither matured nor pending sends.
    mean_ : float64 array of shape (n_segments, n_arms)
        Empirical mean reward (0 for untried arms).
    tried_ : bool array of shape (n_segments, n_arms)
    """

    name = "ucb"
    params: UCBParams

    def __init__(self, n_arms: int, n_segments: int = 1, params: UCBParams | None = None) -> None:
        super().__init__(n_arms, n_segments)
        params = UCBParams() if params is None else params
        if not isinstance(params, UCBParams):
            raise TypeError(f"params must be UCBParams, got {type(params).__name__}")
        self.params = params
        self._carry: np.ndarray | None = None
        self._after_update()

    def _before_update(self) -> None:
        self._discount(self.params.gamma)

    def _after_update(self) -> None:
        pulls, rewards = self.pulls_, self.rewards_
        if self.params.pooled:
            pulls = np.broadcast_to(pulls.sum(axis=0), pulls.shape)
            rewards = np.broadcast_to(rewards.sum(axis=0), rewards.shape)
        tried = pulls > 0
        safe = np.where(tried, pulls, 1.0)
        total = pulls.sum(axis=1)
        # ln N < 0 when discounting leaves fewer than one pull in total: no bonus then.
        log_n = np.log(np.maximum(total, 1.0))
        c = float(self.params.c)
        self.mean_ = np.where(tried, rewards / safe, 0.0)
        if self.params.index == "kl":
            self._budget = c * log_n
            bound = kl_ucb(self.mean_, safe, self._budget[:, None])
        else:
            self._budget = 2.0 * c * c * log_n
            bound = self.mean_ + c * np.sqrt(2.0 * log_n[:, None] / safe)
        self.index_ = np.where(tried, bound, np.inf)
        self.tried_ = tried
        self._pulls = np.array(pulls, dtype=np.float64)
        # Untried arms are hallucinated at the segment's mean reward.
        self._prior_mean = np.where(total > 0, rewards.sum(axis=1) / np.maximum(total, 1e-300), 0.0)
        # Pending sends are pulls already hallucinated before any batch (N stays the matured total).
        pending = getattr(self, "pending_", np.zeros_like(self._pulls))
        if not self.params.count_pending:
            pending = np.zeros_like(self._pulls)
        self._pending = np.broadcast_to(pending.sum(axis=0), pending.shape) if self.params.pooled else pending
        self._index_matured = self.index_
        if self._pending.any():
            self.index_ = self._moved_index(np.zeros_like(self._pulls))

    def _rng_for_probabilities(self, rng: np.random.Generator | None) -> np.random.Generator:
        return np.random.default_rng(0) if rng is None else rng  # exact: rng unused

    def _begin_batch(self) -> None:
        self._carry = np.zeros((self.n_segments, self.n_arms))

    def _end_batch(self) -> None:
        self._carry = None

    def _blend_weight(self, model_proba: np.ndarray | None) -> float | None:
        """Weight of the (capped) index in the value, or None for the bandit alone."""
        return None

    # -- hallucinated pulls -------------------------------------------------------------
    def _state(self, s: np.ndarray, hallucinated: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(untried, mean, pulls) of segments ``s`` (shape (r,)) after ``hallucinated`` (r, n_arms) pulls."""
        tried = self.tried_[s]
        hallucinated = hallucinated + self._pending[s]  # sends on their way count as pulls
        untried = ~tried & (hallucinated == 0)
        mean = np.where(tried, self.mean_[s], self._prior_mean[s, None])
        pulls = np.where(tried, self._pulls[s], 0.0) + hallucinated
        return untried, mean, pulls

    def _index_after(self, hallucinated: np.ndarray) -> np.ndarray:
        """Index of every (segment, arm) after ``hallucinated`` (n_segments, n_arms) pulls on top
        of the pending sends (:attr:`index_` is the index after the pending sends alone)."""
        if not hallucinated.any():
            return self.index_
        return self._moved_index(hallucinated)

    def _moved_index(self, hallucinated: np.ndarray) -> np.ndarray:
        untried, mean, pulls = self._state(np.arange(self.n_segments), hallucinated)
        moved = _index(self.params.index, mean, np.where(untried, 1.0, pulls), self._budget[:, None])
        counted = hallucinated + self._pending > 0
        return np.where(untried, np.inf, np.where(counted, moved, self._index_matured))

    def _allocate(
        self, segments: np.ndarray, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hallucinated-pull allocation of a chunk.

        Returns
        -------
        probs : float array of shape (g, n_arms)
            Per (segment, mask) group, the share of its customers each arm gets.
        inverse : int array of shape (m,)
            Group of each row.
        hallucinated : float array of shape (n_segments, n_arms)
            Pulls hallucinated so far in this call, this chunk included.
        """
        h = np.zeros((self.n_segments, self.n_arms)) if self._carry is None else self._carry.copy()
        first, inverse = group_rows(segments, allowed)
        g_seg, g_allowed = segments[first], allowed[first]
        size = np.bincount(inverse, minlength=first.shape[0]).astype(np.float64)
        # Rank of each group within its segment: most restricted first.
        order = np.lexsort((np.arange(first.shape[0]), g_allowed.sum(axis=1), g_seg))
        seg_sorted = g_seg[order]
        starts = np.flatnonzero(np.r_[True, seg_sorted[1:] != seg_sorted[:-1]])
        rank = np.empty(first.shape[0], dtype=np.int64)
        rank[order] = np.arange(order.shape[0]) - np.repeat(starts, np.diff(np.r_[starts, order.shape[0]]))
        rank = np.minimum(rank, MAX_ROUNDS - 1)
        alloc = np.zeros((first.shape[0], self.n_arms))
        for step in range(int(rank.max()) + 1):
            idx = np.flatnonzero(rank == step)
            s = g_seg[idx]
            untried, mean, pulls = self._state(s, h[s])
            sends = fill_allocation(
                self.params.index, g_allowed[idx], untried, mean, pulls, self._budget[s], size[idx]
            )
            alloc[idx] = sends
            np.add.at(h, s, sends)
        if self._carry is not None:
            self._carry = h
        probs = alloc / alloc.sum(axis=1, keepdims=True)
        return probs, inverse, h

    def _plan(
        self,
        segments: np.ndarray,
        allowed: np.ndarray,
        model_proba: np.ndarray | None,
        rng: np.random.Generator,
        start: int,
    ) -> Plan:
        index = self.index_[segments]
        # Reported score: the index is an upper bound on a rate in [0, 1], so cap it at 1.
        capped = np.minimum(index, 1.0)
        weight = self._blend_weight(model_proba)
        blended = weight is not None and model_proba is not None
        tried = self.tried_[segments]
        greedy = tie_mask(np.where(tried, self.mean_[segments], -np.inf), allowed & tried)
        state = np.zeros(segments.shape[0], dtype=np.int64) if self.params.pooled else segments
        m = segments.shape[0]

        group: np.ndarray | None = None  # set when sampling systematically by group
        bandit = capped
        if self.params.allocation == "argmax":
            if weight is None or model_proba is None:
                value = index
            else:
                value = weight * capped + (1.0 - weight) * model_proba
            probs = uniform_over(tie_mask(value, allowed))
        elif m == 1:
            # A batch of one: the plain argmax of the current index (ties shared).
            current = np.zeros((self.n_segments, self.n_arms)) if self._carry is None else self._carry
            after = self._index_after(current)[state]
            bandit = np.minimum(after, 1.0)
            value = after if not blended else weight * bandit + (1.0 - weight) * model_proba  # type: ignore[operator]
            probs = uniform_over(tie_mask(value, allowed))
            if self._carry is not None:
                self._carry[state[0]] += probs[0]
        else:
            group_probs, inverse, hallucinated = self._allocate(state, allowed)
            if blended and weight != 1.0:
                # The bandit's value is its index after the batch's hallucinated pulls:
                # equal (to the level) on the arms the batch explores, so the model ranks
                # those, below it elsewhere.
                bandit = np.minimum(self._index_after(hallucinated), 1.0)[state]
                value = weight * bandit + (1.0 - weight) * model_proba  # type: ignore[operator]
                probs = uniform_over(tie_mask(value, allowed))
            else:
                group = inverse
                probs = group_probs[inverse]
                value = bandit

        def sample(rows: np.ndarray, rng: np.random.Generator) -> Choice:
            if group is None:
                arm = sample_categorical(probs[rows], rng)
            else:
                arm = sample_systematic(group_probs, group[rows], rng)
            model = None if model_proba is None else model_proba[rows, arm]
            return Choice.build(
                arm,
                strategy=STRATEGY_UCB,
                explored=~greedy[rows, arm],
                bandit_score=bandit[rows, arm],
                model_score=model,
                blend_score=value[rows, arm] if blended else bandit[rows, arm],
                selected_by=SELECTED_BY_BLEND if blended else SELECTED_BY_BANDIT,
            )

        return Plan(probs, sample)

"""Array helpers shared by the policies: input checks, grouping, categorical sampling.

Private to :mod:`bandits`; everything here is vectorized over customers.
"""

from __future__ import annotations

import numpy as np

# Scores closer than this count as tied; ties are broken uniformly at random with
# exact propensities, so a deterministic policy never hides a coin flip.
TIE_TOL = 1e-12

# Upper bound on the elements of one temporary (customers x draws x arms) array, so
# Monte Carlo work on a chunk of customers stays around 32 MB in float64.
MC_BUDGET = 4_000_000


def check_inputs(
    segments: np.ndarray,
    allowed: np.ndarray | None,
    model_proba: np.ndarray | None,
    n_arms: int,
    n_segments: int,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate and normalise the arguments of ``decide``.

    Returns
    -------
    segments : int64 array of shape (n,)
    allowed : bool array of shape (n, n_arms) or None (all arms allowed)
    model_proba : float array of shape (n, n_arms) or None
    """
    seg = np.asarray(segments)
    if seg.ndim != 1:
        raise ValueError(f"segments must have shape (n,), got {seg.shape}")
    if seg.size and not np.issubdtype(seg.dtype, np.integer):
        raise ValueError(f"segments must be integers, got dtype {seg.dtype}")
    seg = seg.astype(np.int64, copy=False)
    if seg.size and (seg.min() < 0 or seg.max() >= n_segments):
        bad = int(seg[(seg < 0) | (seg >= n_segments)][0])
        raise ValueError(f"segments must be in [0, {n_segments}), got {bad}")
    n = seg.shape[0]
    if allowed is not None:
        allowed = np.asarray(allowed)
        if allowed.shape != (n, n_arms):
            raise ValueError(f"allowed must have shape {(n, n_arms)}, got {allowed.shape}")
        allowed = allowed.astype(bool, copy=False)
        empty = ~allowed.any(axis=1)
        if empty.any():
            raise ValueError(f"allowed row {int(np.flatnonzero(empty)[0])} has no allowed arm")
    if model_proba is not None:
        model_proba = np.asarray(model_proba)
        if model_proba.shape != (n, n_arms):
            raise ValueError(f"model_proba must have shape {(n, n_arms)}, got {model_proba.shape}")
        if not np.issubdtype(model_proba.dtype, np.floating):
            model_proba = model_proba.astype(np.float64)
        if n and not (np.isfinite(model_proba).all() and model_proba.min() >= 0 and model_proba.max() <= 1):
            raise ValueError("model_proba must be finite probabilities in [0, 1]")
    return seg, allowed, model_proba


def all_allowed(n: int, n_arms: int) -> np.ndarray:
    """A (n, n_arms) mask with every arm allowed."""
    return np.ones((n, n_arms), dtype=bool)


def group_rows(segments: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group customers that share a segment and an allowed-arm mask.

    Parameters
    ----------
    segments : int array of shape (m,)
    allowed : bool array of shape (m, n_arms)

    Returns
    -------
    first : int array of shape (g,)
        One representative row per group.
    inverse : int array of shape (m,)
        Group index of each row.
    """
    packed = np.packbits(allowed, axis=1)  # (m, ceil(n_arms / 8)) bytes
    n_bytes = packed.shape[1]
    seg_max = int(segments.max()) if segments.size else 0
    seg_bytes = 1 if seg_max < 1 << 8 else 2 if seg_max < 1 << 16 else 8
    if n_bytes + seg_bytes <= 8:
        # Fast path: one uint64 key per row, sorted by np.unique.
        key = segments.astype(np.uint64) << np.uint64(8 * n_bytes)
        for j in range(n_bytes):
            key |= packed[:, j].astype(np.uint64) << np.uint64(8 * j)
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:
        rows = np.concatenate([segments[:, None], packed.astype(np.int64)], axis=1)
        _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def tie_mask(values: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Allowed entries equal (within :data:`TIE_TOL`) to their row's allowed maximum.

    Parameters
    ----------
    values : float array of shape (m, n_arms)
    allowed : bool array of shape (m, n_arms)

    Returns
    -------
    bool array of shape (m, n_arms)
    """
    masked = np.where(allowed, values, -np.inf)
    best = masked.max(axis=1, keepdims=True)
    return allowed & (masked >= best - TIE_TOL)


def uniform_over(mask: np.ndarray) -> np.ndarray:
    """Rows of ``mask`` (m, n_arms) turned into uniform probability rows."""
    mask = mask.astype(np.float64)
    return mask / mask.sum(axis=1, keepdims=True)


def sample_categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of ``probs`` (m, n_arms) by inverting the row's CDF.

    Arms with probability 0 are never returned, whatever the rounding.
    """
    m = probs.shape[0]
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(m) * cdf[:, -1]
    arms = (cdf <= u[:, None]).sum(axis=1)
    # Guard against u landing on the total through rounding: the last positive arm.
    last = probs.shape[1] - 1 - np.argmax(probs[:, ::-1] > 0, axis=1)
    return np.minimum(arms, last).astype(np.int64)


def beta_std(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Standard deviation of Beta(alpha, beta), elementwise."""
    total = alpha + beta
    return np.sqrt(alpha * beta / (total * total * (total + 1.0)))


def split_rng(rng: np.random.Generator) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent child generators, the same for the same parent state."""
    try:
        a, b = rng.spawn(2)
    except TypeError:  # a generator without a seed sequence: derive seeds from its stream
        sa, sb = rng.integers(0, 2**63, size=2).tolist()
        a, b = np.random.default_rng(sa), np.random.default_rng(sb)
    return a, b


def seed_of(rng: np.random.Generator) -> int | None:
    """The integer seed the generator was created with, when that is knowable."""
    seq = getattr(rng.bit_generator, "seed_seq", None)
    if isinstance(seq, np.random.SeedSequence) and isinstance(seq.entropy, int) and not seq.spawn_key:
        return int(seq.entropy)
    return None

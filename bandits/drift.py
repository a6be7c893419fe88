"""Drift detectors for the daily monitoring step.

- :class:`PageHinkley` — sequential change detection on a stream, e.g. the daily
  conversion rate of a campaign. Raises an alarm when the cumulative deviation from
  the running mean exceeds ``threshold``; then starts over.
- :func:`segment_adjusted_z` / :func:`change_points` — concept drift of one arm: its daily
  matured conversions standardized against the arm's own earlier days (segment by segment,
  so a policy moving the arm to other customers is not a change), fed to Page-Hinkley;
  each alarm comes with the day the change most likely started.
- :func:`conversion_rate_drift` — per arm, a two-proportion z-test of the conversion
  rate in the most recent window of days against the days before it.
- :func:`population_stability_index` / :func:`psi_from_counts` — how far a feature's
  current distribution moved from its reference distribution. Rule of thumb:
  below :data:`PSI_STABLE` stable, above :data:`PSI_SHIFTED` a real shift.

Pure numpy; every function is vectorized over its inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PSI_STABLE = 0.10
PSI_SHIFTED = 0.25

_DIRECTIONS = ("increase", "decrease", "both")


class PageHinkley:
    """Page-Hinkley test for a change in the mean of a stream.

    For an increase, with running mean ``xbar_t``, the statistic is
    ``m_T - min_{t<=T} m_t`` where ``m_T = sum_{t<=T} (x_t - xbar_t - delta)``; the test
    for a decrease mirrors it. An alarm is raised when the statistic exceeds
    ``threshold`` after at least ``min_samples`` values; the detector then resets so the
    next regime is learned from scratch.

    Parameters
    ----------
    delta : float
        Magnitude of change tolerated without counting it, in the units of the stream
        (e.g. 0.001 for a conversion rate around 0.03).
    threshold : float
        Alarm level ``lambda`` of the cumulative statistic, in the units of the stream.
        Larger means fewer false alarms and later detection.
    min_samples : int
        Values needed after a (re)start before an alarm may be raised.
    direction : {"increase", "decrease", "both"}
        Which changes to detect.
    mean : float, optional
        The stream's mean while nothing changes, when known (e.g. 0 for standardized
        residuals): used instead of the running mean, which makes the test Page's CUSUM. A
        stream that is already a deviation from its own past must not be centred twice.

    Attributes
    ----------
    n_ : int
        Values seen since the last (re)start.
    statistic_ : float
        Current value of the test statistic (the larger of the two for ``"both"``).
    alarms_ : list of int
        Positions (0-based, over everything ever passed to :meth:`update`) of the alarms.
    """

    def __init__(
        self,
        delta: float = 0.005,
        threshold: float = 0.05,
        min_samples: int = 7,
        direction: str = "both",
        mean: float | None = None,
    ) -> None:
        if not delta >= 0.0:
            raise ValueError(f"delta must be >= 0, got {delta}")
        if not threshold > 0.0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {min_samples}")
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
        self.delta = float(delta)
        self.threshold = float(threshold)
        self.min_samples = int(min_samples)
        self.direction = direction
        self.mean = None if mean is None else float(mean)
        self.alarms_: list[int] = []
        self._seen = 0
        self.reset()

    def reset(self) -> None:
        """Forget the current regime (alarm history is kept)."""
        self.n_ = 0
        self.statistic_ = 0.0
        self._sum = 0.0
        self._cum_up = 0.0
        self._min_up = 0.0
        self._cum_down = 0.0
        self._min_down = 0.0

    def update(self, values: np.ndarray) -> np.ndarray:
        """Feed new values in order; return where alarms were raised.

        Parameters
        ----------
        values : float array of shape (m,)
            The next values of the stream.

        Returns
        -------
        bool array of shape (m,)
            True at the values that raised an alarm.
        """
        x = np.asarray(values, dtype=np.float64).ravel()
        if not np.isfinite(x).all():
            raise ValueError("values contains NaN or infinite values")
        alarms = np.zeros(x.size, dtype=bool)
        start = 0
        # One vectorized pass per regime: alarms are rare, so this loop is short.
        while start < x.size:
            hit = self._scan(x[start:])
            if hit is None:
                break
            alarms[start + hit] = True
            self.alarms_.append(self._seen + start + hit)
            self.reset()
            start += hit + 1
        self._seen += x.size
        return alarms

    def _scan(self, x: np.ndarray) -> int | None:
        """Advance the state over ``x``; stop at (and return) the first alarm."""
        t = self.n_ + np.arange(1, x.size + 1)
        running_mean = (self._sum + np.cumsum(x)) / t if self.mean is None else np.full(x.size, self.mean)
        cum_up = self._cum_up + np.cumsum(x - running_mean - self.delta)
        cum_down = self._cum_down + np.cumsum(running_mean - x - self.delta)
        stat_up = cum_up - np.minimum(self._min_up, np.minimum.accumulate(cum_up))
        stat_down = cum_down - np.minimum(self._min_down, np.minimum.accumulate(cum_down))
        if self.direction == "increase":
            stat = stat_up
        elif self.direction == "decrease":
            stat = stat_down
        else:
            stat = np.maximum(stat_up, stat_down)
        fired = np.flatnonzero((t >= self.min_samples) & (stat > self.threshold))
        end = int(fired[0]) + 1 if fired.size else x.size
        self.n_ += end
        self._sum += float(x[:end].sum())
        self._cum_up = float(cum_up[end - 1])
        self._cum_down = float(cum_down[end - 1])
        self._min_up = float(min(self._min_up, cum_up[:end].min()))
        self._min_down = float(min(self._min_down, cum_down[:end].min()))
        self.statistic_ = float(stat[end - 1])
        return int(fired[0]) if fired.size else None


@dataclass(frozen=True)
class ChangePoint:
    """One Page-Hinkley alarm over a series; positions index the series given.

    Attributes
    ----------
    alarm : int
        Position of the value that raised the alarm.
    start : int
        Estimated first position of the new regime: with a known mean, the likeliest start of a
        shift ending at the alarm; else the one after the last minimum of the cumulative
        statistic that fired (the regime's first position when it never dipped).
    direction : {"increase", "decrease"}
    """

    alarm: int
    start: int
    direction: str


def change_points(
    values: np.ndarray,
    delta: float,
    threshold: float,
    min_samples: int,
    direction: str = "both",
    mean: float | None = None,
) -> list[ChangePoint]:
    """Every alarm of a fresh :class:`PageHinkley` over ``values``, with where each change began.

    Deterministic: the same series gives the same alarms, and a longer series keeps the
    alarms of its prefix (the test is sequential), so a day's monitor can recompute from the
    start of the history instead of persisting detector state.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    detector = PageHinkley(delta, threshold, min_samples, direction, mean)
    alarms = np.flatnonzero(detector.update(x))
    found, begin = [], 0
    for alarm in alarms:
        regime = x[begin : alarm + 1]
        centre = np.cumsum(regime) / np.arange(1, regime.size + 1) if mean is None else mean
        up = np.cumsum(regime - centre - detector.delta)
        down = np.cumsum(centre - regime - detector.delta)
        stat_up = up[-1] - min(0.0, up.min())
        stat_down = down[-1] - min(0.0, down.min())
        rising = direction == "increase" or (direction == "both" and stat_up >= stat_down)
        cum = up if rising else down
        if mean is None:
            # The statistic counts from its last minimum (0 before the first value): the change followed it.
            low = int(np.argmin(np.concatenate(([0.0], cum))))
        else:
            # A known mean: the likeliest start of a shift ending at the alarm, argmax_k of
            # |sum_{t>=k} (x - mean)| / sqrt(n - k); the CUSUM's last zero comes too early when the
            # old regime sat just short of delta.
            tail = np.cumsum((regime - mean)[::-1])[::-1] / np.sqrt(np.arange(regime.size, 0, -1))
            low = int(np.argmax(tail if rising else -tail))
        found.append(ChangePoint(int(alarm), begin + low, "increase" if rising else "decrease"))
        begin = int(alarm) + 1
    return found


def segment_adjusted_z(conversions: np.ndarray, sends: np.ndarray) -> np.ndarray:
    """Per day, how far an arm's conversions fell from what its earlier days predict, in sds.

    Day ``t``'s expectation is ``sum_s n[t, s] * r[t, s]`` with ``r[t, s]`` the arm's rate in
    segment ``s`` over days before ``t``, ``(conv_s + R) / (sends_s + 1)``: one pseudo-send at
    the arm's pooled past rate ``R = (conv + 0.5) / (sends + 1)``, so a segment the arm was never
    sent to is expected to convert like the arm, not at 0 or 1/2; its variance ``sum_s n r (1 - r)``. Near
    N(0, 1) while nothing changes, whichever segments the policy sends the arm to.

    Parameters
    ----------
    conversions, sends : arrays of shape (n_days, n_segments)
        The arm's matured conversions (rewards) and sends per day and segment, oldest first.

    Returns
    -------
    float array of shape (n_days - 1,)
        One value per day after the first (day 0 has no past); 0 on a day without sends.
    """
    conv = np.asarray(conversions, dtype=np.float64)
    n = np.asarray(sends, dtype=np.float64)
    if conv.ndim != 2 or conv.shape != n.shape:
        raise ValueError(
            f"conversions and sends must both have shape (n_days, n_segments), got {conv.shape} and {n.shape}"
        )
    past_conv = np.cumsum(conv, axis=0)[:-1]
    past_n = np.cumsum(n, axis=0)[:-1]
    pooled = (past_conv.sum(axis=1, keepdims=True) + 0.5) / (past_n.sum(axis=1, keepdims=True) + 1.0)
    rate = (past_conv + pooled) / (past_n + 1.0)
    expected = (n[1:] * rate).sum(axis=1)
    variance = (n[1:] * rate * (1.0 - rate)).sum(axis=1)
    observed = conv[1:].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (observed - expected) / np.sqrt(variance)
    return np.where(variance > 0, z, 0.0)


def arm_change_points(
    conversions: np.ndarray, sends: np.ndarray, delta: float, threshold: float, min_samples: int
) -> list[ChangePoint]:
    """Concept drift of one arm: Page-Hinkley over :func:`segment_adjusted_z`, positions in days.

    The z values are deviations from the arm's own past already, N(0, 1) while nothing
    changes, so the test centres them on 0 (``mean=0``: Page's CUSUM) rather than on their
    running mean, which would halve a step's signal within days.

    After an alarm the arm's expectation is learned again from the day its change began (the
    old regime would keep every later day looking changed), and the test restarts there.

    Parameters
    ----------
    conversions, sends : arrays of shape (n_days, n_segments)
        As for :func:`segment_adjusted_z`.
    delta, threshold, min_samples
        Of the :class:`PageHinkley` test, in standard deviations and days.

    Returns
    -------
    list of ChangePoint
        ``alarm`` and ``start`` index days of the input.
    """
    conv = np.asarray(conversions, dtype=np.float64)
    n = np.asarray(sends, dtype=np.float64)
    found: list[ChangePoint] = []
    begin = 0
    while conv.shape[0] - begin > min_samples:
        z = segment_adjusted_z(conv[begin:], n[begin:])
        later = [
            c
            for c in change_points(z, delta, threshold, min_samples, mean=0.0)
            if not found or begin + 1 + c.alarm > found[-1].alarm
        ]
        if not later:
            break
        first = later[0]  # z[i] is day begin + 1 + i
        found.append(ChangePoint(begin + 1 + first.alarm, begin + 1 + first.start, first.direction))
        begin = found[-1].start
    return found


@dataclass(frozen=True)
class ConversionDrift:
    """Per-arm result of :func:`conversion_rate_drift`; arrays of shape (n_arms,).

    Attributes
    ----------
    reference_rate, recent_rate : float arrays
        Conversion rate before and within the recent window (NaN without sends).
    z : float array
        Two-proportion z statistic, recent minus reference (NaN when not tested).
    p_value : float array
        Two-sided p-value (NaN when not tested).
    drifted : bool array
        True where ``p_value`` is below the (corrected) significance level.
    alpha : float
        The per-arm significance level actually used (after Bonferroni correction).
    """

    reference_rate: np.ndarray
    recent_rate: np.ndarray
    z: np.ndarray
    p_value: np.ndarray
    drifted: np.ndarray
    alpha: float


def two_proportion_z(
    successes_a: np.ndarray, trials_a: np.ndarray, successes_b: np.ndarray, trials_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled two-proportion z-test of ``b`` against ``a``, element-wise.

    Parameters
    ----------
    successes_a, trials_a, successes_b, trials_b : arrays of the same shape
        Counts; trials must be positive where a test is wanted (else NaN).

    Returns
    -------
    z, p_value : float arrays of that shape
        ``z > 0`` when ``b``'s rate is higher; two-sided p-value.
    """
    sa, na = np.asarray(successes_a, float), np.asarray(trials_a, float)
    sb, nb = np.asarray(successes_b, float), np.asarray(trials_b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (sa + sb) / (na + nb)
        se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb))
        z = (sb / nb - sa / na) / se
    # No variance (both rates 0 or 1): no evidence of a difference.
    z = np.where((se == 0) & np.isfinite(pooled), 0.0, z)
    p_value = _erfc(np.abs(z) / math.sqrt(2.0))
    return z, p_value


def conversion_rate_drift(
    conversions: np.ndarray,
    sends: np.ndarray,
    window: int = 7,
    alpha: float = 0.01,
    min_sends: int = 200,
    bonferroni: bool = True,
) -> ConversionDrift:
    """Test, per arm, whether the last ``window`` days converted differently from before.

    Parameters
    ----------
    conversions, sends : arrays of shape (n_days, n_arms)
        Daily matured conversions and sends per arm, oldest day first.
    window : int
        Days in the recent window; every earlier day is the reference.
    alpha : float
        Family-wise significance level.
    min_sends : int
        Arms with fewer sends in either period are not tested (NaN, not drifted).
    bonferroni : bool
        Divide ``alpha`` by the number of arms tested, so 48 arms do not mean 48 chances
        of a false alarm.

    Returns
    -------
    ConversionDrift
    """
    conv = np.asarray(conversions, dtype=np.float64)
    n = np.asarray(sends, dtype=np.float64)
    if conv.ndim != 2 or conv.shape != n.shape:
        raise ValueError(
            f"conversions and sends must both have shape (n_days, n_arms), got {conv.shape} and {n.shape}"
        )
    if (conv < 0).any() or (conv > n).any():
        raise ValueError("conversions must satisfy 0 <= conversions <= sends")
    if not 1 <= window < conv.shape[0]:
        raise ValueError(f"window must be between 1 and n_days - 1 = {conv.shape[0] - 1}, got {window}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    ref_conv, ref_n = conv[:-window].sum(axis=0), n[:-window].sum(axis=0)
    new_conv, new_n = conv[-window:].sum(axis=0), n[-window:].sum(axis=0)
    tested = (ref_n >= min_sends) & (new_n >= min_sends)
    z, p_value = two_proportion_z(ref_conv, ref_n, new_conv, new_n)
    z = np.where(tested, z, np.nan)
    p_value = np.where(tested, p_value, np.nan)
    level = alpha / max(int(tested.sum()), 1) if bonferroni else alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        reference_rate = np.where(ref_n > 0, ref_conv / ref_n, np.nan)
        recent_rate = np.where(new_n > 0, new_conv / new_n, np.nan)
    return ConversionDrift(
        reference_rate=reference_rate,
        recent_rate=recent_rate,
        z=z,
        p_value=p_value,
        drifted=tested & (p_value < level),
        alpha=level,
    )


def psi_from_counts(reference_counts: np.ndarray, current_counts: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index between two histograms over the same bins.

    ``PSI = sum_b (c_b - r_b) * ln(c_b / r_b)`` over bin shares ``r`` (reference) and
    ``c`` (current); shares are floored at ``eps`` so empty bins stay finite.

    Parameters
    ----------
    reference_counts, current_counts : arrays of shape (n_bins,)
        Counts (or weights) per bin, e.g. per category of a categorical feature.
    eps : float
        Floor on bin shares.

    Returns
    -------
    float
        0 for identical distributions; larger means a larger shift.
    """
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    if ref.ndim != 1 or ref.shape != cur.shape:
        raise ValueError(
            f"reference_counts and current_counts must have the same shape (n_bins,), "
            f"got {ref.shape} and {cur.shape}"
        )
    if (ref < 0).any() or (cur < 0).any() or ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("counts must be non-negative with a positive total")
    r = np.maximum(ref / ref.sum(), eps)
    c = np.maximum(cur / cur.sum(), eps)
    return float(((c - r) * np.log(c / r)).sum())


def population_stability_index(
    reference: np.ndarray, current: np.ndarray, bins: int = 10, eps: float = 1e-4
) -> float:
    """Population stability index of a numeric feature.

    Bin edges are the reference's quantiles (duplicates merged, so discrete features
    work), open at both ends so current values outside the reference range still count.

    Parameters
    ----------
    reference, current : float arrays of shape (n,) and (m,)
        Feature values in the reference period (e.g. training data) and now.
    bins : int
        Number of quantile bins (at most).
    eps : float
        Floor on bin shares.

    Returns
    -------
    float
        See :func:`psi_from_counts`.
    """
    ref = np.asarray(reference, dtype=np.float64).ravel()
    cur = np.asarray(current, dtype=np.float64).ravel()
    if ref.size == 0 or cur.size == 0:
        raise ValueError("reference and current must both be non-empty")
    if not (np.isfinite(ref).all() and np.isfinite(cur).all()):
        raise ValueError("reference and current must not contain NaN or infinite values")
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    inner = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(inner, ref, side="right"), minlength=inner.size + 1)
    cur_counts = np.bincount(np.searchsorted(inner, cur, side="right"), minlength=inner.size + 1)
    return psi_from_counts(ref_counts, cur_counts, eps=eps)


def _erfc(x: np.ndarray) -> np.ndarray:
    """Element-wise complementary error function (numpy has none); NaN passes through."""
    return np.vectorize(math.erfc, otypes=[np.float64])(x)

"""Shared set-up of the decision-speed benchmarks: a realistic campaign and the
plain per-customer Python baseline the vectorized engine is compared with."""

from __future__ import annotations

import datetime as dt
import os
import platform
import random
import resource
import sys
import time

import numpy as np

N_CHANNELS = 5  # arm k goes out on channel k % 5 (email, sms, app_push, online_banking_alert, branch)


def campaign_stats(n_arms: int, n_segments: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Matured sends and rewards per (segment, arm): a campaign a few weeks in.

    Returns
    -------
    pulls, rewards : float64 arrays of shape (n_segments, n_arms)
    """
    rng = np.random.default_rng(seed)
    rates = rng.beta(2.0, 60.0, size=n_arms) * rng.uniform(0.7, 1.3, size=(n_segments, n_arms))
    pulls = rng.integers(50, 5000, size=(n_segments, n_arms)).astype(np.float64)
    rewards = rng.binomial(pulls.astype(np.int64), np.clip(rates, 0, 1)).astype(np.float64)
    return pulls, rewards


def audience(n: int, n_arms: int, n_segments: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Segments and consent masks: ~20% of customers lack consent for one channel,
    ~5% more for two (their arms on those channels are not allowed).

    Returns
    -------
    segments : int64 array of shape (n,)
    allowed : bool array of shape (n, n_arms)
    """
    rng = np.random.default_rng(seed)
    segments = rng.integers(n_segments, size=n)
    consent = np.ones((n, N_CHANNELS), dtype=bool)
    u = rng.random(n)
    one = u < 0.20
    two = (u >= 0.20) & (u < 0.25)
    consent[np.flatnonzero(one), rng.integers(N_CHANNELS, size=int(one.sum()))] = False
    rows = np.flatnonzero(two)
    first = rng.integers(N_CHANNELS, size=rows.size)
    consent[rows, first] = False
    consent[rows, (first + rng.integers(1, N_CHANNELS, size=rows.size)) % N_CHANNELS] = False
    allowed = consent[:, np.arange(n_arms) % N_CHANNELS]
    return segments, allowed


def baseline_numpy(
    alpha: np.ndarray,
    beta: np.ndarray,
    segments: np.ndarray,
    allowed: np.ndarray,
    draws: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """The plain loop: per customer, a Beta draw per allowed arm, argmax, and a Monte
    Carlo propensity from ``draws`` fresh posterior samples (numpy inside the loop)."""
    n = segments.shape[0]
    arms = np.empty(n, dtype=np.int64)
    props = np.empty(n)
    for i in range(n):
        idx = np.flatnonzero(allowed[i])
        a, b = alpha[segments[i], idx], beta[segments[i], idx]
        j = int(np.argmax(rng.beta(a, b)))
        mc = rng.beta(a, b, size=(draws, idx.size))
        props[i] = float(np.mean(mc.argmax(axis=1) == j))
        arms[i] = idx[j]
    return arms, props


def baseline_pure_python(
    alpha: np.ndarray,
    beta: np.ndarray,
    segments: np.ndarray,
    allowed: np.ndarray,
    draws: int,
    seed: int,
) -> tuple[list[int], list[float]]:
    """The same loop in pure Python (``random.betavariate``), no numpy at all."""
    gen = random.Random(seed)
    alpha_l, beta_l, allowed_l = alpha.tolist(), beta.tolist(), allowed.tolist()
    arms, props = [], []
    for i, s in enumerate(segments.tolist()):
        idx = [k for k, ok in enumerate(allowed_l[i]) if ok]
        ab = [(alpha_l[s][k], beta_l[s][k]) for k in idx]
        theta = [gen.betavariate(a, b) for a, b in ab]
        j = max(range(len(idx)), key=theta.__getitem__)
        wins = 0
        for _ in range(draws):
            sample = [gen.betavariate(a, b) for a, b in ab]
            wins += max(range(len(idx)), key=sample.__getitem__) == j
        arms.append(idx[j])
        props.append(wins / draws)
    return arms, props


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """(result, wall seconds)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def timed_cpu(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """(result, wall seconds, CPU seconds of this process) -- CPU time is the fairer
    figure on a machine shared with other jobs."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def load_average() -> float:
    """1-minute load average (other jobs on the machine), or NaN when unknown."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> dict[str, object]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
    }


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(lines)

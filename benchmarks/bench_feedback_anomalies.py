"""Feedback anomalies: how often the daily check finds an outage or a flood, and how often it cries wolf.

Each simulated bank has three channels of similar volume. Per channel and day: the sends whose
window covers the day vary (300-3,000, a campaign's volume moves), the event rates have a weekly
pattern (+-15%) and a day effect the product does not see (gamma, 10% coefficient of variation:
weather, paydays), and the counts are Poisson on top. After 21 ordinary days, day 22 of one
channel is hit: its events collapse to a share of normal (an outage of a platform, or of part of
it) or double (a bot clicking every link). The product's detector (:func:`pipelines.anomalies.
deviation`, with the default settings) judges every channel's open and conversion counts of
every day from day 8 on; the baseline in the same run is the whole-batch volume rule of the
ingest validation (a day's events below ``VOLUME_MIN_SHARE`` = 0.5 of the median of the last 14
days fails it), which sees all channels at once.

Reported over seeds (mean +- standard error): the share of hit channel-days found, per kind of
hit, and false alarms per channel-day without a hit.

    .venv/bin/python benchmarks/bench_feedback_anomalies.py --seeds 10
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.anomalies import deviation  # noqa: E402
from pipelines.settings import Settings  # noqa: E402

CHANNELS = 3
DAYS = 22
HIT_DAY = DAYS - 1
RATES = {"open": 0.15, "conversion": 0.03}
HITS = {"outage (0%)": 0.0, "half outage (50%)": 0.5, "partial (80%)": 0.8, "flood (200%)": 2.0}
TRIALS_PER_SEED = 200


def _bank(rng: np.random.Generator, hit: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sends (channels x days) and counts per event type; channel 0 is hit on HIT_DAY."""
    active = rng.integers(300, 3001, size=(CHANNELS, 1)) * rng.uniform(0.8, 1.2, size=(CHANNELS, DAYS))
    active = np.round(active)
    weekly = 1 + 0.15 * np.sin(2 * np.pi * (np.arange(DAYS) + rng.integers(7)) / 7)
    mood = rng.gamma(100, 1 / 100, size=(CHANNELS, DAYS))
    counts = {}
    for kind, rate in RATES.items():
        mean = active * rate * weekly * mood
        mean[0, HIT_DAY] *= hit
        counts[kind] = rng.poisson(mean)
    return active, counts


def _judge(active, counts, settings: Settings) -> np.ndarray:
    """Per channel and day, whether the detector flags any event type (days from min_history)."""
    flagged = np.zeros((CHANNELS, DAYS), dtype=bool)
    for c in range(CHANNELS):
        for t in range(settings.anomaly_min_history, DAYS):
            lo = max(0, t - settings.anomaly_lookback_days)
            for kind, n in counts.items():
                history = n[c, lo:t] / active[c, lo:t]
                found = deviation(
                    kind, int(n[c, t]), float(active[c, t]), history,
                    z_threshold=settings.anomaly_z_threshold, min_history=settings.anomaly_min_history,
                )  # fmt: skip
                flagged[c, t] |= found is not None
    return flagged


def _batch_rule(counts) -> bool:
    """The ingest validation's volume check on the hit day: all events of all channels."""
    total = sum(n.sum(axis=0) for n in counts.values())
    return bool(total[HIT_DAY] < 0.5 * np.median(total[HIT_DAY - 14 : HIT_DAY]))


def run_seed(seed: int, settings: Settings) -> dict:
    rng = np.random.default_rng(seed)
    found = {name: 0 for name in HITS}
    batch = {name: 0 for name in HITS}
    false_alarms = tested = 0
    for name, hit in HITS.items():
        for _ in range(TRIALS_PER_SEED):
            active, counts = _bank(rng, hit)
            flagged = _judge(active, counts, settings)
            found[name] += bool(flagged[0, HIT_DAY])
            batch[name] += _batch_rule(counts)
            clean = flagged.copy()
            clean[0, HIT_DAY] = False
            false_alarms += int(clean[:, settings.anomaly_min_history :].sum())
            tested += clean[:, settings.anomaly_min_history :].size - 1
    return {
        "found": {k: v / TRIALS_PER_SEED for k, v in found.items()},
        "batch_rule": {k: v / TRIALS_PER_SEED for k, v in batch.items()},
        "false_alarms_per_channel_day": false_alarms / tested,
    }


def _mean_se(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    out = ROOT / "benchmarks" / "results" / "feedback_anomalies.json"
    parser.add_argument("--out", type=Path, default=out)
    args = parser.parse_args()
    settings = Settings()
    runs = [run_seed(seed, settings) for seed in range(args.seeds)]
    report = {
        "machine": f"{platform.node()} {platform.machine()} python {platform.python_version()}",
        "seeds": args.seeds,
        "trials_per_seed_and_hit": TRIALS_PER_SEED,
        "settings": {
            "z_threshold": settings.anomaly_z_threshold,
            "lookback_days": settings.anomaly_lookback_days,
            "min_history": settings.anomaly_min_history,
        },
        "found": {k: _mean_se([r["found"][k] for r in runs]) for k in HITS},
        "batch_rule_found": {k: _mean_se([r["batch_rule"][k] for r in runs]) for k in HITS},
        "false_alarms_per_channel_day": _mean_se([r["false_alarms_per_channel_day"] for r in runs]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"{'hit of one channel':<20} {'detector':>16} {'batch volume rule':>20}")
    for k in HITS:
        (m, se), (bm, bse) = report["found"][k], report["batch_rule_found"][k]
        print(f"{k:<20} {m:>9.1%} ± {se:.1%} {bm:>13.1%} ± {bse:.1%}")
    m, se = report["false_alarms_per_channel_day"]
    print(f"false alarms per channel-day without a hit: {m:.5f} ± {se:.5f}")


if __name__ == "__main__":
    main()

"""How long does training the response model take on 2,000,000 logged decisions?

Measures the production path, :func:`ml.train.train_model` (time split with the newest 7
days validating, FeatureSpec fit + transform, XGBoost ``hist`` with early stopping on
2 threads), on synthetic examples shaped like ``analytics.training_examples``
(:mod:`ml.synthetic`). For scale it trains a same-run baseline on the same feature
matrices: scikit-learn's ``HistGradientBoostingClassifier`` with the same number of trees,
depth, learning rate and bins, without early stopping (its early stopping would hold out
a random split of its own instead of the newest days).

Usage::

    .venv/bin/python benchmarks/bench_training.py                 # 2M rows, print results
    .venv/bin/python benchmarks/bench_training.py --write         # ... and update BENCHMARKS.md
    .venv/bin/python benchmarks/bench_training.py --rows 200000   # a quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# As ml/__init__.py does, before scikit-learn below loads the OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from sklearn.metrics import log_loss, roc_auc_score  # noqa: E402

from ml.synthetic import make_training_examples  # noqa: E402
from ml.train import TrainConfig, train_model  # noqa: E402

SECTION = "## Model training speed"
GOAL_SECONDS = 180.0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(rows: int, seed: int, baseline: bool) -> dict[str, object]:
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    examples = make_training_examples(rows, seed=seed, n_days=56)
    generate_s = time.perf_counter() - started

    config = TrainConfig(validation_days=7, n_jobs=2, seed=seed)
    started = time.perf_counter()
    result = train_model(examples, config)
    train_s = time.perf_counter() - started  # split + features + XGBoost fit, as in production

    x_train = result.spec.transform(result.split.train)
    x_valid = result.spec.transform(result.split.valid)
    y_train = result.split.train[config.label].to_numpy()
    y_valid = result.split.valid[config.label].to_numpy()
    p_xgb = result.model.predict_proba(x_valid)[:, 1]
    trees = result.model.get_booster().num_boosted_rounds()
    out: dict[str, object] = {
        "rows": rows,
        "train_rows": len(result.split.train),
        "valid_rows": len(result.split.valid),
        "n_features": result.spec.n_features,
        "generate_s": generate_s,
        "train_s": train_s,
        "trees": trees,
        "best_iteration": result.best_iteration,
        "xgb_auc": roc_auc_score(y_valid, p_xgb),
        "xgb_logloss": log_loss(y_valid, p_xgb),
        "load_before": load_before,
    }
    if baseline:
        from sklearn.ensemble import HistGradientBoostingClassifier

        hgb = HistGradientBoostingClassifier(
            max_iter=trees, learning_rate=config.learning_rate, max_depth=config.max_depth,
            max_leaf_nodes=None, max_bins=255, l2_regularization=config.reg_lambda,
            early_stopping=False, random_state=seed,
        )
        started = time.perf_counter()
        hgb.fit(x_train, y_train)
        out["baseline_s"] = time.perf_counter() - started
        p_hgb = hgb.predict_proba(x_valid)[:, 1]
        out["baseline_auc"] = roc_auc_score(y_valid, p_hgb)
        out["baseline_logloss"] = log_loss(y_valid, p_hgb)
        # Fair per-tree comparison: XGBoost's fit alone (features excluded) on the same matrix.
        from ml.train import make_classifier

        fixed = make_classifier(TrainConfig(n_estimators=trees, n_jobs=2, seed=seed))
        fixed.set_params(early_stopping_rounds=None)
        started = time.perf_counter()
        fixed.fit(x_train, y_train, verbose=False)
        out["xgb_fit_s"] = time.perf_counter() - started
    out["load_after"] = os.getloadavg()[0]
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def report(r: dict[str, object], command: str) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `{command}`  ",
        f"Machine: {os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}, "
        f"{dt.date.today().isoformat()}. The machine is shared: other jobs ran at the same time "
        f"(1-minute load average {r['load_before']:.1f} before, {r['load_after']:.1f} after, on 2 cores), "
        "so times are upper bounds.",
        "",
        f"Data: {r['rows']:,} synthetic decisions over 56 days (`ml.synthetic`, the columns of "
        f"`analytics.training_examples`), time split: {r['train_rows']:,} train rows (older 49 days) / "
        f"{r['valid_rows']:,} validation rows (newest 7 days), {r['n_features']} features.",
        "",
        "| step | wall time | note |",
        "|---|---|---|",
        f"| `train_model` (split + features + XGBoost hist, 2 threads, early stopping) | "
        f"**{r['train_s']:.1f} s** | {r['trees']} trees built, best iteration {r['best_iteration']}; "
        f"goal < {GOAL_SECONDS:.0f} s: {'met' if r['train_s'] < GOAL_SECONDS else 'NOT met'} |",
    ]
    if "baseline_s" in r:
        ratio = r["baseline_s"] / r["xgb_fit_s"]
        lines += [
            f"| XGBoost fit alone, same {r['trees']} trees, no early stopping | {r['xgb_fit_s']:.1f} s | "
            "same feature matrix as the baseline |",
            f"| baseline: scikit-learn `HistGradientBoostingClassifier`, {r['trees']} trees, depth 6, "
            f"255 bins, lr 0.1 | {r['baseline_s']:.1f} s | same matrix, same run |",
            "",
            f"Ratio: XGBoost hist is **{ratio:.2f}x** the speed of the baseline on the same trees "
            f"(baseline time / XGBoost fit time). Validation AUC {r['xgb_auc']:.4f} vs baseline "
            f"{r['baseline_auc']:.4f}; log loss {r['xgb_logloss']:.4f} vs {r['baseline_logloss']:.4f}.",
            "",
        ]
    lines += [
        f"Generating the data took {r['generate_s']:.1f} s (not counted); peak memory "
        f"{r['peak_rss_mb']:,.0f} MB. `OMP_WAIT_POLICY=PASSIVE` (set by `ml/__init__.py`): with "
        "spinning OpenMP threads, 2-thread training on this busy 2-core machine was ~10x slower.",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace (or append) only our section; re-read right before writing, others edit the file too."""
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--write", action="store_true", help="update the section of BENCHMARKS.md")
    args = parser.parse_args()
    result = run(args.rows, args.seed, baseline=not args.no_baseline)
    command = ".venv/bin/python benchmarks/bench_training.py" + (
        f" --rows {args.rows}" if args.rows != 2_000_000 else "") + (" --write" if args.write else "")
    text = report(result, command)
    print(text)
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}, file=sys.stderr)
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", text)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

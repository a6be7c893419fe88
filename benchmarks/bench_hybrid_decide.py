"""Hybrid decide speed: XGBoost scores + thompson_blend for 1,000,000 customers x 48 arms,
against XGBoost's own prediction of the same 48,000,000 rows, measured in the same run.

    .venv/bin/python benchmarks/bench_hybrid_decide.py [--customers N] [--arms K] [--json] [--write]

A small realistic response model is trained with :func:`ml.train.train_model` (default
config, 2 threads) on ``ml.synthetic`` examples; the audience is ``ml.synthetic`` customers
(the distribution the model was trained on) with per-channel consent drawn as in
``benchmarks/scenarios/default.yaml``; the arms are 4 offers x 4 channels x 3 times of day.
Three variants, each in its own subprocess so that each peak RSS is its own:

* ``baseline``: the customers x arms feature rows built chunk by chunk with the same
  FeatureSpec (262,144 rows at a time, like ``score_matrix``) and predicted by the bare
  booster (``inplace_predict``, same trees as ``predict_proba``); prediction and feature
  building are timed separately.
* ``hybrid_all``: the decide loop of ``pipelines/decide.py`` (200,000 customers per chunk):
  ``ResponseModel.score_matrix`` of every pair, then ``thompson_blend`` ``decide`` with
  Monte Carlo propensities.
* ``hybrid_skip``: the same loop as the pipeline runs it now: ``pipelines.decide.model_scores``
  scores only the allowed pairs (consented channels); the rest is not built nor predicted.

The two hybrid runs use the same seed; their decisions, propensities and scores are compared.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# As ml/__init__.py does, before anything loads the OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from speed_common import campaign_stats, machine, peak_rss_mb, table  # noqa: E402

SECTION = "## Hybrid decide speed"
GOAL_RATIO = 1.3
GOAL_MEMORY_MB = 6 * 1024
CHUNK_CUSTOMERS = 200_000  # pipelines.decide.CHUNK
N_SEGMENTS = 9
OFFERS = ("credit_card", "loan", "savings_account", "investment_product")
CHANNELS = ("email", "sms", "app_push", "branch")
TIMES = ("morning", "afternoon", "evening")
DISCOUNTS = ("rate_reduction", "fee_waiver", "cashback", "loyalty_points")
# Consent rates of benchmarks/scenarios/default.yaml (app push scales with digital engagement).
CONSENT = {"email": 0.92, "sms": 0.75, "app_push": 0.6, "branch": 1.0}
VARIANTS = ("baseline", "hybrid_all", "hybrid_skip")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load3() -> tuple[float, float, float]:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[return-value]
    except OSError:
        return (float("nan"),) * 3  # type: ignore[return-value]


def make_arm_frame(n_arms: int) -> pd.DataFrame:
    """4 offers x 4 channels x 3 times of day (48 arms); beyond 48, crossed with discounts."""
    if n_arms <= len(OFFERS) * len(CHANNELS) * len(TIMES):
        grid = itertools.product(OFFERS, CHANNELS, TIMES)
        rows = [dict(offer_type=o, channel=c, time_of_day=t) for o, c, t in grid]
    else:
        rows = [
            dict(discount=d, offer_type=o, channel=c, time_of_day=t)
            for d, o, c, t in itertools.product(DISCOUNTS, OFFERS, CHANNELS, TIMES)
        ]
    if not 1 <= n_arms <= len(rows):
        raise SystemExit(f"--arms must lie in [1, {len(rows)}], got {n_arms}")
    return pd.DataFrame(rows[:n_arms])


# -- set-up (parent) ----------------------------------------------------------------------
def prepare(workdir: Path, n_customers: int, n_arms: int, train_rows: int, seed: int) -> dict:
    """Train the model, draw the audience, and store both for the variant subprocesses."""
    from ml.synthetic import make_customers, make_training_examples
    from ml.train import TrainConfig, train_model
    from pipelines.domain import CHANNELS as DOMAIN_CHANNELS
    from pipelines.domain import segment_of
    from pipelines.simulator.population import channel_consent

    info: dict[str, object] = {}
    log(f"training the response model on {train_rows:,} synthetic examples ...")
    examples = make_training_examples(train_rows, seed=seed)
    result = train_model(examples, TrainConfig(n_jobs=2))
    result.model.save_model(workdir / "model.ubj")
    (workdir / "spec.json").write_text(result.spec.to_json())
    booster = result.model.get_booster()
    info["train_s"] = round(result.train_seconds, 1)
    info["trees_used"] = result.best_iteration + 1
    info["trees_built"] = booster.num_boosted_rounds()
    info["n_features"] = result.spec.n_features
    del examples

    log(f"drawing {n_customers:,} customers and their consent ...")
    customers = make_customers(n_customers, np.random.default_rng(seed + 1))
    arms = make_arm_frame(n_arms)
    consent = channel_consent(customers, CONSENT, seed + 2)  # columns: pipelines.domain.CHANNELS
    arm_channel = [DOMAIN_CHANNELS.index(c) for c in arms["channel"]]
    allowed = consent[:, arm_channel]
    keep = allowed.any(axis=1)  # as the audience query: nobody without a consented channel
    customers, allowed = customers.loc[keep].reset_index(drop=True), allowed[keep]
    segments = segment_of(customers["age"].to_numpy(), customers["income"].to_numpy())
    customers.to_parquet(workdir / "customers.parquet")
    arms.to_parquet(workdir / "arms.parquet")
    pulls, rewards = campaign_stats(n_arms, N_SEGMENTS, seed + 3)
    np.savez(workdir / "inputs.npz", allowed=allowed, segments=segments, pulls=pulls, rewards=rewards)
    info["customers"] = len(customers)
    info["arms"] = n_arms
    info["disallowed_share"] = round(float(1.0 - allowed.mean()), 4)
    info["customers_with_a_channel_masked"] = round(float((~allowed).any(axis=1).mean()), 4)
    info.update(bounds_and_structure(result, customers, arms, allowed, segments, pulls, rewards, seed))
    return info


def bounds_and_structure(result, customers, arms, allowed, segments, pulls, rewards, seed) -> dict:  # type: ignore[no-untyped-def]
    """Figures behind the choice: how many pairs an honest "cannot win" bound could skip,
    how many trees use customer features only, how many customer rows repeat."""
    from bandits import make_policy
    from ml.features import cross_blocks
    from ml.train import booster_feature_names

    booster = result.model.get_booster()
    n_used = result.best_iteration + 1
    trees = booster.trees_to_dataframe()
    trees = trees[trees["Tree"] < n_used]
    arm_names = set(booster_feature_names(result.spec.arm_feature_names))
    splits = trees[trees["Feature"] != "Leaf"]
    uses_arm = splits.groupby("Tree")["Feature"].agg(lambda f: bool(set(f) & arm_names))
    leaves = trees[trees["Feature"] == "Leaf"]
    config = json.loads(booster.save_config())["learner"]["learner_model_param"]
    base = float(str(config["base_score"]).strip("[]"))
    # The largest output the model can give any input: every tree at its largest leaf.
    margin_max = np.log(base / (1.0 - base)) + leaves.groupby("Tree")["Gain"].max().sum()
    p_max = float(1.0 / (1.0 + np.exp(-margin_max)))

    # "Cannot win" bounds for thompson_blend on a sample of customers: pair (i, a) can be
    # skipped if, for every posterior sample, some other allowed arm b beats a's best case,
    # i.e. w * max_d theta[a] + (1 - w) * p_bound < max_b (w * min_d theta[b] + (1 - w) * p[b]).
    policy = make_policy("thompson_blend", n_arms=len(arms), n_segments=N_SEGMENTS).set_stats(pulls, rewards)
    w, draws = float(policy.params.weight), int(policy.params.blend_draws)
    theta = np.random.default_rng(seed + 4).beta(
        policy.alpha_[:, None, :], policy.beta_[:, None, :], size=(N_SEGMENTS, draws, len(arms))
    )
    n_sample = min(20_000, len(customers))
    sample = np.random.default_rng(seed + 5).choice(len(customers), size=n_sample, replace=False)
    h, low = theta.max(axis=1)[segments[sample]], theta.min(axis=1)[segments[sample]]  # (n_sample, k)
    p = result.model.predict_proba(
        cross_blocks(result.spec.customer_block(customers.iloc[sample]), result.spec.arm_block(arms))
    )[:, 1].reshape(sample.size, len(arms))
    assert p.max() <= p_max * (1 + 1e-6), "the model bound must hold for every score"
    ok = allowed[sample]
    # (i) before scoring anything: others count with p >= 0, a with the model's maximum.
    floor0 = np.where(ok, w * low, -np.inf).max(axis=1, keepdims=True)
    skip_blind = ok & (w * h + (1 - w) * p_max < floor0)
    # (ii) the most any scheme could skip: others with their true scores, a with the model's maximum.
    floor1 = np.where(ok, w * low + (1 - w) * p, -np.inf).max(axis=1, keepdims=True)
    skip_oracle = ok & (w * h + (1 - w) * p_max < floor1)
    # (iii) the same bound with a's own score known too (i.e. after scoring it).
    skip_known = ok & (w * h + (1 - w) * p < floor1)
    cust_block = result.spec.customer_block(customers)
    unique_rows = np.unique(cust_block, axis=0).shape[0]
    return {
        "trees_using_arm_features": int(uses_arm.sum()),
        "trees_customer_only": int((~uses_arm).sum() + (n_used - len(uses_arm))),
        "model_max_output": round(p_max, 4),
        "scored_p_max_sample": round(float(p.max()), 4),
        "blend_weight": w,
        "blend_draws": draws,
        "bound_sample": int(sample.size),
        "skippable_share_blind_bound": round(float(skip_blind.sum() / ok.sum()), 6),
        "skippable_share_oracle_bound": round(float(skip_oracle.sum() / ok.sum()), 6),
        "bound_share_after_scoring": round(float(skip_known.sum() / ok.sum()), 4),
        "unique_customer_rows": int(unique_rows),
    }


# -- variants (each in its own subprocess) ---------------------------------------------------
def _inputs(workdir: Path):  # type: ignore[no-untyped-def]
    from ml.features import FeatureSpec

    spec = FeatureSpec.from_json((workdir / "spec.json").read_text())
    customers = pd.read_parquet(workdir / "customers.parquet")
    arms = pd.read_parquet(workdir / "arms.parquet")
    data = np.load(workdir / "inputs.npz")
    return spec, customers, arms, {k: data[k] for k in data.files}


def child(mode: str, workdir: Path, seed: int) -> dict:
    import xgboost as xgb

    spec, customers, arms, data = _inputs(workdir)
    allowed, segments = data["allowed"], data["segments"]
    n, k = allowed.shape
    out: dict[str, object] = {"mode": mode, "load_before": load3()}
    if mode == "baseline":
        from ml.features import cross_blocks
        from ml.scoring import DEFAULT_CHUNK_ROWS

        booster = xgb.Booster(model_file=str(workdir / "model.ubj"))
        booster.set_param({"nthread": 2})
        trees = (0, int(booster.attr("best_iteration")) + 1)  # what predict_proba uses
        scores = np.empty((n, k), dtype=np.float32)
        out["inputs_rss_mb"] = round(peak_rss_mb(), 1)
        w0, c0 = time.perf_counter(), time.process_time()
        customer_block, arm_block = spec.customer_block(customers), spec.arm_block(arms)
        build_wall, build_cpu = time.perf_counter() - w0, time.process_time() - c0
        predict_wall = predict_cpu = 0.0
        per = max(1, DEFAULT_CHUNK_ROWS // k)
        for start in range(0, n, per):
            part = slice(start, min(n, start + per))
            w0, c0 = time.perf_counter(), time.process_time()
            features = cross_blocks(customer_block[part], arm_block)
            w1, c1 = time.perf_counter(), time.process_time()
            scores[part] = booster.inplace_predict(features, iteration_range=trees).reshape(-1, k)
            build_wall += w1 - w0
            build_cpu += c1 - c0
            predict_wall += time.perf_counter() - w1
            predict_cpu += time.process_time() - c1
        out.update(
            rows=n * k,
            predict_wall_s=round(predict_wall, 2),
            predict_cpu_s=round(predict_cpu, 2),
            build_wall_s=round(build_wall, 2),
            build_cpu_s=round(build_cpu, 2),
            score_checksum=float(scores.astype(np.float64).sum()),
        )
    else:
        from bandits import make_policy
        from ml.scoring import ResponseModel
        from pipelines.decide import ModelHandle, model_scores

        clf = xgb.XGBClassifier()
        clf.load_model(workdir / "model.ubj")
        clf.set_params(n_jobs=2)
        response = ResponseModel(clf, spec)

        def scorer(c: pd.DataFrame, a: list[dict[str, str]], allowed: np.ndarray | None = None) -> np.ndarray:
            return response.score_matrix(c, a, allowed=allowed)

        handle = ModelHandle(version="bench", scorer=scorer)
        arm_params = [{c: v for c, v in r.items() if isinstance(v, str)} for r in arms.to_dict("records")]
        policy = make_policy("thompson_blend", n_arms=k, n_segments=N_SEGMENTS).set_stats(
            data["pulls"], data["rewards"]
        )
        rng = np.random.default_rng(seed + 10)  # one generator for the run, as in decide
        result = {
            "arm": np.empty(n, dtype=np.int64),
            "propensity": np.empty(n),
            "model_score": np.empty(n),
            "blend_score": np.empty(n),
            "bandit_score": np.empty(n),
        }
        treat = np.arange(n)  # every customer in treatment: all 1M are scored
        out["inputs_rss_mb"] = round(peak_rss_mb(), 1)
        score_wall = score_cpu = policy_wall = policy_cpu = 0.0
        w_all, c_all = time.perf_counter(), time.process_time()
        for start in range(0, n, CHUNK_CUSTOMERS):
            rows = treat[start : start + CHUNK_CUSTOMERS]
            w0, c0 = time.perf_counter(), time.process_time()
            if mode == "hybrid_skip":
                proba = model_scores(handle, customers.iloc[rows], arm_params, allowed[rows])
            else:
                proba = handle.scorer(customers.iloc[rows], arm_params)
            w1, c1 = time.perf_counter(), time.process_time()
            batch = policy.decide(segments[rows], rng, allowed=allowed[rows], model_proba=proba)
            for name in result:
                result[name][rows] = getattr(batch, name)
            score_wall += w1 - w0
            score_cpu += c1 - c0
            policy_wall += time.perf_counter() - w1
            policy_cpu += time.process_time() - c1
        total_wall, total_cpu = time.perf_counter() - w_all, time.process_time() - c_all
        np.savez(workdir / f"{mode}.npz", **result)
        out.update(
            total_wall_s=round(total_wall, 2),
            total_cpu_s=round(total_cpu, 2),
            score_wall_s=round(score_wall, 2),
            score_cpu_s=round(score_cpu, 2),
            policy_wall_s=round(policy_wall, 2),
            policy_cpu_s=round(policy_cpu, 2),
        )
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["load_after"] = load3()
    return out


def run_child(mode: str, workdir: Path, seed: int) -> dict:
    log(f"  {mode} ...")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--workdir", str(workdir),
           "--seed", str(seed)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    log(f"    {json.dumps(out)}")
    return out


def same_decisions(workdir: Path) -> dict:
    a, b = np.load(workdir / "hybrid_all.npz"), np.load(workdir / "hybrid_skip.npz")
    return {name: bool(np.array_equal(a[name], b[name], equal_nan=True)) for name in a.files}


# -- report ---------------------------------------------------------------------------------
def median_of(runs: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in runs]))


def summarise(  # type: ignore[no-untyped-def]
    info: dict, runs: dict[str, list[dict]], identical: dict, m: dict, load_start, load_end
) -> dict:
    predict = median_of(runs["baseline"], "predict_wall_s")
    s = {
        "machine": m,
        "setup": info,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "runs": runs,
        "baseline_predict_wall_s": predict,
        "baseline_predict_cpu_s": median_of(runs["baseline"], "predict_cpu_s"),
        "baseline_build_wall_s": median_of(runs["baseline"], "build_wall_s"),
        "baseline_build_cpu_s": median_of(runs["baseline"], "build_cpu_s"),
        "identical_decisions": identical,
    }
    for mode in ("hybrid_all", "hybrid_skip"):
        for key in ("total_wall_s", "total_cpu_s", "score_wall_s", "policy_wall_s", "score_cpu_s",
                    "policy_cpu_s"):
            s[f"{mode}_{key}"] = median_of(runs[mode], key)
        s[f"{mode}_ratio_wall"] = round(s[f"{mode}_total_wall_s"] / predict, 3)
        s[f"{mode}_ratio_cpu"] = round(s[f"{mode}_total_cpu_s"] / s["baseline_predict_cpu_s"], 3)
        # Paired per round (baseline and hybrid of the same round ran minutes apart).
        s[f"{mode}_ratio_wall_rounds"] = [
            round(h["total_wall_s"] / b["predict_wall_s"], 2)
            for h, b in zip(runs[mode], runs["baseline"], strict=True)
        ]
        # An idle 2-core machine, estimated from CPU times: XGBoost's prediction on 2 threads
        # (CPU / 2, perfect scaling: the ratio's worst case), everything else on one thread.
        share = 1.0 - info["disallowed_share"] if mode == "hybrid_skip" else 1.0
        p_cpu = s["baseline_predict_cpu_s"]
        idle = (share * p_cpu / 2 + s[f"{mode}_total_cpu_s"] - share * p_cpu) / (p_cpu / 2)
        s[f"{mode}_ratio_idle_estimate"] = round(idle, 3)
    for mode in VARIANTS:
        s[f"{mode}_peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs[mode])
    return s


def report(s: dict, command: str) -> str:
    m, info = s["machine"], s["setup"]
    n, k = info["customers"], info["arms"]
    rows_m = n * k / 1e6
    ls, le = s["load_average_start"], s["load_average_end"]
    reps = len(s["runs"]["baseline"])

    def verdict(ratio: float, mem: float) -> str:
        return "met" if ratio <= GOAL_RATIO and mem < GOAL_MEMORY_MB else "**not met**"

    def wall(mode: str, key: str) -> str:
        values = [r[key] for r in s["runs"][mode]]
        med = float(np.median(values))
        return f"{med:.1f}" if len(values) == 1 else f"{med:.1f} ({min(values):.0f}-{max(values):.0f})"

    def ratios(mode: str) -> str:
        rounds = s[f"{mode}_ratio_wall_rounds"]
        spread = f" ({min(rounds):.2f}-{max(rounds):.2f})" if len(rounds) > 1 else ""
        return f"{s[f'{mode}_ratio_wall']:.2f}x{spread}"

    n_skip = rows_m * (1 - info["disallowed_share"])
    body = [
        (
            f"baseline: XGBoost `inplace_predict` alone, {rows_m:,.0f}M rows (prediction only)",
            f"**{wall('baseline', 'predict_wall_s')}**",
            f"{s['baseline_predict_cpu_s']:.1f}",
            "1x",
            "1x",
            "1x",
            f"{s['baseline_peak_rss_mb']:,.0f}",
        ),
        (
            "baseline: building those feature rows (same FeatureSpec, 262,144-row chunks)",
            wall("baseline", "build_wall_s"),
            f"{s['baseline_build_cpu_s']:.1f}",
            "",
            "",
            "",
            "",
        ),
        (
            f"hybrid decide, every pair scored ({rows_m:,.0f}M rows): scoring + policy",
            wall("hybrid_all", "total_wall_s"),
            f"{s['hybrid_all_score_cpu_s']:.1f} + {s['hybrid_all_policy_cpu_s']:.1f} = "
            f"{s['hybrid_all_total_cpu_s']:.1f}",
            ratios("hybrid_all"),
            f"{s['hybrid_all_ratio_cpu']:.2f}x",
            f"{s['hybrid_all_ratio_idle_estimate']:.2f}x",
            f"{s['hybrid_all_peak_rss_mb']:,.0f}",
        ),
        (
            f"**hybrid decide, allowed pairs only** ({n_skip:,.1f}M rows; the pipeline now): "
            "scoring + policy",
            f"**{wall('hybrid_skip', 'total_wall_s')}**",
            f"{s['hybrid_skip_score_cpu_s']:.1f} + {s['hybrid_skip_policy_cpu_s']:.1f} = "
            f"{s['hybrid_skip_total_cpu_s']:.1f}",
            f"**{ratios('hybrid_skip')}**",
            f"**{s['hybrid_skip_ratio_cpu']:.2f}x**",
            f"**{s['hybrid_skip_ratio_idle_estimate']:.2f}x**",
            f"{s['hybrid_skip_peak_rss_mb']:,.0f}",
        ),
    ]
    header = ("variant", "wall s, median (range)", "CPU s", "ratio, wall (per round)", "ratio, CPU",
              "ratio, idle 2-core estimate", "peak RSS MB")
    md = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---:|---:|---:|"]
    md += ["| " + " | ".join(r) + " |" for r in body]

    def goal(mode: str) -> str:
        wall_ok = s[f"{mode}_ratio_wall"] <= GOAL_RATIO
        cpu_ok = s[f"{mode}_ratio_cpu"] <= GOAL_RATIO
        idle_ok = s[f"{mode}_ratio_idle_estimate"] <= GOAL_RATIO
        mem_ok = s[f"{mode}_peak_rss_mb"] < GOAL_MEMORY_MB
        if wall_ok and cpu_ok and idle_ok and mem_ok:
            return "**met** on all three ratios and on memory"
        if not mem_ok:
            return "**not met** (memory)"
        checks = (("wall", wall_ok), ("CPU", cpu_ok), ("idle estimate", idle_ok))
        missed = [name for name, ok in checks if not ok]
        return f"**not met** by the {' and '.join(missed)} ratio" + ("s" if len(missed) > 1 else "")

    ident = s["identical_decisions"]
    same = all(ident.values())
    differ = ", ".join(k for k, v in ident.items() if not v)
    same_text = "**identical**" if same else f"**DIFFER** ({differ})"
    lines = [
        SECTION,
        "",
        "Goal (issue 5): the hybrid decide for 1,000,000 customers x 48 arms within 1.3x of the time "
        "XGBoost's own prediction of the same 48,000,000 rows takes alone (same run), under 6 GB peak "
        "memory — or faster by not scoring rows that cannot win.",
        "",
        f"Command: `{command}`  ",
        f"Machine: `nproc` = {m['nproc']}, `lscpu`: {m['cpu']}; Python {m['python']}, numpy {m['numpy']}; "
        f"{m['date']}. **Shared machine**: other engineers' jobs ran at the same time; load averages "
        f"(1/5/15 min) {ls[0]}/{ls[1]}/{ls[2]} at the start, {le[0]}/{le[1]}/{le[2]} at the end, on "
        f"{m['nproc']} cores. Wall times are therefore upper bounds and noisy; CPU times are steadier. "
        + (f"{reps} rounds of the three variants, interleaved; " if reps > 1 else "One round; ")
        + "each variant runs in its own subprocess (peak RSS = its own `ru_maxrss`).",
        "",
        f"Set-up: response model from `ml.train.train_model` (default `TrainConfig`, `n_jobs=2`) on "
        f"{info['train_rows']:,} `ml.synthetic` examples: {info['trees_used']} trees used (best iteration "
        f"of {info['trees_built']} built, depth 6), {info['n_features']} features, trained in "
        f"{info['train_s']} s (not counted). {n:,} `ml.synthetic` customers x {k} arms (4 offers x 4 "
        "channels x 3 times of day); consent per channel as in `benchmarks/scenarios/default.yaml` "
        f"(email 92 %, sms 75 %, app push 60 % scaled by engagement, branch 100 %): "
        f"{info['disallowed_share']:.1%} of the pairs are disallowed, "
        f"{info['customers_with_a_channel_masked']:.0%} of customers lack at least one channel. "
        "Decide as in `pipelines/decide.py`: 200,000 customers per chunk, `thompson_blend` (weight "
        f"{info['blend_weight']}, {info['blend_draws']} Monte Carlo draws for propensities), 9 segments; "
        "every customer in treatment (the pipeline scores treatment customers only: the holdout "
        "control, 10 % by default, is not scored either).",
        "",
        *md,
        "",
        "Ratios are the hybrid decide's total time over the baseline's prediction time. Wall: "
        "medians of the rounds (in brackets the paired ratio of each round: the load changed from "
        "minute to minute, so single wall ratios swing widely). CPU: this process's CPU time (XGBoost "
        "counted on both its threads), the figure least moved by the other jobs. Idle 2-core estimate: "
        "from the CPU times, XGBoost's prediction at CPU/2 (both threads, perfect scaling), everything "
        "else (feature rows, pandas, the policy) on one thread; about the worst ratio an idle machine "
        "would show (XGBoost rarely scales perfectly).",
        "",
        f"Goal (within {GOAL_RATIO}x, under {GOAL_MEMORY_MB // 1024} GB): allowed pairs only — "
        f"{goal('hybrid_skip')}; every pair scored — {goal('hybrid_all')}. Peak memory is "
        f"{max(s[f'{v}_peak_rss_mb'] for v in VARIANTS) / 1024:.1f} GB at most (of it "
        f"{s['runs']['baseline'][0]['inputs_rss_mb']:,.0f} MB the inputs: the customer frame, masks, model).",
        "",
        "Decisions of the two hybrid runs (same seed, last round): arms, propensities, model, bandit "
        f"and blend scores {same_text}.",
        "",
        "**Choice: score only the allowed pairs.** `score_matrix(..., allowed=mask)` builds and "
        "predicts only the (customer, arm) rows whose channel the customer consented to and leaves "
        "NaN in the others; `pipelines.decide.model_scores` passes the chunk's consent mask and sets the "
        "skipped pairs to 0 before the policy (the policies refuse NaN scores). It is exact: an XGBoost "
        "row's prediction depends on that row alone (the allowed scores are bit-identical, "
        "`tests/ml/test_scoring.py`), and no policy picks or reads the score of a disallowed arm — each "
        "masks them first (ThompsonBlend sets their value to -inf) — so decisions and propensities are "
        "the same, checked for every policy in the tests and above at full scale. The saving is the "
        f"disallowed share ({info['disallowed_share']:.0%} here; more for campaigns on channels with "
        "lower consent).",
        "",
        "What was not done, and why:",
        "",
        f"- *Skipping arms that cannot win by a bound.* Honest bound for `thompson_blend`: arm a cannot "
        f"win if w * (its best posterior sample) + (1-w) * p_max < max over other allowed arms b of "
        f"(w * worst sample of b + (1-w) * p_b), with p_max the largest output the model can give any "
        f"input (every tree at its largest leaf: {info['model_max_output']:.3f}; the largest score seen "
        f"was {info['scored_p_max_sample']:.3f}). On {info['bound_sample']:,} sampled customers it skips "
        f"{info['skippable_share_blind_bound']:.2%} of the allowed pairs before scoring, and "
        f"{info['skippable_share_oracle_bound']:.2%} even if every other arm's true score were known: "
        "at ~3 % conversion the posterior gaps between arms (a few points, times w = 0.7) never "
        "outweigh (1-w) x (p_max - p_b). With the arm's own score in place of p_max the same bound "
        f"rules out {info['bound_share_after_scoring']:.0%} of the allowed pairs: only a few arms can win "
        "for a given customer, but telling which takes their scores, i.e. the prediction this would "
        "save. Not implemented.",
        f"- *Scoring the customer-only part once.* A tree ensemble is not additive in customer and arm "
        f"features; only trees that split on customer features alone could be computed once per customer. "
        f"Here {info['trees_using_arm_features']} of {info['trees_used']} trees split on an arm feature "
        f"({info['trees_customer_only']} do not): splitting the model would save "
        f"~{info['trees_customer_only'] / max(info['trees_used'], 1):.0%} of the tree work, at the cost of "
        "editing the booster. Not worth it.",
        f"- *Scoring each distinct customer row once.* {info['unique_customer_rows']:,} distinct customer "
        f"feature rows among {n:,} customers (continuous income, engagement): nothing to share.",
        "",
        "Reading it: XGBoost's prediction is the bulk of the hybrid decide; the feature rows add "
        f"~{s['baseline_build_cpu_s']:.1f} s CPU and the `thompson_blend` step "
        f"~{s['hybrid_skip_policy_cpu_s']:.1f} s CPU on one thread (Monte Carlo propensities per "
        "customer, since every customer has their own model scores). The policy step is now the "
        "largest overhead, and on an idle machine it is what keeps the ratio near the goal: the next "
        "lever, if one is needed, is in `bandits/thompson.py` (`_plan_blend`), not in the scoring. "
        "Memory is bounded by the chunks: a 262,144-row feature matrix and the 200,000-customer "
        "policy arrays; the baseline's peak is higher only because it keeps the full 1M x 48 score "
        "matrix and customer block.",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace (or append) only this section; re-read right before writing, others edit the file too."""
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(updated)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--arms", type=int, default=48)
    ap.add_argument("--train-rows", type=int, default=200_000, help="synthetic examples to train on")
    ap.add_argument("--repeats", type=int, default=1, help="rounds of the three variants (median reported)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--write", action="store_true", help="update the section of BENCHMARKS.md")
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.workdir, args.seed)))
        return 0

    m = machine()
    load_start = load3()
    with tempfile.TemporaryDirectory(prefix="bench_hybrid_") as tmp:
        workdir = Path(tmp)
        info = prepare(workdir, args.customers, args.arms, args.train_rows, args.seed)
        info["train_rows"] = args.train_rows
        log(f"set-up: {json.dumps(info)}")
        runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        for r in range(args.repeats):
            log(f"round {r + 1} of {args.repeats}:")
            for mode in VARIANTS:
                runs[mode].append(run_child(mode, workdir, args.seed))
        identical = same_decisions(workdir)
    s = summarise(info, runs, identical, m, load_start, load3())
    parts = [".venv/bin/python benchmarks/bench_hybrid_decide.py"]
    if args.customers != 1_000_000:
        parts.append(f"--customers {args.customers}")
    if args.arms != 48:
        parts.append(f"--arms {args.arms}")
    if args.repeats != 1:
        parts.append(f"--repeats {args.repeats}")
    if args.write:
        parts.append("--write")
    text = report(s, " ".join(parts))
    if args.json:
        print(json.dumps(s, indent=2, default=str))
    else:
        print(text)
        print(table(
            [(v, f"{median_of(runs[v], 'total_wall_s' if v != 'baseline' else 'predict_wall_s'):.1f}",
              f"{s[f'{v}_peak_rss_mb']:,.0f}") for v in VARIANTS],
            ("variant", "wall s", "peak RSS MB"),
        ), file=sys.stderr)
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", text)
        log("BENCHMARKS.md updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

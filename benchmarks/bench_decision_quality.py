"""Decision quality: every policy against the baselines in the simulated bank.

The product runs as it runs in production: the policies that use a model (the blends, the
confidence hybrid, epsilon-greedy, rotation, lifecycle) are rebuilt every morning from their
segment x arm statistics and score the day's customers with their *own* champion, retrained
after every daily build on their own matured feedback by the product's retraining code
(``ml.train.train_model``, the gate of ``ml.gate``, promotion; in memory, see
``pipelines.retrain.in_memory``). Against them: ``gb_greedy`` (one sklearn
HistGradientBoostingClassifier of P(convert | customer, offer, channel, time) refit daily on
all matured feedback, greedy with 5 % uniform exploration), uniform, static A/B then commit,
the best single arm in hindsight and the oracle, plus two ceilings (segment oracle, feature
oracle). Four worlds: ``default`` (heterogeneity partly in age x income),
``continuous_heterogeneity`` (in loyalty, engagement and web visits only),
``no_heterogeneity`` (context carries no signal) and ``few_arms`` (4 arms, 10 % base rate,
one winner for nearly everyone); and the default world without its hidden channel liking.
Means ± standard errors over seeds. With ``--write`` it replaces the "## Decision quality"
section of BENCHMARKS.md (keeping any "### Analysis" text already in it).

    .venv/bin/python benchmarks/bench_decision_quality.py --quick --workers 2 --write   # 2,000 sends/day
    .venv/bin/python benchmarks/bench_decision_quality.py --seeds 5 --workers 2 --write # 20,000 sends/day
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import platform
import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.train import TrainConfig  # noqa: E402
from pipelines.campaign_spec import load_campaign  # noqa: E402
from pipelines.retrain.config import RetrainConfig  # noqa: E402
from pipelines.simulator import load_scenario, plot_report, simulate_run  # noqa: E402
from pipelines.simulator.loop import RunResult  # noqa: E402
from pipelines.simulator.report import Estimate, SimulationReport, summarize  # noqa: E402
from pipelines.simulator.runners import MODEL_POLICIES  # noqa: E402
from pipelines.simulator.scenario import Scenario  # noqa: E402

SCENARIOS = ("default", "continuous_heterogeneity", "no_heterogeneity", "few_arms")
# What holds the policies back: the default world without the hidden per-customer channel
# liking (the part of the oracle's edge no policy can learn), for a few policies.
HIDDEN_OFF = "default_no_hidden_channel_liking"
HIDDEN_OFF_POLICIES = ("thompson", "thompson_blend", "gb_greedy", "segment_oracle", "feature_oracle")
TRAINED = {"kind": "trained"}
VARIANTS = {
    "default": ("default", {}, TRAINED),
    "continuous_heterogeneity": ("continuous_heterogeneity", {}, TRAINED),
    "no_heterogeneity": ("no_heterogeneity", {}, TRAINED),
    "few_arms": ("few_arms", {}, TRAINED),
    HIDDEN_OFF: ("default", {"latent_channel_sd": 0.0}, TRAINED),
}
POLICIES = (
    "thompson",
    "thompson_global",
    "ucb",
    "epsilon_greedy",
    "thompson_blend",
    "ucb_blend",
    "confidence_hybrid",
    "igw",
    "rotation",
    "lifecycle",
    "gb_greedy",
    "segment_oracle",
    "feature_oracle",
)
# The shipped default: the policy of campaigns/cross_sell.yaml, run with that file's hyperparameters.
SHIPPED_SPEC = load_campaign(ROOT / "campaigns" / "cross_sell.yaml").policy
SHIPPED = SHIPPED_SPEC.name
GB = "gb_greedy"
# Policies that use context (segments and/or the model): compared with plain Thompson.
CONTEXTUAL = (
    "thompson",
    "thompson_blend",
    "ucb_blend",
    "confidence_hybrid",
    "igw",
    "lifecycle",
    "epsilon_greedy",
    GB,
)
PLAIN = "thompson_global"
CEILINGS = ("segment_oracle", "feature_oracle")
SECTION = "## Decision quality"
LAST_DAYS = 10
FROM_DAY = 5  # "at or above the greedy baseline at every day from day 5" (issue 12)
QUICK_SENDS = 2_000
# Each worker runs one seed; XGBoost and scikit-learn get one thread each so two workers fit 2 cores.
RETRAIN = RetrainConfig(train=TrainConfig(n_jobs=1))
CACHE = os.environ.get("DECISION_QUALITY_CACHE")  # folder for each finished run, when set


def scenario_of(variant: str) -> Scenario:
    file, response_changes, model_changes = VARIANTS[variant]
    scenario = load_scenario(ROOT / "benchmarks" / "scenarios" / f"{file}.yaml")
    response = scenario.response.model_copy(update=response_changes)
    model = scenario.model.model_copy(update=model_changes)
    params = {**scenario.policies.params, SHIPPED: dict(SHIPPED_SPEC.params)}
    policies = scenario.policies.model_copy(update={"params": params})
    update = {"name": variant, "response": response, "model": model, "policies": policies}
    return scenario.model_copy(update=update)


def _run(args: tuple[str, int, int, int]) -> tuple[str, RunResult, float]:
    from threadpoolctl import threadpool_limits

    variant, seed, days, sends = args
    policies = HIDDEN_OFF_POLICIES if variant == HIDDEN_OFF else POLICIES
    started = time.perf_counter()
    with threadpool_limits(1):
        run = simulate_run(
            scenario_of(variant), policies, seed, days=days, sends_per_day=sends, retrain=RETRAIN
        )
    if CACHE:  # a long run's finished seeds survive an interrupted report
        Path(CACHE).mkdir(parents=True, exist_ok=True)
        (Path(CACHE) / f"{variant}_{seed}.pkl").write_bytes(pickle.dumps(run))
    return variant, run, time.perf_counter() - started


def paired(runs: Sequence[RunResult], label: str, reference: str) -> Estimate:
    """Per-seed difference in share of the oracle (percentage points), mean ± se."""
    diffs = [
        (run.expected[run.row(label)].sum() - run.expected[run.row(reference)].sum())
        / run.expected[run.row("oracle")].sum()
        for run in runs
    ]
    return Estimate.of(diffs)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc), {cpu}, Python {platform.python_version()}, numpy {np.__version__}"


def _pct(e: Estimate, digits: int = 1) -> str:
    return e.format(f".{digits}f", 100)


def tail_days(days: int) -> int:
    return min(days, LAST_DAYS)


def days_at_or_above(runs: Sequence[RunResult], label: str, reference: str) -> str:
    """Days from FROM_DAY (1-based) on which the seed-mean daily expected conversions of ``label``
    are at or above ``reference``'s, out of those days."""
    mine = np.mean([run.expected[run.row(label)] for run in runs], axis=0)[FROM_DAY - 1 :]
    theirs = np.mean([run.expected[run.row(reference)] for run in runs], axis=0)[FROM_DAY - 1 :]
    return f"{int((mine >= theirs).sum())}/{mine.size}"


def quality_table(report: SimulationReport, runs: Sequence[RunResult]) -> list[str]:
    tail = tail_days(report.days)
    lines = [
        f"| policy | share of oracle, {report.days} d | share of oracle, last {tail} d "
        f"| vs {GB} (pp of oracle, paired) | days ≥ {GB} from day {FROM_DAY} "
        "| lift vs uniform | lift vs static A/B | regret (conv.) | days to beat best arm |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report.summaries:
        name = f"*{s.label}* (ceiling)" if s.label in CEILINGS else s.label
        name = f"**{name}**" if s.label in (GB, SHIPPED) else name
        versus = paired(runs, s.label, GB).format("+.1f", 100) if s.label != GB else "—"
        above = days_at_or_above(runs, s.label, GB) if s.label != GB else "—"
        lines.append(
            f"| {name} | {_pct(s.share_of_oracle)} % | {_pct(s.final_share_of_oracle)} % "
            f"| {versus} | {above} "
            f"| {_pct(s.lift_vs_uniform)} % | {_pct(s.lift_vs_static_ab)} % | {s.regret.format('.0f')} "
            f"| {s.days_to_beat_best_arm.format('.1f')} |"
        )
    return lines


def finite_mean(values: Sequence[float]) -> Estimate:
    """Mean ± se of the finite values (a seed whose policy never promoted a model has no AUC)."""
    finite = [v for v in values if np.isfinite(v)]
    return Estimate.of(finite) if finite else Estimate(float("nan"), float("nan"))


def model_table(runs: Sequence[RunResult]) -> list[str]:
    """What each model-assisted policy's own retraining did (means over seeds)."""
    lines = [
        "| policy | first day scored by a model (0-based; = days: never) | retrainings | promotions "
        "| champion's validation AUC | sends the model chose |",
        "|---|---|---|---|---|---|",
    ]
    for label in POLICIES:
        if label not in MODEL_POLICIES or label not in runs[0].diagnostics:
            continue
        mean = {
            k: Estimate.of([run.diagnostics[label][k] for run in runs]) for k in runs[0].diagnostics[label]
        }
        chose = _pct(mean["model_selected_share"]) + " %" if label == "confidence_hybrid" else "—"
        lines.append(
            f"| {label} | {mean['first_model_day'].format('.1f')} | {mean['retrainings'].format('.1f')} "
            f"| {mean['promotions'].format('.1f')} | {mean['champion_auc'].format('.3f')} | {chose} |"
        )
    return lines


def context_table(runs_by_scenario: dict[str, list[RunResult]]) -> list[str]:
    worlds = [name for name in SCENARIOS if runs_by_scenario.get(name)]
    lines = [
        f"| policy | {' | '.join(f'vs {PLAIN}, {w}' for w in worlds)} "
        "| loses where context carries no signal? |",
        "|---|" + "---|" * (len(worlds) + 1),
    ]
    for label in CONTEXTUAL:
        cells = [paired(runs_by_scenario[w], label, PLAIN) for w in worlds]
        control = [c for w, c in zip(worlds, cells, strict=True) if w in ("no_heterogeneity", "few_arms")]
        loses = [c.mean + 2 * c.se < 0 for c in control]
        verdict = "**yes** (more than 2 se below)" if any(loses) else "no"
        lines.append(f"| {label} | {' | '.join(c.format('+.2f', 100) for c in cells)} | {verdict} |")
    return lines


def hidden_table(reports: dict[str, SimulationReport]) -> list[str]:
    base, off = reports["default"], reports[HIDDEN_OFF]
    lines = [
        f"| policy | default: share of oracle, {base.days} d | last {tail_days(base.days)} d "
        f"| without hidden channel liking: share of oracle, {off.days} d | last {tail_days(off.days)} d |",
        "|---|---|---|---|---|",
    ]
    for label in HIDDEN_OFF_POLICIES:
        a, b = base.summary(label), off.summary(label)
        lines.append(
            f"| {label} | {_pct(a.share_of_oracle)} % | {_pct(a.final_share_of_oracle)} % "
            f"| {_pct(b.share_of_oracle)} % | {_pct(b.final_share_of_oracle)} % |"
        )
    return lines


def key_facts(report: SimulationReport) -> list[str]:
    policies = [s for s in report.summaries if s.label in POLICIES and s.label not in (*CEILINGS, GB)]
    best = max(policies, key=lambda s: s.share_of_oracle.mean)
    best_late = max(policies, key=lambda s: s.final_share_of_oracle.mean)
    gb, shipped = report.summary(GB), report.summary(SHIPPED)
    seg, feat = report.summary("segment_oracle"), report.summary("feature_oracle")
    tail = tail_days(report.days)
    return [
        f"- best product policy over the {report.days} days: **{best.label}**, "
        f"{_pct(best.share_of_oracle)} % of the oracle "
        f"(last {tail} d: {_pct(best.final_share_of_oracle)} %); "
        "best once learned: "
        f"**{best_late.label}**, {_pct(best_late.final_share_of_oracle)} %.",
        f"- the shipped default `{SHIPPED}`: {_pct(shipped.share_of_oracle)} % "
        f"(last {tail} d: {_pct(shipped.final_share_of_oracle)} %); `{GB}`: {_pct(gb.share_of_oracle)} % "
        f"(last {tail} d: {_pct(gb.final_share_of_oracle)} %). Goal: 80 % / 88 %.",
        f"- ceilings: segment oracle {_pct(seg.share_of_oracle)} %, feature oracle (a perfect model of the "
        f"observed features) {_pct(feat.share_of_oracle)} %.",
    ]


def section(
    reports: dict[str, SimulationReport],
    runs_by_scenario: dict[str, list[RunResult]],
    args: argparse.Namespace,
    seconds: float,
    analysis: str,
) -> str:
    today = dt.date.today().isoformat()
    quick = " --quick" if args.quick else f" --seeds {args.seeds} --sends-per-day {args.sends_per_day}"
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python benchmarks/bench_decision_quality.py{quick} --days {args.days} "
        f"--workers {args.workers} --write`  ",
        f"Machine: {machine()} (shared with two other sessions)  ",
        f"Date: {today}; "
        + (f"wall time {seconds / 60:.1f} min.  " if not getattr(args, "from_cache", None) else
           f"{args.seeds} seed(s) of an interrupted run (the shared machine ran it at a quarter of a core), "
           "reported from its saved runs with `--from-cache`.  "),
        "Curves (cumulative regret, daily conversion rate) and raw figures: "
        "`benchmarks/results/decision_quality_<scenario>.png` / `.json`.",
        "",
        f"Setup: {args.days} simulated days x {args.sends_per_day:,} sends/day drawn from 100,000 customers, "
        "9 segments (age band x income band), consent per channel, feedback lag 2 days (a send of day d "
        f"is learned from at the end of day d+2), {args.seeds} seeds "
        f"({', '.join(map(str, reports['default'].seeds))}); mean ± standard error over seeds. "
        "The model-assisted policies (`" + "`, `".join(p for p in POLICIES if p in MODEL_POLICIES) + "`) "
        "run as in production: rebuilt each morning from the matured segment x arm statistics, scoring "
        "the day's customers with their own champion — the product's XGBoost model retrained after every "
        "daily build on that policy's own matured sends by the product's code (`RetrainConfig()` "
        f"defaults: at least {RETRAIN.min_examples:,} examples over {RETRAIN.min_days} days, the newest "
        f"{RETRAIN.train.validation_days} day(s) validate, the gate's AUC floor and paired comparison"
        + (" (a fresher challenger not significantly worse replaces the champion)"
           if RETRAIN.gate.refresh_when_not_worse else "")
        + ", auto-promotion; XGBoost with 1 thread), a retraining of day d's evening serving from day d+2. "
        f"`{GB}`: one scikit-learn `HistGradientBoostingClassifier` (defaults) of P(convert | the 9 customer "
        "columns, the arm's offer/channel/time one-hot), refit each morning on all matured feedback, greedy "
        "with 5 % uniform exploration. Policies run with their default hyperparameters, the shipped "
        f"`{SHIPPED}` with those of `campaigns/cross_sell.yaml` ({json.dumps(dict(SHIPPED_SPEC.params))}). "
        "Shares and "
        f"lifts are of *expected* conversions (sum of the true probabilities of the chosen arms); "
        f'"last {tail_days(args.days)} d" is days {args.days - tail_days(args.days) + 1}-{args.days}. '
        f"`{PLAIN}` is Thompson sampling without context (one segment). "
        "Ceilings (*italic*) are not policies: they read the truth.",
        "",
    ]
    for name in SCENARIOS:
        report, runs = reports[name], runs_by_scenario[name]
        scenario = scenario_of(name)
        lines += [
            f"### {name}",
            "",
            scenario.description,
            "",
            *quality_table(report, runs),
            "",
            *key_facts(report),
            "",
            "The product's retraining in this world:",
            "",
            *model_table(runs),
            "",
        ]
    lines += [
        "### Context where it carries no signal",
        "",
        f"Paired per seed (same customers, same outcome draws): share of the oracle minus that of "
        f'`{PLAIN}`, in percentage points. "Loses" is judged in `no_heterogeneity` and `few_arms`.',
        "",
        *context_table(runs_by_scenario),
        "",
    ]
    lines += [
        "### What the hidden heterogeneity costs",
        "",
        "The same default world with the hidden per-customer channel liking switched off "
        "(`response.latent_channel_sd: 0`; the hidden overall propensity stays — it moves every arm "
        "of a customer alike, so it does not change which arm is best).",
        "",
        *hidden_table(reports),
        "",
    ]
    lines += [analysis.rstrip(), ""] if analysis.strip() else []
    return "\n".join(lines)


def existing_analysis(text: str) -> str:
    """The '### Analysis' part of the current Decision quality section, if any."""
    match = re.search(rf"^{re.escape(SECTION)}\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    if not match:
        return ""
    body = match.group(1)
    start = body.find("### Analysis")
    return body[start:].rstrip() + "\n" if start >= 0 else ""


def write_section(path: Path, content: str) -> None:
    """Replace (or append) the Decision quality section; the file is re-read just before writing."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\s*$.*?(?=^## |\Z)", flags=re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: content.rstrip() + "\n\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + content.rstrip() + "\n"
    path.write_text(text.rstrip() + "\n")


def cached_runs(folder: Path) -> dict[str, list[RunResult]]:
    """The runs saved in ``folder``, for the seeds that every world finished."""
    runs: dict[str, dict[int, RunResult]] = {name: {} for name in VARIANTS}
    for path in sorted(folder.glob("*.pkl")):
        variant, seed = path.stem.rsplit("_", 1)
        if variant in runs:
            runs[variant][int(seed)] = pickle.loads(path.read_bytes())
    seeds = sorted(set.intersection(*(set(by_seed) for by_seed in runs.values())))
    if not seeds:
        raise SystemExit(f"{folder}: no seed has finished every world ({', '.join(VARIANTS)})")
    return {name: [runs[name][seed] for seed in seeds] for name in VARIANTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sends-per-day", type=int, default=20_000)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_SENDS:,} sends/day and 3 seeds (about 10 min on 2 cores).",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--write", action="store_true", help="Update the section of BENCHMARKS.md.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--from-cache",
        type=Path,
        help="Report the runs an earlier run saved (DECISION_QUALITY_CACHE): the seeds all worlds finished.",
    )
    args = parser.parse_args()
    if args.quick:
        args.sends_per_day, args.seeds = QUICK_SENDS, 3

    started = time.perf_counter()
    if args.from_cache:
        runs_by_scenario = cached_runs(args.from_cache)
        args.seeds = len(runs_by_scenario["default"])
    else:
        jobs = [(v, seed, args.days, args.sends_per_day) for seed in range(args.seeds) for v in VARIANTS]
        runs_by_scenario = {name: [] for name in VARIANTS}
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for name, run, seconds in pool.map(_run, jobs):
                runs_by_scenario[name].append(run)
                print(f"{name} seed {run.seed}: {seconds:.0f} s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started

    reports: dict[str, SimulationReport] = {}
    args.out.mkdir(parents=True, exist_ok=True)
    for name in VARIANTS:
        scenario = scenario_of(name)
        reports[name] = summarize(
            runs_by_scenario[name],
            scenario=name,
            lag=scenario.loop.feedback_lag_days,
            model=scenario.model.kind,
            tolerance=scenario.loop.converge_tolerance,
            tail_days=LAST_DAYS,
        )
        plot_report(reports[name], args.out / f"decision_quality_{name}.png")
        data = reports[name].to_dict(curves=True)
        data["diagnostics"] = [run.diagnostics for run in runs_by_scenario[name]]
        (args.out / f"decision_quality_{name}.json").write_text(json.dumps(data, indent=1, default=float))

    benchmarks_md = ROOT / "BENCHMARKS.md"
    analysis = existing_analysis(benchmarks_md.read_text()) if benchmarks_md.exists() else ""
    content = section(reports, runs_by_scenario, args, elapsed, analysis)
    print(content)
    if args.write:
        write_section(benchmarks_md, content)
        print(f"\nwrote the section to {benchmarks_md}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Decision quality: every policy against the baselines in the simulated bank.

Runs every policy, uniform, static A/B, the best single arm in hindsight and the oracle
(plus two ceilings: the segment oracle and the feature oracle) through 30 simulated days
of 20,000 sends/day over 48 arms with a 2-day feedback lag, on several seeds, on the
default scenario and on the no-heterogeneity control, and reports means ± standard
errors. With ``--write`` it replaces the "## Decision quality" section of BENCHMARKS.md
(keeping any "### Analysis" text already in it).

    .venv/bin/python benchmarks/bench_decision_quality.py --seeds 5 --workers 2 --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
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

from pipelines.simulator import load_scenario, plot_report, simulate_run  # noqa: E402
from pipelines.simulator.loop import RunResult  # noqa: E402
from pipelines.simulator.report import Estimate, SimulationReport, summarize  # noqa: E402
from pipelines.simulator.scenario import Scenario  # noqa: E402

SCENARIOS = ("default", "no_heterogeneity")
# What holds the policies back: the default world without the hidden per-customer channel
# liking (the part of the oracle's edge no policy can learn), for a few policies.
HIDDEN_OFF = "default_no_hidden_channel_liking"
HIDDEN_OFF_POLICIES = ("thompson", "thompson_blend", "confidence_hybrid", "segment_oracle", "feature_oracle")
VARIANTS = {
    "default": ("default", {}),
    "no_heterogeneity": ("no_heterogeneity", {}),
    HIDDEN_OFF: ("default", {"latent_channel_sd": 0.0}),
}
POLICIES = (
    "thompson",
    "thompson_global",
    "ucb",
    "epsilon_greedy",
    "thompson_blend",
    "ucb_blend",
    "confidence_hybrid",
    "rotation",
    "interleaved",
    "lifecycle",
    "segment_oracle",
    "feature_oracle",
)
# Policies that use context (segments and/or the model): compared with plain Thompson.
CONTEXTUAL = ("thompson", "thompson_blend", "ucb_blend", "confidence_hybrid", "lifecycle", "epsilon_greedy")
PLAIN = "thompson_global"
CEILINGS = ("segment_oracle", "feature_oracle")
SECTION = "## Decision quality"
PRODUCT_TARGET = 0.90


def scenario_of(variant: str) -> Scenario:
    file, response_changes = VARIANTS[variant]
    scenario = load_scenario(ROOT / "benchmarks" / "scenarios" / f"{file}.yaml")
    response = scenario.response.model_copy(update=response_changes)
    return scenario.model_copy(update={"name": variant, "response": response})


def _run(args: tuple[str, int, int, int]) -> tuple[str, RunResult, float]:
    variant, seed, days, sends = args
    policies = HIDDEN_OFF_POLICIES if variant == HIDDEN_OFF else POLICIES
    started = time.perf_counter()
    run = simulate_run(scenario_of(variant), policies, seed, days=days, sends_per_day=sends)
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
    return min(days, max(3, days // 5))  # as pipelines.simulator.report.summarize


def quality_table(report: SimulationReport) -> list[str]:
    lines = [
        f"| policy | share of oracle, {report.days} d | share of oracle, last {tail_days(report.days)} d "
        "| lift vs uniform | lift vs static A/B "
        "| regret (conv.) | expected conv. | realised conv. | days to converge | days to beat best arm |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report.summaries:
        name = f"*{s.label}* (ceiling)" if s.label in CEILINGS else s.label
        lines.append(
            f"| {name} | {_pct(s.share_of_oracle)} % | {_pct(s.final_share_of_oracle)} % "
            f"| {_pct(s.lift_vs_uniform)} % | {_pct(s.lift_vs_static_ab)} % | {s.regret.format('.0f')} "
            f"| {s.expected_conversions.format('.0f')} | {s.realised_conversions.format('.0f')} "
            f"| {s.days_to_converge.format('.1f')} | {s.days_to_beat_best_arm.format('.1f')} |"
        )
    return lines


def context_table(runs_by_scenario: dict[str, list[RunResult]]) -> list[str]:
    lines = [
        f"| policy | vs {PLAIN}, default (pp of oracle) | vs {PLAIN}, no_heterogeneity (pp of oracle) "
        "| loses where context carries no signal? |",
        "|---|---|---|---|",
    ]
    for label in CONTEXTUAL:
        default = paired(runs_by_scenario["default"], label, PLAIN)
        control = paired(runs_by_scenario["no_heterogeneity"], label, PLAIN)
        loses = control.mean + 2 * control.se < 0
        verdict = "**yes** (more than 2 se below)" if loses else "no"
        lines.append(
            f"| {label} | {default.format('+.2f', 100)} | {control.format('+.2f', 100)} | {verdict} |"
        )
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
    policies = [s for s in report.summaries if s.label in POLICIES and s.label not in CEILINGS]
    best = max(policies, key=lambda s: s.share_of_oracle.mean)
    best_late = max(policies, key=lambda s: s.final_share_of_oracle.mean)
    seg = report.summary("segment_oracle")
    feat = report.summary("feature_oracle")
    ab = report.summary("static_ab")
    target = "meets" if best.share_of_oracle.mean >= PRODUCT_TARGET else "misses"
    of_learnable = best.expected_conversions.mean / feat.expected_conversions.mean
    return [
        f"- best policy over the {report.days} days: **{best.label}**, {_pct(best.share_of_oracle)} % of the "
        f"oracle's conversions ({target} the 90 % product target), {_pct(best.lift_vs_static_ab)} % over "
        f"static A/B (static A/B itself: {_pct(ab.share_of_oracle)} % of the oracle); that is "
        f"{of_learnable:.1%} of what a perfect model of the observed features gets.",
        f"- best policy once learned (last {tail_days(report.days)} days): **{best_late.label}**, "
        f"{_pct(best_late.final_share_of_oracle)} % of the oracle.",
        f"- ceilings: a segment oracle (true segment x arm means) reaches {_pct(seg.share_of_oracle)} %, a "
        f"feature oracle (perfect model of observed features) {_pct(feat.share_of_oracle)} %; the rest is "
        "hidden per-customer heterogeneity and daily noise, which no policy can learn.",
    ]


def section(
    reports: dict[str, SimulationReport],
    runs_by_scenario: dict[str, list[RunResult]],
    args: argparse.Namespace,
    seconds: float,
    analysis: str,
) -> str:
    today = dt.date.today().isoformat()
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python benchmarks/bench_decision_quality.py --seeds {args.seeds} "
        f"--days {args.days} --sends-per-day {args.sends_per_day} --workers {args.workers} --write`  ",
        f"Machine: {machine()}  ",
        f"Date: {today}; wall time {seconds / 60:.1f} min.  ",
        "Curves (cumulative regret, daily conversion rate) and raw figures: "
        "`benchmarks/results/decision_quality_<scenario>.png` / `.json`.",
        "",
        f"Setup: {args.days} simulated days x {args.sends_per_day:,} sends/day, 48 arms (4 offers x 4 "
        "channels x 3 times of day), 9 segments (age band x income band), consent per channel, feedback "
        f"lag 2 days (a send of day d is learned from at the end of day d+2), {args.seeds} seeds "
        f"({', '.join(map(str, reports['default'].seeds))}); mean ± standard error over seeds. Policies "
        "run with their default hyperparameters. Blend/hybrid policies get the scenario's model: the true "
        "response on observed features plus N(0, 0.3) logit noise — a stand-in for the trained model, "
        "not a fitted one. Shares and lifts are of *expected* conversions (sum of the true probabilities "
        "of the chosen arms); realised conversions are the Bernoulli draws (same random numbers for "
        "every policy). `thompson_global` is Thompson sampling without context (one segment). "
        "Ceilings (*italic*) are not policies: they read the truth.",
        "",
    ]
    for name in SCENARIOS:
        report = reports[name]
        lines += [f"### {name}", "", *quality_table(report), "", *key_facts(report), ""]
    lines += [
        "### Context where it carries no signal",
        "",
        f"Paired per seed (same customers, same outcome draws): share of the oracle minus that of "
        f"`{PLAIN}`, in percentage points.",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sends-per-day", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--write", action="store_true", help="Update the section of BENCHMARKS.md.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    jobs = [(name, seed, args.days, args.sends_per_day) for name in VARIANTS for seed in range(args.seeds)]
    started = time.perf_counter()
    runs_by_scenario: dict[str, list[RunResult]] = {name: [] for name in VARIANTS}
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
            model=f"{scenario.model.kind}(noise_sd={scenario.model.noise_sd})",
            tolerance=scenario.loop.converge_tolerance,
        )
        plot_report(reports[name], args.out / f"decision_quality_{name}.png")
        (args.out / f"decision_quality_{name}.json").write_text(
            json.dumps(reports[name].to_dict(curves=True), indent=1)
        )

    benchmarks_md = ROOT / "BENCHMARKS.md"
    analysis = existing_analysis(benchmarks_md.read_text()) if benchmarks_md.exists() else ""
    content = section(reports, runs_by_scenario, args, elapsed, analysis)
    print(content)
    if args.write:
        write_section(benchmarks_md, content)
        print(f"\nwrote the section to {benchmarks_md}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""`campaignopt explain DECISION_ID`: why a customer got an offer (pipelines/explain.py)."""

from __future__ import annotations

from typing import Any

import typer


def explain(
    decision_id: str = typer.Argument(..., help="The decision's id (ops.decisions.decision_id)."),
    top: int = typer.Option(5, "--top", min=1, max=50, help="Feature contributions shown per arm."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The decision's logged score parts and, from the model version that scored it, the model's
    ranking of the arms and the exact tree SHAP contributions of the chosen arm and the runner-up."""
    from pipelines.db import get_engine
    from pipelines.explain import explain_decision

    explanation = explain_decision(get_engine(), decision_id, top=top)  # unknown id: NotFound, exit 4
    if as_json:
        from pipelines.cli.output import print_json

        print_json(explanation)
        return
    print_explanation(explanation)


def print_explanation(e: dict[str, Any]) -> None:
    from pipelines.cli.output import console, print_table

    d, s, m = e["decision"], e["scores"], e["model"]
    console.print(
        f"[bold]{d['decision_id']}[/bold]: {d['campaign']} -> {d['customer_id']} on {d['decision_date']}"
    )
    console.print(f"arm {d['arm_id']} {d['params']}  ({d['source']}, {d['treatment_group']})")
    console.print(e["why"])
    print_table([{k: _fmt(v) for k, v in s.items()}], title="Logged scores")
    runner = e["policy_runner_up"]
    if runner:
        console.print(
            f"the policy's runner-up: arm {runner['arm_id']} {runner['params']} with probability "
            f"{runner['propensity']:.3f} (gap {runner['gap']:+.3f})"
        )
    if m["status"] != "ok":
        console.print(f"model: {m['reason']}")
        return
    check = "matches" if m["rederived"] else "DOES NOT match"
    console.print(
        f"model {m['version']}: P(convert) {m['rederived_score']:.4f} ({check} the logged score), "
        f"rank {m['rank_of_chosen']} of {len(m['arm_scores'])}"
    )
    _contrib_table(m["contributions"], "chosen arm")
    runner = m["runner_up"]
    if runner:
        console.print(
            f"runner-up arm {runner['arm_id']} {runner['params']}: {runner['score']:.4f} "
            f"(gap {runner['gap']:+.4f})"
        )
        _contrib_table(runner["contributions"], "runner-up")


def _contrib_table(c: dict[str, Any], title: str) -> None:
    from pipelines.cli.output import console, print_table

    if c["status"] != "ok":
        console.print(f"{title}: {c['reason']}")
        return
    rows = [
        {"feature": t["feature"], "value": _fmt(t["value"]), "log-odds": f"{t['contribution']:+.4f}"}
        for t in c["top"]
    ]
    rows.append({"feature": "(the other features)", "value": "", "log-odds": f"{c['rest']:+.4f}"})
    rows.append({"feature": "(base rate)", "value": "", "log-odds": f"{c['base_log_odds']:+.4f}"})
    print_table(rows, title=f"Why the model scored the {title} {c['probability']:.4f} (tree SHAP)")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)

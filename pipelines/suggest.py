"""Parameter expansion: which untested arms a campaign should try next, as changes a person applies.

Candidates are the arms the vocabulary (:data:`pipelines.domain.PARAMETERS`) allows over the
campaign's parameters that the campaign does not send: arms with one value it does not use
(one edit adds all of them: "add evening to time_of_day") and arms its exclusion rules remove
("drop exclusion {channel: branch, time_of_day: evening}"). Parameters the campaign does not
vary at all are not proposed: adding one changes every arm at once.

With the champion model each candidate is scored on a seeded sample of the campaign's audience
(the ``customer_features`` mart under its audience filter): the mean predicted conversion, and
as uncertainty the standard deviation of that mean over a bootstrap of the audience sample.
Why this measure: it is defined for any model, deterministic under the seed, and says how much
the estimate depends on which customers were drawn (segments where the model disagrees widen
it). It does not measure the model's own error on a value it never saw in training (a value the
spec does not know encodes as all zeros): such candidates are flagged ``model_knows_values:
false`` instead of being given a made-up spread. XGBoost iteration ranges were not used: later
boosting rounds correct earlier ones, so their disagreement is not an uncertainty.

Candidates rank by the optimistic score ``mean + K * uncertainty`` (K = 1: one standard error
of optimism, as an upper confidence bound, so a close candidate with a wide estimate is worth a
test) and are compared with the campaign's current best arm by the same model.

Without a champion the ranking uses the evidence only: a candidate's pooled Beta posterior over
the campaign's arms one parameter away from it (same values except one), mean + K * sd.

Edge proposals: ``time_of_day`` is ordered (morning < afternoon < evening) and ``day_of_week``
is ordered in a cycle (sunday is next to monday). The discounts (rate_reduction, fee_waiver,
cashback, loyalty_points) are kinds, not levels, so they have no edge, nor do offers, channels
and calls to action. When the best value of an ordered parameter by posterior mean (arms pooled
by value) is the campaign's extreme one, the adjacent value beyond it is proposed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.campaign_spec import CampaignSpec, arm_key, load_campaign
from pipelines.campaign_store import Campaign, load_campaign_by_name
from pipelines.db import read_frame
from pipelines.domain import PARAMETERS
from pipelines.errors import UserError
from pipelines.extra_features import customer_columns_sql
from pipelines.suggest_yaml import Change, edit_text, render_definition, unified_diff

K = 1.0  # optimism: mean + K * uncertainty
BOOTSTRAP_DRAWS = 200
ORDERED = {"time_of_day": False, "day_of_week": True}  # parameter -> cyclic


@dataclass(frozen=True)
class Evidence:
    """Matured sends and reward sums per current arm (summed over segments), and the Beta prior."""

    pulls: np.ndarray
    rewards: np.ndarray
    prior: tuple[float, float] = (1.0, 1.0)

    def posterior(self, mask: np.ndarray) -> tuple[float, float, float]:
        """(mean, sd, sends) of the Beta posterior pooling the arms in ``mask``."""
        n, r = float(self.pulls[mask].sum()), float(self.rewards[mask].sum())
        a, b = self.prior[0] + r, self.prior[1] + n - r
        return a / (a + b), float(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))), n


@dataclass
class Suggestion:
    arm: dict[str, str]
    change: Change
    mean: float
    uncertainty: float
    optimistic: float
    lift_vs_best: float
    reason: str
    model_knows_values: bool | None = None
    kept_layout: bool = True
    diff: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "arm_key": arm_key(self.arm),
            "change": self.change.as_json(),
            "mean": self.mean,
            "uncertainty": self.uncertainty,
            "optimistic": self.optimistic,
            "lift_vs_best": self.lift_vs_best,
            "reason": self.reason,
            "model_knows_values": self.model_knows_values,
            "kept_layout": self.kept_layout,
            "diff": self.diff,
        }


@dataclass
class SuggestReport:
    campaign: str
    basis: str  # "model" or "evidence"
    note: str
    best_arm: dict[str, Any]
    suggestions: list[Suggestion] = field(default_factory=list)
    edges: list[Suggestion] = field(default_factory=list)
    sample_size: int = 0
    file: str = ""

    def as_json(self) -> dict[str, Any]:
        """JSON-ready, for `--json` and the dashboard's panel."""
        return {
            "campaign": self.campaign,
            "basis": self.basis,
            "note": self.note,
            "k": K,
            "sample_size": self.sample_size,
            "file": self.file,
            "best_arm": self.best_arm,
            "suggestions": [s.as_json() for s in self.suggestions],
            "edges": [s.as_json() for s in self.edges],
        }


# -- candidates ---------------------------------------------------------------------------------


def candidates(spec: CampaignSpec) -> list[tuple[dict[str, str], Change]]:
    """Untested arms over the campaign's parameters and the change that makes each one sendable."""
    names = [n for n in PARAMETERS if n in spec.parameters]
    out: list[tuple[dict[str, str], Change]] = []
    for name in names:
        for value in (v for v in PARAMETERS[name] if v not in spec.parameters[name]):
            space = [[value] if n == name else spec.parameters[n] for n in names]
            out += [
                (dict(zip(names, combo, strict=True)), Change.add_value(name, value))
                for combo in itertools.product(*space)
            ]
    active = {arm_key(a) for a in spec.arms()}
    for combo in itertools.product(*(spec.parameters[n] for n in names)):
        arm = dict(zip(names, combo, strict=True))
        if arm_key(arm) not in active:
            rules = [r for r in spec.exclusions if all(arm.get(k) == v for k, v in r.items())]
            out.append((arm, Change.drop_exclusions(rules)))
    return out


# -- scoring ----------------------------------------------------------------------------------


def model_estimates(
    model: Any, customers: pd.DataFrame, arms: list[dict[str, str]], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted conversion per arm over ``customers`` and its bootstrap sd, shape (k,) each."""
    proba = np.asarray(model.score_matrix(customers, arms), dtype=float)  # (n, k)
    n = len(proba)
    # Bootstrap by multinomial weights: (B, n) @ (n, k), without materializing B resamples.
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=BOOTSTRAP_DRAWS)
    draws = weights @ proba / n
    return proba.mean(axis=0), draws.std(axis=0, ddof=1)


def knows_values(model: Any, arm: dict[str, str]) -> bool:
    """Did the model see every value of ``arm`` in training (else it scores them as missing)?"""
    categories = getattr(model.spec, "categories_", {})
    return all(v in categories.get(n, [v]) for n, v in arm.items())


def neighbour_evidence(arm: dict[str, str], current: list[dict[str, str]], evidence: Evidence) -> tuple:
    """Posterior (mean, sd, sends) of the current arms that differ from ``arm`` in one parameter."""
    mask = np.array([sum(a.get(n) != v for n, v in arm.items()) == 1 for a in current])
    return evidence.posterior(mask)


def edge_changes(spec: CampaignSpec, value_means: dict[str, dict[str, float]]) -> list[tuple[Change, str]]:
    """Adjacent values to try where an ordered parameter's best value is the campaign's extreme one.

    ``value_means``: parameter -> {value: posterior mean pooled over the arms using it}."""
    out = []
    for name, cyclic in ORDERED.items():
        if name not in spec.parameters or not value_means.get(name):
            continue
        order = PARAMETERS[name]
        used = set(spec.parameters[name])
        best = max(value_means[name], key=lambda v: (value_means[name][v], -order.index(v)))
        i = order.index(best)
        for step in (-1, 1):
            j = (i + step) % len(order) if cyclic else i + step
            beyond = [] if cyclic else order[j:] if step > 0 else order[: max(j + 1, 0)]
            # The edge: the next value is new, and (linear) the campaign uses nothing further out.
            if not 0 <= j < len(order) or order[j] in used or any(v in used for v in beyond):
                continue
            side = "latest" if step > 0 else "earliest"
            out.append(
                (
                    Change.add_value(name, order[j]),
                    f"best {name} by posterior mean is {best} ({value_means[name][best]:.2%}), "
                    f"the campaign's {side}: try {order[j]}",
                )
            )
    return out


def value_means_from_evidence(
    current: list[dict[str, str]], evidence: Evidence
) -> dict[str, dict[str, float]]:
    """Ordered parameter -> value -> pooled posterior mean; empty without any matured send."""
    if evidence.pulls.sum() <= 0:
        return {}
    out: dict[str, dict[str, float]] = {}
    for name in ORDERED:
        values = {a[name] for a in current if name in a}
        out[name] = {v: evidence.posterior(np.array([a.get(name) == v for a in current]))[0] for v in values}
    return out


def rank(
    spec: CampaignSpec,
    current: list[dict[str, str]],
    evidence: Evidence,
    model: Any | None,
    customers: pd.DataFrame | None,
    seed: int = 0,
) -> tuple[list[Suggestion], list[Suggestion], dict[str, Any]]:
    """Ranked candidates, edge proposals and the current best arm (no diffs yet)."""
    pool = candidates(spec)
    if model is not None and customers is not None and len(customers):
        arms = current + [arm for arm, _ in pool]
        mean, sd = model_estimates(model, customers, arms, seed)
        best = int(np.argmax(mean[: len(current)]))
        best_mean = float(mean[best])
        best_arm = {
            "arm": current[best],
            "arm_key": arm_key(current[best]),
            "mean": best_mean,
            "uncertainty": float(sd[best]),
            "by": "model",
        }
        scored = {arm_key(a): (float(m), float(s)) for a, m, s in zip(arms, mean, sd, strict=True)}
        reason = "model on the audience sample"
        knows = lambda arm: knows_values(model, arm)  # noqa: E731
    else:
        posts = [evidence.posterior(np.arange(len(current)) == i) for i in range(len(current))]
        best = int(np.argmax([p[0] for p in posts]))
        best_mean = posts[best][0]
        best_arm = {
            "arm": current[best],
            "arm_key": arm_key(current[best]),
            "mean": best_mean,
            "uncertainty": posts[best][1],
            "sends": posts[best][2],
            "by": "evidence",
        }
        scored = {arm_key(a): neighbour_evidence(a, current, evidence)[:2] for a, _ in pool}
        reason = "evidence of the arms one parameter away"
        knows = lambda arm: None  # noqa: E731
    suggestions = []
    for arm, change in pool:
        m, s = scored[arm_key(arm)]
        suggestions.append(Suggestion(arm, change, m, s, m + K * s, m - best_mean, reason, knows(arm)))
    suggestions.sort(key=lambda s: (-s.optimistic, -s.mean, arm_key(s.arm)))

    if model is not None and customers is not None and len(customers) and evidence.pulls.sum() <= 0:
        # No matured send yet: the ordered values' standing by the model instead.
        value_means = {n: {} for n in ORDERED if n in spec.parameters}
        for n in value_means:
            for v in spec.parameters[n]:
                value_means[n][v] = float(np.mean([scored[arm_key(a)][0] for a in current if a[n] == v]))
    else:
        value_means = value_means_from_evidence(current, evidence)
    edges = []
    for change, why in edge_changes(spec, value_means):
        arms = [s for s in suggestions if s.change == change]
        top = arms[0] if arms else None
        edges.append(
            Suggestion(
                top.arm if top else {},
                change,
                top.mean if top else float("nan"),
                top.uncertainty if top else float("nan"),
                top.optimistic if top else float("nan"),
                top.lift_vs_best if top else float("nan"),
                why,
                top.model_knows_values if top else None,
            )
        )
    return suggestions, edges, best_arm


# -- the campaign, its audience, its file ---------------------------------------------------------


_SAMPLE_SQL = """
select customer_id, segment, {columns} from analytics.customer_features f
where age between %(min_age)s and %(max_age)s and income >= %(min_income)s
  and (%(segments)s::text[] is null or segment = any(%(segments)s::text[]))
order by customer_id
"""


def audience_sample(conn: sa.Connection, spec: CampaignSpec, size: int, seed: int) -> pd.DataFrame:
    """A seeded sample of the campaign's audience filter in the latest ``customer_features``."""
    audience = spec.audience
    frame = read_frame(
        conn,
        _SAMPLE_SQL.format(columns=customer_columns_sql("f")),
        {
            "min_age": audience.min_age,
            "max_age": audience.max_age,
            "min_income": audience.min_income,
            "segments": audience.segments,
        },
    )
    if len(frame) > size:
        take = np.sort(np.random.default_rng(seed).choice(len(frame), size, replace=False))
        frame = frame.iloc[take].reset_index(drop=True)
    return frame


def campaign_evidence(
    conn: sa.Connection, campaign: Campaign, statistics: tuple[np.ndarray, np.ndarray] | None = None
) -> Evidence:
    """From ``statistics`` (matured sends and reward sums per (segment, arm), e.g. a service's
    live snapshot) when given, else from the last daily build's marts."""
    from pipelines.decide import segment_stats

    pulls, rewards = statistics if statistics is not None else segment_stats(conn, campaign)
    params = campaign.spec.policy.params
    prior = (float(params.get("prior_alpha", 1.0)), float(params.get("prior_beta", 1.0)))
    return Evidence(pulls.sum(axis=0), rewards.sum(axis=0), prior)


def campaign_text(campaign: Campaign, file: str | Path | None) -> tuple[str, str]:
    """(YAML text, diff label): the given file, else the stored definition rendered."""
    if file is None:
        return render_definition(campaign.spec), f"{campaign.name}.yaml"
    path = Path(file)
    spec = load_campaign(path)
    if spec.name != campaign.name:
        raise UserError(f"{path}: defines campaign {spec.name!r}, not {campaign.name!r}")
    if spec.parameters != campaign.spec.parameters or spec.exclusions != campaign.spec.exclusions:
        raise UserError(
            f"{path}: its parameters or exclusions differ from the stored {campaign.name!r}; "
            "apply it first (`campaignopt campaign apply`) or give the file it was applied from"
        )
    return path.read_text(encoding="utf-8"), path.as_posix().lstrip("/")


def load_champion(settings: Any = None) -> tuple[Any | None, str]:
    """The champion's ResponseModel and a note, or (None, why the evidence is used instead)."""
    from ml.registry import ModelUnavailable
    from pipelines.retrain import load_champion_model

    try:
        champion = load_champion_model(settings)
    except ModelUnavailable as exc:
        return None, f"no model: champion unavailable ({str(exc)[:200]}); ranked by the evidence only"
    except UserError as exc:
        return None, f"no model: registry unavailable ({str(exc)[:200]}); ranked by the evidence only"
    if champion is None:
        return None, "no model: no champion registered yet; ranked by the evidence only"
    return champion.model, f"champion version {champion.version}"


def suggest(
    engine: sa.Engine,
    name: str,
    *,
    model: Any | None = None,
    model_note: str = "",
    file: str | Path | None = None,
    top: int = 10,
    sample: int = 2000,
    seed: int = 0,
    statistics: tuple[np.ndarray, np.ndarray] | None = None,
) -> SuggestReport:
    """Ranked suggestions for campaign ``name``, each with the diff of its campaign file.

    ``model``: a ResponseModel (e.g. from :func:`load_champion`), None for the evidence only.
    ``statistics``: (pulls, rewards) per (segment, arm) to use instead of the marts'.
    NotFound for an unknown campaign; UserError for a file of another campaign."""
    if top < 1 or sample < 1:
        raise UserError(f"top and sample must be >= 1, got top={top}, sample={sample}")
    campaign = load_campaign_by_name(engine, name)
    text, label = campaign_text(campaign, file)
    with engine.connect() as conn:
        evidence = campaign_evidence(conn, campaign, statistics)
        customers = audience_sample(conn, campaign.spec, sample, seed) if model is not None else None
    if model is not None and (customers is None or customers.empty):
        model, model_note = (
            None,
            "no customer in the campaign's audience to score: ranked by the evidence only",
        )
    suggestions, edges, best = rank(campaign.spec, campaign.arm_params, evidence, model, customers, seed)
    report = SuggestReport(
        campaign=name,
        basis="model" if model is not None else "evidence",
        note=model_note or ("model" if model is not None else "no model given: ranked by the evidence only"),
        best_arm=best,
        suggestions=suggestions[:top],
        edges=edges,
        sample_size=0 if customers is None else len(customers),
        file=label,
    )
    diffs: dict[Change, tuple[str, bool]] = {}
    for s in report.suggestions + report.edges:
        if s.change not in diffs:
            new, kept = edit_text(text, campaign.spec, s.change)
            diffs[s.change] = unified_diff(text, new, label), kept
        s.diff, s.kept_layout = diffs[s.change]
    return report

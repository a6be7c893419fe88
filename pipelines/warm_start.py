"""Warm start: a new campaign's first decisions guided by history instead of uniform exploration.

History is per (segment, old arm) sends and rewards: another stored campaign's matured statistics
(the `segment_arm_stats` mart), or a CSV file of logged sends and outcomes. It reaches a new arm
through the parameter values the two share: an old arm counts for a new arm when they agree on
every parameter both define (a parameter only one of them has is ignored: an old campaign without
`cta` informs every `cta` variant alike; an old `discount` the new campaign lacks is pooled over).
An old arm with a value the new campaign does not offer informs no arm.

The evidence keeps its rate but counts for at most ``strength`` pseudo-observations per (segment,
arm) (:func:`bandits.thompson.prior_from_stats`), so a few hundred real sends outweigh it: old
evidence guides, never dominates, and misleading history costs a bounded number of sends.
The decide step and the real-time snapshot add it to the campaign's own statistics.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.db import read_frame
from pipelines.domain import SEGMENTS
from pipelines.errors import UserError

ALL_SEGMENTS = "*"  # a file row without a segment counts for every segment


def map_history(
    history: pd.DataFrame, new_arms: Sequence[dict[str, str]], strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-observations per (segment, new arm), shape (len(SEGMENTS), len(new_arms)).

    ``history`` has columns segment (a SEGMENTS name or ``*``), sends, rewards and one column per
    old parameter (NaN where an old arm lacks it). Returns (pulls, rewards): each cell's matched
    evidence scaled down to at most ``strength`` sends, its rate kept.
    """
    if strength < 0 or not np.isfinite(strength):
        raise UserError(f"warm_start.strength: must be a finite number >= 0, got {strength}")
    pulls = np.zeros((len(SEGMENTS), len(new_arms)))
    rewards = np.zeros_like(pulls)
    if history.empty or strength == 0:
        return pulls, rewards
    params = [c for c in history.columns if c not in ("segment", "sends", "rewards")]
    for k, arm in enumerate(new_arms):
        match = np.ones(len(history), dtype=bool)
        for p in params:
            if p in arm:  # a parameter both define: the values must agree
                column = history[p]
                match &= (column.isna() | (column == arm[p])).to_numpy()
        rows = history[match]
        for segment, group in rows.groupby("segment"):
            targets = range(len(SEGMENTS)) if segment == ALL_SEGMENTS else [SEGMENTS.index(str(segment))]
            for s in targets:
                pulls[s, k] += group["sends"].sum()
                rewards[s, k] += group["rewards"].sum()
    scale = np.minimum(1.0, strength / np.maximum(pulls, 1e-12))
    return pulls * scale, rewards * scale


def history_from_campaign(conn: sa.Connection, name: str) -> pd.DataFrame:
    """The matured statistics of the stored campaign ``name`` per (segment, arm), with its arms'
    parameters as columns."""
    found = conn.execute(
        sa.text("select campaign_id from ops.campaigns where name = :n"), {"n": name}
    ).scalar()
    if found is None:
        raise UserError(f"warm_start.from_campaign: no campaign named {name!r}")
    if conn.execute(sa.text("select to_regclass('analytics.segment_arm_stats')")).scalar() is None:
        return pd.DataFrame(columns=["segment", "sends", "rewards"])  # no daily build yet: nothing learnt
    stats = read_frame(
        conn,
        """select s.segment, s.matured as sends, s.reward_sum as rewards, a.params
           from analytics.segment_arm_stats s join ops.arms a using (arm_id)
           where s.campaign_id = %(c)s""",
        {"c": found},
    )
    return _with_param_columns(stats)


def _with_param_columns(stats: pd.DataFrame) -> pd.DataFrame:
    # read_frame gives jsonb as its text
    decoded = [json.loads(v) if isinstance(v, str) else v for v in stats.pop("params")]
    params = pd.DataFrame(decoded, index=stats.index) if len(stats) else pd.DataFrame()
    return pd.concat([stats, params], axis=1)


def history_from_file(path: str | Path, parameters: Sequence[str]) -> pd.DataFrame:
    """A CSV of logged sends and outcomes: columns sends, conversions (or rewards), any of the
    campaign ``parameters``, optionally segment; one row per arm (and segment)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"warm_start.file: cannot read {path}: {exc}") from None
    reward_column = "rewards" if "rewards" in frame.columns else "conversions"
    missing = [c for c in ("sends", reward_column) if c not in frame.columns]
    if missing:
        raise UserError(f"warm_start.file: {path} has no column {missing[0]!r} (sends and conversions)")
    unknown = [c for c in frame.columns if c not in (*parameters, "segment", "sends", reward_column)]
    if unknown:
        raise UserError(f"warm_start.file: {path}: column {unknown[0]!r} is not a parameter of the campaign")
    out = pd.DataFrame(index=frame.index)
    out["segment"] = frame["segment"].fillna(ALL_SEGMENTS) if "segment" in frame.columns else ALL_SEGMENTS
    bad_segment = set(out["segment"]) - {*SEGMENTS, ALL_SEGMENTS}
    if bad_segment:
        raise UserError(f"warm_start.file: {path}: unknown segment {sorted(bad_segment)[0]!r}")
    for column, name in (("sends", "sends"), (reward_column, "rewards")):
        values = pd.to_numeric(frame[column], errors="coerce")
        line = _first_bad(values)
        if line is not None:
            raise UserError(f"warm_start.file: {path} line {line + 2}: {column} is not a number >= 0")
        out[name] = values.astype(float)
    over = out.index[out["rewards"] > out["sends"]]
    if len(over):
        raise UserError(f"warm_start.file: {path} line {over[0] + 2}: more {reward_column} than sends")
    for p in parameters:
        if p in frame.columns:
            out[p] = frame[p]
    return out


def _first_bad(values: pd.Series) -> int | None:
    bad = values.isna() | (values < 0) | ~np.isfinite(values.fillna(0))
    return int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else None

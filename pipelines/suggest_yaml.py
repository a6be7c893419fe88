"""A suggested change to a campaign, as an edit of its YAML file and a unified diff.

The edit keeps the file as the marketer wrote it (comments, layout): it rewrites the one
parameter list or removes the one exclusion line. The result is read back with the product's
loader and must equal the definition with the change applied; when the file's layout is one
the targeted edit does not know, the whole definition is rendered again instead (comments
lost, said in the diff's header), so the diff always applies and always validates.
"""

from __future__ import annotations

import difflib
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.campaign_spec import CampaignSpec, load_campaign
from pipelines.domain import PARAMETERS
from pipelines.errors import UserError


@dataclass(frozen=True)
class Change:
    """Add ``value`` to ``parameter`` (kind add_value), or drop exclusion ``rules`` (drop_exclusion)."""

    kind: str
    parameter: str | None = None
    value: str | None = None
    rules: tuple[tuple[tuple[str, str], ...], ...] = field(default_factory=tuple)

    @classmethod
    def add_value(cls, parameter: str, value: str) -> Change:
        return cls("add_value", parameter=parameter, value=value)

    @classmethod
    def drop_exclusions(cls, rules: list[dict[str, str]]) -> Change:
        return cls("drop_exclusion", rules=tuple(tuple(sorted(r.items())) for r in rules))

    def describe(self) -> str:
        if self.kind == "add_value":
            return f"add {self.value} to {self.parameter}"
        shown = "; ".join("{" + ", ".join(f"{k}: {v}" for k, v in rule) + "}" for rule in self.rules)
        return f"drop exclusion {shown}"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "parameter": self.parameter,
            "value": self.value,
            "rules": [dict(rule) for rule in self.rules],
            "summary": self.describe(),
        }


def changed_definition(spec: CampaignSpec, change: Change) -> dict[str, Any]:
    """The campaign's definition (JSON-ready) with ``change`` applied."""
    data = spec.as_json()
    if change.kind == "add_value":
        assert change.parameter is not None and change.value is not None
        wanted = {*data["parameters"][change.parameter], change.value}
        # The vocabulary's order: `[morning, afternoon, evening]` reads better than appended.
        data["parameters"][change.parameter] = [v for v in PARAMETERS[change.parameter] if v in wanted]
    else:
        dropped = [dict(rule) for rule in change.rules]
        data["exclusions"] = [r for r in data["exclusions"] if r not in dropped]
    return data


def render_definition(spec: CampaignSpec) -> str:
    """A stored definition as a YAML file (when no campaign file is given)."""
    header = f"# {spec.name}: the stored definition, rendered by `campaignopt suggest`\n"
    return header + yaml.safe_dump(spec.as_json(), sort_keys=False, default_flow_style=None)


def edit_text(text: str, spec: CampaignSpec, change: Change) -> tuple[str, bool]:
    """``text`` (the campaign's file) with ``change`` applied, and whether the layout was kept.

    Raises UserError if even the re-rendered definition does not validate (it always should:
    adding an allowed value or dropping a rule leaves a valid campaign)."""
    expected = CampaignSpec.model_validate(changed_definition(spec, change))
    edited = _targeted_edit(text, spec, change)
    if edited is not None and _reads_as(edited, expected):
        return edited, True
    rendered = render_definition(expected)
    if not _reads_as(rendered, expected):
        raise UserError(f"{spec.name}: the change '{change.describe()}' does not give a valid campaign")
    return rendered, False


def unified_diff(old: str, new: str, label: str) -> str:
    """The edit as a unified diff, ``a/<label>`` -> ``b/<label>`` (`patch -p1` or `git apply`)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{label}", f"b/{label}"
    )
    return "".join(lines)


def _reads_as(text: str, expected: CampaignSpec) -> bool:
    """Does ``text``, read by the product's loader, give ``expected``?"""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "campaign.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            # Compared as data: the stored definition's keys come back from jsonb in its own order.
            return _canonical(load_campaign(path)) == _canonical(expected)
        except UserError:
            return False


def _canonical(spec: CampaignSpec) -> str:
    return json.dumps(spec.as_json(), sort_keys=True)


def _targeted_edit(text: str, spec: CampaignSpec, change: Change) -> str | None:
    lines = text.splitlines(keepends=True)
    if change.kind == "add_value":
        assert change.parameter is not None and change.value is not None
        values = changed_definition(spec, change)["parameters"][change.parameter]
        return _edit_parameter(lines, change.parameter, change.value, values)
    return _drop_rules(lines, [dict(rule) for rule in change.rules])


def _block(lines: list[str], key: str) -> range | None:
    """Line numbers of the top-level mapping ``key:``'s indented body."""
    start = next((i for i, line in enumerate(lines) if re.match(rf"{key}:\s*(#.*)?$", line)), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " #-"):
        end += 1
    return range(start + 1, end)


def _edit_parameter(lines: list[str], name: str, value: str, values: list[str]) -> str | None:
    body = _block(lines, "parameters")
    if body is None:
        return None
    for i in body:
        flow = re.match(rf"(\s+{name}:\s*)\[[^\]]*\](.*)$", lines[i].rstrip("\n"))
        if flow:  # `  time_of_day: [morning, evening]  # comment`
            lines[i] = f"{flow.group(1)}[{', '.join(values)}]{flow.group(2)}\n"
            return "".join(lines)
        if re.match(rf"\s+{name}:\s*(#.*)?$", lines[i]):  # a block list: `- value` lines follow
            items = [j for j in range(i + 1, body.stop) if re.match(r"\s*- ", lines[j])]
            if not items:
                return None
            indent = re.match(r"(\s*)- ", lines[items[0]]).group(1)  # type: ignore[union-attr]
            before = values.index(value)  # insert after the item of the value before it, if any
            at = items[before - 1] + 1 if before > 0 and before - 1 < len(items) else items[0]
            lines.insert(at, f"{indent}- {value}\n")
            return "".join(lines)
    return None


def _drop_rules(lines: list[str], rules: list[dict[str, str]]) -> str | None:
    body = _block(lines, "exclusions")
    if body is None:
        return None
    drop, kept = [], 0
    for i in body:
        item = re.match(r"\s*- (\{.*\})\s*(#.*)?$", lines[i])
        if not item:
            if lines[i].strip().startswith("- "):
                return None  # a block-style rule: leave it to the re-render
            continue
        try:
            rule = yaml.safe_load(item.group(1))
        except yaml.YAMLError:
            return None
        if rule in rules:
            drop.append(i)
        else:
            kept += 1
    if len(drop) != len(rules):
        return None
    out = [line for i, line in enumerate(lines) if i not in drop]
    if not kept:  # `exclusions:` with no item left reads as null: say "none" explicitly
        header = body.start - 1
        out[header] = re.sub(r"exclusions:", "exclusions: []", out[header], count=1)
    return "".join(out)

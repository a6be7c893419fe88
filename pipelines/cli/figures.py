"""Tables of figures for people: full headers that wrap (never cut), percentages, numbers aligned.

`print_table` (pipelines/cli/output.py) prints any rows as they come; a KPI table needs more:
its headers name the figure in words ("Treatment conversion rate", not "treatment_rate"), a
rate reads 2.7%, a lift reads +0.6 pp, and numbers line up on the right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.table import Table

from pipelines.cli.output import console


def _finite(value: Any) -> bool:
    return value is not None and value == value and value not in (float("inf"), float("-inf"))


def percent(value: float | None) -> str:
    return f"{value:,.1%}" if _finite(value) else "-"


def points(value: float | None) -> str:
    """A difference of two rates in percentage points, signed."""
    return f"{value * 100:+.1f} pp" if _finite(value) else "-"


def interval(low: float | None, high: float | None, fmt: Callable[[float | None], str] = percent) -> str:
    return f"{fmt(low)} to {fmt(high)}" if _finite(low) and _finite(high) else "-"


def count(value: float | None) -> str:
    return f"{value:,.0f}" if _finite(value) else "-"


def money(value: float | None) -> str:
    return f"{value:,.2f}" if _finite(value) else "-"


def number(value: float | None) -> str:
    return f"{value:,.1f}" if _finite(value) else "-"


def text(value: Any) -> str:
    return "-" if value is None else str(value)


@dataclass(frozen=True)
class Column:
    """A column of a figure table: its header in words, how a row gives its cell."""

    header: str
    cell: Callable[[dict], str]
    numeric: bool = True


def figure_table(title: str, columns: Sequence[Column], rows: Sequence[dict], width: int) -> Table:
    """Columns as wide as their longest header or cell when that fits in ``width``; else each at
    least as wide as its longest word, so headers wrap between words (fold only if even that does
    not fit): nothing is cut off, no column dropped."""
    cells = [[col.cell(row) for col in columns] for row in rows]
    texts = [[col.header, *(line[k] for line in cells)] for k, col in enumerate(columns)]
    widest = [max(len(t) for t in column) for column in texts]
    # a header wraps between its words, and so does a name; a figure ("+6.0 pp") stays whole,
    # an interval ("-5.4 pp to +14.7 pp") may break before its "to"
    word = [
        max(len(w) for t in column[: 1 if col.numeric else None] for w in t.split() or [""])
        for col, column in zip(columns, texts, strict=True)
    ]
    for k, col in enumerate(columns):
        if col.numeric:
            word[k] = max([word[k], *(len(part) for line in cells for part in line[k].split(" to "))])
    room = width - (len(columns) - 1)  # one-space separators
    widths = list(word)
    for k in range(len(widths)):  # the leftover room goes to the columns left to right
        widths[k] += max(0, min(widest[k] - word[k], room - sum(widths)))
    # no padding: the box's one-space column separators are the gaps, 80 columns fit 8 figures
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", padding=0, show_edge=False)
    for col, w in zip(columns, widths, strict=True):
        table.add_column(col.header, justify="right" if col.numeric else "left", overflow="fold",
                         width=w if sum(widths) <= room else None)  # fmt: skip
    for line in cells:
        table.add_row(*line)
    return table


def print_figure_table(
    title: str, columns: Sequence[Column], rows: Sequence[dict], note: str | None = None
) -> None:
    """The table, then ``note`` (where the figures come from) as text that wraps."""
    if not rows:
        console.print(f"[dim]{title}: nothing to show[/dim]")
        return
    console.print(figure_table(title, columns, rows, console.width))
    if note:
        console.print(note, style="dim", highlight=False)
    console.print()


def field(key: str, fmt: Callable[[Any], str]) -> Callable[[dict], str]:
    return lambda row: fmt(row.get(key))


# The KPIs so far of `campaignopt daily` and `campaignopt demo` (pipelines.monitor.campaign_kpis).
KPI_COLUMNS = {
    "campaign": Column("Campaign", field("campaign", text), numeric=False),
    "treatment_sends": Column("Treatment sends", field("treatment_sends", count)),
    "treatment_rate": Column("Treatment conversion", field("treatment_rate", percent)),
    "control_sends": Column("Holdout sends", field("control_sends", count)),
    "control_rate": Column("Holdout conversion", field("control_rate", percent)),
    "lift": Column("Lift", field("lift", points)),
    "lift_ci": Column("Lift 95% CI", lambda r: interval(r.get("lift_ci_low"), r.get("lift_ci_high"), points)),
    "exploration_rate": Column("Exploration share", field("exploration_rate", percent)),
    "estimated_regret": Column("Regret (conversions)", field("estimated_regret", number)),
    "roi": Column("ROI", field("roi", percent)),
}


def print_kpi_table(kpis: Sequence[dict], title: str, columns: Sequence[str]) -> None:
    print_figure_table(title, [KPI_COLUMNS[c] for c in columns], kpis)

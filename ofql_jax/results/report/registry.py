"""The report's sections and the suite groups they report.

A section is one function that turns the suite into markdown lines, registered with the
groups of cells it reads and its place in the report::

    @section("Flow-ratio ablation", order=50, groups=("flow_ratio",), intro="flow_ratio = ...")
    def flow_ratio(ctx: Context) -> list[str] | NotRun: ...

The suite groups are the groups the sections declare (``groups()``): a new group is a new
section that names it, in a module the package's ``__init__`` imports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ofql_jax.results.report.cells import MAIN_GROUP, Cell, Suite


@dataclasses.dataclass(frozen=True)
class NotRun:
    """What a section returns when the suite has nothing for it: why, one sentence."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Context:
    """What a section reads: the suite, its own groups' cells, the figures folder, the costs."""

    suite: Suite
    groups: tuple[str, ...] | None  # the section's groups (None: every cell)
    figures: Path  # write PNGs here; refer to them as figures/<name>
    costs: list[tuple[str, dict[str, Any]]]  # (file name, benchmarks/throughput.py output)

    @property
    def cells(self) -> list[Cell]:
        """The suite's cells of the section's groups, in the suite's order."""
        return [c for c in self.suite.cells if self.groups is None or c.group in self.groups]


Write = Callable[[Context], "list[str] | NotRun"]


@dataclasses.dataclass(frozen=True)
class Section:
    title: str | None  # "## title"; None for a section that writes its own heading
    order: int  # place in the report, lowest first
    groups: tuple[str, ...] | None  # the suite groups it reports; None: every cell
    intro: str  # the paragraph under the title when the section has something to show
    write: Write

    def render(self, ctx: Context) -> list[str]:
        """``## title``, then either ``Not run: <why>`` or the intro and the section's lines."""
        lines = [f"## {self.title}", ""] if self.title else []
        body = self.write(ctx)
        if isinstance(body, NotRun):
            return lines + [f"Not run: {body.reason}", ""]
        return lines + ([self.intro, ""] if self.intro else []) + body


SECTIONS: list[Section] = []


def section(
    title: str | None, *, order: int, groups: Sequence[str] | None, intro: str = ""
) -> Callable[[Write], Write]:
    """Register the decorated function as a section of every report."""

    def register(write: Write) -> Write:
        declared = None if groups is None else tuple(groups)
        SECTIONS.append(Section(title, order, declared, intro, write))
        SECTIONS.sort(key=lambda s: s.order)
        return write

    return register


def groups() -> tuple[str, ...]:
    """Every suite group a section reports, in the report's order."""
    found = [g for s in SECTIONS for g in (s.groups or ())]
    return tuple(dict.fromkeys([MAIN_GROUP, *found]))

"""What went wrong, per cell: the divergence monitor's flags, and the cells that failed or did
not finish."""

from __future__ import annotations

from typing import Any

from ofql_jax.results.report.formatting import fmt, table
from ofql_jax.results.report.registry import Context, NotRun, section

DIVERGENCE_INTRO = (
    "Per cell, the members flagged by the monitor with the step: value divergence (the "
    "critics' Q of the policy's own actions left the bounds the dataset's rewards allow; "
    "the seed kept training and was evaluated) and non-finite (NaN/inf losses or "
    "parameters; the seed was stopped and has no score)."
)


def _flags(flags: dict[str, Any] | None) -> str:
    if not flags:
        return "none"
    return "; ".join(
        f"{label} at step {step:,}" if isinstance(step, int) else f"{label} ({step})"
        for label, step in flags.items()
    )


@section("Divergence monitor", order=90, groups=None, intro=DIVERGENCE_INTRO)
def divergence(ctx: Context) -> list[str] | NotRun:
    if not ctx.cells:
        return NotRun("the suite has no cells.")
    rows = []
    for c in ctx.cells:
        if c.results is None:
            rows.append([c.name, c.task, c.label, "no results", "no results", "—"])
            continue
        bounds = c.results.get("value_bounds") or {}
        text = f"[{fmt(bounds.get('lower'))}, {fmt(bounds.get('upper'))}]" if bounds else "—"
        rows.append(
            [
                c.name,
                c.task,
                c.label,
                _flags(c.results.get("value_diverged_seeds")),
                _flags(c.results.get("diverged_seeds")),
                text,
            ]
        )
    header = ["cell", "task", "algorithm", "value-diverged (Q left the bounds)", "non-finite"]
    header.append("Q bounds")
    return table(header, rows) + [""]


@section("Failed or unfinished cells", order=100, groups=None)
def failed(ctx: Context) -> list[str]:
    suite = ctx.suite
    bad = [c for c in ctx.cells if c.results is None or c.state == "failed"]
    names = {c.name for c in ctx.cells}
    orphans = [n for n in (suite.status.get("cells") or {}) if n not in names]
    if not bad and not orphans:
        return ["None: every cell finished with results.", ""]
    rows = []
    for c in bad:
        why = c.error or c.problem or ""
        if c.results is not None:
            why = (why + "; " if why else "") + "has a results.json nevertheless"
        rows.append([c.name, c.task, c.label, c.group, c.state, str(why).replace("\n", " ")])
    for n in orphans:
        st = suite.status["cells"][n]
        rows.append([n, "?", "?", "?", st.get("state"), "in status.json but not in suite.json"])
    return table(["cell", "task", "algorithm", "group", "state", "error"], rows) + [""]

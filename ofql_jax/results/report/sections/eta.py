"""Every eta grid: the final score of each setting, and the setting the rule chooses."""

from __future__ import annotations

from ofql_jax.results.report.cells import MAIN_GROUP, Cell
from ofql_jax.results.report.formatting import mean_std, suite_tasks, table
from ofql_jax.results.report.registry import Context, NotRun, section
from ofql_jax.results.report.scores import (
    ETA_RULE,
    candidates,
    cell_value,
    choose,
    final_entry,
    finite,
    grid_points,
    outcomes,
)

INTRO = (
    f"Rule: the chosen setting has the {ETA_RULE} (the last evaluation, never the best "
    "over training; ties go to the first setting). Selecting on the same evaluation that "
    "is reported is optimistic, as is the paper's own grid search. A grid is the eta_grid "
    "cells of one (task, algorithm) with its main cell, or one cell that sweeps eta."
)


def _sweeps_eta(cell: Cell) -> bool:
    """A cell that sweeps eta itself, in whatever group."""
    if "eta" in cell.sweep:
        return True
    settings = (cell.results or {}).get("settings") or []
    return any("eta" in (s.get("hparams") or {}) for s in settings)


@section("Eta grid", order=60, groups=("eta_grid",), intro=INTRO)
def eta_grid(ctx: Context) -> list[str] | NotRun:
    suite = ctx.suite
    cells = [c for c in suite.cells if c.group in ctx.groups or _sweeps_eta(c)]
    if not cells:
        return NotRun("no cell sweeps eta and the suite has no eta_grid cell.")
    # suite.grid_cells puts the task's default eta in the main cell: a grid point too
    split = {(c.task, c.label) for c in cells if len(outcomes(c.results or {})) <= 1}
    cells += [
        c
        for c in suite.cells
        if c.group == MAIN_GROUP and (c.task, c.label) in split and c not in cells
    ]
    grids: dict[tuple[str, str, str], list[Cell]] = {}
    for c in cells:
        key = (c.task, c.label, c.name if len(outcomes(c.results or {})) > 1 else "")
        grids.setdefault(key, []).append(c)
    order = suite_tasks(suite)
    lines = []
    for (task, label, _), members in sorted(grids.items(), key=lambda kv: order.index(kv[0][0])):
        names = ", ".join(f"`{c.name}`" for c in members)
        lines += [f"**{task}, {label}** ({names})", ""]
        points = [p for c in members for p in grid_points(c, ("eta",))]
        points.sort(key=lambda p: tuple(sorted(p.hparams.items())))
        chosen = choose(points)
        rows = []
        for point in points:
            entry = final_entry(point.cell.results)
            scores = finite(point.outcome.scores(entry))
            one = finite(point.outcome.scores(entry, "_one_step"))
            rows.append(
                [
                    point.name,
                    f"`{point.cell.name}`",
                    mean_std(scores),
                    mean_std(one),
                    f"{scores.size} of {len(point.outcome.members)}",
                    "**chosen**" if point is chosen else "",
                ]
            )
        unfinished = [c for c in members if c.results is None]
        for c in unfinished:
            eta = cell_value(c, "eta")
            setting = f"eta={eta:g}" if eta is not None else "?"
            rows.append([setting, f"`{c.name}`", f"not finished ({c.state})", "—", "—", ""])
        n = {candidates(p.cell.results) for p in points}
        n_text = ", ".join(str(x) for x in sorted(n, key=str)) if n else "N"
        header = ["setting", "cell", f"final, N = {n_text}", "final, N = 1", "seeds", ""]
        lines += table(header, rows)
        picked = chosen.name if chosen is not None else "none (no setting has a finite score)"
        among = (
            f" (among the finished settings; {len(unfinished)} not finished)" if unfinished else ""
        )
        lines += ["", f"Chosen: {picked}{among}.", ""]
    return lines

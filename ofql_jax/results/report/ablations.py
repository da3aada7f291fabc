"""The ablations beside the paper's: the one-step ablation (DQL, DQL sampled with one DDIM
step, FBRAC, FQL and OFQL, each with one-step inference), OFQL's final score per flow_ratio,
and every eta grid with the setting the rule chooses."""

from __future__ import annotations

import numpy as np

from ofql_jax.results import paper_numbers as paper
from ofql_jax.results.aggregate import mean_of_task_means, stratified_bootstrap_ci
from ofql_jax.results.report.cells import MAIN_GROUP, Cell
from ofql_jax.results.report.formatting import (
    DPI,
    ci,
    fmt,
    mean_std,
    plt,
    save_figure,
    suite_tasks,
    table,
    task_order,
)
from ofql_jax.results.report.registry import Context, NotRun, section
from ofql_jax.results.report.scores import (
    ETA_RULE,
    agent_config,
    candidates,
    cell_value,
    choose,
    final_entry,
    final_scores,
    finite,
    grid_points,
    outcomes,
    paper_variant_differs,
)

ABLATION_INTRO = (
    "Cells of group one_step_ablation; final N-candidate scores (DQL+DDIM(1): the same DQL "
    "cells' `scores_ddim1`, N candidates each drawn with one DDIM step), averaged over the "
    "tasks run (mean of task means, stratified-bootstrap 95% CI). The paper's averages are "
    "over the 9 MuJoCo tasks of D4RL v2: a different benchmark. 'paper, same tasks' "
    "averages Table 1 over the tasks run here (DQL, FQL, OFQL only)."
)


def _ablation_scores(cells: list[Cell], entry: paper.AblationEntry) -> dict[str, np.ndarray]:
    """Final scores per task of the cells that ran the paper's variant of the entry's agent."""
    out = {}
    for cell in cells:
        if cell.algorithm != entry.algorithm or cell.results is None:
            continue
        if paper_variant_differs(cell.algorithm, agent_config(cell)):
            continue
        scores = final_scores(cell, entry.score_suffix)
        if scores.size:
            out.setdefault(cell.task, scores)
    return out


@section("One-step ablation", order=40, groups=("one_step_ablation",), intro=ABLATION_INTRO)
def ablation(ctx: Context) -> list[str] | NotRun:
    cells = ctx.cells
    rows, per_task = [], {}
    for entry in paper.ONE_STEP_ABLATION:
        by_task = per_task[entry.label] = _ablation_scores(cells, entry)
        data = [by_task[t] for t in task_order(by_task)]
        ours = ci(*stratified_bootstrap_ci(data, mean_of_task_means)) if data else "not run"
        column, same = paper.table1_column(entry.algorithm), "—"
        if (
            by_task
            and entry.score_suffix == ""
            and column
            and by_task.keys() <= paper.TABLE1.keys()
        ):
            same = fmt(float(np.mean([paper.TABLE1[t][column[0]] for t in by_task])))
        n_tasks = sum(t in paper.ONE_STEP_ABLATION_TASKS for t in by_task)
        covered = f"{n_tasks} of {len(paper.ONE_STEP_ABLATION_TASKS)}"
        rows.append([entry.label, entry.note, ours, covered, fmt(entry.average), same])
    if not any(per_task.values()):
        return NotRun("the suite has no one_step_ablation cell with results.")
    header = ["row", "what", "ours [95% CI]", "MuJoCo tasks", "paper average", "paper, same tasks"]
    lines = table(header, rows) + ["", "Per task (mean ± std over seeds):", ""]
    trows = [
        [t] + [mean_std(per_task[e.label].get(t, np.zeros(0))) for e in paper.ONE_STEP_ABLATION]
        for t in task_order(t for d in per_task.values() for t in d)
    ]
    lines += table(["task"] + [e.label for e in paper.ONE_STEP_ABLATION], trows)
    ablated = {e.algorithm for e in paper.ONE_STEP_ABLATION}
    extra = sorted({c.label for c in cells if c.algorithm not in ablated})
    if extra:
        lines += [
            "",
            f"Cells of other algorithms in this group (not in the paper's ablation): "
            f"{', '.join(extra)}; see Final scores.",
        ]
    return lines + [""]


FLOW_RATIO_INTRO = (
    "flow_ratio = P(r = t) in L_FBC (0.5 is the default). Ours: OFQL's final N-candidate "
    "score, mean ± std over seeds; paper: HalfCheetah on D4RL v2 (a different benchmark)."
)


@section("Flow-ratio ablation", order=50, groups=("flow_ratio",), intro=FLOW_RATIO_INTRO)
def flow_ratio(ctx: Context) -> list[str] | NotRun:
    ours: dict[str, dict[float, np.ndarray]] = {}
    for cell in ctx.cells:
        if cell.results is None:
            continue
        entry = final_entry(cell.results)
        for point in grid_points(cell, ("flow_ratio",)):
            if "flow_ratio" in point.hparams:
                scores = finite(point.outcome.scores(entry))
                ours.setdefault(cell.task, {})[float(point.hparams["flow_ratio"])] = scores
    if not ours:
        return NotRun("the suite has no flow_ratio cell with results.")
    ratios = sorted(set(paper.FLOW_RATIOS) | {r for d in ours.values() for r in d}, reverse=True)
    header = ["task", "source"] + [f"{r:g}" for r in ratios]
    rows = []
    for task in task_order(set(ours) | set(paper.FLOW_RATIO_ABLATION)):
        mine = ours.get(task)
        cols = [mean_std(mine[r]) if r in mine else "—" for r in ratios] if mine else None
        rows.append([task, "ours"] + (cols or ["not run"] * len(ratios)))
        if task in paper.FLOW_RATIO_ABLATION:
            row = paper.FLOW_RATIO_ABLATION[task]
            rows.append([task, "paper"] + [fmt(row.get(r)) for r in ratios])
    lines = table(header, rows)
    tasks = task_order(ours)
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.0), dpi=DPI, squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        xs = sorted(ours[task])
        ys = [ours[task][x].mean() if ours[task][x].size else np.nan for x in xs]
        es = [ours[task][x].std() if ours[task][x].size else np.nan for x in xs]
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label="ours")
        if task in paper.FLOW_RATIO_ABLATION:
            p = paper.FLOW_RATIO_ABLATION[task]
            ax.plot(sorted(p), [p[x] for x in sorted(p)], "s--", label="paper (D4RL v2)")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("flow_ratio")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("final score")
    axes[0][0].legend(fontsize=7)
    save_figure(fig, ctx.figures / "flow_ratio.png")
    return lines + ["", "![flow ratio](figures/flow_ratio.png)", ""]


ETA_INTRO = (
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


@section("Eta grid", order=60, groups=("eta_grid",), intro=ETA_INTRO)
def eta_grid(ctx: Context) -> list[str] | NotRun:
    suite = ctx.suite
    cells = [c for c in suite.cells if c.group in ctx.groups or _sweeps_eta(c)]
    if not cells:
        return NotRun("no cell sweeps eta and the suite has no eta_grid cell.")
    # suite.grid_cells puts the task's default eta in the main cell: a grid point too
    split = {(c.task, c.label) for c in cells if len(outcomes(c.results or {})) <= 1}
    main = [c for c in suite.cells if c.group == MAIN_GROUP and (c.task, c.label) in split]
    cells += [c for c in main if c not in cells]
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
            seeds = f"{scores.size} of {len(point.outcome.members)}"
            row = [point.name, f"`{point.cell.name}`", mean_std(scores), mean_std(one), seeds]
            rows.append(row + ["**chosen**" if point is chosen else ""])
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
        among = f" (among the finished settings; {len(unfinished)} not finished)"
        lines += ["", f"Chosen: {picked}{among if unfinished else ''}.", ""]
    return lines

"""The paper's one-step ablation: DQL, DQL sampled with one DDIM step, FBRAC, FQL and OFQL,
each with one-step inference, over the tasks the suite ran."""

from __future__ import annotations

import numpy as np

from ofql_jax.results import paper_numbers as paper
from ofql_jax.results.aggregate import mean_of_task_means, stratified_bootstrap_ci
from ofql_jax.results.report.cells import Cell
from ofql_jax.results.report.formatting import ci, fmt, mean_std, table, task_order
from ofql_jax.results.report.labels import paper_variant_differs
from ofql_jax.results.report.registry import Context, NotRun, section
from ofql_jax.results.report.scores import agent_config, final_scores

INTRO = (
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


@section("One-step ablation", order=40, groups=("one_step_ablation",), intro=INTRO)
def ablation(ctx: Context) -> list[str] | NotRun:
    cells = ctx.cells
    rows, per_task = [], {}
    for entry in paper.ONE_STEP_ABLATION:
        by_task = _ablation_scores(cells, entry)
        per_task[entry.label] = by_task
        if by_task:
            data = [by_task[t] for t in task_order(by_task)]
            ours = ci(*stratified_bootstrap_ci(data, mean_of_task_means))
        else:
            ours = "not run"
        tasks = list(by_task)
        same = "—"
        column = paper.table1_column(entry.algorithm)
        if tasks and entry.score_suffix == "" and column and all(t in paper.TABLE1 for t in tasks):
            same = fmt(float(np.mean([paper.TABLE1[t][column[0]] for t in tasks])))
        n_tasks = sum(t in paper.ONE_STEP_ABLATION_TASKS for t in tasks)
        rows.append(
            [
                entry.label,
                entry.note,
                ours,
                f"{n_tasks} of {len(paper.ONE_STEP_ABLATION_TASKS)}",
                fmt(entry.average),
                same,
            ]
        )
    if not any(per_task.values()):
        return NotRun("the suite has no one_step_ablation cell with results.")
    lines = table(
        ["row", "what", "ours [95% CI]", "MuJoCo tasks", "paper average", "paper, same tasks"], rows
    )
    tasks = task_order(t for d in per_task.values() for t in d)
    lines += ["", "Per task (mean ± std over seeds):", ""]
    trows = [
        [t] + [mean_std(per_task[e.label].get(t, np.zeros(0))) for e in paper.ONE_STEP_ABLATION]
        for t in tasks
    ]
    lines += table(["task"] + [e.label for e in paper.ONE_STEP_ABLATION], trows)
    extra = sorted(
        {
            c.label
            for c in cells
            if c.algorithm not in {e.algorithm for e in paper.ONE_STEP_ABLATION}
        }
    )
    if extra:
        lines += [
            "",
            f"Cells of other algorithms in this group (not in the paper's ablation): "
            f"{', '.join(extra)}; see Final scores.",
        ]
    return lines + [""]

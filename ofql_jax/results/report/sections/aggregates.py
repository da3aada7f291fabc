"""Aggregates over tasks per algorithm: mean of task means and IQM with stratified-bootstrap
95% CIs, beside the paper's averages."""

from __future__ import annotations

import numpy as np

from ofql_jax.results import paper_numbers as paper
from ofql_jax.results.aggregate import iqm_of_runs, mean_of_task_means, stratified_bootstrap_ci
from ofql_jax.results.report.formatting import ci, fmt, table, task_order
from ofql_jax.results.report.registry import Context, NotRun, section
from ofql_jax.results.report.scores import final_scores

BOOTSTRAP_NOTE = (
    "CIs are percentile-bootstrap 95% intervals from a stratified bootstrap written with numpy "
    "(`ofql_jax/results/aggregate.py`; 2,000 resamples, seed 0): the seeds of each task are "
    "resampled with replacement, independently per task. rliable is not used: "
    "rliable 1.2.0 installs, "
    "but its dependency arch 7.2.0 fails to import with pandas 3.1.1 (checked 2026-11-26)."
)

INTRO = (
    "Per algorithm, over the tasks it has final N-candidate scores on: **mean** = the mean "
    "over tasks of each task's mean over seeds (every task weighs the same, as the paper's "
    "averages); **IQM** = the interquartile mean of all (task, seed) runs, as rliable's. "
    + BOOTSTRAP_NOTE
    + " The paper's averages are D4RL v2 numbers (not comparable); 'paper, same tasks' "
    "recomputes the paper's average over the tasks run here from Table 1."
)


def _domain_of(task: str) -> str:
    return paper.paper_domain(task) or "other"


@section("Aggregates over tasks", order=20, groups=("main",), intro=INTRO)
def aggregates(ctx: Context) -> list[str] | NotRun:
    per_label: dict[str, dict[str, np.ndarray]] = {}
    algorithms: dict[str, str] = {}
    for cell in ctx.cells:
        if cell.results is None:
            continue
        scores = final_scores(cell)
        if scores.size:
            per_label.setdefault(cell.label, {}).setdefault(cell.task, scores)
            algorithms[cell.label] = cell.algorithm
    if not per_label:
        return NotRun("no cell of the main comparison has final scores.")
    present = {_domain_of(t) for by_task in per_label.values() for t in by_task}
    domains = ["mujoco", "antmaze", "kitchen", "other"] + (["all"] if len(present) > 1 else [])
    header = ["tasks", "algorithm", "tasks run", "runs", "mean [95% CI]", "IQM [95% CI]"]
    header += ["paper, same tasks", "paper's average"]
    rows = []
    for domain in domains:
        for label, by_task in per_label.items():
            tasks = [t for t in by_task if domain == "all" or _domain_of(t) == domain]
            if not tasks:
                continue
            data = [by_task[t] for t in task_order(tasks)]
            mean = stratified_bootstrap_ci(data, mean_of_task_means)
            iqm_ci = stratified_bootstrap_ci(data, iqm_of_runs)
            column = paper.table1_column(algorithms[label])
            same, published = "—", "—"
            if column and all(t in paper.TABLE1 for t in tasks):
                same = fmt(float(np.mean([paper.TABLE1[t][column[0]] for t in tasks])))
                if column[0] != algorithms[label]:
                    same += f" ({paper.TABLE1_LABELS[column[0]]})"
            if column and domain in paper.TABLE1_AVERAGES:
                published = fmt(paper.TABLE1_AVERAGES[domain][column[0]])
                published += f" ({len(paper.DOMAINS[domain])} tasks)"
            name = (
                paper.DOMAIN_LABELS.get(domain)
                or {"other": "not in Table 1", "all": "all tasks"}[domain]
            )
            rows.append(
                [
                    name,
                    label,
                    len(tasks),
                    sum(d.size for d in data),
                    ci(*mean),
                    ci(*iqm_ci),
                    same,
                    published,
                ]
            )
    return table(header, rows) + [""]

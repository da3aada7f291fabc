"""Final scores per (task, algorithm) beside the paper's Table 1."""

from __future__ import annotations

from typing import Any

import numpy as np

from ofql_jax.results import paper_numbers as paper
from ofql_jax.results.report.formatting import label_order, mean_std, suite_tasks, table
from ofql_jax.results.report.labels import paper_variant_differs
from ofql_jax.results.report.registry import Context, NotRun, section
from ofql_jax.results.report.scores import (
    ETA_RULE,
    agent_config,
    candidates,
    data_source,
    env_id,
    final_entry,
    final_scores,
    reported_outcome,
)

INTRO = (
    "Final = the last evaluation (the final checkpoint), mean ± std over seeds "
    "(population std; seeds without a score, i.e. non-finite, are left out). N cand.: the "
    "protocol's N candidates scored by the critics; N = 1: the policy's own action "
    "(agents without a critic have only this). A sweep cell is shown with its setting "
    f"chosen by the rule of the eta grid ({ETA_RULE}). The paper's column is Table 1 "
    "(D4RL v2): a different benchmark, for orientation only; flow BC and BC are set beside "
    "the paper's BC column."
)


def paper_table1(task: str, algorithm: str, config: dict[str, Any]) -> str:
    """The paper's Table 1 number for (task, algorithm), labelled; "—" where there is none."""
    column = paper.table1_column(algorithm)
    if column is None or task not in paper.TABLE1:
        return "—"
    value = f"{paper.TABLE1[task][column[0]]:.1f}"
    if algorithm != column[0]:
        value += f" ({paper.TABLE1_LABELS[column[0]]} column)"
    differs = paper_variant_differs(algorithm, config)
    if differs:
        value += f" (paper: {differs})"
    return value


@section("Final scores", order=10, groups=("main", "one_step_ablation"), intro=INTRO)
def final(ctx: Context) -> list[str] | NotRun:
    ran = [c for c in ctx.cells if c.results is not None]
    if not ran:
        return NotRun("no cell of the main comparison has results.")
    groups = {c.group for c in ran}
    header = ["task", "algorithm"] + (["group"] if len(groups) > 1 else [])
    header += ["ours, N cand.", "N", "ours, N = 1", "paper (Table 1, D4RL v2)", "steps"]
    header += ["seeds", "data", "env"]
    rows = []
    tasks, labels = suite_tasks(ctx.suite), label_order(ran)
    for cell in sorted(ran, key=lambda c: (tasks.index(c.task), labels.index(c.label))):
        r = cell.results
        outcome = reported_outcome(cell)
        label = cell.label + (f" ({outcome.name}, chosen)" if outcome and outcome.name else "")
        if r.get("setting"):  # a cell of a merged sweep program: its own setting
            label += f" ({r['setting']})"
        scores = final_scores(cell, "", outcome)
        one = final_scores(cell, "_one_step", outcome) if outcome else np.zeros(0)
        n = candidates(r)
        if n == 1 and one.size == 0:
            one = scores  # agents without a critic: the N-candidate score is already N = 1
        total = len(outcome.members) if outcome else 0
        seeds = f"{scores.size}" if scores.size == total else f"{scores.size} of {total}"
        steps = r.get("steps")
        last = final_entry(r).get("step")
        steps_text = f"{steps:,}" if isinstance(steps, int) else str(steps)
        if last is not None and last != steps:
            steps_text += f" (last eval {last:,})"
        row = [cell.task, label] + ([cell.group] if len(groups) > 1 else [])
        row += [
            mean_std(scores),
            n if n is not None else "?",
            mean_std(one),
            paper_table1(cell.task, cell.algorithm, agent_config(cell)),
            steps_text,
            seeds,
            data_source(r),
            env_id(r),
        ]
        rows.append(row)
    return table(header, rows) + [""]

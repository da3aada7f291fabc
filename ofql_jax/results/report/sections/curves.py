"""Learning curves per task: the mean over seeds of every evaluation, with a bootstrap band."""

from __future__ import annotations

import json

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from ofql_jax.results.aggregate import bootstrap_mean_ci
from ofql_jax.results.report.cells import Cell
from ofql_jax.results.report.formatting import (
    DPI,
    plt,
    safe_name,
    save_figure,
    steps_tick,
    task_order,
)
from ofql_jax.results.report.registry import Context, NotRun, section
from ofql_jax.results.report.scores import Outcome, candidates, finite, reported_outcome

INTRO = (
    "Per task, one line per algorithm: the mean over seeds of the evaluation score at each "
    "evaluation, with a 95% percentile-bootstrap band over seeds (1,000 resamples). Solid: "
    "N candidates (the legend gives N); dashed: N = 1, where the cell evaluated it. Cells "
    "that share a program (the same run) are drawn once."
)


def _curve(cell: Cell, outcome: Outcome, suffix: str):
    """(steps, mean, lower, upper) of a cell's evaluations, over the outcome's seeds."""
    steps, means, lows, highs = [], [], [], []
    for entry in cell.results.get("evaluations") or []:
        scores = finite(outcome.scores(entry, suffix))
        if scores.size == 0:
            continue
        steps.append(entry["step"])
        if scores.size > 1:
            m, lo, hi = bootstrap_mean_ci(scores)
        else:
            m = lo = hi = float(scores[0])
        means.append(m)
        lows.append(lo)
        highs.append(hi)
    return np.array(steps), np.array(means), np.array(lows), np.array(highs)


# The first group is the comparison; a cell of the others that shares a label with one of it
# is drawn as "[ablation]".
@section("Learning curves", order=30, groups=("main", "one_step_ablation"), intro=INTRO)
def curves(ctx: Context) -> list[str] | NotRun:
    cells = [c for c in ctx.cells if c.results is not None]
    if not cells:
        return NotRun("no cell of the main comparison has results.")
    primary = ctx.groups[0]
    lines = []
    for task in task_order(c.task for c in cells):
        # A cell that shares its program (and setting) with one already drawn is the same run.
        runs: dict[tuple[str, str], Cell] = {}
        for c in sorted((c for c in cells if c.task == task), key=lambda c: c.group != primary):
            runs.setdefault((c.program, json.dumps(c.setting, sort_keys=True)), c)
        task_cells = list(runs.values())
        fig, ax = plt.subplots(figsize=(8.0, 3.8), dpi=DPI)
        main_labels = {c.label for c in task_cells if c.group == primary}
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        drawn = False
        for k, cell in enumerate(task_cells):
            outcome = reported_outcome(cell)
            if outcome is None:
                continue
            label = cell.label + (f" ({outcome.name})" if outcome.name else "")
            if cell.group != primary and cell.label in main_labels:
                label += " [ablation]"
            color = colors[k % len(colors)]
            for suffix, style in (("", "-"), ("_one_step", "--")):
                steps, mean, lo, hi = _curve(cell, outcome, suffix)
                if steps.size == 0:
                    continue
                text = f"{label} (N={candidates(cell.results)})" if suffix == "" else None
                ax.plot(steps, mean, style, color=color, label=text, marker=".")
                ax.fill_between(steps, lo, hi, color=color, alpha=0.15, linewidth=0)
                drawn = True
        handles, _ = ax.get_legend_handles_labels()
        handles += [
            Line2D([], [], color="0.3", ls="-", label="N candidates"),
            Line2D([], [], color="0.3", ls="--", label="N = 1"),
        ]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.xaxis.set_major_formatter(FuncFormatter(steps_tick))
        ax.set_xlabel("gradient steps")
        ax.set_ylabel("normalised score")
        ax.set_title(f"{task}: mean over seeds, 95% bootstrap band", fontsize=10)
        ax.grid(alpha=0.3)
        path = ctx.figures / f"curves_{safe_name(task)}.png"
        save_figure(fig, path)
        if drawn:
            lines += [f"![{task}](figures/{path.name})", ""]
        else:
            lines += [f"{task}: no evaluations to draw.", ""]
    return lines

"""The flow-ratio ablation: OFQL's final score per flow_ratio, beside the paper's."""

from __future__ import annotations

import numpy as np

from ofql_jax.results import paper_numbers as paper
from ofql_jax.results.report.formatting import (
    DPI,
    fmt,
    mean_std,
    plt,
    save_figure,
    table,
    task_order,
)
from ofql_jax.results.report.registry import Context, NotRun, section
from ofql_jax.results.report.scores import final_entry, finite, grid_points

INTRO = (
    "flow_ratio = P(r = t) in L_FBC (0.5 is the default). Ours: OFQL's final N-candidate "
    "score, mean ± std over seeds; paper: HalfCheetah on D4RL v2 (a different benchmark)."
)


@section("Flow-ratio ablation", order=50, groups=("flow_ratio",), intro=INTRO)
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
        if task in ours:
            rows.append(
                [task, "ours"]
                + [mean_std(ours[task][r]) if r in ours[task] else "—" for r in ratios]
            )
        else:
            rows.append([task, "ours"] + ["not run"] * len(ratios))
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

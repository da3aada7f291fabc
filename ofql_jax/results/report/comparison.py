"""The sections on scores: the main comparison (final scores per (task, algorithm) beside the
paper's Table 1; aggregates over tasks, mean and IQM with stratified-bootstrap 95% CIs; learning
curves per task) and the ablations beside the paper's (the one-step ablation, OFQL's score per
flow_ratio, every eta grid with the setting the rule chooses)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from matplotlib.lines import Line2D

from ofql_jax.results import paper_numbers as paper
from ofql_jax.results.aggregate import (
    bootstrap_mean_ci,
    iqm_of_runs,
    mean_of_task_means,
    stratified_bootstrap_ci,
)
from ofql_jax.results.report.cells import MAIN_GROUP, Cell
from ofql_jax.results.report.formatting import (
    DPI,
    ci,
    fmt,
    mean_std,
    plt,
    safe_name,
    save_figure,
    steps_axis,
    table,
    task_order,
)
from ofql_jax.results.report.registry import Context, NotRun, section
from ofql_jax.results.report.scores import (
    ETA_RULE,
    Outcome,
    agent_config,
    candidates,
    cell_value,
    choose,
    data_source,
    env_id,
    final_entry,
    final_scores,
    finite,
    grid_points,
    outcomes,
    paper_variant_differs,
    reported_outcome,
)
from ofql_jax.results.schema import ONE_CANDIDATE

FINAL_INTRO = (
    "Final = the last evaluation (the final checkpoint), mean ± std over seeds "
    "(population std; seeds without a score, i.e. non-finite, are left out). N cand.: the "
    "protocol's N candidates scored by the critics; N = 1: the policy's own action "
    "(agents without a critic have only this); one cand. (where a run set "
    "eval_one_candidate): one candidate drawn as the N are, without the critics' choice. "
    "A sweep cell is shown with its setting "
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
    if differs := paper_variant_differs(algorithm, config):
        value += f" (paper: {differs})"
    return value


@section("Final scores", order=10, groups=("main", "one_step_ablation"), intro=FINAL_INTRO)
def final(ctx: Context) -> list[str] | NotRun:
    ran = [c for c in ctx.cells if c.results is not None]
    if not ran:
        return NotRun("no cell of the main comparison has results.")
    groups = {c.group for c in ran}
    # eval_one_candidate's column (N = 1 at the candidates' noise), where any cell logged it
    one_cand = any(final_entry(c.results).get(f"scores{ONE_CANDIDATE}") for c in ran)
    header = ["task", "algorithm"] + (["group"] if len(groups) > 1 else [])
    header += ["ours, N cand.", "N", "ours, N = 1"] + ["ours, one cand."] * one_cand
    header += ["paper (Table 1, D4RL v2)", "steps"]
    header += ["seeds", "data", "env"]
    rows = []
    tasks = task_order(c.task for c in ctx.suite.cells)
    labels = list(dict.fromkeys(c.label for c in ran))
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
        row += [mean_std(scores), n if n is not None else "?", mean_std(one)]
        if one_cand:
            row.append(mean_std(final_scores(cell, ONE_CANDIDATE, outcome)) if outcome else "—")
        row += [paper_table1(cell.task, cell.algorithm, agent_config(cell)), steps_text, seeds]
        rows.append(row + [data_source(r), env_id(r)])
    return table(header, rows) + [""]


BOOTSTRAP_NOTE = (
    "CIs are percentile-bootstrap 95% intervals from a stratified bootstrap written with numpy "
    "(`ofql_jax/results/aggregate.py`; 2,000 resamples, seed 0): the seeds of each task are "
    "resampled with replacement, independently per task. rliable is not used: "
    "rliable 1.2.0 installs, "
    "but its dependency arch 7.2.0 fails to import with pandas 3.1.1 (checked 2026-11-26)."
)

AGGREGATES_INTRO = (
    "Per algorithm, over the tasks it has final N-candidate scores on: **mean** = the mean "
    "over tasks of each task's mean over seeds (every task weighs the same, as the paper's "
    "averages); **IQM** = the interquartile mean of all (task, seed) runs, as rliable's. "
    + BOOTSTRAP_NOTE
    + " The paper's averages are D4RL v2 numbers (not comparable); 'paper, same tasks' "
    "recomputes the paper's average over the tasks run here from Table 1."
)
_DOMAIN_NAMES = {**paper.DOMAIN_LABELS, "other": "not in Table 1", "all": "all tasks"}


def _domain_of(task: str) -> str:
    return paper.paper_domain(task) or "other"


@section("Aggregates over tasks", order=20, groups=("main",), intro=AGGREGATES_INTRO)
def aggregates(ctx: Context) -> list[str] | NotRun:
    per_label: dict[str, dict[str, np.ndarray]] = {}
    algorithms: dict[str, str] = {}
    for cell in ctx.cells:
        scores = final_scores(cell)  # none without results
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
            row = [_DOMAIN_NAMES[domain], label, len(tasks), sum(d.size for d in data)]
            rows.append(row + [ci(*mean), ci(*iqm_ci), same, published])
    return table(header, rows) + [""]


CURVES_INTRO = (
    "Per task, one line per algorithm: the mean over seeds of the evaluation score at each "
    "evaluation, with a 95% percentile-bootstrap band over seeds (1,000 resamples). Solid: "
    "N candidates (the legend gives N); dashed: N = 1, where the cell evaluated it; dotted: "
    "one candidate (eval_one_candidate), where logged. Cells "
    "that share a program (the same run) are drawn once."
)


def _curve(cell: Cell, outcome: Outcome, suffix: str):
    """(steps, mean, lower, upper) of a cell's evaluations, over the outcome's seeds."""
    rows = []
    for entry in cell.results.get("evaluations") or []:
        scores = finite(outcome.scores(entry, suffix))
        if scores.size:
            band = bootstrap_mean_ci(scores) if scores.size > 1 else (float(scores[0]),) * 3
            rows.append((entry["step"], *band))
    return tuple(np.array([row[k] for row in rows]) for k in range(4))


# The variants drawn: the protocol's N candidates, N = 1 (noise x 1) and, where logged, one
# candidate as the N are drawn (eval_one_candidate).
CURVE_STYLES = (("", "-"), ("_one_step", "--"), (ONE_CANDIDATE, ":"))
CURVE_LABELS = {"": "N candidates", "_one_step": "N = 1", ONE_CANDIDATE: "one candidate"}


# The first group is the comparison; a cell of the others that shares a label with one of it
# is drawn as "[ablation]".
@section("Learning curves", order=30, groups=("main", "one_step_ablation"), intro=CURVES_INTRO)
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
        drawn, styles = False, set()
        for k, cell in enumerate(task_cells):
            outcome = reported_outcome(cell)
            if outcome is None:
                continue
            label = cell.label + (f" ({outcome.name})" if outcome.name else "")
            if cell.group != primary and cell.label in main_labels:
                label += " [ablation]"
            color = colors[k % len(colors)]
            for suffix, style in CURVE_STYLES:
                steps, mean, lo, hi = _curve(cell, outcome, suffix)
                if steps.size == 0:
                    continue
                styles.add(suffix)
                text = f"{label} (N={candidates(cell.results)})" if suffix == "" else None
                ax.plot(steps, mean, style, color=color, label=text, marker=".")
                ax.fill_between(steps, lo, hi, color=color, alpha=0.15, linewidth=0)
                drawn = True
        handles, _ = ax.get_legend_handles_labels()
        handles += [Line2D([], [], color="0.3", ls=style, label=CURVE_LABELS[suffix])
                    for suffix, style in CURVE_STYLES if suffix in styles]  # fmt: skip
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        steps_axis(ax)
        ax.set_xlabel("gradient steps")
        ax.set_ylabel("normalised score")
        ax.set_title(f"{task}: mean over seeds, 95% bootstrap band", fontsize=10)
        ax.grid(alpha=0.3)
        path = ctx.figures / f"curves_{safe_name(task)}.png"
        save_figure(fig, path)
        text = f"![{task}](figures/{path.name})" if drawn else f"{task}: no evaluations to draw."
        lines += [text, ""]
    return lines


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
        for point in grid_points(cell, ("flow_ratio",)):  # none without results
            if "flow_ratio" in point.hparams:
                scores = finite(point.outcome.scores(final_entry(cell.results)))
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
    settings = (cell.results or {}).get("settings") or []
    return "eta" in cell.sweep or any("eta" in (s.get("hparams") or {}) for s in settings)


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
    order = task_order(c.task for c in suite.cells)
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

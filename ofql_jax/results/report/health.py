"""Training health per task: each program's ``diag/*`` TensorBoard curves (``_PANELS``) and
each seed's last values (``_COLUMNS``)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from ofql_jax.agents.base import Q_POLICY_MEAN
from ofql_jax.results.report import formatting as fm
from ofql_jax.results.report.cells import Suite
from ofql_jax.results.report.registry import Context, NotRun, section
from ofql_jax.results.writers import read_scalars

INTRO = (
    "Per task, the diagnostics every program logs after each training chunk on a fresh "
    "batch (`diag/*` in TensorBoard, read from `programs/<program>/tb`, so a program "
    "still training is shown to its last chunk): one line per program and setting, the "
    "mean over seeds with a band from the lowest to the highest seed. A policy that "
    "stays in the data keeps Q(s, π) under the bound its rewards allow and its "
    "saturation near the data's; the grad ratio is how hard the critic pulls the actor "
    "relative to behaviour cloning. The table gives each seed's value at the last step "
    "all seeds logged."
)


@dataclasses.dataclass(frozen=True)
class _Panel:
    tag: str
    title: str
    log: bool = True  # log scale
    references: tuple[tuple[str, str, str], ...] = ()  # drawn flat: (tag, style, legend text)


_Q_BOUNDS = (
    ("diag/q_upper_bound", "--", "bound max r / (1 - γ)"),
    ("diag/best_data_return", ":", "best discounted return in the data"),
)
_DATA_SATURATION = (("diag/data_saturation", "--", "the data's saturation"),)
_PANELS = (
    _Panel(Q_POLICY_MEAN, "Q(s, π): critics' value of the policy's actions", False, _Q_BOUNDS),
    _Panel("diag/saturation", "saturation: |a| > 0.99", False, _DATA_SATURATION),
    _Panel("diag/one_step_mse_to_data", "policy action to data action, squared distance"),
    _Panel("diag/two_step_mse_to_data", "the same field in two jumps to data (OFQL)"),
    _Panel("diag/bc_loss_endpoint", "L_FBC at the one-step map (r, t) = (0, 1)"),
    _Panel("diag/grad_ratio", "grad ratio: weighted Q term / BC term"),
)
# The table's columns: (tag, header)
_COLUMNS = (
    (Q_POLICY_MEAN, "Q(s, π)"),
    ("diag/q_policy_max", "largest Q(s, π)"),
    ("diag/q_upper_bound", "bound (best return in data)"),
    ("diag/saturation", "saturation"),
    ("diag/data_saturation", "data's saturation"),
    ("diag/one_step_mse_to_data", "distance to data"),
    ("diag/two_step_mse_to_data", "two jumps' distance"),
    ("diag/bc_loss_endpoint", "L_FBC at (0, 1)"),
    ("diag/grad_ratio", "grad ratio"),
)


def _setting_key(name: str) -> tuple:
    """Order settings like ``eta=0.01`` < ``eta=0.1`` by value, not by text."""
    parts = []
    for part in name.split(","):
        try:
            parts.append((0, float(part.partition("=")[2]), part))
        except ValueError:
            parts.append((1, 0.0, part))
    return tuple(parts)


@dataclasses.dataclass
class HealthLine:
    """One program setting's ``diag/*`` series: ``seeds[run][tag] = [(step, value), ...]``,
    and ``shared``, the scalars logged once for all members (the value bounds, in ``mean``)."""

    label: str
    seeds: dict[str, dict[str, list[tuple[int, float]]]]
    shared: dict[str, list[tuple[int, float]]]

    def reference(self, tag: str) -> list[float]:
        """Every value of a dataset figure such as ``diag/q_upper_bound``, from any run."""
        runs = [*self.seeds.values(), self.shared]
        return [v for run in runs for _, v in run.get(tag, [])]

    def series(self, tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(steps, mean, lowest, highest) over the seeds, at the steps every seed logged."""
        per_seed = [dict(s[tag]) for s in self.seeds.values() if s.get(tag)]
        if not per_seed:
            return (np.zeros(0),) * 4
        steps = sorted(set.intersection(*(set(d) for d in per_seed)))
        values = np.array([[d[k] for k in steps] for d in per_seed], np.float64)
        return np.array(steps), values.mean(0), values.min(0), values.max(0)

    def last(self, tag: str) -> tuple[int | None, list[float]]:
        """The last step every seed logged ``tag`` at, and each seed's value there."""
        steps, *_ = self.series(tag)
        if steps.size == 0:
            return None, []
        step = int(steps[-1])
        return step, [dict(s[tag])[step] for s in self.seeds.values() if s.get(tag)]


def _diag(run: Path) -> dict[str, list[tuple[int, float]]]:
    return {tag: v for tag, v in read_scalars(run).items() if tag.startswith("diag/")}


def health_lines(suite: Suite, task: str) -> list[HealthLine]:
    """Every program of ``task`` with ``diag/*`` in its TensorBoard, one line per setting.

    A program's runs are ``tb/seed_*`` (one line) or ``tb/<setting>/seed_*`` (a sweep: one
    line per setting), as ``ofql_jax.results.writers.Reporter`` writes them.
    """
    lines = []
    programs = dict.fromkeys(c.program for c in suite.cells if c.task == task)
    for program in programs:
        label = next(c.label for c in suite.cells if c.program == program)
        tb = suite.directory / "programs" / program / "tb"
        if any(tb.glob("seed_*")):
            folders = [tb]
        else:
            settings = (d for d in tb.glob("*") if d.is_dir() and any(d.glob("seed_*")))
            folders = sorted(settings, key=lambda d: _setting_key(d.name))
        for folder in folders:
            seeds = {run.name: d for run in sorted(folder.glob("seed_*")) if (d := _diag(run))}
            if seeds:
                name = label if folder == tb else f"{label} {folder.name}"
                shared = _diag(folder / "mean") if (folder / "mean").is_dir() else {}
                lines.append(HealthLine(name, seeds, shared))
    return lines


def _health_figure(task: str, lines: list[HealthLine], path: Path) -> None:
    panels = [p for p in _PANELS if any(line.series(p.tag)[0].size for line in lines)]
    ncols = min(3, len(panels))
    nrows = math.ceil((len(panels) + 1) / ncols)  # one slot for the legend
    figsize = (10.0, 3.2 * nrows)
    fig, axes = fm.plt.subplots(nrows, ncols, figsize=figsize, dpi=fm.DPI, squeeze=False)
    colors = fm.plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, panel in zip(axes.flat, panels, strict=False):
        for k, line in enumerate(lines):
            steps, mean, lo, hi = line.series(panel.tag)
            if steps.size == 0:
                continue
            color = colors[k % len(colors)]
            ax.plot(steps, mean, color=color, lw=1.2, label=line.label)
            ax.fill_between(steps, lo, hi, color=color, alpha=0.2, linewidth=0)
        for ref_tag, style, text in panel.references:
            values = [v for line in lines for v in line.reference(ref_tag)]
            if values:
                ax.axhline(float(np.median(values)), color="0.2", ls=style, lw=1.0, label=text)
        if panel.log:
            ax.set_yscale("log")
        ax.set_title(panel.title, fontsize=8)
        fm.steps_axis(ax)
        ax.tick_params(which="both", labelsize=7)
        ax.grid(alpha=0.3)
    found: dict[str, Any] = {}
    for ax in axes.flat[: len(panels)]:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            found.setdefault(text, handle)
    order = [line.label for line in lines] + [r[2] for p in panels for r in p.references]
    handles = {text: found[text] for text in order if text in found}  # programs, then references
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    axes.flat[len(panels)].legend(handles.values(), handles.keys(), fontsize=7, loc="upper left")
    title = f"{task}: diagnostics per gradient step (mean over seeds, band: lowest to highest seed)"
    fig.suptitle(title, fontsize=9)
    fm.save_figure(fig, path)


def _column(line: HealthLine, tag: str) -> str:
    """Each seed's last value of ``tag``; the dataset's figures once."""
    if tag == "diag/q_upper_bound":  # the dataset's bound (its best return), not a seed's
        bound, best = line.reference(tag), line.reference("diag/best_data_return")
        return f"{bound[-1]:.3g} ({best[-1]:.3g})" if bound and best else "—"
    if tag == "diag/data_saturation":  # the data's: median over every batch
        data = line.reference(tag)
        return f"{np.median(data):.3g}" if data else "—"
    values = line.last(tag)[1]
    return " / ".join(f"{v:.3g}" for v in values) if values else "—"


@section("Training health", order=80, groups=None, intro=INTRO)
def health(ctx: Context) -> list[str] | NotRun:
    found = {t: health_lines(ctx.suite, t) for t in fm.task_order(c.task for c in ctx.cells)}
    if not any(found.values()):
        return NotRun("no program has `diag/*` in its TensorBoard.")
    lines = []
    for task, task_lines in found.items():
        if not task_lines:
            continue
        path = ctx.figures / f"health_{fm.safe_name(task)}.png"
        _health_figure(task, task_lines, path)
        rows = []
        for line in task_lines:
            step, _ = line.last("diag/saturation")
            row = [line.label, f"{step:,}" if step is not None else "—"]
            rows.append(row + [_column(line, tag) for tag, _ in _COLUMNS])
        lines += [f"**{task}**", "", f"![{task} diagnostics](figures/{path.name})", ""]
        lines += fm.table(["program, setting", "step", *(name for _, name in _COLUMNS)], rows)
        lines.append("")
    return lines

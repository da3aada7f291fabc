"""Cost: training and decision rates as ratios to OFQL (a ``benchmarks/throughput.py`` output
and the cells' own training rates) beside the paper's Figure 3."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ofql_jax.results import paper_numbers as paper
from ofql_jax.results.report.cells import Cell
from ofql_jax.results.report.formatting import DPI, fmt, plt, save_figure, table
from ofql_jax.results.report.registry import Context, NotRun, section
from ofql_jax.results.report.scores import (
    COST_REFERENCE,
    agent_config,
    variant_name,
    variant_steps,
)
from ofql_jax.results.writers import read_scalars

INTRO = (
    "Ratios to OFQL: training time = OFQL's updates/s / the variant's (> 1: slower to "
    "train); decisions = the variant's decisions/s / OFQL's (< 1: slower to act). The "
    f"paper's Figure 3 ({paper.COST_HARDWARE}; 1M steps averaged over the 9 MuJoCo tasks; "
    f"{paper.COST_DECISION}) is beside ours as the same ratios; absolute numbers from "
    "different hardware are not comparable, the ratios are indicative."
)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


@dataclasses.dataclass
class CostRow:
    """One variant's cost, as ratios to OFQL measured in the same run."""

    name: str  # variant_name
    time_ratio: float | None  # OFQL's updates/s / this one's (> 1: slower to train)
    decision_ratio: float | None  # this one's decisions/s / OFQL's (< 1: slower to act)
    same_decision: bool  # the decision measured is OFQL's (N candidates, not N = 1)
    paper: paper.CostEntry | None


def _bench_rows(costs: list[tuple[str, dict[str, Any]]]) -> tuple[list[list], list[CostRow]]:
    """Table rows and ratios of every variant in the throughput files (per file's OFQL)."""
    rows, ratios = [], []
    for source, data in costs:
        base = data["agents"].get(COST_REFERENCE, {})
        for key, e in data["agents"].items():
            algorithm = e.get("algorithm", key)
            steps = variant_steps(algorithm, e.get("overrides") or {})
            ref = paper.cost_entry(algorithm, steps)
            same = e.get("decision") == base.get("decision")
            time = _ratio(base.get("train_updates_per_s"), e.get("train_updates_per_s"))
            decision = _ratio(e.get("decisions_per_s"), base.get("decisions_per_s"))
            r = CostRow(variant_name(algorithm, steps), time, decision, same, ref)
            ratios.append(r)
            decisions = fmt(e.get("decisions_per_s")) + ("" if same else f" ({e.get('decision')})")
            row = [f"{key} ({source})" if len(costs) > 1 else key, r.name]
            row += [fmt(e.get("train_updates_per_s")), fmt(e.get("hours_per_1m_steps"), 2)]
            row += [decisions, fmt(r.time_ratio, 2), fmt(ref.time_ratio_to_ofql, 2) if ref else "—"]
            row.append(fmt(r.decision_ratio, 2) + ("" if same else " (another decision)"))
            row.append(fmt(ref.decision_ratio_to_ofql, 2) if ref else "—")
            row.append(f"{ref.hours_per_1m_steps} h, {ref.decisions_per_s} Hz" if ref else "—")
            rows.append(row)
    return rows, ratios


def median_chunk_rate(workdir: Path) -> float | None:
    """A program's median updates/s over its training chunks, from its TensorBoard.

    Every chunk logs ``perf/updates_per_second`` to the mean runs; the median over chunks,
    across resumes, is robust to chunks that were paused (SIGSTOP) or shared the machine,
    which inflate a total-time average. None without a TensorBoard record.
    """
    for run in sorted((workdir / "tb").glob("**/mean")):
        values = [v for _, v in read_scalars(run).get("perf/updates_per_second", [])]
        if values:
            return float(np.median(values))
    return None


def _cell_rows(ctx: Context) -> tuple[list[list], list[CostRow]]:
    """The main cells' training rates per label: seed-updates/s, median over the label's cells."""
    rates: dict[str, list[float]] = {}
    members: dict[str, set[int]] = {}
    first: dict[str, Cell] = {}
    for c in ctx.cells:
        if c.results is None:
            continue
        r = c.results
        ups, seed_ups = r.get("updates_per_second"), r.get("seed_updates_per_second")
        # members of the program (a merged sweep's cell reports its whole program's rates)
        n = round(seed_ups / ups) if ups and seed_ups else len(r.get("seeds") or []) or 1
        chunk_ups = median_chunk_rate(ctx.suite.directory / "programs" / c.program)
        rate = chunk_ups * n if chunk_ups else seed_ups or (ups or 0.0) * n
        if rate:
            rates.setdefault(c.label, []).append(float(rate))
            members.setdefault(c.label, set()).add(n)
            first.setdefault(c.label, c)
    ofql = [label for label, c in first.items() if c.algorithm == COST_REFERENCE]
    base = float(np.median(rates[ofql[0]])) if ofql else None
    rows, ratios = [], []
    for label, values in rates.items():
        c = first[label]
        steps = variant_steps(c.algorithm, agent_config(c))
        ref = paper.cost_entry(c.algorithm, steps)
        rate = float(np.median(values))
        r = CostRow(variant_name(c.algorithm, steps), _ratio(base, rate), None, False, ref)
        ratios.append(r)
        row = [label, len(values), ", ".join(map(str, sorted(members[label]))), fmt(rate)]
        rows.append(row + [fmt(r.time_ratio, 2), fmt(ref.time_ratio_to_ofql, 2) if ref else "—"])
    return rows, ratios


def _cost_figure(bench: list[CostRow], cells: list[CostRow], path: Path) -> bool:
    """Bars of the ratios to OFQL (log scale): ours (benchmark, cells) beside the paper's."""
    values: dict[str, dict[str, float]] = {}
    for source, rows in (("bench", bench), ("cells", cells)):
        for r in rows:
            v = values.setdefault(r.name, {})
            if r.time_ratio is not None:
                v.setdefault(f"{source}_time", r.time_ratio)
            if r.decision_ratio is not None and r.same_decision:
                v.setdefault(f"{source}_decision", r.decision_ratio)
            if r.paper is not None:
                v["paper_time"] = r.paper.time_ratio_to_ofql
                v["paper_decision"] = r.paper.decision_ratio_to_ofql
    names = [n for n, v in values.items() if v]
    if not names:
        return False
    ours, a100 = "ours, benchmark", "paper (A100)"
    panels = {  # title: {series: legend}
        "training time / OFQL's (> 1: slower)": {
            "bench_time": ours,
            "cells_time": "ours, suite cells",
            "paper_time": a100,
        },
        "decisions/s / OFQL's (< 1: slower)": {"bench_decision": ours, "paper_decision": a100},
    }
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.8), dpi=DPI)
    x = np.arange(len(names))
    for ax, (title, series) in zip(axes, panels.items(), strict=True):
        width = 0.8 / len(series)
        for k, (key, text) in enumerate(series.items()):
            heights = [values[n].get(key, np.nan) for n in names]
            ax.bar(x + (k - (len(series) - 1) / 2) * width, heights, width, label=text)
        ax.axhline(1.0, color="0.3", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(x, names, rotation=40, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)
    return True


@section("Cost", order=70, groups=("main",), intro=INTRO)
def cost(ctx: Context) -> list[str] | NotRun:
    bench_rows, bench = _bench_rows(ctx.costs)
    cell_rows, cells = _cell_rows(ctx)
    if not bench_rows and not cell_rows:
        return NotRun("no cost.json, no --cost file and no cell training rates.")
    lines = []
    if bench_rows:
        lines += [
            "Throughput benchmark (`benchmarks/throughput.py`; each file's ratios are against "
            "its own OFQL row, measured in the same run):",
            "",
        ]
        for source, data in ctx.costs:
            lines.append(
                f"- `{source}`: backend {data.get('backend', '?')}, matmul "
                f"{fmt(data.get('matmul_gflops'))} GFLOP/s, jax {data.get('jax_version', '?')}"
            )
        lines.append("")
        header = ["variant", "as", "updates/s (1 seed)", "h per 1M steps", "decisions/s"]
        header += ["time ratio, ours", "paper", "decision ratio, ours", "paper", "paper, absolute"]
        lines += table(header, bench_rows) + [""]
    else:
        lines += ["Throughput benchmark: not run (no cost.json in the suite and no --cost).", ""]
    if cell_rows:
        lines += [
            "The cells' own training rates (main group; seed-updates/s = the program's "
            "updates/s, the median over its training chunks, x its members; the median over "
            "a label's cells; cells may have run beside other work, so these are rough):",
            "",
        ]
        header = ["algorithm", "cells", "members per program", "seed-updates/s"]
        header += ["time ratio to OFQL", "paper"]
        lines += table(header, cell_rows) + [""]
    else:
        lines += ["The cells' own training rates: not run (no main cell has results).", ""]
    if _cost_figure(bench, cells, ctx.figures / "cost.png"):
        lines += [
            "![cost](figures/cost.png)",
            "",
            "Decision bars are left out for variants whose benchmark decision is not OFQL's "
            "(agents without a critic act with N = 1).",
            "",
        ]
    return lines

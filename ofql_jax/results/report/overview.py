"""The report's head (the suite, its cells, wall time, machine, data, versions and commands,
with the caveat that these scores are not the paper's benchmark) and its tail: what went
wrong per cell (the divergence monitor's flags, the cells that failed or did not finish)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from ofql_jax.results.report.cells import Cell
from ofql_jax.results.report.formatting import duration, fmt, table
from ofql_jax.results.report.registry import Context, NotRun, section
from ofql_jax.results.report.scores import data_source, env_id

CAVEAT = (
    "**Not comparable with the paper.** The paper's numbers are D4RL v2 (mujoco-py) scores. "
    "This project trains on Minari's datasets for Gymnasium MuJoCo v5 or on its own replica "
    "datasets (different SAC behaviour policies on v5 environments): scores on them are a "
    "different benchmark, shown beside the paper's only for orientation, never as a "
    "reproduction or a comparison."
)
DIVERGENCE_INTRO = (
    "Per cell, the members flagged by the monitor with the step: value divergence (the "
    "critics' Q of the policy's own actions left the bounds the dataset's rewards allow; "
    "the seed kept training and was evaluated) and non-finite (NaN/inf losses or "
    "parameters; the seed was stopped and has no score)."
)


def _versions(cells: Sequence[Cell]) -> str:
    """``"jax 0.10.2, numpy 2.4.6"``; a package whose version differs between cells lists each."""
    seen: dict[str, Counter] = {}
    for c in cells:
        for package, version in (c.results.get("versions") or {}).items():
            seen.setdefault(package, Counter())[str(version)] += 1
    parts = []
    for package, counts in seen.items():
        each = " / ".join(f"{v} ({n} cells)" for v, n in counts.items())
        parts.append(f"{package} {next(iter(counts)) if len(counts) == 1 else each}")
    return ", ".join(parts) or "unknown (no results)"


def _machine(results: dict) -> str:
    """``"gpu x 1 (NVIDIA H200) on AMD EPYC (avx2, fma)"``: the backend, its devices and the
    host CPU (another CPU changes the last bits of a run: docs/data.md); older results lack
    the last two."""
    line = f"{results.get('backend', '?')} x {results.get('device_count', '?')}"
    kind = results.get("device_kind")
    if kind and kind != "cpu":
        line += f" ({kind})"
    return line + (f" on {results['cpu']}" if results.get("cpu") else "")


def _wall_time(cells: Sequence[Cell]) -> str:
    """The wall-time line: summed over programs, and from the first start to the last finish."""
    programs: dict[str, float] = {}  # cells of one program share its wall time
    for c in cells:
        if c.wall_seconds is not None:
            key = c.trained_with or c.program  # a multi-dataset program's runs share it too
            programs[key] = max(programs.get(key, 0.0), float(c.wall_seconds))
    starts = [c.started for c in cells if c.started]
    ends = [c.finished for c in cells if c.finished]
    wall = (
        f"- Wall time: {duration(sum(programs.values()))} summed over programs" if programs else ""
    )
    try:
        span = datetime.fromisoformat(max(ends)) - datetime.fromisoformat(min(starts))
        wall += "; " if wall else "- Wall time: "
        wall += f"{duration(span.total_seconds())} from the first start ({min(starts)}) to "
        wall += f"the last finish ({max(ends)})"
    except (ValueError, TypeError):
        pass
    return wall or "- Wall time: unknown (status.json records none)"


@section(None, order=0, groups=None)
def header(ctx: Context) -> list[str]:
    suite, meta, status = ctx.suite, ctx.suite.meta, ctx.suite.status
    lines = [f"# Suite report: {meta.get('suite', suite.directory.name)}", ""]
    if meta.get("description"):
        lines += [str(meta["description"]), ""]
    done = [c for c in suite.cells if c.results is not None]
    states = Counter(c.state for c in suite.cells)
    lines += [
        f"> {CAVEAT}",
        "",
        f"- Suite file: `{meta.get('suite_file', 'unknown')}`; directory `{suite.directory}`",
        f"- Cells: {len(suite.cells)} ("
        + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        + f"); {len(done)} with results",
        f"- Written: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
    ]
    missing = [c for c in suite.cells if c.results is None or c.state == "failed"]
    if missing:
        lines.append(
            f"- **{len(missing)} cell(s) failed or did not finish**: "
            + ", ".join(f"`{c.name}`" for c in missing)
            + " (see [Failed or unfinished cells](#failed-or-unfinished-cells))"
        )
    lines.append(_wall_time(suite.cells))
    machine = status.get("machine")
    machine = "; ".join(f"{k}: {v}" for k, v in machine.items()) if machine else ""
    lines.append(f"- Machine: {machine or 'unknown (status.json has none)'}")
    sources = Counter(f"{data_source(c.results)} ({env_id(c.results)})" for c in done)
    if sources:
        lines.append(
            "- Data: " + ", ".join(f"{k}: {n} cell(s)" for k, n in sorted(sources.items()))
        )
    protocols = sorted({str(c.results.get("protocol")) for c in done})
    if protocols:
        lines.append(f"- Protocols: {', '.join(protocols)}")
    backends = {_machine(c.results) for c in done}
    if backends:
        lines.append(f"- Backend x devices: {', '.join(sorted(backends))}")
    lines.append(f"- Versions: {_versions(done)}")
    # Every start of the suite is recorded; a resumed run repeats its command, so each
    # distinct command is listed once, with how many times it was started.
    counts = Counter(map(str, status.get("commands") or []))
    lines += ["", "Commands (each distinct one once; a resume repeats the same command):", ""]
    shown = [f"{cmd}  # started {n} times" if n > 1 else cmd for cmd, n in counts.items()]
    lines += ["```bash", *shown, "```"] if shown else ["(none recorded)"]
    return lines + [""]


def _flags(flags: dict[str, Any] | None) -> str:
    if not flags:
        return "none"
    return "; ".join(
        f"{label} at step {step:,}" if isinstance(step, int) else f"{label} ({step})"
        for label, step in flags.items()
    )


@section("Divergence monitor", order=90, groups=None, intro=DIVERGENCE_INTRO)
def divergence(ctx: Context) -> list[str] | NotRun:
    if not ctx.cells:
        return NotRun("the suite has no cells.")
    rows = []
    for c in ctx.cells:
        if c.results is None:
            rows.append([c.name, c.task, c.label, "no results", "no results", "—"])
            continue
        bounds = c.results.get("value_bounds") or {}
        text = f"[{fmt(bounds.get('lower'))}, {fmt(bounds.get('upper'))}]" if bounds else "—"
        flags = [_flags(c.results.get(k)) for k in ("value_diverged_seeds", "diverged_seeds")]
        rows.append([c.name, c.task, c.label, *flags, text])
    header = ["cell", "task", "algorithm", "value-diverged (Q left the bounds)", "non-finite"]
    return table([*header, "Q bounds"], rows) + [""]


@section("Failed or unfinished cells", order=100, groups=None)
def failed(ctx: Context) -> list[str]:
    suite = ctx.suite
    bad = [c for c in ctx.cells if c.results is None or c.state == "failed"]
    names = {c.name for c in ctx.cells}
    orphans = [n for n in (suite.status.get("cells") or {}) if n not in names]
    if not bad and not orphans:
        return ["None: every cell finished with results.", ""]
    rows = []
    for c in bad:
        why = c.error or c.problem or ""
        if c.results is not None:
            why = (why + "; " if why else "") + "has a results.json nevertheless"
        rows.append([c.name, c.task, c.label, c.group, c.state, str(why).replace("\n", " ")])
    for n in orphans:
        st = suite.status["cells"][n]
        rows.append([n, "?", "?", "?", st.get("state"), "in status.json but not in suite.json"])
    return table(["cell", "task", "algorithm", "group", "state", "error"], rows) + [""]

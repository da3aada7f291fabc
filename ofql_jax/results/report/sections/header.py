"""The report's head: the suite, its cells, wall time, machine, data, versions and commands,
with the caveat that these scores are not the paper's benchmark."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from ofql_jax.results.report.cells import Cell
from ofql_jax.results.report.formatting import duration
from ofql_jax.results.report.registry import Context, section
from ofql_jax.results.report.scores import data_source, env_id

CAVEAT = (
    "**Not comparable with the paper.** The paper's numbers are D4RL v2 (mujoco-py) scores. "
    "This project trains on Minari's datasets for Gymnasium MuJoCo v5 or on its own replica "
    "datasets (different SAC behaviour policies on v5 environments): scores on them are a "
    "different benchmark, shown beside the paper's only for orientation, never as a "
    "reproduction or a comparison."
)


def _versions(cells: Sequence[Cell]) -> str:
    """``"jax 0.10.2, numpy 2.4.6"``; a package whose version differs between cells lists each."""
    seen: dict[str, dict[str, int]] = {}
    for c in cells:
        for package, version in (c.results.get("versions") or {}).items():
            counts = seen.setdefault(package, {})
            counts[str(version)] = counts.get(str(version), 0) + 1
    if not seen:
        return "unknown (no results)"
    parts = []
    for package, counts in seen.items():
        if len(counts) == 1:
            parts.append(f"{package} {next(iter(counts))}")
        else:
            parts.append(f"{package} " + " / ".join(f"{v} ({n} cells)" for v, n in counts.items()))
    return ", ".join(parts)


@section(None, order=0, groups=None)
def header(ctx: Context) -> list[str]:
    suite = ctx.suite
    meta, status = suite.meta, suite.status
    lines = [f"# Suite report: {meta.get('suite', suite.directory.name)}", ""]
    if meta.get("description"):
        lines += [str(meta["description"]), ""]
    lines += [f"> {CAVEAT}", ""]
    done = [c for c in suite.cells if c.results is not None]
    states: dict[str, int] = {}
    for c in suite.cells:
        states[c.state] = states.get(c.state, 0) + 1
    lines += [
        f"- Suite file: `{meta.get('suite_file', 'unknown')}`; directory `{suite.directory}`",
        f"- Cells: {len(suite.cells)} ("
        + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        + f"); {len(done)} with results",
        f"- Written: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
    ]
    missing = [c for c in suite.cells if c.results is None or c.state == "failed"]
    if missing:
        lines.append(
            f"- **{len(missing)} cell(s) failed or did not finish**: "
            + ", ".join(f"`{c.name}`" for c in missing)
            + " (see [Failed or unfinished cells](#failed-or-unfinished-cells))"
        )
    programs: dict[str, float] = {}  # cells of one program share its wall time
    for c in suite.cells:
        if c.wall_seconds is not None:
            programs[c.program] = max(programs.get(c.program, 0.0), float(c.wall_seconds))
    walls = list(programs.values())
    starts = [c.started for c in suite.cells if c.started]
    ends = [c.finished for c in suite.cells if c.finished]
    wall = f"- Wall time: {duration(sum(walls))} summed over programs" if walls else ""
    try:
        span = datetime.datetime.fromisoformat(max(ends)) - datetime.datetime.fromisoformat(
            min(starts)
        )
        wall += "; " if wall else "- Wall time: "
        wall += f"{duration(span.total_seconds())} from the first start ({min(starts)}) to "
        wall += f"the last finish ({max(ends)})"
    except (ValueError, TypeError):
        pass
    lines.append(wall or "- Wall time: unknown (status.json records none)")
    machine = status.get("machine")
    if machine:
        lines.append("- Machine: " + "; ".join(f"{k}: {v}" for k, v in machine.items()))
    else:
        lines.append("- Machine: unknown (status.json has none)")
    sources: dict[str, int] = {}
    for c in done:
        key = f"{data_source(c.results)} ({env_id(c.results)})"
        sources[key] = sources.get(key, 0) + 1
    if sources:
        lines.append(
            "- Data: " + ", ".join(f"{k}: {n} cell(s)" for k, n in sorted(sources.items()))
        )
    protocols = sorted({str(c.results.get("protocol")) for c in done})
    if protocols:
        lines.append(f"- Protocols: {', '.join(protocols)}")
    backends = sorted(
        {f"{c.results.get('backend', '?')} x {c.results.get('device_count', '?')}" for c in done}
    )
    if backends:
        lines.append(f"- Backend x devices: {', '.join(backends)}")
    lines.append(f"- Versions: {_versions(done)}")
    # Every start of the suite is recorded; a resumed run repeats its command, so each
    # distinct command is listed once, with how many times it was started.
    counts: dict[str, int] = {}
    for command in map(str, status.get("commands") or []):
        counts[command] = counts.get(command, 0) + 1
    lines += ["", "Commands (each distinct one once; a resume repeats the same command):", ""]
    shown = [f"{cmd}  # started {n} times" if n > 1 else cmd for cmd, n in counts.items()]
    lines += ["```bash", *shown, "```"] if shown else ["(none recorded)"]
    return lines + [""]

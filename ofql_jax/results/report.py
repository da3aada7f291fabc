"""A suite's report: ``python -m ofql_jax.report SUITE_DIR [--cost=throughput.json]``.

Reads a suite directory written by the suite runner and writes ``SUITE_DIR/report.md`` with
PNG figures in ``SUITE_DIR/figures/``:

* the suite, machine, commands, wall time and versions, and the caveat that scores on
  replica or Gymnasium v5 datasets are a different benchmark from the paper's D4RL v2;
* final scores per (task, algorithm): mean +- std over seeds with N candidates and with
  N = 1, steps, seeds, data source and env id, beside the paper's Table 1 number;
* aggregates over tasks per algorithm (mean and IQM, stratified-bootstrap 95% CIs);
* learning curves per task (mean over seeds, 95% percentile-bootstrap band over seeds);
* the one-step ablation and flow-ratio tables beside the paper's;
* every eta grid, with the chosen value and the rule;
* cost (a ``benchmarks/throughput.py`` output and the cells' own training rates) as ratios
  to OFQL beside the paper's Figure 3;
* training health per task: each program's ``diag/*`` curves from its TensorBoard (Q of the
  policy's actions against the dataset's bound, action saturation against the data's,
  distance to the data, L_FBC at the one-step map, the Q term's gradient ratio), with a
  table of each seed's last values; a program still training is shown to its last chunk;
* the divergence monitor's flags per cell, and the cells that failed or did not finish.

Every section says "not run" when its cells are absent. "Final" is always the last
evaluation, never the best over training.

The suite directory (the contract with ``ofql_jax.suite``)::

    suite.json                  {"suite", "suite_file", "description", "cells": [{"name",
                                 "algorithm", "task", "protocol", "group", "overrides",
                                 "sweep", "label", "workdir"}, ...]}
    status.json                 {"cells": {name: {"state", "error", "wall_seconds",
                                 "started", "finished"}}, "machine": {...}, "commands": [...]}
    cells/<name>/results.json   one training run's results (ofql_jax.training.experiment)
    cost.json                   optional: a benchmarks/throughput.py output

Example:
    >>> write_report("runs/suite-cpu")  # doctest: +SKIP
    PosixPath('runs/suite-cpu/report.md')
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from ofql_jax.agents import AGENTS  # noqa: E402
from ofql_jax.core.errors import OFQLError  # noqa: E402
from ofql_jax.core.tasks import TASKS  # noqa: E402
from ofql_jax.results import paper_numbers as paper  # noqa: E402
from ofql_jax.results.aggregate import (  # noqa: E402
    bootstrap_mean_ci,
    iqm_of_runs,
    mean_of_task_means,
    stratified_bootstrap_ci,
)
from ofql_jax.results.schema import load_results  # noqa: E402
from ofql_jax.results.writers import read_scalars

GROUPS = ("main", "one_step_ablation", "flow_ratio", "eta_grid")
DEFAULT_LABELS = {
    "ofql": "OFQL",
    "dql": "DQL",
    "fql": "FQL",
    "fbrac": "FBRAC",
    "bc": "BC",
    "flow_bc": "flow BC",
}
ETA_RULE = "highest final N-candidate score averaged over seeds"
CAVEAT = (
    "**Not comparable with the paper.** The paper's numbers are D4RL v2 (mujoco-py) scores. "
    "This project trains on Minari's datasets for Gymnasium MuJoCo v5 or on its own replica "
    "datasets (different SAC behaviour policies on v5 environments): scores on them are a "
    "different benchmark, shown beside the paper's only for orientation, never as a "
    "reproduction or a comparison."
)
BOOTSTRAP_NOTE = (
    "CIs are percentile-bootstrap 95% intervals from a stratified bootstrap written with numpy "
    "(`ofql_jax/results/aggregate.py`; 2,000 resamples, seed 0): the seeds of each task are "
    "resampled with replacement, independently per task. rliable is not used: "
    "rliable 1.2.0 installs, "
    "but its dependency arch 7.2.0 fails to import with pandas 3.1.1 (checked 2026-11-26)."
)
# Agent fields that name the paper's variant (DQL(T), FQL(K) flow steps, FBRAC(T)).
_STEP_FIELDS = {"dql": "num_diffusion_steps", "fql": "flow_steps", "fbrac": "train_steps"}
_DPI = 100


# --- reading a suite -------------------------------------------------------------------------


@dataclasses.dataclass
class Cell:
    """One cell of the suite: its entry in suite.json, its status and its results."""

    name: str
    algorithm: str
    task: str
    group: str
    label: str
    protocol: str
    overrides: dict[str, Any]
    sweep: dict[str, Any]
    workdir: Path
    program: str  # the program that trained it (cells of one merged sweep share one)
    setting: dict[str, float]  # its values in a merged sweep program, {} otherwise
    state: str  # status.json: done | failed | pending | running; "unknown" without one
    error: str | None
    wall_seconds: float | None
    started: str | None
    finished: str | None
    results: dict[str, Any] | None
    problem: str | None  # why there are no results, when there are none


@dataclasses.dataclass
class Outcome:
    """The members of one setting of a cell (the whole cell without a sweep)."""

    name: str  # "" or the setting's name, e.g. "eta=0.1"
    hparams: dict[str, float]
    members: list[int]  # indices into every evaluation's per-member lists

    def scores(self, entry: dict[str, Any], suffix: str = "") -> list[float | None] | None:
        values = entry.get(f"scores{suffix}")
        if values is None:
            return None
        return [values[i] for i in self.members if i < len(values)]


@dataclasses.dataclass
class Suite:
    directory: Path
    meta: dict[str, Any]
    status: dict[str, Any]
    cells: list[Cell]


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise OFQLError(f"{path} does not exist: {what}.") from None
    except (OSError, ValueError) as err:
        raise OFQLError(f"{path} cannot be read as JSON ({err}): {what}.") from None


def _unrecorded_state(results: dict[str, Any] | None, status_path: Path) -> str:
    """The state of a cell status.json does not mention."""
    if results is not None:
        return "done"
    return "not started" if status_path.exists() else "unknown"


def load_suite(suite_dir: str | Path) -> Suite:
    """Read suite.json, status.json (optional) and every cell's results.json that exists."""
    directory = Path(suite_dir)
    if not directory.is_dir():
        raise OFQLError(
            f"{directory} is not a directory: pass the suite directory the suite runner wrote."
        )
    meta = _read_json(directory / "suite.json", "pass a directory written by ofql_jax.suite")
    if not isinstance(meta, dict) or not isinstance(meta.get("cells"), list):
        raise OFQLError(
            f"{directory / 'suite.json'} has no list of cells: pass a directory written by "
            "ofql_jax.suite."
        )
    status_path = directory / "status.json"
    status = _read_json(status_path, "the suite runner writes it") if status_path.exists() else {}
    states = status.get("cells", {}) if isinstance(status, dict) else {}
    cells = []
    for raw in meta["cells"]:
        if not isinstance(raw, dict) or not raw.get("name"):
            raise OFQLError(
                f"{directory / 'suite.json'} has a cell without a name ({raw!r:.80}): pass a "
                "directory written by ofql_jax.suite."
            )
        name = str(raw["name"])
        algorithm = str(raw.get("algorithm", "unknown"))
        st = states.get(name, {})
        workdir = Path(raw.get("workdir") or f"cells/{name}")
        workdir = workdir if workdir.is_absolute() else directory / workdir
        try:
            results = load_results(workdir)
            problem = None if results is not None else "no results.json"
        except OFQLError as err:
            results, problem = None, str(err)
        cells.append(
            Cell(
                name=name,
                algorithm=algorithm,
                task=str(raw.get("task", "unknown")),
                group=str(raw.get("group") or "main"),
                label=str(raw.get("label") or DEFAULT_LABELS.get(algorithm, algorithm)),
                protocol=str(raw.get("protocol", "")),
                overrides=dict(raw.get("overrides") or {}),
                sweep={k: v for k, v in (raw.get("sweep") or {}).items() if str(v).strip()},
                workdir=workdir,
                program=str(raw.get("program") or name),
                setting=dict(raw.get("setting") or {}),
                state=str(st.get("state") or _unrecorded_state(results, status_path)),
                error=st.get("error"),
                wall_seconds=st.get("wall_seconds"),
                started=st.get("started"),
                finished=st.get("finished"),
                results=results,
                problem=problem,
            )
        )
    return Suite(directory, meta, status if isinstance(status, dict) else {}, cells)


# --- one cell's numbers ----------------------------------------------------------------------


def finite(values: Iterable[float | None] | None) -> np.ndarray:
    """The finite values (None and NaN dropped) as a float array."""
    out = [float(v) for v in (values or []) if v is not None and math.isfinite(float(v))]
    return np.asarray(out, np.float64)


def outcomes(results: dict[str, Any]) -> list[Outcome]:
    """One Outcome per sweep setting (members are setting-major), or one for the whole run."""
    evaluations = results.get("evaluations") or []
    settings = results.get("settings") or []
    members = results.get("members") or []
    if settings and members:
        out = []
        for k, setting in enumerate(settings):
            chosen = [i for i, m in enumerate(members) if m.get("setting") == k]
            out.append(Outcome(setting.get("name", ""), dict(setting.get("hparams", {})), chosen))
        return out
    count = len(evaluations[-1].get("scores", [])) if evaluations else len(results.get("seeds", []))
    return [Outcome("", {}, list(range(count)))]


def final_entry(results: dict[str, Any]) -> dict[str, Any]:
    """The last evaluation (the final checkpoint's); {} without evaluations."""
    evaluations = results.get("evaluations") or []
    return evaluations[-1] if evaluations else {}


def candidates(results: dict[str, Any]) -> int | None:
    """N of the N-candidate score."""
    entry = final_entry(results)
    if "candidates" in entry:
        return entry["candidates"]
    return (results.get("eval_settings") or {}).get("candidates", results.get("eval_candidates"))


def reported_outcome(cell: Cell) -> Outcome | None:
    """The members a cell is reported with: all of them, or the chosen setting of a sweep."""
    if cell.results is None:
        return None
    settings = outcomes(cell.results)
    if len(settings) == 1:
        return settings[0]
    chosen = choose(grid_points(cell, ()))
    return chosen.outcome if chosen is not None else None


def final_scores(cell: Cell, suffix: str = "", outcome: Outcome | None = None) -> np.ndarray:
    """Finite final scores over the seeds of the reported (or given) outcome."""
    outcome = outcome or reported_outcome(cell)
    if cell.results is None or outcome is None:
        return np.zeros(0)
    return finite(outcome.scores(final_entry(cell.results), suffix))


def agent_config(cell: Cell) -> dict[str, Any]:
    """The cell's agent fields: its results' config, then the cell's overrides (nested like
    the config, ``{"agent": {"eta": 0.1}}``, or dotted, ``{"agent.eta": 0.1}``)."""
    config = dict((cell.results or {}).get("config", {}).get("agent", {}))
    config.update(cell.overrides.get("agent") or {})
    config.update({k[6:]: v for k, v in cell.overrides.items() if k.startswith("agent.")})
    return config


def cell_value(cell: Cell, field: str) -> float | None:
    """A cell's value of an agent hyperparameter such as ``eta`` or ``flow_ratio``.

    A cell of a merged sweep program has the program's base value in its config; its own
    value is in ``results["hparams"]`` and the suite's ``setting``, which come first.
    """
    for source in ((cell.results or {}).get("hparams") or {}, cell.setting, agent_config(cell)):
        if source.get(field) is not None:
            return float(source[field])
    return None


@dataclasses.dataclass
class GridPoint:
    """One trained setting of a grid: a setting of a sweep cell, or a cell of its own."""

    cell: Cell
    outcome: Outcome
    hparams: dict[str, float]

    @property
    def name(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in self.hparams.items()) or "(no setting)"


def grid_points(cell: Cell, fields: Sequence[str]) -> list[GridPoint]:
    """The settings a cell trained, with their values of ``fields`` (e.g. ``("eta",)``)."""
    if cell.results is None:
        return []
    settings = outcomes(cell.results)
    if len(settings) > 1:
        return [GridPoint(cell, o, dict(o.hparams)) for o in settings]
    values = {f: cell_value(cell, f) for f in fields}
    hparams = {**{f: v for f, v in values.items() if v is not None}, **settings[0].hparams}
    return [GridPoint(cell, settings[0], hparams)]


def variant_steps(algorithm: str, config: dict[str, Any] | None = None) -> int | None:
    """DQL's T, FQL's flow steps or FBRAC's training steps; the agent's default if unset."""
    field = _STEP_FIELDS.get(algorithm)
    if field is None:
        return None
    if config and field in config:
        return int(config[field])
    spec = AGENTS.get(algorithm)
    return int(spec.default_config()[field]) if spec is not None else None


def data_source(results: dict[str, Any]) -> str:
    source = results.get("data_source")
    if source == "official":
        return "official Minari"
    if source == "replica":
        return "replica"
    if source == "dataset_id":  # --config.dataset_id: a Minari dataset named explicitly
        return f"other ({results.get('dataset_id', '?')})"
    return f"other ({source})" if source else "unknown"


def env_id(results: dict[str, Any]) -> str:
    return str(results.get("env_id") or "unknown")


# --- formatting ------------------------------------------------------------------------------


def _f(x: float | None, digits: int = 1) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def mean_std(scores: np.ndarray) -> str:
    """``"37.7 ± 0.7"`` (population std over seeds, as results.json), or "—"."""
    if scores.size == 0:
        return "—"
    return f"{scores.mean():.1f} ± {scores.std():.1f}"


def _ci(point: float, lo: float, hi: float) -> str:
    return f"{point:.1f} [{lo:.1f}, {hi:.1f}]"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return out


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, s = divmod(int(round(seconds)), 60)
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _task_order(tasks: Iterable[str]) -> list[str]:
    known = list(TASKS)
    return sorted(set(tasks), key=lambda t: (known.index(t) if t in known else len(known), t))


def _label_order(cells: Sequence[Cell]) -> list[str]:
    return list(dict.fromkeys(c.label for c in cells))


def _paper_table1(task: str, algorithm: str, config: dict[str, Any]) -> str:
    """The paper's Table 1 number for (task, algorithm), labelled; "—" where there is none."""
    column = paper.table1_column(algorithm)
    if column is None or task not in paper.TABLE1:
        return "—"
    value = f"{paper.TABLE1[task][column[0]]:.1f}"
    if algorithm != column[0]:
        value += f" ({paper.TABLE1_LABELS[column[0]]} column)"
    if algorithm == "dql" and variant_steps("dql", config) != 5:
        value += " (paper: T = 5)"
    return value


# --- sections --------------------------------------------------------------------------------


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


def _section_header(suite: Suite) -> list[str]:
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
    wall = f"- Wall time: {_duration(sum(walls))} summed over programs" if walls else ""
    try:
        span = datetime.datetime.fromisoformat(max(ends)) - datetime.datetime.fromisoformat(
            min(starts)
        )
        wall += "; " if wall else "- Wall time: "
        wall += f"{_duration(span.total_seconds())} from the first start ({min(starts)}) to "
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


def _section_final(suite: Suite) -> list[str]:
    lines = ["## Final scores", ""]
    cells = [c for c in suite.cells if c.group in ("main", "one_step_ablation")]
    ran = [c for c in cells if c.results is not None]
    if not ran:
        return lines + ["Not run: no cell of the main comparison has results.", ""]
    lines += [
        "Final = the last evaluation (the final checkpoint), mean ± std over seeds "
        "(population std; seeds without a score, i.e. non-finite, are left out). N cand.: the "
        "protocol's N candidates scored by the critics; N = 1: the policy's own action "
        "(agents without a critic have only this). A sweep cell is shown with its setting "
        f"chosen by the rule of the eta grid ({ETA_RULE}). The paper's column is Table 1 "
        "(D4RL v2): a different benchmark, for orientation only; flow BC and BC are set beside "
        "the paper's BC column.",
        "",
    ]
    groups = {c.group for c in ran}
    header = ["task", "algorithm"] + (["group"] if len(groups) > 1 else [])
    header += [
        "ours, N cand.",
        "N",
        "ours, N = 1",
        "paper (Table 1, D4RL v2)",
        "steps",
        "seeds",
        "data",
        "env",
    ]
    rows = []
    labels = _label_order(ran)
    for cell in sorted(
        ran, key=lambda c: (_task_order(suite_tasks(suite)).index(c.task), labels.index(c.label))
    ):
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
            _paper_table1(cell.task, cell.algorithm, agent_config(cell)),
            steps_text,
            seeds,
            data_source(r),
            env_id(r),
        ]
        rows.append(row)
    return lines + _table(header, rows) + [""]


def suite_tasks(suite: Suite) -> list[str]:
    return _task_order(c.task for c in suite.cells)


def _domain_of(task: str) -> str:
    return paper.paper_domain(task) or "other"


def _section_aggregates(suite: Suite) -> list[str]:
    lines = ["## Aggregates over tasks", ""]
    cells = [c for c in suite.cells if c.group == "main" and c.results is not None]
    per_label: dict[str, dict[str, np.ndarray]] = {}
    algorithms: dict[str, str] = {}
    for cell in cells:
        scores = final_scores(cell)
        if scores.size:
            per_label.setdefault(cell.label, {}).setdefault(cell.task, scores)
            algorithms[cell.label] = cell.algorithm
    if not per_label:
        return lines + ["Not run: no cell of the main comparison has final scores.", ""]
    lines += [
        "Per algorithm, over the tasks it has final N-candidate scores on: **mean** = the mean "
        "over tasks of each task's mean over seeds (every task weighs the same, as the paper's "
        "averages); **IQM** = the interquartile mean of all (task, seed) runs, as rliable's. "
        + BOOTSTRAP_NOTE
        + " The paper's averages are D4RL v2 numbers (not comparable); 'paper, same tasks' "
        "recomputes the paper's average over the tasks run here from Table 1.",
        "",
    ]
    present = {_domain_of(t) for by_task in per_label.values() for t in by_task}
    domains = ["mujoco", "antmaze", "kitchen", "other"] + (["all"] if len(present) > 1 else [])
    header = [
        "tasks",
        "algorithm",
        "tasks run",
        "runs",
        "mean [95% CI]",
        "IQM [95% CI]",
        "paper, same tasks",
        "paper's average",
    ]
    rows = []
    for domain in domains:
        for label, by_task in per_label.items():
            tasks = [t for t in by_task if domain == "all" or _domain_of(t) == domain]
            if not tasks:
                continue
            data = [by_task[t] for t in _task_order(tasks)]
            mean = stratified_bootstrap_ci(data, mean_of_task_means)
            iqm_ci = stratified_bootstrap_ci(data, iqm_of_runs)
            column = paper.table1_column(algorithms[label])
            same, published = "—", "—"
            if column and all(t in paper.TABLE1 for t in tasks):
                same = _f(float(np.mean([paper.TABLE1[t][column[0]] for t in tasks])))
                if column[0] != algorithms[label]:
                    same += f" ({paper.TABLE1_LABELS[column[0]]})"
            if column and domain in paper.TABLE1_AVERAGES:
                published = _f(paper.TABLE1_AVERAGES[domain][column[0]])
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
                    _ci(*mean),
                    _ci(*iqm_ci),
                    same,
                    published,
                ]
            )
    return lines + _table(header, rows) + [""]


def _steps_tick(value: float, _position=None) -> str:
    return f"{value / 1000:g}k" if value >= 1000 and value % 1000 == 0 else f"{value:g}"


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


def _section_curves(suite: Suite, figures: Path) -> list[str]:
    lines = ["## Learning curves", ""]
    cells = [
        c for c in suite.cells if c.group in ("main", "one_step_ablation") and c.results is not None
    ]
    if not cells:
        return lines + ["Not run: no cell of the main comparison has results.", ""]
    lines += [
        "Per task, one line per algorithm: the mean over seeds of the evaluation score at each "
        "evaluation, with a 95% percentile-bootstrap band over seeds (1,000 resamples). Solid: "
        "N candidates (the legend gives N); dashed: N = 1, where the cell evaluated it. Cells "
        "that share a program (the same run) are drawn once.",
        "",
    ]
    for task in _task_order(c.task for c in cells):
        # A cell that shares its program (and setting) with one already drawn is the same run.
        runs: dict[tuple[str, str], Cell] = {}
        for c in sorted((c for c in cells if c.task == task), key=lambda c: c.group != "main"):
            runs.setdefault((c.program, json.dumps(c.setting, sort_keys=True)), c)
        task_cells = list(runs.values())
        fig, ax = plt.subplots(figsize=(8.0, 3.8), dpi=_DPI)
        main_labels = {c.label for c in task_cells if c.group == "main"}
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        drawn = False
        for k, cell in enumerate(task_cells):
            outcome = reported_outcome(cell)
            if outcome is None:
                continue
            label = cell.label + (f" ({outcome.name})" if outcome.name else "")
            if cell.group != "main" and cell.label in main_labels:
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
        ax.xaxis.set_major_formatter(FuncFormatter(_steps_tick))
        ax.set_xlabel("gradient steps")
        ax.set_ylabel("normalised score")
        ax.set_title(f"{task}: mean over seeds, 95% bootstrap band", fontsize=10)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = figures / f"curves_{_safe(task)}.png"
        fig.savefig(path, dpi=_DPI)
        plt.close(fig)
        if drawn:
            lines += [f"![{task}](figures/{path.name})", ""]
        else:
            lines += [f"{task}: no evaluations to draw.", ""]
    return lines


def _ablation_scores(cells: list[Cell], entry: paper.AblationEntry) -> dict[str, np.ndarray]:
    out = {}
    for cell in cells:
        if cell.algorithm != entry.algorithm or cell.results is None:
            continue
        if entry.algorithm == "dql" and variant_steps("dql", agent_config(cell)) != 5:
            continue
        scores = final_scores(cell, entry.score_suffix)
        if scores.size:
            out.setdefault(cell.task, scores)
    return out


def _section_ablation(suite: Suite) -> list[str]:
    lines = ["## One-step ablation", ""]
    cells = [c for c in suite.cells if c.group == "one_step_ablation"]
    rows, per_task = [], {}
    for entry in paper.ONE_STEP_ABLATION:
        by_task = _ablation_scores(cells, entry)
        per_task[entry.label] = by_task
        if by_task:
            data = [by_task[t] for t in _task_order(by_task)]
            ours = _ci(*stratified_bootstrap_ci(data, mean_of_task_means))
        else:
            ours = "not run"
        tasks = list(by_task)
        same = "—"
        column = paper.table1_column(entry.algorithm)
        if tasks and entry.score_suffix == "" and column and all(t in paper.TABLE1 for t in tasks):
            same = _f(float(np.mean([paper.TABLE1[t][column[0]] for t in tasks])))
        n_tasks = sum(t in paper.ONE_STEP_ABLATION_TASKS for t in tasks)
        rows.append(
            [
                entry.label,
                entry.note,
                ours,
                f"{n_tasks} of {len(paper.ONE_STEP_ABLATION_TASKS)}",
                _f(entry.average),
                same,
            ]
        )
    if not any(per_task.values()):
        return lines + ["Not run: the suite has no one_step_ablation cell with results.", ""]
    lines += [
        "Cells of group one_step_ablation; final N-candidate scores (DQL+DDIM(1): the same DQL "
        "cells' `scores_ddim1`, N candidates each drawn with one DDIM step), averaged over the "
        "tasks run (mean of task means, stratified-bootstrap 95% CI). The paper's averages are "
        "over the 9 MuJoCo tasks of D4RL v2: a different benchmark. 'paper, same tasks' "
        "averages Table 1 over the tasks run here (DQL, FQL, OFQL only).",
        "",
    ]
    lines += _table(
        ["row", "what", "ours [95% CI]", "MuJoCo tasks", "paper average", "paper, same tasks"], rows
    )
    tasks = _task_order(t for d in per_task.values() for t in d)
    lines += ["", "Per task (mean ± std over seeds):", ""]
    trows = [
        [t] + [mean_std(per_task[e.label].get(t, np.zeros(0))) for e in paper.ONE_STEP_ABLATION]
        for t in tasks
    ]
    lines += _table(["task"] + [e.label for e in paper.ONE_STEP_ABLATION], trows)
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


def _section_flow_ratio(suite: Suite, figures: Path) -> list[str]:
    lines = ["## Flow-ratio ablation", ""]
    cells = [c for c in suite.cells if c.group == "flow_ratio" and c.results is not None]
    ours: dict[str, dict[float, np.ndarray]] = {}
    for cell in cells:
        entry = final_entry(cell.results)
        for point in grid_points(cell, ("flow_ratio",)):
            if "flow_ratio" in point.hparams:
                scores = finite(point.outcome.scores(entry))
                ours.setdefault(cell.task, {})[float(point.hparams["flow_ratio"])] = scores
    if not ours:
        return lines + ["Not run: the suite has no flow_ratio cell with results.", ""]
    ratios = sorted(set(paper.FLOW_RATIOS) | {r for d in ours.values() for r in d}, reverse=True)
    lines += [
        "flow_ratio = P(r = t) in L_FBC (0.5 is the default). Ours: OFQL's final N-candidate "
        "score, mean ± std over seeds; paper: HalfCheetah on D4RL v2 (a different benchmark).",
        "",
    ]
    header = ["task", "source"] + [f"{r:g}" for r in ratios]
    rows = []
    for task in _task_order(set(ours) | set(paper.FLOW_RATIO_ABLATION)):
        if task in ours:
            rows.append(
                [task, "ours"]
                + [mean_std(ours[task][r]) if r in ours[task] else "—" for r in ratios]
            )
        else:
            rows.append([task, "ours"] + ["not run"] * len(ratios))
        if task in paper.FLOW_RATIO_ABLATION:
            row = paper.FLOW_RATIO_ABLATION[task]
            rows.append([task, "paper"] + [_f(row.get(r)) for r in ratios])
    lines += _table(header, rows)
    tasks = _task_order(ours)
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(3.2 * len(tasks), 3.0), dpi=_DPI, squeeze=False
    )
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
    fig.tight_layout()
    fig.savefig(figures / "flow_ratio.png", dpi=_DPI)
    plt.close(fig)
    return lines + ["", "![flow ratio](figures/flow_ratio.png)", ""]


def _is_eta_grid(cell: Cell) -> bool:
    """In the eta grid: group eta_grid, or a cell that sweeps eta itself."""
    if cell.group == "eta_grid" or "eta" in cell.sweep:
        return True
    settings = (cell.results or {}).get("settings") or []
    return any("eta" in (s.get("hparams") or {}) for s in settings)


def choose(points: Sequence[GridPoint]) -> GridPoint | None:
    """The point with the highest final N-candidate score averaged over seeds (ETA_RULE);
    ties go to the first; None when no point has a finite score."""
    best, best_mean = None, -math.inf
    for point in points:
        scores = finite(point.outcome.scores(final_entry(point.cell.results)))
        if scores.size and scores.mean() > best_mean:
            best, best_mean = point, float(scores.mean())
    return best


def _section_eta(suite: Suite) -> list[str]:
    lines = ["## Eta grid", ""]
    cells = [c for c in suite.cells if _is_eta_grid(c)]
    if not cells:
        return lines + ["Not run: no cell sweeps eta and the suite has no eta_grid cell.", ""]
    # suite.grid_cells puts the task's default eta in the main cell: a grid point too
    split = {(c.task, c.label) for c in cells if len(outcomes(c.results or {})) <= 1}
    cells += [c for c in suite.cells
              if c.group == "main" and (c.task, c.label) in split and c not in cells]  # fmt: skip
    lines += [
        f"Rule: the chosen setting has the {ETA_RULE} (the last evaluation, never the best "
        "over training; ties go to the first setting). Selecting on the same evaluation that "
        "is reported is optimistic, as is the paper's own grid search. A grid is the eta_grid "
        "cells of one (task, algorithm) with its main cell, or one cell that sweeps eta.",
        "",
    ]
    grids: dict[tuple[str, str, str], list[Cell]] = {}
    for c in cells:
        key = (c.task, c.label, c.name if len(outcomes(c.results or {})) > 1 else "")
        grids.setdefault(key, []).append(c)
    order = suite_tasks(suite)
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
            rows.append([
                point.name, f"`{point.cell.name}`", mean_std(scores), mean_std(one),
                f"{scores.size} of {len(point.outcome.members)}",
                "**chosen**" if point is chosen else "",
            ])  # fmt: skip
        unfinished = [c for c in members if c.results is None]
        rows += [[f"eta={cell_value(c, 'eta'):g}" if cell_value(c, "eta") is not None else "?",
                  f"`{c.name}`", f"not finished ({c.state})", "—", "—", ""]
                 for c in unfinished]  # fmt: skip
        n = {candidates(p.cell.results) for p in points}
        n_text = ", ".join(str(x) for x in sorted(n, key=str)) if n else "N"
        lines += _table(["setting", "cell", f"final, N = {n_text}", "final, N = 1", "seeds", ""],
                        rows)  # fmt: skip
        picked = chosen.name if chosen is not None else "none (no setting has a finite score)"
        among = (
            f" (among the finished settings; {len(unfinished)} not finished)" if unfinished else ""
        )
        lines += ["", f"Chosen: {picked}{among}.", ""]
    return lines


def _load_costs(paths: Sequence[Path]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in paths:
        data = _read_json(path, "pass a benchmarks/throughput.py JSON output with --cost")
        if not isinstance(data, dict) or not isinstance(data.get("agents"), dict):
            raise OFQLError(
                f"{path} has no 'agents' entry: pass a benchmarks/throughput.py JSON output "
                "with --cost."
            )
        out.append((path.name, data))
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def variant_name(algorithm: str, steps: int | None) -> str:
    """``"DQL(5)"``, ``"FQL(10)"``, ``"FBRAC(5)"``, ``"OFQL"``, ``"flow BC"``: the paper's style."""
    ref = paper.cost_entry(algorithm, steps)
    if ref is not None:
        return ref.label
    name = DEFAULT_LABELS.get(algorithm, algorithm)
    return f"{name}({steps})" if steps is not None else name


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
        base = data["agents"].get("ofql", {})
        for key, e in data["agents"].items():
            algorithm = e.get("algorithm", key)
            steps = variant_steps(algorithm, e.get("overrides") or {})
            ref = paper.cost_entry(algorithm, steps)
            same = e.get("decision") == base.get("decision")
            r = CostRow(
                variant_name(algorithm, steps),
                _ratio(base.get("train_updates_per_s"), e.get("train_updates_per_s")),
                _ratio(e.get("decisions_per_s"), base.get("decisions_per_s")),
                same,
                ref,
            )
            ratios.append(r)
            decisions = _f(e.get("decisions_per_s")) + ("" if same else f" ({e.get('decision')})")
            rows.append([
                f"{key} ({source})" if len(costs) > 1 else key, r.name,
                _f(e.get("train_updates_per_s")), _f(e.get("hours_per_1m_steps"), 2), decisions,
                _f(r.time_ratio, 2), _f(ref.time_ratio_to_ofql, 2) if ref else "—",
                _f(r.decision_ratio, 2) + ("" if same else " (another decision)"),
                _f(ref.decision_ratio_to_ofql, 2) if ref else "—",
                f"{ref.hours_per_1m_steps} h, {ref.decisions_per_s} Hz" if ref else "—",
            ])  # fmt: skip
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


def _cell_rows(suite: Suite) -> tuple[list[list], list[CostRow]]:
    """The main cells' training rates per label: seed-updates/s, median over the label's cells."""
    rates: dict[str, list[float]] = {}
    members: dict[str, set[int]] = {}
    first: dict[str, Cell] = {}
    for c in suite.cells:
        if c.group != "main" or c.results is None:
            continue
        r = c.results
        ups, seed_ups = r.get("updates_per_second"), r.get("seed_updates_per_second")
        # members of the program (a merged sweep's cell reports its whole program's rates)
        n = round(seed_ups / ups) if ups and seed_ups else len(r.get("seeds") or []) or 1
        chunk_ups = median_chunk_rate(suite.directory / "programs" / c.program)
        rate = chunk_ups * n if chunk_ups else seed_ups or (ups or 0.0) * n
        if rate:
            rates.setdefault(c.label, []).append(float(rate))
            members.setdefault(c.label, set()).add(n)
            first.setdefault(c.label, c)
    ofql = [label for label, c in first.items() if c.algorithm == "ofql"]
    base = float(np.median(rates[ofql[0]])) if ofql else None
    rows, ratios = [], []
    for label, values in rates.items():
        c = first[label]
        steps = variant_steps(c.algorithm, agent_config(c))
        ref = paper.cost_entry(c.algorithm, steps)
        rate = float(np.median(values))
        r = CostRow(variant_name(c.algorithm, steps), _ratio(base, rate), None, False, ref)
        ratios.append(r)
        rows.append([
            label, len(values), ", ".join(map(str, sorted(members[label]))), _f(rate),
            _f(r.time_ratio, 2), _f(ref.time_ratio_to_ofql, 2) if ref else "—",
        ])  # fmt: skip
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
    panels = (
        ("training time / OFQL's (> 1: slower)",
         (("bench_time", "ours, benchmark"), ("cells_time", "ours, suite cells"),
          ("paper_time", "paper (A100)"))),
        ("decisions/s / OFQL's (< 1: slower)",
         (("bench_decision", "ours, benchmark"), ("paper_decision", "paper (A100)"))),
    )  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.8), dpi=_DPI)
    x = np.arange(len(names))
    for ax, (title, series) in zip(axes, panels, strict=True):
        width = 0.8 / len(series)
        for k, (key, text) in enumerate(series):
            heights = [values[n].get(key, np.nan) for n in names]
            ax.bar(x + (k - (len(series) - 1) / 2) * width, heights, width, label=text)
        ax.axhline(1.0, color="0.3", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(x, names, rotation=40, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return True


def _section_cost(suite: Suite, costs: list[tuple[str, dict[str, Any]]], figures: Path):
    lines = ["## Cost", ""]
    bench_rows, bench = _bench_rows(costs)
    cell_rows, cells = _cell_rows(suite)
    if not bench_rows and not cell_rows:
        return lines + ["Not run: no cost.json, no --cost file and no cell training rates.", ""]
    lines += [
        "Ratios to OFQL: training time = OFQL's updates/s / the variant's (> 1: slower to "
        "train); decisions = the variant's decisions/s / OFQL's (< 1: slower to act). The "
        f"paper's Figure 3 ({paper.COST_HARDWARE}; 1M steps averaged over the 9 MuJoCo tasks; "
        f"{paper.COST_DECISION}) is beside ours as the same ratios; absolute numbers from "
        "different hardware are not comparable, the ratios are indicative.",
        "",
    ]
    if bench_rows:
        lines += [
            "Throughput benchmark (`benchmarks/throughput.py`; each file's ratios are against "
            "its own OFQL row, measured in the same run):",
            "",
        ]
        for source, data in costs:
            lines.append(
                f"- `{source}`: backend {data.get('backend', '?')}, matmul "
                f"{_f(data.get('matmul_gflops'))} GFLOP/s, jax {data.get('jax_version', '?')}"
            )
        lines.append("")
        header = ["variant", "as", "updates/s (1 seed)", "h per 1M steps", "decisions/s",
                  "time ratio, ours", "paper", "decision ratio, ours", "paper",
                  "paper, absolute"]  # fmt: skip
        lines += _table(header, bench_rows) + [""]
    else:
        lines += ["Throughput benchmark: not run (no cost.json in the suite and no --cost).", ""]
    if cell_rows:
        lines += [
            "The cells' own training rates (main group; seed-updates/s = the program's "
            "updates/s, the median over its training chunks, x its members; the median over "
            "a label's cells; cells may have run beside other work, so these are rough):",
            "",
        ]
        header = ["algorithm", "cells", "members per program", "seed-updates/s",
                  "time ratio to OFQL", "paper"]  # fmt: skip
        lines += _table(header, cell_rows) + [""]
    else:
        lines += ["The cells' own training rates: not run (no main cell has results).", ""]
    if _cost_figure(bench, cells, figures / "cost.png"):
        lines += [
            "![cost](figures/cost.png)",
            "",
            "Decision bars are left out for variants whose benchmark decision is not OFQL's "
            "(agents without a critic act with N = 1).",
            "",
        ]
    return lines


def _flags(flags: dict[str, Any] | None) -> str:
    if not flags:
        return "none"
    return "; ".join(
        f"{label} at step {step:,}" if isinstance(step, int) else f"{label} ({step})"
        for label, step in flags.items()
    )


# (tag, panel title, log scale, reference lines drawn flat: (tag, style, legend text))
_HEALTH_PANELS = (
    ("diag/q_policy_mean", "Q(s, π): critics' value of the policy's actions", False,
     (("diag/q_upper_bound", "--", "bound max r / (1 - γ)"),
      ("diag/best_data_return", ":", "best discounted return in the data"))),
    ("diag/saturation", "saturation: |a| > 0.99", False,
     (("diag/data_saturation", "--", "the data's saturation"),)),
    ("diag/one_step_mse_to_data", "policy action to data action, squared distance", True, ()),
    ("diag/bc_loss_endpoint", "L_FBC at the one-step map (r, t) = (0, 1)", True, ()),
    ("diag/grad_ratio", "grad ratio: weighted Q term / BC term", True, ()),
)  # fmt: skip


def _setting_key(name: str) -> tuple:
    """Order settings like ``eta=0.01`` < ``eta=0.1`` by value, not by text."""
    parts = []
    for part in name.split(","):
        _, _, value = part.partition("=")
        try:
            parts.append((0, float(value), part))
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
        groups = [tb] if any(tb.glob("seed_*")) else sorted(
            (d for d in tb.glob("*") if d.is_dir() and any(d.glob("seed_*"))),
            key=lambda d: _setting_key(d.name),
        )  # fmt: skip
        for group in groups:
            seeds = {}
            for run in sorted(group.glob("seed_*")):
                scalars = read_scalars(run)
                diag = {tag: v for tag, v in scalars.items() if tag.startswith("diag/")}
                if diag:
                    seeds[run.name] = diag
            if seeds:
                name = label if group == tb else f"{label} {group.name}"
                shared = read_scalars(group / "mean") if (group / "mean").is_dir() else {}
                shared = {t: v for t, v in shared.items() if t.startswith("diag/")}
                lines.append(HealthLine(name, seeds, shared))
    return lines


def _health_figure(task: str, lines: list[HealthLine], path: Path) -> None:
    panels = [p for p in _HEALTH_PANELS if any(line.series(p[0])[0].size for line in lines)]
    ncols = min(3, len(panels))
    nrows = math.ceil((len(panels) + 1) / ncols)  # one slot for the legend
    fig, axes = plt.subplots(nrows, ncols, figsize=(10.0, 3.2 * nrows), dpi=_DPI, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (tag, title, log, references) in zip(axes.flat, panels, strict=False):
        for k, line in enumerate(lines):
            steps, mean, lo, hi = line.series(tag)
            if steps.size == 0:
                continue
            color = colors[k % len(colors)]
            ax.plot(steps, mean, color=color, lw=1.2, label=line.label)
            ax.fill_between(steps, lo, hi, color=color, alpha=0.2, linewidth=0)
        for ref_tag, style, text in references:
            values = [v for line in lines for v in line.reference(ref_tag)]
            if values:
                ax.axhline(float(np.median(values)), color="0.2", ls=style, lw=1.0, label=text)
        if log:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=8)
        ax.xaxis.set_major_formatter(FuncFormatter(_steps_tick))
        ax.tick_params(which="both", labelsize=7)
        ax.grid(alpha=0.3)
    found: dict[str, Any] = {}
    for ax in axes.flat[: len(panels)]:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            found.setdefault(text, handle)
    order = [line.label for line in lines] + [r[2] for p in panels for r in p[3]]
    handles = {text: found[text] for text in order if text in found}  # programs, then references
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    axes.flat[len(panels)].legend(handles.values(), handles.keys(), fontsize=7, loc="upper left")
    fig.suptitle(f"{task}: diagnostics per gradient step (mean over seeds, band: lowest to "
                 "highest seed)", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)


def _seeds_text(values: list[float]) -> str:
    return " / ".join(f"{v:.3g}" for v in values) if values else "—"


def _section_health(suite: Suite, figures: Path) -> list[str]:
    lines = ["## Training health", ""]
    tasks = _task_order(c.task for c in suite.cells)
    found = {task: health_lines(suite, task) for task in tasks}
    if not any(found.values()):
        return lines + ["Not run: no program has `diag/*` in its TensorBoard.", ""]
    lines += [
        "Per task, the diagnostics every program logs after each training chunk on a fresh "
        "batch (`diag/*` in TensorBoard, read from `programs/<program>/tb`, so a program "
        "still training is shown to its last chunk): one line per program and setting, the "
        "mean over seeds with a band from the lowest to the highest seed. A policy that "
        "stays in the data keeps Q(s, π) under the bound its rewards allow and its "
        "saturation near the data's; the grad ratio is how hard the critic pulls the actor "
        "relative to behaviour cloning. The table gives each seed's value at the last step "
        "all seeds logged.",
        "",
    ]
    columns = [
        ("diag/q_policy_mean", "Q(s, π)"),
        ("diag/q_policy_max", "largest Q(s, π)"),
        ("diag/q_upper_bound", "bound (best return in data)"),
        ("diag/saturation", "saturation"),
        ("diag/data_saturation", "data's saturation"),
        ("diag/one_step_mse_to_data", "distance to data"),
        ("diag/bc_loss_endpoint", "L_FBC at (0, 1)"),
        ("diag/grad_ratio", "grad ratio"),
    ]
    for task, task_lines in found.items():
        if not task_lines:
            continue
        path = figures / f"health_{_safe(task)}.png"
        _health_figure(task, task_lines, path)
        rows = []
        for line in task_lines:
            step, _ = line.last("diag/saturation")
            row = [line.label, f"{step:,}" if step is not None else "—"]
            for tag, _ in columns:
                if tag == "diag/q_upper_bound":  # the dataset's, not a seed's
                    bound, best = line.reference(tag), line.reference("diag/best_data_return")
                    row.append(f"{bound[-1]:.3g} ({best[-1]:.3g})" if bound and best else "—")
                    continue
                if tag == "diag/data_saturation":  # the data's: median over every batch
                    data = line.reference(tag)
                    row.append(f"{np.median(data):.3g}" if data else "—")
                    continue
                row.append(_seeds_text(line.last(tag)[1]))
            rows.append(row)
        lines += [f"**{task}**", "", f"![{task} diagnostics](figures/{path.name})", ""]
        lines += _table(["program, setting", "step", *(name for _, name in columns)], rows)
        lines.append("")
    return lines


def _section_divergence(suite: Suite) -> list[str]:
    lines = ["## Divergence monitor", ""]
    if not suite.cells:
        return lines + ["Not run: the suite has no cells.", ""]
    lines += [
        "Per cell, the members flagged by the monitor with the step: value divergence (the "
        "critics' Q of the policy's own actions left the bounds the dataset's rewards allow; "
        "the seed kept training and was evaluated) and non-finite (NaN/inf losses or "
        "parameters; the seed was stopped and has no score).",
        "",
    ]
    rows = []
    for c in suite.cells:
        if c.results is None:
            rows.append([c.name, c.task, c.label, "no results", "no results", "—"])
            continue
        bounds = c.results.get("value_bounds") or {}
        text = f"[{_f(bounds.get('lower'))}, {_f(bounds.get('upper'))}]" if bounds else "—"
        rows.append(
            [
                c.name,
                c.task,
                c.label,
                _flags(c.results.get("value_diverged_seeds")),
                _flags(c.results.get("diverged_seeds")),
                text,
            ]
        )
    lines += _table(
        [
            "cell",
            "task",
            "algorithm",
            "value-diverged (Q left the bounds)",
            "non-finite",
            "Q bounds",
        ],
        rows,
    )
    return lines + [""]


def _section_failed(suite: Suite) -> list[str]:
    lines = ["## Failed or unfinished cells", ""]
    bad = [c for c in suite.cells if c.results is None or c.state == "failed"]
    names = {c.name for c in suite.cells}
    orphans = [n for n in (suite.status.get("cells") or {}) if n not in names]
    if not bad and not orphans:
        return lines + ["None: every cell finished with results.", ""]
    rows = []
    for c in bad:
        why = c.error or c.problem or ""
        if c.results is not None:
            why = (why + "; " if why else "") + "has a results.json nevertheless"
        rows.append([c.name, c.task, c.label, c.group, c.state, str(why).replace("\n", " ")])
    for n in orphans:
        st = suite.status["cells"][n]
        rows.append([n, "?", "?", "?", st.get("state"), "in status.json but not in suite.json"])
    return lines + _table(["cell", "task", "algorithm", "group", "state", "error"], rows) + [""]


# --- entry points ----------------------------------------------------------------------------


def write_report(
    suite_dir: str | Path, cost_json: str | Path | Sequence[str | Path] | None = None
) -> Path:
    """Write ``suite_dir/report.md`` and ``suite_dir/figures/*.png``; return the report's path.

    ``cost_json``: one or more ``benchmarks/throughput.py`` outputs; by default the suite's
    own ``cost.json`` when it has one. Raises OFQLError (one sentence) for an unusable input.
    """
    suite = load_suite(suite_dir)
    if cost_json is None:
        default = suite.directory / "cost.json"
        paths = [default] if default.exists() else []
    elif isinstance(cost_json, (str, Path)):
        paths = [Path(cost_json)]
    else:
        paths = [Path(p) for p in cost_json]
    costs = _load_costs(paths)
    figures = suite.directory / "figures"
    figures.mkdir(exist_ok=True)
    lines = _section_header(suite)
    lines += _section_final(suite)
    lines += _section_aggregates(suite)
    lines += _section_curves(suite, figures)
    lines += _section_ablation(suite)
    lines += _section_flow_ratio(suite, figures)
    lines += _section_eta(suite)
    lines += _section_cost(suite, costs, figures)
    lines += _section_health(suite, figures)
    lines += _section_divergence(suite)
    lines += _section_failed(suite)
    path = suite.directory / "report.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines).rstrip() + "\n")
    tmp.replace(path)
    return path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one sentence, exit 2, no usage dump
        self.exit(2, f"{message}: see python -m ofql_jax.report --help.\n")


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI; returns the exit status (0, or 2 with one sentence on stderr)."""
    parser = _Parser(
        prog="python -m ofql_jax.report",
        description="Write SUITE_DIR/report.md and SUITE_DIR/figures/*.png from a suite's results.",
    )
    parser.add_argument("suite_dir", metavar="SUITE_DIR", help="a directory written by the suite")
    parser.add_argument(
        "--cost",
        action="append",
        metavar="JSON",
        help="a benchmarks/throughput.py output (repeatable; default: SUITE_DIR/cost.json)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.suite_dir, args.cost)
    except OFQLError as err:
        if args.debug:
            raise
        print(str(err), file=sys.stderr)
        return 2
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One cell's numbers: its sweep settings, its final scores (always the last evaluation, never
the best over training), its hyperparameters, the rule that picks a grid's setting
(``ETA_RULE``), and its agent's variant as the paper names it, from the agent's spec
(``ofql_jax.agents.AGENTS``): the sections never test an algorithm's name."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ofql_jax.agents import AGENTS
from ofql_jax.results import paper_numbers as paper
from ofql_jax.results.report.cells import Cell, agent_label

ETA_RULE = "highest final N-candidate score averaged over seeds"
COST_REFERENCE = "ofql"  # cost is reported as ratios to this agent, as the paper's Figure 3


@dataclasses.dataclass
class Outcome:
    """The members of one setting of a cell (the whole cell without a sweep)."""

    name: str  # "" or the setting's name, e.g. "eta=0.1"
    hparams: dict[str, float]
    members: list[int]  # indices into every evaluation's per-member lists

    def scores(self, entry: dict[str, Any], suffix: str = "") -> list[float | None] | None:
        values = entry.get(f"scores{suffix}")
        return None if values is None else [values[i] for i in self.members if i < len(values)]


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
    return (results.get("evaluations") or [{}])[-1]


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


def choose(points: Sequence[GridPoint]) -> GridPoint | None:
    """The point with the highest final N-candidate score averaged over seeds (ETA_RULE);
    ties go to the first; None when no point has a finite score."""
    best, best_mean = None, -math.inf
    for point in points:
        scores = finite(point.outcome.scores(final_entry(point.cell.results)))
        if scores.size and scores.mean() > best_mean:
            best, best_mean = point, float(scores.mean())
    return best


def data_source(results: dict[str, Any]) -> str:
    """Where a run's data came from, as the report's tables say it."""
    source = results.get("data_source")
    if source in ("official", "replica"):
        return "official Minari" if source == "official" else "replica"
    if source == "dataset_id":  # --config.dataset_id: a Minari dataset named explicitly
        return f"other ({results.get('dataset_id', '?')})"
    return f"other ({source})" if source else "unknown"


def env_id(results: dict[str, Any]) -> str:
    """The environment a run was evaluated in."""
    return str(results.get("env_id") or "unknown")


def variant_steps(algorithm: str, config: dict[str, Any] | None = None) -> int | None:
    """DQL's T, FQL's flow steps or FBRAC's training steps; the agent's default if unset."""
    spec = AGENTS.get(algorithm)
    field = spec.variant_field if spec is not None else None
    if field is None:
        return None
    if config and field in config:
        return int(config[field])
    return int(spec.default_config()[field])


def variant_name(algorithm: str, steps: int | None) -> str:
    """``"DQL(5)"``, ``"FQL(10)"``, ``"FBRAC(5)"``, ``"OFQL"``, ``"flow BC"``: the paper's style."""
    ref = paper.cost_entry(algorithm, steps)
    if ref is not None:
        return ref.label
    name = agent_label(algorithm)
    return f"{name}({steps})" if steps is not None else name


def paper_variant_differs(algorithm: str, config: dict[str, Any]) -> str | None:
    """``"T = 5"`` when a cell runs another variant than the paper's Table 1 (DQL with T != 5);
    None when it runs the paper's or the paper fixes none."""
    spec = AGENTS.get(algorithm)
    steps = spec.paper_variant if spec is not None else None
    if steps is None or variant_steps(algorithm, config) == steps:
        return None
    return f"T = {steps}"

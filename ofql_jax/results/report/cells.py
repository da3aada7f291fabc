"""A suite directory read into typed cells (the contract with ``ofql_jax.suite``).

::

    suite.json                  {"suite", "suite_file", "description", "cells": [{"name",
                                 "algorithm", "task", "protocol", "group", "overrides",
                                 "sweep", "label", "workdir"}, ...]}
    status.json                 {"cells": {name: {"state", "error", "wall_seconds",
                                 "started", "finished"}}, "machine": {...}, "commands": [...]}
    cells/<name>/results.json   one training run's results (ofql_jax.training.experiment)
    cost.json                   optional: a benchmarks/throughput.py output

Example:
    >>> suite = load_suite("runs/suite-cpu")  # doctest: +SKIP
    >>> [c.name for c in suite.cells if c.results is None]  # doctest: +SKIP
    []
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ofql_jax.agents import AGENTS
from ofql_jax.core.errors import OFQLError
from ofql_jax.results.schema import load_results

_FIX = "pass a directory written by ofql_jax.suite"
MAIN_GROUP = "main"  # the main comparison; the group of a cell that names none


def agent_label(algorithm: str) -> str:
    """The report's name of an algorithm when the suite gives none: ``"flow BC"``."""
    spec = AGENTS.get(algorithm)
    return spec.label if spec is not None else algorithm


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
    # status.json: the multi-dataset program its program trained in ("a + b"), None if alone
    trained_with: str | None
    setting: dict[str, float]  # its values in a merged sweep program, {} otherwise
    state: str  # status.json: done | failed | pending | running; "unknown" without one
    error: str | None
    wall_seconds: float | None
    started: str | None
    finished: str | None
    results: dict[str, Any] | None
    problem: str | None  # why there are no results, when there are none


@dataclasses.dataclass
class Suite:
    """A suite directory: suite.json (``meta``), status.json (``status``, {} without one)
    and its cells in suite.json's order."""

    directory: Path
    meta: dict[str, Any]
    status: dict[str, Any]
    cells: list[Cell]


def read_json(path: Path, what: str) -> Any:
    """The JSON in ``path``; OFQLError ending with ``what`` to do when it is missing or bad."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise OFQLError(f"{path} does not exist: {what}.") from None
    except (OSError, ValueError) as err:
        raise OFQLError(f"{path} cannot be read as JSON ({err}): {what}.") from None


def load_suite(suite_dir: str | Path) -> Suite:
    """Read suite.json, status.json (optional) and every cell's results.json that exists."""
    directory = Path(suite_dir)
    if not directory.is_dir():
        raise OFQLError(
            f"{directory} is not a directory: pass the suite directory the suite runner wrote."
        )
    suite_json = directory / "suite.json"
    meta = read_json(suite_json, _FIX)
    if not isinstance(meta, dict) or not isinstance(meta.get("cells"), list):
        raise OFQLError(f"{suite_json} has no list of cells: {_FIX}.")
    status_path = directory / "status.json"
    status = read_json(status_path, "the suite runner writes it") if status_path.exists() else {}
    states = status.get("cells", {}) if isinstance(status, dict) else {}
    cells = []
    for raw in meta["cells"]:
        if not isinstance(raw, dict) or not raw.get("name"):
            raise OFQLError(f"{suite_json} has a cell without a name ({raw!r:.80}): {_FIX}.")
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
        unrecorded = "not started" if status_path.exists() else "unknown"  # not in status.json
        cells.append(
            Cell(
                name=name,
                algorithm=algorithm,
                task=str(raw.get("task", "unknown")),
                group=str(raw.get("group") or MAIN_GROUP),
                label=str(raw.get("label") or agent_label(algorithm)),
                protocol=str(raw.get("protocol", "")),
                overrides=dict(raw.get("overrides") or {}),
                sweep={k: v for k, v in (raw.get("sweep") or {}).items() if str(v).strip()},
                workdir=workdir,
                program=str(raw.get("program") or name),
                trained_with=st.get("trained_with"),
                setting=dict(raw.get("setting") or {}),
                state=str(st.get("state") or ("done" if results is not None else unrecorded)),
                **{k: st.get(k) for k in ("error", "wall_seconds", "started", "finished")},
                results=results,
                problem=problem,
            )
        )
    return Suite(directory, meta, status if isinstance(status, dict) else {}, cells)


def load_costs(paths: Sequence[Path]) -> list[tuple[str, dict[str, Any]]]:
    """Each ``benchmarks/throughput.py`` output as (file name, contents)."""
    out, fix = [], "pass a benchmarks/throughput.py JSON output with --cost"
    for path in paths:
        data = read_json(path, fix)
        if not isinstance(data, dict) or not isinstance(data.get("agents"), dict):
            raise OFQLError(f"{path} has no 'agents' entry: {fix}.")
        out.append((path.name, data))
    return out

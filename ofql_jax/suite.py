"""Run a grid of (algorithm, task, overrides, seeds) cells and write one report.

    python -m ofql_jax.suite --suite=experiments/suites/cpu.py --workdir=runs/cpu

A suite file (``experiments/suites/*.py``) returns an ``ml_collections.ConfigDict`` whose
``cells`` are made with ``cell(...)``; any suite field can be overridden on the command line
(``--suite.seeds=2``, ``--suite.defaults.num_steps=5000``, ``--suite.select=main``).

Each cell is one multi-seed program (``ofql_jax.training.experiment.Experiment``) in
``<workdir>/programs/<name>``; cells that differ only in sweepable hyperparameters of the
same agent (e.g. ``agent.eta``) run as ONE vmapped sweep program. Programs of one algorithm
and schedule whose tasks' datasets share observation and action sizes train together as one
multi-dataset program (``ofql_jax.training.multi_dataset``; ``--suite.multi_dataset=false``:
one at a time), each keeping its own workdir; ``status.json`` names the group per cell
(``trained_with``). A group that cannot start, or fails while training, trains its programs
one by one, each resuming from its own newest checkpoint, so only the cell at fault fails
(``trained_with`` is then cleared). When a program finishes, each of its cells gets
``<workdir>/cells/<cell>/results.json`` (for a merged sweep, the cell's own setting, see
``ofql_jax.results.schema.select_setting``). Re-running the command skips
finished programs and resumes a partial one from its newest checkpoint; a failed cell is
recorded and the suite goes on (exit status 1 at the end); SIGTERM / Ctrl-C saves a
checkpoint and stops the suite (re-run to resume). ``suite.json`` (the plan) and
``status.json`` (state, error and wall time per cell) are what ``ofql_jax.results.report`` reads.

Example suite file::

    from ofql_jax.suite import cell, new_suite

    def get_config():
        s = new_suite("tiny", "OFQL against flow BC on the hopper replica.")
        s.defaults.num_steps = 20_000
        s.cells = (cell("ofql", "hopper-medium"), cell("flow_bc", "hopper-medium"))
        return s
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
from absl import flags, logging
from ml_collections import config_flags
from tqdm.auto import tqdm

from ofql_jax.agents import get_agent_spec
from ofql_jax.core.checkpointing import saved_steps
from ofql_jax.core.cli_help import get_config_of, one_line
from ofql_jax.core.errors import OFQLError, StoppedError
from ofql_jax.core.tasks import get_task, task_shape
from ofql_jax.results.report import GROUPS, write_report
from ofql_jax.results.schema import load_results, select_setting
from ofql_jax.results.writers import write_json_atomic
from ofql_jax.training.experiment import Experiment
from ofql_jax.training.multi_dataset import MultiDatasetProgram, mismatch
from ofql_jax.training.runtime import setup_process
from ofql_jax.training.sweep import setting_name

EXIT_USER_ERROR, EXIT_CELL_FAILED = 2, 1


def new_suite(name: str, description: str) -> ml_collections.ConfigDict:
    """A suite config with every field commented; fill ``cells`` and ``defaults``."""
    s = ml_collections.ConfigDict()
    s.name = name  # the suite's name (report title; default workdir runs/<name>)
    s.description = description  # one paragraph: what it compares and why it is sized so
    s.base_config = "../d4rl.py"  # experiment config file, relative to the suite file's folder
    s.seeds = 3  # seeds per cell unless a cell says otherwise
    s.select = ""  # comma-separated cell names or groups to run ("" = every cell)
    s.cost_json = ""  # a benchmarks/throughput.py JSON for the report's cost table ("" = none)
    s.report = True  # write report.md at the end
    # Train the cells of one algorithm and schedule whose datasets share observation and
    # action sizes (hopper's levels; halfcheetah's with walker2d's) as ONE program
    # (ofql_jax.training.multi_dataset); False: one program per cell (or sweep).
    s.multi_dataset = True
    # Overrides of every cell's experiment config (nested like the config: agent.eta is
    # defaults.agent.eta); a cell's own overrides win.
    s.defaults = ml_collections.ConfigDict({"progress": False, "agent": {}})
    s.cells = ()  # cell(...) dicts
    return s


def cell(algorithm: str, task: str, *, label: str | None = None, group: str = "main",
         overrides: Mapping[str, Any] | None = None, sweep: Mapping[str, str] | None = None,
         seeds: int | None = None, protocol: str = "paper",
         name: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One cell of a suite: ``algorithm`` on ``task`` with config ``overrides``.

    ``overrides`` is nested like the config (``{"agent": {"eta": 0.1}, "num_steps": 5000}``)
    or uses dotted keys (``{"agent.eta": 0.1}``); ``sweep`` runs the cell itself as a sweep
    (``{"flow_ratio": "1,0.5,0"}``); ``label`` is the report's name for the algorithm
    (default: its ``AgentSpec.display_name``, e.g. "DQL(5)"); ``group`` is one of ``GROUPS``.

    Example:
        >>> cell("dql", "hopper-medium", overrides={"agent.num_diffusion_steps": 5})["name"]
        'dql5-hopper-medium'
    """
    label = label or get_agent_spec(algorithm).display_name
    return {"name": name or f"{_slug(label)}-{task}", "algorithm": algorithm, "task": task,
            "protocol": protocol, "label": label, "group": group,
            "overrides": _nest(overrides or {}), "sweep": dict(sweep or {}),
            "seeds": seeds}  # fmt: skip


ETA_GRID = (0.001, 0.01, 0.1, 0.3, 0.5)  # the paper's grid for OFQL's eta (Sec. 5)


def grid_cells(
    algorithm: str, task: str, field: str, values: Sequence[Any], **kwargs: Any
) -> list[dict[str, Any]]:
    """A grid over ``agent.<field>`` on ``task``: the main cell at the value the paper
    protocol gives it on ``task``, named explicitly, and one ``eta_grid``-group cell per other
    value. Together they plan as one vmapped sweep; the report shows every grid point.

    Example:
        >>> [c["name"] for c in grid_cells("ofql", "hopper-medium", "eta", (0.1, 0.3))]
        ['ofql-hopper-medium', 'ofql-eta0.1-hopper-medium']
    """
    spec = get_agent_spec(algorithm)
    task_values = spec.task_defaults(get_task(task), "paper")
    default = task_values[field] if field in task_values else spec.default_config()[field]
    cells = [cell(algorithm, task, overrides={f"agent.{field}": default}, **kwargs)]
    cells += [
        cell(algorithm, task, group="eta_grid", name=f"{algorithm}-{field}{v:g}-{task}",
             overrides={f"agent.{field}": v}, **kwargs)
        for v in values if v != default
    ]  # fmt: skip
    return cells


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower().replace("+", "-")) or "cell"


def _nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys as nested dicts: ``{"agent.eta": 1}`` -> ``{"agent": {"eta": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        value = _nest(value) if isinstance(value, Mapping) else value
        for part in reversed(key.split(".")):
            value = {part: value}
        out = _merge(out, value)
    return out


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, ml_collections.ConfigDict | Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


# --- planning --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Program:
    """One multi-seed program: a cell, or cells merged into one sweep."""

    name: str
    cells: tuple[dict[str, Any], ...]
    overrides: dict[str, Any]  # the common config overrides (defaults + cell)
    sweep: dict[str, str]  # config.sweep of the program
    settings: tuple[dict[str, float], ...]  # per cell: its swept values ({} if not merged)


def load_suite_file(path: str | Path) -> ml_collections.ConfigDict:
    """``get_config()`` of a suite file (for code; the CLI loads it through its flag)."""
    return get_config_of(
        Path(path), f"cannot load the suite file {path}: pass one of experiments/suites/*.py."
    )()


def selected_cells(suite: ml_collections.ConfigDict) -> list[dict[str, Any]]:
    """The suite's cells (with the suite's seeds filled in), filtered by ``suite.select``."""
    cells = [dict(_plain(c)) for c in suite.cells]
    for c in cells:
        c["seeds"] = c.get("seeds") or suite.seeds
        if c["group"] not in GROUPS:
            raise OFQLError(
                f"cell {c['name']} has group {c['group']!r}: use one of {', '.join(GROUPS)}."
            )
    names = [c["name"] for c in cells]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise OFQLError(f"the suite names cells twice ({', '.join(repeated)}): give them names.")
    wanted = [w.strip() for w in str(suite.select).split(",") if w.strip()]
    if not wanted:
        return cells
    known = set(names) | {c["group"] for c in cells}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise OFQLError(
            f"--suite.select names {', '.join(unknown)}, which is no cell or group of this "
            f"suite: choose from {', '.join(sorted(known))}."
        )
    return [c for c in cells if c["name"] in wanted or c["group"] in wanted]


def plan_programs(cells: Sequence[dict[str, Any]], defaults: Mapping[str, Any]) -> list[Program]:
    """Group the cells into programs. Cells equal but for sweepable ``agent.*`` values, whose
    values form a full grid, become one sweep; identical cells share one program; every
    other cell is a program of its own."""
    keyed: dict[str, list[tuple[dict[str, Any], dict[str, Any], dict[str, float]]]] = {}
    for c in cells:
        overrides = _merge(_plain(defaults), c["overrides"])
        agent = dict(overrides.get("agent", {}))
        swept = {}
        if not c["sweep"]:
            for name in get_agent_spec(c["algorithm"]).sweepable or ():
                if name in agent:
                    swept[name] = float(agent.pop(name))
        common = {**overrides, "agent": agent}
        key = json.dumps(
            [c["algorithm"], c["task"], c["protocol"], c["seeds"], common, c["sweep"],
             sorted(swept)], sort_keys=True, default=str,
        )  # fmt: skip
        keyed.setdefault(key, []).append((c, common, swept))
    programs = []
    for members in keyed.values():
        names = sorted(members[0][2])
        combos = list(dict.fromkeys(tuple(m[2][k] for k in names) for m in members))
        grid = {k: sorted({combo[i] for combo in combos}) for i, k in enumerate(names)}
        varying = [k for k in names if len(grid[k]) > 1]
        first, common, _ = members[0]
        if len(combos) > 1 and len(combos) == math.prod(len(v) for v in grid.values()):
            agent = {**common["agent"], **{k: grid[k][0] for k in names if k not in varying}}
            if "grad_norm" in varying:  # the program clips iff its agent.grad_norm > 0
                agent["grad_norm"] = max(grid["grad_norm"])
            sweep = {k: ",".join(f"{v:g}" for v in grid[k]) for k in varying}
            name = f"{first['algorithm']}-{first['task']}-{'-'.join(varying)}-sweep"
            ordered = sorted(members, key=lambda m: [m[2][k] for k in varying])
            programs.append(Program(
                name, tuple(m[0] for m in ordered), {**common, "agent": agent}, sweep,
                tuple({k: m[2][k] for k in varying} for m in ordered),
            ))  # fmt: skip
            continue
        for combo in combos:  # identical cells share a program
            same = [m for m in members if tuple(m[2][k] for k in names) == combo]
            agent = {**common["agent"], **same[0][2]}
            programs.append(Program(
                same[0][0]["name"], tuple(m[0] for m in same), {**common, "agent": agent},
                dict(first["sweep"]), tuple({} for _ in same),
            ))  # fmt: skip
    return programs


def group_programs(
    programs: Sequence[Program], configs: Mapping[str, ml_collections.ConfigDict]
) -> list[list[Program]]:
    """Programs that can train as one multi-dataset program, together (in plan order): the
    same algorithm and schedule (``multi_dataset.mismatch``) on tasks whose datasets have the
    same observation and action sizes (``core.tasks.task_shape``; unknown: alone)."""
    groups: list[list[Program]] = []
    for program in programs:
        config = configs[program.name]
        shape = task_shape(config.task)
        for group in groups:
            first = configs[group[0].name]
            if shape is not None and task_shape(first.task) == shape \
                    and mismatch([first, config]) is None:  # fmt: skip
                group.append(program)
                break
        else:
            groups.append([program])
    return groups


def program_config(program: Program, get_config) -> ml_collections.ConfigDict:
    """The base config of the program's task, protocol and algorithm, with its overrides."""
    first = program.cells[0]
    config = get_config(f"{first['task']},{first['protocol']},algorithm={first['algorithm']}")
    _apply(config, program.overrides, "")
    config.num_seeds = int(first["seeds"])
    for name, values in program.sweep.items():
        if name not in config.sweep:
            raise OFQLError(
                f"cell {first['name']} sweeps {name}, which this algorithm cannot sweep: sweep "
                f"one of {', '.join(sorted(config.sweep))}."
            )
        config.sweep[name] = values
    return config


def _apply(config: ml_collections.ConfigDict, overrides: Mapping[str, Any], prefix: str) -> None:
    for key, value in overrides.items():
        if key not in config:
            raise OFQLError(
                f"the suite overrides {prefix}{key}, which is not a config field: see "
                "experiments/d4rl.py and the agent's default_config for the fields."
            )
        if isinstance(value, Mapping):
            _apply(config[key], value, f"{prefix}{key}.")
            continue
        current = config[key]
        if isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(current, float) and isinstance(value, int):
            value = float(value)
        try:
            config[key] = value
        except (TypeError, ValueError) as err:
            raise OFQLError(
                f"the suite sets {prefix}{key} = {value!r} ({err}): give a value of the field's "
                "type."
            ) from err


# --- running ---------------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def machine_info() -> dict[str, Any]:
    """CPU model, cores and platform, for the report's header."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}  # fmt: skip


def _latest_step(workdir: Path) -> int:
    """The newest checkpoint's step in ``workdir`` (0 without one), without opening Orbax."""
    return max(saved_steps(workdir / "checkpoints"), default=0)


def _read_json(path: Path) -> Any:
    """The parsed file; ``None`` when it is missing or unreadable (then started afresh)."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


class SuiteRunner:
    """Runs the programs of a suite in order, keeping ``suite.json`` and ``status.json``."""

    def __init__(self, suite: ml_collections.ConfigDict, suite_file: str | Path,
                 workdir: str | Path, command: str = ""):  # fmt: skip
        self.suite, self.workdir = suite, Path(workdir)
        self.suite_file = Path(suite_file)
        self.cells = selected_cells(suite)
        if not self.cells:
            raise OFQLError(f"the suite {suite.name} has no cells: add cell(...) entries.")
        self.programs = plan_programs(self.cells, suite.defaults)
        base = Path(suite.base_config)
        base = base if base.is_absolute() else self.suite_file.parent / base
        get_config = get_config_of(
            base.resolve(),
            f"the suite's base_config {base.resolve()} does not exist: set --suite.base_config "
            "to the experiment config file (experiments/d4rl.py).",
        )
        self.configs = {p.name: program_config(p, get_config) for p in self.programs}
        self.command = command
        self.status = _read_json(self.workdir / "status.json")
        if self.status is None:
            self.status = {"cells": {}, "machine": machine_info(), "commands": []}
        if suite.cost_json and not Path(suite.cost_json).is_file():
            raise OFQLError(
                f"--suite.cost_json {suite.cost_json} does not exist: pass a "
                "benchmarks/throughput.py output, e.g. "
                "benchmarks/results/throughput_2026-11-25_cpu.json."
            )

    def _write(self) -> None:
        cells = {}
        for program in self.programs:
            for c, setting in zip(program.cells, program.settings, strict=True):
                cells[c["name"]] = {**c, "workdir": f"cells/{c['name']}", "program": program.name,
                                    "setting": setting or None}  # fmt: skip
        # A suite run in parts (--suite.select) keeps the cells of the earlier parts, so its
        # report covers them all; the cells run now replace their earlier entries.
        earlier = _read_json(self.workdir / "suite.json")
        if isinstance(earlier, dict) and earlier.get("suite") == self.suite.name:
            for c in earlier.get("cells") or []:
                if isinstance(c, dict) and c.get("name"):
                    cells.setdefault(c["name"], c)
        order = {c["name"]: i for i, c in enumerate(self.suite.cells)}
        ordered = sorted(cells.values(), key=lambda c: order.get(c["name"], len(order)))
        plan = {"suite": self.suite.name, "suite_file": str(self.suite_file),
                "description": self.suite.description, "cells": ordered}  # fmt: skip
        write_json_atomic(self.workdir / "suite.json", plan)
        write_json_atomic(self.workdir / "status.json", self.status)

    def _set(self, program: Program, **fields: Any) -> None:
        """Update the program's cells in status.json (``run`` has written the plan already)."""
        for c in program.cells:
            self.status["cells"].setdefault(c["name"], {}).update(fields)
        write_json_atomic(self.workdir / "status.json", self.status)

    def _finished(self, program: Program) -> bool:
        try:
            results = load_results(self.workdir / "programs" / program.name)
        except OFQLError:
            return False
        if results is None or results.get("steps") != self.configs[program.name].num_steps:
            return False
        held = {s.get("name") for s in results.get("settings") or []}
        wanted = [setting_name(s) for s in program.settings if s]
        missing = [n for n in wanted if n not in held]
        if missing:  # a run in parts (--suite.select) made a smaller sweep of the same name
            raise OFQLError(
                f"{self.workdir / 'programs' / program.name} holds a finished sweep without "
                f"{', '.join(missing)}: run the missing cells with --suite.select (the parts "
                "they were run in before), or use a new --workdir."
            )
        return True

    def _publish(self, program: Program) -> None:
        """Write each cell's own results.json (its setting of a merged sweep) and config."""
        results = load_results(self.workdir / "programs" / program.name)
        names = [s.get("name") for s in results.get("settings", [])]
        for c, setting in zip(program.cells, program.settings, strict=True):
            view = results
            if setting:
                view = select_setting(results, names.index(setting_name(setting)))
            out = self.workdir / "cells" / c["name"]
            out.mkdir(parents=True, exist_ok=True)
            write_json_atomic(out / "results.json", view)
            write_json_atomic(out / "config.json", results.get("config", {}))

    def run(self) -> int:
        """Run every unfinished program; returns the exit status (0, or 1 if a cell failed)."""
        # First, so that a clash with an earlier part's sweep changes nothing on disk.
        finished = {p.name: self._finished(p) for p in self.programs}
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.command:
            self.status.setdefault("commands", []).append(self.command)
        self.status["machine"] = machine_info()
        self._write()
        setup_process(self.configs[self.programs[0].name])
        total = sum(self.configs[p.name].num_steps for p in self.programs)
        self.done = {p.name: (self.configs[p.name].num_steps if finished[p.name]
                              else _latest_step(self.workdir / "programs" / p.name))
                     for p in self.programs}  # fmt: skip
        self.bar = tqdm(total=total, initial=sum(self.done.values()), unit="step",
                        dynamic_ncols=True, desc=f"suite {self.suite.name}")  # fmt: skip
        self.failed = []
        start_all = time.time()
        try:
            for program in self.programs:
                if finished[program.name]:
                    self._mark_finished(program)
            units = ([[p] for p in self.programs] if not self.suite.multi_dataset
                     else group_programs(self.programs, self.configs))  # fmt: skip
            for index, unit in enumerate(units, 1):  # numbered in the whole plan
                todo = [p for p in unit if not finished[p.name]]
                if todo:
                    self._run_unit(todo, f"{index}/{len(units)}")
        finally:
            self.bar.close()
            self.status["last_session_seconds"] = time.time() - start_all
            self._write()
        if self.suite.report:
            self.write_report()
        if self.failed:
            print(f"{len(self.failed)} of {len(self.programs)} programs failed:", file=sys.stderr)
            for name, message in self.failed:
                print(f"  {name}: {message}", file=sys.stderr)
            return EXIT_CELL_FAILED
        return 0

    def _mark_finished(self, program: Program) -> None:
        """A program finished earlier: publish its cells and mark them done if not yet."""
        if any(not (self.workdir / "cells" / c["name"] / "results.json").exists()
               for c in program.cells):  # fmt: skip
            self._publish(program)
        if any(self.status["cells"].get(c["name"], {}).get("state") != "done"
               for c in program.cells):  # fmt: skip
            self._set(program, state="done", error=None)

    def _run_unit(self, unit: list[Program], position: str) -> None:
        """Train one program, or several as one multi-dataset program; record each one's
        state, wall time and results. A failure is recorded and the suite goes on."""
        names = " + ".join(p.name for p in unit)
        cells = ", ".join(c["name"] for p in unit for c in p.cells)
        self.bar.set_postfix_str(f"{position} {names}")
        tqdm.write(f"[{position}] {names}: {cells}")
        spent, start = {}, time.time()
        for program in unit:
            previous = self.status["cells"].get(program.cells[0]["name"], {})
            spent[program.name] = float(previous.get("wall_seconds") or 0.0)
            # A resumed cell (killed or stopped while running) keeps its first start.
            resumed = previous.get("state") in ("running", "pending")
            started = (previous.get("started") if resumed else None) or _now()
            self._set(program, state="running", error=None, started=started, finished=None,
                      trained_with=names if len(unit) > 1 else None)  # fmt: skip
        # A program's wall time is the unit's: its members shared every call.
        wall = lambda p: spent[p.name] + time.time() - start  # noqa: E731
        base = sum(self.done[p.name] for p in self.programs if p not in unit)

        def advance(step: int) -> None:
            self.bar.update(base + step * len(unit) - self.bar.n)
            for program in unit:  # after every chunk, so a kill loses at most one chunk's time
                self._set(program, wall_seconds=wall(program))

        workdirs = [self.workdir / "programs" / p.name for p in unit]
        alone = None  # why the programs of this unit train one by one instead
        try:
            if len(unit) == 1:
                Experiment(self.configs[unit[0].name], workdirs[0]).run(advance)
            else:
                configs = [self.configs[p.name] for p in unit]
                try:
                    joint = MultiDatasetProgram(configs, workdirs)
                except Exception as err:  # noqa: BLE001 - e.g. one task's data is missing
                    why = _failure_message(err, workdirs[0])
                    alone = f"{names} cannot train as one program ({why}); each trains alone."
                else:
                    joint.run(advance)
        except StoppedError as err:
            for program in unit:
                self._set(program, state="pending", wall_seconds=wall(program))
            raise OFQLError(
                f"{err} The suite stopped at {names}: re-run the same suite command to resume it."
            ) from err
        except Exception as err:  # noqa: BLE001 - a failed cell must not stop the grid
            if len(unit) > 1:  # the joint program failed while training, e.g. one task diverged
                why = _failure_message(err, workdirs[0])
                alone = (f"{names} failed as one program ({why}); each run resumes alone from "
                         "its last checkpoint.")  # fmt: skip
            else:
                message = _failure_message(err, workdirs[0])  # the traceback beside the run
                self._set(unit[0], state="failed", error=message, finished=_now(),
                          wall_seconds=wall(unit[0]))  # fmt: skip
                self.failed.append((unit[0].name, message))
                tqdm.write(f"Cell {names} failed: {message}")
                return
        if alone is not None:
            # Outside the except clauses, so that the joint program's device arrays are
            # released and a stop of an alone run stops the suite instead of failing the unit.
            joint = None
            tqdm.write(alone)
            for program, workdir in zip(unit, workdirs, strict=True):
                # Each keeps the joint attempt's time and first start, and the progress bar
                # counts what it resumes from (its newest checkpoint).
                self._set(program, state="pending", wall_seconds=wall(program))
                self.done[program.name] = _latest_step(workdir)
            self.bar.update(sum(self.done.values()) - self.bar.n)
            for program in unit:  # so that only the cell at fault fails
                self._run_unit([program], position)
            return
        for program in unit:
            self.done[program.name] = self.configs[program.name].num_steps
            self._publish(program)
            self._set(program, state="done", error=None, finished=_now(),
                      wall_seconds=wall(program))  # fmt: skip
        self.bar.update(sum(self.done.values()) - self.bar.n)

    def write_report(self) -> Path | None:
        cost = self.suite.cost_json or None
        if cost:
            # The suite directory keeps its own copy, so that its report stands alone.
            shutil.copyfile(cost, self.workdir / "cost.json")
        path = write_report(self.workdir)
        print(f"Report: {path}")
        return path


def _failure_message(err: BaseException, workdir: Path) -> str:
    """One line for the status file; a crash's traceback goes to ``<workdir>/error.log``."""
    if isinstance(err, OFQLError):
        return str(err)
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "error.log"
    log.write_text("".join(traceback.format_exception(err)))
    return f"crashed with {type(err).__name__}: {err} (traceback in {log})"


# --- command line ----------------------------------------------------------------------------

USAGE = """usage: python -m ofql_jax.suite --suite=FILE [--workdir=DIR] [--report_only] [--debug]
                              [--suite.FIELD=VALUE ...]

  --suite        a suite file, e.g. experiments/suites/cpu.py (smoke, cpu, paper,
                 one_step_ablation, flow_ratio, eta_grid, learning, precision ship
                 with it)
  --workdir      output directory (default runs/<suite name>); re-running resumes
  --report_only  only (re)write <workdir>/report.md from what has finished
  --debug        show tracebacks

Suite fields (--suite.FIELD=VALUE):
  name, description  the report's title and paragraph
  base_config        experiment config file, relative to the suite file (../d4rl.py)
  seeds              seeds per cell unless a cell says otherwise
  select             comma-separated cell names or groups to run ("" = all)
  cost_json          a benchmarks/throughput.py JSON for the report's cost table
  report             write report.md at the end (True)
  multi_dataset      train cells of one algorithm and schedule whose datasets share their
                     sizes as one program (True; False: one program per cell)
  defaults.FIELD     an override of every cell's experiment config, e.g.
                     --suite.defaults.num_steps=5000 (fields the suite file sets)

Exit status: 0 when every cell finished, 1 when a cell failed (the others ran; see
status.json and report.md), 2 for a problem with the command or suite (one sentence)."""


def main(argv: list[str] | None = None) -> int:
    """``python -m ofql_jax.suite --suite=FILE [--workdir=DIR] [--report_only]``."""
    argv = list(sys.argv if argv is None else argv)
    flag_values = flags.FlagValues()  # the flags are described in USAGE
    suite_flag = config_flags.DEFINE_config_file("suite", None, "", flag_values=flag_values)
    workdir_flag = flags.DEFINE_string("workdir", None, "", flag_values=flag_values)
    report_flag = flags.DEFINE_bool("report_only", False, "", flag_values=flag_values)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    logging.set_verbosity(logging.WARNING)
    if any(a in ("--help", "-h", "--helpfull") for a in argv[1:]):
        print(USAGE)
        return 0
    problem = None
    try:
        flag_values(argv)
        suite = suite_flag.value
        if suite is None:
            raise OFQLError("no suite given: pass --suite=experiments/suites/<name>.py.")
        suite.to_dict()  # a file that failed to load only raises on first use
    except flags.Error as err:
        text = one_line(err)
        unknown = re.match(r"Unknown command line flag '(suite\.[\w.]+)'", text)
        if unknown:
            text = f"--{unknown.group(1)} is not a suite field"
        problem = f"{text}: see --help for the flags and fields."
    except OFQLError as err:
        problem = str(err)
    except OSError as err:  # ml_collections reports a missing or broken file as IOError
        path = re.search(r"Attempted \[[^\]]*\]: (\S+)", one_line(err))
        where = path.group(1) if path else "the --suite file"
        problem = (f"cannot load the suite file {where}: pass one of experiments/suites/*.py "
                   "(run from the repository root).")  # fmt: skip
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        text = one_line(err)
        field = re.fullmatch(r"""["']*([\w.]+)["']*""", text)
        if isinstance(err, KeyError | AttributeError) and field:
            text = f"{field.group(1)} is not a suite field"
        problem = (f"invalid suite override ({text}): the fields are those of "
                   "ofql_jax.suite.new_suite (see --help).")  # fmt: skip
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USER_ERROR
    suite_file = flag_values["suite"].config_filename
    workdir = workdir_flag.value or os.path.join("runs", suite.name)
    command = " ".join(["python -m ofql_jax.suite", *argv[1:]])
    try:
        runner = SuiteRunner(suite, suite_file, workdir, command)
        if report_flag.value:
            runner.write_report()
            return 0
        return runner.run()
    except OFQLError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())

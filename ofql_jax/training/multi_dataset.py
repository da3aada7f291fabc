"""Several datasets in one program: members differ by dataset as well as by seed and setting.

A user benchmarking the paper's table runs many tasks x seeds x algorithms; on an accelerator
one vmapped program of many members runs far more seed-updates per second than one program
per task. ``MultiDatasetProgram(configs, workdirs)`` trains the runs of several configs (same
algorithm and training schedule, datasets of the same observation and action sizes) as ONE
jitted call per chunk:

* every dataset is stored once on the device, concatenated; each member samples its batches
  from its own dataset (``where = (first, size)``, ``ofql_jax.training.trainer``), with the
  same indices a run of its own draws, so seed i of task T equals its single-task run (to
  float32 rounding, as seeds of one program do);
* everything else stays per run: each keeps its own workdir, checkpoints, TensorBoard logs,
  divergence monitor (its dataset's value bounds), evaluator (its own environment and score
  normalisation) and ``results.json``, so ``load_run``, ``evaluate`` and the report read it
  like any run. Its ``results.json`` names the program (``program``).

The suite groups its cells into such programs by itself (``--suite.multi_dataset``).

Example:
    >>> program = MultiDatasetProgram([hopper_medium, hopper_expert],  # doctest: +SKIP
    ...                               ["runs/hm", "runs/he"])
    >>> results = program.run()  # one results dictionary per config, in order
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from ofql_jax.agents import AGENTS
from ofql_jax.core.checkpointing import saved_steps
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.stop_request import StopRequest
from ofql_jax.core.types import Transitions
from ofql_jax.training.experiment import Experiment, _next_boundary
from ofql_jax.training.parallel import check_divisible, make_mesh, replicated, seed_sharding
from ofql_jax.training.trainer import MultiSeedTrainer

# Run fields every dataset of a program shares: one compiled program (algorithm, batch,
# placement, precision) and one schedule (the same chunks, evaluations and checkpoints).
SHARED_FIELDS = (
    "algorithm", "num_steps", "batch_size", "steps_per_call", "eval_every", "checkpoint_every",
    "num_devices", "seeds_per_group", "matmul_precision", "distributed",
)  # fmt: skip


def mismatch(configs: Sequence[ml_collections.ConfigDict]) -> str | None:
    """Why these configs cannot train in one program (``None`` if they can): a shared field
    or a non-sweepable agent field that differs. Sweepable agent fields (e.g. OFQL's per-task
    eta and grad_norm) live in each member's state, so they may differ; grad_norm only on one
    side of 0, as a clip (> 0) is part of the program and of each run's checkpoints."""
    first = configs[0]
    sweepable = set(AGENTS[first.algorithm].sweepable or ()) if first.algorithm in AGENTS else set()
    for other in configs[1:]:
        for name in SHARED_FIELDS:
            if other[name] != first[name]:
                return f"{name} differs ({first[name]!r} for {first.task}, {other[name]!r} for " \
                       f"{other.task})"  # fmt: skip
        a, b = first.agent.to_dict(), other.agent.to_dict()
        for name in sorted(set(a) | set(b)):
            if name not in sweepable and a.get(name) != b.get(name):
                return f"agent.{name} differs ({a.get(name)!r} for {first.task}, " \
                       f"{b.get(name)!r} for {other.task})"  # fmt: skip
        if "grad_norm" in a and (a["grad_norm"] > 0) != (b.get("grad_norm", 0) > 0):
            return f"agent.grad_norm clips for one run and not the other ({a['grad_norm']!r} " \
                   f"for {first.task}, {b.get('grad_norm')!r} for {other.task})"  # fmt: skip
    return None


def align_checkpoints(workdirs: Sequence[Path]) -> int:
    """The step every run resumes from: the newest checkpoint all of them have (0: none).

    The runs save one after the other at the same step, so a kill between two saves leaves
    some runs one checkpoint ahead; their newer checkpoints move to ``checkpoints.ahead/``
    (never deleted), and training repeats those steps exactly."""
    steps = [saved_steps(Path(w) / "checkpoints") for w in workdirs]
    if not any(steps):
        return 0
    common = set(steps[0]).intersection(*steps[1:])
    if not common:
        held = "; ".join(f"{w}: {s or 'none'}" for w, s in zip(workdirs, steps, strict=True))
        raise OFQLError(
            "the runs of this multi-dataset program hold no checkpoint of a common step "
            f"({held}): "
            "run them as separate programs (--suite.multi_dataset=false) or use a new --workdir."
        )
    step = max(common)
    for workdir, held in zip(workdirs, steps, strict=True):
        for ahead in [s for s in held if s > step]:
            target = Path(workdir) / "checkpoints.ahead" / str(ahead)
            if target.exists():
                shutil.rmtree(target)  # an earlier copy of the step that is now retrained
            target.parent.mkdir(parents=True, exist_ok=True)
            (Path(workdir) / "checkpoints" / str(ahead)).rename(target)
            tqdm.write(f"{workdir}: checkpoint {ahead} is ahead of the program's other runs; "
                       f"moved to {target}, and the program resumes from step {step}.")  # fmt: skip
    return step


class MultiDatasetProgram:
    """Train several runs (one config and workdir each) as one vmapped program.

    The runs are ``Experiment``s built with ``joint=True``; this class owns the data on the
    device, the stacked states and the compiled chunk, and hands each run its members'
    states and metrics after every chunk (``Experiment.keep_chunk`` and ``periodic``).
    """

    def __init__(self, configs: Sequence[ml_collections.ConfigDict],
                 workdirs: Sequence[str | Path], allow_config_change: bool = False):  # fmt: skip
        if not configs or len(configs) != len(workdirs):
            raise OFQLError("a multi-dataset program needs one workdir per config.")
        if jax.process_count() > 1:
            raise OFQLError(
                "multi-dataset programs run on one host: run the tasks as separate programs "
                "(--suite.multi_dataset=false) across hosts."
            )
        why = mismatch(configs)
        if why is not None:
            raise OFQLError(
                f"these runs cannot share one program: {why}. Give them equal values, or run "
                "them as separate programs (--suite.multi_dataset=false)."
            )
        workdirs = [Path(w) for w in workdirs]
        align_checkpoints(workdirs)
        self.runs: list[Experiment] = []
        try:
            for config, workdir in zip(configs, workdirs, strict=True):
                self.runs.append(Experiment(config, workdir, allow_config_change, joint=True))
            self._place()
        except BaseException:
            self.close()
            raise

    def _place(self) -> None:
        """One device copy of every dataset, each run's ``where``, the stacked states."""
        runs = self.runs
        shapes = {(r.setup.run_data.info.obs_dim, r.setup.run_data.info.act_dim) for r in runs}
        if len(shapes) > 1:
            raise OFQLError(
                "the datasets of a multi-dataset program must share observation and action "
                f"sizes; these have {sorted(shapes)}: group only tasks of one shape "
                "(hopper; halfcheetah with walker2d), or use --suite.multi_dataset=false."
            )
        steps = {r.progress.step for r in runs}
        if len(steps) > 1:  # align_checkpoints makes them equal; a clash is a bug elsewhere
            raise OFQLError(f"the runs resume at different steps {sorted(steps)}: use a new "
                            "--workdir.")  # fmt: skip
        self.step = steps.pop()
        # Each distinct dataset once (two runs of one task, e.g. two algorithms' settings,
        # share theirs), in order of first use.
        unique: dict[str, Transitions] = {}  # sha256 -> host transitions
        for r in runs:
            unique.setdefault(r.setup.run_data.sha256, r.setup.run_data.transitions)
        sizes = [t.size for t in unique.values()]
        firsts = dict(zip(unique, np.cumsum([0, *sizes[:-1]]), strict=True))
        slices = [
            (firsts[r.setup.run_data.sha256], r.setup.run_data.transitions.size) for r in runs
        ]
        self.counts = [len(r.setup.members) for r in runs]
        host = jax.tree.map(lambda *x: np.concatenate(x), *unique.values())
        mesh = make_mesh(runs[0].config.num_devices)
        check_divisible(sum(self.counts), mesh)
        mesh = mesh if mesh.size > 1 else None
        self.data: Transitions = jax.device_put(host, replicated(mesh) if mesh else None)
        where = np.concatenate(
            [np.tile(piece, (count, 1)) for piece, count in zip(slices, self.counts, strict=True)]
        ).astype(np.int32)
        self.where = jax.device_put(where, seed_sharding(mesh) if mesh else None)
        self.bounds = np.cumsum([0, *self.counts])
        self.data_bytes = sum(x.nbytes for x in jax.tree.leaves(host))
        for run, lo, hi in zip(runs, self.bounds[:-1], self.bounds[1:], strict=True):
            run.setup = dataclasses.replace(run.setup, data=self.data, data_where=self.where[lo:hi])
        self.states = jax.tree.map(lambda *x: jnp.concatenate(x), *[r.states for r in runs])
        if mesh is not None:
            self.states = jax.device_put(self.states, seed_sharding(mesh))
        config = runs[0].config
        self.trainer = MultiSeedTrainer(runs[0].setup.agent, config.batch_size, mesh,
                                        config.seeds_per_group)  # fmt: skip
        program = {"tasks": [r.config.task for r in runs], "datasets_on_device": len(unique),
                   "members": sum(self.counts),
                   "members_per_task": self.counts, "data_bytes": int(self.data_bytes)}  # fmt: skip
        for run in runs:
            run.program = program
        if runs[0].setup.is_main:
            tqdm.write(
                f"One program for {len(runs)} datasets ({', '.join(program['tasks'])}): "
                f"{program['members']} members, {self.data_bytes / 2**20:.0f} MiB of data on the "
                "device, stored once."
            )

    def _part(self, tree, index: int):
        lo, hi = int(self.bounds[index]), int(self.bounds[index + 1])
        return jax.tree.map(lambda x: x[lo:hi], tree)

    def run(self, on_chunk: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Train every run to ``num_steps``; returns their results, in order. A stop request
        saves every run's checkpoint and raises StoppedError (re-run to resume)."""
        config, runs = self.runs[0].config, self.runs
        main = runs[0].setup.is_main
        bar = tqdm(total=config.num_steps, initial=self.step, unit="step",
                   disable=not (config.progress and main), dynamic_ncols=True)  # fmt: skip
        try:
            with StopRequest("after this chunk (an evaluation under way is abandoned)") as stop:
                for run in runs:
                    run.resume_evaluation(stop)
                for run in runs:
                    run.stop_if_requested(stop)
                while self.step < config.num_steps:
                    step = _next_boundary(self.step, config)
                    states, metrics, perf = self._train(step - self.step)
                    for index, run in enumerate(runs):
                        part = {**self._part(metrics, index), **perf}
                        run.keep_chunk(self._part(states, index), part, step)
                    self.states, self.step = states, step
                    bar.update(step - bar.n)
                    bar.set_postfix_str(runs[0]._postfix())
                    if on_chunk is not None:
                        on_chunk(step)
                    for run in runs:
                        run.periodic(stop)
                    for run in runs:
                        run.stop_if_requested(stop)
            return [run.finish() for run in runs]
        finally:
            bar.close()
            self.close()

    def _train(self, num_updates: int) -> tuple[Any, dict[str, Any], dict[str, float]]:
        """One chunk of every member: states, per-member metrics on the host, and the
        program's speed (``perf/*``: seed-updates count every member of the program)."""
        compiled_before = self.trainer.compile_seconds
        states, metrics, rate = self.trainer.timed(self.states, self.data, num_updates, self.where)
        compiling = self.trainer.compile_seconds - compiled_before
        perf = {"perf/updates_per_second": rate,
                "perf/seed_updates_per_second": rate * sum(self.counts)}  # fmt: skip
        for run in self.runs:
            run.chunk_rates.append(rate)
            run.setup.trainer.compile_seconds += compiling
        return states, metrics, perf

    def close(self) -> None:
        for run in self.runs:
            run.close()

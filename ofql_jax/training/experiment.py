"""One training run: data on the device, the multi-seed program, evaluation and every output.

``Experiment(config, workdir).run()`` is what ``python -m ofql_jax.main`` does: chunks of K
updates per host call (``ofql_jax.training.trainer``), evaluation, TensorBoard, Orbax checkpoints
and
``results.json`` (``ofql_jax.results.schema``) between chunks. Its constructor is built from the
builders below (data, members, restore, evaluator), each usable on its own. Process-wide
switches (``jax.distributed.initialize``, the compilation cache) belong to the entry point
(``ofql_jax.training.runtime.setup_process``), so one process can run many experiments.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh
from tqdm.auto import tqdm

from ofql_jax.agents import AGENTS, Agent, AgentState
from ofql_jax.behavior.replica import load_dataset
from ofql_jax.behavior.sources import DataChoice, choose_data, prepare_data
from ofql_jax.core.checkpointing import Checkpointer
from ofql_jax.core.config_fields import PROTOCOL_FIELDS
from ofql_jax.core.errors import OFQLError, StoppedError
from ofql_jax.core.stop_request import StopRequest
from ofql_jax.core.tasks import get_task
from ofql_jax.core.types import Transitions
from ofql_jax.data import DatasetInfo
from ofql_jax.evaluation.acting import acting_record
from ofql_jax.evaluation.evaluator import (
    Evaluator,
    eval_sample_kwargs,
    eval_variants,
    normalized_score,
    reference_scores,
)
from ofql_jax.maths.diagnostics import ValueBounds, outside_bounds, saturation_rate, value_bounds
from ofql_jax.results.schema import (
    RESULTS_FILE,
    finite_or_none,
    provenance,
    summarize,
    transitions_hash,
)
from ofql_jax.results.wandb_writer import Reporters, WandbReporter
from ofql_jax.results.writers import NullReporter, Reporter, write_json_atomic
from ofql_jax.training.config_checks import check_config, compare_configs
from ofql_jax.training.parallel import check_divisible, make_mesh, replicated
from ofql_jax.training.runtime import compilation_cache_hits, matmul_precision, set_matmul_precision
from ofql_jax.training.sweep import Member, apply_settings, make_members, parse_sweep, setting_name
from ofql_jax.training.trainer import (
    MultiSeedTrainer,
    fetch,
    init_states,
    make_diagnostics,
    seed_values,
)


@dataclasses.dataclass(frozen=True)
class RunData:
    """The dataset of a run as trained on, and what is derived from it once."""

    choice: DataChoice  # where it came from and why
    transitions: Transitions  # host arrays (flattened, scaled, reward-tuned)
    info: DatasetInfo
    sha256: str  # transitions_hash(transitions)
    bounds: ValueBounds  # the values its rewards allow (the divergence monitor's bounds)
    saturation: float  # rate of dataset actions at the clip boundary

    @property
    def env_id(self) -> str | None:
        return self.info.env_id


def load_run_data(config: ml_collections.ConfigDict, workdir: Path | None) -> RunData:
    """Choose the source (one line on the console when ``workdir`` is given, i.e. on the main
    process), build a missing replica, load the transitions and derive the bounds."""
    choice = choose_data(config, workdir)
    if workdir is not None:
        tqdm.write(choice.describe())
    prepare_data(choice, config)
    transitions, info = load_dataset(choice.dataset_ids, config.reward_tune, config.download)
    if config.batch_size > info.num_transitions:
        raise OFQLError(
            f"batch_size {config.batch_size} is larger than the dataset "
            f"({info.num_transitions} transitions): lower --config.batch_size or use a "
            "larger dataset."
        )
    bounds = value_bounds(
        transitions.rewards, transitions.dones, info.episode_lengths,
        float(config.agent.get("discount", 0.99)),
    )  # fmt: skip
    return RunData(choice, transitions, info, transitions_hash(transitions), bounds,
                   saturation_rate(transitions.actions))  # fmt: skip


def build_members(config: ml_collections.ConfigDict) -> tuple[list[dict[str, float]], list[Member]]:
    """The sweep's settings and the members (setting x seed) they give."""
    settings = parse_sweep(config.sweep)
    return settings, make_members(seed_values(config.seed, config.num_seeds), settings)


def restore_latest(
    ckpt: Checkpointer, states: AgentState, mesh: Mesh | None
) -> tuple[AgentState, int, dict[str, Any]] | None:
    """The newest checkpoint as ``(states, step, metadata)``; ``None`` when there is none."""
    latest = ckpt.latest_step()
    if latest is None:
        return None
    states, meta = ckpt.restore(latest, like=states)
    if mesh is None:
        # Orbax returns committed arrays, which give the training chunk another jit
        # signature than fresh states and so miss the compilation cache.
        states = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), states)
    return states, latest, meta


def run_reference_scores(
    config: ml_collections.ConfigDict, info: DatasetInfo
) -> tuple[tuple[float, float] | None, str]:
    """The score normalisation of a run (``reference_scores`` with the task's D4RL table
    for the task's own dataset, or for any dataset with ``normalize_with_task``)."""
    use_task_ref = not config.dataset_id or config.normalize_with_task
    return reference_scores(info, get_task(config.task).ref_scores, use_task_ref)


def build_evaluator(
    config: ml_collections.ConfigDict, agent: Agent, info: DatasetInfo, num_members: int
) -> Evaluator | None:
    """The protocol's evaluator, or ``None`` when ``eval_episodes`` is 0."""
    if config.eval_episodes <= 0:
        return None
    return Evaluator(
        agent, info, num_members, config.eval_episodes, max_envs=config.eval_max_envs,
        num_workers=config.eval_workers, sample_kwargs=eval_sample_kwargs(config),
    )  # fmt: skip


def _get_field(config: ml_collections.ConfigDict, dotted: str) -> Any:
    for part in dotted.split("."):
        config = config[part]
    return config


def _next_boundary(step: int, config: ml_collections.ConfigDict) -> int:
    """Chunks end at absolute multiples of K, eval_every, checkpoint_every, and at num_steps.

    Absolute boundaries make a resumed run execute exactly the same chunks.
    """
    candidates = [config.num_steps]
    for period in (config.steps_per_call, config.eval_every, config.checkpoint_every):
        if period > 0:
            candidates.append((step // period + 1) * period)
    return min(candidates)


def _member_name(label: str) -> str:
    """``Seed 3`` for a plain run's member, the label itself (``eta=0.1/seed_3``) in a sweep."""
    return f"Seed {label}" if "/" not in label else label


class Experiment:
    """One run: data on the device, the agent, the stacked member states and every output.

    Members are seeds, times sweep settings when ``config.sweep`` lists values; their
    axis is split over ``config.num_devices`` devices. ``Experiment(config,
    workdir).run()`` is what ``python -m ofql_jax.main`` does; between construction and
    ``run()`` the states may be inspected or changed.
    """

    def __init__(self, config: ml_collections.ConfigDict, workdir: str | Path,
                 allow_config_change: bool = False):  # fmt: skip
        check_config(config)
        self._cache_hits_before = compilation_cache_hits()
        # The CLI and the suite set it at process start (runtime.setup_process); this covers a
        # library caller and a suite cell of another precision, before the run compiles
        # anything, and reads back what its programs get (results.json records that).
        set_matmul_precision(config.matmul_precision)
        self.matmul_precision = matmul_precision()
        self.config, self.workdir = config, Path(workdir)
        self.is_main = jax.process_index() == 0  # only process 0 logs and writes files
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "config.json"
        if config_path.exists() and not allow_config_change:
            compare_configs(json.loads(config_path.read_text()), config.to_dict(), self.workdir)
        self.ckpt = Checkpointer(self.workdir / "checkpoints", config.checkpoints_to_keep)

        self.run_data = load_run_data(config, self.workdir if self.is_main else None)
        info = self.run_data.info
        self.data_choice, self.bounds = self.run_data.choice, self.run_data.bounds
        self.agent = AGENTS[config.algorithm].make(
            config.agent, info.obs_dim, info.act_dim, config.num_steps
        )
        self.q_policy_key = AGENTS[config.algorithm].q_policy_key  # the value monitor's input
        self.settings, self.members = build_members(config)
        self.values = [m.seed for m in self.members]
        mesh = make_mesh(config.num_devices)
        check_divisible(len(self.members), mesh)
        self.mesh = mesh if mesh.size > 1 else None
        placement = replicated(self.mesh) if self.mesh is not None else None
        self.data = jax.device_put(self.run_data.transitions, placement)
        states = init_states(self.agent, self.values, self.mesh)
        self.states = apply_settings(states, self.members, self.settings)
        self.step, self.evaluations, self.diverged, self.value_diverged = 0, [], {}, {}
        restored = restore_latest(self.ckpt, self.states, self.mesh)
        if restored is not None:
            self.states, self.step, meta = restored
            self.evaluations = meta.get("evaluations", [])
            self.diverged = dict(meta.get("diverged", {}))
            self.value_diverged = dict(meta.get("value_diverged", {}))
            if self.is_main:
                where = self.ckpt.directory / str(self.step)
                tqdm.write(f"Resuming from {where} (step {self.step}).")
        if self.is_main:
            write_json_atomic(config_path, config.to_dict())

        self.ref, self.ref_source = run_reference_scores(config, info)
        # What acting needs without the dataset (ofql_jax.training.loading reads it back).
        self.acting = acting_record(info, self.ref, self.ref_source)
        self.group_names = [setting_name(s) for s in self.settings]
        self.reporter = NullReporter()
        try:
            if self.is_main:
                self._open_reporter(config)
            self.evaluator = (
                build_evaluator(config, self.agent, info, len(self.members))
                if self.is_main
                else None
            )
        except BaseException:
            self.reporter.close()  # no TensorBoard writer threads left behind by a refusal
            raise
        self.trainer = MultiSeedTrainer(
            self.agent, config.batch_size, self.mesh, config.seeds_per_group
        )
        self.diagnostics = make_diagnostics(self.agent) if self.agent.diagnose is not None else None
        self.last_diagnostics: dict[str, np.ndarray] = {}
        self.chunk_rates: list[float] = []  # updates/s of each chunk this process trained
        self.last_rate, self.last_loss = float("nan"), float("nan")

    def _open_reporter(self, config: ml_collections.ConfigDict) -> None:
        """TensorBoard writers for every member and group mean, and W&B when configured."""
        runs, groups = [m.run_name for m in self.members], [m.setting for m in self.members]
        self.reporter = Reporter(self.workdir, runs, groups, self.group_names)
        if config.wandb_project:  # the same scalars, optionally (ofql_jax.results.wandb_writer)
            wandb = WandbReporter(config, self.workdir, runs, groups, self.group_names)
            self.reporter = Reporters(self.reporter, wandb)
        self.reporter.text("data/source", self.data_choice.describe())

    def train_chunk(self) -> None:
        """Run the updates up to the next boundary; record speed, metrics and divergence."""
        num_updates = _next_boundary(self.step, self.config) - self.step
        compiled_before = self.trainer.compile_seconds
        start = time.perf_counter()
        states, metrics = self.trainer(self.states, self.data, num_updates)
        metrics = fetch(metrics)
        elapsed = time.perf_counter() - start - (self.trainer.compile_seconds - compiled_before)
        self._check_divergence(metrics.pop("finite"), self.step + num_updates)
        self.states, self.step = states, self.step + num_updates
        rate = num_updates / max(elapsed, 1e-9)
        self.chunk_rates.append(rate)
        perf = {
            "perf/updates_per_second": rate,
            "perf/seed_updates_per_second": rate * len(self.members),
        }
        self.reporter.scalars(self.step, {**metrics, **perf})
        loss = np.asarray(metrics.get("critic/loss", metrics.get("actor/loss")))
        self.last_rate = rate
        self.last_loss = (
            float(loss[np.isfinite(loss)].mean()) if np.isfinite(loss).any() else np.nan
        )
        if self.diagnostics is not None:
            self.diagnose()

    def diagnose(self) -> dict[str, np.ndarray]:
        """Health figures of every member on a fresh batch (``agent.diagnose``), logged as
        ``diag/*``; a member whose value of its own actions left the dataset's bounds is
        flagged (see ``ofql_jax.maths.diagnostics``)."""
        seeds = jnp.asarray(self.values, jnp.uint32)
        diag = fetch(self.diagnostics(self.states, self.data, seeds, jnp.uint32(self.step)))
        bounds = {
            "diag/q_upper_bound": self.bounds.upper,
            "diag/best_data_return": self.bounds.best_return,
        }
        self.reporter.scalars(self.step, {**diag, **bounds})
        self.last_diagnostics = diag
        if self.q_policy_key in diag:
            self._check_values(diag[self.q_policy_key], self.step)
        return diag

    def _check_values(self, q_policy: np.ndarray, step: int) -> None:
        """Flag members whose Q of their own actions left [lower, upper] (value divergence)."""
        b = self.bounds
        flags = outside_bounds(q_policy, b)
        for member, q, flagged in zip(self.members, q_policy, flags, strict=True):
            label = member.label
            if not flagged or label in self.value_diverged or label in self.diverged:
                continue
            name = _member_name(label)
            what = (
                f"its critics value its own actions at Q = {q:.4g}, outside the bounds "
                f"[{b.lower:.4g}, {b.upper:.4g}] that the dataset's rewards allow "
                f"(best discounted return in the data {b.best_return:.4g})"
            )
            if self.config.halt_on_divergence:
                kept = self._kept_checkpoint()
                raise OFQLError(
                    f"{name} diverged by step {step}: {what}, and halt_on_divergence is set, so "
                    f"the run stopped ({kept}): lower eta or the learning rates (see "
                    "docs/algorithm.md), or unset --config.halt_on_divergence."
                )
            self.value_diverged[label] = step
            if self.is_main:
                tqdm.write(
                    f"Warning: {name} diverged by step {step}: {what}; it goes on and is "
                    "evaluated, and results.json lists it under value_diverged_seeds."
                )

    def _kept_checkpoint(self) -> str:
        """What a halted run leaves behind, for its error sentence."""
        last = self.ckpt.latest_step()
        if not last:
            return "no checkpoint was written"
        return f"the last checkpoint (step {last}) is intact"

    def _postfix(self) -> str:
        kind = "critic" if self.agent.has_critic else "loss"
        text = f"{self.last_rate:.0f} upd/s, {kind} {self.last_loss:.3g}"
        q = self.last_diagnostics.get(self.q_policy_key)
        if q is not None and np.isfinite(q).any():
            text += f", Q max {np.nanmax(q):.0f} (bound {self.bounds.upper:.0f})"
        return text

    def _check_divergence(self, finite: np.ndarray, step: int) -> None:
        """Mark newly non-finite members; with halt_on_divergence stop before keeping the chunk."""
        for member, ok in zip(self.members, finite, strict=True):
            if ok or member.label in self.diverged:
                continue
            name = _member_name(member.label)
            if self.config.halt_on_divergence:
                kept = self._kept_checkpoint()
                raise OFQLError(
                    f"{name} diverged (non-finite loss or parameters) by step {step} and "
                    f"halt_on_divergence is set, so the run stopped ({kept}): lower the learning "
                    "rates or eta, or unset --config.halt_on_divergence to keep the other seeds "
                    "going."
                )
            self.diverged[member.label] = step
            if self.is_main:
                tqdm.write(
                    f"{name} diverged (non-finite loss or parameters) by step {step}; "
                    "it is excluded from the mean and from evaluation, the other seeds go on."
                )

    def evaluate(self) -> dict[str, Any] | None:
        """Evaluate every healthy member with N candidates (and N = 1 if asked); diverged: None.

        Called on every process (multi-host runs gather the states); only process 0 runs
        the episodes and returns the entry, the others return None.
        """
        c = self.config
        states = self.states if jax.process_count() == 1 else fetch(self.states)
        if self.evaluator is None:
            return None
        entry: dict[str, Any] = {"step": self.step}
        if self.last_diagnostics:
            entry["diagnostics"] = {k: finite_or_none(v) for k, v in self.last_diagnostics.items()}
        healthy = np.array([m.label not in self.diverged for m in self.members])
        entry["candidates"] = eval_variants(c, self.agent)[0][0]
        variants = eval_variants(c, self.agent)
        for num_candidates, suffix, kwargs in variants:
            returns = self.evaluator.evaluate(
                states, self.values, self.step, num_candidates, healthy, sample_kwargs=kwargs
            )
            scores = normalized_score(returns, self.ref).mean(axis=1)
            entry[f"scores{suffix}"] = finite_or_none(scores)
            entry[f"returns{suffix}"] = finite_or_none(returns.mean(axis=1))
            tb = {f"eval/score{suffix}": scores, f"eval/return{suffix}": returns.mean(axis=1)}
            self.reporter.scalars(self.step, tb)
        self.evaluations.append(entry)
        return entry

    def due(self, period: int) -> bool:
        return (period > 0 and self.step % period == 0) or self.step == self.config.num_steps

    def save(self) -> None:
        meta = {
            "evaluations": self.evaluations,
            "diverged": self.diverged,
            "value_diverged": self.value_diverged,
            "acting": self.acting,
        }
        self.ckpt.save(self.step, self.states, meta)

    def _summaries(self, final: dict[str, Any], members: list[int]) -> dict[str, Any]:
        suffixes = [v[1] for v in eval_variants(self.config, self.agent)]
        labels = [m.label for m in self.members]
        return summarize(final, members, labels, self.diverged, suffixes)

    def _eval_settings(self) -> dict[str, Any]:
        """What the reported evaluation actually did (an agent without a critic acts with its
        own action, N = 1 and noise x 1, whatever the protocol's candidate settings)."""
        c, critic = self.config, self.agent.has_critic
        candidates, _, overrides = eval_variants(c, self.agent)[0]
        settings = {**eval_sample_kwargs(c), **overrides}
        if not critic:
            settings["q_temperature"] = None  # no candidates to weigh
        one_step = c.eval_one_step and critic and candidates != 1
        return {
            **settings,
            "candidates": candidates,
            "episodes_per_seed": c.eval_episodes,
            "one_step": "N = 1, noise x 1, same actor" if one_step else None,
            "max_envs": c.eval_max_envs,
        }

    def results(self) -> dict[str, Any]:
        c = self.config
        final = self.evaluations[-1] if self.evaluations else {}
        # The median chunk: a paused or preempted chunk counts once, not for its whole pause.
        rate = float(np.median(self.chunk_rates)) if self.chunk_rates else None
        results: dict[str, Any] = {
            "algorithm": c.algorithm,
            "task": c.task,
            "dataset_id": ",".join(self.data_choice.dataset_ids),
            "data_source": self.data_choice.source,
            "data_source_reason": self.data_choice.reason,
            "dataset_sha256": self.run_data.sha256,
            "env_id": self.run_data.env_id,
            "acting": self.acting,
            "num_seeds": c.num_seeds,
            "seeds": seed_values(c.seed, c.num_seeds),
            "steps": self.step,
            "score_normalization": self.ref_source,
            "protocol": c.protocol,
            "protocol_settings": {f: _get_field(c, f) for f in PROTOCOL_FIELDS},
            "eval_candidates": eval_variants(c, self.agent)[0][0],
            "eval_settings": self._eval_settings(),
            "diverged_seeds": dict(self.diverged),
            "value_diverged_seeds": dict(self.value_diverged),
            "value_bounds": self.bounds.to_dict(),
            "data_saturation": self.run_data.saturation,
            "diagnostics": {k: finite_or_none(v) for k, v in self.last_diagnostics.items()},
            "updates_per_second": rate,
            "seed_updates_per_second": rate * len(self.members) if rate else None,
            "compile_seconds": self.trainer.compile_seconds,
            "compilation_cache_hits": compilation_cache_hits() - self._cache_hits_before,
            "matmul_precision": self.matmul_precision,
            **provenance(),
        }
        everyone = list(range(len(self.members)))
        results.update(self._summaries(final, everyone))
        if self.settings != [{}]:  # a sweep: one summary per setting, members in order
            results["mean"] = results["std"] = None  # a mean across settings means nothing
            results["members"] = [dataclasses.asdict(m) for m in self.members]
            results["settings"] = []
            for k, setting in enumerate(self.settings):
                chosen = [i for i, m in enumerate(self.members) if m.setting == k]
                summary = {"hparams": setting, "name": setting_name(setting)}
                results["settings"].append({**summary, **self._summaries(final, chosen)})
        results.update(evaluations=self.evaluations, config=c.to_dict())
        return results

    def run(self, on_chunk: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Train to ``num_steps`` with evaluation, logging and checkpoints; write results.json.

        ``on_chunk(step)`` is called after every chunk (the suite's progress display).
        SIGTERM or Ctrl-C saves a checkpoint after the current chunk, then raises OFQLError.
        """
        c = self.config
        bar = tqdm(total=c.num_steps, initial=self.step, unit="step",
                   disable=not (c.progress and self.is_main), dynamic_ncols=True)  # fmt: skip
        try:
            with StopRequest("after this chunk") as stop:
                while self.step < c.num_steps:
                    self.train_chunk()
                    bar.update(self.step - bar.n)
                    bar.set_postfix_str(self._postfix())
                    if on_chunk is not None:
                        on_chunk(self.step)
                    # Evaluation at a step precedes its checkpoint, so a resumed run never
                    # repeats one, and every process reaches the same decision.
                    entry = self.evaluate() if c.eval_episodes and self.due(c.eval_every) else None
                    if entry is not None:
                        scores = [x for x in entry["scores"] if x is not None]
                        if scores:
                            tqdm.write(
                                f"step {self.step}: score {np.mean(scores):.1f} +- "
                                f"{np.std(scores):.1f} (N={entry['candidates']}, "
                                f"{len(scores)} seeds)"
                            )
                    if self.due(c.checkpoint_every) or stop.signum is not None:
                        self.save()
                    if stop.signum is not None and self.step < c.num_steps:
                        raise StoppedError(
                            f"Stopped by {stop.name} at step {self.step} "
                            "after saving a checkpoint: re-run the same command to resume."
                        )
            results = self.results()
            if self.is_main:
                write_json_atomic(self.workdir / RESULTS_FILE, results)
            return results
        finally:
            bar.close()
            self.close()

    def close(self) -> None:
        self.reporter.close()
        if self.evaluator is not None:
            self.evaluator.close()


def run(
    config: ml_collections.ConfigDict, workdir: str | Path, allow_config_change: bool = False
) -> dict[str, Any]:
    """Train ``config.num_seeds`` seeds of ``config.algorithm`` and write everything to ``workdir``.

    Resumes from ``<workdir>/checkpoints`` when present; a workdir whose saved config
    differs is refused unless ``allow_config_change``. Returns the results dictionary
    also written to ``<workdir>/results.json``.
    """
    return Experiment(config, workdir, allow_config_change).run()


def move_aside(workdir: str | Path) -> Path | None:
    """Rename an existing, non-empty ``workdir`` to ``<workdir>.old-<n>``; never deletes."""
    workdir = Path(workdir)
    if not workdir.exists() or not any(workdir.iterdir()):
        return None
    n = 1
    while (target := workdir.with_name(f"{workdir.name}.old-{n}")).exists():
        n += 1
    workdir.rename(target)
    return target

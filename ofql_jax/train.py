"""Multi-seed training: one jitted program runs a ``lax.scan`` of K updates for every seed.

``make_train_chunk`` is the pure building block (importable); ``MultiSeedTrainer`` vmaps
it over seeds (in groups, split over devices, see ``ofql_jax.parallel``); ``run`` is the
whole experiment behind ``python -m ofql_jax.main``: data on the device once, chunks of
K updates per host call, evaluation, TensorBoard, Orbax checkpoints and ``results.json``
between chunks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from ofql_jax.agents import AGENTS, Agent, AgentState
from ofql_jax.checkpointing import Checkpointer
from ofql_jax.config_checks import check_config, compare_configs
from ofql_jax.data import load_minari
from ofql_jax.data.sources import choose_data, prepare_data
from ofql_jax.diagnostics import outside_bounds, saturation_rate, value_bounds
from ofql_jax.errors import OFQLError
from ofql_jax.evaluation import Evaluator, normalized_score, reference_scores
from ofql_jax.parallel import (
    SEED_AXIS,
    check_divisible,
    grouped_vmap,
    make_mesh,
    replicated,
    resolve_group_size,
    seed_sharding,
)
from ofql_jax.reporting import NullReporter, Reporter, write_json_atomic
from ofql_jax.stop_request import StopRequest
from ofql_jax.sweep import apply_settings, make_members, parse_sweep, setting_name
from ofql_jax.tasks import PROTOCOL_FIELDS, get_task
from ofql_jax.types import Transitions

ROOT_SEED = 0  # every seed's key is fold_in(key(ROOT_SEED), seed value)
DIAGNOSTIC_ROOT = 1  # diagnostic batches: fold_in(fold_in(key(1), seed value), step)
DIAGNOSTIC_BATCH = 1024  # transitions per member in each diagnostic pass


def seed_values(first_seed: int, num_seeds: int) -> list[int]:
    """Seed values of a run: ``first_seed, first_seed + 1, ...``.

    Seed value ``v`` always gets the key ``fold_in(key(0), v)``, so seed ``i`` of an
    N-seed run with ``--config.seed=s`` equals a 1-seed run with ``--config.seed=s+i``
    (the same random streams; parameters agree to float32 rounding).
    """
    return [first_seed + i for i in range(num_seeds)]


def seed_keys(values: list[int]) -> jax.Array:
    """One independent key per seed value, derived by ``fold_in``."""
    root = jax.random.key(ROOT_SEED)
    return jax.vmap(lambda v: jax.random.fold_in(root, v))(jnp.asarray(values, jnp.uint32))


def init_states(agent: Agent, values: list[int], mesh: Mesh | None = None) -> AgentState:
    """Stacked agent states (leading axis = seed), one per seed value.

    With a ``mesh`` the seed axis is created already split over its devices.
    """
    out_shardings = seed_sharding(mesh) if mesh is not None else None
    return jax.jit(jax.vmap(agent.init), out_shardings=out_shardings)(seed_keys(values))


def _all_finite(tree) -> jax.Array:
    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(x.dtype, jnp.floating)
    ]
    return jnp.all(jnp.stack(leaves))


def make_train_chunk(
    agent: Agent, batch_size: int, num_updates: int
) -> Callable[[AgentState, Transitions], tuple[AgentState, dict[str, jax.Array]]]:
    """A pure function running ``num_updates`` updates for ONE seed, batches sampled on device.

    Returns the new state and the chunk's metrics averaged over its updates, plus
    ``finite`` (1.0 if every metric and parameter stayed finite). ``vmap`` it over
    seeds with the dataset unmapped: ``jax.vmap(chunk, in_axes=(0, None))``.

    Example:
        >>> chunk = make_train_chunk(agent, batch_size=256, num_updates=1000)  # doctest: +SKIP
        >>> train = jax.jit(jax.vmap(chunk, in_axes=(0, None)))
        >>> states, metrics = train(states, dataset)
    """

    def chunk(state: AgentState, data: Transitions):
        def body(state: AgentState, _):
            rng, k_batch = jax.random.split(jax.random.wrap_key_data(state.rng))
            idx = jax.random.randint(k_batch, (batch_size,), 0, data.size)
            batch = jax.tree.map(lambda x: x[idx], data)
            return agent.update(state.replace(rng=jax.random.key_data(rng)), batch)

        state, infos = jax.lax.scan(body, state, None, length=num_updates)
        metrics = jax.tree.map(lambda x: x.mean(0), infos)
        finite = _all_finite(metrics) & _all_finite(state)
        metrics["finite"] = finite.astype(jnp.float32)
        return state, metrics

    return chunk


def make_diagnostics(agent: Agent, batch_size: int = DIAGNOSTIC_BATCH):
    """``jit(vmap(agent.diagnose))`` on a batch drawn per member from (seed value, step).

    The randomness never comes from the training RNG, so diagnosing leaves training (and a
    resumed run) unchanged. Returns ``fn(states, data, seed_values [members], step)``.
    """

    def one(state: AgentState, data: Transitions, seed_value: jax.Array, step: jax.Array):
        key = jax.random.fold_in(
            jax.random.fold_in(jax.random.key(DIAGNOSTIC_ROOT), seed_value), step
        )
        k_index, k_diag = jax.random.split(key)
        index = jax.random.randint(k_index, (batch_size,), 0, data.size)
        return agent.diagnose(state, jax.tree.map(lambda x: x[index], data), k_diag)

    return jax.jit(jax.vmap(one, in_axes=(0, None, 0, None)))


def diagnosed_chunks(
    agent: Agent, data: Transitions, seeds: list[int], batch_size: int, chunk_steps: int,
    chunks: int, diagnostic_batch: int = DIAGNOSTIC_BATCH,
):  # fmt: skip
    """Train ``seeds`` from scratch in ``chunks`` jitted chunks of ``chunk_steps`` updates and
    yield, after each, the host copy of every member's ``agent.diagnose`` metrics.

    For small studies of training dynamics (the divergence toy and its test), without the
    Experiment's outputs.
    """
    states = init_states(agent, seeds)
    train = jax.jit(jax.vmap(make_train_chunk(agent, batch_size, chunk_steps), in_axes=(0, None)))
    diagnose = make_diagnostics(agent, diagnostic_batch)
    values = jnp.asarray(seeds, jnp.uint32)
    for i in range(chunks):
        states, _ = train(states, data)
        yield jax.device_get(diagnose(states, data, values, jnp.uint32(i)))


class MultiSeedTrainer:
    """Compiles (ahead of time, once per chunk length) and runs the training chunk for all seeds.

    Without a ``mesh``: one jitted vmap (seeds grouped by ``seeds_per_group``, see
    ``ofql_jax.parallel``). With a ``mesh``: the same per device under ``shard_map``,
    the seed axis split over the devices and the dataset replicated.
    """

    def __init__(
        self, agent: Agent, batch_size: int, mesh: Mesh | None = None, seeds_per_group: int = 0
    ):
        self.agent, self.batch_size, self.mesh = agent, batch_size, mesh
        self.seeds_per_group = seeds_per_group
        self._compiled: dict[tuple, Any] = {}
        self.compile_seconds = 0.0

    def _program(self, num_updates: int, num_members: int):
        chunk = make_train_chunk(self.agent, self.batch_size, num_updates)
        devices = 1 if self.mesh is None else self.mesh.size
        group = resolve_group_size(self.seeds_per_group, num_members // devices)
        per_device = grouped_vmap(chunk, group)
        if self.mesh is None:
            return jax.jit(per_device, donate_argnums=0)
        spec = P(SEED_AXIS)
        sharded = jax.shard_map(
            per_device, mesh=self.mesh, in_specs=(spec, P()), out_specs=(spec, spec)
        )
        return jax.jit(sharded, donate_argnums=0)

    def __call__(self, states: AgentState, data: Transitions, num_updates: int):
        num_members = states.step.shape[0]
        cache_key = (num_updates, num_members, data.size)
        if cache_key not in self._compiled:
            start = time.perf_counter()
            fn = self._program(num_updates, num_members)
            self._compiled[cache_key] = fn.lower(states, data).compile()
            self.compile_seconds += time.perf_counter() - start
        return self._compiled[cache_key](states, data)


def eval_sample_kwargs(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The protocol's selection settings, passed to ``agent.sample_actions``."""
    return dict(
        actor=config.eval_actor,
        noise_temperature=float(config.eval_noise_temperature),
        q_temperature=float(config.eval_q_temperature),
    )


def eval_variants(
    config: ml_collections.ConfigDict, has_critic: bool = True, eval_options=None
) -> list[tuple[int, str, dict[str, Any]]]:
    """``(num_candidates, results suffix, sample overrides)`` of each evaluation: the
    protocol's N candidates, the plain one-step policy (N = 1, noise x 1, same actor), and
    the agent's ``eval_options`` (e.g. DQL with one DDIM step) with N candidates. Agents
    without a critic are evaluated with N = 1 only."""
    eval_options = eval_options or {}
    if not has_critic:  # nothing to score candidates with: the policy's own action
        return [(1, "", {"noise_temperature": 1.0})] + [
            (1, f"_{name}", {"noise_temperature": 1.0, **o}) for name, o in eval_options.items()
        ]
    variants = [(config.eval_candidates, "", {})]
    if config.eval_one_step and config.eval_candidates != 1:
        variants.append((1, "_one_step", {"noise_temperature": 1.0}))
    for name, overrides in eval_options.items():
        variants.append((config.eval_candidates, f"_{name}", dict(overrides)))
    return variants


def _next_boundary(step: int, config: ml_collections.ConfigDict) -> int:
    """Chunks end at absolute multiples of K, eval_every, checkpoint_every, and at num_steps.

    Absolute boundaries make a resumed run execute exactly the same chunks.
    """
    candidates = [config.num_steps]
    for period in (config.steps_per_call, config.eval_every, config.checkpoint_every):
        if period > 0:
            candidates.append((step // period + 1) * period)
    return min(candidates)


def _get_field(config: ml_collections.ConfigDict, dotted: str) -> Any:
    for part in dotted.split("."):
        config = config[part]
    return config


def _mean_std(scores: np.ndarray, alive: np.ndarray) -> tuple[float | None, float | None]:
    """Mean and (population) std over the seeds that did not diverge."""
    kept = scores[alive]
    return (float(kept.mean()), float(kept.std())) if kept.size else (None, None)


def _finite_or_none(values) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def provenance() -> dict[str, Any]:
    """Versions, backend and device count, so a result can be tied to what produced it."""
    from importlib import metadata

    packages = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "minari",
                "gymnasium", "gymnasium-robotics", "mujoco", "numpy")  # fmt: skip
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "versions": versions,
        "backend": jax.default_backend(),
        "device_count": jax.device_count(),
        "devices": [str(d) for d in jax.devices()],
    }


def fetch(tree):
    """Device arrays -> host numpy, gathering from every process in multi-host runs."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def enable_compilation_cache(directory: str) -> None:
    """JAX's persistent compilation cache: a second run of the same config compiles from disk."""
    if directory:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(directory))


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
        if config.distributed:
            jax.distributed.initialize()  # before any other JAX call; reads the cluster env
        enable_compilation_cache(config.compilation_cache_dir)
        self.config, self.workdir = config, Path(workdir)
        self.is_main = jax.process_index() == 0  # only process 0 logs and writes files
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "config.json"
        if config_path.exists() and not allow_config_change:
            compare_configs(json.loads(config_path.read_text()), config.to_dict(), self.workdir)
        self.ckpt = Checkpointer(self.workdir / "checkpoints", config.checkpoints_to_keep)

        self.data_choice = choose_data(config, self.workdir if self.is_main else None)
        if self.is_main:
            tqdm.write(self.data_choice.describe())
        prepare_data(self.data_choice, config)
        self.dataset_ids = self.data_choice.dataset_ids
        transitions, info = load_minari(self.dataset_ids, config.reward_tune, config.download)
        if config.batch_size > info.num_transitions:
            raise OFQLError(
                f"batch_size {config.batch_size} is larger than the dataset "
                f"({info.num_transitions} transitions): lower --config.batch_size or use a "
                "larger dataset."
            )
        self.dataset_hash = transitions_hash(transitions)
        self.bounds = value_bounds(
            transitions.rewards, transitions.dones, info.episode_lengths,
            float(config.agent.get("discount", 0.99)),
        )  # fmt: skip
        self.data_saturation = saturation_rate(transitions.actions)
        spec = AGENTS[config.algorithm]
        self.agent = spec.make(config.agent, info.obs_dim, info.act_dim, config.num_steps)

        self.settings = parse_sweep(config.sweep)
        self.members = make_members(seed_values(config.seed, config.num_seeds), self.settings)
        self.values = [m.seed for m in self.members]
        mesh = make_mesh(config.num_devices)
        check_divisible(len(self.members), mesh)
        self.mesh = mesh if mesh.size > 1 else None
        if self.mesh is None:
            self.data = jax.device_put(transitions)
        else:
            self.data = jax.device_put(transitions, replicated(self.mesh))
        self.states = init_states(self.agent, self.values, self.mesh)
        self.states = apply_settings(self.states, self.members, self.settings)
        self.step, self.evaluations, self.diverged, self.value_diverged = 0, [], {}, {}
        latest = self.ckpt.latest_step()
        if latest is not None:
            self.states, meta = self.ckpt.restore(latest, like=self.states)
            if self.mesh is None:
                # Orbax returns committed arrays, which give the training chunk another
                # jit signature than fresh states and so miss the compilation cache.
                self.states = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), self.states)
            self.step, self.evaluations = latest, meta.get("evaluations", [])
            self.diverged = dict(meta.get("diverged", {}))
            self.value_diverged = dict(meta.get("value_diverged", {}))
            if self.is_main:
                tqdm.write(f"Resuming from {self.ckpt.directory / str(latest)} (step {latest}).")
        if self.is_main:
            write_json_atomic(config_path, config.to_dict())

        task_ref = get_task(config.task).ref_scores
        use_task_ref = not config.dataset_id or config.normalize_with_task
        self.ref, self.ref_source = reference_scores(info, task_ref, use_task_ref)
        self.group_names = [setting_name(s) for s in self.settings]
        if self.is_main:
            runs = [m.run_name for m in self.members]
            groups = [m.setting for m in self.members]
            self.reporter = Reporter(self.workdir, runs, groups, self.group_names)
            self.reporter.text("data/source", self.data_choice.describe())
        else:
            self.reporter = NullReporter()
        self.evaluator = (
            Evaluator(
                self.agent,
                info,
                len(self.members),
                config.eval_episodes,
                max_envs=config.eval_max_envs,
                num_workers=config.eval_workers,
                sample_kwargs=eval_sample_kwargs(config),
            )  # fmt: skip
            if config.eval_episodes > 0 and self.is_main
            else None
        )
        self.trainer = MultiSeedTrainer(
            self.agent, config.batch_size, self.mesh, config.seeds_per_group
        )
        self.diagnostics = make_diagnostics(self.agent) if self.agent.diagnose is not None else None
        self.last_diagnostics: dict[str, np.ndarray] = {}
        self.timed_steps, self.timed_seconds = 0, 0.0
        self.last_rate, self.last_loss = float("nan"), float("nan")

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
        self.timed_steps += num_updates
        self.timed_seconds += elapsed
        rate = num_updates / max(elapsed, 1e-9)
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
        flagged (see ``ofql_jax.diagnostics``)."""
        seeds = jnp.asarray(self.values, jnp.uint32)
        diag = fetch(self.diagnostics(self.states, self.data, seeds, jnp.uint32(self.step)))
        bounds = {
            "diag/q_upper_bound": self.bounds.upper,
            "diag/best_data_return": self.bounds.best_return,
        }
        self.reporter.scalars(self.step, {**diag, **bounds})
        self.last_diagnostics = diag
        if "diag/q_policy_mean" in diag:
            self._check_values(diag["diag/q_policy_mean"], self.step)
        return diag

    def _check_values(self, q_policy: np.ndarray, step: int) -> None:
        """Flag members whose Q of their own actions left [lower, upper] (value divergence)."""
        b = self.bounds
        flags = outside_bounds(q_policy, b)
        for member, q, flagged in zip(self.members, q_policy, flags, strict=True):
            label = member.label
            if not flagged or label in self.value_diverged or label in self.diverged:
                continue
            name = f"Seed {label}" if "/" not in label else label
            what = (
                f"its critics value its own actions at Q = {q:.4g}, outside the bounds "
                f"[{b.lower:.4g}, {b.upper:.4g}] that the dataset's rewards allow "
                f"(best discounted return in the data {b.best_return:.4g})"
            )
            if self.config.halt_on_divergence:
                last = self.ckpt.latest_step()
                kept = (
                    f"the last checkpoint (step {last}) is intact"
                    if last
                    else "no checkpoint was written"
                )
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

    def _postfix(self) -> str:
        kind = "critic" if self.agent.has_critic else "loss"
        text = f"{self.last_rate:.0f} upd/s, {kind} {self.last_loss:.3g}"
        q = self.last_diagnostics.get("diag/q_policy_mean")
        if q is not None and np.isfinite(q).any():
            text += f", Q max {np.nanmax(q):.0f} (bound {self.bounds.upper:.0f})"
        return text

    def _check_divergence(self, finite: np.ndarray, step: int) -> None:
        """Mark newly non-finite members; with halt_on_divergence stop before keeping the chunk."""
        for member, ok in zip(self.members, finite, strict=True):
            if ok or member.label in self.diverged:
                continue
            name = f"Seed {member.label}" if "/" not in member.label else member.label
            if self.config.halt_on_divergence:
                last = self.ckpt.latest_step()
                kept = (
                    f"the last checkpoint (step {last}) is intact"
                    if last
                    else "no checkpoint was written"
                )
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
            entry["diagnostics"] = {k: _finite_or_none(v) for k, v in self.last_diagnostics.items()}
        healthy = np.array([m.label not in self.diverged for m in self.members])
        entry["candidates"] = eval_variants(c, self.agent.has_critic)[0][0]
        variants = eval_variants(c, self.agent.has_critic, self.agent.eval_options)
        for num_candidates, suffix, kwargs in variants:
            returns = self.evaluator.evaluate(
                states, self.values, self.step, num_candidates, healthy, sample_kwargs=kwargs
            )
            scores = normalized_score(returns, self.ref).mean(axis=1)
            entry[f"scores{suffix}"] = _finite_or_none(scores)
            entry[f"returns{suffix}"] = _finite_or_none(returns.mean(axis=1))
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
        }
        self.ckpt.save(self.step, self.states, meta)

    def _summaries(self, final: dict[str, Any], members: list[int]) -> dict[str, Any]:
        out: dict[str, Any] = {"final_scores": [], "mean": None, "std": None}
        suffixes = [v[1] for v in eval_variants(self.config, True, self.agent.eval_options)]
        for suffix in dict.fromkeys(["", "_one_step", *suffixes]):
            if f"scores{suffix}" not in final:
                continue
            picked = [final[f"scores{suffix}"][i] for i in members]
            scores = np.array([np.nan if v is None else v for v in picked])
            alive = np.array([self.members[i].label not in self.diverged for i in members])
            mean, std = _mean_std(scores, alive & np.isfinite(scores))
            out[f"final_scores{suffix}"] = picked
            out[f"mean{suffix}"], out[f"std{suffix}"] = mean, std
        return out

    def results(self) -> dict[str, Any]:
        c = self.config
        final = self.evaluations[-1] if self.evaluations else {}
        rate = self.timed_steps / self.timed_seconds if self.timed_steps else None
        results: dict[str, Any] = {
            "algorithm": c.algorithm,
            "task": c.task,
            "dataset_id": ",".join(self.dataset_ids),
            "data_source": self.data_choice.source,
            "data_source_reason": self.data_choice.reason,
            "dataset_sha256": self.dataset_hash,
            "num_seeds": c.num_seeds,
            "seeds": seed_values(c.seed, c.num_seeds),
            "steps": self.step,
            "score_normalization": self.ref_source,
            "protocol": c.protocol,
            "protocol_settings": {f: _get_field(c, f) for f in PROTOCOL_FIELDS},
            "eval_candidates": eval_variants(c, self.agent.has_critic)[0][0],
            "eval_settings": {
                **eval_sample_kwargs(c),
                "candidates": eval_variants(c, self.agent.has_critic)[0][0],
                "episodes_per_seed": c.eval_episodes,
                "one_step": "N = 1, noise x 1, same actor" if c.eval_one_step else None,
                "max_envs": c.eval_max_envs,
            },
            "diverged_seeds": dict(self.diverged),
            "value_diverged_seeds": dict(self.value_diverged),
            "value_bounds": self.bounds.to_dict(),
            "data_saturation": self.data_saturation,
            "diagnostics": {k: _finite_or_none(v) for k, v in self.last_diagnostics.items()},
            "updates_per_second": rate,
            "seed_updates_per_second": rate * len(self.members) if rate else None,
            "compile_seconds": self.trainer.compile_seconds,
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

    def run(self) -> dict[str, Any]:
        """Train to ``num_steps`` with evaluation, logging and checkpoints; write results.json.

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
                        raise OFQLError(
                            f"Stopped by {stop.name} at step {self.step} "
                            "after saving a checkpoint: re-run the same command to resume."
                        )
            results = self.results()
            if self.is_main:
                write_json_atomic(self.workdir / "results.json", results)
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


def transitions_hash(transitions: Transitions) -> str:
    """SHA-256 of the dataset exactly as trained on (after flattening, scaling, reward tune)."""
    digest = hashlib.sha256()
    for name in ("observations", "actions", "rewards", "next_observations", "dones"):
        array = np.ascontiguousarray(getattr(transitions, name))
        digest.update(f"{name}{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


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

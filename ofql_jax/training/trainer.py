"""The multi-seed training program: one jitted call runs a ``lax.scan`` of K updates per seed.

``make_train_chunk`` is the pure building block (importable into any loop);
``MultiSeedTrainer`` vmaps it over seeds (in groups, split over devices, see
``ofql_jax.training.parallel``) and compiles it once per chunk length. ``Experiment``
(``ofql_jax.training.experiment``) drives it with data, evaluation and outputs.

Example:
    >>> import jax, ofql_jax
    >>> agent = ofql_jax.make_ofql(ofql_jax.default_config(), obs_dim=3, act_dim=2)
    >>> states = init_states(agent, seed_values(0, 2))
    >>> int(states.step.shape[0])
    2
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from ofql_jax.agents import Agent, AgentState
from ofql_jax.core.types import Transitions
from ofql_jax.training.parallel import SEED_AXIS, grouped_vmap, resolve_group_size, seed_sharding

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


def _sample_index(key: jax.Array, batch_size: int, data: Transitions, where) -> jax.Array:
    """``batch_size`` indices into ``data``: uniform over all of it, or over the member's own
    dataset ``where = (first, size)`` inside a multi-dataset program's concatenation (the same
    indices, shifted, as a single-dataset run of that size draws)."""
    if where is None:
        return jax.random.randint(key, (batch_size,), 0, data.size)
    return where[0] + jax.random.randint(key, (batch_size,), 0, where[1])


def make_train_chunk(
    agent: Agent, batch_size: int, num_updates: int
) -> Callable[..., tuple[AgentState, dict[str, jax.Array]]]:
    """A pure function running ``num_updates`` updates for ONE seed, batches sampled on device.

    Returns the new state and the chunk's metrics averaged over its updates, plus
    ``finite`` (1.0 if every metric and parameter stayed finite). ``vmap`` it over
    seeds with the dataset unmapped: ``jax.vmap(chunk, in_axes=(0, None))``. In a
    multi-dataset program ``data`` is every dataset concatenated and the third argument,
    ``where = (first, size)`` (int32, mapped like the states), is the member's own.

    Example:
        >>> chunk = make_train_chunk(agent, batch_size=256, num_updates=1000)  # doctest: +SKIP
        >>> train = jax.jit(jax.vmap(chunk, in_axes=(0, None)))
        >>> states, metrics = train(states, dataset)
    """

    def chunk(state: AgentState, data: Transitions, where: jax.Array | None = None):
        def body(state: AgentState, _):
            rng, k_batch = jax.random.split(jax.random.wrap_key_data(state.rng))
            idx = _sample_index(k_batch, batch_size, data, where)
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
    resumed run) unchanged. Returns ``fn(states, data, seed_values [members], step,
    where=None)``, ``where`` as in ``make_train_chunk`` (per member, or None).
    """

    def one(state: AgentState, data: Transitions, seed_value: jax.Array, step: jax.Array,
            where: jax.Array | None):  # fmt: skip
        key = jax.random.fold_in(
            jax.random.fold_in(jax.random.key(DIAGNOSTIC_ROOT), seed_value), step
        )
        k_index, k_diag = jax.random.split(key)
        index = _sample_index(k_index, batch_size, data, where)
        return agent.diagnose(state, jax.tree.map(lambda x: x[index], data), k_diag)

    batched = jax.jit(jax.vmap(one, in_axes=(0, None, 0, None, 0)))

    def diagnostics(states, data, seed_values, step, where=None):
        return batched(states, data, seed_values, step, where)

    return diagnostics


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
    ``ofql_jax.training.parallel``). With a ``mesh``: the same per device under ``shard_map``,
    the seed axis split over the devices and the dataset replicated.
    """

    def __init__(
        self, agent: Agent, batch_size: int, mesh: Mesh | None = None, seeds_per_group: int = 0
    ):
        self.agent, self.batch_size, self.mesh = agent, batch_size, mesh
        self.seeds_per_group = seeds_per_group
        self._compiled: dict[tuple, Any] = {}
        self.compile_seconds = 0.0

    def _program(self, num_updates: int, num_members: int, sliced: bool):
        chunk = make_train_chunk(self.agent, self.batch_size, num_updates)
        devices = 1 if self.mesh is None else self.mesh.size
        group = resolve_group_size(self.seeds_per_group, num_members // devices)
        per_device = grouped_vmap(chunk, group, sliced)
        if self.mesh is None:
            return jax.jit(per_device, donate_argnums=0)
        spec = P(SEED_AXIS)
        in_specs = (spec, P(), spec) if sliced else (spec, P())
        sharded = jax.shard_map(
            per_device, mesh=self.mesh, in_specs=in_specs, out_specs=(spec, spec)
        )
        return jax.jit(sharded, donate_argnums=0)

    def compile(self, states: AgentState, data: Transitions, num_updates: int,
                where: jax.Array | None = None):  # fmt: skip
        """The compiled chunk for these shapes (built once; ``compile_seconds`` grows by the
        time taken). Thread-safe enough to build several trainers' programs concurrently.
        ``where`` [members, 2]: each member's (first, size) in a multi-dataset program."""
        num_members = states.step.shape[0]
        cache_key = (num_updates, num_members, data.size, where is not None)
        if cache_key not in self._compiled:
            start = time.perf_counter()
            fn = self._program(num_updates, num_members, where is not None)
            args = (states, data) if where is None else (states, data, where)
            self._compiled[cache_key] = fn.lower(*args).compile()
            self.compile_seconds += time.perf_counter() - start
        return self._compiled[cache_key]

    def timed(self, states: AgentState, data: Transitions, num_updates: int,
              where: jax.Array | None = None):  # fmt: skip
        """``self(...)`` with the metrics on the host and the updates/s, compile time left
        out (``compile_seconds`` grows by it): ``(states, metrics, rate)``."""
        compiled_before = self.compile_seconds
        start = time.perf_counter()
        states, metrics = self(states, data, num_updates, where)
        metrics = fetch(metrics)
        elapsed = time.perf_counter() - start - (self.compile_seconds - compiled_before)
        return states, metrics, num_updates / max(elapsed, 1e-9)

    def __call__(self, states: AgentState, data: Transitions, num_updates: int,
                 where: jax.Array | None = None):  # fmt: skip
        compiled = self.compile(states, data, num_updates, where)
        return compiled(states, data) if where is None else compiled(states, data, where)


def fetch(tree):
    """Device arrays -> host numpy, gathering from every process in multi-host runs."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)

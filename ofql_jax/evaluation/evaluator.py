"""Evaluation in bounded waves: one jitted policy call per env step for all envs of a wave.

The ``num_seeds x num_episodes`` episodes of an evaluation run in waves of at most ``max_envs``
environments laid out as a ``[seeds, episodes]`` grid, so one call of ``sample_actions``
(vmapped over a seed's episodes and over seeds) acts for the whole wave; the last wave is padded
to the grid's shape, so the policy compiles once. Environments step in this process or in
``num_workers`` worker processes (``ofql_jax.evaluation.env_pool``).

Randomness never depends on how episodes are grouped: episode e of seed value v at training
step s resets with ``episode_env_seed(v, s, e)`` and acts at its time step t with the key
``fold_in(fold_in(fold_in(key(v), s), e), t)``. Both derive from ``(seed value, step)``, never
from the training RNG, so an evaluation does not perturb training, a resumed run evaluates
identically, and the number of worker processes never changes a return. ``max_envs`` (the wave
shape) can: XLA may round the policy's matmuls differently for another batch shape (seen: 1e-7
on CPU), and MuJoCo can amplify that over a long episode, so keep it fixed to compare runs.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import gymnasium as gym
import jax
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from ofql_jax.agents import Agent, AgentState
from ofql_jax.core.errors import OFQLError
from ofql_jax.data import DatasetInfo
from ofql_jax.evaluation.env_pool import DatasetEnvFactory, LocalEnvPool, ProcessEnvPool


class EvaluationStopped(Exception):
    """An evaluation abandoned because its ``should_stop`` answered True (a stop request)."""


def normalized_score(returns: np.ndarray, ref_scores: tuple[float, float] | None) -> np.ndarray:
    """D4RL's ``100 * (R - R_random) / (R_expert - R_random)``; raw returns if no reference.

    Example:
        >>> normalized_score(np.array([3234.3]), (-20.272305, 3234.3)).round(1).tolist()
        [100.0]
    """
    if ref_scores is None:
        return np.asarray(returns, np.float64)
    low, high = ref_scores
    return 100.0 * (np.asarray(returns, np.float64) - low) / (high - low)


def reference_scores(
    info: DatasetInfo, task_ref: tuple[float, float] | None, use_task_ref: bool
) -> tuple[tuple[float, float] | None, str]:
    """Pick the normalisation: dataset metadata, else the task's D4RL table, else none.

    Returns ``(scores or None, source)`` with source ``dataset`` | ``d4rl_table`` | ``raw``.
    """
    if info.ref_min_score is not None and info.ref_max_score is not None:
        return (float(info.ref_min_score), float(info.ref_max_score)), "dataset"
    if use_task_ref and task_ref is not None:
        return tuple(task_ref), "d4rl_table"
    print(
        f"Warning: dataset {info.dataset_ids[0]} has no reference scores (and "
        "--config.normalize_with_task is off): scores are raw undiscounted returns.",
        file=sys.stderr,
    )
    return None, "raw"


# Evaluation-time env kwargs that restore D4RL's episode semantics where a Minari dataset's
# recorded env differs. Minari's D4RL kitchen datasets were collected, and record their (only)
# env spec, with remove_task_when_completed=False and terminate_on_tasks_completed=False, so a
# finished subtask would pay 1 again on every later step (returns up to 4 x 280). D4RL's kitchen,
# and FrankaKitchen-v1's own defaults, pay each subtask once and end the episode when all are
# done: the returns of 0..4 that the (0, 4) reference scores assume.
EVAL_ENV_OVERRIDES: dict[str, dict[str, object]] = {
    "FrankaKitchen": dict(remove_task_when_completed=True, terminate_on_tasks_completed=True),
}


def eval_env_kwargs(info: DatasetInfo) -> dict[str, object]:
    """The kwargs ``Evaluator`` passes to ``info.make_env`` (see ``EVAL_ENV_OVERRIDES``).

    Example:
        >>> eval_env_kwargs(kitchen_info)  # doctest: +SKIP
        {'remove_task_when_completed': True, 'terminate_on_tasks_completed': True}
    """
    spec = info.env_spec
    return dict(EVAL_ENV_OVERRIDES.get(spec.name, {})) if spec is not None else {}


def episode_env_seed(seed_value: int, step: int, episode: int) -> int:
    """The reset seed of episode ``episode`` of seed value ``seed_value`` at training ``step``."""
    return int(np.random.SeedSequence([seed_value, step, episode]).generate_state(1)[0])


def action_keys(
    seed_values: jax.Array, step: jax.Array, episodes: jax.Array, t: jax.Array
) -> jax.Array:
    """Action keys ``[seeds, episodes]``: ``fold_in(fold_in(fold_in(key(v), step), e), t)``.

    A key names one (seed value, episode, env time step), whatever else shares its wave.

    Example:
        >>> keys = action_keys(np.uint32([3]), np.uint32(100), np.uint32([7]), np.uint32(2))
        >>> direct = jax.random.fold_in(jax.random.fold_in(
        ...     jax.random.fold_in(jax.random.key(3), 100), 7), 2)
        >>> bool((jax.random.key_data(keys[0, 0]) == jax.random.key_data(direct)).all())
        True
    """

    def for_seed(value: jax.Array) -> jax.Array:
        base = jax.random.fold_in(jax.random.key(value), step)
        return jax.vmap(lambda e: jax.random.fold_in(jax.random.fold_in(base, e), t))(episodes)

    return jax.vmap(for_seed)(seed_values)


@functools.partial(jax.jit, static_argnames=("sample_actions", "num_candidates", "sample_kwargs"))
def wave_actions(
    states: AgentState,
    obs: jax.Array,
    seed_values: jax.Array,
    step: jax.Array,
    episodes: jax.Array,
    t: jax.Array,
    *,
    sample_actions: Callable[..., jax.Array],
    num_candidates: int,
    sample_kwargs: tuple[tuple[str, Any], ...] = (),
) -> jax.Array:
    """Actions ``[S, K, act]`` for a wave's observations ``[S, K, obs]`` (row i: seed i's state
    and value ``seed_values[i]``; column j: episode ``episodes[j]``) at env time step ``t``.

    Module-level, so every ``Evaluator`` of the same agent shares the compiled executables.
    """
    keys = action_keys(seed_values, step, episodes, t)

    def act(state: AgentState, o: jax.Array, key: jax.Array) -> jax.Array:
        return sample_actions(state, o, key, num_candidates, **dict(sample_kwargs))

    per_seed = jax.vmap(act, in_axes=(None, 0, 0))  # a seed's episodes share its state
    return jax.vmap(per_seed)(states, obs, keys)  # and every seed of the wave


def _usable_cpus() -> int:
    """``os.cpu_count()``, restricted to this process's CPU affinity where the OS has one."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@jax.jit
def _take_rows(tree: Any, rows: jax.Array) -> Any:
    return jax.tree.map(lambda x: x[rows], tree)


def wave_shape(num_seeds: int, num_episodes: int, max_envs: int) -> tuple[int, int]:
    """The ``(seeds, episodes)`` grid of every wave: as many seeds as fit, then episodes.

    Seeds first, so that with ``num_seeds <= max_envs`` every wave holds all seeds and the
    stacked states are used as they are (no gather of per-seed parameters).

    Example:
        >>> wave_shape(3, 150, 150), wave_shape(3, 10, 150), wave_shape(4, 10, 2)
        ((3, 50), (3, 10), (2, 1))
    """
    seeds = min(num_seeds, max_envs)
    return seeds, min(num_episodes, max_envs // seeds)


class Evaluator:
    """Runs ``num_episodes`` episodes per seed for a stacked (vmapped) agent state.

    At most ``max_envs`` environments exist; they are built once (from the dataset's env spec
    with ``eval_env_kwargs``, D4RL's kitchen semantics) and reused by every wave. With
    ``num_workers`` > 1 (0: every usable CPU core) they live in that many worker processes, which
    changes no return. ``sample_kwargs`` are passed to ``agent.sample_actions`` as static
    keyword arguments. ``evaluate`` returns undiscounted returns ``[num_seeds, num_episodes]``;
    ``close`` stops the workers.

    Example:
        >>> evaluator = Evaluator(agent, info, num_seeds=2, num_episodes=10)  # doctest: +SKIP
        >>> returns = evaluator.evaluate(states, seed_values=[0, 1], step=0)  # doctest: +SKIP
    """

    def __init__(
        self,
        agent: Agent,
        info: DatasetInfo,
        num_seeds: int,
        num_episodes: int,
        *,
        max_envs: int = 150,
        num_workers: int = 1,
        sample_kwargs: Mapping[str, Any] | None = None,
    ):
        if num_seeds < 1 or num_episodes < 1:
            raise OFQLError(
                f"Evaluation needs at least one seed and one episode (got {num_seeds} seeds and "
                f"{num_episodes} episodes): set --config.eval_episodes to 0 to turn it off."
            )
        if max_envs < 1 or num_workers < 0:
            raise OFQLError(
                f"Evaluation got max_envs={max_envs} and num_workers={num_workers}: max_envs "
                "must be at least 1 and num_workers at least 0 (0 uses every CPU core)."
            )
        self.agent, self.info = agent, info
        self.num_seeds, self.num_episodes, self.max_envs = num_seeds, num_episodes, max_envs
        self.sample_kwargs = dict(sample_kwargs or {})
        self.wave_shape = wave_shape(num_seeds, num_episodes, max_envs)
        capacity = self.wave_shape[0] * self.wave_shape[1]
        workers = min(num_workers or _usable_cpus(), capacity)
        factory = DatasetEnvFactory(info, eval_env_kwargs(info))
        space = info.observation_space
        self.pool: LocalEnvPool | ProcessEnvPool = (
            LocalEnvPool(factory, space, capacity)
            if workers == 1
            else ProcessEnvPool(factory, space, capacity, workers)
        )
        self.num_workers = workers
        self.last_episode_lengths = np.zeros((num_seeds, num_episodes), np.int64)

    @property
    def envs(self) -> list[gym.Env]:
        """The in-process environments (empty when they live in worker processes)."""
        return self.pool.envs if isinstance(self.pool, LocalEnvPool) else []

    def _wave_policy(
        self, num_candidates: int, sample_kwargs: Mapping[str, Any] | None = None
    ) -> Callable[..., jax.Array]:
        kwargs = {**self.sample_kwargs, **(sample_kwargs or {})}
        return functools.partial(
            wave_actions,
            sample_actions=self.agent.sample_actions,
            num_candidates=num_candidates,
            sample_kwargs=tuple(sorted(kwargs.items())),
        )

    def _wave_states(self, states: AgentState, rows: np.ndarray) -> AgentState:
        """The states of a wave's grid rows (the stack itself when the rows are all seeds)."""
        if len(rows) == self.num_seeds:
            return states
        return _take_rows(states, rows.astype(np.int32))

    def compile(
        self,
        states: AgentState,
        num_candidates: int = 50,
        sample_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """Compile the wave policy of ``evaluate`` now, e.g. to time evaluations alone."""
        rows, cols = self.wave_shape
        policy = self._wave_policy(num_candidates, sample_kwargs)
        actions = policy(
            self._wave_states(states, np.arange(rows)),
            np.zeros((rows, cols, self.info.obs_dim), np.float32),
            np.zeros(rows, np.uint32), np.uint32(0), np.zeros(cols, np.uint32), np.uint32(0),
        )  # fmt: skip
        jax.block_until_ready(actions)

    def waves(self, mask: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(rows, episodes)`` of each wave: the wave's seed indices (grid rows, including
        masked or missing ones) and its episode indices (grid columns, maybe fewer than K).

        A seed keeps its grid row whichever seeds are masked, so masking one seed does not
        change the shape or the neighbours of another's computation.
        """
        rows_per_wave, cols_per_wave = self.wave_shape
        for first_seed in range(0, self.num_seeds, rows_per_wave):
            rows = np.arange(first_seed, first_seed + rows_per_wave)
            if not mask[rows[rows < self.num_seeds]].any():
                continue
            for first in range(0, self.num_episodes, cols_per_wave):
                yield rows, np.arange(first, min(first + cols_per_wave, self.num_episodes))

    def evaluate(
        self,
        states: AgentState,
        seed_values: Sequence[int],
        step: int,
        num_candidates: int = 50,
        seed_mask: np.ndarray | None = None,
        *,
        sample_kwargs: Mapping[str, Any] | None = None,
        progress: bool | str = False,
        should_stop: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """Undiscounted returns ``[num_seeds, num_episodes]`` of each seed's policy at ``step``.

        Seeds with ``seed_mask`` False (e.g. diverged ones) are not run and get NaN. Each
        episode's length is left in ``last_episode_lengths`` (0 where not run).
        ``sample_kwargs`` update the evaluator's for this call (e.g. noise x 1 for N = 1);
        ``progress`` shows a bar over the waves (a string: with that description).
        ``should_stop`` is asked at every environment step; once it answers True the
        evaluation is abandoned with ``EvaluationStopped`` (a stop request, within seconds).
        """
        num_seeds, num_episodes = self.num_seeds, self.num_episodes
        if len(seed_values) != num_seeds:
            raise ValueError(f"{len(seed_values)} seed values for {num_seeds} seeds")
        mask = np.ones(num_seeds, bool) if seed_mask is None else np.asarray(seed_mask, bool)
        returns = np.full((num_seeds, num_episodes), np.nan)
        self.last_episode_lengths[:] = 0
        policy = self._wave_policy(num_candidates, sample_kwargs)
        values = np.asarray(seed_values, np.uint32)
        rows_per_wave, cols_per_wave = self.wave_shape
        waves = list(self.waves(mask))
        desc = progress if isinstance(progress, str) else None
        bar = tqdm(total=len(waves), unit="wave", disable=not progress, leave=False, desc=desc)
        try:
            for rows, episodes in waves:
                obs_grid = np.zeros((rows_per_wave, cols_per_wave, self.info.obs_dim), np.float32)
                valid = rows[rows < num_seeds]
                # Rows past the last seed repeat it: their actions are computed and discarded.
                rows = np.minimum(rows, num_seeds - 1)
                wave_states = self._wave_states(states, rows)
                seed_idx = np.repeat(valid[mask[valid]], len(episodes))  # the wave's envs
                episode_idx = np.tile(episodes, len(seed_idx) // len(episodes))
                grid = (seed_idx - rows[0], episode_idx - episodes[0])
                padded_episodes = (episodes[0] + np.arange(cols_per_wave)).astype(np.uint32)
                seeds = [
                    episode_env_seed(int(seed_values[i]), step, int(e))
                    for i, e in zip(seed_idx, episode_idx, strict=True)
                ]
                obs = self.pool.reset(seeds)
                wave_returns = np.zeros(len(seeds))
                lengths = np.zeros(len(seeds), np.int64)
                active = np.ones(len(seeds), bool)
                t = 0
                while active.any():
                    if should_stop is not None and should_stop():
                        raise EvaluationStopped(f"the evaluation at step {step} was abandoned")
                    obs_grid[grid] = obs
                    actions = policy(
                        wave_states, obs_grid, values[rows], np.uint32(step), padded_episodes,
                        np.uint32(t),
                    )  # fmt: skip
                    actions = self.info.scaler.from_unit(np.asarray(actions)[grid])
                    next_obs, rewards, terminated, truncated = self.pool.step(actions, active)
                    wave_returns[active] += rewards[active]
                    lengths[active] += 1
                    obs[active] = next_obs[active]
                    active &= ~(terminated | truncated)
                    t += 1
                    if progress and t % 100 == 0:
                        bar.set_postfix_str(f"env step {t}, {int(active.sum())} running")
                returns[seed_idx, episode_idx] = wave_returns
                self.last_episode_lengths[seed_idx, episode_idx] = lengths
                bar.update()
        finally:
            bar.close()
        return returns

    def close(self) -> None:
        self.pool.close()


def eval_sample_kwargs(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The protocol's selection settings, passed to ``agent.sample_actions``."""
    return dict(
        actor=config.eval_actor,
        noise_temperature=float(config.eval_noise_temperature),
        q_temperature=float(config.eval_q_temperature),
    )

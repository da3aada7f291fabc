"""Vectorised evaluation: seeds x episodes environments, one jitted policy call per env step.

Every environment of every seed advances together; one call of the vmapped
``sample_actions`` produces all their actions. Environment seeds and action keys
derive from ``(seed value, training step)``, never from the training RNG, so an
evaluation does not perturb training and a resumed run evaluates identically.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.agents import Agent, AgentState
from ofql_jax.data import DatasetInfo, flatten_observation


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


def _env_seed(seed_value: int, step: int, episode: int) -> int:
    return int(np.random.SeedSequence([seed_value, step, episode]).generate_state(1)[0])


class Evaluator:
    """Runs ``num_episodes`` episodes per seed for a stacked (vmapped) agent state.

    Environments are built once and reused, from the dataset's env spec with
    ``eval_env_kwargs`` (D4RL's kitchen semantics). ``evaluate`` returns undiscounted
    returns of shape ``[num_seeds, num_episodes]``.

    Example:
        >>> evaluator = Evaluator(agent, info, num_seeds=2, num_episodes=10)  # doctest: +SKIP
        >>> returns = evaluator.evaluate(states, seed_values=[0, 1], step=0, num_candidates=50)
    """

    def __init__(self, agent: Agent, info: DatasetInfo, num_seeds: int, num_episodes: int):
        self.agent, self.info = agent, info
        self.num_seeds, self.num_episodes = num_seeds, num_episodes
        kwargs = eval_env_kwargs(info)
        self.envs: list[gym.Env] = [
            info.make_env(**kwargs) for _ in range(num_seeds * num_episodes)
        ]
        self._policies: dict[int, object] = {}

    def _policy(self, num_candidates: int):
        if num_candidates not in self._policies:
            sample = lambda state, obs, key: self.agent.sample_actions(  # noqa: E731
                state, obs, key, num_candidates
            )
            self._policies[num_candidates] = jax.jit(jax.vmap(sample))
        return self._policies[num_candidates]

    def evaluate(
        self,
        states: AgentState,
        seed_values: Sequence[int],
        step: int,
        num_candidates: int = 50,
        seed_mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Undiscounted returns ``[num_seeds, num_episodes]`` of each seed's policy at ``step``.

        Seeds with ``seed_mask`` False (e.g. diverged ones) are not run and get NaN.
        """
        num_seeds, num_episodes = self.num_seeds, self.num_episodes
        policy = self._policy(num_candidates)
        space, scaler = self.info.observation_space, self.info.scaler
        mask = np.ones(num_seeds, bool) if seed_mask is None else np.asarray(seed_mask, bool)
        active = np.repeat(mask, num_episodes)
        obs = np.zeros((num_seeds * num_episodes, self.info.obs_dim), np.float32)
        for i in np.flatnonzero(active):
            seed_value = seed_values[i // num_episodes]
            raw, _ = self.envs[i].reset(seed=_env_seed(seed_value, step, i % num_episodes))
            obs[i] = flatten_observation(raw, space)
        returns = np.where(active, 0.0, np.nan)
        base_keys = jax.vmap(lambda v: jax.random.fold_in(jax.random.key(v), step))(
            jnp.asarray(seed_values, jnp.uint32)
        )
        t = 0
        while active.any():
            keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(base_keys, t)
            actions = policy(states, jnp.asarray(obs.reshape(num_seeds, num_episodes, -1)), keys)
            actions = scaler.from_unit(np.asarray(actions).reshape(num_seeds * num_episodes, -1))
            for i in np.flatnonzero(active):
                raw, reward, terminated, truncated, _ = self.envs[i].step(actions[i])
                returns[i] += float(reward)
                obs[i] = flatten_observation(raw, space)
                active[i] = not (terminated or truncated)
            t += 1
        return returns.reshape(num_seeds, num_episodes)

    def close(self) -> None:
        for env in self.envs:
            env.close()

"""Write small, real Minari datasets for tests with Minari's own writers.

Every helper writes into the current ``MINARI_DATASETS_PATH`` (tests set it to a tmp dir with
the ``minari_dir`` fixture) and returns the ``MinariDataset``. Episodes are seeded
(``reset(seed=seed + episode)``) so datasets are reproducible; random actions make Hopper fall
(terminations) while a short ``max_episode_steps`` produces time-limit truncations.

Example:
    >>> dataset = make_hopper_dataset(num_steps=200)  # doctest: +SKIP
    >>> dataset.total_steps  # doctest: +SKIP
    200
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gymnasium as gym
import minari
import numpy as np
from minari.data_collector.episode_buffer import EpisodeBuffer

from ofql_jax.data.collect import collect_dataset as collect
from ofql_jax.data.collect import random_action, register_robotics

_METADATA = dict(
    algorithm_name="random",
    author="ofql_jax tests",
    author_email="tests@example.invalid",
    code_permalink="https://example.invalid/ofql_jax/tests/minari_factory.py",
    description="Tiny dataset written by ofql_jax's test suite.",
)

ActionFn = Callable[[gym.Env, np.random.Generator], Any]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the nags that do not apply to throwaway test data."""
    with warnings.catch_warnings():
        # We deliberately test datasets without an eval env (env_spec fallback).
        warnings.filterwarnings("ignore", message=r"`eval_env` is set to None")
        warnings.filterwarnings("ignore", message=r".*is out of date", category=DeprecationWarning)
        yield


def collect_dataset(
    dataset_id: str,
    env_id: str,
    num_steps: int,
    max_episode_steps: int,
    seed: int = 0,
    ref_scores: tuple[float, float] | None = None,
    eval_env: gym.Env | str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    action_fn: ActionFn = random_action,
) -> minari.MinariDataset:
    """``ofql_jax.data.collect.collect_dataset`` with test metadata and a short time limit.

    ``ref_scores`` = (min, max) are stored as metadata ``ref_min_score``/``ref_max_score``
    (None stores neither; giving only max would make Minari roll out 100 random episodes).
    Without ``eval_env`` the dataset's own (short) env is its evaluation env.
    """
    with _quiet():
        return collect(
            dataset_id,
            env_id,
            num_steps,
            action_fn,
            seed,
            max_episode_steps,
            env_kwargs,
            eval_env,
            ref_scores,
            _METADATA,
        )


def make_hopper_dataset(
    dataset_id: str = "test/hopper/random-v0",
    num_steps: int = 300,
    max_episode_steps: int = 40,
    seed: int = 0,
    ref_scores: tuple[float, float] | None = None,
) -> minari.MinariDataset:
    """Random-action Hopper-v5: falls give terminations, the 40-step limit truncations."""
    return collect_dataset(
        dataset_id, "Hopper-v5", num_steps, max_episode_steps, seed, ref_scores=ref_scores
    )


def make_antmaze_dataset(
    dataset_id: str = "test/antmaze/umaze-v0",
    num_steps: int = 60,
    max_episode_steps: int = 20,
    seed: int = 0,
    ref_scores: tuple[float, float] | None = (0.0, 1.0),
    reward_type: str = "dense",
) -> minari.MinariDataset:
    """Random-action AntMaze_UMaze-v5 (Dict observations, Box(-1, 1, (8,)) actions).

    Dense rewards by default so the reward tune is checked on varied values; the dataset
    records a distinct eval env (longer time limit) as Minari's D4RL AntMaze datasets do.
    """
    register_robotics()
    eval_env = gym.spec("AntMaze_UMaze-v5")  # registry default: 700 steps
    return collect_dataset(
        dataset_id,
        "AntMaze_UMaze-v5",
        num_steps,
        max_episode_steps,
        seed,
        ref_scores=ref_scores,
        eval_env=eval_env,
        env_kwargs=dict(reward_type=reward_type),
    )


def _bounds_heavy_action(env: gym.Env, rng: np.random.Generator) -> np.ndarray:
    """Uniform actions, but a quarter of them exactly on a bound (exercises the clip)."""
    space = env.action_space
    if rng.random() < 0.25:
        return np.where(rng.random(space.shape) < 0.5, space.low, space.high).astype(space.dtype)
    return rng.uniform(space.low, space.high).astype(space.dtype)


def make_inverted_pendulum_dataset(
    dataset_id: str = "test/invertedpendulum/random-v0",
    num_steps: int = 120,
    max_episode_steps: int = 30,
    seed: int = 0,
) -> minari.MinariDataset:
    """InvertedPendulum-v5, whose action Box is [-3, 3]: checks the rescaling to [-1, 1]."""
    return collect_dataset(
        dataset_id,
        "InvertedPendulum-v5",
        num_steps,
        max_episode_steps,
        seed,
        action_fn=_bounds_heavy_action,
    )


def make_cartpole_dataset(
    dataset_id: str = "test/cartpole/random-v0", num_steps: int = 50, seed: int = 0
) -> minari.MinariDataset:
    """CartPole-v1 (Discrete(2) actions), which OFQL must refuse."""
    return collect_dataset(dataset_id, "CartPole-v1", num_steps, 20, seed)


def make_hopper_buffers_dataset(
    dataset_id: str,
    episode_lengths: Sequence[int],
    terminations: Sequence[Sequence[bool]],
    truncations: Sequence[Sequence[bool]],
    seed: int = 0,
    corrupt: Callable[[list[dict[str, np.ndarray]]], None] | None = None,
) -> tuple[minari.MinariDataset, list[dict[str, np.ndarray]]]:
    """Hand-made Hopper-shaped episodes via ``minari.create_dataset_from_buffers``.

    Flags are given per step, so cases a real env rarely yields (terminated AND truncated on
    the same step) can be written. ``corrupt`` may edit the raw episode dicts (e.g. put a NaN)
    before they are written. Returns the dataset and the raw episodes as written.
    """
    rng = np.random.default_rng(seed)
    raw: list[dict[str, np.ndarray]] = []
    for steps, term, trunc in zip(episode_lengths, terminations, truncations, strict=True):
        raw.append(
            dict(
                observations=rng.normal(size=(steps + 1, 11)),
                actions=rng.uniform(-1, 1, size=(steps, 3)).astype(np.float32),
                rewards=rng.normal(size=steps),
                terminations=np.asarray(term, dtype=bool),
                truncations=np.asarray(trunc, dtype=bool),
            )
        )
    if corrupt is not None:
        corrupt(raw)
    buffers = [
        EpisodeBuffer(
            id=i,
            observations=ep["observations"],
            actions=ep["actions"],
            rewards=list(ep["rewards"]),
            terminations=list(ep["terminations"]),
            truncations=list(ep["truncations"]),
        )
        for i, ep in enumerate(raw)
    ]
    with _quiet():
        dataset = minari.create_dataset_from_buffers(
            dataset_id, buffers, env="Hopper-v5", eval_env="Hopper-v5", **_METADATA
        )
    return dataset, raw


# --- D4RL-like AntMaze and Kitchen (tests/test_domains.py) -----------------------------------

# Gymnasium-Robotics map cells: 1 wall, 0 free, "r" reset cell, "g" goal cell.
# Minari's D4RL AntMaze umaze datasets were collected on this map (goal top left, start bottom
# left) and record an evaluation env on the mirrored one (minari-dataset-generation-scripts,
# scripts/D4RL/antmaze/create_antmaze_dataset.py).
D4RL_UMAZE_MAP = [
    [1, 1, 1, 1, 1],
    [1, "g", 0, 0, 1],
    [1, 1, 1, 0, 1],
    [1, "r", 0, 0, 1],
    [1, 1, 1, 1, 1],
]
D4RL_UMAZE_EVAL_MAP = [
    [1, 1, 1, 1, 1],
    [1, 0, 0, "r", 1],
    [1, 0, 1, 1, 1],
    [1, 0, 0, "g", 1],
    [1, 1, 1, 1, 1],
]
UMAZE_GOAL_CELL = (1, 1)  # the "g" cell of D4RL_UMAZE_MAP

# D4RL's kitchen-complete / kitchen-partial target subtasks (kitchen-mixed swaps the slide
# cabinet for the bottom burner).
KITCHEN_COMPLETE_TASKS = ["microwave", "kettle", "light switch", "slide cabinet"]
MICROWAVE_QPOS = 22  # the microwave door's hinge in FrankaKitchen-v1's qpos
MICROWAVE_GOAL = -0.75  # its goal angle (gymnasium_robotics OBS_ELEMENT_GOALS["microwave"])


def make_d4rl_antmaze_dataset(
    dataset_id: str = "test/antmaze/umaze-d4rl-v0",
    num_steps: int = 200,
    max_episode_steps: int = 25,
    eval_max_episode_steps: int = 10,
    seed: int = 0,
) -> minari.MinariDataset:
    """Random-action AntMaze_UMaze-v5 with Minari's D4RL settings: sparse reward,
    ``continuing_task=True``, ``reset_target=False``, the D4RL umaze map, and a recorded eval env
    on the eval map (``eval_max_episode_steps`` long, so evaluation stays short).

    Even episodes start in the goal cell (``reset(options={"reset_cell": ...})``), so the sparse
    rewards are a mix of 0 and 1; odd ones at the map's reset cell. No reference scores are
    stored. Written with ``minari.DataCollector`` directly because of the reset options.
    """
    register_robotics()
    env = gym.make(
        "AntMaze_UMaze-v5",
        maze_map=D4RL_UMAZE_MAP,
        continuing_task=True,
        reset_target=False,
        reward_type="sparse",
        max_episode_steps=max_episode_steps,
    )
    eval_spec = dataclasses.replace(
        env.spec,
        max_episode_steps=eval_max_episode_steps,
        kwargs={**env.spec.kwargs, "maze_map": D4RL_UMAZE_EVAL_MAP},
    )
    collector = minari.DataCollector(env)
    rng = np.random.default_rng(seed)

    def reset(episode: int) -> None:
        at_goal = {"reset_cell": np.array(UMAZE_GOAL_CELL)} if episode % 2 == 0 else None
        collector.reset(seed=seed + episode, options=at_goal)

    episode = 0
    reset(episode)
    for _ in range(num_steps):
        _, _, terminated, truncated, _ = collector.step(random_action(collector, rng))
        if terminated or truncated:
            episode += 1
            reset(episode)
    with _quiet():
        dataset = collector.create_dataset(dataset_id, eval_env=eval_spec, **_METADATA)
    collector.close()
    return dataset


class _MicrowaveOpener:
    """Random actions; at step ``open_at`` of every ``episode_steps``-step episode the microwave
    door is set to its goal angle (a scripted stand-in for a demonstration that opens it), so the
    kitchen reward is 1 from then on (tasks are not removed when completed, as in Minari's data).
    """

    def __init__(self, episode_steps: int, open_at: int):
        self.episode_steps, self.open_at, self.calls = episode_steps, open_at, 0

    def __call__(self, env: gym.Env, rng: np.random.Generator) -> np.ndarray:
        if self.calls % self.episode_steps == self.open_at:
            data = env.unwrapped.data
            data.qpos[MICROWAVE_QPOS] = MICROWAVE_GOAL
            data.qvel[MICROWAVE_QPOS] = 0.0  # only 1-dof joints precede it: same index in qvel
        self.calls += 1
        return random_action(env, rng)


def make_kitchen_dataset(
    dataset_id: str = "test/kitchen/complete-v0",
    num_steps: int = 60,
    max_episode_steps: int = 15,
    open_microwave_at: int = 5,
    seed: int = 0,
) -> minari.MinariDataset:
    """FrankaKitchen-v1 with D4RL kitchen-complete's tasks, made as Minari's D4RL kitchen
    datasets were (``remove_task_when_completed=False``, ``terminate_on_tasks_completed=False``,
    no eval env recorded, so evaluation uses this env and its short ``max_episode_steps``).

    Actions are random; the microwave door is opened by script mid-episode (``_MicrowaveOpener``)
    so rewards are not all zero. No reference scores are stored.
    """
    register_robotics()
    return collect_dataset(
        dataset_id,
        "FrankaKitchen-v1",
        num_steps,
        max_episode_steps,
        seed,
        env_kwargs=dict(
            tasks_to_complete=KITCHEN_COMPLETE_TASKS,
            remove_task_when_completed=False,
            terminate_on_tasks_completed=False,
        ),
        action_fn=_MicrowaveOpener(max_episode_steps, open_microwave_at),
    )


def make_bandit_dataset(
    dataset_id: str = "test/bandit/linear-v0", num_episodes: int = 20, steps: int = 100
) -> minari.MinariDataset:
    """``ofql_jax.data.synthetic.linear_bandit`` written as InvertedPendulum-v5 episodes (its
    spaces: obs 4, act [-3, 3]) of ``steps`` steps, the last one truncated."""
    from ofql_jax.data.synthetic import linear_bandit

    data = linear_bandit(num_episodes * steps)
    buffers = []
    for i in range(num_episodes):
        part = slice(i * steps, (i + 1) * steps)
        obs = data.observations[part]
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=np.concatenate([obs, obs[-1:]]).astype(np.float64),
                actions=3.0 * data.actions[part],
                rewards=list(data.rewards[part]),
                terminations=[False] * steps,
                truncations=[False] * (steps - 1) + [True],
            )
        )
    with _quiet():
        return minari.create_dataset_from_buffers(
            dataset_id, buffers, env="InvertedPendulum-v5", **_METADATA
        )

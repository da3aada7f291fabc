"""Batched rollouts: ``num_envs`` Gymnasium envs stepped together, one policy call per step.

Used for SAC's evaluations and for writing replica datasets. The policy sees a
``[num_envs, obs_dim]`` float32 batch and returns actions in ``[-1, 1]``; they are
mapped to the env's bounds here. Env ``i``'s ``k``-th episode overall is reset with
``seed + k`` (episodes are numbered in the order they start), so a rollout is
reproducible for a given seed, number of envs and policy.

Example:
    >>> from ofql_jax.data.envs import make_env
    >>> result = run_episodes(lambda: make_env("Hopper-v5"), random_policy(3, 0), num_envs=4,
    ...                       seed=0, num_episodes=8)  # doctest: +SKIP
    >>> result.returns.shape
    (8,)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from ofql_jax.data.minari_data import ActionScaler

# obs batch [num_envs, obs_dim] float32, global step index -> unit actions [num_envs, act_dim]
PolicyFn = Callable[[np.ndarray, int], np.ndarray]


@dataclasses.dataclass
class Episode:
    """One recorded episode in the env's own units (what a Minari dataset stores)."""

    observations: np.ndarray  # [T + 1, obs_dim]
    actions: np.ndarray  # [T, act_dim], env bounds
    rewards: np.ndarray  # [T]
    terminations: np.ndarray  # [T] bool
    truncations: np.ndarray  # [T] bool; the last step of a cut-off episode is True
    seed: int  # the reset seed (-1: unknown)
    cut: bool = False  # stopped by a step budget, not by the env (its return is partial)

    @property
    def length(self) -> int:
        return len(self.rewards)


@dataclasses.dataclass
class RolloutResult:
    returns: np.ndarray  # [episodes] undiscounted return of each *finished* episode
    lengths: np.ndarray  # [episodes]
    episodes: list[Episode]  # recorded episodes (empty unless record=True), cut ones included
    steps: int  # env steps taken (all envs)
    seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.steps / max(self.seconds, 1e-9)


def random_policy(act_dim: int, seed: int) -> PolicyFn:
    """Uniform actions in [-1, 1] (D4RL's *random* level)."""
    rng = np.random.default_rng(seed)
    return lambda obs, step: rng.uniform(-1.0, 1.0, (obs.shape[0], act_dim)).astype(np.float32)


def run_episodes(
    make_env: Callable[[], gym.Env],
    policy: PolicyFn,
    num_envs: int,
    seed: int,
    num_episodes: int | None = None,
    num_steps: int | None = None,
    record: bool = False,
    progress: str | None = None,
) -> RolloutResult:
    """Step ``num_envs`` envs until ``num_episodes`` episodes end or ``num_steps`` steps are taken.

    With ``num_episodes`` exactly that many episodes are started and all are finished.
    With ``num_steps`` rollout stops after exactly that many transitions; episodes still
    running are kept (when recording) with their last step marked as a truncation, like
    the final episode of a D4RL dataset. ``progress`` is a tqdm label (None: no bar).
    """
    if (num_episodes is None) == (num_steps is None):
        raise ValueError("give exactly one of num_episodes and num_steps")
    envs = [make_env() for _ in range(num_envs)]
    space = envs[0].action_space
    scaler = ActionScaler.from_space(space)
    obs_dim = int(np.prod(envs[0].observation_space.shape))
    started = 0
    active = np.zeros(num_envs, bool)
    obs = np.zeros((num_envs, obs_dim), np.float32)
    ep_return = np.zeros(num_envs)
    ep_len = np.zeros(num_envs, np.int64)
    ep_seed = np.zeros(num_envs, np.int64)
    buffers: list[dict[str, list]] = [dict() for _ in range(num_envs)]
    returns, lengths, episodes = [], [], []

    def start(i: int) -> None:
        nonlocal started
        ep_seed[i] = seed + started
        o, _ = envs[i].reset(seed=int(ep_seed[i]))
        started += 1
        obs[i] = np.asarray(o, np.float32).ravel()
        active[i], ep_return[i], ep_len[i] = True, 0.0, 0
        if record:
            buffers[i] = dict(obs=[obs[i].copy()], act=[], rew=[], term=[], trunc=[])

    def finish(i: int, cut: bool) -> None:
        active[i] = False
        if not cut:
            returns.append(ep_return[i])
            lengths.append(ep_len[i])
        if record and ep_len[i] > 0:
            b = buffers[i]
            if cut:
                b["trunc"][-1] = True
            episodes.append(
                Episode(
                    observations=np.stack(b["obs"]),
                    actions=np.stack(b["act"]),
                    rewards=np.asarray(b["rew"], np.float64),
                    terminations=np.asarray(b["term"], bool),
                    truncations=np.asarray(b["trunc"], bool),
                    seed=int(ep_seed[i]),
                    cut=cut,
                )
            )

    def may_start() -> bool:
        return num_episodes is None or started < num_episodes

    for i in range(num_envs):
        if may_start():
            start(i)
    total = num_steps if num_steps is not None else None
    bar = tqdm(total=total, desc=progress, unit="step", disable=progress is None, smoothing=0.05)
    steps, t0, step_index = 0, time.perf_counter(), 0
    while active.any() and (num_steps is None or steps < num_steps):
        actions = np.asarray(policy(obs, step_index), np.float32)
        step_index += 1
        env_actions = np.clip(scaler.from_unit(actions), scaler.low, scaler.high)
        for i in np.flatnonzero(active):
            if num_steps is not None and steps >= num_steps:
                break
            o, r, term, trunc, _ = envs[i].step(env_actions[i])
            o = np.asarray(o, np.float32).ravel()
            steps += 1
            ep_return[i] += r
            ep_len[i] += 1
            if record:
                b = buffers[i]
                b["obs"].append(o)
                b["act"].append(env_actions[i].copy())
                b["rew"].append(r)
                b["term"].append(bool(term))
                b["trunc"].append(bool(trunc))
            obs[i] = o
            if term or trunc:
                finish(i, cut=False)
                if may_start():
                    start(i)
        bar.update(steps - bar.n)
    bar.close()
    for i in np.flatnonzero(active):  # cut off by num_steps
        finish(i, cut=True)
    for env in envs:
        env.close()
    return RolloutResult(
        returns=np.asarray(returns, np.float64),
        lengths=np.asarray(lengths, np.int64),
        episodes=episodes,
        steps=steps,
        seconds=time.perf_counter() - t0,
    )

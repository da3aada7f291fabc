"""The one place this project builds a Gymnasium environment.

Every env the project steps (evaluation workers, replica and SAC rollouts, dataset collection,
the benchmarks) comes from :func:`make_env`, so what must hold for each build is done once:
today that is :func:`ofql_jax.data.mujoco_warnings.quiet`, which drops the harmless
``settotalmass`` notice Gymnasium's HalfCheetah prints on every compile (120 copies in one
100k-step run's log before it). Callers that need a one-sentence error for their context
(a dataset's env spec, a SAC env id) wrap this call with their own message.

Example:
    >>> from ofql_jax.data.envs import make_env
    >>> with make_env("Hopper-v5") as env:  # doctest: +SKIP
    ...     env.action_space.shape
    (3,)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec

from ofql_jax.data import mujoco_warnings


def make_env(env: str | EnvSpec, **kwargs: Any) -> gym.Env:
    """``gym.make(env, **kwargs)`` with this project's per-process setup applied first."""
    mujoco_warnings.quiet()
    return gym.make(env, **kwargs)

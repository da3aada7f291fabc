"""Tiny synthetic datasets for tests and mechanism studies (no environment needed).

Example:
    >>> data = linear_bandit(100)
    >>> data.actions.shape, float(data.rewards.max()) <= 1.3
    ((100, 1), True)
    >>> bimodal_bandit(100).actions.shape
    (100, 3)
"""

from __future__ import annotations

import numpy as np

from ofql_jax.core.types import Transitions


def linear_bandit(num_steps: int = 2000, seed: int = 0) -> Transitions:
    """A contextual bandit whose value keeps rising outside the data: reward ``1 + a``.

    Actions (in [-1, 1]) are ``clip(N(0, 0.1), -0.3, 0.3)``, states are 4-d noise and every
    reward is ``1 + a``. With discount 0 the best value the data allows is 1.3, while a
    critic extrapolating linearly values a = 1 at 2: a Q term that pushes the one-step policy
    out of the data shows up as a value above the bound within a few hundred updates. The
    numpy ``Transitions`` have ``next_observations = observations`` and no terminations.
    """
    rng = np.random.default_rng(seed)
    actions = np.clip(rng.normal(0.0, 0.1, (num_steps, 1)), -0.3, 0.3).astype(np.float32)
    observations = rng.standard_normal((num_steps, 4)).astype(np.float32)
    return Transitions(
        observations=observations,
        actions=actions,
        rewards=(1.0 + actions[:, 0]).astype(np.float32),
        next_observations=observations,
        dones=np.zeros(num_steps, np.float32),
    )


BIMODAL_MODE = 0.5  # the two behaviour modes sit at +0.5 and -0.5 in every action dim
BIMODAL_SPREAD = 0.2  # per-dim std of the actions around their mode
BIMODAL_WIDTH = 0.25  # width of the reward peak on the +0.5 mode


def bimodal_reward(actions: np.ndarray, reward: str = "peak") -> np.ndarray:
    """The true reward of ``bimodal_bandit``'s actions ``[..., d]``.

    ``"peak"``: ``exp(-mean_d (a - 0.5)^2 / (2 * 0.25^2))``, 1 on the +0.5 mode, 0.0003 on
    the -0.5 mode, 0.14 at the clip boundary +1: the best actions are in the data.
    ``"rising"``: ``0.5 + mean_d a``, which keeps rising past the data to the boundary.
    """
    actions = np.asarray(actions, np.float64)
    if reward == "peak":
        sq = np.square(actions - BIMODAL_MODE).mean(-1)
        return np.exp(-sq / (2 * BIMODAL_WIDTH**2))
    if reward == "rising":
        return 0.5 + actions.mean(-1)
    raise ValueError(f"unknown reward {reward!r}; use 'peak' or 'rising'")


def bimodal_bandit(
    num_steps: int = 4096,
    act_dim: int = 3,
    obs_dim: int = 4,
    reward: str = "peak",
    spread: float = BIMODAL_SPREAD,
    seed: int = 0,
) -> Transitions:
    """A contextual bandit whose data mixes a good and a bad behaviour, as medium-expert does.

    States are ``obs_dim``-d noise; each action comes from one of two equally likely modes,
    ``+0.5`` or ``-0.5`` in every dim plus ``N(0, spread)`` noise (clipped to [-1, 1]); the
    reward (``bimodal_reward``) peaks on the +0.5 mode. Every step terminates. Behaviour
    cloning keeps both modes (half its actions on each); an offline RL agent whose Q term
    acts puts its actions on the +0.5 mode and, with the ``"peak"`` reward, keeps them there
    (not at the clip boundary). ``bimodal_stats`` measures that.
    """
    rng = np.random.default_rng(seed)
    modes = np.where(rng.random((num_steps, 1)) < 0.5, BIMODAL_MODE, -BIMODAL_MODE)
    noise = rng.normal(0.0, spread, (num_steps, act_dim))
    actions = np.clip(modes + noise, -1.0, 1.0).astype(np.float32)
    observations = rng.standard_normal((num_steps, obs_dim)).astype(np.float32)
    return Transitions(
        observations=observations,
        actions=actions,
        rewards=bimodal_reward(actions, reward).astype(np.float32),
        next_observations=observations,
        dones=np.ones(num_steps, np.float32),
    )


def bimodal_stats(actions: np.ndarray, reward: str = "peak") -> dict[str, float]:
    """Where a policy's actions ``[n, d]`` sit on ``bimodal_bandit``.

    ``good_mode``: share nearer the +0.5 mode (mean over dims > 0); ``abs_mean``: mean |a|
    (the data's is about 0.5); ``saturation``: share of components with |a| > 0.99;
    ``reward``: the mean true reward (data: about 0.5 with ``"peak"``).

    Example:
        >>> bimodal_stats(np.full((4, 3), 0.5))["good_mode"]
        1.0
    """
    actions = np.asarray(actions, np.float64)
    return {
        "good_mode": float((actions.mean(-1) > 0).mean()),
        "abs_mean": float(np.abs(actions).mean()),
        "saturation": float((np.abs(actions) > 0.99).mean()),
        "reward": float(bimodal_reward(actions, reward).mean()),
    }

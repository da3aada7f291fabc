"""Tiny synthetic datasets for tests and mechanism studies (no environment needed).

Example:
    >>> data = linear_bandit(100)
    >>> data.actions.shape, float(data.rewards.max()) <= 1.3
    ((100, 1), True)
"""

from __future__ import annotations

import numpy as np

from ofql_jax.types import Transitions


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

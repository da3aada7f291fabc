"""Pytrees shared by the data pipeline, the agents and the training loop."""

from __future__ import annotations

import flax.struct
import jax


class Transitions(flax.struct.PyTreeNode):
    """A batch (or a whole dataset) of transitions; leading axis = transition.

    ``dones`` is 1.0 where the episode *terminated* at this step (no bootstrap)
    and 0.0 otherwise, including time-limit truncations (bootstrap through them).
    Actions are in [-1, 1]; rewards are already tuned (e.g. AntMaze's
    ``(r - 0.5) * 4``) when they reach an agent.

    Example:
        >>> import jax.numpy as jnp
        >>> batch = Transitions(observations=jnp.zeros((2, 3)), actions=jnp.zeros((2, 1)),
        ...     rewards=jnp.zeros(2), next_observations=jnp.zeros((2, 3)), dones=jnp.zeros(2))
        >>> batch.size
        2
    """

    observations: jax.Array  # [n, obs_dim] float32
    actions: jax.Array  # [n, act_dim] float32 in [-1, 1]
    rewards: jax.Array  # [n] float32
    next_observations: jax.Array  # [n, obs_dim] float32
    dones: jax.Array  # [n] float32, termination only

    @property
    def size(self) -> int:
        return self.rewards.shape[0]

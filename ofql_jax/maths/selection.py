"""Choosing one of N candidate actions by their value: DQL's softmax draw, with a temperature.

DQL draws the executed action from ``softmax(Q)`` over N candidates; CleanDiffuser's DQL
pipelines (the paper's protocol) use ``softmax(w Q)`` with a per-task weight temperature
``w``. The draw is done with the Gumbel-max trick, so the randomness can be supplied by the
caller (device keys in evaluation, NumPy in ``ofql_jax.evaluation.policy.Policy``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def select_candidate(
    candidates: jax.Array, q: jax.Array, gumbel: jax.Array, q_temperature: float | jax.Array = 1.0
) -> jax.Array:
    """One action per state: ``candidates [..., N, act]``, ``q`` and ``gumbel [..., N]``.

    ``argmax(w q + gumbel)`` with standard Gumbel noise is a draw from ``softmax(w q)``.

    Example:
        >>> c = jnp.array([[-1.0], [1.0]])
        >>> select_candidate(c, jnp.array([0.0, 5.0]), jnp.zeros(2)).tolist()
        [1.0]
    """
    idx = jnp.argmax(q_temperature * q + gumbel, axis=-1)
    return jnp.take_along_axis(candidates, idx[..., None, None], axis=-2)[..., 0, :]


def repeat_states(obs: jax.Array, num_candidates: int) -> jax.Array:
    """``obs [..., obs_dim]`` -> ``[..., N, obs_dim]``, one copy per candidate."""
    return jnp.broadcast_to(obs[..., None, :], obs.shape[:-1] + (num_candidates, obs.shape[-1]))

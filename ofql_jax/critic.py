"""Twin-critic machinery shared by every agent: TD targets, the critic loss, Polyak averaging."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ofql_jax.types import Transitions

QFn = Callable[[jax.Array, jax.Array], jax.Array]  # (obs, actions) -> [heads, ...]
ActionFn = Callable[[jax.Array, jax.Array], jax.Array]  # (obs, key) -> actions


def td_target(
    target_q_fn: QFn,
    next_action_fn: ActionFn,
    batch: Transitions,
    key: jax.Array,
    discount: jax.Array | float,
    max_q_backup: bool = False,
    num_backup_samples: int = 10,
) -> jax.Array:
    """``y = r + discount * (1 - done) * min_i Q'_i(s', a')`` (stop-gradient).

    With ``max_q_backup`` (DQL, AntMaze) ``num_backup_samples`` next actions are
    drawn per ``s'``; each head takes its max over them, then the min of heads.
    """
    next_obs = batch.next_observations
    if max_q_backup:
        next_obs = jnp.repeat(next_obs[:, None], num_backup_samples, axis=1)
        q_next = target_q_fn(next_obs, next_action_fn(next_obs, key)).max(-1)
    else:
        q_next = target_q_fn(next_obs, next_action_fn(next_obs, key))
    y = batch.rewards + discount * (1.0 - batch.dones) * q_next.min(0)
    return jax.lax.stop_gradient(y)


def critic_loss(q_values: jax.Array, target: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Sum over heads of the MSE to the shared target (DQL: MSE(Q1, y) + MSE(Q2, y))."""
    loss = jnp.square(q_values - target).mean(axis=-1).sum()
    info = {
        "critic/loss": loss,
        "critic/q_mean": q_values.mean(),
        "critic/q_max": q_values.max(),
        "critic/q_min": q_values.min(),
        "critic/target_mean": target.mean(),
    }
    return loss, info


def polyak(target, online, tau: jax.Array | float):
    """``target <- tau * online + (1 - tau) * target`` leaf-wise."""
    return jax.tree.map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)

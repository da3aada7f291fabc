"""Twin-critic machinery shared by every agent: TD targets, the critic loss, Polyak averaging."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from ofql_jax.core.types import Transitions
from ofql_jax.maths.networks import CriticEnsemble
from ofql_jax.maths.optim import apply_adam

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


def make_critics(config) -> CriticEnsemble:
    """DQL's twin critics from an agent config (``critic_hidden_dims``, ``activation``, ...)."""
    return CriticEnsemble(
        num_heads=2,
        hidden_dims=tuple(config.critic_hidden_dims),
        activation=config.activation,
        init_scheme=config.init_scheme,
        matmul_dtype=config.matmul_dtype,
    )


def critic_step(
    critics: CriticEnsemble,
    tx: optax.GradientTransformation,
    params,
    target_params,
    opt_state,
    lr: jax.Array,
    batch: Transitions,
    next_action_fn: ActionFn,
    key: jax.Array,
    discount: float,
    max_q_backup: bool = False,
    num_backup_samples: int = 10,
    grad_norm: jax.Array | float | None = None,
):
    """One Adam step of the twin critics on DQL's loss; returns ``(params, opt_state, info)``.

    The TD target uses ``target_params`` and ``next_action_fn(s', key)`` (an agent's target
    policy); ``info`` holds ``critic/*`` metrics, including the gradient norm. ``grad_norm``
    is the clip threshold given to ``tx`` (``maths.optim.apply_adam``).
    """
    y = td_target(
        lambda s, a: critics.apply(target_params, s, a), next_action_fn, batch, key, discount,
        max_q_backup, num_backup_samples,
    )  # fmt: skip

    def loss_fn(p):
        return critic_loss(critics.apply(p, batch.observations, batch.actions), y)

    (_, info), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    params, opt_state = apply_adam(tx, params, grads, opt_state, lr, grad_norm)
    return params, opt_state, {**info, "critic/grad_norm": optax.tree.norm(grads)}


def normalized_q_loss(q: jax.Array, coin: jax.Array, eps: float = 0.0) -> jax.Array:
    """DQL's actor Q term from ``q [2, batch]``: ``-mean Q_i / sg(eps + mean |Q_j|)`` with
    head ``i`` chosen by ``coin`` (a traced bool: no cond under vmap)."""
    q_mean = q.mean(-1)
    q_abs = jax.lax.stop_gradient(jnp.abs(q).mean(-1)) + eps
    return jnp.where(coin, -q_mean[0] / q_abs[1], -q_mean[1] / q_abs[0])

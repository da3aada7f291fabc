"""Soft Actor-Critic (Haarnoja et al. 2018), the online agent behind D4RL's datasets.

Pure functions over an ``SACState`` pytree, like the OFQL agent: ``init`` builds the
state, ``update`` is one jitted gradient step on a batch, ``act`` samples (or takes the
mean of) the tanh-Gaussian policy for a batch of observations. The critics reuse
``ofql_jax.maths.networks.CriticEnsemble`` (two heads, ReLU, 256x256), the actor is a
tanh-squashed Gaussian over the unit box; actions are rescaled to the env's bounds
by the caller (``ActionScaler``).

Example:
    >>> sac = make_sac(obs_dim=11, act_dim=3)
    >>> state = sac.init(jax.random.key(0))
    >>> batch = Transitions(*(jnp.zeros(s) for s in [(8, 11), (8, 3), (8,), (8, 11), (8,)]))
    >>> state, metrics = sac.update(state, batch)
    >>> sac.act(state.actor_params, jnp.zeros((4, 11)), jax.random.key(1), True).shape
    (4, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from ofql_jax.core.types import Transitions
from ofql_jax.maths.networks import MLP, CriticEnsemble


def default_config() -> ml_collections.ConfigDict:
    """SAC hyperparameters: rlkit's / D4RL's defaults."""
    c = ml_collections.ConfigDict()
    c.hidden_dims = (256, 256)  # actor and critic hidden layers (D4RL's behaviour SAC)
    c.actor_lr = 3e-4  # Adam learning rate of the policy
    c.critic_lr = 3e-4  # Adam learning rate of both Q heads
    c.alpha_lr = 3e-4  # Adam learning rate of log(alpha)
    c.discount = 0.99  # gamma
    c.tau = 0.005  # Polyak rate of the target critics
    c.init_alpha = 1.0  # initial entropy temperature
    c.target_entropy_scale = 1.0  # target entropy = -scale * act_dim
    c.log_std_min = -20.0  # clip of the policy's log std (rlkit)
    c.log_std_max = 2.0
    return c


class TanhGaussianActor(nn.Module):
    """obs -> (mean, log_std) of a Gaussian squashed by tanh into [-1, 1]^act_dim."""

    hidden_dims: tuple[int, ...]
    act_dim: int
    log_std_min: float = -20.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP(self.hidden_dims, 2 * self.act_dim, activation="relu", name="mlp")(obs)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


def tanh_gaussian_sample(
    mean: jax.Array, log_std: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """A reparameterised tanh-Gaussian sample and its log density (summed over dims)."""
    eps = jax.random.normal(key, mean.shape)
    pre = mean + jnp.exp(log_std) * eps
    gauss_logp = -0.5 * eps**2 - log_std - 0.5 * jnp.log(2 * jnp.pi)
    # log|d tanh(x)/dx| = log(1 - tanh(x)^2) = 2 (log 2 - x - softplus(-2x)), stable for all x.
    log_det = 2.0 * (jnp.log(2.0) - pre - jax.nn.softplus(-2.0 * pre))
    return jnp.tanh(pre), jnp.sum(gauss_logp - log_det, axis=-1)


class SACState(flax.struct.PyTreeNode):
    """Everything SAC trains, as one pytree (checkpointable, vmappable)."""

    actor_params: dict
    critic_params: dict
    target_critic_params: dict
    log_alpha: jax.Array
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    alpha_opt: optax.OptState
    key: jax.Array
    step: jax.Array


class SAC(NamedTuple):
    """The SAC functions for one observation/action size."""

    init: Callable[[jax.Array], SACState]
    update: Callable[[SACState, Transitions], tuple[SACState, dict]]
    act: Callable[[dict, jax.Array, jax.Array, bool], jax.Array]
    actor: TanhGaussianActor
    config: ml_collections.ConfigDict


def make_sac(obs_dim: int, act_dim: int, config: ml_collections.ConfigDict | None = None) -> SAC:
    """Build SAC for ``obs_dim``-d observations and ``act_dim``-d actions in [-1, 1]."""
    c = config or default_config()
    hidden = tuple(c.hidden_dims)
    actor = TanhGaussianActor(hidden, act_dim, c.log_std_min, c.log_std_max)
    critics = CriticEnsemble(num_heads=2, hidden_dims=hidden, activation="relu")
    actor_tx, critic_tx, alpha_tx = (optax.adam(lr) for lr in (c.actor_lr, c.critic_lr, c.alpha_lr))
    target_entropy = -c.target_entropy_scale * act_dim

    def init(key: jax.Array) -> SACState:
        k_actor, k_critic, key = jax.random.split(key, 3)
        obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
        actor_params = actor.init(k_actor, obs)
        critic_params = critics.init(k_critic, obs, act)
        log_alpha = jnp.log(jnp.asarray(c.init_alpha, jnp.float32))
        return SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=jax.tree.map(jnp.copy, critic_params),  # own buffers
            log_alpha=log_alpha,
            actor_opt=actor_tx.init(actor_params),
            critic_opt=critic_tx.init(critic_params),
            alpha_opt=alpha_tx.init(log_alpha),
            key=key,
            step=jnp.zeros((), jnp.int32),
        )

    def sample(actor_params, obs, key):
        mean, log_std = actor.apply(actor_params, obs)
        return tanh_gaussian_sample(mean, log_std, key)

    def update(state: SACState, batch: Transitions) -> tuple[SACState, dict]:
        key, k_next, k_pi = jax.random.split(state.key, 3)
        alpha = jnp.exp(state.log_alpha)

        next_a, next_logp = sample(state.actor_params, batch.next_observations, k_next)
        next_q = critics.apply(state.target_critic_params, batch.next_observations, next_a).min(0)
        target = batch.rewards + c.discount * (1.0 - batch.dones) * (next_q - alpha * next_logp)
        target = jax.lax.stop_gradient(target)

        def critic_loss_fn(params):
            q = critics.apply(params, batch.observations, batch.actions)
            return ((q - target) ** 2).mean(1).sum(), q.mean()

        (critic_loss, q_mean), grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(
            state.critic_params
        )
        updates, critic_opt = critic_tx.update(grads, state.critic_opt)
        critic_params = optax.apply_updates(state.critic_params, updates)

        def actor_loss_fn(params):
            a, logp = sample(params, batch.observations, k_pi)
            q = critics.apply(critic_params, batch.observations, a).min(0)
            return (alpha * logp - q).mean(), logp.mean()

        (actor_loss, logp_mean), grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
            state.actor_params
        )
        updates, actor_opt = actor_tx.update(grads, state.actor_opt)
        actor_params = optax.apply_updates(state.actor_params, updates)

        def alpha_loss_fn(log_alpha):
            return -log_alpha * jax.lax.stop_gradient(logp_mean + target_entropy)

        alpha_loss, grad = jax.value_and_grad(alpha_loss_fn)(state.log_alpha)
        updates, alpha_opt = alpha_tx.update(grad, state.alpha_opt)
        log_alpha = optax.apply_updates(state.log_alpha, updates)

        target_critic_params = optax.incremental_update(
            critic_params, state.target_critic_params, c.tau
        )
        new_state = SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=target_critic_params,
            log_alpha=log_alpha,
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            alpha_opt=alpha_opt,
            key=key,
            step=state.step + 1,
        )
        metrics = dict(
            critic_loss=critic_loss,
            actor_loss=actor_loss,
            alpha_loss=alpha_loss,
            alpha=alpha,
            q_mean=q_mean,
            entropy=-logp_mean,
        )
        return new_state, metrics

    def act(actor_params: dict, obs: jax.Array, key: jax.Array, stochastic: bool) -> jax.Array:
        """Actions in [-1, 1] for a batch of observations (mean action if not stochastic)."""
        mean, log_std = actor.apply(actor_params, obs)
        if not stochastic:
            return jnp.tanh(mean)
        return tanh_gaussian_sample(mean, log_std, key)[0]

    return SAC(init=init, update=update, act=act, actor=actor, config=c)

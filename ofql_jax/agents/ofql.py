"""One-Step Flow Q-Learning: the agent pytree and its pure, vmappable update.

Everything static (network shapes, optimisers, config) lives in the closure
built by :func:`make_ofql`; everything that changes lives in :class:`AgentState`,
one pytree per seed that vmaps, shards and checkpoints as a whole.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from ofql_jax import critic as critic_lib
from ofql_jax import meanflow
from ofql_jax.networks import CriticEnsemble, MeanVelocityField
from ofql_jax.types import Transitions

Params = Any


def default_config() -> ml_collections.ConfigDict:
    """OFQL hyperparameters (DQL's recipe; docs/ofql.md). Every field is commented."""
    c = ml_collections.ConfigDict()
    # Networks (DQL sizes).
    c.hidden_dims = (256, 256, 256)  # policy MLP widths
    c.critic_hidden_dims = (256, 256, 256)  # each critic head's MLP widths
    c.activation = "mish"  # mish | relu | gelu | silu
    c.init_scheme = "pytorch"  # pytorch (U(+-1/sqrt(fan_in)), as DQL) | lecun (Flax default)
    c.time_dim = 16  # sinusoidal embedding size of t and of r (DQL's t_dim)
    c.time_scale = (
        1.0  # t, r in [0, 1] are scaled by this before embedding (unknown; >= 100 diverged)
    )
    c.second_time = "r"  # second time input: r (paper) | t_minus_r (MeanFlow's ablation winner)
    c.matmul_dtype = "float32"  # float32 | bfloat16 (bf16 matmul inputs, f32 accumulation)
    # Optimisation.
    c.actor_lr = 3e-4  # Adam learning rate of the policy (per task)
    c.critic_lr = 3e-4  # Adam learning rate of the critics (always 3e-4 in DQL)
    c.lr_decay = False  # cosine decay of both lrs to 0 over num_steps (DQL option; unknown)
    c.grad_norm = 9.0  # global-norm clip on actor and critic gradients; <= 0 disables
    c.discount = 0.99  # gamma
    c.tau = 0.005  # Polyak rate of the target critics, every step
    c.ema_decay = 0.995  # EMA decay of the target policy
    c.ema_start = 1000  # before this step the target policy is a copy of the online one
    c.ema_every = 5  # EMA update period (steps)
    # OFQL.
    c.eta = 0.3  # weight of the normalised Q term in the actor loss
    c.flow_ratio = 0.5  # P(r = t): share of instantaneous-velocity (flow-matching) samples
    c.time_mean = -0.4  # logit-normal mean for (t, r)
    c.time_std = 1.0  # logit-normal std for (t, r)
    c.bc_loss_reduction = "sum"  # sum | mean over action dims of ||u - u_tgt||^2
    c.loss_weight_power = 0.0  # MeanFlow adaptive loss weight power p; 0 = off (unknown for OFQL)
    c.loss_weight_eps = 1e-3  # MeanFlow adaptive loss weight constant c
    c.max_q_backup = False  # DQL's max-Q backup (AntMaze)
    c.num_backup_samples = 10  # next actions per s' for max_q_backup
    return c


class AgentState(flax.struct.PyTreeNode):
    """Everything that changes during training, for one seed (stack for many)."""

    step: jax.Array  # int32, updates done so far
    rng: jax.Array  # uint32 raw key data (checkpointable)
    policy_params: Params
    target_policy_params: Params  # EMA of the policy
    critic_params: Params
    target_critic_params: Params  # Polyak average of the critics
    policy_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    hparams: dict[str, jax.Array]  # continuous hyperparameters as leaves (vmappable sweeps)


class Agent(NamedTuple):
    """The pure functions of one algorithm, closed over its static configuration.

    ``init(key) -> state``; ``update(state, batch) -> (state, info)``;
    ``sample_actions(state, obs, key, num_candidates) -> actions``;
    ``decide(policy_params, critic_params, obs, noise, gumbel=None) -> actions`` (the same
    selection from caller-supplied randomness, for fast serving, see ``ofql_jax.policy``).
    All are jit- and vmap-compatible (``num_candidates`` must be static).
    """

    init: Any
    update: Any
    sample_actions: Any
    decide: Any
    config: ml_collections.ConfigDict
    obs_dim: int
    act_dim: int


SWEEPABLE = ("eta", "flow_ratio", "actor_lr", "critic_lr")  # hyperparameters held as state leaves


def _adam_direction(grad_norm: float):
    """Adam's update direction (clipped by global norm first); the learning rate is applied
    by the caller from ``state.hparams``, exactly as ``optax.adam`` scales by ``-lr``."""
    adam = optax.scale_by_adam()
    return optax.chain(optax.clip_by_global_norm(grad_norm), adam) if grad_norm > 0 else adam


def _learning_rate(base: jax.Array, step: jax.Array, decay: bool, num_steps: int) -> jax.Array:
    """``base``, or with ``decay`` optax's cosine schedule to 0 over ``num_steps``."""
    if not decay:
        return base
    fraction = jnp.minimum(step, num_steps) / max(num_steps, 1)
    return base * (0.5 * (1.0 + jnp.cos(jnp.pi * fraction)))


def make_ofql(
    config: ml_collections.ConfigDict, obs_dim: int, act_dim: int, num_steps: int = 1_000_000
) -> Agent:
    """Build OFQL's pure functions for observations of ``obs_dim`` and actions of ``act_dim``.

    ``num_steps`` only matters with ``lr_decay``.

    Example:
        >>> agent = make_ofql(default_config(), obs_dim=11, act_dim=3)
        >>> state = agent.init(jax.random.key(0))
        >>> batch = Transitions(jnp.zeros((8, 11)), jnp.zeros((8, 3)), jnp.zeros(8),
        ...                     jnp.zeros((8, 11)), jnp.zeros(8))
        >>> state, info = jax.jit(agent.update)(state, batch)
        >>> int(state.step)
        1
    """
    c = config
    policy = MeanVelocityField(
        action_dim=act_dim,
        hidden_dims=tuple(c.hidden_dims),
        activation=c.activation,
        time_dim=c.time_dim,
        time_scale=c.time_scale,
        second_time=c.second_time,
        init_scheme=c.init_scheme,
        matmul_dtype=c.matmul_dtype,
    )
    critics = CriticEnsemble(
        num_heads=2,
        hidden_dims=tuple(c.critic_hidden_dims),
        activation=c.activation,
        init_scheme=c.init_scheme,
        matmul_dtype=c.matmul_dtype,
    )
    policy_tx = critic_tx = _adam_direction(c.grad_norm)

    def apply_lr(updates, state: AgentState, name: str):
        lr = _learning_rate(state.hparams[name], state.step, c.lr_decay, num_steps)
        return jax.tree.map(lambda u: -lr * u, updates)

    def u_fn(params, obs):
        return lambda z, r, t: policy.apply(params, z, r, t, obs)

    def actions_fn(params, obs, key):
        noise = jax.random.normal(key, obs.shape[:-1] + (act_dim,))
        return meanflow.one_step_action(u_fn(params, obs), noise)

    def init(key: jax.Array) -> AgentState:
        k_policy, k_critic, k_rng = jax.random.split(key, 3)
        obs, act, time = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim)), jnp.zeros((1,))
        policy_params = policy.init(k_policy, act, time, time, obs)
        critic_params = critics.init(k_critic, obs, act)
        return AgentState(
            step=jnp.zeros((), jnp.int32),
            rng=jax.random.key_data(k_rng),
            policy_params=policy_params,
            target_policy_params=policy_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            policy_opt_state=policy_tx.init(policy_params),
            critic_opt_state=critic_tx.init(critic_params),
            hparams={name: jnp.asarray(c[name], jnp.float32) for name in SWEEPABLE},
        )

    def update(state: AgentState, batch: Transitions) -> tuple[AgentState, dict[str, jax.Array]]:
        rng, k_target, k_bc, k_actor, k_coin = jax.random.split(
            jax.random.wrap_key_data(state.rng), 5
        )

        # Critic first (DQL); the target action comes from the EMA policy.
        y = critic_lib.td_target(
            lambda s, a: critics.apply(state.target_critic_params, s, a),
            lambda s, k: actions_fn(state.target_policy_params, s, k),
            batch,
            k_target,
            c.discount,
            c.max_q_backup,
            c.num_backup_samples,
        )

        def critic_loss_fn(params):
            return critic_lib.critic_loss(
                critics.apply(params, batch.observations, batch.actions), y
            )

        (_, critic_info), critic_grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(
            state.critic_params
        )
        critic_updates, critic_opt_state = critic_tx.update(critic_grads, state.critic_opt_state)
        critic_updates = apply_lr(critic_updates, state, "critic_lr")
        critic_params = optax.apply_updates(state.critic_params, critic_updates)

        # Actor: flow BC + eta * |Q|-normalised Q term on the freshly updated critic.
        def actor_loss_fn(params):
            bc_loss, bc_info = meanflow.flow_bc_loss(
                u_fn(params, batch.observations),
                batch.actions,
                k_bc,
                state.hparams["flow_ratio"],
                c.time_mean,
                c.time_std,
                c.bc_loss_reduction,
                c.loss_weight_power,
                c.loss_weight_eps,
            )
            new_actions = actions_fn(params, batch.observations, k_actor)
            q = critics.apply(critic_params, batch.observations, new_actions)
            q_mean, q_abs = q.mean(-1), jax.lax.stop_gradient(jnp.abs(q).mean(-1))
            # Coin flip as arithmetic (no per-seed cond under vmap): which head leads.
            first = jax.random.bernoulli(k_coin)
            q_loss = jnp.where(first, -q_mean[0] / q_abs[1], -q_mean[1] / q_abs[0])
            loss = bc_loss + state.hparams["eta"] * q_loss
            info = {
                "actor/loss": loss,
                "actor/bc_loss": bc_loss,
                "actor/q_loss": q_loss,
                "actor/q_mean": q_mean.mean(),
                "actor/action_abs_mean": jnp.abs(new_actions).mean(),
                **bc_info,
            }
            return loss, info

        (_, actor_info), policy_grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
            state.policy_params
        )
        policy_updates, policy_opt_state = policy_tx.update(policy_grads, state.policy_opt_state)
        policy_updates = apply_lr(policy_updates, state, "actor_lr")
        policy_params = optax.apply_updates(state.policy_params, policy_updates)

        # Target policy: copy before ema_start, then EMA every ema_every steps. The weight
        # is arithmetic (1 keeps, 0 copies exactly) so vmapped seeds never take a cond.
        step = state.step
        keep = jnp.where(
            step < c.ema_start,
            0.0,
            jnp.where(step % c.ema_every == 0, c.ema_decay, 1.0),
        )
        target_policy_params = jax.tree.map(
            lambda t, o: keep * t + (1.0 - keep) * o, state.target_policy_params, policy_params
        )
        target_critic_params = critic_lib.polyak(state.target_critic_params, critic_params, c.tau)

        info = {
            **critic_info,
            **actor_info,
            "critic/grad_norm": optax.tree.norm(critic_grads),
            "actor/grad_norm": optax.tree.norm(policy_grads),
        }
        new_state = state.replace(
            step=step + 1,
            rng=jax.random.key_data(rng),
            policy_params=policy_params,
            target_policy_params=target_policy_params,
            critic_params=critic_params,
            target_critic_params=target_critic_params,
            policy_opt_state=policy_opt_state,
            critic_opt_state=critic_opt_state,
        )
        return new_state, info

    def sample_actions(
        state: AgentState, obs: jax.Array, key: jax.Array, num_candidates: int = 1
    ) -> jax.Array:
        """Actions for ``obs [..., obs_dim]``; DQL's selection when ``num_candidates > 1``.

        ``num_candidates = N > 1``: N one-step actions of the online policy per state,
        scored by the target critics' min, one index drawn from ``softmax(Q)``.
        """
        k_noise, k_pick = jax.random.split(key)
        if num_candidates == 1:
            noise = jax.random.normal(k_noise, obs.shape[:-1] + (act_dim,))
            return decide(state.policy_params, state.target_critic_params, obs, noise)
        noise = jax.random.normal(k_noise, obs.shape[:-1] + (num_candidates, act_dim))
        gumbel = jax.random.gumbel(k_pick, obs.shape[:-1] + (num_candidates,))
        return decide(state.policy_params, state.target_critic_params, obs, noise, gumbel)

    def decide(
        policy_params: Params,
        critic_params: Params,
        obs: jax.Array,
        noise: jax.Array,
        gumbel: jax.Array | None = None,
    ) -> jax.Array:
        """Actions from given randomness: ``noise [..., act]`` gives one-step actions;
        ``noise [..., N, act]`` with ``gumbel [..., N]`` picks ``argmax(Q + gumbel)``, which
        is a draw from ``softmax(Q)`` over the N candidates (Q = min of ``critic_params``).
        """
        if gumbel is None:
            return meanflow.one_step_action(u_fn(policy_params, obs), noise)
        obs_rep = jnp.broadcast_to(obs[..., None, :], noise.shape[:-1] + obs.shape[-1:])
        candidates = meanflow.one_step_action(u_fn(policy_params, obs_rep), noise)
        q = critics.apply(critic_params, obs_rep, candidates).min(0)
        idx = jnp.argmax(q + gumbel, axis=-1)
        return jnp.take_along_axis(candidates, idx[..., None, None], axis=-2)[..., 0, :]

    return Agent(init, update, sample_actions, decide, config, obs_dim, act_dim)

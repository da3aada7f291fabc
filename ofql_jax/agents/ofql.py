"""One-Step Flow Q-Learning (OFQL): a mean-velocity policy acting in one step, DQL's critics.

The policy ``u(z, r, t | s)`` learns the average velocity of the noise-to-action path with
the MeanFlow loss (``ofql_jax.maths.meanflow``); ``clip(e - u(e, 0, 1 | s), -1, 1)`` is an action
after one network call, in training (the Q term) and acting. Twin critics, the EMA target
policy and the |Q|-normalised actor term are DQL's. The maths: docs/algorithm.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ofql_jax.agents.base import (
    Agent,
    AgentSpec,
    AgentState,
    Params,
    adam_direction,
    blend,
    check_common,
    dql_task_defaults,
    ema_weight,
    hparams_from,
    learning_rate,
    require,
    standard_sample_actions,
)
from ofql_jax.core.types import Transitions
from ofql_jax.maths import critic as critic_lib
from ofql_jax.maths import meanflow
from ofql_jax.maths.diagnostics import action_moves
from ofql_jax.maths.networks import MeanVelocityField
from ofql_jax.maths.optim import apply_adam
from ofql_jax.maths.selection import repeat_states, select_candidate


def default_config() -> ml_collections.ConfigDict:
    """OFQL hyperparameters (the paper and DQL; docs/algorithm.md). Every field is commented."""
    c = ml_collections.ConfigDict()
    # Networks (DQL sizes).
    c.hidden_dims = (256, 256, 256)  # policy MLP widths
    c.critic_hidden_dims = (256, 256, 256)  # each critic head's MLP widths
    c.activation = "mish"  # mish | relu | gelu | silu
    c.init_scheme = "pytorch"  # pytorch (U(+-1/sqrt(fan_in)), as DQL) | lecun (Flax default)
    c.time_dim = 64  # sinusoidal embedding size of t and of r (the paper's App. B)
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
    c.q_norm_eps = 0.0  # q_loss = -Q / (eps + mean|Q|); 0 = the paper's (guard for |Q| near 0)
    c.flow_ratio = 0.5  # P(r = t): share of instantaneous-velocity (flow-matching) samples
    c.endpoint_ratio = 0.0  # share of L_FBC pairs set to (r, t) = (0, 1), the one-step map;
    # 0 = the paper's sampler; > 0 (ours) pins the map the Q term moves: docs/algorithm.md s. 7
    c.uniform_ratio = 0.0  # share of L_FBC pairs from two sorted uniforms, not logit-normals (ours)
    c.time_mean = -0.4  # logit-normal mean for (t, r)
    c.time_std = 1.0  # logit-normal std for (t, r)
    c.bc_loss_reduction = "sum"  # sum (Eq. 14's squared norm) | mean over action dims (x d eta)
    c.loss_weight_power = 0.0  # MeanFlow adaptive loss weight power p; 0 = off (unknown for OFQL)
    c.loss_weight_eps = 1e-3  # MeanFlow adaptive loss weight constant c
    c.max_q_backup = False  # DQL's max-Q backup (AntMaze)
    c.num_backup_samples = 10  # next actions per s' for max_q_backup
    return c


SWEEPABLE = ("eta", "flow_ratio", "endpoint_ratio", "uniform_ratio", "actor_lr", "critic_lr")


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
    critics = critic_lib.make_critics(c)
    policy_tx = critic_tx = adam_direction(c.grad_norm)

    def lr(state: AgentState, name: str) -> jax.Array:
        return learning_rate(state.hparams[name], state.step, c.lr_decay, num_steps)

    def u_fn(params, obs):
        return lambda z, r, t: policy.apply(params, z, r, t, obs)

    def actions_fn(params, obs, key):
        noise = jax.random.normal(key, obs.shape[:-1] + (act_dim,))
        return meanflow.one_step_action(u_fn(params, obs), noise)

    def bc_loss_fn(params, state: AgentState, batch: Transitions, key: jax.Array):
        return meanflow.flow_bc_loss(
            u_fn(params, batch.observations), batch.actions, key, state.hparams["flow_ratio"],
            c.time_mean, c.time_std, c.bc_loss_reduction, c.loss_weight_power,
            c.loss_weight_eps, state.hparams["endpoint_ratio"], state.hparams["uniform_ratio"],
        )  # fmt: skip

    def init(key: jax.Array) -> AgentState:
        k_policy, k_critic, k_rng = jax.random.split(key, 3)
        obs, act, time = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim)), jnp.zeros((1,))
        policy_params = policy.init(k_policy, act, time, time, obs)
        critic_params = critics.init(k_critic, obs, act)
        return AgentState.initial(
            k_rng,
            policy_params,
            policy_tx,
            hparams_from(c, SWEEPABLE),
            critic_params=critic_params,
            critic_tx=critic_tx,
        )

    def update(state: AgentState, batch: Transitions) -> tuple[AgentState, dict[str, jax.Array]]:
        rng, k_target, k_bc, k_actor, k_coin = jax.random.split(
            jax.random.wrap_key_data(state.rng), 5
        )
        # Critic first (DQL); the target action comes from the EMA policy.
        critic_params, critic_opt_state, critic_info = critic_lib.critic_step(
            critics, critic_tx, state.critic_params, state.target_critic_params,
            state.critic_opt_state, lr(state, "critic_lr"), batch,
            lambda s, k: actions_fn(state.target_policy_params, s, k), k_target, c.discount,
            c.max_q_backup, c.num_backup_samples,
        )  # fmt: skip

        # Actor: flow BC + eta * |Q|-normalised Q term on the freshly updated critic.
        def actor_loss_fn(params):
            bc_loss, bc_info = bc_loss_fn(params, state, batch, k_bc)
            new_actions = actions_fn(params, batch.observations, k_actor)
            q = critics.apply(critic_params, batch.observations, new_actions)
            # Coin flip as arithmetic (no per-seed cond under vmap): which head leads.
            q_loss = critic_lib.normalized_q_loss(q, jax.random.bernoulli(k_coin), c.q_norm_eps)
            loss = bc_loss + state.hparams["eta"] * q_loss
            info = {
                "actor/loss": loss,
                "actor/bc_loss": bc_loss,
                "actor/q_loss": q_loss,
                "actor/q_mean": q.mean(),
                "actor/action_abs_mean": jnp.abs(new_actions).mean(),
                **bc_info,
            }
            return loss, info

        (_, actor_info), policy_grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
            state.policy_params
        )
        policy_params, policy_opt_state = apply_adam(
            policy_tx, state.policy_params, policy_grads, state.policy_opt_state,
            lr(state, "actor_lr"),
        )  # fmt: skip

        # Target policy: a copy before ema_start, then EMA every ema_every steps.
        keep = ema_weight(state.step, c.ema_start, c.ema_every, c.ema_decay)
        target_policy_params = blend(state.target_policy_params, policy_params, keep)
        target_critic_params = critic_lib.polyak(state.target_critic_params, critic_params, c.tau)

        info = {**critic_info, **actor_info, "actor/grad_norm": optax.tree.norm(policy_grads)}
        new_state = state.replace(
            step=state.step + 1,
            rng=jax.random.key_data(rng),
            policy_params=policy_params,
            target_policy_params=target_policy_params,
            critic_params=critic_params,
            target_critic_params=target_critic_params,
            policy_opt_state=policy_opt_state,
            critic_opt_state=critic_opt_state,
        )
        return new_state, info

    def decide(
        policy_params: Params,
        critic_params: Params,
        obs: jax.Array,
        noise: jax.Array,
        gumbel: jax.Array | None = None,
        q_temperature: float | jax.Array = 1.0,
    ) -> jax.Array:
        """One-step actions from ``noise [..., act]``; with ``noise [..., N, act]`` and
        ``gumbel [..., N]`` a draw from ``softmax(w Q)`` over the N candidates (Q = min of
        ``critic_params``, w = ``q_temperature``). Noise temperatures are already applied.
        """
        if gumbel is None:
            return meanflow.one_step_action(u_fn(policy_params, obs), noise)
        obs_rep = repeat_states(obs, noise.shape[-2])
        candidates = meanflow.one_step_action(u_fn(policy_params, obs_rep), noise)
        q = critics.apply(critic_params, obs_rep, candidates).min(0)
        return select_candidate(candidates, q, gumbel, q_temperature)

    sample_actions = standard_sample_actions(decide, act_dim)

    def diagnose(state: AgentState, batch: Transitions, key: jax.Array) -> dict[str, jax.Array]:
        """What the training metrics do not show: where the one-step policy sits relative to
        the data and to the critic, on ``batch``; nothing is updated.

        ``q_policy_mean`` (the critics' mean value of the policy's actions, watched against
        the dataset's value bound), ``q_data_mean``, ``clip_rate`` (pre-clip one-step action
        components outside [-1, 1]), ``raw_action_abs_max``, ``saturation`` (|a| > 0.99, as
        ``data_saturation``), ``one_step_mse_to_data`` (``||a_pi(s) - a||^2`` against the
        dataset action at the same state), ``bc_loss_endpoint`` (L_FBC at (r, t) = (0, 1),
        the map the policy acts with), ``grad_ratio`` = eta ||grad Q term|| / ||grad L_FBC||, and
        where each term moves the one-step action (``diagnostics.action_moves``).
        """
        k_bc, k_noise = jax.random.split(key)
        obs, data_actions, params = batch.observations, batch.actions, state.policy_params
        noise = jax.random.normal(k_noise, data_actions.shape)

        def bc_loss(p):
            return bc_loss_fn(p, state, batch, k_bc)[0]

        def q_term(p):  # both head orders averaged: the expected actor Q term
            a = meanflow.one_step_action(u_fn(p, obs), noise)
            q = critics.apply(state.critic_params, obs, a)
            return 0.5 * sum(
                critic_lib.normalized_q_loss(q, lead, c.q_norm_eps) for lead in (True, False)
            )

        bc_grads, q_grads = jax.grad(bc_loss)(params), jax.grad(q_term)(params)
        bc_grad_norm, q_grad_norm = optax.tree.norm(bc_grads), optax.tree.norm(q_grads)
        moves = action_moves(
            lambda p: meanflow.one_step_action(u_fn(p, obs), noise), params, q_grads, bc_grads,
            state.hparams["eta"], state.policy_opt_state,
        )  # fmt: skip
        ones = jnp.ones(noise.shape[:-1])
        raw = noise - u_fn(params, obs)(noise, 0.0 * ones, ones)
        actions = jnp.clip(raw, -1.0, 1.0)
        q_policy = critics.apply(state.critic_params, obs, actions)
        q_data = critics.apply(state.critic_params, obs, data_actions)
        u_end, target_end = meanflow.meanflow_target(
            u_fn(params, obs), noise, 0.0 * ones, ones, noise - data_actions
        )
        return {
            "diag/q_policy_mean": q_policy.mean(),
            "diag/q_policy_max": q_policy.min(0).max(),
            "diag/q_data_mean": q_data.mean(),
            "diag/clip_rate": jnp.mean(jnp.abs(raw) > 1.0),
            "diag/raw_action_abs_max": jnp.abs(raw).max(),
            "diag/action_abs_mean": jnp.abs(actions).mean(),
            "diag/saturation": jnp.mean(jnp.abs(actions) > 0.99),
            "diag/data_saturation": jnp.mean(jnp.abs(data_actions) > 0.99),
            "diag/one_step_mse_to_data": jnp.square(actions - data_actions).sum(-1).mean(),
            "diag/bc_loss_endpoint": jnp.square(u_end - target_end).sum(-1).mean(),
            "diag/bc_grad_norm": bc_grad_norm,
            "diag/q_grad_norm": q_grad_norm,
            "diag/grad_ratio": state.hparams["eta"] * q_grad_norm / (bc_grad_norm + 1e-12),
            **moves,
        }

    return Agent(
        init, update, sample_actions, decide, config, obs_dim, act_dim, diagnose,
        noise_dim=act_dim, has_critic=True, name="ofql",
    )  # fmt: skip


def check(a: ml_collections.ConfigDict) -> None:
    """OFQL's own config checks (also applied to each swept setting)."""
    check_common(a)
    require(0.0 <= a.flow_ratio <= 1.0, "agent.flow_ratio", a.flow_ratio, "in [0, 1]")
    require(0.0 <= a.endpoint_ratio <= 1.0, "agent.endpoint_ratio", a.endpoint_ratio, "in [0, 1]")
    require(a.eta >= 0.0, "agent.eta", a.eta, ">= 0")
    require(a.time_std > 0, "agent.time_std", a.time_std, "> 0")
    require(a.time_dim >= 4 and a.time_dim % 2 == 0, "agent.time_dim", a.time_dim,
            "an even integer >= 4")  # fmt: skip
    require(
        a.second_time in ("r", "t_minus_r"), "agent.second_time", a.second_time, "r or t_minus_r"
    )
    require(
        a.bc_loss_reduction in ("sum", "mean"), "agent.bc_loss_reduction", a.bc_loss_reduction,
        "sum or mean",
    )  # fmt: skip


def task_defaults(task, protocol: str) -> dict:
    """DQL's per-task recipe plus OFQL's eta for the task's domain (this project's choice)."""
    return {**dql_task_defaults(task, protocol), "eta": task.eta}


SPEC = AgentSpec(
    name="ofql",
    make=make_ofql,
    default_config=default_config,
    sweepable=SWEEPABLE,
    check=check,
    task_defaults=task_defaults,
    has_critic=True,
    summary="one-step mean-flow policy (u, MeanFlow BC) + twin critics, DQL's recipe",
    source="Nguyen & Yoo, arXiv 2508.13904 (ICLR 2026); no official code",
)

"""Flow Q-Learning (FQL; Park, Li & Levine 2025), the OFQL paper's one-step baseline.

A flow BC policy ``v(z_t, t | s)`` learns the data's velocity field by flow matching; a
separate one-step policy ``mu(s, z)`` is trained to match the flow's 10-step Euler action
from the same noise (distillation, weight ``alpha``) while maximising Q. It acts with
``clip(mu(s, e), -1, 1)``: one network call, like OFQL. Everything follows FQL's code
(github.com/seohongpark/fql, ``agents/fql.py``) except the network sizes, which are the
OFQL comparison's 3 x 256 Mish (so costs compare), and the time direction, which is this
project's (``ofql_jax.maths.flow_matching`` explains the conversion). FQL has no EMA policy:
``target_policy_params`` is the online one-step policy. The flow network and its Adam state
live in ``state.extra``.

Example:
    >>> agent = make_fql(default_config(), obs_dim=11, act_dim=3)
    >>> state = agent.init(jax.random.key(0))
    >>> sorted(state.extra)
    ['flow_opt_state', 'flow_params']
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from ofql_jax.agents import base
from ofql_jax.agents.base import Agent, AgentSpec, AgentState, Params
from ofql_jax.core.types import Transitions
from ofql_jax.maths import critic as critic_lib
from ofql_jax.maths import flow_matching
from ofql_jax.maths.diagnostics import action_moves
from ofql_jax.maths.networks import MLP, TimeEmbedding
from ofql_jax.maths.optim import apply_adam


def default_config() -> ml_collections.ConfigDict:
    """FQL's hyperparameters (its ``agents/fql.py``) at the OFQL comparison's network sizes."""
    c = ml_collections.ConfigDict()
    # Networks: the OFQL comparison's sizes, so training and acting costs compare with OFQL.
    c.hidden_dims = (256, 256, 256)  # flow BC and one-step policy MLPs (FQL: 4 x 512)
    c.critic_hidden_dims = (256, 256, 256)  # each critic head (FQL: 4 x 512 with LayerNorm)
    c.activation = "mish"  # mish | relu | gelu | silu (FQL: gelu)
    c.init_scheme = "pytorch"  # pytorch | lecun (FQL: Glorot uniform, zero bias)
    c.time_dim = 0  # 0: raw t is an input, as FQL's ActorVectorField; > 0: sinusoidal embedding
    c.time_scale = 1.0  # t in [0, 1] is scaled by this before the embedding (time_dim > 0)
    c.matmul_dtype = "float32"  # float32 | bfloat16 (bf16 matmul inputs, f32 accumulation)
    # Optimisation (FQL: one Adam, lr 3e-4, on all networks; no gradient clip).
    c.actor_lr = 3e-4  # Adam lr of the one-step policy and of the flow BC network (FQL)
    c.critic_lr = 3e-4  # Adam lr of the critics (FQL)
    c.lr_decay = False  # cosine decay of the lrs to 0 over num_steps (not in FQL)
    c.grad_norm = 0.0  # global-norm clip of each network's gradient; <= 0 disables (FQL: none)
    c.discount = 0.99  # gamma (FQL)
    c.tau = 0.005  # Polyak rate of the target critics, every step (FQL)
    # FQL.
    c.alpha = 10.0  # distillation weight (FQL's default; per task: task_defaults)
    c.flow_steps = 10  # Euler steps of the BC flow that give the distillation target (FQL)
    c.q_agg = "mean"  # TD target over the two target critics: mean | min (FQL: mean)
    c.normalize_q_loss = False  # Q term / sg(eps + mean |Q|) (FQL: off; its README: on for
    # new environments, which makes alpha independent of the reward scale)
    c.q_norm_eps = 0.0  # eps of normalize_q_loss (FQL: none, i.e. 0)
    c.bc_loss_reduction = "mean"  # mean | sum over action dims, flow BC and distillation (FQL)
    return c


SWEEPABLE = ("alpha", "actor_lr", "critic_lr", "grad_norm")  # hparams leaves


class FlowVelocityField(nn.Module):
    """A velocity field ``v(z, t | s)``: an MLP on ``concat[s, z, time]``, ``time`` the raw
    ``t`` (``time_dim = 0``, FQL's ActorVectorField) or DQL's sinusoidal time MLP.

    Example:
        >>> net = FlowVelocityField(action_dim=3, hidden_dims=(8,))
        >>> z, s, t = jnp.zeros((5, 3)), jnp.zeros((5, 11)), jnp.ones(5)
        >>> net.apply(net.init(jax.random.key(0), z, t, s), z, t, s).shape
        (5, 3)
    """

    action_dim: int
    hidden_dims: Sequence[int] = (256, 256, 256)
    activation: str = "mish"
    time_dim: int = 0
    time_scale: float = 1.0
    init_scheme: str = "pytorch"
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, z: jax.Array, t: jax.Array, obs: jax.Array) -> jax.Array:
        if self.time_dim == 0:
            time = t[..., None].astype(z.dtype)
        else:
            time = TimeEmbedding(
                self.time_dim, self.time_scale, self.activation, self.init_scheme,
                name="t_embedding",
            )(t)  # fmt: skip
        x = jnp.concatenate([obs, z, time], -1)
        mlp = MLP(self.hidden_dims, self.action_dim, self.activation, self.init_scheme,
                  self.matmul_dtype, name="mlp")  # fmt: skip
        return mlp(x)


class OneStepPolicy(nn.Module):
    """FQL's one-step policy ``mu(s, z)``: an MLP on ``concat[s, z]``, unbounded output."""

    action_dim: int
    hidden_dims: Sequence[int] = (256, 256, 256)
    activation: str = "mish"
    init_scheme: str = "pytorch"
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, noise: jax.Array, obs: jax.Array) -> jax.Array:
        mlp = MLP(self.hidden_dims, self.action_dim, self.activation, self.init_scheme,
                  self.matmul_dtype, name="mlp")  # fmt: skip
        return mlp(jnp.concatenate([obs, noise], -1))


def flow_network(config: ml_collections.ConfigDict, act_dim: int) -> FlowVelocityField:
    """The velocity network of a config with FQL's (or FBRAC's) network fields."""
    c = config
    return FlowVelocityField(
        action_dim=act_dim, hidden_dims=tuple(c.hidden_dims), activation=c.activation,
        time_dim=c.time_dim, time_scale=c.time_scale, init_scheme=c.init_scheme,
        matmul_dtype=c.matmul_dtype,
    )  # fmt: skip


def distillation_target(
    v_fn: flow_matching.VelocityFn, noise: jax.Array, flow_steps: int
) -> jax.Array:
    """FQL's target for ``mu(s, e)``: the BC flow's ``flow_steps``-step Euler action from the
    same noise, clipped to [-1, 1], with no gradient (FQL's ``compute_flow_actions``)."""
    actions = flow_matching.euler_sample(v_fn, noise, flow_steps, clip=(-1.0, 1.0))
    return jax.lax.stop_gradient(actions)


def reduce_dims(sq: jax.Array, reduction: str) -> jax.Array:
    """Squared errors ``[..., act]`` -> batch mean of their sum or mean over action dims."""
    return (sq.sum(-1) if reduction == "sum" else sq.mean(-1)).mean()


def make_fql(
    config: ml_collections.ConfigDict, obs_dim: int, act_dim: int, num_steps: int = 1_000_000
) -> Agent:
    """Build FQL's pure functions; ``num_steps`` only matters with ``lr_decay``."""
    c = config
    flow = flow_network(c, act_dim)
    actor = OneStepPolicy(act_dim, tuple(c.hidden_dims), c.activation, c.init_scheme,
                          c.matmul_dtype)  # fmt: skip
    critics = critic_lib.make_critics(c)
    tx = base.adam_direction(c.grad_norm)

    def lr(state: AgentState, name: str) -> jax.Array:
        return base.learning_rate(state.hparams[name], state.step, c.lr_decay, num_steps)

    def v_fn(params: Params, obs: jax.Array) -> flow_matching.VelocityFn:
        return lambda z, t: flow.apply(params, z, t, obs)

    def act(params: Params, obs: jax.Array, noise: jax.Array) -> jax.Array:
        return jnp.clip(actor.apply(params, noise, obs), -1.0, 1.0)

    def q_term(q: jax.Array) -> jax.Array:
        """FQL's actor Q term from ``q [2, batch]``: the heads' mean, optionally normalised."""
        q = q.mean(0)
        q_loss = -q.mean()
        if c.normalize_q_loss:
            q_loss = q_loss / jax.lax.stop_gradient(c.q_norm_eps + jnp.abs(q).mean())
        return q_loss

    def init(key: jax.Array) -> AgentState:
        k_flow, k_actor, k_critic, k_rng = jax.random.split(key, 4)
        obs, a, t = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim)), jnp.zeros((1,))
        flow_params = flow.init(k_flow, a, t, obs)
        policy_params = actor.init(k_actor, a, obs)
        critic_params = critics.init(k_critic, obs, a)
        return AgentState.initial(
            k_rng,
            policy_params,
            tx,
            base.hparams_from(c, SWEEPABLE),
            critic_params=critic_params,
            critic_tx=tx,
            extra={"flow_params": flow_params, "flow_opt_state": tx.init(flow_params)},
        )

    def update(state: AgentState, batch: Transitions) -> tuple[AgentState, dict[str, jax.Array]]:
        rng, k_next, k_bc, k_noise = jax.random.split(jax.random.wrap_key_data(state.rng), 4)
        gn = base.clip_threshold(state, c)
        obs, flow_params = batch.observations, state.extra["flow_params"]
        # FQL takes one gradient step on critic + actor losses computed from the same (old)
        # parameters: the TD target uses the current one-step policy, the Q term the current
        # critic (not the freshly updated one, unlike DQL and OFQL).
        next_noise = jax.random.normal(k_next, batch.actions.shape)
        next_actions = act(state.policy_params, batch.next_observations, next_noise)
        q_next = critics.apply(state.target_critic_params, batch.next_observations, next_actions)
        q_next = q_next.min(0) if c.q_agg == "min" else q_next.mean(0)
        y = jax.lax.stop_gradient(batch.rewards + c.discount * (1.0 - batch.dones) * q_next)

        def critic_loss_fn(params):
            # Sum over heads (DQL's; FQL averages them: the same Adam step, up to Adam's eps).
            return critic_lib.critic_loss(critics.apply(params, obs, batch.actions), y)

        (_, critic_info), critic_grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(
            state.critic_params
        )
        critic_params, critic_opt_state = apply_adam(
            tx, state.critic_params, critic_grads, state.critic_opt_state, lr(state, "critic_lr"),
            gn,
        )  # fmt: skip

        # Flow BC network: flow matching on the dataset actions.
        def bc_loss_fn(params):
            return flow_matching.flow_bc_loss(
                v_fn(params, obs), batch.actions, k_bc, c.bc_loss_reduction
            )

        bc_loss, flow_grads = jax.value_and_grad(bc_loss_fn)(flow_params)
        new_flow_params, flow_opt_state = apply_adam(
            tx, flow_params, flow_grads, state.extra["flow_opt_state"], lr(state, "actor_lr"), gn
        )

        # One-step policy: alpha * distillation to the flow's Euler action + Q term.
        noise = jax.random.normal(k_noise, batch.actions.shape)
        target = distillation_target(v_fn(flow_params, obs), noise, c.flow_steps)
        alpha = state.hparams["alpha"]

        def actor_loss_fn(params):
            raw = actor.apply(params, noise, obs)
            distill_loss = reduce_dims(jnp.square(raw - target), c.bc_loss_reduction)
            actions = jnp.clip(raw, -1.0, 1.0)
            q = critics.apply(state.critic_params, obs, actions)
            q_loss = q_term(q)
            info = {
                "actor/distill_loss": distill_loss,
                "actor/q_loss": q_loss,
                "actor/q_mean": q.mean(),
                "actor/action_abs_mean": jnp.abs(actions).mean(),
            }
            return alpha * distill_loss + q_loss, info

        (one_step_loss, actor_info), policy_grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
            state.policy_params
        )
        policy_params, policy_opt_state = apply_adam(
            tx, state.policy_params, policy_grads, state.policy_opt_state, lr(state, "actor_lr"), gn
        )
        target_critic_params = critic_lib.polyak(state.target_critic_params, critic_params, c.tau)

        info = {
            **critic_info,
            **actor_info,
            "critic/grad_norm": optax.tree.norm(critic_grads),
            "actor/loss": bc_loss + one_step_loss,  # FQL's actor_loss
            "actor/bc_flow_loss": bc_loss,
            "actor/grad_norm": optax.tree.norm(policy_grads),
            "actor/flow_grad_norm": optax.tree.norm(flow_grads),
        }
        new_state = state.replace(
            step=state.step + 1,
            rng=jax.random.key_data(rng),
            policy_params=policy_params,
            target_policy_params=policy_params,  # FQL has no EMA policy
            critic_params=critic_params,
            target_critic_params=target_critic_params,
            policy_opt_state=policy_opt_state,
            critic_opt_state=critic_opt_state,
            extra={"flow_params": new_flow_params, "flow_opt_state": flow_opt_state},
        )
        return new_state, info

    decide = base.candidate_decide(act, critics)

    def diagnose(state: AgentState, batch: Transitions, key: jax.Array) -> dict[str, jax.Array]:
        """The one-step policy against the data, the critic and its own distillation target.

        ``q_policy_mean`` (watched against the dataset's value bound), ``distill_error``
        (``||mu(s, e) - flow_K(s, e)||^2``, summed over dims), ``flow_mse_to_data`` and
        ``one_step_mse_to_data`` (against the dataset action at the same state), and
        ``grad_ratio`` = ``||grad Q term|| / (alpha ||grad distillation||)``, and where the two
        terms move the one-step action (``diagnostics.action_moves``; BC = alpha x distillation).
        """
        k_noise, k_bc = jax.random.split(key)
        obs, data_actions, params = batch.observations, batch.actions, state.policy_params
        flow_params = state.extra["flow_params"]
        noise = jax.random.normal(k_noise, data_actions.shape)
        raw = actor.apply(params, noise, obs)
        actions = jnp.clip(raw, -1.0, 1.0)
        flow_actions = distillation_target(v_fn(flow_params, obs), noise, c.flow_steps)
        q_policy = critics.apply(state.critic_params, obs, actions)
        q_data = critics.apply(state.critic_params, obs, data_actions)

        def distill(p):
            return reduce_dims(jnp.square(actor.apply(p, noise, obs) - flow_actions),
                               c.bc_loss_reduction)  # fmt: skip

        def q_loss(p):
            return q_term(critics.apply(state.critic_params, obs, act(p, obs, noise)))

        distill_grads, q_grads = jax.grad(distill)(params), jax.grad(q_loss)(params)
        distill_grad_norm, q_grad_norm = optax.tree.norm(distill_grads), optax.tree.norm(q_grads)
        alpha = state.hparams["alpha"]
        moves = action_moves(
            lambda p: act(p, obs, noise), params, q_grads,
            jax.tree.map(lambda g: alpha * g, distill_grads), 1.0, state.policy_opt_state,
        )  # fmt: skip
        bc_loss = flow_matching.flow_bc_loss(
            v_fn(flow_params, obs), data_actions, k_bc, c.bc_loss_reduction
        )
        return {
            **base.action_diagnostics(actions, data_actions, q_policy, q_data),
            "diag/clip_rate": jnp.mean(jnp.abs(raw) > 1.0),
            "diag/raw_action_abs_max": jnp.abs(raw).max(),
            "diag/flow_mse_to_data": jnp.square(flow_actions - data_actions).sum(-1).mean(),
            "diag/distill_error": jnp.square(raw - flow_actions).sum(-1).mean(),
            "diag/bc_flow_loss": bc_loss,
            "diag/distill_grad_norm": distill_grad_norm,
            "diag/q_grad_norm": q_grad_norm,
            "diag/grad_ratio": q_grad_norm / (alpha * distill_grad_norm + 1e-12),
            **moves,
        }

    return Agent(
        init, update, base.standard_sample_actions(lambda: decide, act_dim), decide, config,
        obs_dim, act_dim, diagnose, noise_dim=act_dim, has_critic=True, name="fql",
    )  # fmt: skip


def check_time_dim(a: ml_collections.ConfigDict) -> None:
    base.require(a.time_dim == 0 or (a.time_dim >= 4 and a.time_dim % 2 == 0), "agent.time_dim",
                 a.time_dim, "0 (raw t) or an even integer >= 4")  # fmt: skip


def check(a: ml_collections.ConfigDict) -> None:
    """FQL's config checks (also applied to each swept setting)."""
    base.check_common(a)
    check_time_dim(a)
    base.require(a.alpha >= 0.0, "agent.alpha", a.alpha, ">= 0")
    base.require(a.flow_steps >= 1, "agent.flow_steps", a.flow_steps, "a positive integer")
    base.require(a.q_agg in ("mean", "min"), "agent.q_agg", a.q_agg, "mean or min")
    base.require(
        a.bc_loss_reduction in ("sum", "mean"), "agent.bc_loss_reduction", a.bc_loss_reduction,
        "sum or mean",
    )  # fmt: skip


# FQL's D4RL alpha (its README's exact commands, = its paper's table): unnormalised Q term,
# q_agg mean. FQL's rewards there are r - 1; this project tunes AntMaze rewards as CQL,
# (r - 0.5) * 4, which makes the Q term's action gradient about 2x larger (alpha / 2 in FQL's
# units): sweep alpha if that matters.
FQL_D4RL_ALPHA = {
    "antmaze-umaze": 10.0,
    "antmaze-umaze-diverse": 10.0,
    "antmaze-medium-play": 10.0,
    "antmaze-medium-diverse": 10.0,
    "antmaze-large-play": 3.0,
    "antmaze-large-diverse": 3.0,
}
# Tasks FQL did not run (ours): normalised Q term (FQL's README advice for new environments)
# with alpha = 0.4 on locomotion, TD3+BC's balance (2.5 / mean|Q| against the MSE, i.e.
# alpha = 1 / 2.5) written in FQL's form; 10 on Kitchen, where DQL's and OFQL's Q weights are
# 30-200x smaller than on locomotion. Clipped double Q (q_agg min, FQL's ablation option)
# because these critics lack FQL's LayerNorm.
OUR_ALPHA = {"locomotion": 0.4, "kitchen": 10.0}


def task_defaults(task, protocol: str) -> dict:
    """FQL's per-task alpha where FQL gives one, ours elsewhere; FQL's lr (3e-4) and no
    gradient clip under both protocols (DQL's per-task lr and clip are DQL's tuning)."""
    del protocol
    if task.name in FQL_D4RL_ALPHA:
        return {"alpha": FQL_D4RL_ALPHA[task.name], "normalize_q_loss": False, "q_agg": "mean"}
    return {"alpha": OUR_ALPHA[task.domain], "normalize_q_loss": True, "q_agg": "min"}


SPEC = AgentSpec(
    name="fql", label="FQL", make=make_fql, default_config=default_config,
    sweepable=SWEEPABLE, check=check, task_defaults=task_defaults, q_policy_key=base.Q_POLICY_MEAN,
    variant_field="flow_steps",
    summary="flow BC policy (v, 10 Euler steps) distilled into a one-step policy + Q, twin critics",
    source="Park, Li & Levine, ICML 2025 (2502.02538); github.com/seohongpark/fql")  # fmt: skip

"""FBRAC(T): a flow-matching policy whose Q term is back-propagated through T Euler steps.

The OFQL paper's one-step ablation baseline ("flow policy trained with 5 Euler steps and
backprop through them, one step at inference"). The policy is a velocity field
``v(z_t, t | s)`` (``ofql_jax.agents.fql.FlowVelocityField``, here with OFQL's sinusoidal
time embedding) trained with the flow-matching BC loss plus ``eta`` times DQL's
|Q|-normalised Q term on the action of ``train_steps`` Euler steps, gradients flowing through
every step. Critics, EMA target policy, gradient clip and per-task recipe are DQL's, as for
OFQL, so the ablation changes the policy only. It acts with ``inference_steps`` Euler steps
(default 1: the paper's FBRAC(1)).

Example:
    >>> agent = make_fbrac(default_config(), obs_dim=11, act_dim=3)
    >>> state = agent.init(jax.random.key(0))
    >>> agent.sample_actions(state, jnp.zeros((2, 11)), jax.random.key(1)).shape
    (2, 3)
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
from ofql_jax.agents.fql import check_time_dim, flow_network
from ofql_jax.core.types import Transitions
from ofql_jax.maths import critic as critic_lib
from ofql_jax.maths import flow_matching
from ofql_jax.maths.diagnostics import action_moves
from ofql_jax.maths.optim import apply_adam
from ofql_jax.maths.selection import repeat_states, select_candidate


def default_config() -> ml_collections.ConfigDict:
    """FBRAC's hyperparameters: OFQL's networks and DQL's recipe (docs/algorithm.md)."""
    c = ml_collections.ConfigDict()
    # Networks (OFQL's sizes, App. B).
    c.hidden_dims = (256, 256, 256)  # policy MLP widths
    c.critic_hidden_dims = (256, 256, 256)  # each critic head's MLP widths
    c.activation = "mish"  # mish | relu | gelu | silu
    c.init_scheme = "pytorch"  # pytorch (DQL) | lecun
    c.time_dim = 64  # sinusoidal t embedding + DQL's time MLP (OFQL's size); 0: raw t (FQL's)
    c.time_scale = 1.0  # t in [0, 1] is scaled by this before the embedding (OFQL's default)
    c.matmul_dtype = "float32"  # float32 | bfloat16 (bf16 matmul inputs, f32 accumulation)
    # Optimisation (DQL's, as OFQL).
    c.actor_lr = 3e-4  # Adam lr of the policy (per task and protocol)
    c.critic_lr = 3e-4  # Adam lr of the critics (DQL)
    c.lr_decay = False  # cosine decay of both lrs to 0 over num_steps (DQL option)
    c.grad_norm = 9.0  # global-norm clip on actor and critic gradients; <= 0 disables (per task)
    c.discount = 0.99  # gamma
    c.tau = 0.005  # Polyak rate of the target critics, every step
    c.ema_decay = 0.995  # EMA decay of the target policy
    c.ema_start = 1000  # before this step the target policy is a copy of the online one
    c.ema_every = 5  # EMA update period (steps)
    # FBRAC.
    c.eta = 0.3  # weight of the normalised Q term (ours: OFQL's per-domain value, task_defaults)
    c.q_norm_eps = 0.0  # q_loss = -Q / (eps + mean|Q|); 0 = DQL's
    c.train_steps = 5  # T: Euler steps of the Q term's action and of the TD target (paper: 5)
    c.inference_steps = 1  # Euler steps when acting (paper: FBRAC(1))
    c.eval_steps = ()  # extra evaluations with these step counts, reported as scores_euler<K>
    c.clip_every_step = False  # clip every Euler iterate to [-1, 1], not only the action
    c.bc_loss_reduction = "sum"  # sum | mean over action dims (sum: OFQL's L_FBC, eta's scale)
    c.max_q_backup = False  # DQL's max-Q backup (AntMaze)
    c.num_backup_samples = 10  # next actions per s' for max_q_backup
    return c


SWEEPABLE = ("eta", "actor_lr", "critic_lr")  # hparams leaves


def make_fbrac(
    config: ml_collections.ConfigDict, obs_dim: int, act_dim: int, num_steps: int = 1_000_000
) -> Agent:
    """Build FBRAC's pure functions; ``num_steps`` only matters with ``lr_decay``."""
    c = config
    policy = flow_network(c, act_dim)
    critics = critic_lib.make_critics(c)
    policy_tx = critic_tx = adam_direction(c.grad_norm)

    def lr(state: AgentState, name: str) -> jax.Array:
        return learning_rate(state.hparams[name], state.step, c.lr_decay, num_steps)

    def v_fn(params: Params, obs: jax.Array) -> flow_matching.VelocityFn:
        return lambda z, t: policy.apply(params, z, t, obs)

    def actions_fn(params: Params, obs: jax.Array, noise: jax.Array, steps: int) -> jax.Array:
        return flow_matching.euler_sample(
            v_fn(params, obs), noise, steps, clip=(-1.0, 1.0), clip_every_step=c.clip_every_step
        )

    def noisy_actions(params: Params, obs: jax.Array, key: jax.Array) -> jax.Array:
        noise = jax.random.normal(key, obs.shape[:-1] + (act_dim,))
        return actions_fn(params, obs, noise, c.train_steps)

    def bc_loss_fn(params: Params, batch: Transitions, key: jax.Array) -> jax.Array:
        return flow_matching.flow_bc_loss(
            v_fn(params, batch.observations), batch.actions, key, c.bc_loss_reduction
        )

    def init(key: jax.Array) -> AgentState:
        k_policy, k_critic, k_rng = jax.random.split(key, 3)
        obs, a, t = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim)), jnp.zeros((1,))
        policy_params = policy.init(k_policy, a, t, obs)
        critic_params = critics.init(k_critic, obs, a)
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
        # Critic first (DQL); the target action is the EMA policy's T-step action.
        critic_params, critic_opt_state, critic_info = critic_lib.critic_step(
            critics, critic_tx, state.critic_params, state.target_critic_params,
            state.critic_opt_state, lr(state, "critic_lr"), batch,
            lambda s, k: noisy_actions(state.target_policy_params, s, k), k_target, c.discount,
            c.max_q_backup, c.num_backup_samples,
        )  # fmt: skip

        # Actor: flow BC + eta * normalised Q of the T-step action, through every step.
        def actor_loss_fn(params):
            bc_loss = bc_loss_fn(params, batch, k_bc)
            new_actions = noisy_actions(params, batch.observations, k_actor)
            q = critics.apply(critic_params, batch.observations, new_actions)
            q_loss = critic_lib.normalized_q_loss(q, jax.random.bernoulli(k_coin), c.q_norm_eps)
            info = {
                "actor/bc_loss": bc_loss,
                "actor/q_loss": q_loss,
                "actor/q_mean": q.mean(),
                "actor/action_abs_mean": jnp.abs(new_actions).mean(),
            }
            return bc_loss + state.hparams["eta"] * q_loss, info

        (loss, actor_info), policy_grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
            state.policy_params
        )
        policy_params, policy_opt_state = apply_adam(
            policy_tx, state.policy_params, policy_grads, state.policy_opt_state,
            lr(state, "actor_lr"),
        )  # fmt: skip
        keep = ema_weight(state.step, c.ema_start, c.ema_every, c.ema_decay)
        target_policy_params = blend(state.target_policy_params, policy_params, keep)
        target_critic_params = critic_lib.polyak(state.target_critic_params, critic_params, c.tau)

        info = {
            **critic_info,
            **actor_info,
            "actor/loss": loss,
            "actor/grad_norm": optax.tree.norm(policy_grads),
        }
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

    def make_decide(steps: int):
        def decide(
            policy_params: Params,
            critic_params: Params,
            obs: jax.Array,
            noise: jax.Array,
            gumbel: jax.Array | None = None,
            q_temperature: float | jax.Array = 1.0,
        ) -> jax.Array:
            """``steps``-step Euler actions from ``noise [..., act]``; with ``noise [..., N,
            act]`` and ``gumbel [..., N]`` a draw from ``softmax(w Q)`` over the N
            candidates (Q = min of ``critic_params``)."""
            if gumbel is None:
                return actions_fn(policy_params, obs, noise, steps)
            obs_rep = repeat_states(obs, noise.shape[-2])
            candidates = actions_fn(policy_params, obs_rep, noise, steps)
            q = critics.apply(critic_params, obs_rep, candidates).min(0)
            return select_candidate(candidates, q, gumbel, q_temperature)

        return decide

    decide = make_decide(c.inference_steps)

    def sample_actions(
        state: AgentState,
        obs: jax.Array,
        key: jax.Array,
        num_candidates: int = 1,
        *,
        actor: str = "online",
        noise_temperature: float = 1.0,
        q_temperature: float = 1.0,
        inference_steps: int | None = None,
    ) -> jax.Array:
        """The standard sampler, with ``inference_steps`` overriding the config's."""
        steps = c.inference_steps if inference_steps is None else inference_steps
        sample = standard_sample_actions(make_decide(steps), act_dim)
        return sample(
            state, obs, key, num_candidates, actor=actor, noise_temperature=noise_temperature,
            q_temperature=q_temperature,
        )  # fmt: skip

    def diagnose(state: AgentState, batch: Transitions, key: jax.Array) -> dict[str, jax.Array]:
        """The acting (``inference_steps``) policy against the data and the critic, its gap to
        the ``train_steps`` action the Q term optimises, ``grad_ratio`` = eta ||grad Q
        term|| / ||grad BC||, and where each term moves the acting action
        (``diagnostics.action_moves``). ``clip_rate`` is measured on the unclipped integration."""
        k_bc, k_noise = jax.random.split(key)
        obs, data_actions, params = batch.observations, batch.actions, state.policy_params
        noise = jax.random.normal(k_noise, data_actions.shape)
        raw = flow_matching.euler_sample(v_fn(params, obs), noise, c.inference_steps)
        actions = actions_fn(params, obs, noise, c.inference_steps)
        train_actions = actions_fn(params, obs, noise, c.train_steps)
        q_policy = critics.apply(state.critic_params, obs, actions)
        q_train = critics.apply(state.critic_params, obs, train_actions)
        q_data = critics.apply(state.critic_params, obs, data_actions)

        def q_term(p):  # both head orders averaged: the expected actor Q term
            q = critics.apply(state.critic_params, obs, actions_fn(p, obs, noise, c.train_steps))
            return 0.5 * sum(
                critic_lib.normalized_q_loss(q, lead, c.q_norm_eps) for lead in (True, False)
            )

        bc_grads, q_grads = jax.grad(bc_loss_fn)(params, batch, k_bc), jax.grad(q_term)(params)
        bc_grad_norm, q_grad_norm = optax.tree.norm(bc_grads), optax.tree.norm(q_grads)
        moves = action_moves(
            lambda p: actions_fn(p, obs, noise, c.inference_steps), params, q_grads, bc_grads,
            state.hparams["eta"], state.policy_opt_state,
        )  # fmt: skip
        return {
            "diag/q_policy_mean": q_policy.mean(),
            "diag/q_policy_max": q_policy.min(0).max(),
            "diag/q_policy_train_mean": q_train.mean(),
            "diag/q_data_mean": q_data.mean(),
            "diag/clip_rate": jnp.mean(jnp.abs(raw) > 1.0),
            "diag/raw_action_abs_max": jnp.abs(raw).max(),
            "diag/action_abs_mean": jnp.abs(actions).mean(),
            "diag/saturation": jnp.mean(jnp.abs(actions) > 0.99),
            "diag/data_saturation": jnp.mean(jnp.abs(data_actions) > 0.99),
            "diag/one_step_mse_to_data": jnp.square(actions - data_actions).sum(-1).mean(),
            "diag/train_steps_mse_to_data": jnp.square(train_actions - data_actions).sum(-1).mean(),
            "diag/train_inference_gap": jnp.square(train_actions - actions).sum(-1).mean(),
            "diag/bc_grad_norm": bc_grad_norm,
            "diag/q_grad_norm": q_grad_norm,
            "diag/grad_ratio": state.hparams["eta"] * q_grad_norm / (bc_grad_norm + 1e-12),
            **moves,
        }

    eval_options = {f"euler{k}": {"inference_steps": int(k)} for k in c.eval_steps}
    return Agent(
        init, update, sample_actions, decide, config, obs_dim, act_dim, diagnose,
        noise_dim=act_dim, has_critic=True, name="fbrac", eval_options=eval_options,
    )  # fmt: skip


def check(a: ml_collections.ConfigDict) -> None:
    """FBRAC's config checks (also applied to each swept setting)."""
    check_common(a)
    check_time_dim(a)
    require(a.eta >= 0.0, "agent.eta", a.eta, ">= 0")
    for field in ("train_steps", "inference_steps"):
        require(a[field] >= 1, f"agent.{field}", a[field], "a positive integer")
    require(all(k >= 1 for k in a.eval_steps), "agent.eval_steps", a.eval_steps,
            "a tuple of positive integers")  # fmt: skip
    require(
        a.bc_loss_reduction in ("sum", "mean"), "agent.bc_loss_reduction", a.bc_loss_reduction,
        "sum or mean",
    )  # fmt: skip


def task_defaults(task, protocol: str) -> dict:
    """DQL's per-task recipe (lr by protocol, gradient clip, max-Q backup) and OFQL's eta for
    the task's domain (ours: the ablation then changes the policy only)."""
    return {**dql_task_defaults(task, protocol), "eta": task.eta}


SPEC = AgentSpec(
    name="fbrac",
    make=make_fbrac,
    default_config=default_config,
    sweepable=SWEEPABLE,
    check=check,
    task_defaults=task_defaults,
    has_critic=True,
    summary="flow policy (v) + Q term back-propagated through T = 5 Euler steps, 1 step to act",
    source="the OFQL paper's FBRAC ablation (arXiv 2508.13904); FQL's FBRAC baseline (2502.02538)",
)

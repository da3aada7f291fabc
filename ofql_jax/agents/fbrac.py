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

from ofql_jax.agents import base, ofql
from ofql_jax.agents.actor_critic import ActorCritic
from ofql_jax.agents.base import Agent, AgentSpec, AgentState, Params
from ofql_jax.agents.fql import check_time_dim, flow_network
from ofql_jax.core.types import Transitions
from ofql_jax.maths import flow_matching


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


SWEEPABLE = ("eta", "actor_lr", "critic_lr", "grad_norm")  # hparams leaves


def make_fbrac(
    config: ml_collections.ConfigDict, obs_dim: int, act_dim: int, num_steps: int = 1_000_000
) -> Agent:
    """Build FBRAC's pure functions; ``num_steps`` only matters with ``lr_decay``."""
    c = config
    policy = flow_network(c, act_dim)

    def v_fn(params: Params, obs: jax.Array) -> flow_matching.VelocityFn:
        return lambda z, t: policy.apply(params, z, t, obs)

    def euler(steps: int):
        """The ``steps``-step Euler action of ``(params, obs, noise)``, clipped to [-1, 1]."""

        def act(params: Params, obs: jax.Array, noise: jax.Array) -> jax.Array:
            return flow_matching.euler_sample(
                v_fn(params, obs), noise, steps, clip=(-1.0, 1.0),
                clip_every_step=c.clip_every_step,
            )  # fmt: skip

        return act

    def noisy_actions(params: Params, obs: jax.Array, key: jax.Array) -> jax.Array:
        noise = jax.random.normal(key, obs.shape[:-1] + (act_dim,))
        return euler(c.train_steps)(params, obs, noise)

    def bc_loss_fn(params: Params, batch: Transitions, key: jax.Array) -> jax.Array:
        return flow_matching.flow_bc_loss(
            v_fn(params, batch.observations), batch.actions, key, c.bc_loss_reduction
        )

    def init_policy(key: jax.Array, obs: jax.Array, act: jax.Array) -> Params:
        return policy.init(key, act, jnp.zeros((1,)), obs)

    # The Q term and the TD target use the train_steps action, gradients through every step.
    ac = ActorCritic(
        c, obs_dim, act_dim, num_steps, SWEEPABLE, init_policy, noisy_actions,
        lambda params, state, batch, key: (bc_loss_fn(params, batch, key), {}),
    )  # fmt: skip

    def decide_with(inference_steps: int | None = None):
        """``decide`` acting with ``inference_steps`` Euler steps (default: the config's)."""
        steps = c.inference_steps if inference_steps is None else inference_steps
        return base.candidate_decide(euler(steps), ac.critics)

    def diagnose(state: AgentState, batch: Transitions, key: jax.Array) -> dict[str, jax.Array]:
        """The acting (``inference_steps``) policy against the data and the critic, its gap to
        the ``train_steps`` action the Q term optimises, ``grad_ratio`` = eta ||grad Q
        term|| / ||grad BC||, and where each term moves the acting action
        (``diagnostics.action_moves``). ``clip_rate`` is measured on the unclipped integration."""
        k_bc, k_noise = jax.random.split(key)
        obs, data_actions, params = batch.observations, batch.actions, state.policy_params
        noise = jax.random.normal(k_noise, data_actions.shape)
        acting, training = euler(c.inference_steps), euler(c.train_steps)
        raw = flow_matching.euler_sample(v_fn(params, obs), noise, c.inference_steps)
        actions = acting(params, obs, noise)
        train_actions = training(params, obs, noise)
        q_policy = ac.critics.apply(state.critic_params, obs, actions)
        q_train = ac.critics.apply(state.critic_params, obs, train_actions)
        q_data = ac.critics.apply(state.critic_params, obs, data_actions)
        _, terms = ac.actor_term_diagnostics(
            state, obs, lambda p: bc_loss_fn(p, batch, k_bc), lambda p: training(p, obs, noise),
            lambda p: acting(p, obs, noise),
        )  # fmt: skip
        return {
            **base.action_diagnostics(actions, data_actions, q_policy, q_data),
            "diag/q_policy_train_mean": q_train.mean(),
            "diag/clip_rate": jnp.mean(jnp.abs(raw) > 1.0),
            "diag/raw_action_abs_max": jnp.abs(raw).max(),
            "diag/train_steps_mse_to_data": jnp.square(train_actions - data_actions).sum(-1).mean(),
            "diag/train_inference_gap": jnp.square(train_actions - actions).sum(-1).mean(),
            **terms,
        }

    eval_options = {f"euler{k}": {"inference_steps": int(k)} for k in c.eval_steps}
    return Agent(
        ac.init, ac.update, base.standard_sample_actions(decide_with, act_dim), decide_with(),
        config, obs_dim, act_dim, diagnose, noise_dim=act_dim, has_critic=True, name="fbrac",
        eval_options=eval_options,
    )  # fmt: skip


def check(a: ml_collections.ConfigDict) -> None:
    """FBRAC's config checks (also applied to each swept setting)."""
    base.check_common(a)
    check_time_dim(a)
    base.require(a.eta >= 0.0, "agent.eta", a.eta, ">= 0")
    for field in ("train_steps", "inference_steps"):
        base.require(a[field] >= 1, f"agent.{field}", a[field], "a positive integer")
    base.require(all(k >= 1 for k in a.eval_steps), "agent.eval_steps", a.eval_steps,
                 "a tuple of positive integers")  # fmt: skip
    base.require(
        a.bc_loss_reduction in ("sum", "mean"), "agent.bc_loss_reduction", a.bc_loss_reduction,
        "sum or mean",
    )  # fmt: skip


def task_defaults(task, protocol: str) -> dict:
    """DQL's per-task recipe (lr by protocol, gradient clip, max-Q backup) and OFQL's eta for
    the task's domain (ours: the ablation then changes the policy only)."""
    return ofql.task_defaults(task, protocol)


SPEC = AgentSpec(
    name="fbrac", label="FBRAC", make=make_fbrac, default_config=default_config,
    sweepable=SWEEPABLE, check=check, task_defaults=task_defaults, q_policy_key=base.Q_POLICY_MEAN,
    variant_field="train_steps",
    summary="flow policy (v) + Q term back-propagated through T = 5 Euler steps, 1 step to act",
    source="FBRAC ablation of the OFQL paper (2508.13904) and of FQL (2502.02538)")  # fmt: skip

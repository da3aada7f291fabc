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

from ofql_jax.agents import base, dql
from ofql_jax.agents.actor_critic import ActorCritic
from ofql_jax.agents.base import Agent, AgentSpec, AgentState, Params
from ofql_jax.core.types import Transitions
from ofql_jax.maths import meanflow
from ofql_jax.maths.networks import MeanVelocityField


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
    c.lr_decay = False  # cosine decay of both lrs to 0 over num_steps (DQL's README: on; unknown)
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
    c.endpoint_ratio = 0.01  # share of L_FBC pairs set to (r, t) = (0, 1), the one-step map;
    # 0 = the paper's sampler (its one-step map left the data after 150k steps on hopper
    # medium-expert); 0.01 (ours) tethers it; 0.25 pins the map the Q term moves: algorithm.md s. 7
    c.uniform_ratio = 0.0  # share of L_FBC pairs from two sorted uniforms, not logit-normals (ours)
    c.time_mean = -0.4  # logit-normal mean for (t, r)
    c.time_std = 1.0  # logit-normal std for (t, r)
    c.bc_loss_reduction = "sum"  # sum (Eq. 14's squared norm) | mean over action dims (x d eta)
    c.loss_weight_power = 0.0  # MeanFlow adaptive loss weight power p; 0 = off (unknown for OFQL)
    c.loss_weight_eps = 1e-3  # MeanFlow adaptive loss weight constant c
    c.max_q_backup = False  # DQL's max-Q backup (AntMaze)
    c.num_backup_samples = 10  # next actions per s' for max_q_backup
    return c


SWEEPABLE = (
    "eta", "flow_ratio", "endpoint_ratio", "uniform_ratio", "actor_lr", "critic_lr", "grad_norm",
)  # fmt: skip


def policy_network(config: ml_collections.ConfigDict, act_dim: int) -> MeanVelocityField:
    """The mean-velocity network of a config with OFQL's (or flow BC's) policy fields."""
    c = config
    return MeanVelocityField(
        action_dim=act_dim, hidden_dims=tuple(c.hidden_dims), activation=c.activation,
        time_dim=c.time_dim, time_scale=c.time_scale, second_time=c.second_time,
        init_scheme=c.init_scheme, matmul_dtype=c.matmul_dtype,
    )  # fmt: skip


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
    policy = policy_network(c, act_dim)

    def u_fn(params, obs):
        return lambda z, r, t: policy.apply(params, z, r, t, obs)

    def act(params: Params, obs: jax.Array, noise: jax.Array) -> jax.Array:
        return meanflow.one_step_action(u_fn(params, obs), noise)

    def actions_fn(params, obs, key):
        return act(params, obs, jax.random.normal(key, obs.shape[:-1] + (act_dim,)))

    def bc_loss_fn(params, state: AgentState, batch: Transitions, key: jax.Array):
        return meanflow.flow_bc_loss(
            u_fn(params, batch.observations), batch.actions, key, state.hparams["flow_ratio"],
            c.time_mean, c.time_std, c.bc_loss_reduction, c.loss_weight_power,
            c.loss_weight_eps, state.hparams["endpoint_ratio"], state.hparams["uniform_ratio"],
        )  # fmt: skip

    def init_policy(key: jax.Array, obs: jax.Array, act: jax.Array) -> Params:
        time = jnp.zeros((1,))
        return policy.init(key, act, time, time, obs)

    ac = ActorCritic(c, obs_dim, act_dim, num_steps, SWEEPABLE, init_policy, actions_fn, bc_loss_fn)
    decide = base.candidate_decide(act, ac.critics)

    def diagnose(state: AgentState, batch: Transitions, key: jax.Array) -> dict[str, jax.Array]:
        """What the training metrics do not show: where the one-step policy sits relative to
        the data and to the critic, on ``batch``; nothing is updated.

        ``q_policy_mean`` (the critics' mean value of the policy's actions, watched against
        the dataset's value bound), ``q_data_mean``, ``clip_rate`` (pre-clip one-step action
        components outside [-1, 1]), ``raw_action_abs_max``, ``saturation`` (|a| > 0.99, as
        ``data_saturation``), ``one_step_mse_to_data`` (``||a_pi(s) - a||^2`` against the
        dataset action at the same state), ``bc_loss_endpoint`` (L_FBC at (r, t) = (0, 1),
        the map the policy acts with), ``two_step_mse_to_data`` and ``two_step_saturation``
        (the same network sampled in two mean-flow jumps, which the Q term does not act on:
        apart from the one-step map's, the Q term bent only the corner of the field),
        ``grad_ratio`` = eta ||grad Q term|| / ||grad L_FBC||, and
        where each term moves the one-step action (``diagnostics.action_moves``).
        """
        k_bc, k_noise = jax.random.split(key)
        obs, data_actions, params = batch.observations, batch.actions, state.policy_params
        noise = jax.random.normal(k_noise, data_actions.shape)
        _, terms = ac.actor_term_diagnostics(
            state, obs, lambda p: bc_loss_fn(p, state, batch, k_bc)[0],
            lambda p: act(p, obs, noise),
        )  # fmt: skip
        ones = jnp.ones(noise.shape[:-1])
        raw = noise - u_fn(params, obs)(noise, 0.0 * ones, ones)
        actions = jnp.clip(raw, -1.0, 1.0)
        q_policy = ac.critics.apply(state.critic_params, obs, actions)
        q_data = ac.critics.apply(state.critic_params, obs, data_actions)
        u_end, target_end = meanflow.meanflow_target(
            u_fn(params, obs), noise, 0.0 * ones, ones, noise - data_actions
        )
        two_step = meanflow.few_step_action(u_fn(params, obs), noise, 2)
        return {
            **base.action_diagnostics(actions, data_actions, q_policy, q_data),
            "diag/two_step_mse_to_data": jnp.square(two_step - data_actions).sum(-1).mean(),
            "diag/two_step_saturation": jnp.mean(jnp.abs(two_step) > 0.99),
            "diag/clip_rate": jnp.mean(jnp.abs(raw) > 1.0),
            "diag/raw_action_abs_max": jnp.abs(raw).max(),
            "diag/bc_loss_endpoint": jnp.square(u_end - target_end).sum(-1).mean(),
            **terms,
        }

    return Agent(
        ac.init, ac.update, base.standard_sample_actions(lambda: decide, act_dim), decide, config,
        obs_dim, act_dim, diagnose, noise_dim=act_dim, has_critic=True, name="ofql",
    )  # fmt: skip


def check_policy(a: ml_collections.ConfigDict) -> None:
    """Checks of the policy and L_FBC fields (OFQL's and flow BC's)."""
    base.check_common(a)
    base.require(0.0 <= a.flow_ratio <= 1.0, "agent.flow_ratio", a.flow_ratio, "in [0, 1]")
    base.require(
        0.0 <= a.endpoint_ratio <= 1.0, "agent.endpoint_ratio", a.endpoint_ratio, "in [0, 1]"
    )
    base.require(a.time_std > 0, "agent.time_std", a.time_std, "> 0")
    base.require(a.time_dim >= 4 and a.time_dim % 2 == 0, "agent.time_dim", a.time_dim,
                 "an even integer >= 4")  # fmt: skip
    base.require(
        a.second_time in ("r", "t_minus_r"), "agent.second_time", a.second_time, "r or t_minus_r"
    )
    base.require(
        a.bc_loss_reduction in ("sum", "mean"), "agent.bc_loss_reduction", a.bc_loss_reduction,
        "sum or mean",
    )  # fmt: skip


def check(a: ml_collections.ConfigDict) -> None:
    """OFQL's own config checks (also applied to each swept setting)."""
    check_policy(a)
    base.require(a.eta >= 0.0, "agent.eta", a.eta, ">= 0")


# OFQL's eta per domain: the paper does not publish it; this project's choice from the
# paper's grid {0.001, 0.01, 0.1, 0.3, 0.5} (docs/algorithm.md).
ETA = {"locomotion": 0.3, "antmaze": 0.5, "kitchen": 0.01}


def task_defaults(task, protocol: str) -> dict:
    """DQL's per-task recipe plus OFQL's eta for the task's domain (this project's choice)."""
    return {**dql.recipe(task, protocol), "eta": ETA[task.domain]}


SPEC = AgentSpec(
    name="ofql", label="OFQL", make=make_ofql, default_config=default_config,
    sweepable=SWEEPABLE, check=check, task_defaults=task_defaults, q_policy_key=base.Q_POLICY_MEAN,
    summary="one-step mean-flow policy (u, MeanFlow BC) + twin critics, DQL's recipe",
    source="Nguyen & Yoo, arXiv 2508.13904 (ICLR 2026); no official code")  # fmt: skip

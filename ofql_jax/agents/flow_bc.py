"""Flow BC: OFQL's mean-velocity policy trained on the MeanFlow loss L_FBC alone.

The paper's BC reference inside OFQL's own policy class: the same network, time sampler,
EMA target policy and one-step action ``clip(e - u(e, 0, 1 | s), -1, 1)`` as OFQL, but no
Q term and therefore no critic to train or pay for. Evaluation uses the one-step policy
(N = 1). ``--config.algorithm=ofql --config.agent.eta=0`` trains the same policy with an
(unused) critic beside it, which keeps sweeps over eta in one program.

Example:
    >>> agent = make_flow_bc(default_config(), obs_dim=11, act_dim=3)
    >>> state = agent.init(jax.random.key(0))
    >>> agent.sample_actions(state, jnp.zeros((2, 11)), jax.random.key(1)).shape
    (2, 3)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ofql_jax.agents import ofql
from ofql_jax.agents.base import (
    Agent,
    AgentSpec,
    AgentState,
    adam_direction,
    blend,
    check_common,
    ema_weight,
    hparams_from,
    learning_rate,
    require,
    standard_sample_actions,
)
from ofql_jax.core.types import Transitions
from ofql_jax.maths import meanflow
from ofql_jax.maths.networks import MeanVelocityField
from ofql_jax.maths.optim import apply_adam

SWEEPABLE = ("flow_ratio", "endpoint_ratio", "actor_lr")
# OFQL's fields that only concern the critic or the Q term.
_CRITIC_FIELDS = (
    "critic_hidden_dims", "critic_lr", "discount", "tau", "eta", "q_norm_eps",
    "max_q_backup", "num_backup_samples",
)  # fmt: skip


def default_config() -> ml_collections.ConfigDict:
    """OFQL's policy, time sampler, optimiser and EMA fields (see ``agents/ofql.py``)."""
    c = ofql.default_config()
    for field in _CRITIC_FIELDS:
        del c[field]
    return c


def make_flow_bc(
    config: ml_collections.ConfigDict, obs_dim: int, act_dim: int, num_steps: int = 1_000_000
) -> Agent:
    """Build flow BC's pure functions (OFQL's policy without critics)."""
    c = config
    policy = MeanVelocityField(
        action_dim=act_dim, hidden_dims=tuple(c.hidden_dims), activation=c.activation,
        time_dim=c.time_dim, time_scale=c.time_scale, second_time=c.second_time,
        init_scheme=c.init_scheme, matmul_dtype=c.matmul_dtype,
    )  # fmt: skip
    tx = adam_direction(c.grad_norm)

    def u_fn(params, obs):
        return lambda z, r, t: policy.apply(params, z, r, t, obs)

    def init(key: jax.Array) -> AgentState:
        k_policy, k_rng = jax.random.split(key)
        act, time = jnp.zeros((1, act_dim)), jnp.zeros((1,))
        params = policy.init(k_policy, act, time, time, jnp.zeros((1, obs_dim)))
        return AgentState.initial(k_rng, params, tx, hparams_from(c, SWEEPABLE))

    def update(state: AgentState, batch: Transitions) -> tuple[AgentState, dict[str, jax.Array]]:
        rng, k_bc = jax.random.split(jax.random.wrap_key_data(state.rng))

        def loss_fn(params):
            return meanflow.flow_bc_loss(
                u_fn(params, batch.observations), batch.actions, k_bc,
                state.hparams["flow_ratio"], c.time_mean, c.time_std, c.bc_loss_reduction,
                c.loss_weight_power, c.loss_weight_eps, state.hparams["endpoint_ratio"],
            )  # fmt: skip

        (loss, bc_info), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.policy_params)
        lr = learning_rate(state.hparams["actor_lr"], state.step, c.lr_decay, num_steps)
        params, opt_state = apply_adam(tx, state.policy_params, grads, state.policy_opt_state, lr)
        keep = ema_weight(state.step, c.ema_start, c.ema_every, c.ema_decay)
        info = {"actor/loss": loss, "actor/bc_loss": loss, **bc_info,
                "actor/grad_norm": optax.tree.norm(grads)}  # fmt: skip
        new_state = state.replace(
            step=state.step + 1,
            rng=jax.random.key_data(rng),
            policy_params=params,
            target_policy_params=blend(state.target_policy_params, params, keep),
            policy_opt_state=opt_state,
        )
        return new_state, info

    def decide(policy_params, critic_params, obs, noise, gumbel=None, q_temperature=1.0):
        """One-step actions from ``noise [..., act]`` (no critic: no candidates)."""
        del critic_params, gumbel, q_temperature
        return meanflow.one_step_action(u_fn(policy_params, obs), noise)

    def diagnose(state: AgentState, batch: Transitions, key: jax.Array) -> dict[str, jax.Array]:
        noise = jax.random.normal(key, batch.actions.shape)
        ones = jnp.ones(noise.shape[:-1])
        raw = noise - u_fn(state.policy_params, batch.observations)(noise, 0.0 * ones, ones)
        actions = jnp.clip(raw, -1.0, 1.0)
        return {
            "diag/clip_rate": jnp.mean(jnp.abs(raw) > 1.0),
            "diag/action_abs_mean": jnp.abs(actions).mean(),
            "diag/saturation": jnp.mean(jnp.abs(actions) > 0.99),
            "diag/data_saturation": jnp.mean(jnp.abs(batch.actions) > 0.99),
            "diag/one_step_mse_to_data": jnp.square(actions - batch.actions).sum(-1).mean(),
        }

    return Agent(
        init, update, standard_sample_actions(decide, act_dim), decide, config, obs_dim,
        act_dim, diagnose, noise_dim=act_dim, has_critic=False, name="flow_bc",
    )  # fmt: skip


def check(a: ml_collections.ConfigDict) -> None:
    check_common(a)
    require(0.0 <= a.flow_ratio <= 1.0, "agent.flow_ratio", a.flow_ratio, "in [0, 1]")
    require(0.0 <= a.endpoint_ratio <= 1.0, "agent.endpoint_ratio", a.endpoint_ratio, "in [0, 1]")
    require(a.time_std > 0, "agent.time_std", a.time_std, "> 0")


def task_defaults(task, protocol: str) -> dict:
    """OFQL's actor lr and gradient clip for the task (the same policy optimisation)."""
    return {
        "actor_lr": task.lr if protocol == "paper" else task.dql_lr,
        "grad_norm": task.grad_norm,
    }


SPEC = AgentSpec(
    name="flow_bc",
    make=make_flow_bc,
    default_config=default_config,
    sweepable=SWEEPABLE,
    check=check,
    task_defaults=task_defaults,
    has_critic=False,
    summary="OFQL's one-step mean-flow policy trained on L_FBC only, no critic",
    source="the paper's flow-BC reference (OFQL with eta = 0)",
)

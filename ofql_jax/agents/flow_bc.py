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

from ofql_jax.agents import base, dql, ofql
from ofql_jax.agents.base import Agent, AgentSpec, AgentState
from ofql_jax.core.types import Transitions
from ofql_jax.maths import meanflow
from ofql_jax.maths.optim import apply_adam

SWEEPABLE = ("flow_ratio", "endpoint_ratio", "actor_lr", "grad_norm")
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
    policy = ofql.policy_network(c, act_dim)
    tx = base.adam_direction(c.grad_norm)

    def u_fn(params, obs):
        return lambda z, r, t: policy.apply(params, z, r, t, obs)

    def one_step(params, obs, noise):
        return meanflow.one_step_action(u_fn(params, obs), noise)

    def init(key: jax.Array) -> AgentState:
        k_policy, k_rng = jax.random.split(key)
        act, time = jnp.zeros((1, act_dim)), jnp.zeros((1,))
        params = policy.init(k_policy, act, time, time, jnp.zeros((1, obs_dim)))
        return AgentState.initial(k_rng, params, tx, base.hparams_from(c, SWEEPABLE))

    def update(state: AgentState, batch: Transitions) -> tuple[AgentState, dict[str, jax.Array]]:
        rng, k_bc = jax.random.split(jax.random.wrap_key_data(state.rng))

        def loss_fn(params):
            return meanflow.flow_bc_loss(
                u_fn(params, batch.observations), batch.actions, k_bc,
                state.hparams["flow_ratio"], c.time_mean, c.time_std, c.bc_loss_reduction,
                c.loss_weight_power, c.loss_weight_eps, state.hparams["endpoint_ratio"],
            )  # fmt: skip

        (loss, bc_info), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.policy_params)
        lr = base.learning_rate(state.hparams["actor_lr"], state.step, c.lr_decay, num_steps)
        gn = base.clip_threshold(state, c)
        params, opt_state = apply_adam(tx, state.policy_params, grads, state.policy_opt_state,
                                       lr, gn)  # fmt: skip
        keep = base.ema_weight(state.step, c.ema_start, c.ema_every, c.ema_decay)
        info = {"actor/loss": loss, "actor/bc_loss": loss, **bc_info,
                "actor/grad_norm": optax.tree.norm(grads)}  # fmt: skip
        new_state = state.replace(
            step=state.step + 1,
            rng=jax.random.key_data(rng),
            policy_params=params,
            target_policy_params=base.blend(state.target_policy_params, params, keep),
            policy_opt_state=opt_state,
        )
        return new_state, info

    decide = base.candidate_decide(one_step)

    def diagnose(state: AgentState, batch: Transitions, key: jax.Array) -> dict[str, jax.Array]:
        noise = jax.random.normal(key, batch.actions.shape)
        ones = jnp.ones(noise.shape[:-1])
        raw = noise - u_fn(state.policy_params, batch.observations)(noise, 0.0 * ones, ones)
        actions = jnp.clip(raw, -1.0, 1.0)
        return {
            **base.action_diagnostics(actions, batch.actions),
            "diag/clip_rate": jnp.mean(jnp.abs(raw) > 1.0),
        }

    return Agent(
        init, update, base.standard_sample_actions(lambda: decide, act_dim), decide, config,
        obs_dim, act_dim, diagnose, noise_dim=act_dim, has_critic=False, name="flow_bc",
    )  # fmt: skip


def task_defaults(task, protocol: str) -> dict:
    """DQL's actor lr and gradient clip for the task, as OFQL (the same policy optimisation)."""
    recipe = dql.recipe(task, protocol)
    return {"actor_lr": recipe["actor_lr"], "grad_norm": recipe["grad_norm"]}


SPEC = AgentSpec(
    name="flow_bc", label="flow BC", make=make_flow_bc, default_config=default_config,
    sweepable=SWEEPABLE, check=ofql.check_policy, task_defaults=task_defaults, has_critic=False,
    summary="OFQL's one-step mean-flow policy trained on L_FBC only, no critic",
    source="the paper's flow-BC reference (OFQL with eta = 0)",
)  # fmt: skip

"""Behaviour cloning (BC): a deterministic MLP policy regressing the dataset's actions.

The classic offline-RL baseline of D4RL and CORL (``algorithms/offline/any_percent_bc.py``
in tinkoff-ai/CORL): ``a = tanh(MLP(s))``, mean squared error to the dataset action, Adam
3e-4, batch 256. No critic, no randomness: evaluation uses the policy's own action (N = 1).

Example:
    >>> agent = make_bc(default_config(), obs_dim=11, act_dim=3)
    >>> state = agent.init(jax.random.key(0))
    >>> agent.decide(state.policy_params, {}, jnp.zeros((2, 11)), jnp.zeros((2, 0))).shape
    (2, 3)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ofql_jax.agents import base
from ofql_jax.agents.base import Agent, AgentSpec, AgentState, Params
from ofql_jax.core.types import Transitions
from ofql_jax.maths.networks import MLP
from ofql_jax.maths.optim import apply_adam

SWEEPABLE = ("actor_lr", "grad_norm")


def default_config() -> ml_collections.ConfigDict:
    """BC hyperparameters (CORL's any-percent BC unless marked). Every field is commented."""
    c = ml_collections.ConfigDict()
    c.hidden_dims = (256, 256)  # policy MLP widths (CORL)
    c.activation = "relu"  # relu (CORL) | mish | gelu | silu
    c.init_scheme = "pytorch"  # pytorch (CORL is PyTorch) | lecun
    c.matmul_dtype = "float32"  # float32 | bfloat16
    c.actor_lr = 3e-4  # Adam learning rate (CORL)
    c.lr_decay = False  # cosine decay to 0 over num_steps (CORL: off)
    c.grad_norm = 0.0  # global-norm gradient clip; <= 0 disables (CORL: none)
    return c


def make_bc(
    config: ml_collections.ConfigDict, obs_dim: int, act_dim: int, num_steps: int = 1_000_000
) -> Agent:
    """Build BC's pure functions for observations of ``obs_dim`` and actions of ``act_dim``."""
    c = config
    policy = MLP(tuple(c.hidden_dims), act_dim, c.activation, c.init_scheme, c.matmul_dtype)
    tx = base.adam_direction(c.grad_norm)

    def act(params: Params, obs: jax.Array) -> jax.Array:
        return jnp.tanh(policy.apply(params, obs))

    def init(key: jax.Array) -> AgentState:
        k_policy, k_rng = jax.random.split(key)
        params = policy.init(k_policy, jnp.zeros((1, obs_dim)))
        return AgentState.initial(k_rng, params, tx, base.hparams_from(c, SWEEPABLE))

    def update(state: AgentState, batch: Transitions) -> tuple[AgentState, dict[str, jax.Array]]:
        def loss_fn(params):
            predicted = act(params, batch.observations)
            return jnp.square(predicted - batch.actions).mean(), predicted

        (loss, predicted), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.policy_params)
        lr = base.learning_rate(state.hparams["actor_lr"], state.step, c.lr_decay, num_steps)
        gn = base.clip_threshold(state, c)
        params, opt_state = apply_adam(tx, state.policy_params, grads, state.policy_opt_state,
                                       lr, gn)  # fmt: skip
        info = {
            "actor/loss": loss,
            "actor/bc_loss": loss,
            "actor/action_abs_mean": jnp.abs(predicted).mean(),
            "actor/grad_norm": optax.tree.norm(grads),
        }
        new_state = state.replace(
            step=state.step + 1,
            policy_params=params,
            target_policy_params=params,  # no EMA in BC: the "ema" actor is the policy
            policy_opt_state=opt_state,
        )
        return new_state, info

    decide = base.candidate_decide(lambda params, obs, noise: act(params, obs))  # noise: size 0

    def diagnose(state: AgentState, batch: Transitions, key: jax.Array) -> dict[str, jax.Array]:
        del key
        return base.action_diagnostics(act(state.policy_params, batch.observations), batch.actions)

    return Agent(
        init, update, base.standard_sample_actions(lambda: decide, 0), decide, config, obs_dim,
        act_dim, diagnose, noise_dim=0, has_critic=False, name="bc",
    )  # fmt: skip


SPEC = AgentSpec(
    name="bc",
    label="BC",
    make=make_bc,
    default_config=default_config,
    sweepable=SWEEPABLE,
    has_critic=False,
    summary="deterministic MLP regressing dataset actions (MSE), no critic",
    source="D4RL's and CORL's BC baseline (tinkoff-ai/CORL any_percent_bc)",
)  # CORL uses the same settings on every task: no task_defaults

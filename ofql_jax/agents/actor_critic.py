"""DQL's actor-critic step, which DQL, OFQL and FBRAC share: they differ only in the policy.

One update (Wang et al. 2022, Alg. 1): the twin critics take an Adam step first, on TD
targets whose next actions come from the EMA target policy; then the actor minimises
``BC loss + eta * Q term``, the Q term DQL's |Q|-normalised value of fresh policy actions
under the freshly updated critics; then the target policy moves by EMA and the target
critics by Polyak averaging. An agent supplies its policy's ``actions(params, obs, key)``
(the action the Q term and the TD target use, differentiable in ``params``) and its
``bc_loss(params, state, batch, key) -> (loss, info)``.

Example:
    >>> from ofql_jax.agents.ofql import default_config, make_ofql
    >>> agent = make_ofql(default_config(), obs_dim=11, act_dim=3)
    >>> state = agent.init(jax.random.key(0))
    >>> batch = Transitions(jnp.zeros((8, 11)), jnp.zeros((8, 3)), jnp.zeros(8),
    ...                     jnp.zeros((8, 11)), jnp.zeros(8))
    >>> info = jax.jit(agent.update)(state, batch)[1]  # OFQL's update is ActorCritic.update
    >>> {"critic/loss", "actor/bc_loss", "actor/q_loss"} <= set(info)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ofql_jax.agents.base import (
    AgentState,
    Params,
    adam_direction,
    blend,
    clip_threshold,
    ema_weight,
    hparams_from,
    learning_rate,
)
from ofql_jax.core.types import Transitions
from ofql_jax.maths import critic as critic_lib
from ofql_jax.maths.diagnostics import action_moves
from ofql_jax.maths.optim import apply_adam

ActionsFn = Callable[[Params, jax.Array, jax.Array], jax.Array]  # (params, obs, key) -> actions
BCLossFn = Callable[[Params, AgentState, Transitions, jax.Array], tuple[jax.Array, dict]]


class ActorCritic:
    """The shared parts of a DQL-style agent, built once from its config: twin critics, one
    clipped Adam direction for actor and critics (the clip's threshold is the member's
    ``grad_norm`` hparam), and the pure ``init`` and ``update``.

    ``init_policy(key, obs, act)`` initialises the policy from dummy ``[1, obs_dim]`` and
    ``[1, act_dim]`` inputs; ``ema_warmup`` is ``ema_weight``'s (DQL's own option).
    """

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        obs_dim: int,
        act_dim: int,
        num_steps: int,
        sweepable: Sequence[str],
        init_policy: Callable[[jax.Array, jax.Array, jax.Array], Params],
        actions: ActionsFn,
        bc_loss: BCLossFn,
        ema_warmup: str = "copy",
    ):
        self.config, self.obs_dim, self.act_dim = config, obs_dim, act_dim
        self.num_steps, self.sweepable, self.ema_warmup = num_steps, tuple(sweepable), ema_warmup
        self.init_policy, self.actions, self.bc_loss = init_policy, actions, bc_loss
        self.critics = critic_lib.make_critics(config)
        self.tx = adam_direction(config.grad_norm)

    def lr(self, state: AgentState, name: str) -> jax.Array:
        c = self.config
        return learning_rate(state.hparams[name], state.step, c.lr_decay, self.num_steps)

    def init(self, key: jax.Array) -> AgentState:
        k_policy, k_critic, k_rng = jax.random.split(key, 3)
        obs, act = jnp.zeros((1, self.obs_dim)), jnp.zeros((1, self.act_dim))
        return AgentState.initial(
            k_rng,
            self.init_policy(k_policy, obs, act),
            self.tx,
            hparams_from(self.config, self.sweepable),
            critic_params=self.critics.init(k_critic, obs, act),
            critic_tx=self.tx,
        )

    def update(self, state: AgentState, batch: Transitions) -> tuple[AgentState, dict[str, Any]]:
        c, critics, actions = self.config, self.critics, self.actions
        rng, k_target, k_bc, k_actor, k_coin = jax.random.split(
            jax.random.wrap_key_data(state.rng), 5
        )
        # Critic first (DQL); the target action comes from the EMA policy.
        critic_params, critic_opt_state, critic_info = critic_lib.critic_step(
            critics, self.tx, state.critic_params, state.target_critic_params,
            state.critic_opt_state, self.lr(state, "critic_lr"), batch,
            lambda s, k: actions(state.target_policy_params, s, k), k_target, c.discount,
            c.max_q_backup, c.num_backup_samples, clip_threshold(state, c),
        )  # fmt: skip

        # Actor: BC + eta * |Q|-normalised Q term on the freshly updated critic.
        def actor_loss_fn(params):
            bc_loss, bc_info = self.bc_loss(params, state, batch, k_bc)
            new_actions = actions(params, batch.observations, k_actor)
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
            self.tx, state.policy_params, policy_grads, state.policy_opt_state,
            self.lr(state, "actor_lr"), clip_threshold(state, c),
        )  # fmt: skip

        # Target policy: EMA every ema_every steps from ema_start, counting the steps before
        # this update (DQL's); target critics: Polyak every step.
        keep = ema_weight(state.step, c.ema_start, c.ema_every, c.ema_decay, self.ema_warmup)
        target_policy_params = blend(state.target_policy_params, policy_params, keep)
        target_critic_params = critic_lib.polyak(state.target_critic_params, critic_params, c.tau)

        info = {**critic_info, **actor_info, "actor/grad_norm": optax.tree.norm(policy_grads)}
        new_state = state.replace(
            step=state.step + 1, rng=jax.random.key_data(rng),
            policy_params=policy_params, target_policy_params=target_policy_params,
            critic_params=critic_params, target_critic_params=target_critic_params,
            policy_opt_state=policy_opt_state, critic_opt_state=critic_opt_state,
        )  # fmt: skip
        return new_state, info

    def actor_term_diagnostics(
        self,
        state: AgentState,
        obs: jax.Array,
        bc_loss: Callable[[Params], jax.Array],
        q_actions: Callable[[Params], jax.Array],
        acting_actions: Callable[[Params], jax.Array] | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """How the actor's two terms pull: ``(bc loss, metrics)`` with the gradient norms of
        ``bc_loss(params)`` and of the expected Q term (both head orders averaged) of
        ``q_actions(params)``, ``grad_ratio`` = eta ||grad Q term|| / ||grad BC||, and where
        each term moves ``acting_actions`` (default ``q_actions``; ``diagnostics.action_moves``).
        """
        eps, params = self.config.q_norm_eps, state.policy_params

        def q_term(p):
            q = self.critics.apply(state.critic_params, obs, q_actions(p))
            return 0.5 * sum(critic_lib.normalized_q_loss(q, lead, eps) for lead in (True, False))

        bc_value, bc_grads = jax.value_and_grad(bc_loss)(params)
        q_grads = jax.grad(q_term)(params)
        bc_grad_norm, q_grad_norm = optax.tree.norm(bc_grads), optax.tree.norm(q_grads)
        moves = action_moves(
            acting_actions or q_actions, params, q_grads, bc_grads, state.hparams["eta"],
            state.policy_opt_state,
        )  # fmt: skip
        return bc_value, {
            "diag/bc_grad_norm": bc_grad_norm,
            "diag/q_grad_norm": q_grad_norm,
            "diag/grad_ratio": state.hparams["eta"] * q_grad_norm / (bc_grad_norm + 1e-12),
            **moves,
        }

"""Diffusion Q-Learning (DQL): a T-step DDPM policy trained with BC + a Q term through the chain.

Wang, Hunt and Zhou, "Diffusion Policies as an Expressive Policy Class for Offline Reinforcement
Learning" (ICLR 2023, arXiv 2208.06193); code Zhendong-Wang/Diffusion-Policies-for-Offline-RL.
The policy is a noise predictor ``eps(x, t | s)``; an action is the T-step reverse chain from
``x_T ~ N(0, I)`` with clipped denoising (``ofql_jax.maths.diffusion``). The actor loss is DQL's
noise
MSE plus ``eta`` times the |Q|-normalised Q value of chain actions, back-propagated through all T
steps; the twin critics, TD target and EMA target policy are the ones OFQL shares.

Randomness per action (``noise_dim = (T + 1) * act_dim``): block 0 is ``x_T``, block ``j``
(1..T) the noise added at the ``j``-th reverse step (the last is masked, as DQL draws and
drops it), so ``decide`` is deterministic given the noise. Evaluation can also sample with DDIM
(``sampler``, ``sampling_steps``); ``eval_ddim1`` reports DQL+DDIM(1) of the same agent.

Example:
    >>> agent = make_dql(default_config(), obs_dim=11, act_dim=3)
    >>> state = agent.init(jax.random.key(0))
    >>> agent.noise_dim
    18
"""

from __future__ import annotations

import flax.linen as nn
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
    select_actor,
)
from ofql_jax.core.types import Transitions
from ofql_jax.maths import critic as critic_lib
from ofql_jax.maths import diffusion
from ofql_jax.maths.diagnostics import action_moves
from ofql_jax.maths.networks import MLP, TimeEmbedding
from ofql_jax.maths.optim import apply_adam
from ofql_jax.maths.selection import repeat_states, select_candidate

SAMPLERS = ("ddpm", "ddim")


def default_config() -> ml_collections.ConfigDict:
    """DQL's hyperparameters (its main.py and agents/); every field says where it comes from."""
    c = ml_collections.ConfigDict()
    # Networks.
    c.hidden_dims = (256, 256, 256)  # noise-predictor MLP widths (DQL model.py)
    c.critic_hidden_dims = (256, 256, 256)  # each critic head's widths (DQL ql_diffusion.py)
    c.activation = "mish"  # mish | relu | gelu | silu (DQL: Mish everywhere)
    c.init_scheme = "pytorch"  # pytorch (nn.Linear default, as DQL's code) | lecun (Flax's)
    c.matmul_dtype = "float32"  # float32 | bfloat16 trunk matmuls (ours; DQL: float32)
    c.time_dim = 16  # sinusoidal time embedding size; time MLP 16 -> 32 -> 16 (DQL t_dim)
    # Diffusion.
    c.num_diffusion_steps = 5  # T (DQL main.py --T)
    c.beta_schedule = "vp"  # vp | linear | cosine (DQL main.py --beta_schedule)
    # Optimisation.
    c.actor_lr = 3e-4  # Adam lr of the policy (DQL main.py; per task via dql_task_defaults)
    c.critic_lr = 3e-4  # Adam lr of the critics (DQL ql_diffusion.py: always 3e-4)
    c.lr_decay = False  # cosine decay of both lrs over num_steps (DQL --lr_decay, off)
    c.grad_norm = 9.0  # global-norm clip of actor and critic grads; <= 0 off (DQL gn, per task)
    c.discount = 0.99  # gamma (DQL main.py)
    c.tau = 0.005  # Polyak rate of the target critics, every step (DQL main.py)
    c.ema_decay = 0.995  # EMA decay of the target policy (DQL ql_diffusion.py)
    c.ema_start = 1000  # EMA starts at this step (DQL step_start_ema)
    c.ema_every = 5  # EMA update period in steps (DQL update_ema_every)
    # Before ema_start the target policy is: "copy" (the online policy; the shared helper and
    # Diffuser's reset) or "init" (frozen at its initial weights: DQL's code literally, whose
    # step_ema returns early without copying). Ours: "copy".
    c.ema_warmup = "copy"
    # DQL.
    c.eta = 1.0  # weight of the normalised Q term (DQL main.py; per task via task.dql_eta)
    c.q_norm_eps = 0.0  # q_loss = -Q / (eps + mean|Q|); 0 = DQL's (ours: the guard option)
    c.max_q_backup = False  # max over sampled next actions in the TD target (DQL, AntMaze)
    c.num_backup_samples = 10  # next actions per s' for max_q_backup (DQL: 10)
    # Evaluation (sample_actions / decide); training always runs the T-step DDPM chain.
    c.sampler = "ddpm"  # ddpm (DQL) | ddim (deterministic, eta = 0; ours)
    c.sampling_steps = 0  # reverse steps at evaluation; 0 = T (DQL); fewer respace the chain
    c.eval_ddim1 = True  # also report DQL+DDIM(1) as scores_ddim1 (the OFQL paper's ablation)
    return c


SWEEPABLE = ("eta", "actor_lr", "critic_lr")  # state.hparams leaves


class NoisePredictor(nn.Module):
    """DQL's ``MLP`` model: ``concat[x, time_mlp(t), s]`` -> hidden layers -> ``eps``.

    ``t`` is the integer timestep fed to the sinusoidal embedding as it is (DQL).
    """

    action_dim: int
    hidden_dims: tuple[int, ...] = (256, 256, 256)
    activation: str = "mish"
    time_dim: int = 16
    init_scheme: str = "pytorch"
    matmul_dtype: str = "float32"  # the trunk's matmuls; the time embedding stays float32

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array, obs: jax.Array) -> jax.Array:
        emb = TimeEmbedding(
            self.time_dim, 1.0, self.activation, self.init_scheme, name="t_embedding"
        )(t.astype(x.dtype))
        h = jnp.concatenate([x, emb.astype(x.dtype), obs.astype(x.dtype)], -1)
        mlp = MLP(
            self.hidden_dims, self.action_dim, self.activation, self.init_scheme,
            self.matmul_dtype, name="mlp",
        )  # fmt: skip
        return mlp(h)


def make_dql(
    config: ml_collections.ConfigDict, obs_dim: int, act_dim: int, num_steps: int = 1_000_000
) -> Agent:
    """Build DQL's pure functions for observations of ``obs_dim`` and actions of ``act_dim``.

    ``num_steps`` only matters with ``lr_decay``.

    Example:
        >>> agent = make_dql(default_config(), obs_dim=11, act_dim=3)
        >>> state = agent.init(jax.random.key(0))
        >>> batch = Transitions(jnp.zeros((8, 11)), jnp.zeros((8, 3)), jnp.zeros(8),
        ...                     jnp.zeros((8, 11)), jnp.zeros(8))
        >>> state, info = jax.jit(agent.update)(state, batch)
        >>> int(state.step)
        1
    """
    c = config
    T = int(c.num_diffusion_steps)
    noise_dim = (T + 1) * act_dim
    schedule = diffusion.make_schedule(diffusion.beta_schedule(c.beta_schedule, T))
    net = NoisePredictor(
        action_dim=act_dim,
        hidden_dims=tuple(c.hidden_dims),
        activation=c.activation,
        time_dim=c.time_dim,
        init_scheme=c.init_scheme,
        matmul_dtype=c.matmul_dtype,
    )
    critics = critic_lib.make_critics(c)
    policy_tx = critic_tx = adam_direction(c.grad_norm)

    def lr(state: AgentState, name: str) -> jax.Array:
        return learning_rate(state.hparams[name], state.step, c.lr_decay, num_steps)

    def eps_fn(params: Params, obs: jax.Array) -> diffusion.EpsFn:
        return lambda x, t: net.apply(params, x, t, obs)

    def chain(
        params: Params, obs: jax.Array, noise: jax.Array, sampler: str = "ddpm", steps: int = 0
    ) -> jax.Array:
        """Actions from ``noise [..., noise_dim]`` (layout in the module docstring)."""
        blocks = noise.reshape(noise.shape[:-1] + (T + 1, act_dim))
        x_T, step_noise = blocks[..., 0, :], blocks[..., 1:, :]
        steps = steps or T
        if sampler == "ddim":
            return diffusion.ddim_sample(eps_fn(params, obs), schedule, x_T, steps)
        if sampler == "ddpm":
            chain_schedule = diffusion.respace(schedule, steps)
            return diffusion.ddpm_sample(
                eps_fn(params, obs), chain_schedule, x_T, step_noise[..., :steps, :]
            )
        raise ValueError(f"unknown sampler {sampler!r}; use one of {SAMPLERS}")

    def actions_fn(params: Params, obs: jax.Array, key: jax.Array) -> jax.Array:
        """The training chain: T-step DDPM with fresh noise."""
        return chain(params, obs, jax.random.normal(key, obs.shape[:-1] + (noise_dim,)))

    def bc_loss_fn(params: Params, batch: Transitions, t: jax.Array, noise: jax.Array):
        return diffusion.noise_prediction_loss(
            eps_fn(params, batch.observations), schedule, batch.actions, t, noise
        )

    def bc_draws(key: jax.Array, batch: Transitions) -> tuple[jax.Array, jax.Array]:
        k_t, k_noise = jax.random.split(key)
        t = diffusion.sample_timesteps(k_t, batch.actions.shape[:-1], T)
        return t, jax.random.normal(k_noise, batch.actions.shape)

    def init(key: jax.Array) -> AgentState:
        k_policy, k_critic, k_rng = jax.random.split(key, 3)
        obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
        policy_params = net.init(k_policy, act, jnp.zeros((1,), jnp.int32), obs)
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
        # Critic first (DQL); next actions from the EMA policy's T-step chain.
        critic_params, critic_opt_state, critic_info = critic_lib.critic_step(
            critics, critic_tx, state.critic_params, state.target_critic_params,
            state.critic_opt_state, lr(state, "critic_lr"), batch,
            lambda s, k: actions_fn(state.target_policy_params, s, k), k_target, c.discount,
            c.max_q_backup, c.num_backup_samples,
        )  # fmt: skip
        t, bc_noise = bc_draws(k_bc, batch)

        # Actor: noise MSE + eta * |Q|-normalised Q of chain actions, on the updated critic.
        def actor_loss_fn(params):
            bc_loss = bc_loss_fn(params, batch, t, bc_noise)
            new_actions = actions_fn(params, batch.observations, k_actor)
            q = critics.apply(critic_params, batch.observations, new_actions)
            q_loss = critic_lib.normalized_q_loss(q, jax.random.bernoulli(k_coin), c.q_norm_eps)
            loss = bc_loss + state.hparams["eta"] * q_loss
            info = {
                "actor/loss": loss,
                "actor/bc_loss": bc_loss,
                "actor/q_loss": q_loss,
                "actor/q_mean": q.mean(),
                "actor/action_abs_mean": jnp.abs(new_actions).mean(),
            }
            return loss, info

        (_, actor_info), policy_grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
            state.policy_params
        )
        policy_params, policy_opt_state = apply_adam(
            policy_tx, state.policy_params, policy_grads, state.policy_opt_state,
            lr(state, "actor_lr"),
        )  # fmt: skip

        # Target policy: before ema_start a copy (or frozen, ema_warmup="init"), then EMA
        # every ema_every steps; the step counted is the one before this update, as DQL's.
        keep = ema_weight(state.step, c.ema_start, c.ema_every, c.ema_decay)
        if c.ema_warmup == "init":
            keep = jnp.where(state.step < c.ema_start, 1.0, keep)
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

    def choose(
        policy_params: Params,
        critic_params: Params,
        obs: jax.Array,
        noise: jax.Array,
        gumbel: jax.Array | None,
        q_temperature: float | jax.Array,
        sampler: str,
        steps: int,
    ) -> jax.Array:
        if gumbel is None:
            return chain(policy_params, obs, noise, sampler, steps)
        obs_rep = repeat_states(obs, noise.shape[-2])
        candidates = chain(policy_params, obs_rep, noise, sampler, steps)
        q = critics.apply(critic_params, obs_rep, candidates).min(0)
        return select_candidate(candidates, q, gumbel, q_temperature)

    def decide(
        policy_params: Params,
        critic_params: Params,
        obs: jax.Array,
        noise: jax.Array,
        gumbel: jax.Array | None = None,
        q_temperature: float | jax.Array = 1.0,
    ) -> jax.Array:
        """Chain actions (config ``sampler``, ``sampling_steps``) from ``noise [..., noise_dim]``;
        with ``noise [..., N, noise_dim]`` and ``gumbel [..., N]`` a draw from ``softmax(w Q)``
        over the N candidates (Q = min of ``critic_params``). Temperatures already applied.
        """
        return choose(
            policy_params, critic_params, obs, noise, gumbel, q_temperature, c.sampler,
            c.sampling_steps,
        )  # fmt: skip

    def sample_actions(
        state: AgentState,
        obs: jax.Array,
        key: jax.Array,
        num_candidates: int = 1,
        *,
        actor: str = "online",
        noise_temperature: float = 1.0,
        q_temperature: float = 1.0,
        sampler: str | None = None,
        sampling_steps: int | None = None,
    ) -> jax.Array:
        """As ``standard_sample_actions``, but ``noise_temperature`` scales only ``x_T``:
        CleanDiffuser's ``DiscreteDiffusionSDE.sample`` draws ``randn * temperature`` for the
        initial noise and adds unscaled ``stds[i] * randn`` at each DDPM step. ``sampler`` and
        ``sampling_steps`` (static) override the config's (``eval_options``)."""
        params = select_actor(state, actor)
        sampler = c.sampler if sampler is None else sampler
        steps = c.sampling_steps if sampling_steps is None else sampling_steps
        k_noise, k_pick = jax.random.split(key)
        candidates = () if num_candidates == 1 else (num_candidates,)
        noise = jax.random.normal(k_noise, obs.shape[:-1] + candidates + (noise_dim,))
        noise = jnp.concatenate(
            [noise_temperature * noise[..., :act_dim], noise[..., act_dim:]], axis=-1
        )
        gumbel = None
        if num_candidates > 1:
            gumbel = jax.random.gumbel(k_pick, obs.shape[:-1] + (num_candidates,))
        return choose(
            params, state.target_critic_params, obs, noise, gumbel, q_temperature, sampler, steps
        )

    def diagnose(state: AgentState, batch: Transitions, key: jax.Array) -> dict[str, jax.Array]:
        """Where the T-step chain's actions sit relative to the data and the critic on
        ``batch``; nothing is updated.

        ``q_policy_mean`` (watched by the value-divergence monitor), ``q_data_mean``,
        ``clip_rate`` (x0 predictions outside [-1, 1] over all chain steps, which the clipped
        denoising cuts), ``saturation`` (|a| > 0.99, as ``data_saturation``),
        ``one_step_mse_to_data`` (``||a_pi(s) - a||^2``, the chain's action against the
        dataset's), the same for DDIM(1), ``grad_ratio`` = eta ||grad Q term|| / ||grad BC||,
        and where each term moves the chain's action (``diagnostics.action_moves``).
        """
        k_bc, k_noise = jax.random.split(key)
        obs, data_actions, params = batch.observations, batch.actions, state.policy_params
        noise = jax.random.normal(k_noise, obs.shape[:-1] + (noise_dim,))
        t, bc_noise = bc_draws(k_bc, batch)

        def q_term(p):  # both head orders averaged: the expected actor Q term
            q = critics.apply(state.critic_params, obs, chain(p, obs, noise))
            return 0.5 * sum(
                critic_lib.normalized_q_loss(q, lead, c.q_norm_eps) for lead in (True, False)
            )

        bc_loss, bc_grads = jax.value_and_grad(bc_loss_fn)(params, batch, t, bc_noise)
        q_grads = jax.grad(q_term)(params)
        bc_grad_norm, q_grad_norm = optax.tree.norm(bc_grads), optax.tree.norm(q_grads)
        moves = action_moves(
            lambda p: chain(p, obs, noise), params, q_grads, bc_grads, state.hparams["eta"],
            state.policy_opt_state,
        )  # fmt: skip
        blocks = noise.reshape(noise.shape[:-1] + (T + 1, act_dim))
        actions, x0s = diffusion.ddpm_sample(
            eps_fn(params, obs), schedule, blocks[..., 0, :], blocks[..., 1:, :], return_x0=True
        )
        ddim1 = chain(params, obs, noise, "ddim", 1)
        q_policy = critics.apply(state.critic_params, obs, actions)
        q_data = critics.apply(state.critic_params, obs, data_actions)
        q_ddim1 = critics.apply(state.critic_params, obs, ddim1)
        return {
            "diag/q_policy_mean": q_policy.mean(),
            "diag/q_policy_max": q_policy.min(0).max(),
            "diag/q_data_mean": q_data.mean(),
            "diag/q_ddim1_mean": q_ddim1.mean(),
            "diag/clip_rate": jnp.mean(jnp.abs(x0s) > 1.0),
            "diag/action_abs_mean": jnp.abs(actions).mean(),
            "diag/saturation": jnp.mean(jnp.abs(actions) > 0.99),
            "diag/data_saturation": jnp.mean(jnp.abs(data_actions) > 0.99),
            "diag/one_step_mse_to_data": jnp.square(actions - data_actions).sum(-1).mean(),
            "diag/ddim1_mse_to_data": jnp.square(ddim1 - data_actions).sum(-1).mean(),
            "diag/bc_loss": bc_loss,
            "diag/bc_grad_norm": bc_grad_norm,
            "diag/q_grad_norm": q_grad_norm,
            "diag/grad_ratio": state.hparams["eta"] * q_grad_norm / (bc_grad_norm + 1e-12),
            **moves,
        }

    eval_options = {"ddim1": {"sampler": "ddim", "sampling_steps": 1}} if c.eval_ddim1 else {}
    return Agent(
        init, update, sample_actions, decide, config, obs_dim, act_dim, diagnose,
        noise_dim=noise_dim, has_critic=True, name="dql", eval_options=eval_options,
        scaled_noise_dim=act_dim,
    )  # fmt: skip


def check(a: ml_collections.ConfigDict) -> None:
    """DQL's own config checks (also applied to each swept setting)."""
    check_common(a)
    require(a.eta >= 0.0, "agent.eta", a.eta, ">= 0")
    require(a.time_dim >= 4 and a.time_dim % 2 == 0, "agent.time_dim", a.time_dim,
            "an even integer >= 4")  # fmt: skip
    require(a.num_diffusion_steps >= 1, "agent.num_diffusion_steps", a.num_diffusion_steps,
            "a positive integer")  # fmt: skip
    require(
        a.beta_schedule in diffusion.BETA_SCHEDULES, "agent.beta_schedule", a.beta_schedule,
        f"one of {', '.join(diffusion.BETA_SCHEDULES)}",
    )  # fmt: skip
    require(a.sampler in SAMPLERS, "agent.sampler", a.sampler, "ddpm or ddim")
    require(
        0 <= a.sampling_steps <= a.num_diffusion_steps, "agent.sampling_steps", a.sampling_steps,
        f"in [0, num_diffusion_steps = {a.num_diffusion_steps}] (0: all)",
    )  # fmt: skip
    require(a.ema_warmup in ("copy", "init"), "agent.ema_warmup", a.ema_warmup, "copy or init")


def task_defaults(task, protocol: str) -> dict:
    """DQL's per-task recipe (lr by protocol, gn, max-Q) and DQL's per-task eta."""
    return {**dql_task_defaults(task, protocol), "eta": task.dql_eta}


SPEC = AgentSpec(
    name="dql",
    make=make_dql,
    default_config=default_config,
    sweepable=SWEEPABLE,
    check=check,
    task_defaults=task_defaults,
    has_critic=True,
    summary="T-step DDPM policy (noise MSE + Q through the chain) + twin critics (DQL)",
    source=(
        "Wang, Hunt & Zhou, ICLR 2023, arXiv 2208.06193; "
        "code Zhendong-Wang/Diffusion-Policies-for-Offline-RL"
    ),
)

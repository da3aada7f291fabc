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

from ofql_jax.agents import base
from ofql_jax.agents.actor_critic import ActorCritic
from ofql_jax.agents.base import Agent, AgentSpec, AgentState, Params
from ofql_jax.core.tasks import PAPER_LR
from ofql_jax.core.types import Transitions
from ofql_jax.maths import diffusion
from ofql_jax.maths.networks import MLP, TimeEmbedding

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
    c.lr_decay = False  # cosine decay of both lrs over num_steps (DQL: off, its README: on)
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
    c.eta = 1.0  # weight of the normalised Q term (DQL main.py; per task: TASK_TABLE)
    c.q_norm_eps = 0.0  # q_loss = -Q / (eps + mean|Q|); 0 = DQL's (ours: the guard option)
    c.max_q_backup = False  # max over sampled next actions in the TD target (DQL, AntMaze)
    c.num_backup_samples = 10  # next actions per s' for max_q_backup (DQL: 10)
    # Evaluation (sample_actions / decide); training always runs the T-step DDPM chain.
    c.sampler = "ddpm"  # ddpm (DQL) | ddim (deterministic, eta = 0; ours)
    c.sampling_steps = 0  # reverse steps at evaluation; 0 = T (DQL); fewer respace the chain
    c.eval_ddim1 = True  # also report DQL+DDIM(1) as scores_ddim1 (the OFQL paper's ablation)
    return c


SWEEPABLE = ("eta", "actor_lr", "critic_lr", "grad_norm")  # state.hparams leaves


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

    Example (the DDIM(1) evaluation variant of the same agent):
        >>> agent = make_dql(default_config(), obs_dim=11, act_dim=3)
        >>> state = agent.init(jax.random.key(0))
        >>> obs, key = jnp.zeros((2, 11)), jax.random.key(1)
        >>> agent.sample_actions(state, obs, key, 4, **agent.eval_options["ddim1"]).shape
        (2, 3)
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

    def noise_mse(params: Params, batch: Transitions, key: jax.Array) -> jax.Array:
        """DQL's BC loss: the noise MSE at a uniform timestep."""
        k_t, k_noise = jax.random.split(key)
        t = diffusion.sample_timesteps(k_t, batch.actions.shape[:-1], T)
        noise = jax.random.normal(k_noise, batch.actions.shape)
        return diffusion.noise_prediction_loss(
            eps_fn(params, batch.observations), schedule, batch.actions, t, noise
        )

    def init_policy(key: jax.Array, obs: jax.Array, act: jax.Array) -> Params:
        return net.init(key, act, jnp.zeros((1,), jnp.int32), obs)

    ac = ActorCritic(
        c, obs_dim, act_dim, num_steps, SWEEPABLE, init_policy, actions_fn,
        lambda params, state, batch, key: (noise_mse(params, batch, key), {}), c.ema_warmup,
    )  # fmt: skip

    def decide_with(sampler: str | None = None, sampling_steps: int | None = None):
        """``decide`` with the chain's ``sampler`` and ``sampling_steps`` (default: the
        config's; ``eval_options`` override them)."""
        sampler = c.sampler if sampler is None else sampler
        steps = c.sampling_steps if sampling_steps is None else sampling_steps
        return base.candidate_decide(
            lambda p, obs, noise: chain(p, obs, noise, sampler, steps), ac.critics
        )

    # noise_temperature scales only x_T, as CleanDiffuser's DiscreteDiffusionSDE.sample
    # (randn * temperature for the initial noise, unscaled stds[i] * randn at each step).
    sample_actions = base.standard_sample_actions(decide_with, noise_dim, scaled_noise_dim=act_dim)

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
        bc_loss, terms = ac.actor_term_diagnostics(
            state, obs, lambda p: noise_mse(p, batch, k_bc), lambda p: chain(p, obs, noise)
        )
        blocks = noise.reshape(noise.shape[:-1] + (T + 1, act_dim))
        actions, x0s = diffusion.ddpm_sample(
            eps_fn(params, obs), schedule, blocks[..., 0, :], blocks[..., 1:, :], return_x0=True
        )
        ddim1 = chain(params, obs, noise, "ddim", 1)
        q_policy = ac.critics.apply(state.critic_params, obs, actions)
        q_data = ac.critics.apply(state.critic_params, obs, data_actions)
        q_ddim1 = ac.critics.apply(state.critic_params, obs, ddim1)
        return {
            **base.action_diagnostics(actions, data_actions, q_policy, q_data),
            "diag/q_ddim1_mean": q_ddim1.mean(),
            "diag/clip_rate": jnp.mean(jnp.abs(x0s) > 1.0),
            "diag/ddim1_mse_to_data": jnp.square(ddim1 - data_actions).sum(-1).mean(),
            "diag/bc_loss": bc_loss,
            **terms,
        }

    eval_options = {"ddim1": {"sampler": "ddim", "sampling_steps": 1}} if c.eval_ddim1 else {}
    return Agent(
        ac.init, ac.update, sample_actions, decide_with(), config, obs_dim, act_dim, diagnose,
        noise_dim=noise_dim, has_critic=True, name="dql", eval_options=eval_options,
        scaled_noise_dim=act_dim,
    )  # fmt: skip


def check(a: ml_collections.ConfigDict) -> None:
    """DQL's own config checks (also applied to each swept setting)."""
    base.check_common(a)
    base.require(a.eta >= 0.0, "agent.eta", a.eta, ">= 0")
    base.require(a.time_dim >= 4 and a.time_dim % 2 == 0, "agent.time_dim", a.time_dim,
                 "an even integer >= 4")  # fmt: skip
    base.require(a.num_diffusion_steps >= 1, "agent.num_diffusion_steps", a.num_diffusion_steps,
                 "a positive integer")  # fmt: skip
    base.require(
        a.beta_schedule in diffusion.BETA_SCHEDULES, "agent.beta_schedule", a.beta_schedule,
        f"one of {', '.join(diffusion.BETA_SCHEDULES)}",
    )  # fmt: skip
    base.require(a.sampler in SAMPLERS, "agent.sampler", a.sampler, "ddpm or ddim")
    base.require(
        0 <= a.sampling_steps <= a.num_diffusion_steps, "agent.sampling_steps", a.sampling_steps,
        f"in [0, num_diffusion_steps = {a.num_diffusion_steps}] (0: all)",
    )  # fmt: skip
    base.require(a.ema_warmup in ("copy", "init"), "agent.ema_warmup", a.ema_warmup, "copy or init")


# DQL's per-task hyperparameters (its main.py): actor lr under DQL's protocol, eta, max-Q
# backup, gradient-norm clip (docs/algorithm.md's task table). OFQL, FBRAC and flow BC keep
# DQL's lr, clip and backup (``recipe``), so that they change the policy only.
TASK_TABLE = {
    "halfcheetah-medium": (3e-4, 1.0, False, 9.0),
    "hopper-medium": (3e-4, 1.0, False, 9.0),
    "walker2d-medium": (3e-4, 1.0, False, 1.0),
    "halfcheetah-medium-replay": (3e-4, 1.0, False, 2.0),
    "hopper-medium-replay": (3e-4, 1.0, False, 4.0),
    "walker2d-medium-replay": (3e-4, 1.0, False, 4.0),
    "halfcheetah-medium-expert": (3e-4, 1.0, False, 7.0),
    "hopper-medium-expert": (3e-4, 1.0, False, 5.0),
    "walker2d-medium-expert": (3e-4, 1.0, False, 5.0),
    "antmaze-umaze": (3e-4, 0.5, False, 2.0),
    "antmaze-umaze-diverse": (3e-4, 2.0, True, 3.0),
    "antmaze-medium-play": (1e-3, 2.0, True, 2.0),
    "antmaze-medium-diverse": (3e-4, 3.0, True, 1.0),
    "antmaze-large-play": (3e-4, 4.5, True, 10.0),
    "antmaze-large-diverse": (3e-4, 3.5, True, 7.0),
    "kitchen-complete": (3e-4, 0.005, False, 9.0),
    "kitchen-partial": (3e-4, 0.005, False, 10.0),
    "kitchen-mixed": (3e-4, 0.005, False, 10.0),
}


def recipe(task, protocol: str) -> dict:
    """DQL's per-task recipe: the actor lr (the paper protocol's 3e-4, or DQL's own under the
    dql protocol), the gradient clip and the max-Q backup."""
    lr, _, max_q_backup, grad_norm = TASK_TABLE[task.name]
    return {
        "actor_lr": PAPER_LR if protocol == "paper" else lr,
        "grad_norm": grad_norm,
        "max_q_backup": max_q_backup,
    }


def task_defaults(task, protocol: str) -> dict:
    """DQL's per-task recipe (lr by protocol, gn, max-Q) and DQL's per-task eta."""
    return {**recipe(task, protocol), "eta": TASK_TABLE[task.name][1]}


SPEC = AgentSpec(
    name="dql", label="DQL", make=make_dql, default_config=default_config,
    sweepable=SWEEPABLE, check=check, task_defaults=task_defaults, q_policy_key=base.Q_POLICY_MEAN,
    variant_field="num_diffusion_steps", paper_variant=5,
    summary="T-step DDPM policy (noise MSE + Q through the chain) + twin critics (DQL)",
    source=(
        "Wang, Hunt & Zhou, ICLR 2023, arXiv 2208.06193; "
        "code Zhendong-Wang/Diffusion-Policies-for-Offline-RL"
    ),
)  # fmt: skip

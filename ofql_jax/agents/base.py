"""The agent contract: what every algorithm provides, and the state every algorithm keeps.

An algorithm is one module in ``ofql_jax/agents/`` that defines ``SPEC = AgentSpec(...)``;
``ofql_jax.agents`` finds it by itself, so a new algorithm is one new file. The CLI
selects it with ``--config.algorithm=<name>``, and data, training (jit, vmap over seeds,
devices, sweeps), evaluation, checkpoints and results need no change.

Everything static (network shapes, optimisers, config) lives in the closures built by
``spec.make``; everything that changes lives in one :class:`AgentState` per seed, which
vmaps, shards and checkpoints as a whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from ofql_jax.core.errors import OFQLError
from ofql_jax.maths.networks import ACTIVATIONS
from ofql_jax.maths.selection import repeat_states, select_candidate

Params = Any


class AgentState(flax.struct.PyTreeNode):
    """Everything that changes during training, for one seed (stack for many).

    Agents without a critic keep ``critic_params`` and their optimiser state as ``{}``;
    agents without an EMA target policy keep ``target_policy_params`` equal to the policy.
    ``extra`` holds what else an agent trains (e.g. FQL's flow policy and its optimiser).
    """

    step: jax.Array  # int32, updates done so far
    rng: jax.Array  # uint32 raw key data (checkpointable)
    policy_params: Params  # the acting policy
    target_policy_params: Params  # EMA of the policy (the "ema" actor of evaluation)
    critic_params: Params  # twin critics, {} without a critic
    target_critic_params: Params  # Polyak average of the critics
    policy_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    hparams: dict[str, jax.Array]  # continuous hyperparameters as leaves (vmappable sweeps)
    extra: dict[str, Any] = flax.struct.field(default_factory=dict)

    @classmethod
    def initial(
        cls,
        key: jax.Array,
        policy_params: Params,
        policy_tx: optax.GradientTransformation,
        hparams: dict[str, jax.Array],
        critic_params: Params | None = None,
        critic_tx: optax.GradientTransformation | None = None,
        extra: dict[str, Any] | None = None,
    ) -> AgentState:
        """Step 0 from freshly initialised networks: targets equal to their networks, new
        optimiser states, ``key`` kept as the state's random stream. Without a critic
        (``critic_params=None``) its fields are ``{}``.

        Example: ``AgentState.initial(k_rng, params, tx, hparams_from(config, SWEEPABLE))``.
        """
        has_critic = critic_params is not None
        return cls(
            step=jnp.zeros((), jnp.int32),
            rng=jax.random.key_data(key),
            policy_params=policy_params,
            target_policy_params=policy_params,
            critic_params=critic_params if has_critic else {},
            target_critic_params=critic_params if has_critic else {},
            policy_opt_state=policy_tx.init(policy_params),
            critic_opt_state=critic_tx.init(critic_params) if has_critic else {},
            hparams=hparams,
            extra=extra or {},
        )


class Agent(NamedTuple):
    """The pure functions of one algorithm, closed over its static configuration.

    - ``init(key) -> state``; ``update(state, batch) -> (state, info)``, where ``info``
      maps metric names (``critic/...``, ``actor/...``) to scalars;
    - ``sample_actions(state, obs, key, num_candidates=1, *, actor="online",
      noise_temperature=1.0, q_temperature=1.0) -> actions`` in [-1, 1];
    - ``decide(policy_params, critic_params, obs, noise, gumbel=None, q_temperature=1.0)``:
      the same selection from caller-supplied randomness (``noise [..., noise_dim]`` for one
      action per state, ``[..., N, noise_dim]`` with ``gumbel [..., N]`` for a draw among N
      candidates), for fast serving (``ofql_jax.evaluation.policy``);
    - ``diagnose(state, batch, key) -> metrics`` (optional): health figures, no update.

    All are jit- and vmap-compatible (``num_candidates`` and keyword options are static).
    """

    init: Any
    update: Any
    sample_actions: Any
    decide: Any
    config: ml_collections.ConfigDict
    obs_dim: int
    act_dim: int
    diagnose: Any = None
    noise_dim: int = 0  # random numbers per action that decide() consumes (0: deterministic)
    # Leading noise entries a noise temperature scales (None: all). DQL: only x_T, as
    # CleanDiffuser (its per-step DDPM noise stays unscaled).
    scaled_noise_dim: int | None = None
    has_critic: bool = True  # False: evaluation uses N = 1 and no value monitor
    name: str = ""
    # Extra evaluations of the same state, reported beside the main one as
    # ``scores_<name>``: name -> keyword overrides for sample_actions (e.g. DQL's
    # {"ddim1": {"sampler": "ddim", "sampling_steps": 1}}).
    eval_options: dict[str, dict[str, Any]] = {}


def require(ok: bool, field: str, value: Any, need: str) -> None:
    """Raise the project's one-sentence error for an impossible config value."""
    if not ok:
        raise OFQLError(f"config.{field} = {value!r} is invalid: it must be {need}.")


def check_common(a: ml_collections.ConfigDict) -> None:
    """Checks of the fields most agents share (only those present are checked)."""

    def has(name: str) -> bool:
        return name in a

    for name in ("actor_lr", "critic_lr", "lr"):
        if has(name):
            require(a[name] > 0, f"agent.{name}", a[name], "> 0")
    for name in ("hidden_dims", "critic_hidden_dims"):
        if has(name):
            require(
                len(a[name]) >= 1 and min(a[name]) >= 1,
                f"agent.{name}",
                a[name],
                "a tuple of positive widths",
            )
    if has("discount"):
        require(0.0 <= a.discount <= 1.0, "agent.discount", a.discount, "in [0, 1]")
    if has("tau"):
        require(0.0 < a.tau <= 1.0, "agent.tau", a.tau, "in (0, 1]")
    if has("ema_decay"):
        require(0.0 <= a.ema_decay <= 1.0, "agent.ema_decay", a.ema_decay, "in [0, 1]")
    if has("ema_every"):
        require(a.ema_every >= 1, "agent.ema_every", a.ema_every, "a positive integer")
    if has("activation"):
        require(
            a.activation in ACTIVATIONS, "agent.activation", a.activation,
            f"one of {sorted(ACTIVATIONS)}",
        )  # fmt: skip
    if has("init_scheme"):
        require(
            a.init_scheme in ("pytorch", "lecun"), "agent.init_scheme", a.init_scheme,
            "pytorch or lecun",
        )  # fmt: skip
    if has("matmul_dtype"):
        require(
            a.matmul_dtype in ("float32", "bfloat16"), "agent.matmul_dtype", a.matmul_dtype,
            "float32 or bfloat16",
        )  # fmt: skip
    if has("num_backup_samples"):
        require(a.num_backup_samples >= 1, "agent.num_backup_samples", a.num_backup_samples, ">= 1")
    if has("q_norm_eps"):
        require(a.q_norm_eps >= 0.0, "agent.q_norm_eps", a.q_norm_eps, ">= 0")


def no_task_defaults(task: Any, protocol: str) -> dict[str, Any]:
    """An agent with the same settings on every task (``AgentSpec.task_defaults``'s default)."""
    del task, protocol
    return {}


Q_POLICY_MEAN = "diag/q_policy_mean"  # the critics' mean value of the policy's own actions


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """How the framework builds, configures, checks, names and monitors one algorithm.

    ``task_defaults(task, protocol)`` returns the agent fields a task sets (e.g. lr, gn,
    eta) from the agent's own per-task table; ``check(config)`` raises ``OFQLError`` naming
    the first bad field, and is also applied to every swept setting; ``sweepable`` names the
    continuous hyperparameters held as ``state.hparams`` leaves; ``label`` names the agent
    in reports; ``variant_field`` is the agent field that names its variant in the paper's
    style (DQL's T: "DQL(5)") and ``paper_variant`` the value the paper's Table 1 ran (a
    suite cell is named after it: ``display_name``); ``q_policy_key`` is the ``diagnose``
    metric holding the critics' value of the policy's own actions, which the
    value-divergence monitor watches (None: nothing to watch). Extra evaluation variants are
    the agent's ``eval_options``.
    """

    name: str
    label: str  # display name, e.g. "DQL"
    make: Callable[[ml_collections.ConfigDict, int, int, int], Agent]
    default_config: Callable[[], ml_collections.ConfigDict]
    sweepable: tuple[str, ...]
    summary: str  # one line for docs/running.md's table and --help
    source: str  # the paper (and code) it follows
    has_critic: bool = True
    check: Callable[[ml_collections.ConfigDict], None] = check_common
    task_defaults: Callable[[Any, str], dict[str, Any]] = no_task_defaults
    q_policy_key: str | None = None
    variant_field: str | None = None  # e.g. "num_diffusion_steps": DQL(T)
    paper_variant: int | None = None  # the variant the paper's Table 1 ran, e.g. DQL's T = 5

    @property
    def display_name(self) -> str:
        """The label with the paper's variant: ``"DQL(5)"``, ``"OFQL"``."""
        return f"{self.label}({self.paper_variant})" if self.paper_variant else self.label


def select_actor(state: AgentState, actor: str) -> Params:
    """The policy parameters evaluated: ``"online"`` or ``"ema"`` (the EMA target policy)."""
    if actor == "online":
        return state.policy_params
    if actor == "ema":
        return state.target_policy_params
    raise ValueError(f"unknown actor {actor!r}; use 'online' or 'ema'")


def clip_by_global_norm(default: float) -> optax.GradientTransformationExtraArgs:
    """``optax.clip_by_global_norm`` whose threshold may come at update time:
    ``tx.update(grads, state, grad_norm=x)``, e.g. a member's ``state.hparams["grad_norm"]``
    (``default`` without it). The same state (``EmptyState``) and the same arithmetic as
    optax's, so clipping at a traced float32 ``x`` gives optax's bits at ``x``; ``x <= 0``
    leaves the gradient as it is (that member's clip is off)."""

    def update(updates, state, params=None, *, grad_norm=None, **extra):
        del params, extra
        max_norm = default if grad_norm is None else grad_norm
        g_norm = optax.tree.norm(updates)
        trigger = jnp.squeeze(g_norm < _like(max_norm, g_norm)) | jnp.squeeze(max_norm <= 0)

        def clip(t):
            return jax.lax.select(trigger, t, (t / g_norm.astype(t.dtype)) * _like(max_norm, t))

        return jax.tree.map(clip, updates), state

    return optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update)


def _like(value, array: jax.Array):
    """``value`` in ``array``'s dtype: a Python float as it is (weakly typed, as optax's
    threshold), a traced one cast, so a float32 threshold changes no bfloat16 arithmetic."""
    return value if isinstance(value, (int, float)) else jnp.asarray(value).astype(array.dtype)


def adam_direction(grad_norm: float) -> optax.GradientTransformationExtraArgs:
    """Adam's update direction (clipped by global norm first if ``grad_norm > 0``); the
    learning rate is applied by the caller from ``state.hparams``, exactly as ``optax.adam``
    scales by ``-lr``. With a clip, ``update(..., grad_norm=x)`` clips at ``x`` (a member's
    ``state.hparams["grad_norm"]``; ``<= 0``: no clip) instead of ``grad_norm``; without one
    (``grad_norm <= 0``) the keyword is ignored. The optimiser state is the same either way
    as ``optax.chain(optax.clip_by_global_norm(grad_norm), optax.scale_by_adam())``'s (or
    ``scale_by_adam``'s alone), so checkpoints are unchanged."""
    adam = optax.with_extra_args_support(optax.scale_by_adam())
    return optax.chain(clip_by_global_norm(grad_norm), adam) if grad_norm > 0 else adam


def clip_threshold(state: AgentState, config: ml_collections.ConfigDict) -> jax.Array | float:
    """The gradient clip threshold ``adam_direction``'s update takes: the member's
    ``grad_norm`` hparam (a sweepable field), else the config's (an agent that does not
    sweep it)."""
    return state.hparams.get("grad_norm", config.grad_norm)


def learning_rate(base: jax.Array, step: jax.Array, decay: bool, num_steps: int) -> jax.Array:
    """``base``, or with ``decay`` optax's cosine schedule to 0 over ``num_steps``."""
    if not decay:
        return base
    fraction = jnp.minimum(step, num_steps) / max(num_steps, 1)
    return base * (0.5 * (1.0 + jnp.cos(jnp.pi * fraction)))


def ema_weight(
    step: jax.Array, start: int, every: int, decay: float, warmup: str = "copy"
) -> jax.Array:
    """The target-policy schedule as a weight on the old target: before ``start`` 0 (copy
    the online policy, ``warmup="copy"``) or 1 (keep the initial weights, ``"init"``, DQL's
    code literally), then ``decay`` every ``every`` steps and 1 (keep) otherwise; arithmetic,
    so vmapped seeds never take a ``cond``. "copy" is this project's reading of "EMA from
    step 1000" and only changes the first ``start`` steps' TD targets."""
    keep = jnp.where(step < start, 0.0, jnp.where(step % every == 0, decay, 1.0))
    if warmup == "init":
        keep = jnp.where(step < start, 1.0, keep)
    return keep


def blend(old: Params, new: Params, keep: jax.Array) -> Params:
    """``keep * old + (1 - keep) * new`` leaf-wise."""
    return jax.tree.map(lambda o, n: keep * o + (1.0 - keep) * n, old, new)


def hparams_from(config: ml_collections.ConfigDict, names: Sequence[str]) -> dict[str, jax.Array]:
    return {name: jnp.asarray(config[name], jnp.float32) for name in names}


def scale_noise(noise, temperature, scaled_dim: int | None):
    """``temperature`` times the first ``scaled_dim`` entries of the last axis (None: all);
    works on jax and numpy arrays."""
    if scaled_dim is None or scaled_dim >= noise.shape[-1]:
        return temperature * noise
    xp = jnp if isinstance(noise, jax.Array) else np
    return xp.concatenate([temperature * noise[..., :scaled_dim], noise[..., scaled_dim:]], axis=-1)


def candidate_decide(act: Callable, critics: Any = None) -> Callable:
    """``decide`` from ``act(policy_params, obs, noise) -> actions``: the action of ``noise
    [..., noise_dim]``; with ``noise [..., N, noise_dim]`` and ``gumbel [..., N]`` a draw from
    ``softmax(w Q)`` over the N candidates (Q = min of ``critics`` under ``critic_params``,
    w = ``q_temperature``). Without ``critics`` there is nothing to score: the policy's own
    action. Noise temperatures are already applied."""

    def decide(
        policy_params: Params,
        critic_params: Params,
        obs: jax.Array,
        noise: jax.Array,
        gumbel: jax.Array | None = None,
        q_temperature: float | jax.Array = 1.0,
    ) -> jax.Array:
        if gumbel is None or critics is None:
            return act(policy_params, obs, noise)
        obs_rep = repeat_states(obs, noise.shape[-2])
        candidates = act(policy_params, obs_rep, noise)
        q = critics.apply(critic_params, obs_rep, candidates).min(0)
        return select_candidate(candidates, q, gumbel, q_temperature)

    return decide


def standard_sample_actions(
    decide_with: Callable[..., Callable], noise_dim: int, scaled_noise_dim: int | None = None
) -> Callable:
    """``sample_actions`` for agents whose randomness is ``noise_dim`` normals per action:
    noise scaled by ``noise_temperature`` (its first ``scaled_noise_dim`` entries only, if
    given), and with N > 1 a Gumbel draw among candidates. ``decide_with(**options)``
    returns the ``decide`` to use; ``options`` are the agent's static sampling keywords
    (its ``eval_options``, e.g. DQL's ``sampler``), none for most agents."""

    def sample_actions(
        state: AgentState,
        obs: jax.Array,
        key: jax.Array,
        num_candidates: int = 1,
        *,
        actor: str = "online",
        noise_temperature: float = 1.0,
        q_temperature: float = 1.0,
        **options: Any,
    ) -> jax.Array:
        decide = decide_with(**options)
        params = select_actor(state, actor)
        k_noise, k_pick = jax.random.split(key)
        candidates = () if num_candidates == 1 else (num_candidates,)
        noise = jax.random.normal(k_noise, obs.shape[:-1] + candidates + (noise_dim,))
        noise = scale_noise(noise, noise_temperature, scaled_noise_dim)
        gumbel = None
        if num_candidates > 1:
            gumbel = jax.random.gumbel(k_pick, obs.shape[:-1] + (num_candidates,))
        return decide(params, state.target_critic_params, obs, noise, gumbel, q_temperature)

    return sample_actions


def action_diagnostics(
    actions: jax.Array, data_actions: jax.Array, q_policy: jax.Array | None = None,
    q_data: jax.Array | None = None,
) -> dict[str, jax.Array]:  # fmt: skip
    """Where acting actions sit against the dataset's at the same states (every agent) and,
    with a critic, their value ``q_policy [2, batch]`` against the data's ``q_data``."""
    out = {
        "diag/action_abs_mean": jnp.abs(actions).mean(),
        "diag/saturation": jnp.mean(jnp.abs(actions) > 0.99),
        "diag/data_saturation": jnp.mean(jnp.abs(data_actions) > 0.99),
        "diag/one_step_mse_to_data": jnp.square(actions - data_actions).sum(-1).mean(),
    }
    if q_policy is not None:
        out[Q_POLICY_MEAN] = q_policy.mean()
        out["diag/q_policy_max"] = q_policy.min(0).max()
        out["diag/q_data_mean"] = q_data.mean()
    return out

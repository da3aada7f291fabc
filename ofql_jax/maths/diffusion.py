"""A discrete-time DDPM as DQL has it: schedules, forward marginals, the noise-prediction loss,
and reverse samplers (DDPM and DDIM) that are differentiable and deterministic given noise.

Conventions are DQL's (``agents/diffusion.py`` and ``agents/helpers.py`` of
Zhendong-Wang/Diffusion-Policies-for-Offline-RL): timesteps ``t = 0 .. T-1``, where index ``t``
has cumulative product ``abar_t = prod_{s <= t} (1 - beta_s)``; the network predicts the noise;
at every reverse step the predicted ``x0`` is clipped to [-1, 1] before the posterior mean;
noise ``exp(0.5 log var_t) z`` is added at every step except ``t = 0``; the output is clipped
again. Samplers take ``eps_fn(x, t) -> eps`` (integer ``t`` of shape ``x.shape[:-1]``, anything
else closed over), so conditional and unconditional models share them, and every random number
comes from the caller. Schedule arrays are NumPy float64 and are cast to the dtype of ``x``
where used, so the same code runs in float32 or (under ``jax_enable_x64``) float64.

Example:
    >>> sched = make_schedule(vp_beta_schedule(5))
    >>> point = jnp.array([0.3, -0.5])  # a point mass and its exact noise predictor
    >>> eps_fn = lambda x, t: (x - extract(sched.sqrt_alphas_cumprod, t, x) * point) / extract(
    ...     sched.sqrt_one_minus_alphas_cumprod, t, x)
    >>> noise = jax.random.normal(jax.random.key(0), (4, 6, 2))  # x_T and one draw per step
    >>> bool(jnp.allclose(ddpm_sample(eps_fn, sched, noise[:, 0], noise[:, 1:]), point, atol=1e-5))
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x [..., d], t int [...]) -> eps [..., d]

BETA_SCHEDULES = ("vp", "linear", "cosine")


def vp_beta_schedule(num_steps: int, b_min: float = 0.1, b_max: float = 10.0) -> np.ndarray:
    """DQL's default: the discretised VP SDE, ``beta_t = 1 - exp(-b_min/T - (b_max - b_min)
    (2t - 1) / (2 T^2))`` for ``t = 1 .. T`` (float64; DQL rounds to float32 first)."""
    t = np.arange(1, num_steps + 1, dtype=np.float64)
    alpha = np.exp(-b_min / num_steps - 0.5 * (b_max - b_min) * (2 * t - 1) / num_steps**2)
    return 1.0 - alpha


def linear_beta_schedule(num_steps: int, start: float = 1e-4, end: float = 2e-2) -> np.ndarray:
    """DQL's ``linear`` option (DDPM's schedule)."""
    return np.linspace(start, end, num_steps, dtype=np.float64)


def cosine_beta_schedule(num_steps: int, s: float = 0.008) -> np.ndarray:
    """DQL's ``cosine`` option (Nichol & Dhariwal 2021), betas clipped to [0, 0.999]."""
    x = np.linspace(0, num_steps + 1, num_steps + 1, dtype=np.float64)
    abar = np.cos(((x / (num_steps + 1)) + s) / (1 + s) * np.pi * 0.5) ** 2
    abar = abar / abar[0]
    return np.clip(1.0 - abar[1:] / abar[:-1], 0.0, 0.999)


def beta_schedule(name: str, num_steps: int) -> np.ndarray:
    """The betas of DQL's schedule ``name`` (``vp`` | ``linear`` | ``cosine``)."""
    if name == "vp":
        return vp_beta_schedule(num_steps)
    if name == "linear":
        return linear_beta_schedule(num_steps)
    if name == "cosine":
        return cosine_beta_schedule(num_steps)
    raise ValueError(f"unknown beta schedule {name!r}; use one of {BETA_SCHEDULES}")


class Schedule(NamedTuple):
    """The per-step constants of one reverse chain (float64 NumPy, index = chain step).

    ``timesteps[k]`` is the network's time input at chain step ``k``: ``arange(T)`` for the
    full chain, a subsequence of it for a respaced one (``respace``).
    """

    timesteps: np.ndarray
    betas: np.ndarray
    alphas_cumprod: np.ndarray
    alphas_cumprod_prev: np.ndarray
    sqrt_alphas_cumprod: np.ndarray
    sqrt_one_minus_alphas_cumprod: np.ndarray
    sqrt_recip_alphas_cumprod: np.ndarray
    sqrt_recipm1_alphas_cumprod: np.ndarray
    posterior_variance: np.ndarray  # beta_t (1 - abar_{t-1}) / (1 - abar_t); 0 at t = 0
    posterior_log_variance_clipped: np.ndarray  # log(max(variance, 1e-20)), as DQL
    posterior_mean_coef1: np.ndarray  # weight of x0 in the posterior mean
    posterior_mean_coef2: np.ndarray  # weight of x_t

    @property
    def num_steps(self) -> int:
        return len(self.betas)


def make_schedule(betas: np.ndarray, timesteps: np.ndarray | None = None) -> Schedule:
    """Every constant DQL's ``Diffusion.__init__`` registers, from the betas."""
    betas = np.asarray(betas, np.float64)
    alphas = 1.0 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    var = betas * (1.0 - abar_prev) / (1.0 - abar)
    return Schedule(
        timesteps=np.arange(len(betas)) if timesteps is None else np.asarray(timesteps),
        betas=betas,
        alphas_cumprod=abar,
        alphas_cumprod_prev=abar_prev,
        sqrt_alphas_cumprod=np.sqrt(abar),
        sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - abar),
        sqrt_recip_alphas_cumprod=np.sqrt(1.0 / abar),
        sqrt_recipm1_alphas_cumprod=np.sqrt(1.0 / abar - 1.0),
        posterior_variance=var,
        posterior_log_variance_clipped=np.log(np.maximum(var, 1e-20)),
        posterior_mean_coef1=betas * np.sqrt(abar_prev) / (1.0 - abar),
        posterior_mean_coef2=(1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar),
    )


def respace(schedule: Schedule, steps: int) -> Schedule:
    """A ``steps``-step chain through ``steps`` of the trained timesteps (Improved DDPM's
    respacing: the same ``abar`` at the kept steps, betas ``1 - abar_k / abar_{k-1}``).

    ``steps == T`` returns ``schedule`` itself, so the full chain is DQL's exactly.
    """
    if steps == schedule.num_steps:
        return schedule
    kept = spaced_timesteps(schedule.num_steps, steps)
    abar = schedule.alphas_cumprod[kept]
    betas = 1.0 - abar / np.concatenate([[1.0], abar[:-1]])
    return make_schedule(betas, schedule.timesteps[kept])


def spaced_timesteps(num_steps: int, steps: int) -> np.ndarray:
    """``steps`` of ``0 .. T-1``, evenly spaced and always ending at ``T - 1`` (the step the
    chain starts from, whose marginal is closest to N(0, I)); ascending."""
    if not 1 <= steps <= num_steps:
        raise ValueError(f"steps must be in [1, {num_steps}], got {steps}")
    return np.array([(k + 1) * num_steps // steps - 1 for k in range(steps)])


def extract(values: np.ndarray, t: jax.Array, x: jax.Array) -> jax.Array:
    """``values[t]`` in the dtype of ``x``, shaped to broadcast over its last axis."""
    return jnp.asarray(values, x.dtype)[t][..., None]


def q_sample(schedule: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """A draw of ``x_t ~ q(x_t | x0) = N(sqrt(abar_t) x0, (1 - abar_t) I)`` from ``noise``."""
    return (
        extract(schedule.sqrt_alphas_cumprod, t, x0) * x0
        + extract(schedule.sqrt_one_minus_alphas_cumprod, t, x0) * noise
    )


def q_posterior(
    schedule: Schedule, x0: jax.Array, x_t: jax.Array, t: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mean, variance and clipped log-variance of ``q(x_{t-1} | x_t, x0)``."""
    mean = (
        extract(schedule.posterior_mean_coef1, t, x_t) * x0
        + extract(schedule.posterior_mean_coef2, t, x_t) * x_t
    )
    var = extract(schedule.posterior_variance, t, x_t)
    log_var = extract(schedule.posterior_log_variance_clipped, t, x_t)
    return mean, jnp.broadcast_to(var, x_t.shape), jnp.broadcast_to(log_var, x_t.shape)


def predict_x0(schedule: Schedule, x_t: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """``x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``, written as DQL writes it."""
    return (
        extract(schedule.sqrt_recip_alphas_cumprod, t, x_t) * x_t
        - extract(schedule.sqrt_recipm1_alphas_cumprod, t, x_t) * eps
    )


def sample_timesteps(key: jax.Array, shape: tuple[int, ...], num_steps: int) -> jax.Array:
    """Training timesteps, uniform in ``{0, ..., T-1}`` (DQL's ``torch.randint(0, T)``)."""
    return jax.random.randint(key, shape, 0, num_steps)


def noise_prediction_loss(
    eps_fn: EpsFn, schedule: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array
) -> jax.Array:
    """DQL's BC loss: ``mean (eps_fn(x_t, t) - noise)^2`` over the batch and the dimensions,
    with ``x_t = q_sample(x0, t, noise)``."""
    x_t = q_sample(schedule, x0, t, noise)
    return jnp.mean(jnp.square(eps_fn(x_t, t) - noise))


def _per_step(values: np.ndarray, dtype) -> jax.Array:
    return jnp.asarray(values[::-1], dtype)  # reverse order: the chain runs k = S-1 .. 0


def ddpm_sample(
    eps_fn: EpsFn,
    schedule: Schedule,
    x_T: jax.Array,
    step_noise: jax.Array,
    *,
    clip_denoised: bool = True,
    unroll: int | bool = True,
    return_x0: bool = False,
    bound: float = 1.0,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """DQL's ``p_sample_loop`` + ``sample``: the ancestral chain from ``x_T`` through every step
    of ``schedule``, then a clip to [-1, 1] (``[-bound, bound]``, as the denoised x0's clip).

    ``step_noise [..., S, d]``: draw ``j`` is used by the ``j``-th reverse step (chain index
    ``S-1-j``); the last is multiplied by 0 (no noise at ``t = 0``), as DQL draws and masks it.
    Differentiable in everything ``eps_fn`` closes over (back-propagation through the whole
    chain, DQL's Q-term gradient). With ``return_x0`` also the unclipped x0 predictions
    ``[S, ..., d]`` in chain order (diagnostics).
    """
    dtype = x_T.dtype
    num = schedule.num_steps
    if step_noise.shape[-2] != num:
        raise ValueError(f"step_noise has {step_noise.shape[-2]} draws for a {num}-step chain")
    xs = {
        "t": jnp.asarray(schedule.timesteps[::-1].copy(), jnp.int32),
        "k": jnp.arange(num - 1, -1, -1),
        "recip": _per_step(schedule.sqrt_recip_alphas_cumprod, dtype),
        "recipm1": _per_step(schedule.sqrt_recipm1_alphas_cumprod, dtype),
        "coef1": _per_step(schedule.posterior_mean_coef1, dtype),
        "coef2": _per_step(schedule.posterior_mean_coef2, dtype),
        "std": _per_step(np.exp(0.5 * schedule.posterior_log_variance_clipped), dtype),
        "z": jnp.moveaxis(step_noise, -2, 0).astype(dtype),
    }

    def step(x, s):
        eps = eps_fn(x, jnp.full(x.shape[:-1], s["t"], jnp.int32))
        x0_raw = s["recip"] * x - s["recipm1"] * eps
        x0 = jnp.clip(x0_raw, -bound, bound) if clip_denoised else x0_raw
        mean = s["coef1"] * x0 + s["coef2"] * x
        nonzero = (s["k"] != 0).astype(dtype)  # chain step 0: the mean only
        return mean + nonzero * s["std"] * s["z"], x0_raw

    x, x0s = jax.lax.scan(step, x_T, xs, unroll=unroll)
    x = jnp.clip(x, -bound, bound)
    return (x, x0s) if return_x0 else x


def ddim_sample(
    eps_fn: EpsFn,
    schedule: Schedule,
    x_T: jax.Array,
    steps: int,
    *,
    clip_denoised: bool = True,
    unroll: int | bool = True,
) -> jax.Array:
    """Deterministic DDIM (eta = 0) in ``steps`` steps through ``spaced_timesteps(T, steps)``,
    ending at the data (``abar = 1``), then a clip to [-1, 1].

    Each step predicts x0 (clipped, as DQL's denoising) and re-derives the noise from the
    clipped x0, which is what CleanDiffuser's noise-prediction clip amounts to. One step:
    ``clip(x0(x_T, T-1))``.
    """
    dtype = x_T.dtype
    kept = spaced_timesteps(schedule.num_steps, steps)
    abar = schedule.alphas_cumprod[kept]
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    xs = {
        "t": jnp.asarray(schedule.timesteps[kept][::-1].copy(), jnp.int32),
        "a": _per_step(np.sqrt(abar), dtype),
        "s": _per_step(np.sqrt(1.0 - abar), dtype),
        "a_prev": _per_step(np.sqrt(abar_prev), dtype),
        "s_prev": _per_step(np.sqrt(1.0 - abar_prev), dtype),
    }

    def step(x, s):
        eps = eps_fn(x, jnp.full(x.shape[:-1], s["t"], jnp.int32))
        x0 = (x - s["s"] * eps) / s["a"]
        if clip_denoised:
            x0 = jnp.clip(x0, -1.0, 1.0)
            eps = (x - s["a"] * x0) / s["s"]
        return s["a_prev"] * x0 + s["s_prev"] * eps, None

    x, _ = jax.lax.scan(step, x_T, xs, unroll=unroll)
    return jnp.clip(x, -1.0, 1.0)

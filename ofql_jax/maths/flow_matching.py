"""Velocity (v-parameterised) flow matching: the BC loss and the Euler sampler.

This project's convention (docs/algorithm.md, as ``ofql_jax.maths.meanflow``): ``t = 0`` is data,
``t = 1`` is noise, ``z_t = (1 - t) a + t e`` and the target velocity is ``v = e - a``;
sampling integrates ``dz/dt = v`` from ``t = 1`` down to ``t = 0``.

FQL's code (seohongpark/fql) runs the other way: ``x_s = (1 - s) e + s a`` with ``s = 0``
noise, target ``a - e``, and ``x += v_fql(x, s) / K`` at ``s = i / K``. With ``t = 1 - s``
the two are the same model: ``v(z, t) = -v_fql(z, 1 - t)``; the same paths, the same
uniform time distribution, the same Euler iterates (tests/test_flow_agents.py checks it).

Functions take ``v_fn(z, t) -> v`` with any parameters and conditioning closed over, so
they serve conditioned policies and unconditioned toy models alike.

Example:
    >>> v_fn = lambda z, t: z  # v = z: dz/dt = z, so z(0) = e / exp(1)
    >>> a = euler_sample(v_fn, jnp.ones((1, 2)), num_steps=100)  # (1 - 1/100)^100
    >>> [round(float(x), 3) for x in a[0]]
    [0.366, 0.366]
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

VelocityFn = Callable[[jax.Array, jax.Array], jax.Array]  # (z [..., d], t [...]) -> v [..., d]


def flow_matching_loss(
    v_fn: VelocityFn,
    actions: jax.Array,
    noise: jax.Array,
    t: jax.Array,
    reduction: str = "mean",
) -> jax.Array:
    """``E ||v(z_t, t) - (e - a)||^2`` at given noise and times ``t [batch]``.

    ``reduction`` is over action dims: ``"mean"`` (FQL: ``jnp.mean`` over batch and dims)
    or ``"sum"`` (the squared L2 norm, OFQL's L_FBC); the batch is always averaged.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"unknown reduction {reduction!r}; use 'mean' or 'sum'")
    z = (1.0 - t[..., None]) * actions + t[..., None] * noise
    sq = jnp.square(v_fn(z, t) - (noise - actions))
    per_sample = sq.sum(-1) if reduction == "sum" else sq.mean(-1)
    return per_sample.mean()


def flow_bc_loss(
    v_fn: VelocityFn, actions: jax.Array, key: jax.Array, reduction: str = "mean"
) -> jax.Array:
    """The flow-matching BC loss with ``t ~ U[0, 1]`` (FQL) and ``e ~ N(0, I)`` drawn from
    ``key``, one pair per dataset action."""
    k_time, k_noise = jax.random.split(key)
    t = jax.random.uniform(k_time, actions.shape[:-1], actions.dtype)
    noise = jax.random.normal(k_noise, actions.shape, actions.dtype)
    return flow_matching_loss(v_fn, actions, noise, t, reduction)


def euler_sample(
    v_fn: VelocityFn,
    noise: jax.Array,
    num_steps: int,
    clip: tuple[float, float] | None = None,
    clip_every_step: bool = False,
    unroll: int | bool | None = None,
) -> jax.Array:
    """Integrate ``dz/dt = v(z, t)`` from ``z = noise`` at ``t = 1`` to ``t = 0`` in
    ``num_steps`` Euler steps: ``z <- z - v(z, t_i) / K`` with ``t_i = 1 - i / K``.

    Deterministic given ``noise`` and differentiable end to end (through every step, the
    way FBRAC back-propagates its Q term). ``clip = (lo, hi)`` clips the result, and with
    ``clip_every_step`` every intermediate ``z`` too (as DQL clips each denoised step).
    ``unroll=True`` unrolls the loop as FQL's Python loop does (faster on accelerators), an
    int unrolls that many steps per ``lax.scan`` iteration (faster to compile); ``None``
    unrolls up to 16 steps (the agents' 1 to 10) and scans longer integrations.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps = {num_steps} must be >= 1")
    dt = 1.0 / num_steps
    batch_shape = noise.shape[:-1]

    def clipped(z: jax.Array) -> jax.Array:
        return z if clip is None else jnp.clip(z, clip[0], clip[1])

    def step(z: jax.Array, i: jax.Array) -> tuple[jax.Array, None]:
        t = jnp.full(batch_shape, 1.0 - i / num_steps, noise.dtype)
        z = z - dt * v_fn(z, t)
        return (clipped(z) if clip_every_step else z), None

    if unroll is None:
        unroll = num_steps <= 16
    steps = jnp.arange(num_steps, dtype=noise.dtype)
    z, _ = jax.lax.scan(step, noise, steps, unroll=unroll)
    return clipped(z)

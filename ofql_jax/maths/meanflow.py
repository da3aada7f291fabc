"""MeanFlow maths for OFQL: time sampling, the JVP target, the flow-BC loss, one-step actions.

Conventions (docs/algorithm.md): ``z_t = (1 - t) a + t e`` with ``t = 1`` pure noise,
``v = e - a``, ``u(z_t, r, t)`` the average velocity over ``[r, t]``. Functions
take ``u_fn(z, r, t) -> u`` with parameters and states already closed over, so
they serve any network.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

VelocityFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def sample_time_pair(
    key: jax.Array,
    batch_size: int,
    flow_ratio: jax.Array | float,
    mean: float = -0.4,
    std: float = 1.0,
    endpoint_ratio: jax.Array | float = 0.0,
    uniform_ratio: jax.Array | float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """Draw ``r <= t``: two sorted logit-normal draws, then ``r = t`` w.p. ``flow_ratio``.

    ``uniform_ratio = q > 0`` (ours): a share q of the pairs sorts two uniform draws instead
    of two logit-normal ones, so every (r, t) region, t near 1 included, is trained.

    With ``endpoint_ratio = p > 0`` (this project's option; the paper's sampler is p = 0) a
    share p of the pairs is replaced by ``(r, t) = (0, 1)``, the map the one-step policy
    acts with, which the logit-normal draws almost never reach (P(t > 0.95) = 0.0008 at the
    defaults). The other pairs, and the random stream, are unchanged.

    Example:
        >>> r, t = sample_time_pair(jax.random.key(0), 4, flow_ratio=0.5)
        >>> bool(jnp.all(r <= t))
        True
    """
    k_times, k_equal = jax.random.split(key)
    draws = jax.nn.sigmoid(mean + std * jax.random.normal(k_times, (2, batch_size)))
    k_uniform = jax.random.fold_in(key, 2)
    uniform = jax.random.uniform(jax.random.fold_in(k_uniform, 0), (batch_size,)) < uniform_ratio
    draws = jnp.where(uniform, jax.random.uniform(k_uniform, (2, batch_size)), draws)
    t, r = draws.max(0), draws.min(0)
    r = jnp.where(jax.random.uniform(k_equal, (batch_size,)) < flow_ratio, t, r)
    endpoint = jax.random.uniform(jax.random.fold_in(key, 1), (batch_size,)) < endpoint_ratio
    return jnp.where(endpoint, 0.0, r), jnp.where(endpoint, 1.0, t)


def interpolate(actions: jax.Array, noise: jax.Array, t: jax.Array) -> jax.Array:
    """The linear path ``z_t = (1 - t) a + t e`` (t broadcast over action dims)."""
    t = t[..., None]
    return (1.0 - t) * actions + t * noise


def meanflow_target(
    u_fn: VelocityFn, z: jax.Array, r: jax.Array, t: jax.Array, v: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Return ``(u, u_tgt)``: the prediction and the stop-gradient MeanFlow target.

    One forward-mode pass gives ``u`` and its total time derivative along the
    path, ``du/dt = v . grad_z u + partial_t u`` (tangents ``(v, 0, 1)``); the
    target is ``v - (t - r) du/dt``, which equals ``v`` when ``r = t``.
    """
    u, dudt = jax.jvp(u_fn, (z, r, t), (v, jnp.zeros_like(r), jnp.ones_like(t)))
    target = v - (t - r)[..., None] * dudt
    return u, jax.lax.stop_gradient(target)


def flow_bc_loss(
    u_fn: VelocityFn,
    actions: jax.Array,
    key: jax.Array,
    flow_ratio: jax.Array | float,
    time_mean: float = -0.4,
    time_std: float = 1.0,
    reduction: str = "sum",
    weight_power: float = 0.0,
    weight_eps: float = 1e-3,
    endpoint_ratio: jax.Array | float = 0.0,
    uniform_ratio: jax.Array | float = 0.0,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """OFQL's flow behaviour-cloning loss ``L_FBC`` on a batch of dataset actions.

    ``reduction="sum"`` takes ``||u - u_tgt||^2`` over action dims (the formula in
    the paper), ``"mean"`` averages over them (DQL's MSE). ``weight_power = p > 0``
    turns on MeanFlow's adaptive weight ``sg(1 / (||delta||^2 + eps)^p)`` (off by
    default: not mentioned for OFQL). ``endpoint_ratio``: see ``sample_time_pair``.
    """
    k_time, k_noise = jax.random.split(key)
    batch_size = actions.shape[0]
    r, t = sample_time_pair(
        k_time, batch_size, flow_ratio, time_mean, time_std, endpoint_ratio, uniform_ratio
    )
    noise = jax.random.normal(k_noise, actions.shape, actions.dtype)
    u, target = meanflow_target(u_fn, interpolate(actions, noise, t), r, t, noise - actions)
    sq = jnp.square(u - target)
    per_sample = sq.sum(-1) if reduction == "sum" else sq.mean(-1)
    weight = jax.lax.stop_gradient(1.0 / (per_sample + weight_eps) ** weight_power)
    loss = jnp.mean(weight * per_sample)
    return loss, {"actor/bc_loss_unweighted": per_sample.mean(), "actor/time_gap": (t - r).mean()}


def one_step_action(u_fn: VelocityFn, noise: jax.Array, bound: float = 1.0) -> jax.Array:
    """The one-step policy: ``clip(e - u(e, r=0, t=1), -1, 1)``; differentiable in the params.

    ``bound = b`` clips to ``[-b, b]`` instead (data in a larger box, as the toy experiment's).

    Example:
        >>> a = one_step_action(lambda z, r, t: z, jnp.ones((2, 3)))  # u = z maps e to 0
        >>> a.tolist()
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    ones = jnp.ones(noise.shape[:-1], noise.dtype)
    return jnp.clip(noise - u_fn(noise, 0.0 * ones, ones), -bound, bound)


def few_step_action(
    u_fn: VelocityFn, noise: jax.Array, steps: int, bound: float = 1.0
) -> jax.Array:
    """``steps`` mean-flow jumps over equal intervals of [0, 1]: ``z_r = z_t - (t - r) u(z_t, r,
    t)`` from ``z_1 = e``, clipped to ``[-bound, bound]``; ``steps = 1`` is ``one_step_action``.

    A diagnostic, not a policy: OFQL's Q term acts on the one-step map only, so the few-step
    samplers of the same network show whether it moved the whole field or only its corner
    (r, t) = (0, 1).

    Example:
        >>> e = jnp.ones((1, 2))
        >>> few_step_action(lambda z, r, t: z, e, 2).tolist()  # (1 - 1/2)^2 e
        [[0.25, 0.25]]
    """
    ones = jnp.ones(noise.shape[:-1], noise.dtype)
    z = noise
    for k in range(steps, 0, -1):  # t = k / steps down to r = (k - 1) / steps
        t, r = k / steps, (k - 1) / steps
        z = z - (t - r) * u_fn(z, r * ones, t * ones)
    return jnp.clip(z, -bound, bound)

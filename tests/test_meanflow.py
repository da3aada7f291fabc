"""The MeanFlow maths against independent computations: finite differences and closed forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from ofql_jax.maths import meanflow
from ofql_jax.maths.networks import MeanVelocityField


def _small_policy(act_dim=2, obs_dim=3, dtype=jnp.float64):
    net = MeanVelocityField(action_dim=act_dim, hidden_dims=(16, 16), time_dim=8)
    z, t, s = jnp.zeros((1, act_dim)), jnp.zeros((1,)), jnp.zeros((1, obs_dim))
    params = net.init(jax.random.key(0), z, t, t, s)
    params = jax.tree.map(lambda x: x.astype(dtype), params)
    return net, params


def test_jvp_target_matches_finite_difference_total_derivative():
    with jax.enable_x64(True):
        net, params = _small_policy()
        rng = np.random.default_rng(0)
        n = 6
        obs = jnp.asarray(rng.normal(size=(n, 3)))
        a = jnp.asarray(rng.uniform(-1, 1, size=(n, 2)))
        e = jnp.asarray(rng.normal(size=(n, 2)))
        t = jnp.asarray(rng.uniform(0.3, 0.9, size=n))
        r = t * jnp.asarray(rng.uniform(0.0, 0.9, size=n))
        v = e - a
        u_fn = lambda z, rr, tt: net.apply(params, z, rr, tt, obs)  # noqa: E731

        u, target = meanflow.meanflow_target(u_fn, meanflow.interpolate(a, e, t), r, t, v)

        # Independent: central difference of u(z_t, r, t) along the path, r held fixed.
        h = 1e-5
        plus = u_fn(meanflow.interpolate(a, e, t + h), r, t + h)
        minus = u_fn(meanflow.interpolate(a, e, t - h), r, t - h)
        dudt_fd = (plus - minus) / (2 * h)
        expected = v - (t - r)[:, None] * dudt_fd
        np.testing.assert_allclose(u, u_fn(meanflow.interpolate(a, e, t), r, t), rtol=1e-12)
        np.testing.assert_allclose(target, expected, rtol=1e-7, atol=1e-8)
        assert float(jnp.abs(dudt_fd).max()) > 1e-3  # the derivative term is not trivially zero


def test_target_equals_v_when_r_equals_t():
    net, params = _small_policy(dtype=jnp.float32)
    key = jax.random.key(1)
    obs = jax.random.normal(key, (5, 3))
    a = jnp.tanh(jax.random.normal(jax.random.fold_in(key, 1), (5, 2)))
    e = jax.random.normal(jax.random.fold_in(key, 2), (5, 2))
    t = jax.random.uniform(jax.random.fold_in(key, 3), (5,))
    u_fn = lambda z, rr, tt: net.apply(params, z, rr, tt, obs)  # noqa: E731
    _, target = meanflow.meanflow_target(u_fn, meanflow.interpolate(a, e, t), t, t, e - a)
    np.testing.assert_array_equal(target, e - a)


def test_target_is_fixed_point_for_the_exact_mean_velocity_of_a_point_mass():
    # Data = a single action a0: every path is straight, the true average velocity is
    # u(z, r, t) = (z - a0) / t = e - a0 for any r; the MeanFlow target must reproduce it.
    a0 = jnp.array([[0.3, -0.5]])
    e = jax.random.normal(jax.random.key(2), (4, 2))
    t = jnp.array([0.2, 0.5, 0.7, 1.0])
    r = jnp.array([0.0, 0.1, 0.7, 0.3])
    exact = lambda z, rr, tt: (z - a0) / tt[:, None]  # noqa: E731
    u, target = meanflow.meanflow_target(exact, meanflow.interpolate(a0, e, t), r, t, e - a0)
    np.testing.assert_allclose(target, e - a0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(u, e - a0, rtol=1e-5, atol=1e-6)
    # And the one-step action recovers a0 exactly from any noise.
    np.testing.assert_allclose(
        meanflow.one_step_action(exact, e), jnp.broadcast_to(a0, e.shape), atol=1e-6
    )


def test_target_is_fixed_point_for_the_exact_mean_velocity_of_a_gaussian():
    # 1-D data a ~ N(m, s^2): the marginal flow maps quantiles to quantiles, so the exact
    # average velocity is u(z, r, t) = (z - z_r) / (t - r) with
    # z_r = mu(r) + sig(r) / sig(t) * (z - mu(t)), mu(t) = (1 - t) m,
    # sig(t)^2 = (1 - t)^2 s^2 + t^2.
    # With the marginal velocity as tangent, the MeanFlow target must equal u exactly.
    m, s = 0.4, 0.3
    with jax.enable_x64(True):
        mu = lambda t: (1 - t) * m  # noqa: E731
        sig = lambda t: jnp.sqrt((1 - t) ** 2 * s**2 + t**2)  # noqa: E731
        flow_to = lambda z, r, t: mu(r) + sig(r) / sig(t) * (z - mu(t))  # noqa: E731
        u_exact = lambda z, r, t: (z - flow_to(z, r[:, None], t[:, None])) / (t - r)[:, None]  # noqa: E731
        v_marg = lambda z, t: -m + ((t - 1) * s**2 + t) / sig(t) ** 2 * (z - mu(t))  # noqa: E731
        rng = np.random.default_rng(1)
        t = jnp.asarray(rng.uniform(0.2, 1.0, 8))
        r = t * jnp.asarray(rng.uniform(0.0, 0.9, 8))
        z = jnp.asarray(rng.normal(size=(8, 1)))
        u, target = meanflow.meanflow_target(u_exact, z, r, t, v_marg(z, t[:, None]))
        np.testing.assert_allclose(target, u, rtol=1e-9, atol=1e-12)
        # The exact one-step map turns N(0, 1) noise into N(m, s^2) actions.
        e = jnp.asarray(rng.normal(size=(200_000, 1)))
        a = e - u_exact(e, jnp.zeros(len(e)), jnp.ones(len(e)))
        assert abs(float(a.mean()) - m) < 0.005 and abs(float(a.std()) - s) < 0.005


def test_target_has_no_gradient():
    net, params = _small_policy(dtype=jnp.float32)
    obs, a = jnp.ones((4, 3)), jnp.zeros((4, 2))

    def target_sum(p):
        u_fn = lambda z, rr, tt: net.apply(p, z, rr, tt, obs)  # noqa: E731
        t = jnp.full((4,), 0.8)
        return meanflow.meanflow_target(u_fn, a, 0.2 * t, t, jnp.ones((4, 2)))[1].sum()

    grads = jax.grad(target_sum)(params)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads))


def _logit_normal_cdf(x, mean=-0.4, std=1.0):
    return stats.norm.cdf((np.log(x) - np.log1p(-x) - mean) / std)


def test_time_sampler_ordering_distribution_and_flow_ratio():
    n = 200_000
    r, t = jax.jit(meanflow.sample_time_pair, static_argnums=1)(jax.random.key(0), n, 0.0)
    r, t = np.asarray(r, np.float64), np.asarray(t, np.float64)
    assert np.all(r <= t) and np.all((r > 0) & (t < 1))
    # t = max of two iid logit-normals: CDF F^2; r = min: 1 - (1 - F)^2.
    assert stats.kstest(t, lambda x: _logit_normal_cdf(x) ** 2).pvalue > 1e-3
    assert stats.kstest(r, lambda x: 1 - (1 - _logit_normal_cdf(x)) ** 2).pvalue > 1e-3
    assert np.mean(r == t) == 0.0

    for ratio in (0.25, 0.5, 1.0):
        r, t = meanflow.sample_time_pair(jax.random.key(1), n, ratio)
        frac = float(jnp.mean(r == t))
        assert abs(frac - ratio) < 5 * np.sqrt(ratio * (1 - ratio) / n) + 1e-9, (ratio, frac)
        # The t marginal is untouched by the flow ratio.
        assert (
            stats.kstest(np.asarray(t, np.float64), lambda x: _logit_normal_cdf(x) ** 2).pvalue
            > 1e-3
        )


def test_one_step_action_shape_range_and_gradient():
    with jax.enable_x64(True):
        net, params = _small_policy()
        obs = jax.random.normal(jax.random.key(3), (7, 3), jnp.float64)
        noise = jax.random.normal(jax.random.key(4), (7, 2), jnp.float64) * 3.0

        def act(p):
            return meanflow.one_step_action(lambda z, r, t: net.apply(p, z, r, t, obs), noise)

        actions = act(params)
        assert actions.shape == (7, 2)
        assert float(actions.min()) >= -1.0 and float(actions.max()) <= 1.0
        assert np.any(np.abs(np.asarray(actions)) == 1.0)  # large noise hits the clip

        # Gradient of a smooth function of the action vs a finite difference in one weight.
        objective = lambda p: jnp.sum(jnp.sin(act(p)))  # noqa: E731
        grads = jax.grad(objective)(params)
        path = ("params", "mlp", "Dense_2", "bias")
        g = grads
        for k in path:
            g = g[k]
        h = 1e-6

        def shifted(delta):
            p = jax.tree.map(lambda x: x, params)
            leaf = p["params"]["mlp"]["Dense_2"]["bias"]
            p["params"]["mlp"]["Dense_2"]["bias"] = leaf.at[0].add(delta)
            return objective(p)

        fd = (shifted(h) - shifted(-h)) / (2 * h)
        assert abs(float(g[0])) > 1e-6
        np.testing.assert_allclose(float(g[0]), float(fd), rtol=1e-5)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_flow_bc_loss_reduction_and_adaptive_weight(reduction):
    # A velocity field with a known error: u = target + 1 in every dim (target ~ v at r = t).
    a = jnp.zeros((8, 3))
    u_fn = lambda z, r, t: z - 0.0 * r[:, None] + 1.0  # noqa: E731  (u = z + 1; du/dt = v)
    loss, _ = meanflow.flow_bc_loss(u_fn, a, jax.random.key(0), 1.0, reduction=reduction)
    # With flow_ratio = 1, r = t so target = v = e; z_t = t e, u = t e + 1.
    r, t = meanflow.sample_time_pair(jax.random.split(jax.random.key(0))[0], 8, 1.0)
    e = jax.random.normal(jax.random.split(jax.random.key(0))[1], (8, 3))
    per = jnp.square(t[:, None] * e + 1 - e)
    expected = per.sum(-1).mean() if reduction == "sum" else per.mean()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    weighted, _ = meanflow.flow_bc_loss(
        u_fn, a, jax.random.key(0), 1.0, reduction=reduction, weight_power=1.0, weight_eps=1e-3
    )
    per_sample = per.sum(-1) if reduction == "sum" else per.mean(-1)
    np.testing.assert_allclose(weighted, jnp.mean(per_sample / (per_sample + 1e-3)), rtol=1e-5)


def test_few_step_action_closed_forms():
    """A constant average velocity c is its own mean flow: every step count lands on e - c;
    u = z shrinks e by (1 - 1/k) per jump, so k jumps give (1 - 1/k)^k e; one jump is the
    one-step map."""
    e = jnp.asarray(np.random.default_rng(0).uniform(-0.5, 0.5, (5, 3)), jnp.float32)
    c = jnp.asarray([0.1, -0.2, 0.3], jnp.float32)
    for k in (1, 2, 3, 8):
        np.testing.assert_allclose(
            meanflow.few_step_action(lambda z, r, t: jnp.broadcast_to(c, z.shape), e, k),
            np.clip(np.asarray(e) - np.asarray(c), -1, 1), rtol=1e-6, atol=1e-6,
        )  # fmt: skip
        np.testing.assert_allclose(
            meanflow.few_step_action(lambda z, r, t: z, e, k), (1 - 1 / k) ** k * np.asarray(e),
            rtol=1e-5, atol=1e-7,
        )  # fmt: skip
    u = lambda z, r, t: jnp.sin(3 * z) * (t - r)[:, None] + r[:, None]  # noqa: E731
    np.testing.assert_array_equal(meanflow.few_step_action(u, e, 1), meanflow.one_step_action(u, e))

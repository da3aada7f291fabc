"""Network building blocks against their references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.maths.networks import CriticEnsemble, Dense, mish


def test_mish_matches_the_textbook_formula_in_value_and_gradient():
    x = jnp.linspace(-40.0, 40.0, 400_001)
    with jax.enable_x64(True):
        x64 = np.asarray(x, np.float64)
        reference = x64 * np.tanh(np.log1p(np.exp(x64)))  # float64 ground truth
        tanh_sp = np.tanh(np.log1p(np.exp(x64)))
        sigmoid = 0.5 * (1.0 + np.tanh(0.5 * x64))
        derivative = tanh_sp + x64 * (1.0 - tanh_sp**2) * sigmoid  # d/dx, by hand
    np.testing.assert_allclose(mish(x), reference, rtol=2e-6, atol=1e-30)
    np.testing.assert_allclose(mish(x), jax.nn.mish(x), rtol=2e-6, atol=1e-30)
    grad = jax.vmap(jax.grad(mish))(x)
    tangent = jax.jvp(mish, (x,), (jnp.ones_like(x),))[1]  # forward mode: MeanFlow's JVP
    # The written-out derivative is within a few float32 ulps of the float64 one; autodiff
    # of m / (m + 2) was off by up to 7e-6 (x times the rounding of a difference near 2),
    # which a trained critic amplified (test below). jax.nn.mish's own: within 1e-5.
    np.testing.assert_allclose(grad, derivative, rtol=0, atol=5e-7)
    np.testing.assert_allclose(tangent, derivative, rtol=0, atol=5e-7)
    np.testing.assert_allclose(jax.vmap(jax.grad(jax.nn.mish))(x), derivative, rtol=1e-5, atol=1e-6)
    assert bool(jnp.all(jnp.isfinite(grad)))


def test_critic_action_gradient_in_float32_matches_float64():
    """The actor's Q term follows dQ/da of the critics; in a critic whose hidden units reach
    the 10-20 range (weights 4x their init, as training grows them) that gradient is a small
    difference of large terms, so float32 must still give it to 1e-4 of float64 (the
    autodiffed one-exp Mish gave 0.31 here, and about 3x the norm in a trained walker2d
    critic on XLA's CPU backend: docs/algorithm.md, section 9)."""
    critics = CriticEnsemble()
    k_s, k_a, k_p = jax.random.split(jax.random.key(0), 3)
    obs = jax.random.normal(k_s, (256, 17))
    actions = jnp.tanh(jax.random.normal(k_a, (256, 6)))
    params = jax.tree.map(lambda w: 4.0 * w, critics.init(k_p, obs, actions))

    def action_grad(p, s, a):
        return jax.grad(lambda a: critics.apply(p, s, a).mean())(a)

    g32 = np.asarray(jax.jit(action_grad)(params, obs, actions), np.float64)
    with jax.enable_x64(True):
        to64 = lambda t: jax.tree.map(lambda x: jnp.asarray(np.asarray(x, np.float64)), t)  # noqa: E731
        g64 = np.asarray(jax.jit(action_grad)(to64(params), to64(obs), to64(actions)))
    assert np.linalg.norm(g32 - g64) / np.linalg.norm(g64) < 1e-4


def test_pytorch_init_bounds_and_bf16_matmul():
    layer = Dense(64)
    x = jax.random.normal(jax.random.key(0), (8, 100))
    params = layer.init(jax.random.key(1), x)["params"]
    bound = 1 / np.sqrt(100)
    for leaf in (params["kernel"], params["bias"]):
        assert float(jnp.abs(leaf).max()) <= bound and float(jnp.abs(leaf).max()) > 0.9 * bound
    bf16 = Dense(64, matmul_dtype="bfloat16").apply({"params": params}, x)
    f32 = layer.apply({"params": params}, x)
    assert bf16.dtype == jnp.float32
    np.testing.assert_allclose(bf16, f32, atol=0.05)  # bf16 inputs: ~3 significant digits
    assert not np.array_equal(bf16, f32)


def test_critic_heads_are_independent():
    critics = CriticEnsemble(num_heads=2, hidden_dims=(16,))
    s, a = jnp.ones((3, 4)), jnp.ones((3, 2))
    params = critics.init(jax.random.key(0), s, a)
    q = critics.apply(params, s, a)
    assert q.shape == (2, 3) and not np.allclose(q[0], q[1])
    # Changing head 1's weights leaves head 0's output unchanged.
    bumped = jax.tree.map(lambda w: w.at[1].add(1.0), params)
    np.testing.assert_array_equal(critics.apply(bumped, s, a)[0], q[0])

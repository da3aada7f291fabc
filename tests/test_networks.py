"""Network building blocks against their references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.networks import CriticEnsemble, Dense, mish


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
    # float32 rounding of exp/log1p (XLA's approximations differ by optimisation level):
    # within 1e-5 of the float64 derivative, as jax.nn.mish's own gradient is.
    np.testing.assert_allclose(grad, derivative, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.grad(jax.nn.mish))(x), derivative, rtol=1e-5, atol=1e-6)
    assert bool(jnp.all(jnp.isfinite(grad)))


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

"""DQL: the DDPM maths against closed forms in float64 NumPy, DQL's sampling loop written out
step by step, the chain's gradient against finite differences, the BC term against a NumPy
forward pass of the network, and one CLI run end to end (with DQL+DDIM(1) reported)."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ofql_jax.agents.dql import default_config, make_dql
from ofql_jax.core.types import Transitions
from ofql_jax.maths import critic as critic_lib
from ofql_jax.maths import diffusion

REPO = Path(__file__).resolve().parents[1]
OBS, ACT = 3, 2


def tiny_config(**overrides):
    c = default_config()
    c.hidden_dims, c.critic_hidden_dims, c.time_dim = (16, 16), (16, 16), 8
    for k, v in overrides.items():
        c[k] = v
    return c


def vp_alphas_cumprod(T: int, b_min: float = 0.1, b_max: float = 10.0) -> np.ndarray:
    """abar_t = exp(-int_0^{(t+1)/T} beta(s) ds) with the VP SDE's beta(s) = b_min + s (b_max -
    b_min): the integral DQL's per-step betas discretise exactly."""
    s = np.arange(1, T + 1) / T
    return np.exp(-(b_min * s + 0.5 * (b_max - b_min) * s**2))


# --- (a) schedule, forward marginals, posterior --------------------------------------------


@pytest.mark.parametrize("T", [1, 5, 20])
def test_vp_schedule_is_the_discretised_vp_sde(T):
    sched = diffusion.make_schedule(diffusion.vp_beta_schedule(T))
    np.testing.assert_allclose(sched.alphas_cumprod, vp_alphas_cumprod(T), rtol=1e-12)
    assert np.all((sched.betas > 0) & (sched.betas < 1))


@pytest.mark.parametrize("name,T", [("vp", 5), ("vp", 20), ("linear", 10), ("cosine", 10)])
def test_forward_marginals_match_the_sequential_chain(name, T):
    """Mean and variance of x_t | x0 propagated one step at a time through
    x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z (float64), against ``q_sample``."""
    betas = diffusion.beta_schedule(name, T)
    sched = diffusion.make_schedule(betas)
    x0 = np.array([[0.7, -0.2, 0.05]], np.float32)
    mean, var = x0.astype(np.float64), 0.0
    for t in range(T):
        mean, var = np.sqrt(1 - betas[t]) * mean, (1 - betas[t]) * var + betas[t]
        tt = jnp.array([t])
        at_zero = diffusion.q_sample(sched, jnp.asarray(x0), tt, jnp.zeros_like(x0))
        at_one = diffusion.q_sample(sched, jnp.asarray(x0), tt, jnp.ones_like(x0))
        np.testing.assert_allclose(at_zero, mean, atol=1e-6)
        np.testing.assert_allclose(np.square(at_one - at_zero), var, rtol=1e-5)


@pytest.mark.parametrize("name,T", [("vp", 5), ("vp", 20), ("linear", 10)])
def test_posterior_is_the_gaussian_product(name, T):
    """q(x_{t-1} | x_t, x0) is proportional to q(x_{t-1} | x0) q(x_t | x_{t-1}): precisions add,
    means are precision-weighted. At t = 0 it is the point x0 (DQL: log-variance clipped)."""
    betas = diffusion.beta_schedule(name, T)
    sched = diffusion.make_schedule(betas)
    rng = np.random.default_rng(0)
    x0, x_t = rng.uniform(-1, 1, (T, 2)), rng.normal(size=(T, 2))
    mean, var, log_var = diffusion.q_posterior(
        sched, jnp.asarray(x0, jnp.float32), jnp.asarray(x_t, jnp.float32), jnp.arange(T)
    )
    abar_prev = 1.0
    for t in range(T):
        alpha = 1 - betas[t]
        if t == 0:
            want_mean, want_var = x0[0], 0.0
        else:
            precision = 1 / (1 - abar_prev) + alpha / betas[t]
            want_var = 1 / precision
            want_mean = want_var * (
                np.sqrt(abar_prev) * x0[t] / (1 - abar_prev) + np.sqrt(alpha) * x_t[t] / betas[t]
            )
        np.testing.assert_allclose(mean[t], want_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(var[t], want_var, rtol=1e-5, atol=1e-12)
        np.testing.assert_allclose(log_var[t], np.log(max(want_var, 1e-20)), rtol=1e-5)
        abar_prev *= alpha


# --- (b) samplers ----------------------------------------------------------------------------


def point_mass_eps(sched, point):
    """The exact noise predictor of a point mass at ``point``."""
    return lambda x, t: (
        (x - diffusion.extract(sched.sqrt_alphas_cumprod, t, x) * point)
        / diffusion.extract(sched.sqrt_one_minus_alphas_cumprod, t, x)
    )


@pytest.mark.parametrize("T", [5, 12])
def test_samplers_return_a_point_mass(T):
    sched = diffusion.make_schedule(diffusion.vp_beta_schedule(T))
    point = jnp.array([0.3, -0.7, 0.95, 1.5])  # the last is outside the box: clipped to 1
    want = np.clip(np.asarray(point), -1, 1)
    eps_fn = point_mass_eps(sched, point)
    noise = jax.random.normal(jax.random.key(0), (16, T + 1, 4))
    x_T, z = noise[:, 0], noise[:, 1:]
    outs = jax.jit(
        lambda x_T, z: {
            "ddpm": diffusion.ddpm_sample(eps_fn, sched, x_T, z),
            "ddpm_respaced": diffusion.ddpm_sample(
                eps_fn, diffusion.respace(sched, 2), x_T, z[:, :2]
            ),
            "ddim1": diffusion.ddim_sample(eps_fn, sched, x_T, 1),
            "ddim_T": diffusion.ddim_sample(eps_fn, sched, x_T, T),
        }
    )(x_T, z)
    for name, out in outs.items():
        np.testing.assert_allclose(out, np.broadcast_to(want, out.shape), atol=2e-5, err_msg=name)


def test_ddpm_chain_is_dqls_loop_step_by_step():
    """DQL's ``p_sample_loop`` written out in float64 NumPy for an eps-model that is not exact:
    noise order, the t = 0 mask, the clips and the final clamp."""
    T = 5
    betas = diffusion.vp_beta_schedule(T)
    sched = diffusion.make_schedule(betas)
    w = np.array([[0.9, -0.4], [0.3, 1.1]])

    def eps_np(x, t):
        return np.tanh(x @ w) * (1.0 + 0.3 * t) + 0.2

    def eps_jax(x, t):
        return jnp.tanh(x @ jnp.asarray(w, x.dtype)) * (1.0 + 0.3 * t[..., None]) + 0.2

    noise = np.random.default_rng(1).normal(size=(6, T + 1, 2)) * 2.0
    alphas, abar = 1 - betas, np.cumprod(1 - betas)
    x = noise[:, 0]
    for j, t in enumerate(reversed(range(T))):
        abar_prev = abar[t - 1] if t > 0 else 1.0
        x0 = np.clip(x / np.sqrt(abar[t]) - np.sqrt(1 / abar[t] - 1) * eps_np(x, t), -1, 1)
        mean = (
            betas[t] * np.sqrt(abar_prev) / (1 - abar[t]) * x0
            + (1 - abar_prev) * np.sqrt(alphas[t]) / (1 - abar[t]) * x
        )
        var = betas[t] * (1 - abar_prev) / (1 - abar[t])
        x = mean + (t > 0) * np.sqrt(var) * noise[:, j + 1]
    want = np.clip(x, -1, 1)
    got = diffusion.ddpm_sample(
        eps_jax, sched, jnp.asarray(noise[:, 0], jnp.float32), jnp.asarray(noise[:, 1:])
    )
    np.testing.assert_allclose(got, want, atol=2e-5)
    # DDIM(1): x0 predicted once from x_T at t = T - 1, clipped.
    x_T = noise[:, 0]
    x0 = x_T / np.sqrt(abar[-1]) - np.sqrt(1 / abar[-1] - 1) * eps_np(x_T, T - 1)
    got = diffusion.ddim_sample(eps_jax, sched, jnp.asarray(x_T, jnp.float32), 1)
    np.testing.assert_allclose(got, np.clip(x0, -1, 1), atol=2e-5)


@pytest.fixture(scope="module")
def tiny():
    """(config, agent, initial state) with small networks, shared by the agent-level tests."""
    config = tiny_config()
    agent = make_dql(config, OBS, ACT)
    return config, agent, jax.jit(agent.init)(jax.random.key(0))


def test_noise_temperature_scales_only_the_initial_noise(tiny):
    """CleanDiffuser's convention: with x_T scaled to ~0 DDIM (x_T only) is deterministic,
    while the DDPM chain still varies through its unscaled per-step noise."""
    _, agent, state = tiny
    obs = jax.random.normal(jax.random.key(1), (64, OBS))

    @jax.jit
    def both(key):
        sample = lambda **kw: agent.sample_actions(state, obs, key, 1, noise_temperature=1e-7, **kw)
        return sample(sampler="ddim", sampling_steps=1), sample()

    (ddim_a, ddpm_a), (ddim_b, ddpm_b) = both(jax.random.key(2)), both(jax.random.key(3))
    np.testing.assert_allclose(ddim_a, ddim_b, atol=1e-4)  # x_T ~ 1e-7, amplified by the net
    assert float(jnp.abs(ddpm_a - ddpm_b).max()) > 1e-2


# --- (c) the gradient through the chain ------------------------------------------------------


H = 1e-6  # finite-difference step (float64)


def test_q_gradient_through_the_chain_matches_finite_differences(tiny):
    """d/d theta of mean Q_1(s, chain_theta(s, noise)) along random directions, against central
    differences, in float64. ``decide`` is the chain training back-propagates through."""
    config, agent, state = tiny
    critics = critic_lib.make_critics(config)
    with jax.enable_x64(True):
        f64 = lambda tree: jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), tree)
        params, critic_params = f64(state.policy_params), f64(state.critic_params)
        k_obs, k_noise, k_dir = jax.random.split(jax.random.key(1), 3)
        obs = jax.random.normal(k_obs, (8, OBS), jnp.float64)
        noise = 0.5 * jax.random.normal(k_noise, (8, agent.noise_dim), jnp.float64)

        def objective(p):
            actions = agent.decide(p, {}, obs, noise)
            return critics.apply(critic_params, obs, actions)[0].mean()

        @jax.jit
        def check(direction):  # (grad . direction, objective at +-H direction)
            grad = jax.grad(objective)(params)
            analytic = sum(
                jnp.vdot(g, d)
                for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(direction), strict=True)
            )
            shifted = lambda sign: objective(
                jax.tree.map(lambda p, d: p + sign * H * d, params, direction)
            )
            return analytic, shifted(1.0), shifted(-1.0)

        leaves, treedef = jax.tree.flatten(params)
        for key in jax.random.split(k_dir, 2):
            keys = jax.random.split(key, len(leaves))
            direction = treedef.unflatten(
                [
                    jax.random.normal(k, x.shape, jnp.float64)
                    for k, x in zip(keys, leaves, strict=True)
                ]
            )
            analytic, plus, minus = (float(v) for v in check(direction))
            numeric = (plus - minus) / (2 * H)
            assert abs(analytic) > 1e-6  # the chain really carries gradient
            assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9)


# --- (d) the BC term --------------------------------------------------------------------------


def _mish(x):
    return x * np.tanh(np.log1p(np.exp(x)))


def _dense(p, x):
    return x @ np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"], np.float64)


def numpy_noise_predictor(params, x, t, obs, time_dim):
    """DQL's model.py MLP in float64 NumPy: sinusoidal(t) -> Linear -> Mish -> Linear, then
    concat[x, t_emb, s] -> (Linear, Mish) x n -> Linear."""
    p = params["params"]
    half = time_dim // 2
    freqs = np.exp(np.arange(half) * -(math.log(10000) / (half - 1)))
    angles = t[:, None].astype(np.float64) * freqs[None]
    emb = np.concatenate([np.sin(angles), np.cos(angles)], -1)
    emb = _dense(p["t_embedding"]["Dense_1"], _mish(_dense(p["t_embedding"]["Dense_0"], emb)))
    h = np.concatenate([x, emb, obs], -1)
    layers = sorted(p["mlp"], key=lambda name: int(name.split("_")[1]))
    for name in layers[:-1]:
        h = _mish(_dense(p["mlp"][name], h))
    return _dense(p["mlp"][layers[-1]], h)


def test_bc_term_of_the_actor_loss_matches_a_hand_computation(tiny):
    config, agent, state = tiny
    T = config.num_diffusion_steps
    k = jax.random.split(jax.random.key(5), 5)
    batch = Transitions(
        jax.random.normal(k[0], (6, OBS)),
        jnp.tanh(jax.random.normal(k[1], (6, ACT))),
        jax.random.normal(k[2], (6,)),
        jax.random.normal(k[3], (6, OBS)),
        jnp.zeros(6),
    )
    _, info = jax.jit(agent.update)(state, batch)
    # The draws update() makes for the BC term (its key layout: rng -> 5 keys, the third for
    # BC, split into timesteps and noise).
    k_bc = jax.random.split(jax.random.wrap_key_data(state.rng), 5)[2]
    k_t, k_noise = jax.random.split(k_bc)
    t = np.asarray(jax.random.randint(k_t, (6,), 0, T))
    noise = np.asarray(jax.random.normal(k_noise, (6, ACT)), np.float64)
    abar = vp_alphas_cumprod(T)[t][:, None]
    a = np.asarray(batch.actions, np.float64)
    x_t = np.sqrt(abar) * a + np.sqrt(1 - abar) * noise
    eps = numpy_noise_predictor(
        state.policy_params, x_t, t, np.asarray(batch.observations, np.float64), config.time_dim
    )
    want = np.mean((eps - noise) ** 2)  # DQL's F.mse_loss: mean over batch and dims
    assert float(info["actor/bc_loss"]) == pytest.approx(want, rel=1e-5)
    assert float(info["actor/loss"]) == pytest.approx(
        float(info["actor/bc_loss"]) + config.eta * float(info["actor/q_loss"]), rel=1e-5
    )

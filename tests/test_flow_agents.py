"""Flow matching, FQL and FBRAC against independent computations.

Euler steps against a linear ODE (its discrete recursion in float64 NumPy and its closed
form), the flow-matching loss by hand and by its expectations, FQL's distillation target
against Euler written out in FQL's own time direction, FBRAC's gradient through the Euler
chain against central finite differences in float64, and one CLI run per agent.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_train import REPO

from ofql_jax.agents import fbrac, fql
from ofql_jax.maths import critic as critic_lib
from ofql_jax.maths import flow_matching


def tiny(module, **overrides):
    c = module.default_config()
    c.hidden_dims = c.critic_hidden_dims = (16, 16)
    for key, value in overrides.items():
        c[key] = value
    return c


# --- (a) Euler against a linear ODE ---------------------------------------------------------

RNG = np.random.default_rng(0)
M = RNG.normal(size=(3, 3))
A = (M + M.T) / 4 + np.eye(3)  # symmetric, eigenvalues away from 0
B = RNG.normal(size=3)
E = RNG.normal(size=(4, 3))


def linear_v(z, t):
    return z @ jnp.asarray(A.T, z.dtype) + t[..., None] * jnp.asarray(B, z.dtype)


def numpy_euler(num_steps, clip=None):
    z = E.copy()
    for i in range(num_steps):
        z = z - (z @ A.T + (1.0 - i / num_steps) * B) / num_steps
        if clip is not None:
            z = np.clip(z, *clip)
    return z


def exact_z0():
    """dz/dt = A z + b t from z(1) = e, at t = 0: z_p(t) = -A^-1 b t - A^-2 b is a particular
    solution, so z(0) = exp(-A) (e - z_p(1)) + z_p(0)."""
    w, q = np.linalg.eigh(A)
    expm = q @ np.diag(np.exp(-w)) @ q.T
    a_inv = np.linalg.inv(A)
    zp1, zp0 = -a_inv @ B - a_inv @ a_inv @ B, -a_inv @ a_inv @ B
    return (E - zp1) @ expm.T + zp0


def test_euler_equals_the_discrete_recursion_and_converges_at_first_order():
    e = jnp.asarray(E, jnp.float32)
    for k in (1, 3, 10):
        got = flow_matching.euler_sample(linear_v, e, k)
        np.testing.assert_allclose(got, numpy_euler(k), rtol=1e-5, atol=1e-5)
    clipped = flow_matching.euler_sample(linear_v, e, 4, clip=(-0.5, 0.5), clip_every_step=True)
    np.testing.assert_allclose(clipped, numpy_euler(4, (-0.5, 0.5)), rtol=1e-5, atol=1e-6)
    final_only = flow_matching.euler_sample(linear_v, e, 4, clip=(-0.5, 0.5))
    np.testing.assert_allclose(final_only, np.clip(numpy_euler(4), -0.5, 0.5), atol=1e-5)
    # Global error O(1/K): x4 steps divides it by about 4.
    errors = [
        np.abs(np.asarray(flow_matching.euler_sample(linear_v, e, k, unroll=1)) - exact_z0()).max()
        for k in (8, 32, 128)
    ]
    assert errors[0] > 3.0 * errors[1] > 9.0 * errors[2] and errors[2] < 0.02, errors
    # The scan and the unrolled loop are the same computation.
    rolled = flow_matching.euler_sample(linear_v, e, 10, unroll=1)
    np.testing.assert_allclose(rolled, flow_matching.euler_sample(linear_v, e, 10), atol=1e-6)


# --- (b) the flow-matching loss -------------------------------------------------------------


def test_flow_matching_loss_by_hand():
    a = np.array([[0.5, -1.0], [0.0, 0.25], [-0.75, 1.0]], np.float32)
    e = np.array([[1.0, 0.0], [-2.0, 0.5], [0.3, -0.1]], np.float32)
    t = np.array([0.0, 0.5, 0.9], np.float32)

    def v_fn(z, t):
        return 2.0 * z - t[:, None]

    z = (1 - t[:, None]) * a + t[:, None] * e
    err = (2.0 * z - t[:, None]) - (e - a)
    for reduction, expected in (("mean", np.mean(err**2)), ("sum", np.sum(err**2) / 3)):
        got = flow_matching.flow_matching_loss(v_fn, a, e, t, reduction)
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_sampled_flow_bc_loss_has_fqls_time_and_direction():
    key = jax.random.key(0)
    # t ~ U[0, 1]: with v = t and a = 0, E (t - e)^2 = E t^2 + 1 = 4/3 per dim.
    zeros = jnp.zeros((20_000, 2))
    loss = flow_matching.flow_bc_loss(
        lambda z, t: jnp.broadcast_to(t[:, None], z.shape), zeros, key
    )
    assert abs(float(loss) - 4.0 / 3.0) < 0.03
    # Data at one point a0: v(z, t) = (z - a0) / t is the exact velocity of z_t = (1-t) a0 + t e
    # (t = 1 noise, v = e - a); FQL's direction, (a0 - z) / t, is not.
    a0 = jnp.array([0.3, -0.6])
    data = jnp.broadcast_to(a0, (512, 2))
    ours = flow_matching.flow_bc_loss(lambda z, t: (z - a0) / t[:, None], data, key, "sum")
    flipped = flow_matching.flow_bc_loss(lambda z, t: (a0 - z) / t[:, None], data, key, "sum")
    assert float(ours) < 1e-6 and float(flipped) > 1.0


# --- (c) FQL's distillation target ----------------------------------------------------------


def test_fql_distillation_target_is_fqls_euler_loop():
    c = tiny(fql, time_dim=0)
    agent = fql.make_fql(c, obs_dim=5, act_dim=2)
    state = agent.init(jax.random.key(1))
    net, params = fql.flow_network(c, 2), state.extra["flow_params"]
    obs = jax.random.normal(jax.random.key(2), (6, 5))
    noise = 1.5 * jax.random.normal(jax.random.key(3), (6, 2))  # some |a| > 1: clip engaged

    def v_fn(p):
        return lambda z, t: net.apply(p, z, t, obs)

    target = fql.distillation_target(v_fn(params), noise, c.flow_steps)
    # FQL's compute_flow_actions in its own direction (s = 0 noise, x += v_fql(x, s) / K)
    # with v_fql(x, s) = -v(x, 1 - s), the network evaluated once per step.
    x, k, apply = np.asarray(noise, np.float64), c.flow_steps, jax.jit(net.apply)
    for i in range(k):
        s = i / k
        v = np.asarray(apply(params, jnp.asarray(x, jnp.float32), jnp.full(6, 1 - s), obs))
        x = x + (-v) / k
    expected = np.clip(x, -1, 1)
    assert 0 < np.mean(np.abs(expected) == 1.0) < 1
    np.testing.assert_allclose(target, expected, atol=2e-6)
    # No gradient reaches the flow network through the target.
    grads = jax.grad(lambda p: fql.distillation_target(v_fn(p), noise, k).sum())(params)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads))

    # One update: the flow network trains, and the "ema" actor is the online one-step policy.
    new_state, info = jax.jit(agent.update)(state, random_batch())
    new_flow = jax.tree.leaves(new_state.extra["flow_params"])
    for old, new in zip(jax.tree.leaves(params), new_flow, strict=True):
        assert not np.array_equal(old, new)
    online = jax.tree.leaves(new_state.policy_params)
    for p, q in zip(online, jax.tree.leaves(new_state.target_policy_params), strict=True):
        np.testing.assert_array_equal(p, q)
    assert np.isfinite(float(info["actor/distill_loss"]))


def random_batch(n: int = 32):
    from ofql_jax.core.types import Transitions

    k = jax.random.split(jax.random.key(4), 5)
    return Transitions(
        jax.random.normal(k[0], (n, 5)),
        jnp.tanh(jax.random.normal(k[1], (n, 2))),
        jax.random.normal(k[2], (n,)),
        jax.random.normal(k[3], (n, 5)),
        jnp.zeros((n,)),
    )


# --- (d) FBRAC: the gradient of Q through the Euler chain -----------------------------------


def test_q_gradient_through_the_euler_chain_matches_finite_differences():
    c = tiny(fbrac, time_dim=8)
    with jax.enable_x64(True):
        net, critics = fql.flow_network(c, 2), critic_lib.make_critics(c)
        obs = jax.random.normal(jax.random.key(5), (8, 5), jnp.float64)
        noise = jax.random.normal(jax.random.key(6), (8, 2), jnp.float64)

        def to64(tree):
            return jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), tree)

        params = to64(net.init(jax.random.key(7), noise, noise[:, 0], obs))
        critic_params = to64(critics.init(jax.random.key(8), obs, noise))

        @jax.jit
        def q_of(p):  # what FBRAC's Q term differentiates: Q of the T = 5 step action
            actions = flow_matching.euler_sample(
                lambda z, t: net.apply(p, z, t, obs), noise, c.train_steps, clip=(-1.0, 1.0)
            )
            return critics.apply(critic_params, obs, actions).mean()

        assert q_of(params).dtype == jnp.float64
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(jax.random.key(9), len(leaves))
        direction = treedef.unflatten(
            [jax.random.normal(k, x.shape, jnp.float64) for k, x in zip(keys, leaves, strict=True)]
        )
        grads = jax.tree.leaves(jax.jit(jax.grad(q_of))(params))
        pairs = zip(grads, jax.tree.leaves(direction), strict=True)
        analytic = sum(float(jnp.vdot(g, d)) for g, d in pairs)
        h = 1e-5

        def shifted(sign):
            return jax.tree.map(lambda p, d: p + sign * h * d, params, direction)

        numeric = (float(q_of(shifted(1))) - float(q_of(shifted(-1)))) / (2 * h)
    assert abs(analytic) > 1e-4
    assert abs(analytic - numeric) <= 1e-6 * max(1.0, abs(numeric)), (analytic, numeric)


def test_fbrac_acts_with_inference_steps():
    c = tiny(fbrac, time_dim=0, inference_steps=3, eval_steps=(2,))
    agent = fbrac.make_fbrac(c, obs_dim=5, act_dim=2)
    assert agent.eval_options == {"euler2": {"inference_steps": 2}}
    state = agent.init(jax.random.key(10))
    net = fql.flow_network(c, 2)
    obs = jax.random.normal(jax.random.key(11), (4, 5))
    noise = jax.random.normal(jax.random.key(12), (4, 2))
    x = np.asarray(noise, np.float64)
    for i in range(3):
        t = jnp.full(4, 1 - i / 3)
        x = x - np.asarray(net.apply(state.policy_params, jnp.asarray(x, jnp.float32), t, obs)) / 3
    got = agent.decide(state.policy_params, state.target_critic_params, obs, noise)
    np.testing.assert_allclose(got, np.clip(x, -1, 1), atol=2e-6)
    one = fbrac.make_fbrac(tiny(fbrac, time_dim=0), obs_dim=5, act_dim=2)
    key = jax.random.key(13)
    np.testing.assert_array_equal(
        agent.sample_actions(state, obs, key, 4, inference_steps=1),
        one.sample_actions(state, obs, key, 4),
    )


# --- per-task defaults and the CLI ----------------------------------------------------------


def test_task_defaults_reach_the_experiment_config():
    sys.path.insert(0, str(REPO / "experiments"))
    import d4rl

    c = d4rl.get_config("antmaze-large-play,algorithm=fql")
    assert (c.agent.alpha, c.agent.normalize_q_loss, c.agent.q_agg) == (3.0, False, "mean")
    c = d4rl.get_config("hopper-medium,dql,algorithm=fql")
    assert (c.agent.alpha, c.agent.normalize_q_loss, c.agent.q_agg) == (0.4, True, "min")
    assert c.agent.actor_lr == 3e-4 and c.agent.grad_norm == 0.0
    assert d4rl.get_config("kitchen-mixed,algorithm=fql").agent.alpha == 10.0
    c = d4rl.get_config("antmaze-medium-play,dql,algorithm=fbrac")
    assert (c.agent.actor_lr, c.agent.grad_norm, c.agent.max_q_backup) == (1e-3, 2.0, True)
    assert c.agent.eta == 0.5 and c.agent.train_steps == 5 and c.agent.inference_steps == 1


@pytest.mark.parametrize("module", [fql, fbrac])
def test_bad_values_are_refused(module):
    from ofql_jax.core.errors import OFQLError

    field = "flow_steps" if module is fql else "train_steps"
    with pytest.raises(OFQLError, match=f"agent.{field}"):
        module.check(tiny(module, **{field: 0}))
    with pytest.raises(OFQLError, match="agent.time_dim"):
        module.check(tiny(module, time_dim=3))

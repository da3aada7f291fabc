"""``ofql_jax.evaluation.policy.Policy``: the serving path draws what ``agent.sample_actions``
draws.

Both places the randomness can come from (``draws="device"``: in the compiled call from a
carried key; ``"host"``: NumPy, passed in) are checked against ``sample_actions``: the device
stream call for call, both in distribution on a tiny agent whose EMA actor, noise temperature
and candidate selection each change the action distribution measurably.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import stats

from ofql_jax.agents import AGENTS
from ofql_jax.evaluation.policy import Policy, decision_key

OBS, ACT = 3, 2
SETTINGS = dict(actor="ema", noise_temperature=0.6, q_temperature=5.0)


def tiny(name: str, **overrides):
    """A small agent whose EMA actor and critics are 3x its online networks, so that the
    actor, the noise temperature and the Q selection each move the actions visibly."""
    config = AGENTS[name].default_config()
    config.hidden_dims = (16, 16)
    if "critic_hidden_dims" in config:
        config.critic_hidden_dims = (16, 16)
    for key, value in overrides.items():
        config[key] = value
    agent = AGENTS[name].make(config, OBS, ACT, 1000)
    state = agent.init(jax.random.key(0))
    triple = lambda tree: jax.tree.map(lambda x: 3.0 * x, tree)  # noqa: E731
    state = state.replace(target_policy_params=triple(state.policy_params),
                          target_critic_params=triple(state.target_critic_params))  # fmt: skip
    return agent, state


def reference(agent, state, obs, key, n, **settings):
    sample = jax.jit(agent.sample_actions, static_argnums=3,
                     static_argnames=("actor", "noise_temperature", "q_temperature"))  # fmt: skip
    return np.asarray(sample(state, obs, key, n, **settings))


@pytest.mark.parametrize("name", ["ofql", "dql", "bc"])
def test_device_draws_replay_sample_actions_call_for_call(name):
    agent, state = tiny(name, **({"num_diffusion_steps": 3} if name == "dql" else {}))
    obs = np.random.default_rng(1).normal(size=(5, OBS)).astype(np.float32)
    for n in (1, 4) if agent.has_critic else (1,):
        policy = Policy(agent, state, n, seed=7, draws="device", **SETTINGS)
        for k in range(2):
            got = policy(obs)
            want = reference(agent, state, obs, decision_key(7, k), n, **SETTINGS)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=f"{name} N={n}")
    assert policy(obs[0]).shape == (ACT,)  # one state compiles its own shape


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest two-sample KS p-value over the action dimensions."""
    return min(stats.ks_2samp(a[:, d], b[:, d], method="asymp").pvalue for d in range(a.shape[1]))


@pytest.mark.parametrize("draws", ["device", "host"])
def test_decisions_equal_sample_actions_in_distribution(draws):
    """4,000 decisions for one state (a batch of copies) against 4,000 from sample_actions
    with an unrelated key: indistinguishable, while sample_actions with the online actor,
    the noise at temperature 1 or a uniform pick among the candidates is told apart."""
    agent, state = tiny("ofql")
    n, m = 8, 4000
    obs = np.tile(np.random.default_rng(2).normal(size=(1, OBS)).astype(np.float32), (m, 1))
    got = Policy(agent, state, n, seed=3, draws=draws, **SETTINGS)(obs)
    key = jax.random.key(123)
    assert _ks(got, reference(agent, state, obs, key, n, **SETTINGS)) > 1e-3
    wrong = {"actor": "online", "noise_temperature": 1.0, "q_temperature": 0.0}
    for field, value in wrong.items():
        other = reference(agent, state, obs, key, n, **{**SETTINGS, field: value})
        assert _ks(got, other) < 1e-6, f"cannot tell {field}={value} apart"


@pytest.mark.parametrize("draws", ["device", "host"])
def test_the_seed_sets_the_stream(draws):
    agent, state = tiny("ofql")
    obs = np.random.default_rng(4).normal(size=(6, OBS)).astype(np.float32)

    def three_calls(seed: int) -> np.ndarray:
        policy = Policy(agent, state, 4, seed=seed, draws=draws, **SETTINGS)
        return np.stack([policy(obs) for _ in range(3)])

    first = three_calls(5)
    np.testing.assert_array_equal(first, three_calls(5))
    assert np.abs(first - three_calls(6)).max() > 1e-3
    assert np.abs(first[0] - first[1]).max() > 1e-3  # each call draws afresh


def test_one_executable_per_shape_and_the_key_stays_on_the_device():
    agent, state = tiny("ofql")
    policy = Policy(agent, state, 4, seed=0, draws="device")
    key = policy.key
    policy(np.zeros(OBS, np.float32))
    assert key.is_deleted()  # donated to the call that replaced it
    assert isinstance(policy.key, jax.Array) and not policy.key.is_deleted()
    policy(np.zeros((3, OBS), np.float32))
    policy(np.ones(OBS, np.float32))
    assert set(policy._compiled) == {(3, OBS), (OBS,)}
    assert policy(jax.numpy.zeros((3, OBS))).shape == (3, ACT)  # a device array goes in as is


def test_auto_draws_on_the_host_only_on_a_cpu():
    agent, state = tiny("ofql")
    expected = "host" if jax.default_backend() == "cpu" else "device"
    assert Policy(agent, state).draws == expected
    with pytest.raises(ValueError, match="unknown draws"):
        Policy(agent, state, draws="gpu")

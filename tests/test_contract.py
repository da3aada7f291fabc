"""Every registered agent keeps the contract of ofql_jax/agents/base.py.

Parametrised over ``ofql_jax.agents.AGENTS``, so a new agent file is checked without
touching this test: jit and vmap over seeds, bitwise determinism, finite losses, action
shapes and range, decide() from caller-supplied noise, the fast Policy, checkpoint round
trips, config checks on swept values, and the CLI selecting it by name.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ofql_jax.agents import AGENTS
from ofql_jax.agents.base import Agent, AgentState
from ofql_jax.checkpointing import Checkpointer
from ofql_jax.errors import OFQLError
from ofql_jax.policy import Policy
from ofql_jax.train import init_states, make_train_chunk
from ofql_jax.types import Transitions

OBS, ACT = 5, 2
NAMES = sorted(AGENTS)


def tiny_config(name: str):
    """The agent's defaults with small networks (the fields agents share by convention)."""
    c = AGENTS[name].default_config()
    for field in ("hidden_dims", "critic_hidden_dims"):
        if field in c:
            c[field] = (16, 16)
    if "time_dim" in c:
        c.time_dim = 8
    return c


def random_data(n: int = 300) -> Transitions:
    k = jax.random.split(jax.random.key(0), 5)
    return Transitions(
        jax.random.normal(k[0], (n, OBS)),
        jnp.tanh(jax.random.normal(k[1], (n, ACT))),
        jax.random.normal(k[2], (n,)),
        jax.random.normal(k[3], (n, OBS)),
        (jax.random.uniform(k[4], (n,)) < 0.1).astype(jnp.float32),
    )


@pytest.fixture(scope="module", params=NAMES)
def trained(request):
    """(name, agent, states after 2 x 5 updates for seeds [0, 1], metrics)."""
    name = request.param
    agent = AGENTS[name].make(tiny_config(name), OBS, ACT, 1000)
    states = init_states(agent, [0, 1])
    chunk = jax.jit(jax.vmap(make_train_chunk(agent, 32, 5), in_axes=(0, None)))
    data = random_data()
    states, metrics = chunk(states, data)
    states, metrics = chunk(states, data)
    return name, agent, states, jax.device_get(metrics)


def test_spec_is_complete(trained):
    name, agent, states, _ = trained
    spec = AGENTS[name]
    assert isinstance(agent, Agent) and isinstance(states, AgentState)
    assert agent.name == name and agent.has_critic == spec.has_critic
    assert spec.summary and spec.source
    for field in spec.sweepable:
        assert field in states.hparams and field in spec.default_config()
    assert not spec.has_critic or jax.tree.leaves(states.critic_params)


def test_training_is_finite_and_deterministic(trained):
    name, agent, states, metrics = trained
    assert np.all(metrics["finite"] == 1.0)
    for key, value in metrics.items():
        assert np.all(np.isfinite(value)), key
    assert np.all(np.asarray(states.step) == 10)
    again = init_states(agent, [0, 1])
    chunk = jax.jit(jax.vmap(make_train_chunk(agent, 32, 5), in_axes=(0, None)))
    again, _ = chunk(again, random_data())
    again, _ = chunk(again, random_data())
    for x, y in zip(jax.tree.leaves(states), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(x, y)
    # Different seeds train differently.
    first = jax.tree.leaves(states.policy_params)[0]
    assert not np.array_equal(first[0], first[1])


def test_actions_shapes_range_and_decide(trained):
    name, agent, states, _ = trained
    state = jax.tree.map(lambda x: x[0], states)
    obs = jax.random.normal(jax.random.key(1), (7, OBS))
    candidates = (1, 4) if agent.has_critic else (1,)
    for n in candidates:
        for actor in ("online", "ema"):
            a = jax.jit(agent.sample_actions, static_argnums=3, static_argnames="actor")(
                state, obs, jax.random.key(2), n, actor=actor
            )
            assert a.shape == (7, ACT) and float(jnp.abs(a).max()) <= 1.0, (name, n, actor)
    noise = jax.random.normal(jax.random.key(3), (7, agent.noise_dim))
    a = agent.decide(state.policy_params, state.target_critic_params, obs, noise)
    assert a.shape == (7, ACT)
    policy = Policy(agent, state, num_candidates=candidates[-1], seed=0)
    assert policy(np.zeros(OBS, np.float32)).shape == (ACT,)
    assert policy(np.zeros((3, OBS), np.float32)).shape == (3, ACT)


def test_checkpoint_round_trip(trained, tmp_path):
    _, _, states, _ = trained
    ckpt = Checkpointer(tmp_path / "checkpoints")
    ckpt.save(10, states, {"evaluations": []})
    restored, meta = ckpt.restore(10, like=states)
    assert meta == {"evaluations": []}
    for x, y in zip(jax.tree.leaves(states), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(x, y)
    ckpt.close()


@pytest.mark.parametrize("name", NAMES)
def test_swept_values_are_checked(name):
    from ofql_jax.config_checks import _check_sweep

    spec = AGENTS[name]
    if not spec.sweepable:
        pytest.skip(f"{name} has no sweepable hyperparameter")
    import ml_collections

    field = spec.sweepable[0]
    config = ml_collections.ConfigDict({"agent": spec.default_config(), "sweep": {field: "-5"}})
    with pytest.raises(OFQLError, match=f"sweep.{field}"):
        _check_sweep(config, spec)
    config.sweep[field] = "0.001,0.01"
    _check_sweep(config, spec)


@pytest.mark.parametrize("name", NAMES)
def test_every_agent_trains_evaluates_and_resumes_through_the_experiment(
    name, hopper_dataset, tmp_path
):
    import sys
    from pathlib import Path

    from conftest import DATASET

    from ofql_jax.train import run

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    import d4rl

    def config(num_steps: int):
        c = d4rl.get_config(f"hopper-medium,algorithm={name}")
        assert c.algorithm == name
        c.agent = tiny_config(name)
        c.dataset_id, c.num_seeds, c.num_steps, c.batch_size = DATASET, 2, num_steps, 32
        c.steps_per_call, c.eval_every, c.checkpoint_every = 5, 0, 5
        c.eval_episodes, c.eval_candidates, c.progress = 1, 3, False
        c.compilation_cache_dir = str(tmp_path / "xla")  # the resumed run compiles from disk
        return c

    run(config(5), tmp_path / "w")  # stopped early, then resumed to the end
    results = run(config(10), tmp_path / "w")
    assert results["algorithm"] == name and results["steps"] == 10
    assert [e["step"] for e in results["evaluations"]] == [5, 10]  # each run ends evaluated
    scores = results["final_scores"]
    assert len(scores) == 2 and all(np.isfinite(s) for s in scores)
    assert results["eval_candidates"] == (3 if AGENTS[name].has_critic else 1)
    assert ("mean_one_step" in results) == AGENTS[name].has_critic

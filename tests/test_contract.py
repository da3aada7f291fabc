"""Every registered agent keeps the contract of ofql_jax/agents/base.py.

Parametrised over ``ofql_jax.agents.AGENTS``, so a new agent file is checked without
touching this test. Each agent trains two seeds through the Experiment (the CLI's loop) on a
small Hopper dataset twice: once stopped after 5 steps and resumed to 10, once straight to
10. Checked: the resumed run equals the uninterrupted one bit for bit (determinism and exact
resume), results.json (finite scores, N candidates only with a critic, the agent's extra
evaluations), different seeds train differently, action shapes and range from
``sample_actions`` (online and EMA actors, N = 1 and N > 1), ``decide`` from caller noise,
the fast ``Policy``, and config checks applied to swept values.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from conftest import DATASET

from ofql_jax.agents import AGENTS
from ofql_jax.agents.base import Agent, AgentState
from ofql_jax.core.checkpointing import Checkpointer
from ofql_jax.core.errors import OFQLError
from ofql_jax.evaluation.policy import Policy
from ofql_jax.training.config_checks import _check_sweep
from ofql_jax.training.experiment import run
from ofql_jax.training.trainer import init_states

OBS, ACT = 11, 3  # Hopper
NAMES = sorted(AGENTS)
REPO = Path(__file__).resolve().parents[1]


def tiny_config(name: str):
    """The agent's defaults with small networks (the fields agents share by convention)."""
    c = AGENTS[name].default_config()
    for field in ("hidden_dims", "critic_hidden_dims"):
        if field in c:
            c[field] = (16, 16)
    if "time_dim" in c:
        c.time_dim = 8
    return c


def experiment_config(name: str, num_steps: int):
    sys.path.insert(0, str(REPO / "experiments"))
    import d4rl

    c = d4rl.get_config(f"hopper-medium,algorithm={name}")
    assert c.algorithm == name
    c.agent = tiny_config(name)
    c.dataset_id, c.num_seeds, c.num_steps, c.batch_size = DATASET, 2, num_steps, 32
    c.steps_per_call, c.eval_every, c.checkpoint_every = 5, 0, 5
    c.eval_episodes, c.eval_candidates, c.progress = 1, 3, False
    c.compilation_cache_dir = ""  # the session cache of conftest.py
    return c


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """The 400-step random Hopper dataset of conftest.py, built once for this module."""
    from minari_factory import make_hopper_dataset

    path = tmp_path_factory.mktemp("minari_datasets")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(path))
        make_hopper_dataset(
            DATASET, num_steps=400, max_episode_steps=40, ref_scores=(-20.272305, 3234.3)
        )
        yield path


RESUMED: dict[str, Path] = {}  # each agent's resumed run, for load_run


@pytest.fixture(scope="module", params=NAMES)
def runs(request, dataset_dir, tmp_path_factory):
    """(name, agent, results of the resumed run, its final states, the straight run's)."""
    name = request.param
    root = tmp_path_factory.mktemp(name)
    run(experiment_config(name, 5), root / "resumed")  # stopped early ...
    results = run(experiment_config(name, 10), root / "resumed")  # ... and resumed
    run(experiment_config(name, 10), root / "straight")
    agent = AGENTS[name].make(tiny_config(name), OBS, ACT, 10)
    like = init_states(agent, [0, 1])

    def final(workdir: Path) -> AgentState:
        ckpt = Checkpointer(workdir / "checkpoints")
        assert ckpt.latest_step() == 10
        state, _ = ckpt.restore(10, like=like)
        ckpt.close()
        return state

    RESUMED[name] = root / "resumed"
    return name, agent, results, final(root / "resumed"), final(root / "straight")


def test_load_run_reproduces_the_final_evaluation(runs):
    """``load_run`` rebuilds any agent from its workdir alone and repeats its evaluation
    exactly, every variant (N candidates, N = 1, the agent's options), for one seed."""
    from ofql_jax import load_run

    name, _, results, _, _ = runs
    final = results["evaluations"][-1]
    out = load_run(RESUMED[name]).evaluate(seeds=[1])
    names = {"returns": f"N={final['candidates']}", "returns_one_step": "N=1"}
    want = {names.get(k, k.removeprefix("returns_")): [v[1]] for k, v in final.items()
            if k.startswith("returns")}  # fmt: skip
    assert {k: v["returns"] for k, v in out["variants"].items()} == want


def test_spec_is_complete(runs):
    name, agent, _, states, _ = runs
    spec = AGENTS[name]
    assert isinstance(agent, Agent) and isinstance(states, AgentState)
    assert agent.name == name and agent.has_critic == spec.has_critic
    assert spec.summary and spec.source
    for field in spec.sweepable:
        assert field in states.hparams and field in spec.default_config()
    assert not spec.has_critic or jax.tree.leaves(states.critic_params)


def test_resumed_run_equals_uninterrupted_run_bit_for_bit(runs):
    _, _, _, resumed, straight = runs
    assert np.all(np.asarray(resumed.step) == 10)
    for x, y in zip(jax.tree.leaves(resumed), jax.tree.leaves(straight), strict=True):
        np.testing.assert_array_equal(x, y)
    first = jax.tree.leaves(resumed.policy_params)[0]
    assert not np.array_equal(first[0], first[1])  # different seeds train differently


def test_results_are_finite_and_labelled(runs):
    name, agent, results, _, _ = runs
    assert results["algorithm"] == name and results["steps"] == 10
    assert [e["step"] for e in results["evaluations"]] == [5, 10]  # each run ends evaluated
    assert not results["diverged_seeds"]
    scores = results["final_scores"]
    assert len(scores) == 2 and all(np.isfinite(s) for s in scores)
    assert results["eval_candidates"] == (3 if agent.has_critic else 1)
    assert ("mean_one_step" in results) == agent.has_critic
    for option in agent.eval_options:  # e.g. DQL's DDIM(1) of the same trained agent
        assert all(np.isfinite(s) for s in results[f"final_scores_{option}"]), option
    for key, values in results["diagnostics"].items():
        assert all(v is not None for v in values), key
    if agent.has_critic:  # where the actor's two terms move the acting action
        for key in ("move_q", "move_bc", "ratio", "ratio_adam", "cos"):
            assert f"diag/action_{key}" in results["diagnostics"], (name, key)


def test_actions_shapes_range_and_decide(runs):
    name, agent, _, states, _ = runs
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


@pytest.mark.parametrize("name", NAMES)
def test_swept_values_are_checked(name):
    spec = AGENTS[name]
    field = spec.sweepable[0]
    config = ml_collections.ConfigDict({"agent": spec.default_config(), "sweep": {field: "-5"}})
    with pytest.raises(OFQLError, match=f"sweep.{field}"):
        _check_sweep(config, spec)
    config.sweep[field] = "0.001,0.01"
    _check_sweep(config, spec)


def test_a_swept_clip_needs_a_clipping_agent():
    """grad_norm is sweepable; the clip exists iff agent.grad_norm > 0, so swept values > 0
    on an agent without a clip (BC's default) are refused, and <= 0 in a clipping one is off."""
    spec = AGENTS["bc"]
    config = ml_collections.ConfigDict(
        {"agent": spec.default_config(), "sweep": {"actor_lr": "", "grad_norm": "1,5"}}
    )
    assert config.agent.grad_norm == 0.0 and "grad_norm" in spec.sweepable
    with pytest.raises(OFQLError, match="sweep.grad_norm .* builds no clip"):
        _check_sweep(config, spec)
    config.agent.grad_norm = 5.0
    _check_sweep(config, spec)
    config.sweep.grad_norm = "0,5"
    _check_sweep(config, spec)


def test_a_clip_threshold_given_at_update_time_clips_as_optax():
    """adam_direction's clip takes a member's traced grad_norm and gives optax's bits at that
    value, with optax's state; a value <= 0 is no clip; without a clip the value is ignored."""
    import optax

    from ofql_jax.agents.base import adam_direction

    def same(a, b, rtol=0.0):
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=0.0)

    k = jax.random.split(jax.random.key(0), 2)
    grads = {"w": jax.random.normal(k[0], (5, 4)), "b": 3.0 * jax.random.normal(k[1], (4,))}
    params = jax.tree.map(jnp.zeros_like, grads)
    for gn in (0.5, 9.0):
        ref = optax.chain(optax.clip_by_global_norm(gn), optax.scale_by_adam())
        tx = adam_direction(gn)
        assert jax.tree.structure(tx.init(params)) == jax.tree.structure(ref.init(params))
        want = jax.jit(ref.update)(grads, ref.init(params))[0]
        got = jax.jit(partial(tx.update, grads))(tx.init(params), grad_norm=jnp.float32(gn))[0]
        same(got, want)
    plain = optax.scale_by_adam()
    unclipped = plain.update(grads, plain.init(params))[0]
    tx = adam_direction(9.0)
    members = jax.jit(jax.vmap(lambda x: tx.update(grads, tx.init(params), grad_norm=x)[0]))(
        jnp.asarray([0.5, 0.0, -1.0], jnp.float32)
    )
    for i in (1, 2):  # <= 0: the clip is off (up to the rounding of another compilation)
        same({name: v[i] for name, v in members.items()}, unclipped, rtol=1e-6)
    assert not np.array_equal(members["w"][0], unclipped["w"])  # 0.5 clips these gradients
    same(adam_direction(0.0).update(grads, plain.init(params), grad_norm=0.5)[0], unclipped)

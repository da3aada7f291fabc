"""Seeds over devices, seed groups, sweeps in one program, the compilation cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import optax
import pytest
from test_train import cli_args, max_abs_diff, random_dataset, small_config, tiny_agent_config

from ofql_jax.agents.base import learning_rate as _learning_rate
from ofql_jax.agents.ofql import make_ofql
from ofql_jax.evaluation.policy import Policy
from ofql_jax.training.experiment import Experiment
from ofql_jax.training.parallel import resolve_group_size
from ofql_jax.training.trainer import MultiSeedTrainer, init_states

REPO = Path(__file__).resolve().parents[1]


def params(states):
    return (states.policy_params, states.critic_params, states.target_policy_params,
            states.target_critic_params)  # fmt: skip


FOUR_DEVICES = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    sys.path.insert(0, "tests")
    from test_train import random_dataset, tiny_agent_config, max_abs_diff
    from ofql_jax.agents.ofql import make_ofql
    from ofql_jax.training.parallel import make_mesh, replicated
    from ofql_jax.training.trainer import MultiSeedTrainer, init_states

    assert len(jax.devices()) == 4, jax.devices()
    data, agent = random_dataset(), make_ofql(tiny_agent_config(), 5, 2)
    seeds = list(range(8))
    mesh = make_mesh(4)
    sharded = init_states(agent, seeds, mesh)
    assert sharded.step.sharding.spec == jax.sharding.PartitionSpec("seed")
    single = init_states(agent, seeds)
    on_mesh = MultiSeedTrainer(agent, 32, mesh)
    on_one = MultiSeedTrainer(agent, 32, None)
    placed = jax.device_put(data, replicated(mesh))
    for _ in range(3):
        sharded, m4 = on_mesh(sharded, placed, 10)
        single, m1 = on_one(single, data, 10)
    a, b = jax.device_get(sharded), jax.device_get(single)
    print(json.dumps({
        "rng_equal": bool(np.array_equal(a.rng, b.rng)),
        "steps": a.step.tolist(),
        "max_diff": max_abs_diff(
            (a.policy_params, a.critic_params), (b.policy_params, b.critic_params)
        ),
        "loss_diff": float(np.max(np.abs(m4["critic/loss"] - m1["critic/loss"]))),
        "shards": len(sharded.step.addressable_shards),
    }))
    """
)


def test_seed_axis_split_over_four_cpu_devices_matches_one_device():
    env = {
        **os.environ,
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4",
    }
    done = subprocess.run([sys.executable, "-c", FOUR_DEVICES], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["shards"] == 4 and out["steps"] == [30] * 8
    assert out["rng_equal"]  # identical random streams, batches and schedules
    # XLA:CPU compiles a 4-partition program differently from a 1-device one, so sums can
    # round differently: agreement to float32 rounding (measured 3e-8 .. 6e-8).
    assert out["max_diff"] < 1e-6 and out["loss_diff"] < 1e-5


def test_cli_on_four_devices_with_sharded_checkpoints(hopper_dataset, tmp_path):
    env = {
        **os.environ,
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4",
    }
    args = ["--config.num_seeds=4", "--config.num_steps=40", "--config.steps_per_call=10",
            "--config.checkpoint_every=20", "--config.eval_episodes=1",
            "--config.eval_candidates=4", "--config.batch_size=32"]  # fmt: skip
    from test_train import cli_args

    first_half = cli_args(tmp_path / "w", *args[:1], "--config.num_steps=20", *args[2:])
    half = subprocess.run(
        first_half, cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert half.returncode == 0, half.stderr[-3000:]
    done = subprocess.run(cli_args(tmp_path / "w", *args), cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Resuming from" in done.stderr + done.stdout
    results = json.loads((tmp_path / "w" / "results.json").read_text())
    assert results["device_count"] == 4 and results["steps"] == 40
    assert len(results["final_scores"]) == 4


@pytest.mark.parametrize(
    "requested, local, expected", [(0, 8, 2), (2, 5, 1), (3, 9, 3), (16, 4, 4), (4, 6, 3)]
)
def test_group_size_is_the_largest_divisor_not_above_the_request(requested, local, expected):
    assert jax.default_backend() == "cpu"
    assert resolve_group_size(requested, local) == expected


def test_seed_groups_change_nothing_but_rounding():
    data, agent = random_dataset(), make_ofql(tiny_agent_config(), 5, 2)
    results = []
    for group in (1, 4):
        states = init_states(agent, [0, 1, 2, 3])
        states, _ = MultiSeedTrainer(agent, 32, seeds_per_group=group)(states, data, 10)
        results.append(states)
    for other in results[1:]:
        np.testing.assert_array_equal(other.rng, results[0].rng)
        assert max_abs_diff(params(other), params(results[0])) < 1e-6


def test_learning_rate_and_adam_match_optax():
    grads = {"w": jax.random.normal(jax.random.key(0), (5, 3))}
    reference = optax.adam(3e-4)
    ref_state = reference.init(grads)
    direction = optax.scale_by_adam()
    dir_state = direction.init(grads)
    for _ in range(3):
        ref_updates, ref_state = reference.update(grads, ref_state)
        updates, dir_state = direction.update(grads, dir_state)
        lr = _learning_rate(np.float32(3e-4), 0, False, 10)
        np.testing.assert_array_equal(-lr * updates["w"], ref_updates["w"])
    schedule = optax.cosine_decay_schedule(3e-4, 100)
    for step in (0, 1, 50, 99, 100, 150):
        np.testing.assert_allclose(
            _learning_rate(np.float32(3e-4), step, True, 100), schedule(step), rtol=1e-6
        )


def test_a_sweep_trains_settings_x_seeds_in_one_program(hopper_dataset, tmp_path):
    config = small_config(num_seeds=2, num_steps=20, eval_episodes=1)
    config.sweep.eta = "0,0.5"
    config.sweep.actor_lr = "1e-4,1e-3"
    exp = Experiment(config, tmp_path / "sweep")
    assert len(exp.setup.members) == 8
    # Settings vary the alphabetically last field fastest: actor_lr, then eta.
    assert np.allclose(exp.states.hparams["actor_lr"], [1e-4] * 4 + [1e-3] * 4)
    assert np.allclose(exp.states.hparams["eta"], [0, 0, 0.5, 0.5] * 2)
    results = exp.run()
    assert [s["name"] for s in results["settings"]] == [
        "actor_lr=0.0001,eta=0",
        "actor_lr=0.0001,eta=0.5",
        "actor_lr=0.001,eta=0",
        "actor_lr=0.001,eta=0.5",
    ]
    assert all(len(s["final_scores"]) == 2 and s["mean"] is not None for s in results["settings"])
    assert len(results["final_scores"]) == 8 and results["mean"] is None
    tb = tmp_path / "sweep" / "tb"
    assert (tb / "actor_lr=0.001,eta=0.5" / "seed_1").is_dir()
    assert (tb / "actor_lr=0.0001,eta=0" / "mean").is_dir()

    # Member (eta=0.5, actor_lr=1e-3, seed 1) trains like a plain run with those values.
    plain = small_config(num_seeds=2, num_steps=20, eval_episodes=0)
    plain.agent.eta, plain.agent.actor_lr = 0.5, 1e-3
    alone = Experiment(plain, tmp_path / "alone")
    alone.run()
    swept = jax.device_get(jax.tree.map(lambda x: x[7], exp.states))
    single = jax.device_get(jax.tree.map(lambda x: x[1], alone.states))
    np.testing.assert_array_equal(swept.rng, single.rng)
    assert max_abs_diff(params(swept), params(single)) < 1e-6


def test_compilation_cache_serves_the_second_start(hopper_dataset, tmp_path):
    """The second run of a config loads every program the first compiled from the cache
    (counted by JAX's cache-hit events, not timed: a shared machine makes times noisy)."""
    cache = tmp_path / "xla-cache"
    args = ["--config.num_seeds=1", "--config.num_steps=10", "--config.steps_per_call=10",
            "--config.eval_episodes=1", "--config.batch_size=32",
            f"--config.compilation_cache_dir={cache}"]  # fmt: skip
    results = []
    for name in ("first", "second"):
        done = subprocess.run(cli_args(tmp_path / name, *args), cwd=REPO, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        results.append(json.loads((tmp_path / name / "results.json").read_text()))
        if name == "first":
            # Programs that took over JAX's 1 s threshold to compile: the training chunk at least.
            entries = [p.name for p in cache.iterdir() if p.name.endswith("-cache")]
            assert any(e.startswith("jit_chunk") for e in entries), entries
    assert results[0]["compilation_cache_hits"] == 0
    assert results[1]["compilation_cache_hits"] == len(entries), entries


def test_policy_serves_the_agents_decision_from_host_noise():
    agent = make_ofql(tiny_agent_config(), 5, 2)
    state = agent.init(jax.random.key(0))
    obs = np.random.default_rng(1).normal(size=5).astype(np.float32)
    one = Policy(agent, state, num_candidates=1, seed=3)
    noise = np.random.default_rng(3).standard_normal(2, dtype=np.float32)
    np.testing.assert_allclose(
        one(obs), agent.decide(state.policy_params, None, obs, noise), atol=1e-6
    )
    many = Policy(agent, state, num_candidates=8, seed=3)
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((8, 2), dtype=np.float32)
    gumbel = rng.gumbel(size=8).astype(np.float32)
    expected = agent.decide(state.policy_params, state.target_critic_params, obs, noise, gumbel)
    np.testing.assert_allclose(many(obs), expected, atol=1e-6)
    assert many(np.zeros((3, 5), np.float32)).shape == (3, 2)  # a batch compiles its own shape


def test_the_final_console_line_gives_one_score_per_sweep_setting():
    from ofql_jax.main import summary_line

    results = {
        "task": "hopper-medium", "dataset_id": "d", "num_seeds": 3, "mean": None, "std": None,
        "updates_per_second": 8.0,
        "settings": [
            {"name": "eta=0", "mean": 28.94, "std": 1.5},
            {"name": "eta=0.3", "mean": None, "std": None},
        ],
    }  # fmt: skip
    line = summary_line(results, "w")
    assert "final score eta=0: 28.9 +- 1.5; eta=0.3: not evaluated over 3 seeds" in line

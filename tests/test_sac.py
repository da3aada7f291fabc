"""SAC, the behaviour agent: its maths against independent computations, and its runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from ofql_jax.behavior.replay import ReplayBuffer
from ofql_jax.behavior.sac import default_config, make_sac, tanh_gaussian_sample
from ofql_jax.behavior.train_sac import load_actor, main
from ofql_jax.core.types import Transitions

REPO = Path(__file__).resolve().parents[1]


def test_tanh_gaussian_log_density_matches_change_of_variables():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(64, 3)).astype(np.float32) * 2
    log_std = rng.uniform(-2, 1, size=(64, 3)).astype(np.float32)
    a, logp = tanh_gaussian_sample(jnp.asarray(mean), jnp.asarray(log_std), jax.random.key(1))
    a64 = np.asarray(a, np.float64)
    keep = np.all(np.abs(a64) < 0.999, axis=1)  # arctanh is ill-conditioned at the edges
    pre = np.arctanh(a64)
    expected = stats.norm.logpdf(pre, mean, np.exp(log_std)) - np.log1p(-(a64**2))
    np.testing.assert_allclose(np.asarray(logp)[keep], expected.sum(1)[keep], rtol=1e-3, atol=2e-3)
    # Far in the tails the density stays finite (the stable log|det| form).
    a, logp = tanh_gaussian_sample(jnp.full((1, 2), 30.0), jnp.zeros((1, 2)), jax.random.key(2))
    assert np.all(np.isfinite(np.asarray(logp))) and np.allclose(np.asarray(a), 1.0)


def test_sac_learns_the_best_action_of_a_one_step_bandit():
    """reward = -10 (a - 0.5)^2 and every step terminal: Q = r, so the mean action -> 0.5."""
    config = default_config()
    config.hidden_dims = (32, 32)
    config.init_alpha = 0.05
    sac = make_sac(obs_dim=1, act_dim=1, config=config)
    state = sac.init(jax.random.key(0))
    rng = np.random.default_rng(0)

    def chunk(state, actions):
        def body(state, a):
            batch = Transitions(
                observations=jnp.zeros((256, 1)),
                actions=a,
                rewards=-10.0 * (a[:, 0] - 0.5) ** 2,
                next_observations=jnp.zeros((256, 1)),
                dones=jnp.ones(256),
            )
            return sac.update(state, batch)

        return jax.lax.scan(body, state, actions)

    actions = jnp.asarray(rng.uniform(-1, 1, (1500, 256, 1)), jnp.float32)
    state, metrics = jax.jit(chunk)(state, actions)
    mean_action = float(
        sac.act(state.actor_params, jnp.zeros((1, 1)), jax.random.key(0), False)[0, 0]
    )
    assert abs(mean_action - 0.5) < 0.1, mean_action
    # The Q heads fit E[r] of the uniform batch actions: -10 E[(a - 0.5)^2] = -10 (1/3 + 1/4).
    assert abs(float(metrics["q_mean"][-100:].mean()) - (-10 * (1 / 3 + 0.25))) < 0.5
    assert float(metrics["critic_loss"][-100:].mean()) < 0.1 * float(
        metrics["critic_loss"][:10].mean()
    )


def test_replay_buffer_round_trips_and_samples_only_filled_rows(tmp_path):
    buf = ReplayBuffer(capacity=10, obs_dim=2, act_dim=1)
    for i in range(4):
        buf.add(np.full(2, i), np.full(1, -i), i, np.full(2, i + 1), i == 3, False)
    batch = buf.sample(np.random.default_rng(0), 100)
    assert set(np.asarray(batch.rewards).tolist()) <= {0.0, 1.0, 2.0, 3.0}
    np.testing.assert_array_equal(batch.next_observations[:, 0], batch.observations[:, 0] + 1)
    np.testing.assert_array_equal(batch.dones, batch.rewards == 3)
    buf.save(tmp_path / "b.npz")
    other = ReplayBuffer(capacity=10, obs_dim=2, act_dim=1)
    other.load(tmp_path / "b.npz")
    assert other.size == 4
    for k, v in buf.data.items():
        np.testing.assert_array_equal(other.data[k][:4], v[:4])


def sac_cli(workdir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "ofql_jax.behavior.train_sac", "--env=Hopper-v5",
        f"--workdir={workdir}", "--num_steps=900", "--start_steps=200", "--eval_every=300",
        "--eval_episodes=2", "--checkpoint_every=250", "--hidden_dims=32,32", "--no_progress",
        *extra,
    ]  # fmt: skip


def test_sac_run_stopped_by_sigterm_resumes_to_the_same_policy(tmp_path):
    full = subprocess.run(sac_cli(tmp_path / "full"), capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr[-2000:]

    workdir = tmp_path / "stopped"
    proc = subprocess.Popen(sac_cli(workdir), stderr=subprocess.PIPE, text=True)
    log = workdir / "log.jsonl"
    deadline = time.time() + 120
    while not (log.exists() and log.read_text().strip()) and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err[-2000:]
    assert "Stopped by SIGTERM" in err and "re-run the same command to resume" in err
    stopped_at = json.loads(log.read_text().splitlines()[-1])["step"]
    assert stopped_at < 900

    resumed = subprocess.run(sac_cli(workdir), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed" in resumed.stderr
    log_full = [json.loads(x) for x in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    log_resumed = [json.loads(x) for x in log.read_text().splitlines()]
    assert [r["step"] for r in log_resumed] == [300, 600, 900]
    for a, b in zip(log_full, log_resumed, strict=True):
        assert a["eval_return_mean"] == b["eval_return_mean"]
    params_a, _ = load_actor(tmp_path / "full" / "snapshots" / "900.npz")
    params_b, _ = load_actor(workdir / "snapshots" / "900.npz")
    for x, y in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_sac_refuses_a_workdir_with_other_settings(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "config.json").write_text(json.dumps({"env": "Walker2d-v5", "seed": 3}))
    done = subprocess.run(sac_cli(tmp_path / "w"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "holds a SAC run with different settings" in done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads((tmp_path / "w" / "config.json").read_text())["env"] == "Walker2d-v5"


def test_sac_cli_refuses_hidden_dims_that_are_not_integers(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([f"--workdir={tmp_path / 'w'}", "--hidden_dims=256,x"])
    assert exit_info.value.code == 2
    assert "'256,x' is not a comma-separated list of integers" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()

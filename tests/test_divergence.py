"""Value divergence: the bounds against hand computations, the mechanism on a tiny bandit, and
the monitor end to end (warning, results.json, halt_on_divergence)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ofql_jax.agents.ofql import default_config, make_ofql
from ofql_jax.data.synthetic import linear_bandit
from ofql_jax.maths.diagnostics import ValueBounds, above_data_best, outside_bounds, value_bounds
from ofql_jax.training.trainer import diagnosed_chunks

REPO = Path(__file__).resolve().parents[1]


def test_value_bounds_against_direct_sums():
    rng = np.random.default_rng(0)
    lengths = [3, 5, 1, 4]
    rewards = rng.normal(size=sum(lengths))
    gamma = 0.9
    bounds = value_bounds(rewards, np.zeros(len(rewards)), lengths, gamma)
    best, start = -np.inf, 0
    for n in lengths:  # every return-to-go as an explicit sum of powers
        for i in range(start, start + n):
            best = max(best, sum(gamma ** (j - i) * rewards[j] for j in range(i, start + n)))
        start += n
    assert bounds.best_return == pytest.approx(best, rel=1e-12)
    assert bounds.upper == pytest.approx(rewards.max() / (1 - gamma))
    assert bounds.lower == pytest.approx(rewards.min() / (1 - gamma))
    # All-negative rewards: an episode may end after one step, so the top is max r itself.
    negative = value_bounds(-np.abs(rewards) - 1, np.ones(len(rewards)), None, gamma)
    assert negative.upper == pytest.approx(-np.abs(rewards).min() - 1)
    # Without episode lengths the data is cut at terminations.
    cut = value_bounds(np.array([1.0, 1.0, 1.0]), np.array([0.0, 1.0, 0.0]), None, 0.5)
    assert cut.best_return == pytest.approx(1.5)


def bandit_config(**overrides):
    c = default_config()
    c.hidden_dims, c.critic_hidden_dims, c.time_dim = (32, 32), (32, 32), 8
    c.discount, c.actor_lr, c.critic_lr = 0.0, 1e-3, 1e-3
    for key, value in overrides.items():
        c[key] = value
    return c


def train_bandit(config, chunks: int = 3, chunk_steps: int = 200):
    """Train two seeds on the bandit; return per chunk the monitor's flags and diagnostics."""
    data = jax.tree.map(jnp.asarray, linear_bandit())
    bounds = value_bounds(np.asarray(data.rewards), np.asarray(data.dones), None, config.discount)
    agent = make_ofql(config, 4, 1)
    history = [
        (outside_bounds(diag["diag/q_policy_mean"], bounds), diag)
        for diag in diagnosed_chunks(agent, data, [0, 1], 64, chunk_steps, chunks, 512)
    ]
    return bounds, history


def test_a_value_above_the_datas_best_return_is_noted_once_per_member(capsys):
    """Between the data's best return-to-go and the upper bound a member is noted (once), not
    flagged; past the bound it is flagged as diverged and not noted."""
    from types import SimpleNamespace

    import ml_collections

    from ofql_jax.training.experiment import Experiment, Progress

    bounds = ValueBounds(10.0, 0.0, 8.0, 0.1, 0.0, 0.99)
    q = np.array([7.9, 8.5, 12.0, np.nan])
    assert above_data_best(q, bounds).tolist() == [False, True, False, False]
    exp = Experiment.__new__(Experiment)
    exp.config = ml_collections.ConfigDict({"halt_on_divergence": False})
    members = [SimpleNamespace(label=str(i)) for i in range(4)]
    exp.setup = SimpleNamespace(run_data=SimpleNamespace(bounds=bounds), is_main=True,
                                members=members)  # fmt: skip
    exp.progress, exp.noted_above_data = Progress(), set()
    exp.check_values(q, 1000)
    out = capsys.readouterr().out
    assert "Note: Seed 1's critics value its own actions at Q = 8.5 at step 1000" in out
    assert "best discounted return from any state of the data (8)" in out
    assert "Seed 0's" not in out and "Seed 3" not in out
    assert "Warning: Seed 2 diverged by step 1000" in out and "Seed 2's critics" not in out
    assert exp.progress.value_diverged == {"2": 1000}
    exp.check_values(np.array([7.0, 9.0, 13.0, 9.5]), 2000)
    out = capsys.readouterr().out
    assert "Seed 1" not in out and "Seed 2" not in out  # noted / flagged already
    assert "Note: Seed 3's critics value its own actions at Q = 9.5 at step 2000" in out


def test_a_large_eta_leaves_the_data_and_the_monitor_fires():
    bounds, history = train_bandit(bandit_config(eta=30.0))
    assert bounds.upper == pytest.approx(1.3, abs=1e-6)
    flags, diag = history[-1]
    assert flags.all(), diag["diag/q_policy_mean"]
    # The mechanism: one-step actions pinned at the clip boundary, far from the data (|a| <= 0.3).
    assert diag["diag/saturation"].min() > 0.8  # the data has none
    assert diag["diag/one_step_mse_to_data"].min() > 0.5


def test_a_tiny_eta_stays_in_the_data_and_the_default_follows_a_rising_value():
    # Without a real push out of the data the monitor stays silent (eta 0.001) ...
    bounds, history = train_bandit(bandit_config(eta=0.001))
    for flags, diag in history:
        assert not flags.any(), diag["diag/q_policy_mean"]
    diag = history[-1][1]
    assert diag["diag/action_abs_mean"].max() < 0.2  # the data's mean |a| is 0.08
    assert diag["diag/saturation"].max() < 0.05
    # ... while the default (the paper's sampler, eta 0.3) trusts a critic that extrapolates
    # this reward's rise (1 + a) past the data, as DQL(5) at its eta does, and the monitor
    # reports it (docs/algorithm.md, section 7; where the best actions are in the data the
    # default stays there: tests/test_q_learning.py).
    _, history = train_bandit(bandit_config())
    flags, diag = history[-1]
    assert flags.all(), diag["diag/q_policy_mean"]


def run_cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ofql_jax.main", *args],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


def test_monitor_end_to_end(minari_dir: Path, tmp_path: Path):
    from minari_factory import make_bandit_dataset

    make_bandit_dataset("test/bandit/linear-v0")
    import os

    env = {**os.environ, "MINARI_DATASETS_PATH": str(minari_dir)}
    common = [
        "--config=experiments/d4rl.py", "--config.dataset_id=test/bandit/linear-v0",
        "--config.agent.hidden_dims=(32,32)", "--config.agent.critic_hidden_dims=(32,32)",
        "--config.agent.time_dim=8", "--config.agent.discount=0.0", "--config.agent.eta=30.0",
        "--config.agent.actor_lr=1e-3", "--config.agent.critic_lr=1e-3",
        "--config.batch_size=64", "--config.num_seeds=2", "--config.num_steps=400",
        "--config.steps_per_call=200", "--config.checkpoint_every=200",
        "--config.eval_episodes=0", "--config.progress=False", "--config.compilation_cache_dir=",
    ]  # fmt: skip
    out = run_cli([*common, f"--workdir={tmp_path / 'flagged'}"], env)
    assert out.returncode == 0, out.stderr
    assert "Warning: Seed 0 diverged by step" in out.stdout + out.stderr
    results = json.loads((tmp_path / "flagged" / "results.json").read_text())
    assert set(results["value_diverged_seeds"]) == {"0", "1"}
    assert results["value_bounds"]["upper"] == pytest.approx(1.3, abs=1e-6)
    assert results["diagnostics"]["diag/q_policy_mean"][0] > 1.3

    halted = tmp_path / "halted"
    out = run_cli([*common, "--config.halt_on_divergence=True", f"--workdir={halted}"], env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]  # (a warning about raw scores comes first)
    assert last.startswith("error: Seed 0 diverged by step 200")
    assert "halt_on_divergence is set" in last and "outside the bounds [0.7, 1.3]" in last

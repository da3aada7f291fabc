"""A new algorithm defined in this file alone runs through the CLI, a suite and the report.

``tiny_ac`` is a minimal actor-critic on DQL's shared step (``ofql_jax.agents.actor_critic``):
a Gaussian policy with a fixed small std, an MSE BC loss, one extra evaluation variant
(``greedy``, the noiseless action) and the standard diagnostics. It is registered with
``ofql_jax.agents.register`` here, and the commands run in subprocesses find it through
``OFQL_JAX_AGENTS=test_new_agent`` (this module), as a user's own module would be found.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections

from ofql_jax.agents import AGENTS, register
from ofql_jax.agents.actor_critic import ActorCritic
from ofql_jax.agents.base import (
    Q_POLICY_MEAN,
    Agent,
    AgentSpec,
    action_diagnostics,
    candidate_decide,
    standard_sample_actions,
)
from ofql_jax.maths.networks import MLP

REPO = Path(__file__).resolve().parents[1]
DATASET = "test/hopper/random-v0"  # conftest's hopper_dataset
SIGMA = 0.1  # the policy's action noise


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.hidden_dims = (8,)  # policy MLP widths
    c.critic_hidden_dims = (8,)  # each critic head's widths
    c.activation = "relu"  # mish | relu | gelu | silu
    c.init_scheme = "pytorch"  # pytorch | lecun
    c.matmul_dtype = "float32"  # float32 | bfloat16
    c.actor_lr = 1e-3  # Adam lr of the policy
    c.critic_lr = 1e-3  # Adam lr of the critics
    c.lr_decay = False  # cosine decay of both lrs
    c.grad_norm = 0.0  # global-norm gradient clip; <= 0 disables
    c.discount = 0.99  # gamma
    c.tau = 0.005  # Polyak rate of the target critics
    c.ema_decay = 0.995  # EMA decay of the target policy
    c.ema_start = 0  # the EMA runs from the first step
    c.ema_every = 1  # EMA period (steps)
    c.eta = 0.5  # weight of the normalised Q term
    c.q_norm_eps = 0.0  # q_loss = -Q / (eps + mean|Q|)
    c.max_q_backup = False  # max over sampled next actions in the TD target
    c.num_backup_samples = 2  # next actions per s' for max_q_backup
    return c


SWEEPABLE = ("eta", "actor_lr", "critic_lr")


def make_tiny_ac(config, obs_dim: int, act_dim: int, num_steps: int = 1_000_000) -> Agent:
    c = config
    policy = MLP(tuple(c.hidden_dims), act_dim, c.activation, c.init_scheme, c.matmul_dtype)

    def act(params, obs, noise, scale=SIGMA):
        return jnp.tanh(policy.apply(params, obs) + scale * noise)

    def actions(params, obs, key):
        return act(params, obs, jax.random.normal(key, obs.shape[:-1] + (act_dim,)))

    def bc_loss(params, state, batch, key):
        del state, key
        return jnp.square(act(params, batch.observations, 0.0) - batch.actions).mean(), {}

    ac = ActorCritic(
        c, obs_dim, act_dim, num_steps, SWEEPABLE,
        lambda key, obs, a: policy.init(key, obs), actions, bc_loss,
    )  # fmt: skip

    def decide_with(scale: float = SIGMA):
        return candidate_decide(lambda p, obs, noise: act(p, obs, noise, scale), ac.critics)

    def diagnose(state, batch, key):
        a = actions(state.policy_params, batch.observations, key)
        q_policy = ac.critics.apply(state.critic_params, batch.observations, a)
        q_data = ac.critics.apply(state.critic_params, batch.observations, batch.actions)
        return action_diagnostics(a, batch.actions, q_policy, q_data)

    return Agent(
        ac.init, ac.update, standard_sample_actions(decide_with, act_dim), decide_with(), c,
        obs_dim, act_dim, diagnose, noise_dim=act_dim, name="tiny_ac",
        eval_options={"greedy": {"scale": 0.0}},
    )  # fmt: skip


SPEC = register(
    AgentSpec(
        name="tiny_ac", label="Tiny AC", make=make_tiny_ac, default_config=default_config,
        sweepable=SWEEPABLE, q_policy_key=Q_POLICY_MEAN,
        summary="a test's deterministic-ish actor-critic on DQL's shared step",
        source="tests/test_new_agent.py",
    )
)  # fmt: skip

RUN = {  # tiny: 20 updates, one evaluation of one episode per seed
    "dataset_id": DATASET, "num_steps": 20, "steps_per_call": 10, "batch_size": 16,
    "eval_every": 20, "checkpoint_every": 20, "eval_episodes": 1, "eval_candidates": 2,
    "progress": False, "compilation_cache_dir": "",
}  # fmt: skip


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "OFQL_JAX_AGENTS": "test_new_agent", "PYTHONPATH": path}


def _run(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_registry_holds_the_new_agent():
    assert AGENTS["tiny_ac"] is SPEC


def test_a_new_agent_runs_through_the_cli_a_suite_and_the_report(hopper_dataset, tmp_path):
    run_dir = tmp_path / "run"
    _run(
        "ofql_jax.main", "--config=experiments/d4rl.py:hopper-medium",
        "--config.algorithm=tiny_ac", "--config.num_seeds=2", f"--workdir={run_dir}",
        *(f"--config.{k}={v}" for k, v in RUN.items()),
    )  # fmt: skip
    results = json.loads((run_dir / "results.json").read_text())
    assert results["algorithm"] == "tiny_ac" and results["steps"] == 20
    final = results["evaluations"][-1]
    assert len(final["scores"]) == 2 and len(final["scores_greedy"]) == 2  # its own variant
    assert Q_POLICY_MEAN in results["diagnostics"] and results["eval_candidates"] == 2

    suite_file = tmp_path / "tiny_suite.py"
    suite_file.write_text(
        "from ofql_jax.suite import cell, new_suite\n\n\n"
        "def get_config():\n"
        "    s = new_suite('new-agent', 'a new agent in a suite')\n"
        f"    s.base_config = {str(REPO / 'experiments' / 'd4rl.py')!r}\n"
        "    s.seeds, s.report = 1, False\n"
        f"    s.defaults.update({RUN!r})\n"
        "    s.cells = (cell('tiny_ac', 'hopper-medium'),)\n"
        "    return s\n"
    )
    suite_dir = tmp_path / "suite"
    _run("ofql_jax.suite", f"--suite={suite_file}", f"--workdir={suite_dir}")
    cell_results = suite_dir / "cells" / "tinyac-hopper-medium" / "results.json"
    assert json.loads(cell_results.read_text())["algorithm"] == "tiny_ac"

    _run("ofql_jax.report", str(suite_dir))
    assert "Tiny AC" in (suite_dir / "report.md").read_text()

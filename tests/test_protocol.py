"""The two protocols: per-task tables against docs/algorithm.md, and what get_config sets."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ofql_jax.agents import dql
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.tasks import PAPER_TASKS, TASKS

REPO = Path(__file__).resolve().parents[1]


def load_d4rl():
    spec = importlib.util.spec_from_file_location("d4rl_config", REPO / "experiments/d4rl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def doc_task_table() -> dict[str, dict[str, str]]:
    text = (REPO / "docs/algorithm.md").read_text()
    block = re.search(r"<!-- task-table -->\n(.*?)<!-- /task-table -->", text, re.S).group(1)
    lines = [line for line in block.strip().splitlines() if line.startswith("|")]
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def test_task_table_matches_docs():
    rows = doc_task_table()
    assert set(rows) == set(TASKS) == set(dql.TASK_TABLE)
    for name, spec in TASKS.items():
        row = rows[name]
        assert (row["in paper"] == "yes") == spec.in_paper, name
        assert row["reward tune"] == spec.reward_tune, name
        assert float(row["w"]) == spec.q_temperature, name
        dql_lr, dql_eta, max_q_backup, grad_norm = dql.TASK_TABLE[name]
        assert float(row["gn"]) == grad_norm, name
        assert (row["max-Q"] == "yes") == max_q_backup, name
        assert float(row["DQL lr"]) == dql_lr, name
        assert float(row["DQL eta"]) == dql_eta, name


def test_the_papers_fifteen_tasks_are_named():
    expected = {
        f"{env}-{level}"
        for env in ("halfcheetah", "hopper", "walker2d")
        for level in ("medium", "medium-replay", "medium-expert")
    } | {
        "antmaze-medium-play", "antmaze-medium-diverse", "antmaze-large-play",
        "antmaze-large-diverse", "kitchen-mixed", "kitchen-partial",
    }  # fmt: skip
    assert set(PAPER_TASKS) == expected


def test_paper_protocol_defaults():
    d4rl = load_d4rl()
    c = d4rl.get_config("hopper-medium")
    assert c.protocol == "paper"
    assert c.num_steps == 2_000_000 and c.agent.actor_lr == 3e-4 and c.agent.critic_lr == 3e-4
    assert c.agent.time_dim == 64
    assert c.num_seeds == 3 and c.eval_episodes == 150 and c.eval_candidates == 50
    assert c.eval_actor == "ema" and c.eval_noise_temperature == 0.5
    assert c.eval_q_temperature == 100.0
    assert c.agent.grad_norm == 9.0 and not c.agent.max_q_backup
    c = d4rl.get_config("antmaze-medium-play")
    assert c.agent.actor_lr == 3e-4 and c.num_steps == 1_000_000
    assert c.eval_q_temperature == 10.0 and c.agent.max_q_backup and c.reward_tune == "antmaze"
    assert d4rl.get_config("kitchen-mixed").num_steps == 1_000_000


def test_dql_protocol_values():
    d4rl = load_d4rl()
    c = d4rl.get_config("antmaze-medium-play,dql")
    assert c.protocol == "dql" and c.agent.actor_lr == 1e-3
    assert c.eval_actor == "online" and c.eval_noise_temperature == 1.0
    assert c.eval_q_temperature == 1.0 and c.eval_episodes == 100 and c.num_seeds == 5
    c = d4rl.get_config("hopper-medium,dql")
    assert c.eval_episodes == 10 and c.num_steps == 2_000_000 and c.agent.actor_lr == 3e-4
    with pytest.raises(OFQLError, match="TASK,PROTOCOL"):
        d4rl.get_config("hopper-medium,cleandiffuser")


def test_cli_refuses_a_protocol_override():
    out = subprocess.run(
        [sys.executable, "-m", "ofql_jax.main", "--config=experiments/d4rl.py",
         "--config.protocol=dql"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    assert "hopper-medium,dql" in out.stderr and "Traceback" not in out.stderr

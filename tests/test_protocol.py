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


def test_config_reference_is_current():
    from ofql_jax.agents import AGENTS
    from ofql_jax.core.cli_help import config_reference

    c = load_d4rl().get_config()
    # The package's own agents: a test module may have registered one of its own (the
    # workers import every test module when they collect).
    own = {n: s for n, s in AGENTS.items() if s.make.__module__.startswith("ofql_jax.agents.")}
    assert (REPO / "docs/config.md").read_text() == config_reference(own, c.task, c.algorithm), (
        "docs/config.md is stale: python -m ofql_jax.main --help-config-md > docs/config.md"
    )


def test_the_config_is_built_from_the_declarations():
    from ofql_jax.agents import AGENTS
    from ofql_jax.core.config_fields import BLOCKS, FIELDS, PROTOCOL_FIELDS
    from ofql_jax.training.config_checks import check_config

    d4rl = load_d4rl()
    for algorithm in AGENTS:
        for protocol in ("paper", "dql"):
            c = d4rl.get_config(f"antmaze-large-play,{protocol},algorithm={algorithm}")
            assert set(c) == set(FIELDS) | set(BLOCKS)
            check_config(c)  # every default passes the declared checks
            assert set(c.sweep) == set(AGENTS[algorithm].sweepable)
    assert PROTOCOL_FIELDS[0] == "agent.actor_lr" and "eval_actor" in PROTOCOL_FIELDS


def test_agent_fields_come_from_a_declaration_or_from_default_config(monkeypatch):
    import types

    import ml_collections

    from ofql_jax.agents import AGENTS
    from ofql_jax.core.config_fields import Field, agent_fields, config_of

    docs = {f.name: f.doc for f in agent_fields(AGENTS["ofql"])}
    assert set(docs) == set(AGENTS["ofql"].default_config())
    assert docs["matmul_dtype"].endswith("f32 accumulation)")  # not the "# Optimisation." below
    assert "pins the map the Q term moves" in docs["endpoint_ratio"]  # a continued comment
    assert docs["time_scale"].startswith("t, r in [0, 1]")  # a comment inside parentheses
    dql = {f.name: f.doc for f in agent_fields(AGENTS["dql"])}
    assert "frozen at its initial weights" in dql["ema_warmup"]  # the comment above it
    flow_bc = {f.name: f.doc for f in agent_fields(AGENTS["flow_bc"])}
    assert flow_bc["flow_ratio"] == docs["flow_ratio"]  # from OFQL's default_config it starts from

    module = types.ModuleType("declared_agent")
    module.FIELDS = (Field("width", 64, "MLP width"), Field("lr", 3e-4, "Adam lr"))
    module.default_config = lambda: config_of(module.FIELDS)
    module.default_config.__module__ = "declared_agent"
    monkeypatch.setitem(__import__("sys").modules, "declared_agent", module)
    spec = types.SimpleNamespace(default_config=module.default_config)
    assert agent_fields(spec) == module.FIELDS
    assert module.default_config() == ml_collections.ConfigDict({"width": 64, "lr": 3e-4})


@pytest.mark.parametrize(
    "flags",
    [
        ["--config.algorithm=fql", "--config.agent.alpha=3"],
        ["--config.agent.alpha=3", "--config.algorithm=fql"],  # in either order
    ],
)
def test_the_algorithm_flag_brings_its_own_agent_fields(flags, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "ofql_jax.main", "--config=experiments/d4rl.py:hopper-medium",
         *flags, "--config.num_steps=0", f"--workdir={tmp_path / 'w'}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # the command line was read (alpha is FQL's field); only the impossible num_steps remains
    assert out.returncode == 2 and "config.num_steps = 0 is invalid" in out.stderr, out.stderr

"""Multi-seed training: vmap vs single seeds, resume vs uninterrupted, the CLI end to end."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DATASET

from ofql_jax.agents.ofql import default_config, make_ofql
from ofql_jax.core.checkpointing import Checkpointer
from ofql_jax.core.types import Transitions
from ofql_jax.results.writers import read_scalars
from ofql_jax.training.experiment import Experiment, run
from ofql_jax.training.trainer import MultiSeedTrainer, init_states

REPO = Path(__file__).resolve().parents[1]

TINY = [
    "--config.agent.hidden_dims=(32,32)",
    "--config.agent.critic_hidden_dims=(32,32)",
    "--config.agent.time_dim=8",
]


def tiny_agent_config():
    c = default_config()
    c.hidden_dims, c.critic_hidden_dims, c.time_dim = (32, 32), (32, 32), 8
    return c


def random_dataset(n=500, obs=5, act=2):
    k = jax.random.split(jax.random.key(0), 5)
    return Transitions(
        jax.random.normal(k[0], (n, obs)),
        jnp.tanh(jax.random.normal(k[1], (n, act))),
        jax.random.normal(k[2], (n,)),
        jax.random.normal(k[3], (n, obs)),
        (jax.random.uniform(k[4], (n,)) < 0.1).astype(jnp.float32),
    )


def leaves_equal(a, b) -> bool:
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def max_abs_diff(a, b) -> float:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(
        float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
        for x, y in pairs
    )


def test_seed_i_of_an_n_seed_run_equals_a_one_seed_run():
    data = random_dataset()
    agent = make_ofql(tiny_agent_config(), 5, 2)
    trainer = MultiSeedTrainer(agent, batch_size=32)
    many = init_states(agent, [3, 4, 5, 6])
    one = init_states(agent, [5])
    for _ in range(3):
        many, metrics_many = trainer(many, data, 10)
        one, metrics_one = trainer(one, data, 10)
    seed_2, alone = jax.tree.map(lambda x: x[2], many), jax.tree.map(lambda x: x[0], one)
    # RNG streams, step counters and batches are identical bit for bit...
    assert int(seed_2.step) == 30
    np.testing.assert_array_equal(seed_2.rng, alone.rng)
    # ...and the numbers agree to float32 rounding: XLA's CPU kernels sum a batch of 4 seeds
    # and of 1 seed in different orders (measured: 3e-8 after 30 updates, 6e-8 after 300).
    params = lambda s: (
        s.policy_params,
        s.critic_params,
        s.target_policy_params,
        s.target_critic_params,
    )  # noqa: E731
    assert max_abs_diff(params(seed_2), params(alone)) < 1e-6
    np.testing.assert_allclose(
        metrics_many["critic/loss"][2], metrics_one["critic/loss"][0], rtol=1e-5
    )
    # Different seeds really are different (init and RNG streams): O(1) apart.
    assert max_abs_diff(params(seed_2), jax.tree.map(lambda x: x[1], params(many))) > 0.1
    assert not np.array_equal(many.rng[1], many.rng[2])


def test_same_seeds_reproduce_bit_for_bit():
    data = random_dataset()
    agent = make_ofql(tiny_agent_config(), 5, 2)
    trainer = MultiSeedTrainer(agent, 32)  # separate processes: tests/test_reliability.py
    a, _ = trainer(init_states(agent, [0, 1]), data, 20)
    b, _ = trainer(init_states(agent, [0, 1]), data, 20)
    assert leaves_equal(a, b)


def small_config(**overrides):
    sys.path.insert(0, str(REPO / "experiments"))
    import d4rl

    c = d4rl.get_config("hopper-medium")
    c.dataset_id = DATASET
    c.agent = tiny_agent_config()
    c.num_seeds, c.num_steps, c.batch_size = 2, 40, 32
    c.steps_per_call, c.eval_every, c.checkpoint_every = 10, 20, 20
    c.eval_episodes, c.eval_candidates, c.progress = 2, 4, False
    c.compilation_cache_dir = ""  # in-process tests leave the user's cache alone
    for k, v in overrides.items():
        c[k] = v
    return c


def final_state(workdir: Path, like):
    ckpt = Checkpointer(workdir / "checkpoints")
    state, meta = ckpt.restore(ckpt.latest_step(), like=like)
    return ckpt.latest_step(), state, meta


def test_checkpoint_keep_period_keeps_its_multiples_beside_the_newest(hopper_dataset, tmp_path):
    from ofql_jax.core.checkpointing import saved_steps

    kept = small_config(num_steps=50, checkpoint_every=10, eval_every=50, checkpoints_to_keep=1)
    run(kept, tmp_path / "plain")
    assert saved_steps(tmp_path / "plain" / "checkpoints") == [50]
    kept.checkpoint_keep_period = 20
    run(kept, tmp_path / "kept")
    assert saved_steps(tmp_path / "kept" / "checkpoints") == [20, 40, 50]


def test_resumed_run_equals_uninterrupted_run(hopper_dataset, tmp_path):
    full = run(small_config(), tmp_path / "full")
    run(small_config(num_steps=20), tmp_path / "resumed")
    resumed = run(small_config(), tmp_path / "resumed")
    agent = make_ofql(tiny_agent_config(), 11, 3)
    like = init_states(agent, [0, 1])
    step_a, state_a, meta_a = final_state(tmp_path / "full", like)
    step_b, state_b, meta_b = final_state(tmp_path / "resumed", like)
    assert step_a == step_b == 40
    assert leaves_equal(state_a, state_b)
    assert full["final_scores"] == resumed["final_scores"]
    assert meta_a["evaluations"] == meta_b["evaluations"]
    assert [e["step"] for e in resumed["evaluations"]] == [20, 40]
    # The recorded speed is the median chunk (a paused chunk counts once).
    perf = read_scalars(tmp_path / "full" / "tb" / "mean")["perf/updates_per_second"]
    assert full["updates_per_second"] == pytest.approx(np.median([v for _, v in perf]), rel=1e-6)
    # Restored states must look like fresh ones to jit (uncommitted), or a resumed run
    # compiles its training chunk again instead of hitting the compilation cache.
    again = Experiment(small_config(num_steps=60), tmp_path / "resumed")
    assert again.progress.step == 40
    assert not any(x.committed for x in jax.tree.leaves(again.states))
    again.close()


def test_resume_refuses_a_different_config(hopper_dataset, tmp_path):
    from ofql_jax.core.errors import OFQLError

    run(small_config(num_steps=20), tmp_path / "run")
    with pytest.raises(OFQLError, match="different config.*agent.eta"):
        run(small_config(num_steps=40, agent=_with_eta(0.01)), tmp_path / "run")


def test_a_resume_with_allow_config_change_trains_with_the_new_hparams(
    hopper_dataset, tmp_path, capsys
):
    """The state's swept hyperparameters follow the config on resume: a run continued with
    --allow_config_change and another eta trains with that eta (before: silently with the
    checkpoint's, while config.json said the new one)."""
    import json

    run(small_config(num_steps=20), tmp_path / "run")
    run(small_config(num_steps=40, agent=_with_eta(0.01)), tmp_path / "run",
        allow_config_change=True)  # fmt: skip
    said = capsys.readouterr()
    assert "Continuing with the config's eta from step 20" in said.out + said.err
    run(small_config(), tmp_path / "same")  # eta unchanged throughout
    like = init_states(make_ofql(tiny_agent_config(), 11, 3), [0, 1])
    _, changed, _ = final_state(tmp_path / "run", like)
    _, same, _ = final_state(tmp_path / "same", like)
    np.testing.assert_array_equal(changed.hparams["eta"], np.full(2, 0.01, np.float32))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["agent"]["eta"] == 0.01
    assert not leaves_equal(changed.policy_params, same.policy_params)


def test_matmul_precision_is_applied_and_runs_from_before_the_field_resume(
    hopper_dataset, tmp_path
):
    import json

    import jax

    run(small_config(num_steps=20), tmp_path / "run")
    assert jax.config.jax_default_matmul_precision == "highest"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    del saved["matmul_precision"]  # as written by the code before the field existed
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    assert run(small_config(num_steps=40), tmp_path / "run")["steps"] == 40
    config = small_config(num_steps=20)
    config.matmul_precision = "default"
    try:
        run(config, tmp_path / "other")
        assert jax.config.jax_default_matmul_precision == "default"
    finally:
        jax.config.update("jax_default_matmul_precision", None)


class _FakeRun:
    def __init__(self, **kwargs):
        self.kwargs, self.rows, self.summary, self.finished = kwargs, [], {}, False

    def log(self, row, step):
        self.rows.append((step, dict(row)))

    def finish(self):
        self.finished = True


def test_wandb_logs_the_tensorboard_scalars_and_the_config(hopper_dataset, tmp_path, monkeypatch):
    import types

    from ofql_jax.results.writers import read_scalars

    runs = []

    def init(**kwargs):
        runs.append(_FakeRun(**kwargs))
        return runs[-1]

    fake = types.SimpleNamespace(Settings=lambda **kw: kw, init=init)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    config = small_config(num_steps=20)
    config.wandb_project = "ofql-test"
    run(config, tmp_path / "w")
    (wb,) = runs
    assert wb.finished and wb.kwargs["config"] == config.to_dict()
    assert wb.kwargs["project"] == "ofql-test" and wb.kwargs["mode"] == "offline"
    assert wb.kwargs["id"] == (tmp_path / "w" / "wandb_id").read_text().strip()
    logged: dict[str, dict[int, float]] = {}
    for step, row in wb.rows:
        for key, value in row.items():
            logged.setdefault(key, {})[step] = value
    for member in ("seed_0", "seed_1", "mean"):
        tb = read_scalars(tmp_path / "w" / "tb" / member)
        assert tb, member
        for tag, points in tb.items():
            for step, value in points:  # every TensorBoard point, same value (float32 there)
                np.testing.assert_allclose(logged[f"{member}/{tag}"][step], value, rtol=1e-6)
    assert wb.summary["data/source"]
    # A resumed run continues the same W&B run.
    run(small_config(num_steps=40, wandb_project="ofql-test"), tmp_path / "w")
    assert runs[-1].kwargs["id"] == wb.kwargs["id"] and runs[-1].kwargs["resume"] == "allow"


def test_wandb_offline_writes_locally_without_a_network(hopper_dataset, tmp_path):
    pytest.importorskip("wandb", reason="the optional extra [wandb] (requirements.txt has it)")
    config = small_config(num_steps=20, eval_episodes=0, wandb_project="ofql-test")
    run(config, tmp_path / "w")
    (record,) = (tmp_path / "w" / "wandb").glob("offline-run-*/run-*.wandb")
    assert record.stat().st_size > 0


def test_wandb_missing_is_one_sentence(hopper_dataset, tmp_path, monkeypatch):
    from ofql_jax.core.errors import OFQLError

    def writer_threads():
        return sum(type(t).__name__ == "_EventLoggerThread" for t in threading.enumerate())

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    before = writer_threads()
    with pytest.raises(OFQLError, match=r"pip install -e \.\[wandb\]"):
        run(small_config(num_steps=20, wandb_project="p"), tmp_path / "w")
    # The TensorBoard writers opened before the refusal are closed, not left to atexit.
    assert writer_threads() == before


def _with_eta(eta):
    c = tiny_agent_config()
    c.eta = eta
    return c


def cli_args(workdir: Path, *extra: str, dataset: str = DATASET) -> list[str]:
    """The CLI command line for the small test dataset and tiny networks."""
    return [
        sys.executable,
        "-m",
        "ofql_jax.main",
        "--config=experiments/d4rl.py:hopper-medium",
        f"--config.dataset_id={dataset}",
        f"--workdir={workdir}",
        *TINY,
        *extra,
    ]

"""Many datasets in one program: each member equals its single-task run, each run reports on
its own task, a kill between two runs' saves resumes exactly, and runs that cannot share a
program are refused in one sentence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import DATASET
from test_train import max_abs_diff, small_config

from ofql_jax.core.errors import OFQLError
from ofql_jax.training.experiment import Experiment
from ofql_jax.training.multi_dataset import MultiDatasetProgram, mismatch

OTHER = "test/hopper/other-v0"  # another Hopper dataset, of another size


@pytest.fixture
def two_datasets(hopper_dataset):
    from minari_factory import make_hopper_dataset

    make_hopper_dataset(OTHER, num_steps=600, max_episode_steps=40, seed=1,
                        ref_scores=(-20.272305, 3234.3))  # fmt: skip
    return hopper_dataset


def configs(**overrides):
    """Two runs of different tasks, datasets, seeds, member counts and (sweepable) eta."""
    common = {"num_steps": 20, "eval_episodes": 1, "checkpoint_every": 10, **overrides}
    a = small_config(num_seeds=2, **common)
    b = small_config(num_seeds=1, seed=5, **common)
    b.task, b.dataset_id, b.agent.eta = "hopper-medium-expert", OTHER, 0.7
    return a, b


def params(states):
    return (states.policy_params, states.critic_params, states.target_policy_params,
            states.target_critic_params)  # fmt: skip


def test_each_member_equals_its_single_task_run(two_datasets, tmp_path):
    a, b = configs()
    program = MultiDatasetProgram([a, b], [tmp_path / "a", tmp_path / "b"])
    assert program.counts == [2, 1]
    assert program.data.size == 400 + 600  # each dataset once on the device
    out = program.run()
    joint = [jax.device_get(run.states) for run in program.runs]
    for config, name, got, results in zip((a, b), "ab", joint, out, strict=True):
        alone = Experiment(config, tmp_path / f"alone_{name}")
        alone_results = alone.run()
        single = jax.device_get(alone.states)
        np.testing.assert_array_equal(got.rng, single.rng)  # the same batches and draws
        assert max_abs_diff(params(got), params(single)) < 1e-5
        # Reported under its own task, with its own data and evaluation.
        for key in ("task", "dataset_id", "dataset_sha256", "env_id", "seeds", "value_bounds"):
            assert results[key] == alone_results[key], key
        assert [e["step"] for e in results["evaluations"]] == [20]
        assert results["program"]["tasks"] == ["hopper-medium", "hopper-medium-expert"]
        assert results["program"]["members"] == 3
        saved = json.loads((tmp_path / name / "results.json").read_text())
        assert saved["task"] == config.task and saved["program"]["members_per_task"] == [2, 1]
    assert joint[1].hparams["eta"].tolist() == [pytest.approx(0.7)]


def test_runs_of_other_clip_thresholds_train_as_one_program(two_datasets, tmp_path):
    """grad_norm is each member's hparam (as DQL's per-task gn): runs that differ in it share
    a program and each member equals its run alone; a clip and no clip cannot share one."""
    import orbax.checkpoint as ocp

    a, b = configs(eval_episodes=0)
    assert a.agent.grad_norm == 9.0
    b.agent.grad_norm = 0.5
    assert mismatch([a, b]) is None
    program = MultiDatasetProgram([a, b], [tmp_path / "a", tmp_path / "b"])
    program.run()
    joint = [jax.device_get(run.states) for run in program.runs]
    alone = {}
    for config, name, got in zip((a, b), "ab", joint, strict=True):
        single = Experiment(config, tmp_path / f"alone_{name}")
        single.run()
        alone[name] = jax.device_get(single.states)
        np.testing.assert_array_equal(got.rng, alone[name].rng)
        assert max_abs_diff(params(got), params(alone[name])) < 1e-5
    assert joint[0].hparams["grad_norm"].tolist() == [9.0, 9.0]
    assert joint[1].hparams["grad_norm"].tolist() == [0.5]
    # The clip at 0.5 acts: b's run at a's 9.0 ends elsewhere.
    unclipped = Experiment(configs(eval_episodes=0)[1], tmp_path / "b_at_9")
    unclipped.run()
    assert max_abs_diff(params(joint[1]), params(jax.device_get(unclipped.states))) > 1e-3
    # Checkpoints keep their layout (the config holds grad_norm).
    with ocp.StandardCheckpointer() as reader:
        saved = reader.metadata(tmp_path / "b" / "checkpoints" / "20" / "state")
    assert "grad_norm" not in saved.item_metadata.tree["hparams"]
    b.agent.grad_norm = 0.0
    assert "agent.grad_norm clips for one run and not the other" in mismatch([a, b])


def test_a_kill_between_two_saves_resumes_exactly(two_datasets, tmp_path):
    a, b = configs(eval_episodes=0)
    full = MultiDatasetProgram([a, b], [tmp_path / "fa", tmp_path / "fb"])
    full.run()
    ref = [jax.device_get(run.states) for run in full.runs]
    # Run A saved step 20 and run B did not: A's step 20 moves aside, both resume at 10.
    MultiDatasetProgram([a, b], [tmp_path / "a", tmp_path / "b"]).run()
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "20")
    again = MultiDatasetProgram([a, b], [tmp_path / "a", tmp_path / "b"])
    assert [run.progress.step for run in again.runs] == [10, 10]
    assert (tmp_path / "a" / "checkpoints.ahead" / "20").is_dir()
    again.run()
    for want, run in zip(ref, again.runs, strict=True):
        got = jax.device_get(run.states)
        np.testing.assert_array_equal(got.rng, want.rng)
        assert max_abs_diff(params(got), params(want)) == 0.0
    # Each run loads like any run: its own checkpoint, task and environment.
    from ofql_jax.training.loading import load_run

    loaded = load_run(tmp_path / "b")
    assert (loaded.step, loaded.seeds, loaded.config.task) == (20, [5], "hopper-medium-expert")
    assert max_abs_diff(params(jax.device_get(loaded.states)), params(ref[1])) == 0.0


def test_runs_that_cannot_share_a_program_are_refused(two_datasets, tmp_path):
    a, b = configs()
    assert mismatch([a, b]) is None  # eta is sweepable: it may differ
    b.agent.grad_norm = 5.0  # so is grad_norm (DQL's per-task gn)
    assert mismatch([a, b]) is None
    b.agent.hidden_dims = (16, 16)
    assert "agent.hidden_dims differs" in mismatch([a, b])
    b = configs()[1]
    b.num_steps = 30
    with pytest.raises(OFQLError, match="num_steps differs .* separate programs"):
        MultiDatasetProgram([a, b], [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "a").exists()  # refused before anything was written


def bc_suite(description: str, *cells: tuple[str, dict], report: bool = False, **common):
    """A one-seed suite of tiny BC cells, one per ``(task, overrides)``, each on ``common``."""
    from test_suite import _tiny

    from ofql_jax.suite import cell, new_suite

    suite = _tiny(new_suite("t", description))
    suite.seeds, suite.report = 1, report
    tiny = {"agent.hidden_dims": (8,), **common}
    suite.cells = tuple(cell("bc", task, overrides={**tiny, **extra}) for task, extra in cells)
    return suite


def cell_status(workdir: Path) -> dict:
    return json.loads((workdir / "status.json").read_text())["cells"]


def test_the_suite_trains_cells_of_one_shape_as_one_program(two_datasets, tmp_path, capsys):
    from test_suite import SMOKE

    from ofql_jax.suite import SuiteRunner, group_programs

    suite = bc_suite(
        "BC on two hopper datasets and one walker2d task",
        ("hopper-medium", {}),
        ("hopper-medium-expert", {"dataset_id": OTHER}),
        ("walker2d-medium", {}),  # another shape: never grouped
        ("hopper-medium-replay", {"batch_size": 16}),  # another batch
        report=True,
    )
    runner = SuiteRunner(suite, SMOKE, tmp_path)
    units = group_programs(runner.programs, runner.configs)
    assert [[p.name for p in unit] for unit in units] == [
        ["bc-hopper-medium", "bc-hopper-medium-expert"], ["bc-walker2d-medium"],
        ["bc-hopper-medium-replay"]]  # fmt: skip
    suite.select = "bc-hopper-medium,bc-hopper-medium-expert"
    assert SuiteRunner(suite, SMOKE, tmp_path).run() == 0
    out = capsys.readouterr()
    assert "[1/1] bc-hopper-medium + bc-hopper-medium-expert" in out.out + out.err
    status = cell_status(tmp_path)
    for name, task, size in (("bc-hopper-medium", "hopper-medium", 400),
                             ("bc-hopper-medium-expert", "hopper-medium-expert", 600)):  # fmt: skip
        assert status[name]["state"] == "done"
        assert status[name]["trained_with"] == "bc-hopper-medium + bc-hopper-medium-expert"
        results = json.loads((tmp_path / "cells" / name / "results.json").read_text())
        assert results["task"] == task and results["steps"] == 100
        assert results["program"]["members"] == 2
        assert results["dataset_id"] == (DATASET if size == 400 else OTHER)
    assert "bc-hopper-medium-expert" in (tmp_path / "report.md").read_text()
    suite.multi_dataset = False  # one program per cell
    assert SuiteRunner(suite, SMOKE, tmp_path / "apart").run() == 0
    out = capsys.readouterr()
    assert "[1/2] bc-hopper-medium:" in out.out + out.err
    apart = cell_status(tmp_path / "apart")
    assert apart["bc-hopper-medium"].get("trained_with") is None


def test_a_program_that_cannot_start_together_runs_its_cells_alone(two_datasets, tmp_path):
    from test_suite import SMOKE

    from ofql_jax.suite import SuiteRunner

    suite = bc_suite(
        "one of three hopper datasets is missing",
        ("hopper-medium", {}),
        ("hopper-medium-replay", {"dataset_id": "test/hopper/no-v0"}),
        ("hopper-medium-expert", {"dataset_id": OTHER}),
        download=False,
    )
    assert SuiteRunner(suite, SMOKE, tmp_path).run() == 1  # a cell failed, the others ran
    status = cell_status(tmp_path)
    assert status["bc-hopper-medium-replay"]["state"] == "failed"
    assert "test/hopper/no-v0" in status["bc-hopper-medium-replay"]["error"]
    for name in ("bc-hopper-medium", "bc-hopper-medium-expert"):
        assert status[name]["state"] == "done" and status[name].get("trained_with") is None


def test_a_stop_while_cells_train_alone_stops_the_suite(two_datasets, tmp_path, monkeypatch):
    """SIGTERM (or Ctrl-C) during the alone fallback stops the suite with the cells pending;
    before, the group's outer handler marked every cell failed and the suite went on."""
    from test_suite import SMOKE

    from ofql_jax.core.errors import StoppedError
    from ofql_jax.suite import SuiteRunner

    original = Experiment.stop_if_requested

    def stop(self, step):
        if self.progress.step >= 50 and self.config.task == "hopper-medium":
            raise StoppedError("Stopped by the test.")
        original(self, step)

    monkeypatch.setattr(Experiment, "stop_if_requested", stop)
    suite = bc_suite(
        "a stop during the fallback",
        ("hopper-medium", {}),
        ("hopper-medium-replay", {"dataset_id": "test/hopper/no-v0"}),
        download=False,
    )
    runner = SuiteRunner(suite, SMOKE, tmp_path)
    with pytest.raises(OFQLError, match="suite stopped"):
        runner.run()
    status = cell_status(tmp_path)
    assert status["bc-hopper-medium"]["state"] == "pending" and not runner.failed


def test_a_program_that_fails_while_training_resumes_its_runs_alone(
    two_datasets, tmp_path, monkeypatch, capsys
):
    """One task's seed diverges (halt_on_divergence) in the second chunk of the joint
    program: each run resumes alone from its step-50 checkpoint, so only that cell fails."""
    from test_suite import SMOKE

    from ofql_jax.suite import SuiteRunner

    check_finite = Experiment.check_finite

    def diverge_other(self, finite, step):  # OTHER's seed turns non-finite after step 50
        if self.config.dataset_id == OTHER and step > 50:
            finite = np.zeros_like(finite)
        check_finite(self, finite, step)

    monkeypatch.setattr(Experiment, "check_finite", diverge_other)
    suite = bc_suite(
        "one of two hopper datasets diverges",
        ("hopper-medium", {}),
        ("hopper-medium-expert", {"dataset_id": OTHER}),
        halt_on_divergence=True,
    )
    runner = SuiteRunner(suite, SMOKE, tmp_path)
    assert runner.run() == 1  # a cell failed, the other finished
    out = capsys.readouterr()
    text = out.out + out.err
    assert "bc-hopper-medium + bc-hopper-medium-expert failed as one program" in text
    assert "each run resumes alone from its last checkpoint" in text
    assert "(step 50)" in text  # the good run resumed from the joint program's checkpoint
    assert [name for name, _ in runner.failed] == ["bc-hopper-medium-expert"]  # counted once
    status = cell_status(tmp_path)
    good, bad = status["bc-hopper-medium"], status["bc-hopper-medium-expert"]
    assert good["state"] == "done" and good["error"] is None
    assert good["trained_with"] is None  # it finished alone
    assert good["wall_seconds"] > 0
    results = json.loads((tmp_path / "cells" / "bc-hopper-medium" / "results.json").read_text())
    assert results["task"] == "hopper-medium" and results["steps"] == 100
    assert "program" not in results  # trained alone to the end
    assert [e["step"] for e in results["evaluations"]] == [100]
    assert all(s is not None for s in results["evaluations"][-1]["scores"])
    assert bad["state"] == "failed" and bad["trained_with"] is None
    assert "diverged" in bad["error"] and "halt_on_divergence is set" in bad["error"]
    assert "the last checkpoint (step 50) is intact" in bad["error"]
    assert not (tmp_path / "cells" / "bc-hopper-medium-expert" / "results.json").exists()
    # Resumed alone at step 50, the good run ends where a run alone from the start does.
    from ofql_jax.training.loading import load_run

    resumed = jax.device_get(load_run(tmp_path / "programs" / "bc-hopper-medium").states)
    single = Experiment(runner.configs["bc-hopper-medium"], tmp_path / "alone")
    single.run()
    single = jax.device_get(single.states)
    np.testing.assert_array_equal(resumed.rng, single.rng)
    assert max_abs_diff(resumed.policy_params, single.policy_params) < 1e-5


def test_runs_of_one_dataset_share_its_device_copy(two_datasets, tmp_path):
    a, b = configs(eval_episodes=0)
    same = small_config(num_seeds=1, seed=9, num_steps=20, eval_episodes=0, checkpoint_every=10)
    program = MultiDatasetProgram([a, b, same], [tmp_path / "a", tmp_path / "b", tmp_path / "c"])
    try:
        assert program.data.size == 400 + 600  # hopper-medium's dataset once for two runs
        where = np.asarray(program.where).tolist()
        assert where == [[0, 400], [0, 400], [400, 600], [0, 400]]
        assert program.runs[0].program["datasets_on_device"] == 2
    finally:
        program.close()


FOUR_DEVICES = """
import sys
import jax, numpy as np
sys.path.insert(0, "tests")
from test_multi_dataset import configs, params
from test_train import max_abs_diff
from ofql_jax.training.multi_dataset import MultiDatasetProgram

assert len(jax.devices()) == 4, jax.devices()
out = {}
for devices in (4, 1):
    a, b = configs(eval_episodes=0, num_devices=devices)
    b.num_seeds = 2  # 4 members in all: one per device
    where = [f"{sys.argv[1]}/{devices}{name}" for name in "ab"]
    program = MultiDatasetProgram([a, b], where)
    if devices == 4:
        assert program.states.step.sharding.spec == jax.sharding.PartitionSpec("seed")
    program.run()
    out[devices] = [jax.device_get(run.states) for run in program.runs]
for split, whole in zip(out[4], out[1]):
    np.testing.assert_array_equal(split.rng, whole.rng)
    assert max_abs_diff(params(split), params(whole)) < 1e-5
print("ok")
"""


def test_a_program_split_over_four_devices_equals_one_device(two_datasets, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "MINARI_DATASETS_PATH": str(two_datasets),
           "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
                        "--xla_force_host_platform_device_count=4"}  # fmt: skip
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", FOUR_DEVICES, str(tmp_path)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]

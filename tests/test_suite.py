"""The suite runner: planning (merged sweeps), per-cell results, failures, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ofql_jax.core.errors import OFQLError
from ofql_jax.core.tasks import PAPER_TASKS
from ofql_jax.results.schema import select_setting
from ofql_jax.suite import (
    SuiteRunner,
    cell,
    load_suite_file,
    new_suite,
    plan_programs,
    selected_cells,
)

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "experiments" / "suites" / "smoke.py"
DATASET = "test/hopper/random-v0"
SECTIONS = ("## Final scores", "## Aggregates over tasks", "## Learning curves",
            "## One-step ablation", "## Flow-ratio ablation", "## Eta grid", "## Cost",
            "## Divergence monitor", "## Failed or unfinished cells")  # fmt: skip


def _programs(cells, defaults=None):
    suite = new_suite("t", "test")
    suite.cells = tuple(cells)
    return plan_programs(selected_cells(suite), defaults or suite.defaults)


def test_cells_differing_in_a_sweepable_value_become_one_sweep():
    programs = _programs([
        cell("ofql", "hopper-medium", name="a", overrides={"agent.eta": 0.3}),
        cell("ofql", "hopper-medium", name="b", overrides={"agent": {"eta": 0.1}}),
        cell("ofql", "hopper-medium", name="c", overrides={"agent.eta": 0.01}),
    ])  # fmt: skip
    assert len(programs) == 1
    (p,) = programs
    assert p.sweep == {"eta": "0.01,0.1,0.3"}
    assert [c["name"] for c in p.cells] == ["c", "b", "a"]  # the sweep's setting order
    assert p.settings == ({"eta": 0.01}, {"eta": 0.1}, {"eta": 0.3})
    assert "eta" not in p.overrides["agent"]


def test_other_differences_keep_cells_apart_and_identical_cells_share_a_program():
    programs = _programs([
        cell("ofql", "hopper-medium", name="a", overrides={"agent.eta": 0.3}),
        cell("ofql", "hopper-medium", name="b", overrides={"agent.eta": 0.1, "batch_size": 64}),
        cell("ofql", "hopper-medium", name="c"),
        cell("ofql", "hopper-medium", name="d", group="one_step_ablation"),
        cell("fql", "hopper-medium", name="e", overrides={"agent.alpha": 3.0}),
    ])  # fmt: skip
    by_cells = {tuple(c["name"] for c in p.cells): p for p in programs}
    assert set(by_cells) == {("a",), ("b",), ("c", "d"), ("e",)}
    assert by_cells[("a",)].sweep == {} and by_cells[("a",)].overrides["agent"]["eta"] == 0.3
    # eta x flow_ratio cells that do not fill the grid run separately
    programs = _programs([
        cell("ofql", "hopper-medium", name="a", overrides={"agent": {"eta": 0.3, "flow_ratio": 1}}),
        cell("ofql", "hopper-medium", name="b", overrides={"agent": {"eta": 0.1, "flow_ratio": 0}}),
    ])  # fmt: skip
    assert len(programs) == 2 and all(p.sweep == {} for p in programs)


def test_selection_and_bad_suites_are_one_sentence_errors():
    suite = load_suite_file(SMOKE)
    suite.select = "eta_grid,bc-hopper-medium"
    assert [c["name"] for c in selected_cells(suite)] == [
        "bc-hopper-medium", "ofql-eta0.1", "ofql-eta0.3"]  # fmt: skip
    suite.select = "nope"
    with pytest.raises(OFQLError, match="no cell or group"):
        selected_cells(suite)
    suite.select = ""
    suite.cells = (cell("bc", "hopper-medium", overrides={"learning_rate": 1e-3}),)
    with pytest.raises(OFQLError, match="learning_rate, which is not a config field"):
        SuiteRunner(suite, SMOKE, "unused")
    suite.cells = (cell("bc", "hopper-medium"), cell("bc", "hopper-medium"))
    with pytest.raises(OFQLError, match="names cells twice"):
        selected_cells(suite)


def test_select_setting_gives_a_sweep_cell_the_shape_of_a_plain_run():
    members = [{"label": f"eta={e}/seed_{s}", "seed": s, "setting": k}
               for k, e in enumerate((0.1, 0.3)) for s in (0, 1)]  # fmt: skip
    results = {
        "members": members, "num_seeds": 2,
        "evaluations": [{"step": 10, "candidates": 4, "scores": [1.0, 2.0, 3.0, None],
                         "diagnostics": {"q": [5.0, 6.0, 7.0, 8.0]}}],
        "diagnostics": {"q": [5.0, 6.0, 7.0, 8.0]},
        "value_diverged_seeds": {"eta=0.3/seed_1": 7}, "diverged_seeds": {},
        "settings": [{"hparams": {"eta": 0.1}, "name": "eta=0.1", "final_scores": [1.0, 2.0],
                      "mean": 1.5, "std": 0.5},
                     {"hparams": {"eta": 0.3}, "name": "eta=0.3", "final_scores": [3.0, None],
                      "mean": 3.0, "std": 0.0}],
        "mean": None, "std": None,
    }  # fmt: skip
    view = select_setting(results, 1)
    assert view["evaluations"][0]["scores"] == [3.0, None]
    assert view["evaluations"][0]["diagnostics"]["q"] == [7.0, 8.0]
    assert view["diagnostics"]["q"] == [7.0, 8.0]
    assert view["value_diverged_seeds"] == {"1": 7}
    assert (view["mean"], view["final_scores"], view["setting"]) == (3.0, [3.0, None], "eta=0.3")
    assert "members" not in view and "settings" not in view
    assert select_setting(results, 0)["value_diverged_seeds"] == {}


def _tiny(suite, num_steps=100):
    d = suite.defaults
    d.dataset_id, d.num_steps, d.steps_per_call = DATASET, num_steps, 50
    d.eval_every, d.checkpoint_every, d.eval_episodes = num_steps, 50, 1
    d.compilation_cache_dir = ""  # the session cache of conftest.py
    return suite


def test_a_failed_cell_is_recorded_and_the_suite_goes_on(hopper_dataset, tmp_path):
    suite = _tiny(new_suite("t", "one good, one failing cell"))
    suite.seeds, suite.report = 1, False
    suite.cells = (
        cell("bc", "hopper-medium", name="too-big", overrides={"batch_size": 100_000}),
        cell("bc", "hopper-medium", name="good", overrides={"agent.hidden_dims": (8,)}),
    )  # fmt: skip
    status = SuiteRunner(suite, SMOKE, tmp_path).run()
    assert status == 1
    state = json.loads((tmp_path / "status.json").read_text())["cells"]
    assert state["too-big"]["state"] == "failed"
    assert "batch_size 100000 is larger than the dataset" in state["too-big"]["error"]
    assert state["good"]["state"] == "done"
    assert json.loads((tmp_path / "cells" / "good" / "results.json").read_text())["steps"] == 100


def test_a_suite_run_in_parts_keeps_every_part_in_its_plan(hopper_dataset, tmp_path):
    suite = _tiny(new_suite("t", "three learning rates, run in two parts"))
    suite.seeds, suite.report = 1, False
    suite.cells = tuple(
        cell("bc", "hopper-medium", name=name, overrides={"agent.actor_lr": lr,
                                                          "agent.hidden_dims": (8,)})
        for name, lr in (("a", 1e-4), ("b", 3e-4), ("c", 1e-3))
    )  # fmt: skip
    suite.select = "a"
    assert SuiteRunner(suite, SMOKE, tmp_path).run() == 0
    suite.select = "b,c"  # a sweep of two, named as the full plan's sweep of three would be
    assert SuiteRunner(suite, SMOKE, tmp_path).run() == 0
    plan = json.loads((tmp_path / "suite.json").read_text())["cells"]
    assert [(c["name"], c["program"]) for c in plan] == [
        ("a", "a"), ("b", "bc-hopper-medium-actor_lr-sweep"),
        ("c", "bc-hopper-medium-actor_lr-sweep")]  # fmt: skip
    for name in "abc":
        assert json.loads((tmp_path / "cells" / name / "results.json").read_text())["steps"] == 100
    before = (tmp_path / "suite.json").read_bytes()
    suite.select = ""  # the full plan's sweep of three finds the finished sweep of two
    with pytest.raises(OFQLError, match="holds a finished sweep without actor_lr=0.0001"):
        SuiteRunner(suite, SMOKE, tmp_path).run()
    assert (tmp_path / "suite.json").read_bytes() == before


def _suite_command(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "ofql_jax.suite", f"--suite={SMOKE}", f"--workdir={workdir}",
            f"--suite.defaults.dataset_id={DATASET}", "--suite.select=bc-hopper-medium,"
            "flowbc-hopper-medium", "--suite.defaults.num_steps=400",
            "--suite.defaults.eval_every=200",
            "--suite.defaults.compilation_cache_dir="]  # fmt: skip


def test_smoke_suite_killed_midway_resumes_and_writes_every_report_section(
    hopper_dataset, tmp_path
):
    workdir = tmp_path / "smoke"
    env = {**os.environ, "MINARI_DATASETS_PATH": str(hopper_dataset)}
    partial = workdir / "programs" / "flowbc-hopper-medium" / "checkpoints"
    first = subprocess.Popen(_suite_command(workdir), cwd=REPO, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.time() + 600
    while time.time() < deadline and first.poll() is None:
        if partial.is_dir() and any(p.name.isdigit() for p in partial.iterdir()):
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    steps = sorted(int(p.name) for p in partial.iterdir() if p.name.isdigit())
    assert steps and steps[-1] < 400, "the kill came after the second cell finished"
    finished = workdir / "programs" / "bc-hopper-medium" / "results.json"
    stamp = finished.stat().st_mtime_ns
    assert not (workdir / "cells" / "flowbc-hopper-medium" / "results.json").exists()
    # The killed cell's wall time so far is on disk (written after every chunk).
    killed = json.loads((workdir / "status.json").read_text())["cells"]["flowbc-hopper-medium"]
    assert killed["state"] == "running" and killed["wall_seconds"] > 0

    second = subprocess.run(_suite_command(workdir), cwd=REPO, env=env, text=True,
                            capture_output=True, timeout=600)  # fmt: skip
    assert second.returncode == 0, second.stderr[-2000:]
    out = second.stdout + second.stderr
    assert "[1/2] bc-hopper-medium" not in out and "[2/2] flowbc-hopper-medium" in out
    assert f"Resuming from {partial}" in out
    assert finished.stat().st_mtime_ns == stamp
    status = json.loads((workdir / "status.json").read_text())
    assert {c: s["state"] for c, s in status["cells"].items()} == {
        "bc-hopper-medium": "done", "flowbc-hopper-medium": "done"}  # fmt: skip
    assert len(status["commands"]) == 2
    resumed_status = status["cells"]["flowbc-hopper-medium"]  # time adds up over the two starts
    assert resumed_status["wall_seconds"] > killed["wall_seconds"]
    assert resumed_status["started"] == killed["started"]
    resumed = json.loads((workdir / "cells" / "flowbc-hopper-medium" / "results.json").read_text())
    assert resumed["steps"] == 400 and [e["step"] for e in resumed["evaluations"]] == [200, 400]
    report = (workdir / "report.md").read_text()
    for section in SECTIONS:
        assert section in report, section
    assert "flow BC" in report and "(figures/curves_hopper-medium.png)" in report
    assert (workdir / "figures" / "curves_hopper-medium.png").stat().st_size > 1000


DEVICE_SCRIPT_FIELDS = {"eval_workers", "replica_steps", "compilation_cache_dir", "steps_per_call"}


@pytest.mark.parametrize(
    "name",
    ["smoke", "cpu", "paper", "one_step_ablation", "flow_ratio", "eta_grid", "learning",
     "precision"],
)  # fmt: skip
def test_shipped_suites_plan_valid_programs(name):
    path = REPO / "experiments" / "suites" / f"{name}.py"
    runner = SuiteRunner(load_suite_file(path), path, "unused")
    assert runner.programs
    groups = {c["group"] for c in runner.cells}
    if name == "paper":  # 15 tasks x 4 algorithms; OFQL's eta grid is one sweep per task
        assert {c["task"] for c in runner.cells} == set(PAPER_TASKS)
        sweeps = [p for p in runner.programs if p.sweep]
        assert len(sweeps) == 15 and all(p.sweep == {"eta": "0.001,0.01,0.1,0.3,0.5"}
                                         for p in sweeps)  # fmt: skip
        assert len(runner.programs) == 15 * 4
    if name == "flow_ratio":
        assert groups == {"flow_ratio"} and len(runner.programs) == 3
    if name == "one_step_ablation":
        assert groups == {"one_step_ablation"} and len(runner.programs) == 9 * 4
    if name == "eta_grid":  # per task: the grid as one sweep, and flow BC
        sweeps = [p for p in runner.programs if p.sweep]
        assert len(sweeps) == 3 and len(runner.programs) == 6
        assert all(p.sweep == {"eta": "0.001,0.01,0.1,0.3,0.5"} for p in sweeps)
    if name in ("learning", "precision"):  # run by experiments/device/suite.sh, which sets these
        assert set(runner.suite.defaults) >= DEVICE_SCRIPT_FIELDS, name
    if name == "precision":  # three settings that must not share a program
        assert len(runner.programs) == 3 and not any(p.sweep for p in runner.programs)
        configs = [runner.configs[p.name] for p in runner.programs]
        assert sorted((c.matmul_precision, c.agent.matmul_dtype) for c in configs) == [
            ("default", "float32"),
            ("highest", "bfloat16"),
            ("highest", "float32"),
        ]


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--help"], 0, "usage: python -m ofql_jax.suite"),
        (["--suite=nope.py"], 2, "error: cannot load the suite file nope.py"),
        ([f"--suite={SMOKE}", "--suite.bogus=1"], 2, "bogus is not a suite field"),
        ([f"--suite={SMOKE}", "--suite.select=nothing", "--workdir=/tmp/x"], 2,
         "no cell or group of this suite"),
    ],
)  # fmt: skip
def test_suite_command_line_errors_are_one_sentence(args, status, message):
    done = subprocess.run([sys.executable, "-m", "ofql_jax.suite", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == status
    out = done.stdout + done.stderr
    assert message in out and "Traceback" not in out
    if status:
        assert len(done.stderr.strip().splitlines()) == 1

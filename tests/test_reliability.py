"""Failure modes: kills, signals, divergence and bad input end cleanly and lose nothing."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import gymnasium as gym
import jax
import jax.numpy as jnp
import minari
import numpy as np
import pytest
from conftest import TEST_XLA_FLAGS
from minari.data_collector.episode_buffer import EpisodeBuffer
from minari_factory import (
    make_cartpole_dataset,
    make_hopper_buffers_dataset,
    make_hopper_dataset,
)
from test_train import (
    DATASET,
    cli_args,
    final_state,
    leaves_equal,
    small_config,
    tiny_agent_config,
)

from ofql_jax.agents.ofql import make_ofql
from ofql_jax.core.checkpointing import Checkpointer
from ofql_jax.core.errors import OFQLError, StoppedError
from ofql_jax.results.writers import read_scalars
from ofql_jax.training.experiment import Experiment
from ofql_jax.training.trainer import init_states

REPO = Path(__file__).resolve().parents[1]


# --- CLI helpers ------------------------------------------------------------------------------


def cli(workdir: Path, *extra: str, dataset: str = DATASET, env=None, timeout=300):
    return subprocess.run(
        cli_args(workdir, *extra, dataset=dataset),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def assert_one_clear_line(done: subprocess.CompletedProcess, *words: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    last = lines[-1]
    assert last.startswith("error: "), done.stderr[-2000:]
    for word in words:
        assert word in last, (word, last)
    return last


def tree_digest(path: Path) -> str:
    """Hash of every file (names and bytes) under ``path``: proves nothing was overwritten."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


# --- divergence -------------------------------------------------------------------------------


def poison_seed(states, index):
    """Put a NaN into one seed's policy parameters, as a blown-up update would."""
    params = jax.tree.map(lambda x: x.at[index].set(jnp.nan), states.policy_params)
    return states.replace(policy_params=params)


def test_a_diverged_seed_is_isolated_and_reported(hopper_dataset, tmp_path):
    config = small_config(num_seeds=3, eval_episodes=1)
    healthy = Experiment(config, tmp_path / "healthy").run()
    exp = Experiment(config, tmp_path / "poisoned")
    exp.states = poison_seed(exp.states, 1)
    results = exp.run()

    assert results["diverged_seeds"] == {"1": 10}  # detected at the end of the first chunk
    assert results["final_scores"][1] is None and results["final_scores_one_step"][1] is None
    kept = [results["final_scores"][0], results["final_scores"][2]]
    assert results["mean"] == pytest.approx(np.mean(kept)) and results["std"] == pytest.approx(
        np.std(kept)
    )
    # The other seeds trained exactly as if nothing had happened.
    assert results["final_scores"][0] == healthy["final_scores"][0]
    assert results["final_scores"][2] == healthy["final_scores"][2]
    like = init_states(make_ofql(tiny_agent_config(), 11, 3), [0, 1, 2])
    a, b = final_state(tmp_path / "healthy", like)[1], final_state(tmp_path / "poisoned", like)[1]
    for seed in (0, 2):
        pick = lambda tree, i=seed: jax.tree.map(lambda x: x[i], tree)  # noqa: E731
        assert leaves_equal(pick(a), pick(b))
    assert json.loads((tmp_path / "poisoned" / "results.json").read_text())["diverged_seeds"] == {
        "1": 10
    }


def test_halt_on_divergence_stops_and_keeps_the_last_good_checkpoint(hopper_dataset, tmp_path):
    config = small_config(halt_on_divergence=True, num_steps=40)
    Experiment(small_config(num_steps=20, halt_on_divergence=True), tmp_path / "run").run()
    exp = Experiment(config, tmp_path / "run")  # resumes at step 20
    exp.states = poison_seed(exp.states, 0)
    with pytest.raises(
        OFQLError, match=r"Seed 0 diverged .* by step 30 .*last checkpoint \(step 20\) is intact"
    ):
        exp.run()
    assert Checkpointer(tmp_path / "run" / "checkpoints").latest_step() == 20


# --- bad input through the CLI: one sentence, exit 2, no traceback, nothing overwritten ---------


def write_image_dataset(dataset_id: str) -> None:
    rng = np.random.default_rng(0)
    obs_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
    buffer = [
        EpisodeBuffer(
            id=0,
            observations=rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8),
            actions=rng.uniform(-1, 1, (3, 2)).astype(np.float32),
            rewards=[0.0] * 3,
            terminations=[False, False, True],
            truncations=[False] * 3,
        )
    ]
    with warnings.catch_warnings():  # no env: the dataset is refused before any evaluation
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers(
            dataset_id,
            buffer,
            observation_space=obs_space,
            action_space=gym.spaces.Box(-1, 1, (2,), np.float32),
            algorithm_name="test",
            author="t",
            author_email="t@example.invalid",
            code_permalink="n/a",
            description="img",
        )


def make_bad_dataset(kind: str) -> str:
    if kind == "discrete":
        make_cartpole_dataset("bad/cartpole/discrete-v0")
        return "bad/cartpole/discrete-v0"
    if kind == "image":
        write_image_dataset("bad/image/pixels-v0")
        return "bad/image/pixels-v0"

    def corrupt(raw):
        if kind == "nan":
            raw[0]["observations"][1, 0] = np.nan
        else:
            raw[0]["actions"][0, 0] = 3.0

    make_hopper_buffers_dataset(
        f"bad/hopper/{kind}-v0", [3], [[0, 0, 1]], [[0] * 3], corrupt=corrupt
    )
    return f"bad/hopper/{kind}-v0"


@pytest.mark.parametrize(
    "kind, words",
    [
        ("discrete", ["bad/cartpole/discrete-v0", "Discrete", "continuous"]),
        ("image", ["bad/image/pixels-v0", "image"]),
        ("nan", ["bad/hopper/nan-v0", "non-finite"]),
        ("oob", ["bad/hopper/oob-v0", "outside"]),
    ],
)
def test_cli_refuses_bad_datasets(minari_dir, tmp_path, kind, words):
    dataset = make_bad_dataset(kind)
    done = cli(tmp_path / "w", "--config.batch_size=2", dataset=dataset)
    assert_one_clear_line(done, *words)


def test_cli_unknown_dataset_and_unreachable_server(minari_dir, tmp_path):
    start = time.monotonic()
    done = cli(tmp_path / "w", dataset="nobody/nothing/here-v0")
    assert time.monotonic() - start < 60  # includes interpreter and JAX start-up
    assert_one_clear_line(done, "nobody/nothing/here-v0", "MINARI_DATASETS_PATH", str(minari_dir))
    assert not (tmp_path / "w").exists()  # a failed start leaves no half-made workdir


def test_cli_second_run_on_a_workdir_is_refused_and_a_stale_lock_taken_over(
    hopper_dataset, tmp_path
):
    workdir = tmp_path / "w"
    common = ["--config.eval_episodes=0", "--config.batch_size=32", "--config.num_seeds=1"]
    first = subprocess.Popen(cli_args(workdir, *common, "--config.num_steps=10000000"), cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (workdir / ".lock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        start = time.monotonic()
        second = cli(workdir, *common, "--config.num_steps=10000000")
        assert time.monotonic() - start < 60  # refused before loading any data
        assert_one_clear_line(second, f"in use by the run of pid {first.pid}", "wait for it")
        assert first.poll() is None  # the first run is untouched
    finally:
        first.kill()
        first.wait()
    assert (workdir / ".lock").exists()  # a killed run cannot remove its lock
    third = cli(workdir, *common, "--config.num_steps=20")
    assert third.returncode == 0, third.stderr[-2000:]
    assert "Taking over the lock" in third.stderr
    assert not (workdir / ".lock").exists()  # released on exit


def test_cli_workdir_that_is_a_file_or_unwritable(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    done = cli(a_file)
    assert_one_clear_line(done, str(a_file), "is a file", "pass a directory")
    done = cli(a_file / "run")
    assert_one_clear_line(done, "lies under the file", "pass a directory")
    assert a_file.read_text() == "mine"
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert_one_clear_line(cli(locked / "run"), "not writable", "pass a directory")


@pytest.mark.parametrize("flag", ["--help", "-h", "--helpfull"])
def test_cli_help_lists_every_field_with_default_and_comment(flag, tmp_path):
    sys.path.insert(0, str(REPO / "experiments"))
    import d4rl

    from ofql_jax.core.cli_help import config_fields

    # From another directory: the documented --config path is found in the repository.
    done = subprocess.run(
        [sys.executable, "-m", "ofql_jax.main", "--config=experiments/d4rl.py", flag],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    config = d4rl.get_config()
    for field in config_fields(config):
        shown = [i for i, ln in enumerate(lines) if ln.strip().startswith(f"--config.{field}=")]
        assert shown, field
        if not field.startswith("sweep."):
            assert lines[shown[0] + 1].startswith("      "), f"{field} has no comment"
    assert "--config.agent.eta=0.3" in done.stdout  # the task's default, not a placeholder


def test_cli_config_path_works_from_any_directory(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "ofql_jax.main", "--config=experiments/d4rl.py:hopper-mediun"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert_one_clear_line(done, "Unknown task 'hopper-mediun'")  # the file itself was found


def test_cli_batch_larger_than_dataset(hopper_dataset, tmp_path):
    assert_one_clear_line(cli(tmp_path / "w", "--config.batch_size=100000"), "batch_size", "400")


@pytest.mark.parametrize(
    "flag, words",
    [
        ("--config.num_stepz=5", ["num_stepz is not a config field", "--config.num_steps"]),
        ("--config.agent.etta=0.1", ["etta is not a config field", "--config.agent.eta"]),
        ("--config.learning_rate=1e-3", ["learning_rate is not a config", "agent.actor_lr"]),
        ("--config.zzz=1", ["zzz is not a config field", "num_steps", "--help lists"]),
        ("--config.num_steps=many", ["--config.num_steps=many has the wrong type"]),
        ("--config.agent.flow_ratio=1.5", ["agent.flow_ratio", "[0, 1]"]),
        ("--config=experiments/missing.py", ["experiments/missing.py"]),
        ("--config=experiments/d4rl.py:hopper-mediun", ["Unknown task 'hopper-mediun'"]),
        ("--config.matmul_precision=tf32", ["matmul_precision", "highest or high or default"]),
    ],
)
def test_cli_bad_config(tmp_path, flag, words):
    args = [
        sys.executable,
        "-m",
        "ofql_jax.main",
        "--config=experiments/d4rl.py",
        flag,
        f"--workdir={tmp_path / 'w'}",
    ]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert_one_clear_line(done, *words)


def test_cli_debug_flag_shows_the_traceback(hopper_dataset, tmp_path):
    done = cli(tmp_path / "w", "--config.batch_size=100000", "--debug")
    assert done.returncode != 0 and "Traceback" in done.stderr and "OFQLError" in done.stderr


SHORT = [
    "--config.num_seeds=1",
    "--config.num_steps=20",
    "--config.steps_per_call=10",
    "--config.checkpoint_every=10",
    "--config.eval_episodes=0",
    "--config.batch_size=32",
]


def test_cli_workdir_with_a_different_config_is_refused_then_overwritten_on_request(
    hopper_dataset, tmp_path
):
    workdir = tmp_path / "w"
    assert cli(workdir, *SHORT).returncode == 0
    before = tree_digest(workdir)
    done = cli(workdir, *SHORT, "--config.agent.eta=0.01")
    assert_one_clear_line(
        done, "different config", "agent.eta", "--overwrite", "--allow_config_change"
    )
    assert tree_digest(workdir) == before  # nothing touched

    done = cli(workdir, *SHORT, "--config.agent.eta=0.01", "--overwrite")
    assert done.returncode == 0, done.stderr[-2000:]
    assert tree_digest(workdir.with_name("w.old-1")) == before  # the old run moved aside intact
    assert json.loads((workdir / "config.json").read_text())["agent"]["eta"] == 0.01


def test_cli_corrupt_checkpoint_is_reported_and_left_alone(hopper_dataset, tmp_path):
    workdir = tmp_path / "w"
    assert cli(workdir, *SHORT).returncode == 0
    for file in (workdir / "checkpoints" / "20" / "state").rglob("*"):
        if file.is_file() and file.stat().st_size > 0:
            file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])  # truncate everything
    before = tree_digest(workdir)
    done = cli(workdir, *SHORT, "--config.num_steps=30")
    assert_one_clear_line(done, "checkpoint", "cannot be restored", "20")
    assert tree_digest(workdir) == before


# --- crashes, preemption and signals ----------------------------------------------------------


KILL_ARGS = [
    "--config.num_seeds=2",
    "--config.num_steps=1500",
    "--config.batch_size=256",
    "--config.steps_per_call=250",
    "--config.checkpoint_every=500",
    "--config.eval_every=750",
    "--config.eval_episodes=2",
    "--config.eval_candidates=4",
]


@pytest.fixture(scope="module")
def kill_setup(tmp_path_factory):
    """A dataset and the uninterrupted reference run, shared by the kill tests."""
    root = tmp_path_factory.mktemp("kill")
    env = {**os.environ, "MINARI_DATASETS_PATH": str(root / "datasets"), "PYTHONUNBUFFERED": "1"}
    # The shipped numerics: XLA's default optimisation level, not the tests' faster one.
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(TEST_XLA_FLAGS, "").strip()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", env["MINARI_DATASETS_PATH"])
        make_hopper_dataset(
            DATASET, num_steps=400, max_episode_steps=40, ref_scores=(-20.272305, 3234.3)
        )
    reference = root / "reference"
    done = cli(reference, *KILL_ARGS, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return root, env, reference


@pytest.mark.parametrize("moment", ["during start-up", "mid-chunk", "right after a checkpoint"])
def test_sigkill_at_any_moment_then_rerun_is_bit_identical(kill_setup, moment):
    root, env, reference = kill_setup
    workdir = root / moment.replace(" ", "_")
    args = cli_args(workdir, *KILL_ARGS)
    proc = subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    if moment == "during start-up":
        time.sleep(1.5)  # the interpreter is still importing JAX or compiling
    else:
        while not (workdir / "checkpoints" / "500").exists():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.02)
        if moment == "mid-chunk":
            time.sleep(0.5)
    proc.kill()
    proc.wait()
    latest = (
        Checkpointer(workdir / "checkpoints").latest_step()
        if (workdir / "checkpoints").exists()
        else None
    )
    assert latest is None or latest < 1500
    done = cli(workdir, *KILL_ARGS, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    like = init_states(make_ofql(tiny_agent_config(), 11, 3), [0, 1])
    assert leaves_equal(final_state(workdir, like)[1], final_state(reference, like)[1])
    ours = json.loads((workdir / "results.json").read_text())
    theirs = json.loads((reference / "results.json").read_text())
    assert ours["evaluations"] == theirs["evaluations"]


CHECKPOINT_WRITER = """
import sys, numpy as np
from ofql_jax.core.checkpointing import Checkpointer
ckpt = Checkpointer(sys.argv[1], max_to_keep=2)
step = (ckpt.latest_step() or 0) + 1
while True:
    state = {"w": np.full((4, 1_000_000), step, np.float32), "step": np.array(step, np.int32)}
    ckpt.save(step, state, {"step": step})
    step += 1
"""


def test_kill_during_checkpoint_writes_leaves_a_restorable_checkpoint(tmp_path):
    directory = tmp_path / "ckpt"
    rng = np.random.default_rng(0)
    unfinished = 0  # kills that left a half-written checkpoint behind
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-c", CHECKPOINT_WRITER, str(directory)], cwd=REPO)
        deadline = time.time() + 120
        while not directory.exists() or not any(p.name.isdigit() for p in directory.iterdir()):
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.01)
        if attempt % 2 == 0:  # aim: kill as soon as a write is seen in progress
            while all(p.name.isdigit() for p in directory.iterdir()):
                assert proc.poll() is None and time.time() < deadline
        else:  # anywhere: writes of 16 MB are under way much of the time
            time.sleep(rng.uniform(0.0, 1.5))
        proc.kill()
        proc.wait()
        unfinished += any(not p.name.isdigit() for p in directory.iterdir())
        ckpt = Checkpointer(directory, max_to_keep=2)
        step = ckpt.latest_step()
        like = {"w": np.zeros((4, 1_000_000), np.float32), "step": np.array(0, np.int32)}
        state, meta = ckpt.restore(step, like=like)
        assert int(state["step"]) == step and meta["step"] == step
        assert np.all(np.asarray(state["w"]) == step), attempt
    assert unfinished >= 3  # the aimed kills really landed inside a write


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_save_a_checkpoint_and_explain(hopper_dataset, tmp_path, sig):
    workdir = tmp_path / "sig"
    args = cli_args(
        workdir,
        "--config.num_steps=100000",
        "--config.steps_per_call=100",
        "--config.batch_size=64",
        "--config.checkpoint_every=50000",
        "--config.eval_episodes=0",
        "--config.num_seeds=1",
    )
    proc = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while not (workdir / "config.json").exists():  # written just before training starts
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    time.sleep(3)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert signal.Signals(sig).name in stderr
    assert "re-run the same command to resume" in stderr.splitlines()[-1]
    step = Checkpointer(workdir / "checkpoints").latest_step()
    assert step is not None and 0 < step < 100000 and step % 100 == 0


STOP_ARGS = [
    "--config.num_seeds=2",
    "--config.num_steps=20",
    "--config.steps_per_call=10",
    "--config.eval_every=10",
    "--config.checkpoint_every=20",
    "--config.batch_size=32",
    "--config.eval_episodes=100",  # 50 waves of 4 envs: seconds, long enough to interrupt
    "--config.eval_max_envs=4",
    "--config.eval_candidates=4",
    "--config.progress=True",  # the evaluation's wave bar says when it has started
]


def tb_scalars(workdir: Path) -> dict[str, dict]:
    """Every TensorBoard point of every run directory, timings left out."""
    runs = sorted({p.parent for p in (workdir / "tb").rglob("events.out.tfevents.*")})
    return {
        str(run.relative_to(workdir)): {
            tag: series for tag, series in read_scalars(run).items() if not tag.startswith("perf/")
        }
        for run in runs
    }


def test_a_stop_during_an_evaluation_abandons_it_and_the_resumed_run_does_it_first(
    hopper_dataset, tmp_path
):
    """SIGTERM to the run's process group (its evaluation workers too, as a scheduler sends
    it) while step 10 is evaluated: exit 2 within seconds with a checkpoint at step 10 (not a
    checkpoint step), and the resumed run evaluates step 10 before training on, so its
    results, TensorBoard scalars and final state equal an uninterrupted run's."""
    reference = tmp_path / "reference"
    done = cli(reference, *STOP_ARGS, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    workdir = tmp_path / "stopped"
    args = cli_args(workdir, *STOP_ARGS, "--config.eval_workers=2")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(
        lambda: os.read(proc.stderr.fileno(), 4096), b"")), daemon=True)  # fmt: skip
    reader.start()
    deadline = time.monotonic() + 300
    while b"evaluation at step 10" not in b"".join(chunks):
        assert proc.poll() is None and time.monotonic() < deadline, b"".join(chunks)[-2000:]
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGTERM)
    sent = time.monotonic()
    proc.wait(timeout=120)
    waited = time.monotonic() - sent
    reader.join(10)
    stderr = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 2, stderr[-2000:]
    assert waited < 10, waited  # abandoned, not finished (the evaluation alone takes longer)
    last = stderr.splitlines()[-1]
    assert "at step 10, abandoning its evaluation" in last and "re-run the same command" in last
    assert Checkpointer(workdir / "checkpoints").all_steps() == [10]
    assert not (workdir / "results.json").exists()

    done = cli(workdir, *STOP_ARGS, "--config.eval_workers=2", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Evaluating step 10 first" in done.stdout
    ours = json.loads((workdir / "results.json").read_text())
    theirs = json.loads((reference / "results.json").read_text())
    assert [e["step"] for e in ours["evaluations"]] == [10, 20]
    for key in ("evaluations", "final_scores", "final_scores_one_step", "mean", "diagnostics"):
        assert ours[key] == theirs[key], key
    assert tb_scalars(workdir) == tb_scalars(reference)
    like = init_states(make_ofql(tiny_agent_config(), 11, 3), [0, 1])
    assert leaves_equal(final_state(workdir, like)[1], final_state(reference, like)[1])


def test_a_stop_during_the_final_evaluation_is_resumed_by_that_evaluation(hopper_dataset, tmp_path):
    """The last step's evaluation abandoned (the preempted 100k case): the checkpoint of that
    step stays, and the resumed run, with no step left to train, evaluates and finishes."""
    config = small_config(num_steps=20)
    reference = Experiment(config, tmp_path / "reference").run()
    exp = Experiment(config, tmp_path / "run")
    evaluate = exp.setup.evaluator.evaluate

    def signal_then_evaluate(*args, **kwargs):  # SIGTERM arrives as the evaluation starts
        os.kill(os.getpid(), signal.SIGTERM)
        return evaluate(*args, **kwargs)

    exp.setup.evaluator.evaluate = signal_then_evaluate
    with pytest.raises(StoppedError, match="at step 20, abandoning its evaluation"):
        exp.run()
    assert Checkpointer(tmp_path / "run" / "checkpoints").all_steps() == [20]
    assert not (tmp_path / "run" / "results.json").exists()
    for _ in range(2):  # resumed, then re-run once finished: the same results
        results = Experiment(config, tmp_path / "run").run()
        for key in ("evaluations", "final_scores", "final_scores_one_step", "diagnostics"):
            assert results[key] == reference[key], key
    assert tb_scalars(tmp_path / "run") == tb_scalars(tmp_path / "reference")


def test_results_record_versions_backend_and_dataset_hash(hopper_dataset, tmp_path):
    results = Experiment(small_config(num_steps=10, eval_episodes=0), tmp_path / "w").run()
    for package in (
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "orbax-checkpoint",
        "minari",
        "gymnasium",
        "mujoco",
    ):
        assert results["versions"][package], package
    assert results["cpu"]
    assert results["device_kind"] == jax.devices()[0].device_kind
    assert (
        results["backend"] == jax.default_backend()
        and results["device_count"] == jax.device_count()
    )
    assert results["dataset_id"] == DATASET and len(results["dataset_sha256"]) == 64
    assert results["matmul_precision"] == "highest" == results["config"]["matmul_precision"]
    again = Experiment(small_config(num_steps=10, eval_episodes=0), tmp_path / "w2")
    assert again.setup.run_data.sha256 == results["dataset_sha256"]  # same data, same hash
    again.close()

"""The multi-host path, run as two processes on this machine (CPU devices, Gloo, loopback).

``--config.distributed=True`` with ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
``JAX_PROCESS_ID``: the seeds are split over the processes' devices, only process 0 logs,
evaluates and writes, every process writes and restores its part of each checkpoint, and a
run whose processes were all killed resumes and ends with the numbers of a one-process run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from test_train import DATASET, REPO, TINY

STEPS = 300
RUN = [
    "--config=experiments/d4rl.py:hopper-medium",
    f"--config.dataset_id={DATASET}",
    *TINY,
    "--config.num_seeds=4",
    f"--config.num_steps={STEPS}",
    "--config.batch_size=32",
    "--config.steps_per_call=10",
    "--config.checkpoint_every=20",
    "--config.checkpoints_to_keep=2",
    "--config.eval_every=0",  # at the end
    "--config.eval_episodes=2",
    "--config.eval_candidates=4",
    "--config.progress=False",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(workdir: Path, processes: int, logs: Path) -> list[subprocess.Popen]:
    port = _free_port()
    procs = []
    for rank in range(processes):
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        if processes > 1:
            env |= dict(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                        JAX_NUM_PROCESSES=str(processes), JAX_PROCESS_ID=str(rank))  # fmt: skip
        args = [sys.executable, "-m", "ofql_jax.main", *RUN, f"--workdir={workdir}"]
        if processes > 1:
            args.append("--config.distributed=True")
        with open(logs / f"{workdir.name}.{rank}.log", "a") as out:  # the child keeps its copy
            procs.append(subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=out))
    return procs


def _wait(procs: list[subprocess.Popen], timeout: float = 300) -> list[int]:
    deadline = time.monotonic() + timeout
    return [p.wait(timeout=max(deadline - time.monotonic(), 1)) for p in procs]


def _checkpoints(workdir: Path) -> list[int]:
    folder = workdir / "checkpoints"
    return (
        sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.exists() else []
    )


def test_two_processes_split_seeds_resume_after_kill_and_match_one_process(
    hopper_dataset, tmp_path
):
    logs = tmp_path / "logs"
    logs.mkdir()
    single = tmp_path / "single"
    assert _wait(_start(single, 1, logs)) == [0]

    multi = tmp_path / "multi"
    procs = _start(multi, 2, logs)
    deadline = time.monotonic() + 240
    while not _checkpoints(multi) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.05)
    for p in procs:  # every process dies at once, as on a preempted allocation
        p.send_signal(signal.SIGKILL)
    _wait(procs)
    killed_at = _checkpoints(multi)
    assert killed_at and killed_at[-1] < STEPS, f"no mid-run checkpoint: {killed_at}"
    assert not (multi / "results.json").exists()

    assert _wait(_start(multi, 2, logs)) == [0, 0]
    main_log = (logs / "multi.0.log").read_text()
    other_log = (logs / "multi.1.log").read_text()
    assert "Resuming from" in main_log and "final score" in main_log
    # Only process 0 logs, evaluates and writes.
    assert "score" not in other_log and "Resuming" not in other_log, other_log[-2000:]

    ref = json.loads((single / "results.json").read_text())
    got = json.loads((multi / "results.json").read_text())
    assert got["steps"] == ref["steps"] == STEPS
    assert got["device_count"] == 2 and ref["device_count"] == 1
    np.testing.assert_allclose(got["final_scores"], ref["final_scores"], rtol=1e-4)
    for name, values in ref["diagnostics"].items():
        np.testing.assert_allclose(got["diagnostics"][name], values, rtol=1e-3, atol=1e-6,
                                   err_msg=name)  # fmt: skip

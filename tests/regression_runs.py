"""Fixed small runs whose numbers must not change when the code is reorganised (issue 36).

Three CLI runs (OFQL, DQL, flow BC; 2 seeds, 200 steps, tiny networks, the tests' small Hopper
dataset) and one OFQL sweep (eta 0.1, 0.3 x 2 seeds). Every field is given on the command
line, agent fields included, so a change of defaults (by the learning work) does not move
them. Each run is summarised by a fingerprint: its evaluations, the TensorBoard scalars at
its last step (timings left out) and a hash of the final checkpoint's arrays.
``tests/regression/baseline.json`` holds the fingerprints recorded before the redesign,
one entry per JAX version (numerics may differ between versions; within one they must be
bit-identical). ``tests/regression/saved_run`` is the OFQL run saved at step 100 by that
code: resumed to step 200 it must reach the uninterrupted run's fingerprint.

Record (only when a change of numbers is intended, or for a new JAX version):

    python tests/regression_runs.py --record
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BASELINE = HERE / "regression" / "baseline.json"
SAVED_RUN = HERE / "regression" / "saved_run"
DATASET = "test/hopper/random-v0"
# The tests' compile setting (tests/conftest.py): numbers are recorded and checked with it.
XLA_FLAGS = "--xla_backend_optimization_level=0"

COMMON = {
    "dataset_id": DATASET,
    "data_source": "auto",
    "download": False,
    "reward_tune": "none",
    "normalize_with_task": False,
    "seed": 0,
    "num_seeds": 2,
    "num_steps": 200,
    "batch_size": 32,
    "steps_per_call": 50,
    "eval_every": 100,
    "eval_episodes": 2,
    "eval_candidates": 4,
    "eval_actor": "ema",
    "eval_noise_temperature": 0.5,
    "eval_q_temperature": 100.0,
    "eval_one_step": True,
    "eval_one_candidate": False,
    "eval_workers": 1,
    "eval_max_envs": 150,
    "num_devices": 0,
    "seeds_per_group": 0,
    "distributed": False,
    "compilation_cache_dir": "auto",
    "matmul_precision": "highest",
    "checkpoint_every": 100,
    "checkpoints_to_keep": 3,
    "checkpoint_keep_period": 0,
    "halt_on_divergence": False,
    "progress": False,
    "wandb_project": "",
}
TINY = {
    "activation": "mish",
    "hidden_dims": (32, 32),
    "init_scheme": "pytorch",
    "actor_lr": 0.0003,
    "lr_decay": False,
    "grad_norm": 9.0,
    "ema_decay": 0.995,
    "ema_every": 5,
    "ema_start": 50,  # inside the 200 steps, so the EMA is exercised
    "matmul_dtype": "float32",
}
CRITIC = {
    "critic_hidden_dims": (32, 32),
    "critic_lr": 0.0003,
    "discount": 0.99,
    "tau": 0.005,
    "max_q_backup": False,
    "num_backup_samples": 10,
    "q_norm_eps": 0.0,
}
MEANFLOW = {
    "time_dim": 8,
    "flow_ratio": 0.5,
    "endpoint_ratio": 0.0,
    "uniform_ratio": 0.0,
    "bc_loss_reduction": "sum",
    "loss_weight_eps": 0.001,
    "loss_weight_power": 0.0,
    "second_time": "r",
    "time_mean": -0.4,
    "time_std": 1.0,
    "time_scale": 1.0,
}
OFQL = {**TINY, **CRITIC, **MEANFLOW, "eta": 0.3}
DQL = {
    **TINY,
    **CRITIC,
    "time_dim": 16,
    "eta": 1.0,
    "beta_schedule": "vp",
    "ema_warmup": "copy",
    "eval_ddim1": True,
    "num_diffusion_steps": 5,
    "sampler": "ddpm",
    "sampling_steps": 0,
}
FLOW_BC = {**TINY, **MEANFLOW}

RUNS: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    # name: (algorithm, agent fields, sweep)
    "ofql": ("ofql", OFQL, {}),
    "dql": ("dql", DQL, {}),
    "flow_bc": ("flow_bc", FLOW_BC, {}),
    "ofql_sweep": ("ofql", OFQL, {"eta": "0.1,0.3"}),
}


def _flag(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ",".join(str(v) for v in value) + ")"
    return str(value)


def command(name: str, workdir: Path, **overrides: Any) -> list[str]:
    """The CLI command of run ``name`` (``overrides`` replace top-level fields)."""
    algorithm, agent, sweep = RUNS[name]
    fields = {**COMMON, **overrides}
    args = [
        sys.executable,
        "-m",
        "ofql_jax.main",
        "--config=experiments/d4rl.py:hopper-medium,paper",
        f"--config.algorithm={algorithm}",
        f"--workdir={workdir}",
    ]
    args += [f"--config.{k}={_flag(v)}" for k, v in fields.items()]
    args += [f"--config.agent.{k}={_flag(v)}" for k, v in agent.items()]
    args += [f"--config.sweep.{k}={v}" for k, v in sweep.items()]
    return args


def run(name: str, workdir: Path, env: dict[str, str], **overrides: Any) -> None:
    done = subprocess.run(
        command(name, workdir, **overrides),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"run {name} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def environment(minari_dir: Path, cache_dir: Path) -> dict[str, str]:
    """The subprocess environment: the tests' dataset path and compile flags, its own cache."""
    env = dict(os.environ)
    env["MINARI_DATASETS_PATH"] = str(minari_dir)
    env["XLA_FLAGS"] = XLA_FLAGS
    env["OFQL_JAX_CACHE"] = str(cache_dir)
    env["JAX_COMPILATION_CACHE_DIR"] = str(cache_dir / "xla")
    return env


def make_dataset(minari_dir: Path) -> None:
    """The tests' 400-step random Hopper dataset (tests/conftest.py's ``hopper_dataset``)."""
    os.environ["MINARI_DATASETS_PATH"] = str(minari_dir)
    sys.path.insert(0, str(HERE))
    from minari_factory import make_hopper_dataset

    make_hopper_dataset(
        DATASET, num_steps=400, max_episode_steps=40, ref_scores=(-20.272305, 3234.3)
    )


def _scalars(run_dir: Path) -> dict[str, float]:
    """TensorBoard scalars at the last step of one event directory, timings left out."""
    from ofql_jax.results.writers import read_scalars

    out = {}
    for tag, series in read_scalars(run_dir).items():
        if tag.startswith("perf/"):
            continue
        out[tag] = series[-1][1]
    return out


def _checkpoint_hash(workdir: Path) -> str:
    """SHA-256 of the final checkpoint's arrays (sorted paths, dtype, shape and bytes)."""
    import orbax.checkpoint as ocp

    steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    path = workdir / "checkpoints" / str(steps[-1]) / "state"
    tree = ocp.StandardCheckpointer().restore(path)
    import jax

    digest = hashlib.sha256()
    for key, leaf in sorted(
        (jax.tree_util.keystr(k), v) for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]
    ):
        a = np.asarray(leaf)
        digest.update(key.encode())
        digest.update(str(a.dtype).encode())
        digest.update(str(a.shape).encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def fingerprint(workdir: Path) -> dict[str, Any]:
    """What must not change: evaluations, last TensorBoard scalars, checkpoint arrays."""
    results = json.loads((workdir / "results.json").read_text())
    tb = {
        str(d.relative_to(workdir / "tb")): _scalars(d)
        for d in sorted({p.parent for p in (workdir / "tb").rglob("events.out.tfevents.*")})
    }
    return {
        "final_scores": results["final_scores"],
        "evaluations": results["evaluations"],
        "tensorboard": tb,
        "checkpoint_sha256": _checkpoint_hash(workdir),
    }


def baseline_key(with_cpu: bool = True) -> str:
    """``jax <version> <backend> on <CPU model (vector extension)>``: bit for bit holds only
    under all three (the same JAX on another CPU compiles other kernels: seen on 2026-12-07,
    jax 0.10.2 on an AMD EPYC with AVX2 against the entry recorded on the machine before).
    Entries recorded before the CPU was part of the key have none; they are compared at a
    tolerance."""
    import jax

    from ofql_jax.core.versions import cpu_model

    key = f"jax {jax.__version__} {jax.default_backend()}"
    return f"{key} on {cpu_model()}" if with_cpu else key


def record() -> None:
    """Run everything with this code and store the fingerprints and the saved run."""
    with tempfile.TemporaryDirectory(prefix="ofql_jax_regression_") as tmp:
        tmp = Path(tmp)
        make_dataset(tmp / "minari")
        env = environment(tmp / "minari", tmp / "cache")
        prints = {}
        for name in RUNS:
            run(name, tmp / name, env)
            prints[name] = fingerprint(tmp / name)
            print(f"{name}: {prints[name]['final_scores']}")
        # The saved run: the OFQL run stopped at step 100 (its checkpoint and files).
        run("ofql", tmp / "saved", env, num_steps=100)
        stored = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
        stored[baseline_key()] = prints
        BASELINE.parent.mkdir(parents=True, exist_ok=True)
        BASELINE.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        if not SAVED_RUN.exists():
            shutil.copytree(tmp / "saved", SAVED_RUN, ignore=shutil.ignore_patterns("*.lock"))
        print(f"recorded {baseline_key()} in {BASELINE}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="record the baseline")
    if parser.parse_args().record:
        record()
    else:
        parser.print_help()

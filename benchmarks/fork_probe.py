"""Continue a run's checkpoint with other swept hyperparameters, outside the run, and watch.

A cheap test of a remedy on a long run without retraining it: load the run at a checkpoint
(``load_run``), set hyperparameters that live in the agent state (the agent's SWEEPABLE
ones, e.g. OFQL's ``endpoint_ratio``), train on with the library's own jitted, vmapped
chunk on the run's dataset, log the agent's diagnostics every chunk, and evaluate at the end
with the run's protocol (N candidates and N = 1). The run's own workdir is only read.

    python benchmarks/fork_probe.py runs/x/programs/ofql-hopper-medium-expert --step 240000 \
        --set endpoint_ratio=0.05 --updates 20000 --json fork.json
    python benchmarks/fork_probe.py ... --updates 0    # only evaluate the checkpoint as is

The training RNG continues from the checkpoint's, so ``--set`` with the run's own values and
``--updates`` up to the next checkpoint reproduces the run's next checkpoint (to float32
rounding of the chunk sizes); the diagnostics' draws are the run's (seed value, step) ones.
In a sweep program every member gets the ``--set`` values; the JSON's ``members`` names
the rows (e.g. ``eta=0.3/seed_0``) that ``scores`` and ``curve`` hold per member.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.training.experiment import load_run_data
from ofql_jax.training.loading import load_run
from ofql_jax.training.trainer import MultiSeedTrainer, make_diagnostics

SHOWN = (
    "diag/q_policy_mean", "diag/q_data_mean", "diag/saturation", "diag/one_step_mse_to_data",
    "diag/two_step_mse_to_data", "diag/bc_loss_endpoint", "diag/action_ratio",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", help="a run's workdir (a suite's programs/<name>)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint (default: newest)")
    parser.add_argument("--set", default="", help="NAME=VALUE,... agent hparams to change")
    parser.add_argument("--updates", type=int, default=20_000, help="updates per seed")
    parser.add_argument("--chunk", type=int, default=1_000, help="updates per jitted call")
    parser.add_argument("--episodes", type=int, default=None, help="per seed (run's default)")
    parser.add_argument("--json", default=None, help="write diagnostics and scores here")
    args = parser.parse_args()
    run = load_run(args.workdir, args.step)
    changes = {k: float(v) for k, v in (p.split("=", 1) for p in args.set.split(",") if p)}
    hparams = dict(run.states.hparams)
    for name, value in changes.items():
        if name not in hparams:
            raise SystemExit(f"{name} is not a hyperparameter in the state: {sorted(hparams)}")
        hparams[name] = jnp.full_like(hparams[name], value)
    states = run.states.replace(hparams=hparams)
    data = load_run_data(run.config, None)
    device_data = jax.device_put(data.transitions)
    trainer = MultiSeedTrainer(run.agent, run.config.batch_size)
    diagnose = make_diagnostics(run.agent)
    seeds = jnp.asarray([m.seed for m in run.members], jnp.uint32)
    curve, step = [], run.step
    start = time.time()
    for _ in range(args.updates // args.chunk):
        states, _ = trainer(states, device_data, args.chunk)
        step += args.chunk
        diag = jax.device_get(diagnose(states, device_data, seeds, jnp.uint32(step)))
        row = {"step": step, **{k: np.asarray(v).tolist() for k, v in diag.items()}}
        curve.append(row)
        shown = "  ".join(
            f"{k.removeprefix('diag/')} {np.mean(diag[k]):.3g}" for k in SHOWN if k in diag
        )
        print(f"step {step}: {shown}  ({time.time() - start:.0f} s)", flush=True)
    forked = dataclasses.replace(run, states=states, step=step)
    evaluation = forked.evaluate(episodes=args.episodes, progress=True)
    scores = {name: v["scores"] for name, v in evaluation["variants"].items()}
    labels = [m.label for m in run.members]
    for name, values in scores.items():
        each = dict(zip(labels, np.round(values, 1).tolist(), strict=True))
        print(f"step {step} {name}: {np.mean(values):.1f} +- {np.std(values):.1f} {each}")
    if args.json:
        out = {
            "workdir": str(args.workdir), "from_step": run.step, "set": changes,
            "updates": args.updates, "members": labels,
            "scores": scores, "curve": curve,
        }  # fmt: skip
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

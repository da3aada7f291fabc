"""Evaluate a checkpoint under other selection settings than its run's protocol.

The paper's protocol draws N = 50 candidates from the EMA actor with the noise scaled by 0.5
and picks one from softmax(w Q); a score under it mixes the actor, the critics and those
settings. This probe loads a run's checkpoint (``load_run``), replaces the evaluation's
``eval_noise_temperature``, ``eval_q_temperature`` and/or ``eval_actor`` and evaluates every
member at ``--candidates`` N, on the episode starts of the run's own evaluation at that step.
The run's workdir is only read.

    python benchmarks/protocol_probe.py runs/x/programs/dql5-halfcheetah-medium-expert \
        --step 100000 --set eval_noise_temperature=1.0 --candidates 50 --json probe.json

With no ``--set`` it reproduces the run's own N-candidate scores at that step.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ofql_jax.results.writers import write_json_atomic
from ofql_jax.training.loading import load_run

SETTABLE = {"eval_noise_temperature": float, "eval_q_temperature": float, "eval_actor": str}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", help="a run's workdir (a suite's programs/<name>)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint (default: newest)")
    parser.add_argument("--set", default="", help=f"NAME=VALUE,... of {', '.join(SETTABLE)}")
    parser.add_argument("--candidates", type=int, default=None, help="N (the run's protocol)")
    parser.add_argument("--episodes", type=int, default=None, help="per member (run's default)")
    parser.add_argument("--json", default=None, help="write the scores here")
    args = parser.parse_args()
    run = load_run(args.workdir, args.step)
    changes = {}
    for item in filter(None, args.set.split(",")):
        name, value = item.split("=", 1)
        if name not in SETTABLE:
            raise SystemExit(f"--set {name}: choose among {', '.join(SETTABLE)}")
        changes[name] = SETTABLE[name](value)
    # What --set names wins in every variant, the N = 1 variant's noise x 1 too, so N = 1 at
    # noise x 0.5 is one of N = 50's candidates.
    forced = {k.removeprefix("eval_"): v for k, v in changes.items()}
    n = args.candidates or run.config.eval_candidates
    start = time.time()
    res = run.evaluate(None, args.episodes, n, progress=True, **forced)
    variant = next(iter(res["variants"].values()))
    labels = [m["label"] for m in res["members"]]
    print(f"{run.workdir} at {run.step}, N = {n}, {changes or 'the run protocol'} "
          f"({time.time() - start:.0f} s):")  # fmt: skip
    for label, score in zip(labels, variant["scores"], strict=True):
        print(f"  {label:>16}: {score:.1f}")
    if args.json:
        out = {
            "workdir": str(run.workdir), "step": run.step, "candidates": n, "set": changes,
            "settings": variant["settings"], "episodes": res["episodes"],
            "scores": dict(zip(labels, variant["scores"], strict=True)),
            "command": " ".join(["python benchmarks/protocol_probe.py", *sys.argv[1:]]),
        }  # fmt: skip
        write_json_atomic(Path(args.json), out)
        print(f"Wrote {args.json}")


if __name__ == "__main__":
    main()

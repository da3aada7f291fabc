"""How much the critic's choice among N candidates helps: re-evaluate a finished run's
checkpoint with the protocol's N candidates at several softmax weights w.

The protocol draws one of N candidates from ``softmax(w * Q)`` (``eval_q_temperature``);
w = 0 is a uniform pick, i.e. one action of the evaluated actor at the protocol's noise
temperature with no critic at all, and a large w is an argmax over the critic. If the score
falls as w grows, the critic ranks the candidates worse than chance. Everything else (actor,
noise temperature, episodes, seeds, environment seeds) is the run's own evaluation, so the
run's w reproduces its final scores exactly.

Usage:
    python benchmarks/selection_temperature.py <workdir> --weights 100,10,1,0
    python benchmarks/selection_temperature.py <workdir> --weights 0 --step 50000
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ofql_jax import load_run
from ofql_jax.core.errors import OFQLError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", help="a finished run's --workdir (agents with a critic)")
    parser.add_argument("--weights", default="100,10,1,0", help="softmax weights w, comma list")
    parser.add_argument("--step", type=int, default=None, help="checkpoint (default: newest)")
    args = parser.parse_args(argv)
    try:
        weights = [float(w) for w in args.weights.split(",") if w.strip()]
        run = load_run(args.workdir, step=args.step)
        n = int(run.config.eval_candidates)
        if n < 2 or not run.agent.has_critic:
            raise OFQLError(f"{args.workdir} has no critic-scored candidates to re-weigh.")
        labels = [m.label for m in run.members]
        print(f"{args.workdir} at step {run.step}: N = {n}, the run's w = "
              f"{run.config.eval_q_temperature:g}; members {labels}")  # fmt: skip
        print("| w | mean ± std over members | per member | seconds |\n|---|---|---|---|")
        for w in weights:
            with run.config.unlocked():
                run.config.eval_q_temperature = w
            started = time.perf_counter()
            out = run.evaluate(num_candidates=n)
            scores = np.asarray(next(iter(out["variants"].values()))["scores"], float)
            print(f"| {w:g} | {scores.mean():.1f} ± {scores.std():.1f} | "
                  f"{', '.join(f'{s:.1f}' for s in scores)} | "
                  f"{time.perf_counter() - started:.0f} |", flush=True)  # fmt: skip
    except (OFQLError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

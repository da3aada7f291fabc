"""Does the BC term pull the acting action back against the Q term, or is it batch noise?

``diag/action_cos`` (``ofql_jax.maths.diagnostics.action_moves``) is the cosine between how
the Q term's and the BC term's gradients on one batch move the acting actions. On the
halfcheetah medium-expert replica it is about -0.5 for DQL(5) and about 0 for OFQL at every
eta, while OFQL's BC gradient moves the action ten times as far per batch. A cosine near 0
can mean a BC gradient with no restoring part, or a restoring part buried in the noise of
one batch's draws (MeanFlow's (t, r, e) per sample). The noise of a batch gradient shrinks
as 1 / sqrt(B) and its mean does not, so this probe calls the agent's own ``diagnose`` at a
checkpoint on growing batches of the member's dataset (B = 1,024, the run's diagnostic
batch, up to ``--batch_sizes``' largest), several independent batches each, and reports per
member and B: the mean cosine, and the BC and Q moves. A restoring BC term shows as a
cosine that falls toward a negative limit as B grows.

    python benchmarks/bc_pull.py runs/x/programs/dql5-halfcheetah-medium-expert --step 100000
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from probe_cli import checkpoint_parser, chosen_members, finish

from ofql_jax.core.types import Transitions
from ofql_jax.training.experiment import load_run_data
from ofql_jax.training.loading import load_run

KEYS = ("diag/action_cos", "diag/action_move_bc", "diag/action_move_q", "diag/action_ratio")


def batch_of(data: Transitions, idx: np.ndarray) -> Transitions:
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[idx]), data)


def pull_by_batch_size(diagnose, state, data: Transitions, sizes, repeats: int, seed: int):
    """``{B: {key: [repeats]}}``: ``diagnose(state, batch, key)`` on ``repeats`` independent
    batches of each size B (indices with replacement, as training samples)."""
    rng = np.random.default_rng(seed)
    out = {}
    for b in sizes:
        rows = {k: [] for k in KEYS}
        for r in range(repeats):
            idx = rng.integers(0, data.observations.shape[0], b)
            got = diagnose(state, batch_of(data, idx), jax.random.key(seed * 1000 + r))
            for k in KEYS:
                rows[k].append(float(got[k]))
        out[int(b)] = rows
    return out


def main() -> None:
    parser = checkpoint_parser(__doc__)
    parser.add_argument("--batch_sizes", default="1024,4096,16384,65536")
    parser.add_argument("--repeats", type=int, default=4, help="independent batches per size")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    run = load_run(args.workdir, args.step)
    if run.agent.diagnose is None:
        sys.exit(f"error: {run.agent.name} has no diagnose: nothing to measure.")
    data = load_run_data(run.config, None).transitions
    sizes = [int(x) for x in args.batch_sizes.split(",") if x.strip()]
    diagnose = jax.jit(run.agent.diagnose)
    chosen = chosen_members(run, args.members)
    out = {"workdir": str(run.workdir), "step": run.step, "batch_sizes": sizes,
           "repeats": args.repeats, "members": {}}  # fmt: skip
    for label in chosen:
        start = time.time()
        row = run.member_index(member=label)
        state = jax.tree.map(lambda x, i=row: x[i], run.states)
        got = pull_by_batch_size(diagnose, state, data, sizes, args.repeats,
                                 seed=run.members[row].seed)  # fmt: skip
        out["members"][label] = got
        for b, rows in got.items():
            cos = np.asarray(rows["diag/action_cos"])
            print(f"{label:>16} B = {b:>6}: cos {cos.mean():+.3f} +- "
                  f"{cos.std(ddof=1) / np.sqrt(len(cos)):.3f}, BC move "
                  f"{np.mean(rows['diag/action_move_bc']):.3g}, Q move "
                  f"{np.mean(rows['diag/action_move_q']):.3g}", flush=True)  # fmt: skip
        print(f"{label:>16} ({time.time() - start:.0f} s)", flush=True)
    finish(out, "bc_pull.py", args.json)


if __name__ == "__main__":
    main()

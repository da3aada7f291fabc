"""The actor's Q-term gradient of a trained run in float32 against float64.

Loads a run's checkpoint (``ofql_jax.training.loading.load_run``) and, on batches of its own
dataset,
prints the agent's ``diagnose`` values ``q_grad_norm`` (the norm of the Q term's gradient
in the policy's parameters, which flows through the critics' dQ/da) and ``bc_grad_norm``,
computed in float32 or, with ``--x64``, with the state, the batch and the noise in float64.
The noise draws differ between the two precisions, so compare means over batches.
``--activation=jax`` swaps this project's Mish for ``jax.nn.mish``.

This is how the CPU's float32 defect of the old Mish derivative was found (docs/algorithm.md,
section 9): on a walker2d checkpoint at 20k, float32 0.160 against float64 0.057.

Usage:
    python benchmarks/grad_precision.py RUN_DIR --step 20000              # float32
    python benchmarks/grad_precision.py RUN_DIR --step 20000 --x64        # float64
    python benchmarks/grad_precision.py RUN_DIR --activation jax          # jax.nn.mish

RUN_DIR is a ``python -m ofql_jax.main`` workdir (a suite's: ``<suite>/programs/<program>``).
"""

from __future__ import annotations

import argparse
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--step", type=int, default=None, help="checkpoint (default: newest)")
    parser.add_argument("--member", type=int, default=0, help="member of the run (seed x setting)")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--x64", action="store_true", help="float64 state, batch and noise")
    parser.add_argument("--activation", choices=("ofql", "jax"), default="ofql",
                        help="ofql: ofql_jax.maths.networks.mish; jax: jax.nn.mish")  # fmt: skip
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", args.x64)
    import jax.numpy as jnp
    import numpy as np

    import ofql_jax.maths.networks as networks
    from ofql_jax.core.errors import OFQLError
    from ofql_jax.training.experiment import load_run_data
    from ofql_jax.training.loading import load_run

    if args.activation == "jax":
        networks.ACTIVATIONS["mish"] = jax.nn.mish
    try:
        run = load_run(args.run_dir, args.step)
    except OFQLError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    data = load_run_data(run.config, None)
    dtype = jnp.float64 if args.x64 else jnp.float32

    def cast(tree):
        return jax.tree.map(
            lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
        )

    state = cast(jax.tree.map(lambda x: x[args.member], run.states))
    diagnose = jax.jit(run.agent.diagnose)
    rng = np.random.default_rng(0)
    n = len(data.transitions.observations)
    q, bc = [], []
    for b in range(args.batches):
        idx = rng.integers(0, n, run.config.batch_size)
        batch = cast(jax.tree.map(lambda x, i=idx: np.asarray(x)[i], data.transitions))
        out = diagnose(state, batch, jax.random.key(b))
        q.append(float(out["diag/q_grad_norm"]))
        bc.append(float(out["diag/bc_grad_norm"]))
        print(f"batch {b}: q_grad_norm {q[-1]:.4f}  bc_grad_norm {bc[-1]:.4f}", flush=True)
    where = f"{dtype.__name__}, {args.activation} mish, step {run.step}, member {args.member}"
    print(f"{where}: q_grad_norm {np.mean(q):.4f} +- {np.std(q):.4f}, "
          f"bc_grad_norm {np.mean(bc):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()

"""The divergence mechanism in seconds: OFQL on a bandit whose value rises outside the data.

``ofql_jax.data.synthetic.linear_bandit``: reward ``1 + a``, dataset actions ``|a| <= 0.3``
(mean |a| 0.08), discount 0, so the value bound is 1.3 while a critic that extrapolates
linearly values a = 1 at about 2. For each (eta, endpoint_ratio) the script trains two seeds
(networks 2 x 32, lr 1e-3, batch 64) in one vmapped program and prints, after every
``--chunk`` updates, the critics' mean value of the policy's own actions (``diag/q_policy_mean``,
averaged over seeds), the policy's mean |a| and whether the value-divergence monitor fired.

``--algorithm dql`` (or ``fbrac``) trains that agent instead, at its default T = 5 and the same
network sizes, eta values and learning rates (``--endpoint``/``--uniform`` are OFQL's and are
ignored): the same data, the same critics, a policy class whose BC loss trains every step
of the chain it acts with.

Usage:
    python benchmarks/divergence_toy.py                        # the grid used in docs/algorithm.md
    python benchmarks/divergence_toy.py --eta 0.3 --endpoint 0 0.25 --chunks 4
    python benchmarks/divergence_toy.py --algorithm dql --eta 0 0.1 0.3 30
"""

from __future__ import annotations

import argparse
import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.agents import AGENTS
from ofql_jax.data.synthetic import linear_bandit
from ofql_jax.maths.diagnostics import outside_bounds, value_bounds
from ofql_jax.training.trainer import diagnosed_chunks


def run(
    eta: float,
    endpoint: float,
    chunks: int,
    chunk: int,
    uniform: float = 0.0,
    algorithm: str = "ofql",
) -> list[dict]:
    spec = AGENTS[algorithm]
    c = spec.default_config()
    c.hidden_dims, c.critic_hidden_dims = (32, 32), (32, 32)
    c.discount, c.actor_lr, c.critic_lr, c.eta = 0.0, 1e-3, 1e-3, eta
    if algorithm == "ofql":
        c.time_dim, c.endpoint_ratio, c.uniform_ratio = 8, endpoint, uniform
    data = jax.tree.map(jnp.asarray, linear_bandit())
    bounds = value_bounds(np.asarray(data.rewards), np.asarray(data.dones), None, c.discount)
    agent = spec.make(c, 4, 1, chunks * chunk)
    rows = []
    for i, d in enumerate(diagnosed_chunks(agent, data, [0, 1], 64, chunk, chunks, 512)):
        rows.append(
            dict(
                step=(i + 1) * chunk,
                q=float(d["diag/q_policy_mean"].mean()),
                action_abs=float(d["diag/action_abs_mean"].mean()),
                saturation=float(d["diag/saturation"].mean()),
                flagged=int(outside_bounds(d["diag/q_policy_mean"], bounds).sum()),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eta", type=float, nargs="+", default=[0.0, 0.01, 0.1, 0.3, 30.0])
    parser.add_argument("--endpoint", type=float, nargs="+", default=[0.0, 0.1, 0.25])
    parser.add_argument("--uniform", type=float, nargs="+", default=[0.0])
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=200, help="updates between diagnoses")
    parser.add_argument("--algorithm", default="ofql", choices=["ofql", "dql", "fbrac"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.algorithm != "ofql":  # the sampler options are OFQL's
        args.endpoint, args.uniform = [0.0], [0.0]
    print(f"{args.algorithm}; bound 1.3 (data: mean |a| 0.08, no saturation);")
    print("per chunk: Q / mean|a| / flagged seeds")
    results = {}
    for eta, endpoint, uniform in itertools.product(args.eta, args.endpoint, args.uniform):
        rows = run(eta, endpoint, args.chunks, args.chunk, uniform, args.algorithm)
        key = f"eta={eta:g}"
        if args.algorithm == "ofql":
            key += f",endpoint_ratio={endpoint:g},uniform_ratio={uniform:g}"
        results[key] = rows
        cells = "  ".join(
            f"{r['step']}: {r['q']:.2f}/{r['action_abs']:.2f}/{r['flagged']}" for r in rows
        )
        print(f"{key:<48} {cells}", flush=True)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()

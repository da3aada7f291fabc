"""The divergence mechanism in seconds: OFQL on a bandit whose value rises outside the data.

``ofql_jax.data.synthetic.linear_bandit``: reward ``1 + a``, dataset actions ``|a| <= 0.3``
(mean |a| 0.08), discount 0, so the value bound is 1.3 while a critic that extrapolates
linearly values a = 1 at about 2. For each (eta, endpoint_ratio) the script trains two seeds
(networks 2 x 32, lr 1e-3, batch 64) in one vmapped program and prints, after every
``--chunk`` updates, the critics' mean value of the policy's own actions (``diag/q_policy_mean``,
averaged over seeds), the policy's mean |a| and whether the value-divergence monitor fired.

Usage:
    python benchmarks/divergence_toy.py                        # the grid used in docs/algorithm.md
    python benchmarks/divergence_toy.py --eta 0.3 --endpoint 0 0.25 --chunks 4
"""

from __future__ import annotations

import argparse
import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.agents.ofql import default_config, make_ofql
from ofql_jax.data.synthetic import linear_bandit
from ofql_jax.diagnostics import outside_bounds, value_bounds
from ofql_jax.train import init_states, make_diagnostics, make_train_chunk


def run(eta: float, endpoint: float, chunks: int, chunk: int, uniform: float = 0.0) -> list[dict]:
    c = default_config()
    c.hidden_dims, c.critic_hidden_dims, c.time_dim = (32, 32), (32, 32), 8
    c.discount, c.actor_lr, c.critic_lr = 0.0, 1e-3, 1e-3
    c.eta, c.endpoint_ratio, c.uniform_ratio = eta, endpoint, uniform
    data = jax.tree.map(jnp.asarray, linear_bandit())
    bounds = value_bounds(np.asarray(data.rewards), np.asarray(data.dones), None, c.discount)
    agent = make_ofql(c, 4, 1)
    states = init_states(agent, [0, 1])
    train = jax.jit(jax.vmap(make_train_chunk(agent, 64, chunk), in_axes=(0, None)))
    diagnose = make_diagnostics(agent, 512)
    rows = []
    for i in range(chunks):
        states, _ = train(states, data)
        d = jax.device_get(diagnose(states, data, jnp.asarray([0, 1], jnp.uint32), jnp.uint32(i)))
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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print("bound 1.3 (data: mean |a| 0.08, no saturation); per chunk: Q / mean|a| / flagged seeds")
    results = {}
    for eta, endpoint, uniform in itertools.product(args.eta, args.endpoint, args.uniform):
        rows = run(eta, endpoint, args.chunks, args.chunk, uniform)
        results[f"eta={eta:g},endpoint_ratio={endpoint:g},uniform_ratio={uniform:g}"] = rows
        cells = "  ".join(
            f"{r['step']}: {r['q']:.2f}/{r['action_abs']:.2f}/{r['flagged']}" for r in rows
        )
        print(f"eta {eta:<5g} endpoint {endpoint:<4g} uniform {uniform:<4g} {cells}", flush=True)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()

"""Why ``agent.time_scale`` defaults to 1: larger scales make the MeanFlow JVP target diverge.

Trains flow BC only (eta = 0) for 600 updates on one fixed random batch (obs 11, act 3) with
each time-embedding scale and prints the BC loss every 100 updates. On 2026-11-25 (CPU,
jax 0.10.2) scales 1 and 5 fell from 4.4 to about 2.0; 100 rose to 37 and 1000 to 90,000.

Usage: python benchmarks/time_scale_probe.py [scale ...]
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp

from ofql_jax.agents.ofql import default_config, make_ofql
from ofql_jax.core.types import Transitions


def main(scales: list[float]) -> None:
    n = 256
    k = jax.random.split(jax.random.key(1), 4)
    batch = Transitions(
        jax.random.normal(k[0], (n, 11)),
        jnp.tanh(jax.random.normal(k[1], (n, 3))),
        jax.random.normal(k[2], (n,)),
        jax.random.normal(k[3], (n, 11)),
        jnp.zeros(n),
    )
    for scale in scales:
        config = default_config()
        config.time_scale, config.eta = scale, 0.0
        agent = make_ofql(config, obs_dim=11, act_dim=3)
        state, update, losses = agent.init(jax.random.key(0)), jax.jit(agent.update), []
        for i in range(600):
            state, info = update(state, batch)
            if i % 100 == 0 or i == 599:
                losses.append(round(float(info["actor/bc_loss"]), 3))
        print(f"time_scale {scale:>7}: bc loss {losses}", flush=True)


if __name__ == "__main__":
    main([float(s) for s in sys.argv[1:]] or [1.0, 5.0, 100.0, 1000.0])

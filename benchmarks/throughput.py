"""Throughput of ofql-jax on the current backend, at the paper's sizes and HalfCheetah shapes.

Measures (each repeated, median and spread reported):
  * training updates/s for 1 seed, and seed-updates/s for 1, 4 and 16 seeds in one
    program (a jitted lax.scan of K updates, batches sampled on the device; seeds vmapped
    in groups of ``--seeds_per_group``, 0 = the backend default, 2 on CPU);
  * decisions/s for one state through ``ofql_jax.policy.Policy``: the one-step policy
    (N = 1) and DQL selection (N = 50);
  * actions/s for a batch of 1,024 states (N = 1);
  * compile time of the training chunk;
  * FLOPs per update (XLA cost analysis), the achieved GFLOP/s, and the GFLOP/s of a
    plain [256, 256] x [256, 256] float32 matmul measured in the same run.

Usage:
    python benchmarks/throughput.py            # human-readable table
    python benchmarks/throughput.py --json     # ... and one JSON object as the last line
    python benchmarks/throughput.py --seeds 1 4 --repeats 3 --updates 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.agents.ofql import default_config, make_ofql
from ofql_jax.policy import Policy
from ofql_jax.train import MultiSeedTrainer, init_states
from ofql_jax.types import Transitions

OBS_DIM, ACT_DIM, BATCH, WIDTH = 17, 6, 256, 256  # HalfCheetah shapes, DQL sizes


def _stats(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


def _dataset(n: int = 100_000) -> Transitions:
    k = jax.random.split(jax.random.key(0), 5)
    return Transitions(
        jax.random.normal(k[0], (n, OBS_DIM)),
        jax.random.uniform(k[1], (n, ACT_DIM), minval=-1, maxval=1),
        jax.random.normal(k[2], (n,)),
        jax.random.normal(k[3], (n, OBS_DIM)),
        (jax.random.uniform(k[4], (n,)) < 0.01).astype(jnp.float32),
    )


def bench_training(agent, data, num_seeds: int, updates: int, repeats: int, group: int = 0):
    """Updates/s of the whole program (all seeds step together) and the chunk compile time."""
    trainer = MultiSeedTrainer(agent, BATCH, seeds_per_group=group)
    states = init_states(agent, list(range(num_seeds)))
    states, _ = trainer(states, data, updates)  # compile + warm-up
    jax.block_until_ready(states)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        states, metrics = trainer(states, data, updates)
        jax.block_until_ready((states, metrics))
        rates.append(updates / (time.perf_counter() - start))
    return rates, trainer.compile_seconds


def bench_decisions(agent, state, num_states: int, num_candidates: int, calls: int, repeats: int):
    """Actions/s of ``ofql_jax.policy.Policy`` (one compiled call per decision, host noise)."""
    policy = Policy(agent, state, num_candidates, seed=0)
    obs = np.random.default_rng(0).normal(size=(num_states, OBS_DIM)).astype(np.float32)
    obs = obs[0] if num_states == 1 else obs
    policy(obs)  # compile
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            policy(obs)
        rates.append(calls * num_states / (time.perf_counter() - start))
    return rates


def bench_matmul(repeats: int, chain: int = 200):
    """GFLOP/s of [256, 256] x [256, 256] float32 matmuls chained inside one jitted loop."""
    a = jax.random.normal(jax.random.key(1), (BATCH, WIDTH)) / 16
    w = jax.random.normal(jax.random.key(2), (WIDTH, WIDTH)) / 16

    @jax.jit
    def loop(x):
        return jax.lax.fori_loop(0, chain, lambda _, y: y @ w, x)

    jax.block_until_ready(loop(a))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(loop(a))
        rates.append(2 * BATCH * WIDTH * WIDTH * chain / (time.perf_counter() - start) / 1e9)
    return rates


def flops_per_update(agent, data) -> float:
    state = agent.init(jax.random.key(0))
    batch = jax.tree.map(lambda x: x[:BATCH], data)
    analysis = jax.jit(agent.update).lower(state, batch).compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float(analysis["flops"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--updates", type=int, default=200, help="updates per timed call")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure")
    parser.add_argument("--matmul_dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--seeds_per_group", type=int, default=0, help="0: backend default")
    args = parser.parse_args()

    config = default_config()
    config.matmul_dtype = args.matmul_dtype
    agent = make_ofql(config, OBS_DIM, ACT_DIM)
    data = _dataset()
    out: dict = {"backend": jax.default_backend(), "devices": len(jax.devices())}
    out["jax_version"] = jax.__version__
    out["matmul_dtype"] = args.matmul_dtype
    out["seeds_per_group"] = args.seeds_per_group

    seed_updates, compile_s = {}, None
    for num_seeds in args.seeds:
        updates = max(args.updates // num_seeds, 20)
        rates, compile_seconds = bench_training(
            agent, data, num_seeds, updates, args.repeats, args.seeds_per_group
        )
        seed_updates[str(num_seeds)] = _stats([r * num_seeds for r in rates])
        print(
            f"{num_seeds:>3} seeds: {statistics.median(rates):8.1f} updates/s, "
            f"{statistics.median(rates) * num_seeds:8.1f} seed-updates/s "
            f"(min {min(rates) * num_seeds:.1f}, max {max(rates) * num_seeds:.1f}); "
            f"compile {compile_seconds:.1f} s",
            flush=True,
        )
        if num_seeds == 1:
            out["train_updates_per_s"] = statistics.median(rates)
            out["train_updates_per_s_stats"] = _stats(rates)
            compile_s = compile_seconds
    out["train_seed_updates_per_s"] = {k: v["median"] for k, v in seed_updates.items()}
    out["train_seed_updates_per_s_stats"] = seed_updates
    if compile_s is None:
        _, compile_s = bench_training(agent, data, 1, 10, 1)
    out["compile_s"] = compile_s

    state = agent.init(jax.random.key(0))
    decisions = {}
    for n, calls in ((1, 2000), (50, 500)):
        rates = bench_decisions(agent, state, 1, n, calls, args.repeats)
        decisions[f"n{n}"] = _stats(rates)
        print(
            f"decisions/s, one state, N={n:>2}: {statistics.median(rates):10.1f} "
            f"(min {min(rates):.1f}, max {max(rates):.1f})",
            flush=True,
        )
    out["decisions_per_s"] = {k: v["median"] for k, v in decisions.items()}
    out["decisions_per_s_stats"] = decisions
    rates = bench_decisions(agent, state, 1024, 1, 100, args.repeats)
    out["batch_actions_per_s"] = statistics.median(rates)
    out["batch_actions_per_s_stats"] = _stats(rates)
    print(f"actions/s, batch of 1024 states, N=1: {out['batch_actions_per_s']:.0f}")

    flops = flops_per_update(agent, data)
    mm = bench_matmul(args.repeats)
    out["flops_per_update"] = flops
    out["achieved_gflops"] = flops * out.get("train_updates_per_s", 0.0) / 1e9
    out["matmul_gflops"] = statistics.median(mm)
    out["matmul_gflops_stats"] = _stats(mm)
    out["ratio_to_matmul"] = out["achieved_gflops"] / out["matmul_gflops"]
    print(
        f"FLOPs/update {flops / 1e9:.3f} G; achieved {out['achieved_gflops']:.1f} GFLOP/s "
        f"(1 seed); matmul [256x256]x[256x256] {out['matmul_gflops']:.1f} GFLOP/s; "
        f"ratio {out['ratio_to_matmul']:.2f}"
    )
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()

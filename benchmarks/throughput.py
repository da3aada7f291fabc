"""Cost of every agent on the current backend, at the paper's sizes and HalfCheetah shapes.

For each agent variant (``--agents``; default: OFQL, DQL with T = 5, 10, 20, 50, FQL with
10 flow steps, FBRAC(5), BC, flow BC), all in the same run:
  * training updates/s for 1 seed and seed-updates/s for 16 seeds in one program (a jitted
    lax.scan of K updates, batches sampled on the device, seeds vmapped in groups of
    ``--seeds_per_group``, 0 = the backend default, 2 on CPU), and the compile time;
  * the paper's decision frequency: one decision = 50 states x 50 candidates scored by the
    critic (2,500 actions), through ``ofql_jax.evaluation.policy.Policy``; agents without a critic
    act on 50 states with N = 1 (labelled);
  * single-state decisions/s (N = 1);
  * with ``--decision_designs device host``, both rates for each place ``Policy`` can draw
    its noise (``draws``: in the compiled call from a carried key, or by NumPy on the host
    and passed in), timed in alternation;
  * FLOPs per update (XLA cost analysis);
and once: the GFLOP/s of a plain [256, 256] x [256, 256] float32 matmul, so that runs on
different days can be compared as ratios. The matmul precision (``--matmul_precision``,
default ``highest``: true float32) is set for the whole process before anything compiles.

Usage:
    python benchmarks/throughput.py --json                  # every agent; JSON last
    python benchmarks/throughput.py --agents ofql dql5 --seeds 1 --repeats 3
    python benchmarks/throughput.py --agents ofql dql5 fql10 --seeds --decision_designs device host
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.agents import AGENTS
from ofql_jax.core.types import Transitions
from ofql_jax.evaluation.policy import Policy
from ofql_jax.training.runtime import set_matmul_precision
from ofql_jax.training.trainer import MultiSeedTrainer, init_states

OBS_DIM, ACT_DIM, BATCH, WIDTH = 17, 6, 256, 256  # HalfCheetah shapes, DQL sizes

# label -> (algorithm, agent config overrides); every agent at its 3 x 256 Mish defaults.
VARIANTS = {
    "ofql": ("ofql", {}),
    "dql5": ("dql", {"num_diffusion_steps": 5}),
    "dql10": ("dql", {"num_diffusion_steps": 10}),
    "dql20": ("dql", {"num_diffusion_steps": 20}),
    "dql50": ("dql", {"num_diffusion_steps": 50}),
    "fql10": ("fql", {"flow_steps": 10}),
    "fbrac5": ("fbrac", {"train_steps": 5}),
    "bc": ("bc", {}),
    "flow_bc": ("flow_bc", {}),
}


def make_variant(label: str, matmul_dtype: str = "float32", obs_dim: int = OBS_DIM,
                 act_dim: int = ACT_DIM):  # fmt: skip
    name, overrides = VARIANTS[label]
    config = AGENTS[name].default_config()
    config.matmul_dtype = matmul_dtype
    for key, value in overrides.items():
        config[key] = value
    return AGENTS[name].make(config, obs_dim, act_dim, 1_000_000)


def _stats(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


def _dataset(n: int = 100_000, obs_dim: int = OBS_DIM, act_dim: int = ACT_DIM) -> Transitions:
    k = jax.random.split(jax.random.key(0), 5)
    return Transitions(
        jax.random.normal(k[0], (n, obs_dim)),
        jax.random.uniform(k[1], (n, act_dim), minval=-1, maxval=1),
        jax.random.normal(k[2], (n,)),
        jax.random.normal(k[3], (n, obs_dim)),
        (jax.random.uniform(k[4], (n,)) < 0.01).astype(jnp.float32),
    )


def time_calls(trainer, states, data, updates: int, repeats: int, where=None) -> list[float]:
    """Program updates/s of ``repeats`` timed calls, after one untimed call (compile or
    warm-up). The states are donated: the caller's are spent. ``where``: each member's
    dataset in a multi-dataset program (``MultiSeedTrainer``)."""
    states, _ = trainer(states, data, updates, where)
    jax.block_until_ready(states)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        states, metrics = trainer(states, data, updates, where)
        jax.block_until_ready((states, metrics))
        rates.append(updates / (time.perf_counter() - start))
    return rates


def bench_training(agent, data, num_seeds: int, updates: int, repeats: int, group: int = 0):
    """Updates/s of the whole program (all seeds step together) and the chunk compile time."""
    trainer = MultiSeedTrainer(agent, BATCH, seeds_per_group=group)
    states = init_states(agent, list(range(num_seeds)))
    return time_calls(trainer, states, data, updates, repeats), trainer.compile_seconds


def bench_decisions(
    agent,
    state,
    num_states: int,
    num_candidates: int,
    calls: int,
    repeats: int,
    designs: tuple[str, ...] = ("auto",),
) -> dict[str, list[float]]:
    """Calls/s of ``ofql_jax.evaluation.policy.Policy`` with each of ``designs`` as its ``draws``
    (``device``: noise drawn in the compiled call from a carried key; ``host``: drawn by
    NumPy and passed in) on ``num_states`` states; the designs take turns within each
    repeat, so a machine that changes speed affects both alike."""
    obs = np.random.default_rng(0).normal(size=(num_states, OBS_DIM)).astype(np.float32)
    obs = obs[0] if num_states == 1 else obs
    policies = {d: Policy(agent, state, num_candidates, seed=0, draws=d) for d in designs}
    rates: dict[str, list[float]] = {d: [] for d in designs}
    for policy in policies.values():
        policy(obs)  # compile
    for _ in range(repeats):
        for design, policy in policies.items():
            start = time.perf_counter()
            for _ in range(calls):
                policy(obs)
            rates[design].append(calls / (time.perf_counter() - start))
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


def bench_agent(label: str, args, data) -> dict:
    agent = make_variant(label, args.matmul_dtype)
    out: dict = {"algorithm": VARIANTS[label][0], "overrides": VARIANTS[label][1]}
    seed_updates = {}
    for num_seeds in args.seeds:
        updates = max(args.updates // num_seeds, 10)
        rates, compile_seconds = bench_training(
            agent, data, num_seeds, updates, args.repeats, args.seeds_per_group
        )
        seed_updates[str(num_seeds)] = _stats([r * num_seeds for r in rates])
        if num_seeds == 1:
            out["train_updates_per_s"] = statistics.median(rates)
            out["compile_s"] = compile_seconds
        print(
            f"{label:>8} {num_seeds:>3} seeds: {statistics.median(rates) * num_seeds:8.1f} "
            f"seed-updates/s (min {min(rates) * num_seeds:.1f}, max {max(rates) * num_seeds:.1f}); "
            f"compile {compile_seconds:.1f} s",
            flush=True,
        )
    out["train_seed_updates_per_s"] = {k: v["median"] for k, v in seed_updates.items()}
    out["train_seed_updates_per_s_stats"] = seed_updates
    if "train_updates_per_s" in out:
        out["hours_per_1m_steps"] = 1e6 / out["train_updates_per_s"] / 3600

    out.update(decision_rates(agent, args.decision_calls, args.repeats, args.decision_designs,
                              label))  # fmt: skip
    if args.seeds:  # with the training figures
        out["flops_per_update"] = flops_per_update(agent, data)
        print(f"{label:>8} FLOPs/update {out['flops_per_update'] / 1e9:.3f} G", flush=True)
    return out


def decision_rates(agent, calls: int, repeats: int, designs=("auto",), label: str = "") -> dict:
    """The paper's decision (50 states x 50 candidates; N = 1 without a critic) and one state
    at N = 1: ``decisions_per_s`` and ``single_state_decisions_per_s`` for the first of
    ``designs`` (``Policy``'s ``draws``), the same keys suffixed ``_<design>`` for the others
    (e.g. ``decisions_per_s_host``); single states make ``10 * calls`` calls per repeat."""
    state = agent.init(jax.random.key(0))
    n = 50 if agent.has_critic else 1
    out: dict = {"decision": f"50 states x {n} candidate{'s' if n > 1 else ''}"}
    many = bench_decisions(agent, state, 50, n, calls, repeats, tuple(designs))
    one = bench_decisions(agent, state, 1, 1, 10 * calls, repeats, tuple(designs))
    for design in designs:
        suffix = "" if design == designs[0] else f"_{design}"
        out[f"decisions_per_s{suffix}"] = statistics.median(many[design])
        out[f"decisions_per_s{suffix}_stats"] = _stats(many[design])
        out[f"single_state_decisions_per_s{suffix}"] = statistics.median(one[design])
        out[f"single_state_decisions_per_s{suffix}_stats"] = _stats(one[design])
        print(f"{label or agent.name:>8} {design:>6} decisions/s ({out['decision']}): "
              f"{statistics.median(many[design]):.1f}; one state, N=1: "
              f"{statistics.median(one[design]):.0f}", flush=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--agents", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="*",
        default=[1, 16],
        help="seed counts of the training figures (none: decisions only)",
    )
    parser.add_argument("--updates", type=int, default=200, help="updates per timed call")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per figure")
    parser.add_argument("--decision_calls", type=int, default=100, help="decisions per repeat")
    parser.add_argument(
        "--decision_designs",
        nargs="+",
        default=["auto"],
        choices=["auto", "device", "host"],
        help="Policy(draws=...) to time, the first under the plain keys: auto (the default: "
        "host on CPUs), device (in the call, from a carried key), host (NumPy, passed in)",
    )
    parser.add_argument("--matmul_dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument(
        "--matmul_precision",
        default="highest",
        choices=["highest", "high", "default"],
        help="for the whole process, as config.matmul_precision",
    )
    parser.add_argument("--seeds_per_group", type=int, default=0, help="0: backend default")
    args = parser.parse_args()
    set_matmul_precision(args.matmul_precision)  # before anything compiles

    data = _dataset()
    out: dict = {"backend": jax.default_backend(), "devices": len(jax.devices())}
    out["jax_version"] = jax.__version__
    out["matmul_precision"] = args.matmul_precision
    out["decision_designs"] = args.decision_designs
    out["matmul_dtype"] = args.matmul_dtype
    out["seeds_per_group"] = args.seeds_per_group
    mm = bench_matmul(args.repeats)
    out["matmul_gflops"] = statistics.median(mm)
    out["matmul_gflops_stats"] = _stats(mm)
    print(f"matmul [256x256]x[256x256]: {out['matmul_gflops']:.1f} GFLOP/s", flush=True)
    out["agents"] = {label: bench_agent(label, args, data) for label in args.agents}
    base = out["agents"].get("ofql")
    if base:  # the paper's Figure 3 as ratios to OFQL
        for entry in out["agents"].values():
            if "train_updates_per_s" in entry and "train_updates_per_s" in base:
                entry["time_ratio_to_ofql"] = (
                    base["train_updates_per_s"] / entry["train_updates_per_s"]
                )
            entry["decision_ratio_to_ofql"] = entry["decisions_per_s"] / base["decisions_per_s"]
    mm = bench_matmul(args.repeats)  # again at the end: the machine may have changed speed
    out["matmul_gflops_end"] = statistics.median(mm)
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()

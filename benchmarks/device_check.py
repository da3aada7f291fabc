"""The accelerator check's measurements: every agent's cost on the current device, one JSON.

Run by ``benchmarks/device_check.sh`` (which also times a short CLI run); it can be run alone:

    python benchmarks/device_check.py --out runs/device_check/device_check.json
    python benchmarks/device_check.py --dry-run --out /tmp/dc.json     # minutes, on a CPU

For each agent variant of ``benchmarks/throughput.py`` (default: OFQL, DQL(5), FQL(10),
FBRAC(5), BC, flow BC; HalfCheetah shapes, the paper's 3 x 256 networks, batch 256) and each
number of vmapped seeds (default 1, 3, 16, 64, 256; 3 is the paper's seed count, for its
time per 1M steps), all in one process:

* ``seed_updates_per_s``: seeds x updates per second of the one jitted program (median of
  ``--repeats`` timed calls of a ``lax.scan`` of updates, data on the device), and
  ``hours_per_1m_steps`` for that many seeds trained together;
* ``compile_s`` of that program (programs compile ``--compile_workers`` at a time in threads,
  each agent's smallest and largest seed counts first), and XLA's ``memory_analysis`` of it
  (argument, output and temporary bytes: the program's own footprint);
* ``peak_bytes_in_use``: the device allocator's peak so far in this process (it cannot be
  reset, so it is monotone over the run; on CPU it is absent);

then per agent the paper's decision frequency (one decision = 50 states x 50 candidates scored
by the critic; agents without a critic: 50 states x 1, labelled) and single-state decisions/s.
On a GPU, OFQL is also timed at matmul precision 'default' (TF32) for ``--precision_compare``
seed counts.

No program starts compiling after ``--budget_s`` and no decision measurement after
``--budget_s + --decision_budget_s``; what was left out is listed under ``skipped``. Every
compiled program is timed. The JSON is rewritten after every agent, so a killed run keeps
what it measured. The schema is documented in ``docs/device_check.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # noqa: E402  (this folder's benchmark: variants, data, timers)

from ofql_jax import results  # noqa: E402
from ofql_jax.trainer import MultiSeedTrainer, init_states  # noqa: E402

SCHEMA_VERSION = 1
DEFAULT_AGENTS = ["ofql", "dql5", "fql10", "fbrac5", "bc", "flow_bc"]
DEFAULT_SEEDS = [1, 3, 16, 64, 256]
PACKAGES = [*results.PACKAGES, "ml-collections", "tensorboardX"]


def _peak_bytes() -> int | None:
    stats = jax.local_devices()[0].memory_stats()
    return None if not stats else stats.get("peak_bytes_in_use")


def _memory(compiled) -> dict[str, int] | None:
    try:
        m = compiled.memory_analysis()
    except Exception:  # not every backend implements it
        return None
    if m is None:
        return None
    keys = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes",
            "generated_code_size_in_bytes", "alias_size_in_bytes")  # fmt: skip
    return {k: int(getattr(m, k)) for k in keys if hasattr(m, k)}


def environment() -> dict:
    device = jax.local_devices()[0]
    return {
        "schema_version": SCHEMA_VERSION,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(),
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "num_devices": jax.device_count(),
        "matmul_precision": str(jax.config.jax_default_matmul_precision),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "versions": results.package_versions(PACKAGES),
    }


def priority(labels, seeds, compare) -> list[tuple[str, int, str]]:
    """Programs in the order they are built: each agent's smallest and largest seed counts
    first (OFQL's 3 seeds, the paper's count, with them), then the TF32 comparison, then the
    remaining seed counts, smallest first; so a spent budget drops the middle of the grid."""
    ends = [min(seeds), max(seeds)]
    first = [(label, n, "") for label in labels for n in dict.fromkeys(ends)]
    if "ofql" in labels and 3 in seeds:
        first.insert(1, ("ofql", 3, ""))
    first += [("ofql", n, "default") for n in compare]
    rest = [(label, n, "") for n in sorted(seeds) for label in labels]
    return list(dict.fromkeys(first + rest))


def build_programs(keys, updates_for, data, deadline, skipped, workers: int):
    """Compile the programs ``keys`` ((label, seeds, precision); precision "" = the process
    default) ``workers`` at a time in threads (XLA compiles without the GIL, so each
    ``compile_s`` is measured among concurrent compiles); none starts after ``deadline``."""
    agents = {label: throughput.make_variant(label) for label, _, _ in keys}

    def build(key):
        label, num_seeds, precision = key
        if time.perf_counter() > deadline:
            return key, None
        trainer = MultiSeedTrainer(agents[label], throughput.BATCH)
        states = init_states(agents[label], list(range(num_seeds)))
        with jax.default_matmul_precision(precision or None):  # thread-local, as the trace
            compiled = trainer.compile(states, data, updates_for(num_seeds))
        return key, dict(trainer=trainer, states=states, compiled=compiled, workers=workers)

    programs: dict[tuple[str, int, str], dict] = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        for key, built in pool.map(build, keys):
            if built is None:
                skipped.append(_name(key))
            else:
                programs[key] = built
                print(f"compiled {_name(key)}: {built['trainer'].compile_seconds:.1f} s",
                      flush=True)  # fmt: skip
    print(f"compiled {len(programs)} programs in {time.perf_counter() - start:.1f} s "
          f"({workers} threads)", flush=True)  # fmt: skip
    return agents, programs


def _name(key) -> str:
    label, num_seeds, precision = key
    return f"{label} x {num_seeds} seeds" + (f" at precision {precision}" if precision else "")


def bench_program(program: dict, data, updates: int, repeats: int) -> dict:
    """Time one compiled program: rate, compile time, memory."""
    trainer, states = program["trainer"], program["states"]
    num_seeds = states.step.shape[0]
    rates = throughput.time_calls(trainer, states, data, updates, repeats)
    program["states"] = None  # donated; free the rest
    rate = statistics.median(rates)
    return {
        "updates_per_call": updates,
        "program_updates_per_s": rate,
        "seed_updates_per_s": rate * num_seeds,
        "seed_updates_per_s_range": [min(rates) * num_seeds, max(rates) * num_seeds],
        "hours_per_1m_steps": 1e6 / rate / 3600,
        "compile_s": trainer.compile_seconds,
        "compile_threads": program["workers"],
        "memory_analysis": _memory(program["compiled"]),
        "peak_bytes_in_use": _peak_bytes(),
    }


def bench_agent(label, agent, programs, args, data, deadline, skipped) -> dict:
    out: dict = {"algorithm": throughput.VARIANTS[label][0],
                 "overrides": throughput.VARIANTS[label][1], "seeds": {}}  # fmt: skip
    for key in sorted(k for k in programs if k[0] == label):
        entry = bench_program(programs.pop(key), data, args.updates_for(key[1]), args.repeats)
        where = "seeds" if not key[2] else f"seeds_precision_{key[2]}"
        out.setdefault(where, {})[str(key[1])] = entry
        mem = (entry["memory_analysis"] or {}).get("temp_size_in_bytes")
        print(
            f"{_name(key):>36}: {entry['seed_updates_per_s']:10.0f} seed-upd/s "
            f"({entry['program_updates_per_s']:8.1f} program upd/s, "
            f"{entry['hours_per_1m_steps']:6.2f} h/1M steps); compile {entry['compile_s']:5.1f} s"
            + (f"; temp {mem / 2**20:.0f} MiB" if mem is not None else ""),
            flush=True,
        )
    if time.perf_counter() > deadline:
        skipped.append(f"{label} decisions")
        return out
    state = agent.init(jax.random.key(0))
    n = 50 if agent.has_critic else 1
    rates = throughput.bench_decisions(agent, state, 50, n, args.decision_calls, args.repeats)
    out["decision"] = f"50 states x {n} candidate{'s' if n > 1 else ''}"
    out["decisions_per_s"] = statistics.median(rates)
    rates = throughput.bench_decisions(agent, state, 1, 1, args.decision_calls, args.repeats)
    out["single_state_decisions_per_s"] = statistics.median(rates)
    print(f"{label:>8} decisions/s ({out['decision']}): {out['decisions_per_s']:.0f}; "
          f"one state: {out['single_state_decisions_per_s']:.0f}", flush=True)  # fmt: skip
    return out


def add_ratios(agents: dict) -> None:
    """The paper's Figure 3 as ratios: each agent's 1-seed training time and decision rate
    over OFQL's."""
    base = agents.get("ofql", {})
    base_rate = base.get("seeds", {}).get("1", {}).get("program_updates_per_s")
    for entry in agents.values():
        rate = entry.get("seeds", {}).get("1", {}).get("program_updates_per_s")
        if base_rate and rate:
            entry["time_ratio_to_ofql"] = base_rate / rate
        if base.get("decisions_per_s") and entry.get("decisions_per_s"):
            entry["decision_ratio_to_ofql"] = entry["decisions_per_s"] / base["decisions_per_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the JSON to write")
    parser.add_argument("--agents", nargs="+", default=DEFAULT_AGENTS,
                        choices=list(throughput.VARIANTS))  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=DEFAULT_SEEDS)
    parser.add_argument("--updates", type=int, default=500, help="updates per timed call (<=16 "
                        "seeds; fewer for more seeds)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per figure")
    parser.add_argument("--decision_calls", type=int, default=200, help="decisions per repeat")
    parser.add_argument(
        "--budget_s",
        type=float,
        default=150,
        help="start no compile later (every compiled program is then timed)",
    )
    parser.add_argument(
        "--decision_budget_s",
        type=float,
        default=90,
        help="no decision measurement starts after budget_s + this",
    )
    parser.add_argument("--compile_workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="threads compiling programs")  # fmt: skip
    parser.add_argument("--matmul_precision", default="highest",
                        choices=["highest", "high", "default"],
                        help="as config.matmul_precision (highest: true float32)")  # fmt: skip
    parser.add_argument("--precision_compare", type=int, nargs="*", default=[1, 256],
                        help="on a GPU, also time OFQL with these seed counts at precision "
                        "'default' (TF32 on recent NVIDIA GPUs)")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU smoke: 1 and 2 seeds, 20 updates, 1 repeat")  # fmt: skip
    args = parser.parse_args()
    if args.dry_run:
        args.seeds, args.updates, args.repeats, args.decision_calls = [1, 2], 20, 1, 5
        args.budget_s = 1e9  # everything runs
        args.precision_compare = args.precision_compare and [1]
    args.updates_for = lambda n: max(args.updates // max(n // 16, 1), 20)

    start = time.perf_counter()
    jax.config.update("jax_default_matmul_precision", args.matmul_precision)
    out = environment()
    out["dry_run"] = args.dry_run
    names = ("agents", "seeds", "updates", "repeats", "decision_calls", "budget_s",
             "decision_budget_s", "compile_workers")  # fmt: skip
    out["settings"] = {k: getattr(args, k) for k in names}
    print(f"device: {out['device_kind']} ({out['backend']}), jax {out['versions']['jax']}",
          flush=True)  # fmt: skip
    out["matmul_256_gflops"] = statistics.median(throughput.bench_matmul(args.repeats))
    data = throughput._dataset()
    out["agents"], out["skipped"] = {}, []
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = start + args.budget_s
    compare = args.precision_compare if out["backend"] == "gpu" or args.dry_run else []
    keys = priority(args.agents, args.seeds, compare)
    t0 = time.perf_counter()
    agents, programs = build_programs(keys, args.updates_for, data, deadline, out["skipped"],
                                      args.compile_workers)  # fmt: skip
    out["compile_seconds_total"] = time.perf_counter() - t0
    for label in args.agents:  # every compiled program is timed; decisions within the budget
        until = deadline + args.decision_budget_s
        out["agents"][label] = bench_agent(label, agents[label], programs, args, data, until,
                                           out["skipped"])  # fmt: skip
        add_ratios(out["agents"])
        out["bench_seconds"] = time.perf_counter() - start
        path.write_text(json.dumps(out, indent=1))
    out["matmul_256_gflops_end"] = statistics.median(throughput.bench_matmul(args.repeats))
    path.write_text(json.dumps(out, indent=1))
    ofql = out["agents"].get("ofql", {}).get("seeds", {})
    steps = None
    if "3" in ofql or "1" in ofql:  # the CLI stage trains ~60 s of OFQL with 3 seeds
        rate = (ofql.get("3") or ofql["1"])["program_updates_per_s"]
        steps = 500 if args.dry_run else int(min(max(rate * 60, 5_000), 200_000) // 1000 * 1000)
    Path(path.parent, "cli_steps.txt").write_text(f"{steps or 2000}\n")
    skipped = out["skipped"] or "none"
    print(f"wrote {path} ({time.perf_counter() - start:.0f} s; skipped: {skipped})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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

* ``matmul_evidence``: what the compiled program's optimized HLO (``compiled.as_text()``)
  says about its matmuls: dots and cuBLAS/cuDNN calls, their ``operand_precision``, algorithm
  and operand types, and ``precision_applied``, whether that is the program's setting;
* ``kernels_per_update`` and ``us_per_kernel``: the launches of one update, counted in the
  same HLO (``benchmarks/launch_count.py``: fusions, library calls and copies, loop bodies
  times their trips), and the time per update divided by them: a few microseconds, flat
  over seed counts, means launches bound the program, not arithmetic;
* ``policy_max_rel_diff_vs_highest``: one forward pass of the agent's policy (256 states,
  N = 1) compiled in the program's setting against the same pass at ``highest``, as
  ``max|a - a_highest| / max|a_highest|`` (TF32 and bf16 inputs differ at about 1e-3, a
  backend without TF32 not at all);

then per agent the paper's decision frequency (one decision = 50 states x 50 candidates scored
by the critic; agents without a critic: 50 states x 1, labelled) and single-state decisions/s,
for each ``--decision_designs`` (``Policy``'s ``draws``: in the call, or NumPy's on the host);
and after the decisions of each of ``--multi_agents`` (OFQL), the multi-dataset programs of
the six MuJoCo medium and medium-expert replicas (``ofql_jax.training.multi_dataset``): one
program per shape (hopper's two; halfcheetah's and walker2d's four), ``--multi_seeds`` (3)
seeds per dataset, synthetic data of the replicas' sizes (1M and 2M transitions) stored once
on the device, against the same datasets as one 3-seed program each (timed on the first
dataset): minutes per 1M steps of all six, both ways.

The process's matmul precision (``--matmul_precision``, default ``highest``) is set once,
before anything compiles. On a GPU, ``--precision_agents`` (OFQL) are also timed in each of
``--precisions`` for the ``--precision_compare`` seed counts: ``default`` (TF32 on recent
NVIDIA GPUs) and ``high`` compile inside an explicit ``jax.default_matmul_precision`` context,
``bfloat16`` is the agent config's ``matmul_dtype="bfloat16"`` (bf16 matmul inputs, float32
accumulation) at the process precision; each program's evidence shows what it got.

No program starts compiling after ``--budget_s`` and no decision measurement after
``--budget_s + --decision_budget_s``; what was left out is listed under ``skipped``. Every
compiled program is timed. The JSON is rewritten after every agent, so a killed run keeps
what it measured. The schema is documented in ``docs/device_check.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # noqa: E402  (this folder's benchmark: variants, data, timers)
from launch_count import launch_evidence  # noqa: E402  (kernels per call, from the HLO)

from ofql_jax.core import versions  # noqa: E402
from ofql_jax.training.runtime import matmul_precision, set_matmul_precision  # noqa: E402
from ofql_jax.training.trainer import MultiSeedTrainer, init_states  # noqa: E402

SCHEMA_VERSION = 4
# The MuJoCo medium and medium-expert replicas by shape: (obs, act), transitions per dataset
# (medium: 1M; medium-expert: medium + expert, 2M), as the multi-dataset programs group them.
MULTI_PROGRAMS = {
    "hopper": ((11, 3), {"hopper-medium": 1_000_000, "hopper-medium-expert": 2_000_000}),
    "halfcheetah+walker2d": ((17, 6), {
        "halfcheetah-medium": 1_000_000, "halfcheetah-medium-expert": 2_000_000,
        "walker2d-medium": 1_000_000, "walker2d-medium-expert": 2_000_000}),
}  # fmt: skip
JAX_PRECISIONS = ("highest", "high", "default")  # a setting is one of these or "bfloat16"
DEFAULT_AGENTS = ["ofql", "dql5", "fql10", "fbrac5", "bc", "flow_bc"]
DEFAULT_SEEDS = [1, 3, 16, 64, 256]
PACKAGES = [*versions.PACKAGES, "ml-collections", "tensorboardX"]


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


_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*([a-z][a-z0-9]*)\[")
_OPERANDS = {"dot": re.compile(r"\sdot\(([^)]*)\)"),
             "custom-call": re.compile(r"\scustom-call\(([^)]*)\)")}  # fmt: skip
_TARGET = re.compile(r'custom_call_target="([^"]+)"')
_DOT_PRECISION = re.compile(r"operand_precision=\{(\w+),(\w+)\}")
_DOT_ALGORITHM = re.compile(r"algorithm=(\w+)")
_CONFIG_PRECISION = re.compile(r'"operand_precision":\["(\w+)","(\w+)"\]')
_CONFIG_ALGORITHM = re.compile(r'"algorithm":"(\w+)"')
_FUSION_KIND = re.compile(r'"kind":"(__[\w$]+)"')


def _operand_types(args: str, types: dict[str, str]) -> str:
    """``f32,f32`` for a dot's or call's first two operands (printed with or without shapes)."""
    found = []
    for token in args.split(",")[:2]:
        token = token.strip()
        if "[" in token:  # "f32[8,16]{1,0} %a"
            found.append(token.split("[", 1)[0])
        else:
            found.append(types.get(token.lstrip("%"), "?"))
    return ",".join(found)


def matmul_evidence(hlo: str) -> dict:
    """What an optimized HLO module (``compiled.as_text()``) does for its matmuls: ``dots``
    (XLA dot instructions, on CPU and inside GPU Triton fusions) by ``operand_precision``
    (absent = ``default``), algorithm and operand types; ``gemm_calls`` (cuBLAS custom calls
    on a GPU) by target, precision, algorithm and operand types; ``fusion_kinds`` (e.g.
    ``__triton_gemm``).

    Example:
        >>> matmul_evidence("%c = f32[2,2]{1,0} dot(%a, %b), operand_precision={highest,highest}")
        ... # doctest: +ELLIPSIS
        {'dots': 1, 'dot_precision': {'highest': 1}, ...}
    """
    types: dict[str, str] = {}
    dots, gemms = Counter(), Counter()
    dot_precision, dot_algorithm, dot_types = Counter(), Counter(), Counter()
    gemm_precision, gemm_algorithm, gemm_types, kinds = Counter(), Counter(), Counter(), Counter()
    for line in hlo.splitlines():
        found = _INSTRUCTION.match(line)
        if found:
            types[found.group(1)] = found.group(2)
        kinds.update(_FUSION_KIND.findall(line) if " fusion(" in line else [])
        operands = _OPERANDS["dot"].search(line)
        if operands:
            dots["dot"] += 1
            precision = _DOT_PRECISION.search(line)
            dot_precision[precision.group(1).lower() if precision else "default"] += 1
            algorithm = _DOT_ALGORITHM.search(line)
            dot_algorithm[algorithm.group(1) if algorithm else "unset"] += 1
            dot_types[_operand_types(operands.group(1), types)] += 1
            continue
        target = _TARGET.search(line)
        operands = _OPERANDS["custom-call"].search(line)
        if target and operands and any(k in target.group(1) for k in ("gemm", "matmul")):
            gemms[target.group(1)] += 1
            precision = _CONFIG_PRECISION.search(line)
            gemm_precision[precision.group(1).lower() if precision else "default"] += 1
            algorithm = _CONFIG_ALGORITHM.search(line)
            gemm_algorithm[algorithm.group(1) if algorithm else "unset"] += 1
            gemm_types[_operand_types(operands.group(1), types)] += 1
    return {
        "dots": dots["dot"],
        "dot_precision": dict(dot_precision),
        "dot_algorithm": dict(dot_algorithm),
        "dot_operand_types": dict(dot_types),
        "gemm_calls": dict(gemms),
        "gemm_precision": dict(gemm_precision),
        "gemm_algorithm": dict(gemm_algorithm),
        "gemm_operand_types": dict(gemm_types),
        "fusion_kinds": dict(kinds),
    }


def precision_applied(evidence: dict, precision: str, bf16_inputs: bool) -> bool:
    """Whether ``matmul_evidence`` shows a program compiled at ``precision`` (every dot and
    cuBLAS call carries it) and, with ``bf16_inputs``, with bf16 matmul operands (the agent's
    trunk; its time embeddings stay float32). A program without matmuls proves nothing.

    Example:
        >>> precision_applied({"dot_precision": {"highest": 3}}, "highest", False)
        True
    """
    seen = Counter(evidence.get("dot_precision", {})) + Counter(evidence.get("gemm_precision", {}))
    if not seen or set(seen) != {precision}:
        return False
    if not bf16_inputs:
        return True
    operands = {**evidence.get("dot_operand_types", {}), **evidence.get("gemm_operand_types", {})}
    return any("bf16" in pair for pair in operands)


def policy_difference(agent, reference, precision: str, num_states: int = 256) -> float:
    """``max|a - a_ref| / max|a_ref|`` of one policy forward pass (``decide`` at N = 1 on
    ``num_states`` random states and fixed noise): ``agent`` compiled at ``precision``
    against ``reference`` compiled at ``highest``, both with ``reference``'s parameters (the
    two agents differ only in ``matmul_dtype``, whose parameters are float32 alike).

    Example:
        >>> policy_difference(make_variant("ofql", "bfloat16"), make_variant("ofql"), "highest")
        ... # doctest: +SKIP
        0.004
    """
    params = reference.init(jax.random.key(0)).policy_params
    obs = jax.random.normal(jax.random.key(1), (num_states, reference.obs_dim))
    noise = jax.random.normal(jax.random.key(2), (num_states, reference.noise_dim))

    def forward(a, at: str) -> np.ndarray:
        with jax.default_matmul_precision(at):  # explicit, never None: None means "default"
            fn = jax.jit(lambda p, o, z: a.decide(p, {}, o, z)).lower(params, obs, noise)
        return np.asarray(fn.compile()(params, obs, noise))

    ref = forward(reference, "highest")
    out = forward(agent, precision)
    return float(np.abs(out - ref).max() / max(float(np.abs(ref).max()), 1e-30))


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
        "matmul_precision": matmul_precision(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "versions": versions.package_versions(PACKAGES),
    }


def priority(labels, seeds, compare) -> list[tuple[str, int, str]]:
    """Programs in the order they are built: each agent's smallest and largest seed counts
    first (OFQL's 3 seeds, the paper's count, with them), then the ``compare`` programs
    ((label, seeds, setting): the precision comparison), then the remaining seed counts,
    smallest first; so a spent budget drops the middle of the grid."""
    ends = [min(seeds), max(seeds)]
    first = [(label, n, "") for label in labels for n in dict.fromkeys(ends)]
    if "ofql" in labels and 3 in seeds:
        first.insert(1, ("ofql", 3, ""))
    first += list(compare)
    rest = [(label, n, "") for n in sorted(seeds) for label in labels]
    return list(dict.fromkeys(first + rest))


def matmul_dtype(setting: str) -> str:
    """The agent config's ``matmul_dtype`` of a setting ("" = the process precision)."""
    return "bfloat16" if setting == "bfloat16" else "float32"


def expected_precision(setting: str) -> str:
    """The precision a setting's dots must carry: its own, or the process's."""
    return setting if setting in JAX_PRECISIONS else matmul_precision()


def build_programs(keys, updates_for, data, deadline, skipped, workers: int):
    """Compile the programs ``keys`` ((label, seeds, setting); setting "" = the process
    precision) ``workers`` at a time in threads (XLA compiles without the GIL, so each
    ``compile_s`` is measured among concurrent compiles); none starts after ``deadline``.
    A precision setting is traced in an explicit thread-local ``jax.default_matmul_precision``
    (a ``None`` context would mean "default", not the process's); every program's
    ``matmul_evidence`` is read from its optimized HLO."""
    agents = {(label, matmul_dtype(setting)): throughput.make_variant(label, matmul_dtype(setting))
              for label, _, setting in keys}  # fmt: skip

    def build(key):
        label, num_seeds, setting = key
        if time.perf_counter() > deadline:
            return key, None
        agent = agents[label, matmul_dtype(setting)]
        trainer = MultiSeedTrainer(agent, throughput.BATCH)
        states = init_states(agent, list(range(num_seeds)))
        explicit = setting in JAX_PRECISIONS
        context = jax.default_matmul_precision(setting) if explicit else contextlib.nullcontext()
        with context:  # thread-local, as the trace
            compiled = trainer.compile(states, data, updates_for(num_seeds))
        hlo = compiled.as_text()
        evidence = matmul_evidence(hlo)
        evidence["precision_applied"] = precision_applied(
            evidence, expected_precision(setting), setting == "bfloat16"
        )
        return key, dict(trainer=trainer, states=states, compiled=compiled, workers=workers,
                         evidence=evidence, launches=launch_evidence(hlo))  # fmt: skip

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
    label, num_seeds, setting = key
    return f"{label} x {num_seeds} seeds" + (f" at {setting}" if setting else "")


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
        "matmul_evidence": program["evidence"],
        **launch_rates(program["launches"], updates, rate),
    }


def launch_rates(launches: dict, updates: int, program_updates_per_s: float) -> dict:
    """``launch_evidence`` of a program of ``updates`` updates per call, with the kernels of
    one update (the body of the loop of ``updates`` trips: the scan) and the time it leaves
    per launch: ``us_per_kernel`` near a GPU's launch cost (a few microseconds) and
    flat over seed counts means the program is bound by launches, not arithmetic.

    Example:
        >>> launch_rates({"kernels_per_call": 4010, "loops": [[10, 400]]}, 10, 500.0)
        ... # doctest: +ELLIPSIS
        {'launch_evidence': {...}, 'kernels_per_update': 400, 'us_per_kernel': 5.0}
    """
    scan = [kernels for trips, kernels in launches.get("loops", []) if trips == updates]
    per_update = scan[0] if scan else launches["kernels_per_call"] / updates
    us = 1e6 / program_updates_per_s / per_update if per_update and program_updates_per_s else None
    return {"launch_evidence": launches, "kernels_per_update": per_update, "us_per_kernel": us}


def bench_agent(label, agents, programs, args, data, deadline, skipped) -> dict:
    out: dict = {"algorithm": throughput.VARIANTS[label][0],
                 "overrides": throughput.VARIANTS[label][1], "seeds": {}}  # fmt: skip
    differences: dict[str, float] = {}  # one numeric check per setting
    for key in sorted(k for k in programs if k[0] == label):
        setting = key[2]
        entry = bench_program(programs.pop(key), data, args.updates_for(key[1]), args.repeats)
        if setting not in differences:
            agent = agents.get((label, matmul_dtype(setting))) or throughput.make_variant(
                label, matmul_dtype(setting)
            )
            reference = agents.get((label, "float32")) or throughput.make_variant(label)
            differences[setting] = policy_difference(agent, reference, expected_precision(setting))
        entry["policy_max_rel_diff_vs_highest"] = differences[setting]
        where = "seeds" if not setting else f"seeds_precision_{setting}"
        out.setdefault(where, {})[str(key[1])] = entry
        mem = (entry["memory_analysis"] or {}).get("temp_size_in_bytes")
        evidence = entry["matmul_evidence"]
        print(
            f"{_name(key):>36}: {entry['seed_updates_per_s']:10.0f} seed-upd/s "
            f"({entry['program_updates_per_s']:8.1f} program upd/s, "
            f"{entry['hours_per_1m_steps']:6.2f} h/1M steps); compile {entry['compile_s']:5.1f} s"
            + (f"; temp {mem / 2**20:.0f} MiB" if mem is not None else "")
            + f"; matmuls {evidence['dot_precision'] or evidence['gemm_precision']}"
            f" applied={evidence['precision_applied']}"
            f", policy rel diff vs highest {differences[setting]:.1e}"
            + (
                f"; {entry['kernels_per_update']:.0f} kernels/update, "
                f"{entry['us_per_kernel']:.1f} us each"
                if entry["us_per_kernel"]
                else ""
            ),
            flush=True,
        )
    if time.perf_counter() > deadline:
        skipped.append(f"{label} decisions")
        return out
    agent = agents.get((label, "float32")) or throughput.make_variant(label)
    out.update(throughput.decision_rates(agent, args.decision_calls, args.repeats,
                                         args.decision_designs, label))  # fmt: skip
    return out


def bench_multi_dataset(label: str, args, deadline: float, skipped: list[str]) -> dict:
    """``MULTI_PROGRAMS`` as multi-dataset programs against one program per dataset."""
    out: dict = {"seeds_per_dataset": args.multi_seeds, "programs": {}}
    for name, ((obs, act), sizes) in MULTI_PROGRAMS.items():
        if time.perf_counter() > deadline:
            skipped.append(f"{label} multi-dataset {name}")
            continue
        sizes = {t: min(n, args.multi_max_transitions) for t, n in sizes.items()}
        agent = throughput.make_variant(label, obs_dim=obs, act_dim=act)
        data = throughput._dataset(sum(sizes.values()), obs, act)
        firsts = np.cumsum([0, *list(sizes.values())[:-1]])
        where = np.repeat([[f, n] for f, n in zip(firsts, sizes.values(), strict=True)],
                          args.multi_seeds, axis=0).astype(np.int32)  # fmt: skip
        members = len(where)
        updates = args.updates_for(members)
        joint = MultiSeedTrainer(agent, throughput.BATCH)
        states = init_states(agent, list(range(args.multi_seeds)) * len(sizes))
        rates = throughput.time_calls(
            joint, states, data, updates, args.repeats, jnp.asarray(where)
        )
        alone = MultiSeedTrainer(agent, throughput.BATCH)
        first_size = next(iter(sizes.values()))
        first = jax.tree.map(lambda x, n=first_size: x[:n], data)
        states = init_states(agent, list(range(args.multi_seeds)))
        updates_alone = args.updates_for(args.multi_seeds)
        alone_rates = throughput.time_calls(alone, states, first, updates_alone, args.repeats)
        rate, alone_rate = statistics.median(rates), statistics.median(alone_rates)
        entry = {
            "datasets": sizes, "members": members, "updates_per_call": updates,
            "program_updates_per_s": rate, "seed_updates_per_s": rate * members,
            "seed_updates_per_s_range": [min(rates) * members, max(rates) * members],
            "minutes_per_1m_steps": 1e6 / rate / 60,
            "data_bytes": int(sum(x.nbytes for x in jax.tree.leaves(data))),
            "compile_s": joint.compile_seconds,
            "memory_analysis": _memory(joint.compile(init_states(agent, [0] * members), data,
                                                     updates, jnp.asarray(where))),
            "separate_program_updates_per_s": alone_rate,
            "separate_minutes_per_1m_steps": len(sizes) * 1e6 / alone_rate / 60,
        }  # fmt: skip
        entry["speedup"] = entry["separate_minutes_per_1m_steps"] / entry["minutes_per_1m_steps"]
        out["programs"][name] = entry
        print(
            f"{label} multi-dataset {name} ({len(sizes)} datasets x {args.multi_seeds} seeds): "
            f"{entry['seed_updates_per_s']:10.0f} seed-upd/s, "
            f"{entry['minutes_per_1m_steps']:.1f} min per 1M steps against "
            f"{entry['separate_minutes_per_1m_steps']:.1f} min as {len(sizes)} programs "
            f"(x{entry['speedup']:.2f})",
            flush=True,
        )
    done = out["programs"].values()
    if len(done) == len(MULTI_PROGRAMS):
        out["minutes_per_1m_steps_all"] = sum(e["minutes_per_1m_steps"] for e in done)
        out["separate_minutes_per_1m_steps_all"] = sum(
            e["separate_minutes_per_1m_steps"] for e in done
        )
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
    parser.add_argument("--matmul_precision", default="highest", choices=JAX_PRECISIONS,
                        help="the process's, as config.matmul_precision (highest: true "
                        "float32); set before anything compiles")  # fmt: skip
    parser.add_argument("--precisions", nargs="*", default=["default", "bfloat16"],
                        choices=[*JAX_PRECISIONS, "bfloat16"],
                        help="settings timed beside the process precision on a GPU: a JAX "
                        "precision, or bfloat16 (matmul_dtype=bfloat16)")  # fmt: skip
    parser.add_argument(
        "--precision_agents",
        nargs="*",
        default=["ofql"],
        choices=list(throughput.VARIANTS),
        help="agents of that comparison",
    )
    parser.add_argument("--precision_compare", type=int, nargs="*", default=[1, 16, 256],
                        help="seed counts of that comparison")  # fmt: skip
    parser.add_argument(
        "--decision_designs",
        nargs="+",
        default=["device", "host"],
        choices=["auto", "device", "host"],
        help="Policy(draws=...) timed, the first under the plain keys",
    )
    parser.add_argument("--multi_agents", nargs="*", default=["ofql"],
                        choices=list(throughput.VARIANTS),
                        help="agents timed in the multi-dataset programs")  # fmt: skip
    parser.add_argument("--multi_seeds", type=int, default=3, help="seeds per dataset there")
    parser.add_argument("--multi_max_transitions", type=int, default=2_000_000,
                        help="cap on each synthetic dataset's size (dry run: 2,000)")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU smoke: 1 and 2 seeds, 20 updates, 1 repeat")  # fmt: skip
    args = parser.parse_args()
    if args.dry_run:
        args.seeds, args.updates, args.repeats, args.decision_calls = [1, 2], 20, 1, 5
        args.budget_s = 1e9  # everything runs
        args.precision_compare = args.precision_compare and [1]
        args.multi_max_transitions = 2_000
    args.updates_for = lambda n: max(args.updates // max(n // 16, 1), 20)

    start = time.perf_counter()
    set_matmul_precision(args.matmul_precision)  # once, before anything compiles
    out = environment()
    out["dry_run"] = args.dry_run
    names = ("agents", "seeds", "updates", "repeats", "decision_calls", "budget_s",
             "decision_budget_s", "compile_workers", "precisions", "precision_agents",
             "precision_compare", "decision_designs", "multi_agents", "multi_seeds",
             "multi_max_transitions")  # fmt: skip
    out["settings"] = {k: getattr(args, k) for k in names}
    print(f"device: {out['device_kind']} ({out['backend']}), jax {out['versions']['jax']}",
          flush=True)  # fmt: skip
    out["matmul_256_gflops"] = statistics.median(throughput.bench_matmul(args.repeats))
    data = throughput._dataset()
    out["agents"], out["skipped"] = {}, []
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = start + args.budget_s
    compare = [(label, n, setting) for label in args.precision_agents if label in args.agents
               for setting in args.precisions if setting != args.matmul_precision
               for n in args.precision_compare]  # fmt: skip
    keys = priority(args.agents, args.seeds, compare if out["backend"] == "gpu" or args.dry_run
                    else [])  # fmt: skip
    t0 = time.perf_counter()
    agents, programs = build_programs(keys, args.updates_for, data, deadline, out["skipped"],
                                      args.compile_workers)  # fmt: skip
    out["compile_seconds_total"] = time.perf_counter() - t0
    for label in args.agents:  # every compiled program is timed; decisions within the budget
        until = deadline + args.decision_budget_s
        out["agents"][label] = bench_agent(label, agents, programs, args, data, until,
                                           out["skipped"])  # fmt: skip
        if label in args.multi_agents:
            out["agents"][label]["multi_dataset"] = bench_multi_dataset(
                label, args, until, out["skipped"]
            )
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

"""Before and after in one run: ``benchmarks/throughput.py`` of two checkouts, alternately.

A shared, noisy machine changes speed from one hour to the next, so two commits are only
comparable when timed in the same run, taking turns. Each round runs the ``before`` tree's
benchmark, then the ``after`` tree's (each imports its own ``ofql_jax``: the tree is first on
``PYTHONPATH``), and the JSON gives every figure's median over the rounds and the ratio
after / before.

    git worktree add --detach /tmp/before <commit>
    python benchmarks/compare_commits.py --before /tmp/before --after . --rounds 2 \\
        --out benchmarks/results/compare.json -- --agents ofql dql5 --seeds 1 16

Everything after ``--`` goes to ``throughput.py`` (``--json`` is added).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# The figures compared, per agent (throughput.py's JSON keys); higher is faster for all.
FIGURES = ("train_updates_per_s", "decisions_per_s", "single_state_decisions_per_s")


def run_tree(tree: Path, args: list[str]) -> dict:
    """One throughput.py run of ``tree``'s code; its JSON (the last line of its output)."""
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "throughput.py"), *args, "--json"],
        cwd=tree, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{tree}: throughput.py failed:\n{done.stderr[-3000:]}")
    print(done.stdout.rsplit("\n", 2)[0][-2000:], flush=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def figures(result: dict) -> dict[str, float]:
    """Flat ``agent/figure`` -> value, with ``agent/seed_updates_per_s@<n>`` per seed count."""
    out = {}
    for label, agent in result.get("agents", result).items():
        if not isinstance(agent, dict):
            continue
        for key in FIGURES:
            if isinstance(agent.get(key), int | float):
                out[f"{label}/{key}"] = float(agent[key])
        for seeds, value in (agent.get("train_seed_updates_per_s") or {}).items():
            out[f"{label}/seed_updates_per_s@{seeds}"] = float(value)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the old code")
    parser.add_argument("--after", type=Path, default=Path("."), help="checkout of the new code")
    parser.add_argument("--rounds", type=int, default=2, help="turns of before then after")
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="-- throughput.py arguments")
    args = parser.parse_args()
    rest = [a for a in args.rest if a != "--"]
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    commits = {
        name: subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        for name, tree in trees.items()
    }  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    start = time.time()
    for round_ in range(args.rounds):
        for name, tree in trees.items():
            print(f"round {round_ + 1}/{args.rounds}: {name} ({commits[name]})", flush=True)
            runs[name].append(figures(run_tree(tree, rest)))
    keys = sorted(set(runs["before"][0]) & set(runs["after"][0]))
    table = {}
    for key in keys:
        before = statistics.median(r[key] for r in runs["before"])
        after = statistics.median(r[key] for r in runs["after"])
        table[key] = {"before": before, "after": after, "ratio": after / before,
                      "before_runs": [r[key] for r in runs["before"]],
                      "after_runs": [r[key] for r in runs["after"]]}  # fmt: skip
        print(f"{key:>48}: {before:10.1f} -> {after:10.1f}  (x{after / before:.3f})")
    out = {"date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "commits": commits,
           "throughput_args": rest, "rounds": args.rounds,
           "wall_s": time.time() - start, "figures": table}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

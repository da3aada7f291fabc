"""The command line that the checkpoint probes share (critic_ranking.py, mode_choice.py,
bc_pull.py, swap_critics.py, few_step_eval.py): a run's workdir, its checkpoint and members,
and the JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ofql_jax.results.writers import write_json_atomic


def checkpoint_parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by ``doc``'s first paragraph, with ``workdir``, ``--step`` and
    ``--members``; the probe adds its own options (``--json`` too, where it writes one)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("workdir", help="a run's workdir (a suite's programs/<name>)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint (default: newest)")
    parser.add_argument("--members", default="", help="labels, comma-separated (default: all)")
    return parser


def chosen_members(run, members: str) -> list[str]:
    """The labels ``--members`` names, or every member's of ``run``."""
    return [x.strip() for x in members.split(",") if x.strip()] or [m.label for m in run.members]


def finish(out: dict[str, Any], script: str, json_path: str | None) -> None:
    """Record the command that produced ``out`` and write it to ``json_path`` (if given)."""
    out["command"] = " ".join([f"python benchmarks/{script}", *sys.argv[1:]])
    if json_path:
        write_json_atomic(Path(json_path), out)
        print(f"Wrote {json_path}")

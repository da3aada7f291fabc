"""A suite's report: ``python -m ofql_jax.report SUITE_DIR [--cost=throughput.json]``.

Reads a suite directory written by the suite runner (the contract is in ``cells``) and writes
``SUITE_DIR/report.md`` with PNG figures in ``SUITE_DIR/figures/``: the sections in their
registered order (``registry``), each in the module of its part of the report: ``overview``
(the suite's head, divergence flags, failed cells), ``comparison`` (final scores, aggregates,
learning curves, the ablations, eta grids), ``cost`` and ``health``.
Every section says "not run" when its cells are absent. A section declares the suite groups
it reports; ``GROUPS`` are those groups, the ones a suite's cells may name.

Example:
    >>> write_report("runs/suite-cpu")  # doctest: +SKIP
    PosixPath('runs/suite-cpu/report.md')
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ofql_jax.core.errors import OFQLError
from ofql_jax.results.report import (  # noqa: F401 (importing a module registers its sections)
    comparison,
    cost,
    health,
    overview,
    registry,
)
from ofql_jax.results.report.cells import load_costs, load_suite

GROUPS = registry.groups()


def write_report(
    suite_dir: str | Path, cost_json: str | Path | Sequence[str | Path] | None = None
) -> Path:
    """Write ``suite_dir/report.md`` and ``suite_dir/figures/*.png``; return the report's path.

    ``cost_json``: one or more ``benchmarks/throughput.py`` outputs; by default the suite's
    own ``cost.json`` when it has one. Raises OFQLError (one sentence) for an unusable input.
    """
    suite = load_suite(suite_dir)
    if cost_json is None:
        cost_json = [p for p in [suite.directory / "cost.json"] if p.exists()]
    elif isinstance(cost_json, (str, Path)):
        cost_json = [cost_json]
    costs = load_costs([Path(p) for p in cost_json])
    figures = suite.directory / "figures"
    figures.mkdir(exist_ok=True)
    lines = []
    for section in registry.SECTIONS:
        lines += section.render(registry.Context(suite, section.groups, figures, costs))
    path = suite.directory / "report.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines).rstrip() + "\n")
    tmp.replace(path)
    return path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one sentence, exit 2, no usage dump
        self.exit(2, f"{message}: see python -m ofql_jax.report --help.\n")


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI; returns the exit status (0, or 2 with one sentence on stderr)."""
    parser = _Parser(
        prog="python -m ofql_jax.report",
        description="Write SUITE_DIR/report.md and SUITE_DIR/figures/*.png from a suite's results.",
    )
    parser.add_argument("suite_dir", metavar="SUITE_DIR", help="a directory written by the suite")
    parser.add_argument(
        "--cost",
        action="append",
        metavar="JSON",
        help="a benchmarks/throughput.py output (repeatable; default: SUITE_DIR/cost.json)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.suite_dir, args.cost)
    except OFQLError as err:
        if args.debug:
            raise
        print(str(err), file=sys.stderr)
        return 2
    print(f"Wrote {path}")
    return 0


__all__ = ["GROUPS", "load_suite", "main", "write_report"]

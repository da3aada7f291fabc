"""The package's layers: every import points down, none is hidden in a function, no circle.

The floors (docs/extending.md draws them): a module may import its own subpackage and
any subpackage on a lower floor, nothing else. Imports of optional dependencies (wandb,
imageio) may sit inside functions; imports of ofql_jax never do.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ofql_jax"
FLOORS = {
    "core": 0,  # errors, types, paths, tasks, checkpoints, stop requests, locks, --help text
    "maths": 1,  # networks, MeanFlow, diffusion, flow matching, critics, selection, diagnostics
    "data": 1,  # Minari datasets -> Transitions, synthetic data, dataset writers
    "agents": 2,  # one file per algorithm behind one contract
    "behavior": 2,  # SAC behaviour policies and the replica datasets they rebuild
    "evaluation": 3,  # environment pool, evaluator, acting records, Policy, video
    "results": 3,  # results.json schema, aggregation, writers, paper numbers, report
    "training": 4,  # trainer, Experiment, sweeps, sharding, runtime, config checks, loading
    "cli": 5,  # python -m ofql_jax.{main,suite,evaluate,report,toy} and the package's API
}


def layer(module: str) -> str:
    """``ofql_jax.maths.critic`` -> ``maths``; top-level modules are the command line."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (PACKAGE / parts[-1]).is_dir() else "cli"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _is_type_checking_block(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` at a module's top."""
    return isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"


def imports() -> dict[str, dict[str, bool]]:
    """``{module: {imported ofql_jax module: at module top?}}``."""
    mods = modules()
    out: dict[str, dict[str, bool]] = defaultdict(dict)
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        for block in (n for n in tree.body if _is_type_checking_block(n)):
            top |= {id(n) for n in block.body}  # imports for type checkers only: at the top
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                # ``from package import module`` imports the module (the package's own
                # __init__ runs first in any case, as for every submodule)
                subs = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t for t in subs if t in mods] or [node.module]
            else:
                continue
            for target in targets:
                if target in mods and target != name:
                    out[name][target] = out[name].get(target, False) or id(node) in top
    return out


def test_every_import_points_down_or_stays_in_its_subpackage():
    wrong = []
    for name, targets in imports().items():
        for target in targets:
            a, b = layer(name), layer(target)
            if a != b and FLOORS[a] <= FLOORS[b]:
                wrong.append(f"{name} ({a}, {FLOORS[a]}) -> {target} ({b}, {FLOORS[b]})")
    assert not wrong, "\n".join(wrong)


def test_package_imports_sit_at_module_top():
    hidden = [f"{n} -> {t}" for n, ts in imports().items() for t, top in ts.items() if not top]
    assert not hidden, "\n".join(hidden)


def test_no_import_circle():
    graph = {n: set(ts) for n, ts in imports().items()}
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError(" -> ".join([*path[path.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_every_subpackage_has_a_floor():
    assert {layer(n) for n in modules()} <= set(FLOORS)


def subpackage_graph() -> str:
    """The subpackage import graph as a Mermaid block, floors top (commands) to bottom."""
    edges = sorted(
        {(layer(n), layer(t)) for n, ts in imports().items() for t in ts if layer(n) != layer(t)}
    )
    lines = ["```mermaid", "flowchart TD"]
    for floor in sorted(set(FLOORS.values()), reverse=True):
        names = [name for name, f in FLOORS.items() if f == floor]
        lines.append(f"    subgraph floor{floor}[floor {floor}]")
        lines += [f"        {name}" for name in names]
        lines.append("    end")
    lines += [f"    {a} --> {b}" for a, b in edges]
    lines.append("```")
    return "\n".join(lines)


def test_the_drawn_graph_is_the_code_s():
    """docs/extending.md shows the graph this file computes (regenerate: run this file)."""
    doc = (PACKAGE.parent / "docs" / "extending.md").read_text()
    assert subpackage_graph() in doc, "run python tests/test_architecture.py and paste its output"


def _is_main_guard(node: ast.AST) -> bool:
    """``if __name__ == "__main__":`` at a module's top."""
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(test, ast.Compare)
        and getattr(test.left, "id", None) == "__name__"
        and any(getattr(c, "value", None) == "__main__" for c in test.comparators)
    )


def test_no_command_line_module_is_imported_with_the_package():
    """``python -m M`` runs M's file afresh; if ``import ofql_jax`` already imported M, runpy
    warns (RuntimeWarning: found in sys.modules) before every run of the command."""
    commands = sorted(
        name
        for name, path in modules().items()
        if any(_is_main_guard(n) for n in ast.parse(path.read_text()).body)
    )
    assert "ofql_jax.behavior.replica" in commands and "ofql_jax.main" in commands
    probe = "import sys, ofql_jax; print(*(m for m in sys.modules if m.startswith('ofql_jax')))"
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert not set(commands) & set(out.stdout.split()), out.stdout


if __name__ == "__main__":
    print(subpackage_graph())

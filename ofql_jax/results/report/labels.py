"""Everything the report knows about particular agents, in one place.

The display name of an algorithm, the agent field that names the paper's variant of it
(DQL(T), FQL(K) flow steps, FBRAC(T)), the variant the paper's Table 1 and ablation ran, and
the agent the cost ratios are taken against. Defaults are read from the agent registry
(``ofql_jax.agents.AGENTS``); the sections never test an algorithm's name.
"""

from __future__ import annotations

from typing import Any

from ofql_jax.agents import AGENTS
from ofql_jax.results import paper_numbers as paper

_LABELS = {
    "ofql": "OFQL",
    "dql": "DQL",
    "fql": "FQL",
    "fbrac": "FBRAC",
    "bc": "BC",
    "flow_bc": "flow BC",
}
# Agent fields that name the paper's variant (DQL(T), FQL(K) flow steps, FBRAC(T)).
_STEP_FIELDS = {"dql": "num_diffusion_steps", "fql": "flow_steps", "fbrac": "train_steps"}
# The variant the paper's Table 1 and one-step ablation report, where a cell may differ.
_PAPER_STEPS = {"dql": 5}
# Cost is reported as ratios to this agent, as the paper's Figure 3.
COST_REFERENCE = "ofql"


def agent_label(algorithm: str) -> str:
    """The report's name of an algorithm when the suite gives none: ``"flow BC"``."""
    return _LABELS.get(algorithm, algorithm)


def variant_steps(algorithm: str, config: dict[str, Any] | None = None) -> int | None:
    """DQL's T, FQL's flow steps or FBRAC's training steps; the agent's default if unset."""
    field = _STEP_FIELDS.get(algorithm)
    if field is None:
        return None
    if config and field in config:
        return int(config[field])
    spec = AGENTS.get(algorithm)
    return int(spec.default_config()[field]) if spec is not None else None


def variant_name(algorithm: str, steps: int | None) -> str:
    """``"DQL(5)"``, ``"FQL(10)"``, ``"FBRAC(5)"``, ``"OFQL"``, ``"flow BC"``: the paper's style."""
    ref = paper.cost_entry(algorithm, steps)
    if ref is not None:
        return ref.label
    name = agent_label(algorithm)
    return f"{name}({steps})" if steps is not None else name


def paper_variant_differs(algorithm: str, config: dict[str, Any]) -> str | None:
    """``"T = 5"`` when a cell runs another variant than the paper's Table 1 (DQL with T != 5);
    None when it runs the paper's or the paper fixes none."""
    steps = _PAPER_STEPS.get(algorithm)
    if steps is None or variant_steps(algorithm, config) == steps:
        return None
    return f"T = {steps}"

"""Everything the report knows about particular agents, in one place.

The display name of an algorithm, the agent field that names the paper's variant of it
(DQL(T), FQL(K) flow steps, FBRAC(T)) and the variant the paper's Table 1 and ablation ran
come from the agent's spec (``ofql_jax.agents.AGENTS``); the agent the cost ratios are taken
against is the report's choice. The sections never test an algorithm's name.
"""

from __future__ import annotations

from typing import Any

from ofql_jax.agents import AGENTS
from ofql_jax.results import paper_numbers as paper

# Cost is reported as ratios to this agent, as the paper's Figure 3.
COST_REFERENCE = "ofql"


def agent_label(algorithm: str) -> str:
    """The report's name of an algorithm when the suite gives none: ``"flow BC"``."""
    spec = AGENTS.get(algorithm)
    return spec.label if spec is not None else algorithm


def variant_steps(algorithm: str, config: dict[str, Any] | None = None) -> int | None:
    """DQL's T, FQL's flow steps or FBRAC's training steps; the agent's default if unset."""
    spec = AGENTS.get(algorithm)
    field = spec.variant_field if spec is not None else None
    if field is None:
        return None
    if config and field in config:
        return int(config[field])
    return int(spec.default_config()[field])


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
    spec = AGENTS.get(algorithm)
    steps = spec.paper_variant if spec is not None else None
    if steps is None or variant_steps(algorithm, config) == steps:
        return None
    return f"T = {steps}"

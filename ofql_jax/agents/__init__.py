"""Algorithms. Each module here that defines ``SPEC = AgentSpec(...)`` is registered by name.

Adding an algorithm is one new file in this package (see ``ofql_jax/agents/base.py`` for the
contract and ``ofql.py`` for an example); ``--config.algorithm=<name>`` selects it.
"""

from __future__ import annotations

import importlib
import pkgutil

from ofql_jax.agents.base import Agent, AgentSpec, AgentState
from ofql_jax.agents.ofql import default_config, make_ofql
from ofql_jax.core.errors import OFQLError


def _discover() -> dict[str, AgentSpec]:
    specs = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, AgentSpec):
            specs[spec.name] = spec
    return specs


AGENTS: dict[str, AgentSpec] = _discover()


def get_agent_spec(name: str) -> AgentSpec:
    """The registered algorithm ``name``, or a one-sentence error listing the valid names."""
    if name not in AGENTS:
        raise OFQLError(
            f"Unknown algorithm {name!r}: use --config.algorithm with one of "
            f"{', '.join(sorted(AGENTS))}."
        )
    return AGENTS[name]


__all__ = [
    "AGENTS",
    "Agent",
    "AgentSpec",
    "AgentState",
    "default_config",
    "get_agent_spec",
    "make_ofql",
]

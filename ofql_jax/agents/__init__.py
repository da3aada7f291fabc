"""Algorithms, by name: ``--config.algorithm=<name>`` selects one.

An algorithm is one module whose ``AgentSpec`` (``ofql_jax/agents/base.py``) says everything
the framework knows about it: defaults, per-task table, label, evaluation variants (its
agent's ``eval_options``), diagnostics and the one the value monitor watches. Two ways in:

- In this package: a new file here defining ``SPEC = AgentSpec(...)``; it is found by itself
  (``ofql.py`` is an example; ``actor_critic.py`` is DQL's step for agents that only change
  the policy).
- Anywhere else (your project, a test): call ``register(SPEC)`` in your module and name the
  module in the environment variable ``OFQL_JAX_AGENTS`` (comma-separated import paths), so
  that every command (``ofql_jax.main``, ``ofql_jax.suite``, ``ofql_jax.report``,
  ``load_run``) imports it first::

      OFQL_JAX_AGENTS=my_project.agent python -m ofql_jax.main \\
          --config=experiments/d4rl.py:hopper-medium --config.algorithm=my_agent

  ``tests/test_new_agent.py`` does exactly that.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from ofql_jax.agents.base import Agent, AgentSpec, AgentState
from ofql_jax.agents.ofql import default_config, make_ofql
from ofql_jax.core.errors import OFQLError

PLUGINS_ENV = "OFQL_JAX_AGENTS"
AGENTS: dict[str, AgentSpec] = {}


def register(spec: AgentSpec) -> AgentSpec:
    """Make ``spec`` selectable as ``--config.algorithm=<spec.name>``; returns it.

    Example:
        >>> from ofql_jax.agents import AGENTS, register
        >>> register(AGENTS["bc"]).label
        'BC'
    """
    if AGENTS.get(spec.name, spec) is not spec:
        raise OFQLError(
            f"Two algorithms are called {spec.name!r}: give the one you register another name."
        )
    AGENTS[spec.name] = spec
    return spec


def get_agent_spec(name: str) -> AgentSpec:
    """The registered algorithm ``name``, or a one-sentence error listing the valid names."""
    if name not in AGENTS:
        raise OFQLError(
            f"Unknown algorithm {name!r}: use --config.algorithm with one of "
            f"{', '.join(sorted(AGENTS))} (or register yours, see ofql_jax.agents)."
        )
    return AGENTS[name]


def _discover() -> None:
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, AgentSpec):
            register(spec)
    for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise OFQLError(
                f"{PLUGINS_ENV} names the module {name!r}, which does not import ({err}): "
                "fix the name or the PYTHONPATH, or unset it."
            ) from err


_discover()

__all__ = [
    "AGENTS",
    "Agent",
    "AgentSpec",
    "AgentState",
    "default_config",
    "get_agent_spec",
    "make_ofql",
    "register",
]

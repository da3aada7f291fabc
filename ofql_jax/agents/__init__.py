"""Algorithms: each module has ``default_config()`` and ``make_<name>(config, obs, act)``."""

from ofql_jax.agents.ofql import Agent, AgentState, default_config, make_ofql

AGENTS = {"ofql": make_ofql}
AGENT_DEFAULTS = {"ofql": default_config}

__all__ = ["AGENTS", "AGENT_DEFAULTS", "Agent", "AgentState", "default_config", "make_ofql"]

"""Algorithms: each module has ``default_config()`` and ``make_<name>(config, obs, act)``."""

from ofql_jax.agents.ofql import Agent, AgentState, default_config, make_ofql

AGENTS = {"ofql": make_ofql}

__all__ = ["AGENTS", "Agent", "AgentState", "default_config", "make_ofql"]

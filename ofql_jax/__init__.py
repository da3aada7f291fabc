"""ofql-jax: One-Step Flow Q-Learning in JAX.

Library use::

    import jax, ofql_jax
    agent = ofql_jax.make_ofql(ofql_jax.default_config(), obs_dim=11, act_dim=3)
    states = jax.vmap(agent.init)(jax.random.split(jax.random.key(0), 4))
    update = jax.jit(jax.vmap(agent.update, in_axes=(0, None)))

A finished run::

    run = ofql_jax.load_run("runs/offline")
    action = run.policy(seed=0, num_candidates=1)(observation)  # env units in and out
"""

from typing import TYPE_CHECKING

from ofql_jax.agents import AGENTS, Agent, AgentState, default_config, make_ofql
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.types import Transitions
from ofql_jax.training.trainer import init_states, make_train_chunk, seed_keys, seed_values

__version__ = "0.1.0"

# Loaded on first use (PEP 562): the loading module imports the replica and SAC modules, and
# importing them with the package would make `python -m ofql_jax.behavior.replica` (and
# `...train_sac`) warn that the module was already in sys.modules before it ran.
_LAZY = {"LoadedRun": "ofql_jax.training.loading", "load_run": "ofql_jax.training.loading"}
if TYPE_CHECKING:  # their types, for type checkers and editors
    from ofql_jax.training.loading import LoadedRun, load_run


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ofql_jax' has no attribute {name!r}")


__all__ = [
    "AGENTS",
    "Agent",
    "AgentState",
    "LoadedRun",
    "OFQLError",
    "Transitions",
    "default_config",
    "init_states",
    "load_run",
    "make_ofql",
    "make_train_chunk",
    "seed_keys",
    "seed_values",
]

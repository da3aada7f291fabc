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

from ofql_jax.agents import AGENTS, Agent, AgentState, default_config, make_ofql
from ofql_jax.errors import OFQLError
from ofql_jax.trainer import init_states, make_train_chunk, seed_keys, seed_values
from ofql_jax.types import Transitions

__version__ = "0.1.0"


def __getattr__(name: str):
    # Loading pulls in the experiment, data and evaluation modules: imported on first use.
    if name in ("load_run", "LoadedRun"):
        from ofql_jax import loading

        return getattr(loading, name)
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

"""ofql-jax: One-Step Flow Q-Learning in JAX.

Library use::

    import jax, ofql_jax
    agent = ofql_jax.make_ofql(ofql_jax.default_config(), obs_dim=11, act_dim=3)
    states = jax.vmap(agent.init)(jax.random.split(jax.random.key(0), 4))
    update = jax.jit(jax.vmap(agent.update, in_axes=(0, None)))
"""

from ofql_jax.agents import AGENTS, Agent, AgentState, default_config, make_ofql
from ofql_jax.errors import OFQLError
from ofql_jax.trainer import init_states, make_train_chunk, seed_keys, seed_values
from ofql_jax.types import Transitions

__version__ = "0.1.0"

__all__ = [
    "AGENTS",
    "Agent",
    "AgentState",
    "OFQLError",
    "Transitions",
    "default_config",
    "init_states",
    "make_ofql",
    "make_train_chunk",
    "seed_keys",
    "seed_values",
]

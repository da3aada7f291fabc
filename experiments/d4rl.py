"""OFQL (and its baselines) on the paper's D4RL tasks, via their Minari successors.

Pick a task, and optionally a protocol, after a colon; override any field on the command line:

    python -m ofql_jax.main --config=experiments/d4rl.py:hopper-medium \
        --config.num_seeds=5 --config.agent.eta=0.1 --workdir=runs/hopper
    python -m ofql_jax.main --config=experiments/d4rl.py:hopper-medium,dql  # DQL's protocol
    python -m ofql_jax.main --config=experiments/d4rl.py:hopper-medium --config.algorithm=bc

Protocols (docs/algorithm.md): ``paper`` (default) is the paper's: lr 3e-4, 2M steps on
MuJoCo (1M on AntMaze and Kitchen), the EMA actor evaluated with noise x 0.5 and N = 50
candidates drawn by softmax(w Q) with the task's w, 3 seeds x 150 episodes. ``dql`` is
DQL's: its per-task lr, the online actor, softmax(Q), 10 episodes (100 on AntMaze and
Kitchen), 5 seeds. The protocol sets the fields marked [P]; ``protocol`` itself only records
it. ``algorithm=NAME`` after the task (or ``--config.algorithm=NAME``) picks the algorithm.

Every field, its default and what it means: docs/config.md, or ``python -m ofql_jax.main
--help`` (``--config.algorithm=dql --help`` for DQL's agent fields). The fields are declared
once, in ofql_jax/core/config_fields.py (run fields) and each agent's ``default_config``.
"""

import ml_collections

from ofql_jax.agents import get_agent_spec
from ofql_jax.core.config_fields import build_config
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.tasks import PROTOCOLS, get_task

DEFAULT_TASK = "hopper-medium"


def parse_arg(arg: str | None) -> tuple[str, str, str]:
    """``"task[,protocol][,algorithm=name]"`` -> ``(task, protocol, algorithm)``.

    Defaults: hopper-medium, paper, ofql. ``--config.algorithm=name`` on the command line
    has the same effect: ``python -m ofql_jax.main`` rebuilds the config for that algorithm
    before it applies the other ``--config.*`` flags.
    """
    parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
    algorithm = "ofql"
    named = [p for p in parts if p.startswith("algorithm=")]
    for part in named:
        algorithm = part.split("=", 1)[1]
        parts.remove(part)
    task = parts[0] if parts else DEFAULT_TASK
    protocol = parts[1] if len(parts) > 1 else "paper"
    if len(parts) > 2 or protocol not in PROTOCOLS:
        raise OFQLError(
            f"Cannot read the config argument {arg!r}: write TASK, TASK,PROTOCOL or "
            f"TASK,PROTOCOL,algorithm=NAME with PROTOCOL one of {', '.join(PROTOCOLS)}, e.g. "
            "experiments/d4rl.py:hopper-medium,dql."
        )
    return task, protocol, algorithm


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The experiment config for ``"task[,protocol][,algorithm=name]"``."""
    task, protocol, algorithm = parse_arg(arg)
    return build_config(get_task(task), protocol, get_agent_spec(algorithm))

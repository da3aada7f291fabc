"""The paper's task names -> Minari datasets and per-task settings of both protocols.

Two protocols (``docs/algorithm.md``):

- ``paper`` (default): OFQL as the paper states it: Adam lr 3e-4 on every task, 2M
  gradient steps on MuJoCo and 1M on AntMaze and Kitchen, and the evaluation of
  CleanDiffuser's DQL pipelines (Dong et al. 2024), which the paper follows: the EMA actor,
  initial noise x 0.5, N = 50 candidates drawn by ``softmax(w Q)`` with a per-task weight
  temperature ``w``, 3 seeds x 150 episodes.
- ``dql``: DQL's own protocol (Wang et al. 2022): DQL's per-task lr, the online actor,
  ``softmax(Q)`` (w = 1), no noise temperature, 10 episodes (100 on AntMaze and Kitchen),
  5 seeds.

Both keep the AntMaze reward tune. What an agent sets per task (DQL's lr, eta, gradient
clip and max-Q backup, OFQL's eta, FQL's alpha) lives in that agent's module
(``ofql_jax.agents``, its ``task_defaults``).

Minari hosts ``mujoco/<env>/{simple,medium,expert}-v0`` (Gymnasium MuJoCo v5)
but no medium-replay (those tasks train on this project's replica, see
``ofql_jax.behavior.replica``); medium-expert is built as D4RL built it, by
concatenating the medium and expert datasets. Scores on v5 environments are
not comparable with the paper's D4RL v2 numbers.
"""

from __future__ import annotations

import dataclasses

from ofql_jax.core.errors import OFQLError

PROTOCOLS = ("paper", "dql")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Everything the two protocols fix for one task."""

    name: str  # the paper's name, e.g. "hopper-medium"
    domain: str  # "locomotion" | "antmaze" | "kitchen"
    dataset_ids: tuple[str, ...]  # Minari ids, concatenated in this order; () = none official
    in_paper: bool  # one of the 15 tasks of the paper's Table 1
    reward_tune: str  # "none" | "antmaze"
    num_steps: int  # gradient steps (both protocols): 2M MuJoCo, 1M AntMaze and Kitchen
    q_temperature: float  # w of softmax(w Q) at evaluation, paper protocol (CleanDiffuser)
    q_temperature_source: str  # where q_temperature comes from
    dql_eval_episodes: int  # DQL protocol: 10 locomotion, 100 AntMaze/Kitchen
    ref_scores: tuple[float, float]  # D4RL (random, expert) returns


# D4RL reference returns (random, expert), docs/algorithm.md.
D4RL_REF_SCORES = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "antmaze": (0.0, 1.0),
    "kitchen": (0.0, 4.0),
}

# Observation and action sizes of each environment's datasets (Gymnasium v5 MuJoCo, the
# D4RL v2 ones alike): tasks of one shape can share a multi-dataset program.
ENV_SHAPES = {"hopper": (11, 3), "halfcheetah": (17, 6), "walker2d": (17, 6)}


def task_shape(name: str) -> tuple[int, int] | None:
    """(observation size, action size) of a task's datasets; None where not tabled."""
    return ENV_SHAPES.get(name.split("-", 1)[0])


# The paper-protocol evaluation is the same for every task (CleanDiffuser's DQL pipelines).
PAPER_EVAL = dict(seeds=3, episodes=150, candidates=50, actor="ema", noise_temperature=0.5)
DQL_EVAL = dict(seeds=5, candidates=50, actor="online", noise_temperature=1.0, q_temperature=1.0)
PAPER_LR = 3e-4  # the paper protocol's actor lr on every task (agents built on DQL's recipe)

# name: (in_paper, reward_tune, w). The tune is DQL's main.py; w is CleanDiffuser's
# configs/dql/task/*.yaml (docs/algorithm.md). w = None: CleanDiffuser has no such task (see
# _W_FALLBACK).
_TABLE = {
    "halfcheetah-medium": (True, "none", 50.0),
    "hopper-medium": (True, "none", 100.0),
    "walker2d-medium": (True, "none", 300.0),
    "halfcheetah-medium-replay": (True, "none", 50.0),
    "hopper-medium-replay": (True, "none", 100.0),
    "walker2d-medium-replay": (True, "none", 300.0),
    "halfcheetah-medium-expert": (True, "none", 50.0),
    "hopper-medium-expert": (True, "none", 8.0),
    "walker2d-medium-expert": (True, "none", 300.0),
    "antmaze-umaze": (False, "antmaze", None),
    "antmaze-umaze-diverse": (False, "antmaze", None),
    "antmaze-medium-play": (True, "antmaze", 10.0),
    "antmaze-medium-diverse": (True, "antmaze", 5.0),
    "antmaze-large-play": (True, "antmaze", 5.0),
    "antmaze-large-diverse": (True, "antmaze", 10.0),
    "kitchen-complete": (False, "none", None),
    "kitchen-partial": (True, "none", 3.0),
    "kitchen-mixed": (True, "none", 3.0),
}
# Tasks outside the paper's table take their domain's value (this project's choice).
_W_FALLBACK = {"antmaze": 10.0, "kitchen": 3.0}


def _minari_ids(name: str) -> tuple[str, ...]:
    env, level = name.split("-", 1)
    if env in ("hopper", "halfcheetah", "walker2d"):
        if level == "medium-expert":
            return (f"mujoco/{env}/medium-v0", f"mujoco/{env}/expert-v0")
        if level == "medium":
            return (f"mujoco/{env}/medium-v0",)
        return ()  # medium-replay: Minari has no official counterpart
    if env == "antmaze":
        return (f"D4RL/antmaze/{level}-v1",)
    return (f"D4RL/kitchen/{level}-v2",)


def _spec(name: str) -> TaskSpec:
    in_paper, tune, w = _TABLE[name]
    env = name.split("-", 1)[0]
    domain = env if env in ("antmaze", "kitchen") else "locomotion"
    source = "CleanDiffuser (configs/dql/task)"
    if w is None:
        w, source = _W_FALLBACK[domain], f"this project's choice (the {domain} value)"
    return TaskSpec(
        name=name,
        domain=domain,
        dataset_ids=_minari_ids(name),
        in_paper=in_paper,
        reward_tune=tune,
        num_steps=2_000_000 if domain == "locomotion" else 1_000_000,
        q_temperature=w,
        q_temperature_source=source,
        dql_eval_episodes=10 if domain == "locomotion" else 100,
        ref_scores=D4RL_REF_SCORES[env],
    )


TASKS: dict[str, TaskSpec] = {name: _spec(name) for name in _TABLE}
PAPER_TASKS = tuple(name for name, spec in TASKS.items() if spec.in_paper)  # the 15 of Table 1


def get_task(name: str) -> TaskSpec:
    """Look up a task by the paper's name, with a clear error for unknown names.

    Example:
        >>> get_task("hopper-medium").dataset_ids
        ('mujoco/hopper/medium-v0',)
    """
    if name not in TASKS:
        raise OFQLError(
            f"Unknown task {name!r}: choose one of {', '.join(sorted(TASKS))}, "
            "or keep a known task and set --config.dataset_id to any Minari dataset."
        )
    return TASKS[name]

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

Both keep DQL's per-task gradient clip, max-Q backup and AntMaze reward tune. OFQL's
per-task eta is not published: ``eta`` below is this project's choice from the paper's grid
{0.001, 0.01, 0.1, 0.3, 0.5}; ``dql_eta`` is DQL's, for reference and for the DQL agent.

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
    lr: float  # actor learning rate, paper protocol (3e-4 everywhere)
    dql_lr: float  # actor learning rate, DQL protocol (DQL's per-task value)
    dql_eta: float  # DQL's eta, for reference and for the DQL agent
    eta: float  # OFQL Q-term weight used by default (this project's choice)
    max_q_backup: bool  # DQL's max-Q backup over 10 sampled next actions
    reward_tune: str  # "none" | "antmaze"
    grad_norm: float  # gradient-norm clip on actor and critic (DQL's)
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

# Default OFQL eta per domain (unknown in the paper; chosen from its grid, docs/algorithm.md).
DEFAULT_ETA = {"locomotion": 0.3, "antmaze": 0.5, "kitchen": 0.01}

# The paper-protocol evaluation is the same for every task (CleanDiffuser's DQL pipelines).
PAPER_EVAL = dict(seeds=3, episodes=150, candidates=50, actor="ema", noise_temperature=0.5)
DQL_EVAL = dict(seeds=5, candidates=50, actor="online", noise_temperature=1.0, q_temperature=1.0)
PAPER_LR = 3e-4
# name: (in_paper, DQL lr, DQL eta, max_q_backup, reward_tune, gn, w).
# lr, eta, max-Q, tune and gn: DQL's main.py; w: CleanDiffuser's configs/dql/task/*.yaml
# (docs/algorithm.md). w = None: CleanDiffuser has no such task (see _W_FALLBACK).
_TABLE = {
    "halfcheetah-medium": (True, 3e-4, 1.0, False, "none", 9.0, 50.0),
    "hopper-medium": (True, 3e-4, 1.0, False, "none", 9.0, 100.0),
    "walker2d-medium": (True, 3e-4, 1.0, False, "none", 1.0, 300.0),
    "halfcheetah-medium-replay": (True, 3e-4, 1.0, False, "none", 2.0, 50.0),
    "hopper-medium-replay": (True, 3e-4, 1.0, False, "none", 4.0, 100.0),
    "walker2d-medium-replay": (True, 3e-4, 1.0, False, "none", 4.0, 300.0),
    "halfcheetah-medium-expert": (True, 3e-4, 1.0, False, "none", 7.0, 50.0),
    "hopper-medium-expert": (True, 3e-4, 1.0, False, "none", 5.0, 8.0),
    "walker2d-medium-expert": (True, 3e-4, 1.0, False, "none", 5.0, 300.0),
    "antmaze-umaze": (False, 3e-4, 0.5, False, "antmaze", 2.0, None),
    "antmaze-umaze-diverse": (False, 3e-4, 2.0, True, "antmaze", 3.0, None),
    "antmaze-medium-play": (True, 1e-3, 2.0, True, "antmaze", 2.0, 10.0),
    "antmaze-medium-diverse": (True, 3e-4, 3.0, True, "antmaze", 1.0, 5.0),
    "antmaze-large-play": (True, 3e-4, 4.5, True, "antmaze", 10.0, 5.0),
    "antmaze-large-diverse": (True, 3e-4, 3.5, True, "antmaze", 7.0, 10.0),
    "kitchen-complete": (False, 3e-4, 0.005, False, "none", 9.0, None),
    "kitchen-partial": (True, 3e-4, 0.005, False, "none", 10.0, 3.0),
    "kitchen-mixed": (True, 3e-4, 0.005, False, "none", 10.0, 3.0),
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
    in_paper, dql_lr, dql_eta, max_q, tune, gn, w = _TABLE[name]
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
        lr=PAPER_LR,
        dql_lr=dql_lr,
        dql_eta=dql_eta,
        eta=DEFAULT_ETA[domain],
        max_q_backup=max_q,
        reward_tune=tune,
        grad_norm=gn,
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

"""The paper's task names -> Minari datasets and per-task hyperparameters.

Per-task values (lr, gn, max_q_backup, reward tune) are DQL's (Wang et al. 2022),
which OFQL keeps; see docs/ofql.md. OFQL's per-task eta winners are not
published: ``eta`` below is this project's choice from OFQL's grid
{0.001, 0.01, 0.1, 0.3, 0.5}; ``dql_eta`` is kept for reference.

Minari hosts ``mujoco/<env>/{simple,medium,expert}-v0`` (Gymnasium MuJoCo v5)
but no medium-replay (those tasks train on this project's replica, see
``ofql_jax.data.replica``); medium-expert is built as D4RL built it, by
concatenating the medium and expert datasets. Scores on v5 environments are
not comparable with the paper's D4RL v2 numbers.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Everything the paper's protocol fixes for one task."""

    name: str  # the paper's name, e.g. "hopper-medium"
    domain: str  # "locomotion" | "antmaze" | "kitchen"
    dataset_ids: tuple[str, ...]  # Minari ids, concatenated in this order; () = none official
    lr: float  # actor learning rate (DQL)
    dql_eta: float  # DQL's eta, for reference only
    eta: float  # OFQL Q-term weight used by default (this project's choice)
    max_q_backup: bool  # DQL's max-Q backup over 10 sampled next actions
    reward_tune: str  # "none" | "antmaze"
    grad_norm: float  # gradient-norm clip on actor and critic
    eval_episodes: int  # 10 locomotion, 100 AntMaze/Kitchen
    ref_scores: tuple[float, float]  # D4RL (random, expert) returns


# D4RL reference returns (random, expert), docs/ofql.md.
D4RL_REF_SCORES = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "antmaze": (0.0, 1.0),
    "kitchen": (0.0, 4.0),
}

# Default OFQL eta per domain (unknown in the paper; chosen from its grid).
DEFAULT_ETA = {"locomotion": 0.3, "antmaze": 0.5, "kitchen": 0.01}

# name: (lr, dql_eta, max_q_backup, reward_tune, gn)
_DQL_TABLE = {
    "halfcheetah-medium": (3e-4, 1.0, False, "none", 9.0),
    "hopper-medium": (3e-4, 1.0, False, "none", 9.0),
    "walker2d-medium": (3e-4, 1.0, False, "none", 1.0),
    "halfcheetah-medium-replay": (3e-4, 1.0, False, "none", 2.0),
    "hopper-medium-replay": (3e-4, 1.0, False, "none", 4.0),
    "walker2d-medium-replay": (3e-4, 1.0, False, "none", 4.0),
    "halfcheetah-medium-expert": (3e-4, 1.0, False, "none", 7.0),
    "hopper-medium-expert": (3e-4, 1.0, False, "none", 5.0),
    "walker2d-medium-expert": (3e-4, 1.0, False, "none", 5.0),
    "antmaze-umaze": (3e-4, 0.5, False, "antmaze", 2.0),
    "antmaze-umaze-diverse": (3e-4, 2.0, True, "antmaze", 3.0),
    "antmaze-medium-play": (1e-3, 2.0, True, "antmaze", 2.0),
    "antmaze-medium-diverse": (3e-4, 3.0, True, "antmaze", 1.0),
    "antmaze-large-play": (3e-4, 4.5, True, "antmaze", 10.0),
    "antmaze-large-diverse": (3e-4, 3.5, True, "antmaze", 7.0),
    "kitchen-complete": (3e-4, 0.005, False, "none", 9.0),
    "kitchen-partial": (3e-4, 0.005, False, "none", 10.0),
    "kitchen-mixed": (3e-4, 0.005, False, "none", 10.0),
}


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
    lr, dql_eta, max_q, tune, gn = _DQL_TABLE[name]
    env = name.split("-", 1)[0]
    domain = env if env in ("antmaze", "kitchen") else "locomotion"
    return TaskSpec(
        name=name,
        domain=domain,
        dataset_ids=_minari_ids(name),
        lr=lr,
        dql_eta=dql_eta,
        eta=DEFAULT_ETA[domain],
        max_q_backup=max_q,
        reward_tune=tune,
        grad_norm=gn,
        eval_episodes=10 if domain == "locomotion" else 100,
        ref_scores=D4RL_REF_SCORES[env],
    )


TASKS: dict[str, TaskSpec] = {name: _spec(name) for name in _DQL_TABLE}


def get_task(name: str) -> TaskSpec:
    """Look up a task by the paper's name, with a clear error for unknown names.

    Example:
        >>> get_task("hopper-medium").dataset_ids
        ('mujoco/hopper/medium-v0',)
    """
    from ofql_jax.errors import OFQLError

    if name not in TASKS:
        raise OFQLError(
            f"Unknown task {name!r}: choose one of {', '.join(sorted(TASKS))}, "
            "or keep a known task and set --config.dataset_id to any Minari dataset."
        )
    return TASKS[name]

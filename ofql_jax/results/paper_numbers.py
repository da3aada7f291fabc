"""The numbers the OFQL paper publishes, as data (summarised in ``docs/algorithm.md``, section 8).

Nguyen & Yoo, "Revisiting Diffusion Q-Learning: From Iterative Denoising to One-Step Action
Generation" (arXiv 2508.13904; ICLR 2026 "One-Step Flow Q-Learning"). All scores are
D4RL-normalised on the **D4RL v2** datasets, the mean of 3 seeds x 150 episodes at the
final checkpoint. This project trains on Minari's Gymnasium MuJoCo v5 datasets or on its own
replicas: scores there are a different benchmark and are never comparable with these.

Task names are this project's (``ofql_jax.core.tasks``); algorithm names are the registry's
(``ofql_jax.agents``): ``bc``, ``dql``, ``fql``, ``ofql``, ``fbrac``. The paper's BC column
is the reference for this project's ``flow_bc`` and ``bc`` agents (``table1_column``).

Averages: the paper rounds half up (AntMaze DQL 64.55 -> 64.6, Kitchen BC 44.75 -> 44.8,
Kitchen DQL 61.55 -> 61.6); every Table 1 average recomputes from its per-task numbers to
0.1 that way. The one-step ablation's OFQL average, 92.6, is 0.1 above Table 1's MuJoCo
average for OFQL (92.5, which is also what the nine per-task numbers give: 832.5 / 9 =
92.50); its DQL (87.9) and FQL (79.2) match Table 1. The paper's Adroit numbers (pen-human
79.5, pen-cloned 62.3) are not kept here: this project has no Adroit tasks.

Example:
    >>> TABLE1["hopper-medium"]["ofql"]
    103.6
    >>> table1_column("flow_bc")
    ('bc', "the paper's BC column")
    >>> round(recomputed_average("mujoco", "dql"), 2)
    87.91
    >>> cost_entry("dql", 10).label, cost_entry("dql", 10).hours_per_1m_steps
    ('DQL(10)', 16.1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

SOURCE = "Nguyen & Yoo, arXiv 2508.13904 (ICLR 2026)"
BENCHMARK = "D4RL v2 (mujoco-py), 3 seeds x 150 episodes, final checkpoint"

# --- Table 1 ---------------------------------------------------------------------------------

TABLE1_ALGORITHMS: tuple[str, ...] = ("bc", "dql", "fql", "ofql")  # the paper's columns
TABLE1_LABELS: Mapping[str, str] = MappingProxyType(
    {"bc": "BC", "dql": "DQL", "fql": "FQL", "ofql": "OFQL"}
)

# task -> (BC, DQL, FQL, OFQL), in the paper's row order.
_TABLE1_ROWS: dict[str, tuple[float, float, float, float]] = {
    "halfcheetah-medium-expert": (55.2, 96.8, 99.8, 95.2),
    "hopper-medium-expert": (52.5, 111.1, 86.2, 110.2),
    "walker2d-medium-expert": (107.5, 110.1, 100.5, 113.0),
    "halfcheetah-medium": (42.6, 51.1, 60.1, 63.8),
    "hopper-medium": (52.9, 90.5, 74.5, 103.6),
    "walker2d-medium": (75.3, 87.0, 72.7, 87.4),
    "halfcheetah-medium-replay": (36.6, 47.8, 51.1, 51.2),
    "hopper-medium-replay": (18.1, 101.3, 85.4, 101.9),
    "walker2d-medium-replay": (26.0, 95.5, 82.1, 106.2),
    "antmaze-medium-play": (0.0, 76.6, 78.0, 88.1),
    "antmaze-large-play": (0.0, 46.4, 84.0, 84.0),
    "antmaze-medium-diverse": (0.8, 78.6, 71.0, 90.2),
    "antmaze-large-diverse": (0.0, 56.6, 83.0, 76.1),
    "kitchen-mixed": (51.5, 62.6, 50.5, 69.0),
    "kitchen-partial": (38.0, 60.5, 55.7, 65.0),
}

#: Table 1: task -> algorithm -> D4RL-normalised score (mean of 3 seeds).
TABLE1: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        task: MappingProxyType(dict(zip(TABLE1_ALGORITHMS, row, strict=True)))
        for task, row in _TABLE1_ROWS.items()
    }
)

#: The paper's domains and the Table 1 tasks each average is taken over.
DOMAINS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "mujoco": tuple(t for t in _TABLE1_ROWS if not t.startswith(("antmaze", "kitchen"))),
        "antmaze": tuple(t for t in _TABLE1_ROWS if t.startswith("antmaze")),
        "kitchen": tuple(t for t in _TABLE1_ROWS if t.startswith("kitchen")),
    }
)
DOMAIN_LABELS: Mapping[str, str] = MappingProxyType(
    {"mujoco": "MuJoCo", "antmaze": "AntMaze", "kitchen": "Kitchen"}
)

#: Table 1's published domain averages: domain -> algorithm -> score (as printed).
TABLE1_AVERAGES: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        "mujoco": MappingProxyType({"bc": 51.9, "dql": 87.9, "fql": 79.2, "ofql": 92.5}),
        "antmaze": MappingProxyType({"bc": 0.2, "dql": 64.6, "fql": 79.0, "ofql": 84.6}),
        "kitchen": MappingProxyType({"bc": 44.8, "dql": 61.6, "fql": 53.1, "ofql": 67.0}),
    }
)


def recomputed_average(domain: str, algorithm: str) -> float:
    """The unrounded mean of Table 1's per-task numbers over ``domain``'s tasks."""
    tasks = DOMAINS[domain]
    return sum(TABLE1[t][algorithm] for t in tasks) / len(tasks)


def paper_domain(task: str) -> str | None:
    """The paper's domain (``mujoco``, ``antmaze``, ``kitchen``) of a Table 1 task, else None."""
    return next((d for d, tasks in DOMAINS.items() if task in tasks), None)


def table1_column(algorithm: str) -> tuple[str, str] | None:
    """The Table 1 column a registered algorithm is compared with, and how to label it.

    ``flow_bc`` (OFQL's policy without a critic) and ``bc`` (an MLP) are both compared with
    the paper's BC column; ``fbrac`` has no Table 1 column (one-step ablation only).
    """
    if algorithm in ("ofql", "dql", "fql"):
        return algorithm, f"the paper's {TABLE1_LABELS[algorithm]} column"
    if algorithm in ("bc", "flow_bc"):
        return "bc", "the paper's BC column"
    return None


# --- One-step ablation -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AblationEntry:
    """One row of the paper's one-step ablation (an average over the 9 MuJoCo tasks)."""

    label: str  # the paper's name for the row
    algorithm: str  # this project's registry name
    score_suffix: str  # which results.json scores: "" (N candidates) or "_ddim1"
    average: float  # the paper's average over DOMAINS["mujoco"]
    note: str  # what the row is


ONE_STEP_ABLATION: tuple[AblationEntry, ...] = (
    AblationEntry("DQL(5)", "dql", "", 87.9, "DDPM policy, 5 denoising steps"),
    AblationEntry(
        "DQL+DDIM(1)", "dql", "_ddim1", 11.6,
        "the trained DQL(5) sampled with one DDIM step at inference only",
    ),
    AblationEntry(
        "FBRAC(1)", "fbrac", "", 67.1,
        "v-parameterised flow policy trained through 5 Euler steps, 1 step at inference",
    ),
    AblationEntry("FQL(1)", "fql", "", 79.2, "flow BC policy distilled into a one-step policy"),
    AblationEntry(
        "OFQL(1)", "ofql", "", 92.6,
        "mean-flow policy, one step; Table 1's MuJoCo average for OFQL is 92.5",
    ),
)  # fmt: skip
ONE_STEP_ABLATION_TASKS: tuple[str, ...] = DOMAINS["mujoco"]

# --- Flow-ratio ablation ---------------------------------------------------------------------

#: flow_ratio = P(r = t), the share of plain flow-matching pairs in L_FBC (0.5 is the default).
FLOW_RATIOS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25, 0.0)

#: HalfCheetah task -> flow_ratio -> OFQL score.
FLOW_RATIO_ABLATION: Mapping[str, Mapping[float, float]] = MappingProxyType(
    {
        task: MappingProxyType(dict(zip(FLOW_RATIOS, row, strict=True)))
        for task, row in {
            "halfcheetah-medium-expert": (38.3, 90.9, 95.2, 92.0, 90.5),
            "halfcheetah-medium": (46.3, 62.0, 63.8, 63.8, 63.2),
            "halfcheetah-medium-replay": (45.2, 50.2, 51.2, 50.3, 10.5),
        }.items()
    }
)

# --- Cost (Figure 3) -------------------------------------------------------------------------

COST_HARDWARE = "A100 PCIe 80 GB, Xeon Gold 5317"
COST_DECISION = "one decision = 2,500 actions (50 envs x 50 candidates), 3,000 batches"


@dataclasses.dataclass(frozen=True)
class CostEntry:
    """One variant of the paper's cost figure (1M steps, averaged over the 9 MuJoCo tasks)."""

    key: str  # benchmarks/throughput.py's variant name: "ofql", "dql5", "fql10", ...
    label: str  # "OFQL", "DQL(5)", "FQL(10)"
    algorithm: str  # registry name
    steps: int | None  # DQL's diffusion steps T or FQL's flow steps; None for OFQL
    hours_per_1m_steps: float  # training time for 1M gradient steps
    decisions_per_s: float  # decision frequency in Hz (COST_DECISION)

    @property
    def time_ratio_to_ofql(self) -> float:
        """Training time relative to OFQL's (> 1: slower)."""
        return self.hours_per_1m_steps / OFQL_COST.hours_per_1m_steps

    @property
    def decision_ratio_to_ofql(self) -> float:
        """Decisions per second relative to OFQL's (< 1: slower)."""
        return self.decisions_per_s / OFQL_COST.decisions_per_s


# The paper gives one FQL decision frequency: FQL acts with its one-step policy, so it does
# not depend on the number of flow steps (those cost only in training).
_FQL_HZ = 929.6
OFQL_COST = CostEntry("ofql", "OFQL", "ofql", None, 6.3, 846.5)
COST: tuple[CostEntry, ...] = (
    OFQL_COST,
    CostEntry("dql5", "DQL(5)", "dql", 5, 11.7, 238.7),
    CostEntry("dql10", "DQL(10)", "dql", 10, 16.1, 150.1),
    CostEntry("dql20", "DQL(20)", "dql", 20, 24.8, 75.2),
    CostEntry("dql50", "DQL(50)", "dql", 50, 49.5, 35.5),
    CostEntry("fql5", "FQL(5)", "fql", 5, 7.9, _FQL_HZ),
    CostEntry("fql10", "FQL(10)", "fql", 10, 8.5, _FQL_HZ),
    CostEntry("fql20", "FQL(20)", "fql", 20, 9.3, _FQL_HZ),
    CostEntry("fql50", "FQL(50)", "fql", 50, 13.5, _FQL_HZ),
)


def cost_entry(algorithm: str, steps: int | None = None) -> CostEntry | None:
    """The paper's cost for ``algorithm`` with ``steps`` (DQL's T, FQL's flow steps), or None."""
    for entry in COST:
        if entry.algorithm == algorithm and (algorithm == "ofql" or entry.steps == steps):
            return entry
    return None

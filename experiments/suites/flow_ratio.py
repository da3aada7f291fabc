"""The paper's flow-ratio ablation: HalfCheetah medium, medium-replay, medium-expert x OFQL
with flow_ratio (P(r = t) in L_FBC) 1, 0.75, 0.5, 0.25, 0, each task one vmapped sweep.

    python -m ofql_jax.suite --suite=experiments/suites/flow_ratio.py

Paper protocol, 3 seeds (15 members per program); sized for accelerators.
"""

from ofql_jax.suite import cell, new_suite

TASKS = ("halfcheetah-medium", "halfcheetah-medium-replay", "halfcheetah-medium-expert")


def get_config():
    s = new_suite("flow_ratio", "HalfCheetah x OFQL flow_ratio 1 / 0.75 / 0.5 / 0.25 / 0.")
    s.seeds = 3
    s.defaults.data_source = "auto"
    s.cells = tuple(
        cell("ofql", task, group="flow_ratio", name=f"ofql-flow-ratio-{task}",
             sweep={"flow_ratio": "1,0.75,0.5,0.25,0"})
        for task in TASKS
    )  # fmt: skip
    return s

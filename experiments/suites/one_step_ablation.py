"""The paper's one-step ablation: 9 MuJoCo tasks x DQL(5), DQL+DDIM(1), FBRAC, FQL, OFQL.

    python -m ofql_jax.suite --suite=experiments/suites/one_step_ablation.py

DQL+DDIM(1) is the trained DQL(5) sampled with one DDIM step at inference only: DQL's
evaluation option ``ddim1`` (``agent.eval_ddim1``) scores it from the same runs. FBRAC is a
v-parameterised flow policy trained through 5 Euler steps and acting with one. Paper
protocol, 3 seeds; sized for accelerators.
"""

from ofql_jax.core.tasks import PAPER_TASKS
from ofql_jax.suite import cell, new_suite

MUJOCO = tuple(t for t in PAPER_TASKS if t.split("-")[0] in ("halfcheetah", "hopper", "walker2d"))


def get_config():
    s = new_suite("one_step_ablation", "9 MuJoCo tasks x DQL(5) (+DDIM(1)), FBRAC, FQL, OFQL.")
    s.seeds = 3
    s.defaults.data_source = "auto"
    s.cells = tuple(
        c
        for task in MUJOCO
        for c in (
            cell(
                "dql",
                task,
                group="one_step_ablation",
                overrides={"agent": {"num_diffusion_steps": 5, "eval_ddim1": True}},
            ),
            cell(
                "fbrac",
                task,
                group="one_step_ablation",
                overrides={"agent": {"train_steps": 5, "inference_steps": 1}},
            ),
            cell("fql", task, group="one_step_ablation"),
            cell("ofql", task, group="one_step_ablation"),
        )  # fmt: skip
    )
    return s

"""The paper's Table 1: 15 tasks x OFQL, DQL(5), FQL, BC x 3 seeds, paper protocol.

    python -m ofql_jax.suite --suite=experiments/suites/paper.py --workdir=runs/paper

Sized for accelerators: 2M steps on MuJoCo and 1M on AntMaze and Kitchen per seed, 3 x 150
evaluation episodes every 100k steps (the protocol's own settings, experiments/d4rl.py).
OFQL runs as the paper tuned it: a grid over eta in {0.001, 0.01, 0.1, 0.3, 0.5} per task
(one vmapped sweep of 15 members per task; the report shows every grid point and the
choice by final score); the main table's OFQL cell is the grid point of this project's
default eta for the task, and shares the sweep's program. The paper's own per-task choice
is not published. On a 2-core CPU this suite would take months: see cpu.py.
"""

from ofql_jax.core.tasks import PAPER_TASKS
from ofql_jax.suite import ETA_GRID, cell, grid_cells, new_suite


def get_config():
    s = new_suite("paper", "The paper's 15 tasks x OFQL, DQL(5), FQL, BC x 3 seeds (Table 1).")
    s.seeds = 3  # the paper's protocol
    s.defaults.data_source = "auto"  # official Minari where available, else the replica
    cells = []
    for task in PAPER_TASKS:
        cells += grid_cells("ofql", task, "eta", ETA_GRID)
        cells.append(cell("dql", task, overrides={"agent.num_diffusion_steps": 5}))
        cells.append(cell("fql", task))
        cells.append(cell("bc", task))
    s.cells = tuple(cells)
    return s

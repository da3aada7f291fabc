"""The paper's eta grid on the three MuJoCo medium replicas, beside flow BC (issue 10's check).

    python -m ofql_jax.suite --suite=experiments/suites/eta_grid.py --workdir=runs/eta_grid
    python -m ofql_jax.suite --suite=experiments/suites/eta_grid.py:walker2d-medium \
        --workdir=runs/eta_grid/walker2d-medium        # one task
    python -m ofql_jax.suite --suite=experiments/suites/eta_grid.py:walker2d-medium \
        --workdir=runs/eta_grid/walker2d-medium --suite.select=ofql-walker2d-medium,eta_grid
                                                       # its OFQL sweep alone, no flow BC

Run in parts (one --suite.select after another, same workdir), the plan keeps every part,
so one report covers them: on a CPU, the default first (the main cell, then flow BC), the
other four etas last (they then run as their own sweep of four):

    for sel in ofql-hopper-medium flowbc-hopper-medium eta_grid; do
      python -m ofql_jax.suite --suite=experiments/suites/eta_grid.py:hopper-medium \
          --workdir=runs/eta_grid/hopper-medium --suite.select=$sel; done

Per task: OFQL with eta in {0.001, 0.01, 0.1, 0.3, 0.5} (the paper's grid, Sec. 5) as one
vmapped program of 5 x 2 members, and flow BC (eta = 0, the BC term alone) on the same
seeds; 100k steps, about three times the step where the paper's sampler diverged on the
hopper replica (docs/algorithm.md, section 9), evaluated at 50k and 100k with 30 episodes
per seed. The report lists every grid point and picks eta by final score. On this
project's 2-core CPU it is about 22 hours of OFQL training (the 10-member program ran
3.5-3.9 updates/s on 2026-11-27), plus flow BC and evaluations; on one GPU an estimated 6 minutes
per task plus 1.5-3.5 for its replica (2026-11-26: compiling took 97 s alone on an H200,
training about 850 program updates/s on an H100 with the card to itself, an evaluation
about 30 s), see experiments/device/suite.sh (SUITE=eta_grid), one task at a time. Replica
scores are not comparable with D4RL v2 numbers.
"""

from ofql_jax.suite import ETA_GRID, cell, grid_cells, new_suite

TASKS = ("hopper-medium", "halfcheetah-medium", "walker2d-medium")


def get_config(arg: str | None = None):
    tasks = tuple(t.strip() for t in (arg or ",".join(TASKS)).split(",") if t.strip())
    s = new_suite("eta_grid", "OFQL's eta grid vs flow BC on the MuJoCo medium replicas, 100k.")
    s.seeds = 2
    d = s.defaults
    d.data_source = "replica"  # this project's replicas, built offline on first use
    d.num_steps = 100_000  # gradient steps per seed
    d.eval_every = 50_000  # two points per curve
    d.eval_episodes = 30  # per seed and evaluation
    d.checkpoint_every = 10_000  # a killed suite loses at most one interval
    d.replica_steps = 1_000_000  # transitions per replica (D4RL's size; the verification's)
    d.steps_per_call = 1_000  # updates per jitted call (the CLI's default)
    d.compilation_cache_dir = "auto"  # the CLI's default cache (ofql_jax.core.paths)
    d.eval_workers = 1  # env processes per evaluation (0: one per core; no return changes)
    cells = []
    for task in tasks:
        cells += grid_cells("ofql", task, "eta", ETA_GRID)  # the main cell: eta 0.3 on MuJoCo
        cells.append(cell("flow_bc", task))
    s.cells = tuple(cells)
    return s

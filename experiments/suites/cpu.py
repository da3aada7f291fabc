"""What a 2-core CPU can run in about 2-3 hours: OFQL vs DQL(5) vs FQL vs BC vs flow BC on
the hopper medium and medium-replay replicas, 3 seeds x 15k gradient steps.

    python -m ofql_jax.suite --suite=experiments/suites/cpu.py --workdir=runs/cpu \
        --suite.cost_json=benchmarks/results/throughput_2026-11-25_cpu.json

Sized by measurement (benchmarks/results/throughput_2026-11-25_cpu.json, 2 idle cores,
matmul 70 GFLOP/s): one seed-update costs 1/44 s (OFQL), 1/25-1/30 (DQL(5)), 1/36 (FQL),
1/581 (BC) and 1/115 (flow BC), i.e. 0.097 s for the five together, so 2 tasks x 3 seeds x
15k steps train in about 2.4 h, and 3 evaluations per cell (10 episodes per seed at N = 50
and N = 1, about 45 s each) add about 20 min. Medium-replay is where behaviour cloning is
weakest (paper: BC 18.1 vs DQL 101.3), so Q-learning has the most to show early; medium is
where the divergence of the paper's sampler appeared (docs/algorithm.md, section 9). Its
replica is built on first use by re-running the SAC behaviour run to its medium step (about
40 min here, once). 15k steps is 0.75% of the paper's 2M: these scores say which method
learns fastest on this data, not where it ends; replica scores are not comparable with the
paper's D4RL v2 numbers.
"""

from ofql_jax.suite import cell, new_suite

TASKS = ("hopper-medium", "hopper-medium-replay")


def get_config():
    s = new_suite("cpu", "OFQL, DQL(5), FQL, BC, flow BC on two hopper replicas, 15k steps.")
    s.seeds = 3  # the paper's protocol
    d = s.defaults
    d.data_source = "replica"  # this project's replicas (offline; official medium-replay: none)
    d.num_steps = 15_000  # gradient steps per seed (paper: 2M)
    d.eval_every = 5_000  # three points per learning curve
    d.eval_episodes = 10  # per seed and evaluation (paper: 150)
    d.checkpoint_every = 5_000  # a killed suite loses at most one interval
    s.cells = tuple(
        c
        for task in TASKS
        for c in (
            cell("ofql", task),
            cell("dql", task, overrides={"agent.num_diffusion_steps": 5}),
            cell("fql", task),
            cell("bc", task),
            cell("flow_bc", task),
        )
    )
    return s

"""Smoke suite: every part of the suite and its report in about a minute (tiny networks).

    python -m ofql_jax.suite --suite=experiments/suites/smoke.py --workdir=runs/smoke

It checks the machinery, not the algorithms: 2 seeds x 200 updates of 16-unit networks
on the hopper-medium data (the replica ``ofql/hopper/medium-v0`` unless
``--suite.defaults.dataset_id`` names another Minari dataset; tests use a 400-step one).
Every report section has data: the main comparison, an eta grid (one vmapped sweep),
the one-step ablation (DQL's one-DDIM-step evaluation included) and a flow-ratio sweep.
"""

from ofql_jax.suite import cell, new_suite

TASK = "hopper-medium"
TINY = {"hidden_dims": (16, 16)}  # every agent's policy network
TINY_Q = {**TINY, "critic_hidden_dims": (16, 16)}  # ... and critics, for agents that have them


def get_config():
    s = new_suite("smoke", "Tiny networks, 200 updates: checks the suite and report, not learning.")
    s.seeds = 2
    d = s.defaults
    d.dataset_id = ""  # "" = the task's data (replica or official); tests pass a tiny one
    d.data_source = "auto"  # official | replica | auto
    d.num_steps = 200  # gradient steps per seed
    d.batch_size = 32  # transitions per update
    d.steps_per_call = 50  # updates per jitted call
    d.eval_every = 100  # two evaluations: a learning curve with two points
    d.checkpoint_every = 50  # a killed suite resumes within 50 steps
    d.eval_episodes = 2  # episodes per seed and evaluation
    d.eval_candidates = 4  # N candidates (the paper's protocol: 50)
    d.compilation_cache_dir = "auto"  # the CLI's default cache (ofql_jax.core.paths)
    q = dict(TINY_Q)
    s.cells = (
        cell("ofql", TASK, overrides={"agent": q}),
        cell("dql", TASK, overrides={"agent": q}),
        cell("fql", TASK, overrides={"agent": q}),
        cell("bc", TASK, overrides={"agent": TINY}),
        cell("flow_bc", TASK, overrides={"agent": TINY}),
        # eta grid: two cells differing only in a sweepable value -> one vmapped program
        cell("ofql", TASK, group="eta_grid", name="ofql-eta0.1",
             overrides={"agent": {**q, "eta": 0.1}}),
        cell("ofql", TASK, group="eta_grid", name="ofql-eta0.3",
             overrides={"agent": {**q, "eta": 0.3}}),
        # one-step ablation (DQL+DDIM(1) is DQL's eval option, scores_ddim1)
        cell("dql", TASK, group="one_step_ablation", name="ablation-dql5",
             overrides={"agent": q}),
        cell("fbrac", TASK, group="one_step_ablation", name="ablation-fbrac",
             overrides={"agent": q}),
        cell("fql", TASK, group="one_step_ablation", name="ablation-fql",
             overrides={"agent": q}),
        cell("ofql", TASK, group="one_step_ablation", name="ablation-ofql",
             overrides={"agent": q}),
        # flow ratio: one sweep
        cell("ofql", TASK, group="flow_ratio", name="ofql-flow-ratio",
             overrides={"agent": q}, sweep={"flow_ratio": "1,0.5,0"}),
    )  # fmt: skip
    return s

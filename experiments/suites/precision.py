"""Issue 37's learning check: does a faster matmul setting train OFQL as float32 does?

    python -m ofql_jax.suite --suite=experiments/suites/precision.py --workdir=runs/precision
    OUT=out SUITE=precision TASKS=hopper-medium bash experiments/device/suite.sh   # on a GPU

OFQL at the default on the hopper medium replica, 3 seeds x 100k steps, evaluated every 25k
with the paper's protocol (N = 1 beside it), 10 episodes per seed, in three settings:

- ``ofqlfloat32-<task>``: ``matmul_precision=highest``, true float32 (the config default);
- ``ofqltf32-<task>``: ``matmul_precision=default``, the backend's own: TF32 tensor cores on
  NVIDIA Ampere and later GPUs (a CPU computes float32 anyway, so there this cell repeats
  the first bit for bit);
- ``ofqlbf16-<task>``: ``agent.matmul_dtype=bfloat16``, bf16 matmul inputs with float32
  accumulation (its time embeddings stay float32).

Each setting is its own program: the precision is the process's while a program compiles,
and ``matmul_dtype`` changes the program. The check holds when a faster setting's final
scores and its Q curves lie within the float32 seeds' spread; the device check
(``docs/device_check.md``) gives each setting's speed and evidence that it applied. On one
GPU the three programs train in minutes; the replica (1M transitions) is built first.
"""

from ofql_jax.suite import cell, new_suite

TASKS = ("hopper-medium",)
SETTINGS = {  # cell name prefix: (label, overrides)
    "ofqlfloat32": ("OFQL (float32)", {"matmul_precision": "highest"}),
    "ofqltf32": ("OFQL (TF32)", {"matmul_precision": "default"}),
    "ofqlbf16": ("OFQL (bf16 inputs)", {"agent.matmul_dtype": "bfloat16"}),
}


def get_config(arg: str | None = None):
    tasks = tuple(t.strip() for t in (arg or ",".join(TASKS)).split(",") if t.strip())
    s = new_suite(
        "precision", "OFQL trained in float32, TF32 and with bf16 matmul inputs: same scores?"
    )
    s.seeds = 3  # the paper's seed count
    d = s.defaults
    d.data_source = "replica"  # this project's replicas, built offline on first use
    d.num_steps = 100_000  # gradient steps per seed (issue 37: a 100k-step run)
    d.eval_every = 25_000  # four points per curve
    d.eval_episodes = 10  # per seed and evaluation
    d.checkpoint_every = 25_000  # a killed suite loses at most one interval
    d.replica_steps = 1_000_000  # transitions per replica level (D4RL's size)
    d.steps_per_call = 1_000  # updates per jitted call (the CLI's default)
    d.compilation_cache_dir = "auto"  # the CLI's default cache (ofql_jax.core.paths)
    d.eval_workers = 0  # env processes per evaluation (0: one per core; no return changes)
    s.cells = tuple(
        cell("ofql", task, label=label, name=f"{prefix}-{task}", overrides=overrides)
        for task in tasks
        for prefix, (label, overrides) in SETTINGS.items()
    )
    return s

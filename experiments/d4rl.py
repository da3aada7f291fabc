"""OFQL on the paper's D4RL tasks, via their Minari successors.

Pick a task after a colon; override any field from the command line:

    python -m ofql_jax.main --config=experiments/d4rl.py:hopper-medium \
        --config.num_seeds=5 --config.agent.eta=0.1 --workdir=runs/hopper

Defaults are the paper's protocol (DQL recipe, 1M steps, N = 50 candidates).
"""

import ml_collections

from ofql_jax.agents.ofql import default_config as ofql_defaults
from ofql_jax.tasks import get_task

DEFAULT_TASK = "hopper-medium"


def get_config(task: str | None = None) -> ml_collections.ConfigDict:
    """The experiment config for ``task`` (default hopper-medium)."""
    task_spec = get_task(task or DEFAULT_TASK)
    c = ml_collections.ConfigDict()
    # What to train on.
    c.task = task_spec.name  # the paper's task name (see ofql_jax/tasks.py)
    c.dataset_id = ""  # any Minari id(s), comma-separated to concatenate; "" = the task's
    c.data_source = "auto"  # official | replica (ofql/<env>/<level>-v0, built offline) | auto
    c.download = True  # fetch missing official datasets from the Minari server if reachable
    c.replica_steps = 1_000_000  # transitions per level when a replica is built (D4RL: 1M)
    c.replica_seed = 0  # seed of the replica's actions and resets
    c.replica_envs = 16  # envs stepped together (one policy call per step) when building
    c.behavior_dir = "~/.cache/ofql_jax/behavior"  # SAC re-runs that rebuild medium-replay
    c.reward_tune = task_spec.reward_tune  # none | antmaze ((r - 0.5) * 4)
    c.normalize_with_task = (
        False  # with dataset_id set and no metadata refs, use the task's D4RL refs
    )

    # What to train.
    c.algorithm = "ofql"  # key of ofql_jax.agents.AGENTS
    c.agent = ofql_defaults()  # algorithm hyperparameters, every field commented there
    c.agent.actor_lr = task_spec.lr
    c.agent.grad_norm = task_spec.grad_norm
    c.agent.eta = task_spec.eta
    c.agent.max_q_backup = task_spec.max_q_backup

    # How long and how many.
    c.seed = 0  # first seed value; seeds are seed, seed + 1, ..., seed + num_seeds - 1
    c.num_seeds = 5  # independent seeds trained together in one vmapped program
    c.num_steps = 1_000_000  # gradient steps per seed (the paper's timing table)
    c.batch_size = 256  # transitions per update
    c.steps_per_call = 1000  # K: updates scanned inside one jitted call (logging period)

    # Evaluation (DQL protocol).
    c.eval_every = 50_000  # steps between evaluations (0: only at the end)
    c.eval_episodes = task_spec.eval_episodes  # per seed; 0 disables evaluation
    c.eval_candidates = 50  # N: candidate actions scored by the target critics (1: plain one-step)
    c.eval_one_step = True  # also evaluate N = 1 and report it beside N

    # Parallelism and sweeps.
    c.num_devices = 0  # devices the seed axis is split over (0: all visible, across hosts)
    c.seeds_per_group = 0  # seeds vmapped together per device (0: 2 on CPU, all elsewhere)
    c.distributed = False  # multi-host: call jax.distributed.initialize(); process 0 writes
    c.sweep = ml_collections.ConfigDict()  # comma-separated values; seeds x settings in one program
    c.sweep.eta = ""  # e.g. "0.01,0.1,0.3"
    c.sweep.flow_ratio = ""  # e.g. "0,0.5,1"
    c.sweep.actor_lr = ""  # e.g. "1e-4,3e-4"
    c.sweep.critic_lr = ""  # e.g. "1e-4,3e-4"
    c.compilation_cache_dir = "~/.cache/ofql_jax/xla"  # JAX's persistent compile cache ("": off)

    # Checkpoints and output.
    c.checkpoint_every = 50_000  # steps between Orbax checkpoints (0: only at the end)
    c.checkpoints_to_keep = 3  # older checkpoints are deleted
    c.halt_on_divergence = (
        False  # stop the whole run when any seed's loss or params turn non-finite
    )
    c.progress = True  # tqdm progress bar on the console
    return c

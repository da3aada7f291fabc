"""OFQL (and its baselines) on the paper's D4RL tasks, via their Minari successors.

Pick a task, and optionally a protocol, after a colon; override any field on the command line:

    python -m ofql_jax.main --config=experiments/d4rl.py:hopper-medium \
        --config.num_seeds=5 --config.agent.eta=0.1 --workdir=runs/hopper
    python -m ofql_jax.main --config=experiments/d4rl.py:hopper-medium,dql  # DQL's protocol
    python -m ofql_jax.main --config=experiments/d4rl.py:hopper-medium --config.algorithm=bc

Protocols (docs/algorithm.md): ``paper`` (default) is the paper's: lr 3e-4, 2M steps on
MuJoCo (1M on AntMaze and Kitchen), the EMA actor evaluated with noise x 0.5 and N = 50
candidates drawn by softmax(w Q) with the task's w, 3 seeds x 150 episodes. ``dql`` is
DQL's: its per-task lr, the online actor, softmax(Q), 10 episodes (100 on AntMaze and
Kitchen), 5 seeds. The protocol sets the fields below; ``protocol`` itself only records it.
"""

import ml_collections

from ofql_jax.agents import get_agent_spec
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.tasks import DQL_EVAL, PAPER_EVAL, PROTOCOLS, get_task

DEFAULT_TASK = "hopper-medium"


def parse_arg(arg: str | None) -> tuple[str, str, str]:
    """``"task[,protocol][,algorithm=name]"`` -> ``(task, protocol, algorithm)``.

    Defaults: hopper-medium, paper, ofql. ``python -m ofql_jax.main`` moves a
    ``--config.algorithm=name`` flag into this argument, so the agent's own config is built.
    """
    parts = [p.strip() for p in (arg or "").split(",") if p.strip()]
    algorithm = "ofql"
    named = [p for p in parts if p.startswith("algorithm=")]
    for part in named:
        algorithm = part.split("=", 1)[1]
        parts.remove(part)
    task = parts[0] if parts else DEFAULT_TASK
    protocol = parts[1] if len(parts) > 1 else "paper"
    if len(parts) > 2 or protocol not in PROTOCOLS:
        raise OFQLError(
            f"Cannot read the config argument {arg!r}: write TASK or TASK,PROTOCOL with "
            f"PROTOCOL one of {', '.join(PROTOCOLS)}, e.g. experiments/d4rl.py:hopper-medium,dql."
        )
    return task, protocol, algorithm


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The experiment config for ``"task[,protocol][,algorithm=name]"``."""
    task, protocol, algorithm = parse_arg(arg)
    task_spec, agent_spec = get_task(task), get_agent_spec(algorithm)
    paper = protocol == "paper"
    c = ml_collections.ConfigDict()
    c.protocol = protocol  # paper | dql: set after the colon (it sets the fields marked [P])
    # What to train on.
    c.task = task_spec.name  # the paper's task name (see ofql_jax/core/tasks.py)
    c.dataset_id = ""  # any Minari id(s), comma-separated to concatenate; "" = the task's
    c.data_source = "auto"  # official | replica (ofql/<env>/<level>-v0, built offline) | auto
    c.download = True  # fetch missing official datasets from the Minari server if reachable
    c.replica_steps = 1_000_000  # transitions per level when a replica is built (D4RL: 1M)
    c.replica_seed = 0  # seed of the replica's actions and resets
    c.replica_envs = 16  # envs stepped together (one policy call per step) when building
    c.behavior_dir = "auto"  # SAC re-runs that rebuild medium-replay (auto: <cache root>/behavior)
    # cache root: $OFQL_JAX_CACHE, else $XDG_CACHE_HOME/ofql_jax, else ~/.cache/ofql_jax
    c.reward_tune = task_spec.reward_tune  # none | antmaze ((r - 0.5) * 4)
    c.normalize_with_task = (
        False  # with dataset_id set and no metadata refs, use the task's D4RL refs
    )

    # What to train.
    c.algorithm = agent_spec.name  # one of ofql_jax.agents.AGENTS (--config.algorithm=<name>)
    c.agent = agent_spec.default_config()  # its hyperparameters, every field commented there
    for field, value in agent_spec.task_defaults(task_spec, protocol).items():
        c.agent[field] = value  # per task (lr [P], gn, max-Q, eta, ...)

    # How long and how many.
    c.seed = 0  # first seed value; seeds are seed, seed + 1, ..., seed + num_seeds - 1
    c.num_seeds = PAPER_EVAL["seeds"] if paper else DQL_EVAL["seeds"]  # seeds in one program [P]
    c.num_steps = task_spec.num_steps  # gradient steps per seed: 2M MuJoCo, 1M others
    c.batch_size = 256  # transitions per update
    c.steps_per_call = 1000  # K: updates scanned inside one jitted call (logging period)

    # Evaluation ([P]: paper = CleanDiffuser's DQL pipelines; dql = DQL's own).
    c.eval_every = 100_000 if paper else 50_000  # steps between evaluations (0: at the end) [P]
    c.eval_episodes = (
        PAPER_EVAL["episodes"] if paper else task_spec.dql_eval_episodes
    )  # per seed; 0 disables evaluation [P]
    c.eval_candidates = 50  # N: candidate actions scored by the target critics (1: plain policy)
    c.eval_actor = "ema" if paper else "online"  # actor parameters evaluated: ema | online [P]
    c.eval_noise_temperature = (
        PAPER_EVAL["noise_temperature"] if paper else DQL_EVAL["noise_temperature"]
    )  # initial noise e ~ N(0, I) is scaled by this for the N candidates [P]
    c.eval_q_temperature = (
        task_spec.q_temperature if paper else DQL_EVAL["q_temperature"]
    )  # w: a candidate is drawn from softmax(w * Q) [P]
    c.eval_one_step = True  # also report N = 1 (the plain one-step policy, noise x 1)
    c.eval_workers = 1  # processes stepping the environments (0: one per CPU core)
    c.eval_max_envs = 150  # environments alive at once; episodes run in waves of this size

    # Parallelism and sweeps.
    c.num_devices = 0  # devices the seed axis is split over (0: all visible, across hosts)
    c.seeds_per_group = 0  # seeds vmapped together per device (0: 2 on CPU, all elsewhere)
    c.distributed = False  # multi-host: call jax.distributed.initialize(); process 0 writes
    c.sweep = ml_collections.ConfigDict()  # comma-separated values; seeds x settings in one program
    for field in agent_spec.sweepable:
        c.sweep[field] = ""  # e.g. --config.sweep.eta=0.01,0.1,0.3 (the agent's sweepable fields)
    c.compilation_cache_dir = "auto"  # JAX's persistent compile cache ("": off)
    # auto: <cache root>/xla
    c.matmul_precision = "highest"  # float32 matmuls and convolutions: highest = true float32
    # (CPU always; PyTorch's default, so DQL's and FQL's code); default = the backend's own
    # (TF32 on NVIDIA Ampere and later GPUs, faster, ~1e-3 relative error); high = bf16x3

    # Checkpoints and output.
    c.checkpoint_every = 50_000  # steps between Orbax checkpoints (0: only at the end)
    c.checkpoints_to_keep = 3  # older checkpoints are deleted
    c.halt_on_divergence = False  # stop the run when a seed turns non-finite or its Q leaves
    # the bounds the dataset's rewards allow (otherwise it is flagged and the rest go on)
    c.progress = True  # tqdm progress bar on the console
    c.wandb_project = ""  # Weights & Biases project ("": off; needs pip install -e .[wandb])
    c.wandb_entity = ""  # W&B team or user ("": your default)
    c.wandb_mode = "offline"  # offline (no network; `wandb sync` later) | online | disabled
    c.wandb_name = ""  # W&B run name ("": the workdir's name)
    return c

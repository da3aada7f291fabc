"""Every run-config field, declared once: name, default, one-line comment, checks, resumability.

From ``RUN_FIELDS`` come the config ``experiments/d4rl.py`` returns (:func:`build_config`),
its checks (``ofql_jax.training.config_checks``), ``--help`` and ``docs/config.md``
(``ofql_jax.core.cli_help``) and the lists below it. Agent fields are declared by each agent,
in its ``default_config()`` with a comment per field (:func:`agent_fields`).

Example:
    >>> from ofql_jax.core.tasks import get_task
    >>> class Agent:  # the three things build_config asks of an agent spec
    ...     name, sweepable = "toy", ("eta",)
    ...     default_config = staticmethod(lambda: ml_collections.ConfigDict({"eta": 0.1}))
    ...     task_defaults = staticmethod(lambda task, protocol: {})
    >>> c = build_config(get_task("hopper-medium"), "dql", Agent())
    >>> c.num_seeds, c.eval_actor, c.agent.eta, c.sweep.eta
    (5, 'online', 0.1, '')
    >>> FIELDS["num_seeds"].doc
    'seeds trained in one program'
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import sys
import textwrap
import tokenize
from collections.abc import Callable
from typing import Any

import ml_collections

from ofql_jax.core.tasks import DQL_EVAL, PAPER_EVAL, TaskSpec

MISSING = object()  # a field without a value for old runs: it existed from the start


@dataclasses.dataclass(frozen=True)
class Choice:
    """What a config is built for: a task, a protocol (``paper`` | ``dql``) and an agent spec."""

    task: TaskSpec
    protocol: str
    agent: Any  # ofql_jax.agents.AgentSpec (core cannot import agents)

    @property
    def paper(self) -> bool:
        return self.protocol == "paper"


@dataclasses.dataclass(frozen=True)
class Field:
    """One config field.

    ``default`` is a value or a function of a :class:`Choice`; ``kind`` is the value's type
    (taken from a plain default when omitted); ``check`` is ``(predicate, need)``, and a value
    failing the predicate is refused with "it must be <need>"; ``protocol``: the protocol sets
    it (marked [P]); ``resumable``: a resumed run may change it without changing its numbers;
    ``before``: the value that reproduces runs saved before the field existed.
    """

    name: str
    default: Any
    doc: str
    kind: type | None = None
    check: tuple[Callable[[Any], bool], str] | None = None
    protocol: bool = False
    resumable: bool = False
    before: Any = MISSING
    shown: str = ""  # the default as docs/config.md states it (else computed from ``default``)
    section: str = ""

    def __post_init__(self):
        if self.kind is None:
            if callable(self.default):
                raise TypeError(f"field {self.name}: a computed default needs a kind")
            object.__setattr__(self, "kind", type(self.default))

    def value(self, choice: Choice) -> Any:
        return self.default(choice) if callable(self.default) else self.default


def one_of(*values: str, need: str = "") -> tuple[Callable[[Any], bool], str]:
    """A check that the value is one of ``values`` (``need`` defaults to "a, b or c")."""
    text = need or (", ".join(values[:-1]) + " or " + values[-1])
    return (lambda v: v in values, text)


POSITIVE = (lambda v: v >= 1, "a positive integer")
NON_NEGATIVE = (lambda v: v >= 0, "a non-negative integer")
OFF_AT_ZERO = (lambda v: v >= 0, "a non-negative integer (0 disables)")
ABOVE_ZERO = (lambda v: v > 0, "> 0")
MATMUL_PRECISIONS = ("highest", "high", "default")


def _section(title: str, *fields: Field) -> tuple[Field, ...]:
    return tuple(dataclasses.replace(f, section=title) for f in fields)


RUN_FIELDS: tuple[Field, ...] = (
    *_section(
        "What to train on",
        Field("protocol", lambda c: c.protocol, "paper | dql: set after the colon, e.g. "
              "experiments/d4rl.py:hopper-medium,dql (it sets the fields marked [P])", str,
              one_of("paper", "dql", need="one of paper, dql"), shown="PROTOCOL"),
        Field("task", lambda c: c.task.name, "the paper's task name (ofql_jax/core/tasks.py)",
              str, shown="TASK"),
        Field("dataset_id", "", "any Minari id(s), comma-separated to concatenate; \"\" = the "
              "task's"),
        Field("data_source", "auto", "official | replica (ofql/<env>/<level>-v0, built "
              "offline) | auto", check=one_of("auto", "official", "replica")),
        Field("download", True, "fetch missing official datasets from the Minari server if "
              "reachable", resumable=True),
        Field("replica_steps", 1_000_000, "transitions per level when a replica is built "
              "(D4RL: 1M)", check=POSITIVE),
        Field("replica_seed", 0, "seed of the replica's actions and resets", check=NON_NEGATIVE),
        Field("replica_envs", 16, "envs stepped together (one policy call per step) when "
              "building", check=POSITIVE, resumable=True),
        Field("behavior_dir", "auto", "SAC re-runs that rebuild medium-replay (auto: <cache "
              "root>/behavior; cache root: $OFQL_JAX_CACHE, else $XDG_CACHE_HOME/ofql_jax, else "
              "~/.cache/ofql_jax)", resumable=True),
        Field("reward_tune", lambda c: c.task.reward_tune, "none | antmaze ((r - 0.5) * 4); "
              "per task", str, one_of("none", "antmaze")),
        Field("normalize_with_task", False, "with dataset_id set and no metadata refs, use the "
              "task's D4RL refs"),
    ),
    *_section(
        "What to train",
        Field("algorithm", lambda c: c.agent.name, "one of ofql_jax.agents.AGENTS; the agent "
              "fields follow it (--config.algorithm=dql trains DQL with DQL's fields)", str),
    ),
    *_section(
        "How long and how many",
        Field("seed", 0, "first seed value; seeds are seed, seed + 1, ..., seed + num_seeds - 1",
              check=NON_NEGATIVE),
        Field("num_seeds", lambda c: (PAPER_EVAL if c.paper else DQL_EVAL)["seeds"],
              "seeds trained in one program", int, POSITIVE, protocol=True),
        Field("num_steps", lambda c: c.task.num_steps, "gradient steps per seed: 2M MuJoCo, "
              "1M others", int, POSITIVE, protocol=True, resumable=True),
        Field("batch_size", 256, "transitions per update", check=POSITIVE),
        Field("steps_per_call", 1000, "K: updates scanned inside one jitted call (logging "
              "period)", check=POSITIVE),
    ),
    *_section(
        "Evaluation ([P]: paper = CleanDiffuser's DQL pipelines; dql = DQL's own)",
        Field("eval_every", lambda c: 100_000 if c.paper else 50_000, "steps between "
              "evaluations (0: at the end)", int, OFF_AT_ZERO, protocol=True),
        Field("eval_episodes", lambda c: PAPER_EVAL["episodes"] if c.paper
              else c.task.dql_eval_episodes, "per seed; 0 disables evaluation", int,
              OFF_AT_ZERO, protocol=True),
        Field("eval_candidates", 50, "N: candidate actions scored by the target critics (1: "
              "plain policy)", check=POSITIVE),
        Field("eval_actor", lambda c: "ema" if c.paper else "online", "actor parameters "
              "evaluated: ema | online", str, one_of("ema", "online"), protocol=True),
        Field("eval_noise_temperature", lambda c: (PAPER_EVAL if c.paper else DQL_EVAL)[
              "noise_temperature"], "initial noise e ~ N(0, I) is scaled by this for the N "
              "candidates", float, ABOVE_ZERO, protocol=True),
        Field("eval_q_temperature", lambda c: c.task.q_temperature if c.paper
              else DQL_EVAL["q_temperature"], "w: a candidate is drawn from softmax(w * Q); "
              "per task", float, ABOVE_ZERO, protocol=True),
        Field("eval_one_step", True, "also report N = 1 (the plain one-step policy, noise x 1)"),
        Field("eval_one_candidate", False, "also report one candidate as the N are drawn (N = "
              "1, noise x eval_noise_temperature: the protocol without the critics' choice)",
              resumable=True, before=False),
        Field("eval_workers", 1, "processes stepping the environments (0: one per CPU core)",
              check=(lambda v: v >= 0, ">= 0 (0: one per core)"), resumable=True),
        Field("eval_max_envs", 150, "environments alive at once; episodes run in waves of this "
              "size", check=POSITIVE),
    ),
    *_section(
        "Parallelism and precision",
        Field("num_devices", 0, "devices the seed axis is split over (0: all visible, across "
              "hosts)", check=(lambda v: v >= 0, ">= 0 (0: all devices)"), resumable=True),
        Field("seeds_per_group", 0, "seeds vmapped together per device (0: 2 on CPU, all "
              "elsewhere)", check=(lambda v: v >= 0, ">= 0 (0: auto)"), resumable=True),
        Field("distributed", False, "multi-host: call jax.distributed.initialize(); process 0 "
              "writes", resumable=True),
        Field("compilation_cache_dir", "auto", "JAX's persistent compile cache (auto: <cache "
              "root>/xla; \"\": off)", resumable=True),
        Field("matmul_precision", "highest", "float32 matmuls and convolutions: highest = true "
              "float32 (CPU always; PyTorch's default, so DQL's and FQL's code); default = the "
              "backend's own (TF32 on NVIDIA Ampere and later GPUs, faster, ~1e-3 relative "
              "error); high = bf16x3", check=one_of(*MATMUL_PRECISIONS,
              need=" or ".join(MATMUL_PRECISIONS)), before="highest"),
    ),
    *_section(
        "Checkpoints and output",
        Field("checkpoint_every", 50_000, "steps between Orbax checkpoints (0: only at the end)",
              check=OFF_AT_ZERO),
        Field("checkpoints_to_keep", 3, "older checkpoints are deleted",
              check=(lambda v: v >= 1, ">= 1"), resumable=True),
        Field("checkpoint_keep_period", 0, "also keep, beside the newest checkpoints_to_keep, "
              "every checkpoint whose step is a multiple of this (0: none; e.g. 100000 keeps "
              "one per 100k to continue or study later)", check=(lambda v: v >= 0, ">= 0"),
              resumable=True, before=0),
        Field("halt_on_divergence", False, "stop the run when a seed turns non-finite or its Q "
              "leaves the bounds the dataset's rewards allow (otherwise it is flagged and the "
              "rest go on)"),
        Field("progress", True, "tqdm progress bar on the console", resumable=True),
        Field("wandb_project", "", "Weights & Biases project (\"\": off; needs pip install -e "
              ".[wandb])", resumable=True, before=""),
        Field("wandb_entity", "", "W&B team or user (\"\": your default)", resumable=True,
              before=""),
        Field("wandb_mode", "offline", "offline (no network; `wandb sync` later) | online | "
              "disabled", check=one_of("offline", "online", "disabled"), resumable=True,
              before="offline"),
        Field("wandb_name", "", "W&B run name (\"\": the workdir's name)", resumable=True,
              before=""),
    ),
)  # fmt: skip
FIELDS: dict[str, Field] = {f.name: f for f in RUN_FIELDS}
# The blocks beside the run fields: the agent's own fields and the values to sweep.
BLOCKS = {
    "agent": "the algorithm's hyperparameters (agent fields; a task and the protocol set some)",
    "sweep": "comma-separated values of the agent's sweepable fields, e.g. "
    "--config.sweep.eta=0.01,0.1,0.3; seeds x settings train in one program",
}

# Fields a resumed run may change: placement changes numbers only at float32 rounding.
RESUMABLE = tuple(f.name for f in RUN_FIELDS if f.resumable)
# Values of fields added after runs were saved: what every earlier run used.
ADDED_FIELDS = {f.name: f.before for f in RUN_FIELDS if f.before is not MISSING}
# The agent field the protocols set (paper: 3e-4; dql: DQL's per-task lr), via each agent's
# task_defaults(task, protocol).
PROTOCOL_AGENT_FIELDS = ("actor_lr",)
# The fields a protocol sets; results.json records their values under protocol_settings.
PROTOCOL_FIELDS = tuple(f"agent.{n}" for n in PROTOCOL_AGENT_FIELDS) + tuple(
    f.name for f in RUN_FIELDS if f.protocol
)


def agent_config(choice: Choice) -> ml_collections.ConfigDict:
    """The agent's ``default_config()`` with the fields ``choice``'s task and protocol set."""
    agent = choice.agent.default_config()
    for name, value in choice.agent.task_defaults(choice.task, choice.protocol).items():
        agent[name] = value
    return agent


def build_config(task: TaskSpec, protocol: str, agent: Any) -> ml_collections.ConfigDict:
    """The experiment config of ``agent`` (an AgentSpec) on ``task`` under ``protocol``."""
    choice = Choice(task, protocol, agent)
    config = ml_collections.ConfigDict({f.name: f.value(choice) for f in RUN_FIELDS})
    config.agent = agent_config(choice)
    config.sweep = ml_collections.ConfigDict({name: "" for name in agent.sweepable})
    return config


def agent_fields(spec: Any) -> tuple[Field, ...]:
    """The fields of an agent (an AgentSpec), in the order its module declares them.

    An agent module may declare ``FIELDS`` (a tuple of :class:`Field`, with ``default_config
    = lambda: config_of(FIELDS)``); otherwise each field's comment is the ``# comment`` of its
    ``c.<field> = value`` line in ``default_config`` (see :func:`_comments`).
    """
    declared = getattr(sys.modules.get(spec.default_config.__module__), "FIELDS", None)
    if declared is not None:
        return tuple(declared)
    defaults = spec.default_config()
    comments = {n: " ".join(t for t in c if t) for n, c in _comments(spec.default_config).items()}
    names = [n for n in comments if n in defaults] + sorted(set(defaults) - set(comments))
    return tuple(Field(n, defaults[n], comments.get(n, "")) for n in names)


def config_of(fields: tuple[Field, ...]) -> ml_collections.ConfigDict:
    """A ConfigDict of plain-default fields (an agent's ``default_config`` from its FIELDS)."""
    return ml_collections.ConfigDict({f.name: f.default for f in fields})


def _comments(function: Callable) -> dict[str, list[str]]:
    """``{field: comment lines}`` of the ``c.<field> = value  # comment`` statements of a
    ``default_config`` function, read with Python's tokenizer (and of the agent's whose
    ``default_config`` it starts from, ``c = ofql.default_config()``).

    A field's comment is the comment on its statement's lines, continued by the comment-only
    lines right below that do not start with a capital (a capital starts a section heading
    such as ``# Optimisation.``); a field with no comment of its own takes the comment lines
    right above it.
    """
    source = textwrap.dedent(inspect.getsource(function))
    comments: dict[str, list[str]] = {}
    above: list[str] = []  # comment-only lines since the last statement
    last = None  # the field of the last statement, while comment lines may continue it
    statement: list[tokenize.TokenInfo] = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            text = _text(tok)
            if statement:  # on the statement's own lines
                statement.append(tok)
            elif last and comments[last] and not above and not text[:1].isupper():
                comments[last].append(text)
            else:
                above.append(text)
                last = None
        elif tok.type == tokenize.NEWLINE:
            words = [t.string for t in statement if t.type != tokenize.COMMENT]
            last = None
            if words[:2] == ["c", "="] and words[3:] == [".", "default_config", "(", ")"]:
                comments.update(_comments(function.__globals__[words[2]].default_config))
            if words[:2] == ["c", "."] and len(words) > 3 and words[3] == "=":
                last = words[2]
                own = [_text(t) for t in statement if t.type == tokenize.COMMENT]
                comments.setdefault(last, own or above)
            above, statement = [], []
        elif tok.type not in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            statement.append(tok)
    return comments


def _text(comment: tokenize.TokenInfo) -> str:
    return comment.string.lstrip("#").strip()

"""What the CLI says about config fields: ``--help``, ``docs/config.md`` and the nearest fields
to a wrong one.

Every field's comment comes from its one declaration (``ofql_jax.core.config_fields`` for the
run fields, the agent's ``default_config`` for its own), so the help cannot drift from the code.

Also what the command-line tools share: loading a config file (``get_config_of``), an
argparse type (``int_list``) and an error on one line (``one_line``).

Example:
    >>> from ofql_jax.core.cli_help import closest_fields
    >>> closest_fields("num_stepz", ["num_steps", "num_seeds", "seed"])
    ['num_steps', 'num_seeds']
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import ml_collections

from ofql_jax.core.config_fields import (
    BLOCKS,
    FIELDS,
    MISSING,
    RUN_FIELDS,
    Choice,
    Field,
    agent_config,
    agent_fields,
)
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.tasks import PROTOCOLS, TASKS

# Names people type for fields called otherwise here.
SYNONYMS = {"learning_rate": "lr", "lr": "lr", "gamma": "discount", "steps": "num_steps",
            "seeds": "num_seeds", "polyak": "tau", "alpha": "eta"}  # fmt: skip


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (tuples become lists, as in JSON)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def config_fields(config: ml_collections.ConfigDict) -> list[str]:
    """Every overridable field of ``config`` as a dotted name (``agent.eta``, ``sweep.eta``)."""
    return sorted(flatten(config.to_dict()))


def closest_fields(name: str, fields: Iterable[str], limit: int = 3) -> list[str]:
    """The fields most like ``name``: by the whole dotted name, then by the last part (so
    ``etta`` finds ``agent.eta`` and ``learning_rate`` finds ``agent.actor_lr`` only if close)."""
    fields = list(fields)
    leaf = name.rsplit(".", 1)[-1]
    found: list[str] = []
    if leaf in SYNONYMS:
        found += [f for f in fields if re.search(rf"(^|[._]){SYNONYMS[leaf]}$", f)]
    by_leaf: dict[str, list[str]] = {}
    for field in fields:
        by_leaf.setdefault(field.rsplit(".", 1)[-1], []).append(field)
    for match in difflib.get_close_matches(leaf, list(by_leaf), n=limit, cutoff=0.6):
        found += [f for f in by_leaf[match] if f not in found]
    found += [f for f in difflib.get_close_matches(name, fields, n=limit, cutoff=0.6)
              if f not in found]  # fmt: skip
    # a wrong name sharing a word with a field's name ("eval_episode" and "eval_episodes")
    words = set(re.split(r"[._]", leaf))
    for field in fields:
        parts = set(re.split(r"[._]", field.rsplit(".", 1)[-1]))
        if len(found) < limit and field not in found and words & parts - {"", "eval", "num"}:
            found.append(field)
    return found[:limit]


FLAG_HELP = (
    ("--config=FILE[:TASK[,PROTOCOL]]", "experiment config, e.g. experiments/d4rl.py:"
     "hopper-medium,dql; --config.FIELD=VALUE overrides a field"),
    ("--workdir=DIR", "outputs and checkpoints (default runs/<task>); an existing run resumes"),
    ("--overwrite", "move an existing run in --workdir aside and start afresh"),
    ("--allow_config_change", "resume although the saved config differs"),
    ("--debug", "show tracebacks"),
    ("--help, -h", "this page"),
    ("--help-config-md", "every field of every algorithm as Markdown (docs/config.md)"),
)  # fmt: skip
USAGE = (
    "usage: python -m ofql_jax.main --config=experiments/d4rl.py[:TASK[,PROTOCOL]] "
    "[--config.FIELD=VALUE ...] [--workdir=DIR]"
)


def help_text(config: ml_collections.ConfigDict, agent: Any) -> str:
    """The ``--help`` page: the flags, then every field of ``config`` with its value and
    comment (``agent``: the AgentSpec of ``config.algorithm``)."""
    out = [USAGE, "", "flags:"] + [f"  {flag:<34} {text}" for flag, text in FLAG_HELP]
    sections: dict[str, list[Field]] = {}
    for field in RUN_FIELDS:
        if field.name in config:
            sections.setdefault(f"run fields, {field.section}", []).append(field)
    others = sorted(set(config) - set(FIELDS) - set(BLOCKS))
    if others:
        sections["other fields of this config file"] = [Field(n, config[n], "") for n in others]
    for title, fields in sections.items():
        out += ["", f"{title}:"] + _help_rows(fields, config, "")
    if "agent" in config:
        declared = [f for f in agent_fields(agent) if f.name in config.agent]
        rest = sorted(set(config.agent) - {f.name for f in declared})
        fields = declared + [Field(n, config.agent[n], "") for n in rest]
        out += ["", f"agent fields ({config.algorithm}: {_module_path(agent)}):"]
        out += _help_rows(fields, config.agent, "agent.")
    if config.get("sweep"):
        out += ["", f"sweep fields ({BLOCKS['sweep']}):"]
        for name in config.sweep:
            out.append(f"  --config.sweep.{name}={_show(config.sweep[name])}")
            out.append(f"      values of agent.{name} to sweep, e.g. --config.sweep.{name}=a,b")
    return "\n".join(out)


def _help_rows(fields: list[Field], values: Mapping[str, Any], prefix: str) -> list[str]:
    out = []
    for field in fields:
        out.append(f"  --config.{prefix}{field.name}={_show(values[field.name])}")
        if field.doc:
            out.append(f"      {field.doc}" + " [P]" * field.protocol)
    return out


def _module_path(agent: Any) -> str:
    return agent.default_config.__module__.replace(".", "/") + ".py"


def config_reference(agents: Mapping[str, Any], task: str, algorithm: str) -> str:
    """``docs/config.md``: every run field and every agent's fields, with their defaults (as
    set on ``task``, and by each protocol) and comments, as Markdown."""
    out = [
        "# Config reference",
        "",
        "<!-- Generated by `python -m ofql_jax.main --help-config-md > docs/config.md` from the",
        "fields' declarations: the run fields in ofql_jax/core/config_fields.py, each agent's in",
        "its default_config. tests/test_protocol.py checks that this file is current. -->",
        "",
        "Pick a task and a protocol with `--config=experiments/d4rl.py:TASK[,PROTOCOL]`, then set",
        "any field with `--config.FIELD=VALUE` (agent fields: `--config.agent.FIELD=VALUE`);",
        "`--config.algorithm=NAME` picks the algorithm and with it the agent fields.",
        "`python -m ofql_jax.main --help` lists the same fields with the values the command line",
        "gives them.",
        "",
        f"Defaults depend on the task and on the protocol where marked; examples are for {task}.",
        "A protocol (`paper` or `dql`) sets the fields marked [P]. *resumable*: a run resumed in",
        "its `--workdir` may change the field without changing its numbers. *old runs*: the",
        "value with which a run saved before the field existed is read and resumed.",
        "",
        "## Run fields",
    ]
    choices = {(t, p): Choice(TASKS[t], p, agents[algorithm]) for t in TASKS for p in PROTOCOLS}
    for section in dict.fromkeys(f.section for f in RUN_FIELDS):
        out += ["", f"### {section}", "", *_TABLE_HEAD]
        for field in (f for f in RUN_FIELDS if f.section == section):
            values = {key: field.value(choice) for key, choice in choices.items()}
            notes = ["[P]"] * field.protocol + ["resumable"] * field.resumable
            if field.before is not MISSING:
                notes.append(f"old runs: `{_show(field.before)}`")
            default = f"`{field.shown}`" if field.shown else _default_text(values, task)
            out.append(_table_row(field, default, notes))
    out += [
        "",
        "## Agent fields",
        "",
        "Each algorithm's own fields, under `agent.` (`--config.agent.FIELD=VALUE`). A",
        "*sweepable* field also takes `--config.sweep.FIELD=a,b,c`: those values x the seeds",
        "train in one program.",
    ]
    for name, spec in agents.items():
        values = {(t, p): agent_config(Choice(TASKS[t], p, spec)) for t, p in choices}
        out += ["", f"### {name}", "", f"{spec.summary} (`{_module_path(spec)}`)."]
        out += ["", *_TABLE_HEAD]
        for field in agent_fields(spec):
            by_choice = {key: config[field.name] for key, config in values.items()}
            by_protocol = any(by_choice[t, p] != by_choice[t, PROTOCOLS[0]] for t, p in by_choice)
            notes = ["[P]"] * by_protocol + ["sweepable"] * (field.name in spec.sweepable)
            default = _default_text(by_choice, task)
            out.append(_table_row(field, default, notes))
    return "\n".join(out) + "\n"


_TABLE_HEAD = ("| field | type | default | notes | meaning |", "|---|---|---|---|---|")


def _table_row(field: Field, default: str, notes: list[str]) -> str:
    cells = [f"`{field.name}`", field.kind.__name__, default, ", ".join(notes), field.doc]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _default_text(values: Mapping[tuple[str, str], Any], task: str) -> str:
    """`v`; or per task (`v` on TASK); or each protocol's, when the protocols differ."""

    def one(protocol: str) -> str:
        value = f"`{_show(values[task, protocol])}`"
        same = len({repr(v) for (_, p), v in values.items() if p == protocol}) == 1
        return value if same else f"per task ({value} on {task})"

    texts = {p: one(p) for p in PROTOCOLS}
    if len(set(texts.values())) == 1:
        return texts[PROTOCOLS[0]]
    return "; ".join(f"{p}: {text}" for p, text in texts.items())


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ",".join(str(v) for v in value) + ")"
    return str(value) if value != "" else '""'


def get_config_of(path: Path, missing: str) -> Callable:
    """The ``get_config`` function of a config file; ``OFQLError(missing)`` if it is absent."""
    spec = importlib.util.spec_from_file_location(f"ofql_config_{path.stem}", path)
    if spec is None or not path.is_file():
        raise OFQLError(missing)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config


def one_line(text: object) -> str:
    """An error's text on one line (absl's messages hold newlines, some written as ``\\n``)."""
    return re.sub(r"\s+", " ", str(text).replace("\\n", " ")).strip()


def int_list(text: str) -> tuple[int, ...]:
    """An argparse type for ``--flag=1,2,3``: a wrong value exits 2 with argparse's one line.

    >>> int_list("540000, 600000")
    (540000, 600000)
    """
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers (e.g. 0,2)"
        ) from None

"""What the CLI says about config fields: ``--help`` and the nearest fields to a wrong one.

Every field's comment is read from the source that defines it (``c.<field> = value  #
comment`` in the config file and in the agent's ``default_config``), so the help cannot
drift from the code.

Also the argparse types the command-line tools share (``int_list``).

Example:
    >>> from ofql_jax.core.cli_help import closest_fields
    >>> closest_fields("num_stepz", ["num_steps", "num_seeds", "seed"])
    ['num_steps', 'num_seeds']
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ml_collections

_ASSIGN = re.compile(r"^\s*c\.(\w+)\s*=.*?#\s*(.*)$")
_ASSIGN_NO_COMMENT = re.compile(r"^\s*c\.(\w+)\s*=")
_CONTINUATION = re.compile(r"^\s*#\s*(.*)$")
_PAREN_COMMENT = re.compile(r"^\s*\)\s*#\s*(.*)$")  # c.x = (\n ...\n)  # comment
_VALUE_COMMENT = re.compile(r"^\s*[^#\s][^#]*#\s*(.*)$")  # c.x = (\n value  # comment\n)
# Names people type for fields called otherwise here.
SYNONYMS = {"learning_rate": "lr", "lr": "lr", "gamma": "discount", "steps": "num_steps",
            "seeds": "num_seeds", "polyak": "tau", "alpha": "eta"}  # fmt: skip


def field_comments(source: str) -> dict[str, str]:
    """``{field: comment}`` from ``c.<field> = ...  # comment`` lines, with the comment lines
    that directly follow (or the comment after a multi-line value's closing parenthesis)."""
    comments: dict[str, str] = {}
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        match = _ASSIGN.match(line) if "#" in line else None
        name_match = match or _ASSIGN_NO_COMMENT.match(line)
        if not name_match:
            i += 1
            continue
        name = name_match.group(1)
        text = [match.group(2)] if match else []
        j = i + 1
        if not match:  # the comment may follow the closing parenthesis of a long value
            while j < len(lines) and j < i + 6 and not _ASSIGN_NO_COMMENT.match(lines[j]):
                closing = _PAREN_COMMENT.match(lines[j]) or _VALUE_COMMENT.match(lines[j])
                j += 1
                if closing:
                    text.append(closing.group(1))
                    break
        while j < len(lines) and (cont := _CONTINUATION.match(lines[j])):
            text.append(cont.group(1))
            j += 1
        if text and name not in comments:
            comments[name] = " ".join(t.strip() for t in text if t.strip())
        i = j
    return comments


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


def help_text(config: ml_collections.ConfigDict, config_file: Path | None, agent_module) -> str:
    """The ``--help`` page: the flags, then every config field with its default and comment."""
    run_comments = field_comments(config_file.read_text()) if config_file else {}
    agent_comments = field_comments(inspect.getsource(agent_module))
    flags = [
        (
            "--config=FILE[:TASK[,PROTOCOL]]",
            "experiment config, e.g. experiments/d4rl.py:"
            "hopper-medium,dql; --config.FIELD=VALUE overrides a field",
        ),  # fmt: skip
        ("--workdir=DIR", "outputs and checkpoints (default runs/<task>); an existing run resumes"),
        ("--overwrite", "move an existing run in --workdir aside and start afresh"),
        ("--allow_config_change", "resume although the saved config differs"),
        ("--debug", "show tracebacks"),
        ("--help, -h", "this page"),
    ]
    out = ["usage: python -m ofql_jax.main --config=experiments/d4rl.py[:TASK[,PROTOCOL]] "
           "[--config.FIELD=VALUE ...] [--workdir=DIR]", "", "flags:"]  # fmt: skip
    out += [f"  {flag:<34} {text}" for flag, text in flags]
    where = config_file.name if config_file else "the config"
    sections = [
        (
            f"run fields ({where}):",
            {k: v for k, v in config.items() if k not in ("agent", "sweep")},
            "",
            run_comments,
        ),  # fmt: skip
        (
            f"agent fields ({config.algorithm}: {Path(agent_module.__file__).name}):",
            dict(config.agent.items()),
            "agent.",
            agent_comments,
        ),  # fmt: skip
        (
            "sweep fields (comma-separated values, one vmapped program):",
            dict(config.sweep.items()) if "sweep" in config else {},
            "sweep.",
            {},
        ),  # fmt: skip
    ]
    for title, fields, prefix, comments in sections:
        if not fields:
            continue
        out += ["", title]
        for name in sorted(fields):
            value = fields[name]
            comment = comments.get(name, "")
            if prefix == "sweep.":
                comment = f"values of agent.{name} to sweep, e.g. --config.sweep.{name}=a,b"
            out.append(f"  --config.{prefix}{name}={_show(value)}")
            if comment:
                out.append(f"      {comment}")
    return "\n".join(out)


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ",".join(str(v) for v in value) + ")"
    return str(value) if value != "" else '""'


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

"""Validation of experiment configs: bad values and resumed-run mismatches end in one sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections

from ofql_jax.agents import AGENTS
from ofql_jax.agents.base import require as _require
from ofql_jax.core.cli_help import flatten
from ofql_jax.core.config_fields import ADDED_FIELDS, RESUMABLE, RUN_FIELDS
from ofql_jax.core.errors import OFQLError
from ofql_jax.training.sweep import parse_sweep


def _type_ok(value: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or expected is bool:
        return isinstance(value, bool)
    if isinstance(expected, (tuple, list)):
        return isinstance(value, (tuple, list)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
    kind = expected if isinstance(expected, type) else type(expected)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def _check_types(config: ml_collections.ConfigDict) -> None:
    for field in RUN_FIELDS:
        if field.name not in config:
            raise OFQLError(f"config.{field.name} is missing: start from experiments/d4rl.py.")
        value = config[field.name]
        _require(_type_ok(value, field.kind), field.name, value, f"of type {field.kind.__name__}")
    if "sweep" not in config:
        raise OFQLError("config.sweep is missing: start from experiments/d4rl.py.")
    defaults = AGENTS[config.algorithm].default_config()
    for field, default in defaults.items():
        if field not in config.agent:
            raise OFQLError(f"config.agent.{field} is missing: start from experiments/d4rl.py.")
        need = (
            "a tuple of ints" if isinstance(default, tuple) else f"of type {type(default).__name__}"
        )
        _require(
            _type_ok(config.agent[field], default), f"agent.{field}", config.agent[field], need
        )


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raise OFQLError naming the first field with a wrong type or an impossible value."""
    c = config
    _require(
        c.get("algorithm") in AGENTS, "algorithm", c.get("algorithm"), f"one of {sorted(AGENTS)}"
    )
    _check_types(config)
    for field in RUN_FIELDS:
        if field.check is not None:
            ok, need = field.check
            _require(ok(c[field.name]), field.name, c[field.name], need)
    spec = AGENTS[c.algorithm]
    spec.check(c.agent)
    _check_sweep(config, spec)


def _check_sweep(config: ml_collections.ConfigDict, spec) -> None:
    """Swept names must be the algorithm's sweepable fields, and every swept setting must pass
    the algorithm's own checks (a swept flow_ratio=1.5 is as wrong as a set one)."""
    for name, text in config.sweep.items():
        if str(text).strip() and name not in spec.sweepable:
            raise OFQLError(
                f"config.sweep.{name} cannot be swept by {spec.name}: sweep one of "
                f"{', '.join(spec.sweepable)}."
            )
    settings = parse_sweep(config.sweep)
    # The clip exists (in every member) iff agent.grad_norm > 0; a member's value <= 0 then
    # turns its clip off, while without the clip a swept value > 0 would do nothing.
    if config.agent.get("grad_norm", 1.0) <= 0 and any(s.get("grad_norm", 0) > 0 for s in settings):
        raise OFQLError(
            f"config.sweep.grad_norm = {config.sweep.grad_norm!r} clips, but "
            f"config.agent.grad_norm = {config.agent.grad_norm!r} builds no clip: set "
            "--config.agent.grad_norm to one of the swept values."
        )
    for setting in settings:
        if not setting:
            continue
        swept = ml_collections.ConfigDict(config.agent.to_dict())
        for name, value in setting.items():
            swept[name] = value
        try:
            spec.check(swept)
        except OFQLError as err:
            names = ", ".join(f"--config.sweep.{name}" for name in setting)
            raise OFQLError(f"{str(err).rstrip('.')} (a value of {names}).") from None


def compare_configs(saved: dict[str, Any], current: dict[str, Any], workdir: Path) -> None:
    """Refuse to resume a run in ``workdir`` whose saved config differs from ``current``.
    A field made sweepable after the run was saved (no ``sweep.<field>`` there) was unswept."""
    new = flatten(current)
    unswept = {k: "" for k in new if k.startswith("sweep.")}
    old = ADDED_FIELDS | unswept | flatten(saved)
    differing = sorted(
        k for k in set(old) | set(new) if k not in RESUMABLE and old.get(k) != new.get(k)
    )
    if differing:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in differing[:4])
        more = f" and {len(differing) - 4} more" if len(differing) > 4 else ""
        raise OFQLError(
            f"{workdir} holds a run with a different config ({shown}{more}): "
            "use a new --workdir, re-run with the saved config, pass --allow_config_change to "
            "resume with the new one, or --overwrite to move the old run aside."
        )

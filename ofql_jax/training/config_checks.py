"""Validation of experiment configs: bad values and resumed-run mismatches end in one sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections

from ofql_jax.agents import AGENTS
from ofql_jax.agents.base import require as _require
from ofql_jax.core.cli_help import flatten
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.tasks import PROTOCOLS
from ofql_jax.training.sweep import parse_sweep

# Fields that may change between a run and its resumption without changing its numbers.
RESUMABLE_CHANGES = (
    "num_steps", "progress", "checkpoints_to_keep", "download", "compilation_cache_dir",
    "num_devices", "seeds_per_group", "distributed", "replica_envs", "behavior_dir",
    "eval_workers", "wandb_project", "wandb_entity", "wandb_mode", "wandb_name",
)  # placement changes numbers only at float32 rounding; see README  # fmt: skip


# Run-level fields and their types (agent fields are checked against the agent's defaults).
RUN_FIELDS: dict[str, type] = {
    "task": str, "dataset_id": str, "download": bool, "reward_tune": str,
    "normalize_with_task": bool, "algorithm": str, "seed": int, "num_seeds": int,
    "num_steps": int, "batch_size": int, "steps_per_call": int, "eval_every": int,
    "eval_episodes": int, "eval_candidates": int, "eval_one_step": bool,
    "checkpoint_every": int, "checkpoints_to_keep": int, "halt_on_divergence": bool,
    "progress": bool, "num_devices": int, "seeds_per_group": int, "distributed": bool,
    "compilation_cache_dir": str, "data_source": str, "replica_steps": int,
    "replica_seed": int, "replica_envs": int, "behavior_dir": str, "protocol": str,
    "eval_actor": str, "eval_noise_temperature": float, "eval_q_temperature": float,
    "eval_workers": int, "eval_max_envs": int, "matmul_precision": str,
    "wandb_project": str, "wandb_entity": str, "wandb_mode": str, "wandb_name": str,
}  # fmt: skip
MATMUL_PRECISIONS = ("highest", "high", "default")
# Values of fields added after runs were made with the code that lacked them.
# (what every earlier run used: float32 on CPU, no W&B)
ADDED_FIELDS = {"matmul_precision": "highest", "wandb_project": "", "wandb_entity": "",
                "wandb_mode": "offline", "wandb_name": ""}  # fmt: skip


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
    for field, kind in RUN_FIELDS.items():
        if field not in config:
            raise OFQLError(f"config.{field} is missing: start from experiments/d4rl.py.")
        _require(_type_ok(config[field], kind), field, config[field], f"of type {kind.__name__}")
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
    c, a = config, config.agent
    _require(
        c.get("algorithm") in AGENTS, "algorithm", c.get("algorithm"), f"one of {sorted(AGENTS)}"
    )
    _check_types(config)
    _require(c.seed >= 0, "seed", c.seed, "a non-negative integer")
    _require(c.num_devices >= 0, "num_devices", c.num_devices, ">= 0 (0: all devices)")
    _require(c.seeds_per_group >= 0, "seeds_per_group", c.seeds_per_group, ">= 0 (0: auto)")
    if "sweep" not in c:
        raise OFQLError("config.sweep is missing: start from experiments/d4rl.py.")
    for field in ("num_seeds", "num_steps", "batch_size", "steps_per_call", "eval_candidates"):
        _require(int(c[field]) >= 1, field, c[field], "a positive integer")
    for field in ("eval_every", "checkpoint_every", "eval_episodes"):
        _require(int(c[field]) >= 0, field, c[field], "a non-negative integer (0 disables)")
    _require(c.protocol in PROTOCOLS, "protocol", c.protocol, f"one of {', '.join(PROTOCOLS)}")
    _require(c.eval_actor in ("ema", "online"), "eval_actor", c.eval_actor, "ema or online")
    for field in ("eval_noise_temperature", "eval_q_temperature"):
        _require(c[field] > 0, field, c[field], "> 0")
    _require(c.eval_workers >= 0, "eval_workers", c.eval_workers, ">= 0 (0: one per core)")
    _require(c.eval_max_envs >= 1, "eval_max_envs", c.eval_max_envs, "a positive integer")
    _require(int(c.checkpoints_to_keep) >= 1, "checkpoints_to_keep", c.checkpoints_to_keep, ">= 1")
    _require(
        c.data_source in ("auto", "official", "replica"),
        "data_source",
        c.data_source,
        "auto, official or replica",
    )
    for field in ("replica_steps", "replica_envs"):
        _require(int(c[field]) >= 1, field, c[field], "a positive integer")
    _require(c.replica_seed >= 0, "replica_seed", c.replica_seed, "a non-negative integer")
    _require(c.reward_tune in ("none", "antmaze"), "reward_tune", c.reward_tune, "none or antmaze")
    _require(c.wandb_mode in ("offline", "online", "disabled"), "wandb_mode", c.wandb_mode,
             "offline, online or disabled")  # fmt: skip
    _require(c.matmul_precision in MATMUL_PRECISIONS, "matmul_precision", c.matmul_precision,
             " or ".join(MATMUL_PRECISIONS))  # fmt: skip
    spec = AGENTS[c.algorithm]
    spec.check(a)
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
    for setting in parse_sweep(config.sweep):
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
    """Refuse to resume a run in ``workdir`` whose saved config differs from ``current``."""
    old, new = ADDED_FIELDS | flatten(saved), flatten(current)
    differing = sorted(
        k for k in set(old) | set(new) if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k)
    )
    if differing:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in differing[:4])
        more = f" and {len(differing) - 4} more" if len(differing) > 4 else ""
        raise OFQLError(
            f"{workdir} holds a run with a different config ({shown}{more}): "
            "use a new --workdir, re-run with the saved config, pass --allow_config_change to "
            "resume with the new one, or --overwrite to move the old run aside."
        )

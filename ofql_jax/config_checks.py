"""Validation of experiment configs: bad values and resumed-run mismatches end in one sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections

from ofql_jax.agents import AGENTS
from ofql_jax.errors import OFQLError
from ofql_jax.networks import ACTIVATIONS

# Fields that may change between a run and its resumption without changing its numbers.
RESUMABLE_CHANGES = ("num_steps", "progress", "checkpoints_to_keep", "download")


def _require(ok: bool, field: str, value: Any, need: str) -> None:
    if not ok:
        raise OFQLError(f"config.{field} = {value!r} is invalid: it must be {need}.")


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raise OFQLError naming the first field with an impossible value."""
    c, a = config, config.agent
    _require(c.algorithm in AGENTS, "algorithm", c.algorithm, f"one of {sorted(AGENTS)}")
    for field in ("num_seeds", "num_steps", "batch_size", "steps_per_call", "eval_candidates"):
        _require(int(c[field]) >= 1, field, c[field], "a positive integer")
    for field in ("eval_every", "checkpoint_every", "eval_episodes"):
        _require(int(c[field]) >= 0, field, c[field], "a non-negative integer (0 disables)")
    _require(int(c.checkpoints_to_keep) >= 1, "checkpoints_to_keep", c.checkpoints_to_keep, ">= 1")
    _require(c.reward_tune in ("none", "antmaze"), "reward_tune", c.reward_tune, "none or antmaze")
    _require(0.0 <= a.flow_ratio <= 1.0, "agent.flow_ratio", a.flow_ratio, "in [0, 1]")
    _require(0.0 <= a.discount <= 1.0, "agent.discount", a.discount, "in [0, 1]")
    _require(0.0 < a.tau <= 1.0, "agent.tau", a.tau, "in (0, 1]")
    _require(0.0 <= a.ema_decay <= 1.0, "agent.ema_decay", a.ema_decay, "in [0, 1]")
    _require(a.ema_every >= 1, "agent.ema_every", a.ema_every, "a positive integer")
    _require(a.eta >= 0.0, "agent.eta", a.eta, ">= 0")
    _require(
        a.actor_lr > 0 and a.critic_lr > 0,
        "agent.actor_lr/critic_lr",
        (a.actor_lr, a.critic_lr),
        "> 0",
    )
    _require(a.time_std > 0, "agent.time_std", a.time_std, "> 0")
    _require(
        a.activation in ACTIVATIONS,
        "agent.activation",
        a.activation,
        f"one of {sorted(ACTIVATIONS)}",
    )
    _require(
        a.init_scheme in ("pytorch", "lecun"),
        "agent.init_scheme",
        a.init_scheme,
        "pytorch or lecun",
    )
    _require(
        a.second_time in ("r", "t_minus_r"), "agent.second_time", a.second_time, "r or t_minus_r"
    )
    _require(
        a.bc_loss_reduction in ("sum", "mean"),
        "agent.bc_loss_reduction",
        a.bc_loss_reduction,
        "sum or mean",
    )
    _require(
        len(a.hidden_dims) >= 1 and min(a.hidden_dims) >= 1,
        "agent.hidden_dims",
        a.hidden_dims,
        "a tuple of positive widths",
    )
    _require(
        len(a.critic_hidden_dims) >= 1 and min(a.critic_hidden_dims) >= 1,
        "agent.critic_hidden_dims",
        a.critic_hidden_dims,
        "a tuple of positive widths",
    )
    _require(a.num_backup_samples >= 1, "agent.num_backup_samples", a.num_backup_samples, ">= 1")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def compare_configs(saved: dict[str, Any], current: dict[str, Any], workdir: Path) -> None:
    """Refuse to resume a run in ``workdir`` whose saved config differs from ``current``."""
    old, new = _flatten(saved), _flatten(current)
    differing = sorted(
        k for k in set(old) | set(new) if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k)
    )
    if differing:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in differing[:4])
        more = f" and {len(differing) - 4} more" if len(differing) > 4 else ""
        raise OFQLError(
            f"{workdir} holds checkpoints of a run with a different config ({shown}{more}): "
            "use a new --workdir, or re-run with the saved config to resume it."
        )

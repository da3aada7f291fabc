"""Hyperparameter sweeps in one program: every (setting, seed) pair is one vmapped member.

Continuous hyperparameters live in each member's ``state.hparams`` (see
``agents.ofql.SWEEPABLE``), so a sweep changes array values, not the compiled
program. ``--config.sweep.eta=0.01,0.1,0.3`` with 5 seeds trains 15 members; every
setting uses the same seed values (and so the same initialisations and batches),
which makes settings directly comparable.

Example:
    >>> settings = parse_sweep({"eta": "0.1,0.3", "flow_ratio": ""})
    >>> settings
    [{'eta': 0.1}, {'eta': 0.3}]
    >>> [m.label for m in make_members([0, 1], settings)]
    ['eta=0.1/seed_0', 'eta=0.1/seed_1', 'eta=0.3/seed_0', 'eta=0.3/seed_1']
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.core.errors import OFQLError


@dataclasses.dataclass(frozen=True)
class Member:
    """One trained policy: a seed under one hyperparameter setting."""

    label: str  # "3" without a sweep, "eta=0.1/seed_3" with one
    seed: int  # seed value (init, batches and evaluation episodes)
    setting: int  # index into the settings list

    @property
    def run_name(self) -> str:
        """TensorBoard run directory: ``seed_3`` or ``eta=0.1/seed_3``."""
        return self.label if "/" in self.label else f"seed_{self.seed}"


def parse_sweep(sweep: Mapping[str, str]) -> list[dict[str, float]]:
    """The cartesian product of the comma-separated values given; ``[{}]`` without a sweep."""
    axes = []
    for name, text in sweep.items():
        if not str(text).strip():
            continue
        try:
            values = [float(v) for v in str(text).split(",") if v.strip()]
        except ValueError as err:
            raise OFQLError(
                f"config.sweep.{name} = {text!r} is not a comma-separated list of numbers: "
                f"write e.g. --config.sweep.{name}=0.01,0.1,0.3."
            ) from err
        if len(set(values)) != len(values) or not values:
            raise OFQLError(
                f"config.sweep.{name} = {text!r} must list distinct values: remove the repeats."
            )
        axes.append([(name, v) for v in values])
    return [dict(combo) for combo in itertools.product(*axes)] if axes else [{}]


def setting_name(setting: Mapping[str, float]) -> str:
    """``"eta=0.1,flow_ratio=0.5"``; ``""`` for the unswept setting."""
    return ",".join(f"{k}={v:g}" for k, v in setting.items())


def make_members(seed_values: list[int], settings: list[dict[str, float]]) -> list[Member]:
    """Setting-major order: all seeds of setting 0, then all seeds of setting 1, ..."""
    members = []
    for index, setting in enumerate(settings):
        prefix = setting_name(setting)
        for seed in seed_values:
            label = f"{prefix}/seed_{seed}" if prefix else str(seed)
            members.append(Member(label, seed, index))
    return members


def apply_settings(states, members: list[Member], settings: list[dict[str, float]]):
    """Write each member's swept values into ``states.hparams`` (placement is preserved)."""
    hparams = dict(states.hparams)
    for name in {k for s in settings for k in s}:
        if name not in hparams:
            raise OFQLError(
                f"config.sweep.{name} cannot be swept by this algorithm: sweep one of "
                f"{', '.join(sorted(hparams))}."
            )
        values = np.asarray([settings[m.setting][name] for m in members], np.float32)
        old = hparams[name]
        hparams[name] = jax.device_put(jnp.asarray(values), old.sharding)
    return states.replace(hparams=hparams)

"""Placing the seed axis on devices, and grouping seeds within a device.

Seeds never communicate, so the stacked states are split along their leading axis
over a one-axis device mesh (``"seed"``) and each device runs its own seeds with
``shard_map``: no collectives, and the same per-seed program as on one device. The
dataset is replicated on every device.

Within a device, seeds run ``seeds_per_group`` at a time: a ``lax.map`` over groups
of a ``vmap`` inside a group. On this project's 2-core CPU a 16-seed vmap ran at 75
seed-updates/s, groups of 2 at 89, single seeds at 85 (benchmarks/throughput.py);
on accelerators one vmap over all local seeds is best, hence the ``0`` = auto default.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ofql_jax.core.errors import OFQLError

SEED_AXIS = "seed"
CPU_SEEDS_PER_GROUP = 2  # measured best on a 2-core CPU; see the module docstring


def make_mesh(num_devices: int = 0) -> Mesh:
    """A 1-D mesh over the first ``num_devices`` devices (0 = all, across all hosts)."""
    devices = jax.devices()
    if num_devices > len(devices):
        raise OFQLError(
            f"num_devices = {num_devices} but only {len(devices)} devices are visible: "
            "lower --config.num_devices or use 0 for all."
        )
    chosen = devices[: num_devices or len(devices)]
    return Mesh(np.array(chosen), (SEED_AXIS,))


def seed_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (seed) axis split over the mesh."""
    return NamedSharding(mesh, P(SEED_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def check_divisible(num_members: int, mesh: Mesh) -> None:
    if num_members % mesh.size:
        raise OFQLError(
            f"{num_members} seeds (x sweep settings) cannot be split evenly over {mesh.size} "
            f"devices: use a multiple of {mesh.size} seeds, or set --config.num_devices to a "
            f"divisor of {num_members}."
        )


def resolve_group_size(requested: int, local_members: int) -> int:
    """Largest divisor of ``local_members`` not above the request (0 = backend default)."""
    if requested <= 0:
        requested = CPU_SEEDS_PER_GROUP if jax.default_backend() == "cpu" else local_members
    size = min(requested, local_members)
    while local_members % size:
        size -= 1
    return size


def grouped_vmap(fn, group_size: int, sliced: bool = False):
    """``vmap(fn, in_axes=(0, None))`` run ``group_size`` members at a time with ``lax.map``;
    with ``sliced``, ``fn`` takes a third argument mapped like the first (``(0, None, 0)``)."""
    batched = jax.vmap(fn, in_axes=(0, None, 0) if sliced else (0, None))

    def chunk_all_seeds(states, shared, *mapped):
        num = jax.tree.leaves(states)[0].shape[0]
        if group_size >= num:
            return batched(states, shared, *mapped)
        split = lambda x: x.reshape((num // group_size, group_size) + x.shape[1:])  # noqa: E731
        merge = lambda x: x.reshape((num,) + x.shape[2:])  # noqa: E731
        out = jax.lax.map(lambda group: batched(group[0], shared, *group[1]),
                          jax.tree.map(split, (states, mapped)))  # fmt: skip
        return jax.tree.map(merge, out)

    return chunk_all_seeds

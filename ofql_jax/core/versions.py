"""What produced a file: installed package versions and the CPU, recorded beside results.

Results and replicas record these because the same config and seed give the same numbers
only on the same software and hardware: MuJoCo's physics, JAX's compiled kernels and the
CPU's instruction set all reach the last bits of a rollout, and a rollout that differs in
one step differs in its whole episode.

Example:
    >>> sorted(package_versions(("numpy", "no-such-package")))
    ['no-such-package', 'numpy']
    >>> package_versions(("no-such-package",))
    {'no-such-package': None}
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "minari", "gymnasium",
            "gymnasium-robotics", "mujoco", "numpy")  # fmt: skip


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """The installed version of each package (``None`` where it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

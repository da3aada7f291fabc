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


# The vector extensions XLA's CPU kernels are compiled for, widest first: two CPUs with the
# same model name (hypervisors often show a generic one, such as "AMD EPYC") and different
# extensions compute other last bits.
_VECTOR_EXTENSIONS = ("avx512f", "avx2", "avx", "sse4_2")


def cpu_model() -> str:
    """The CPU's model name and widest vector extension (with ``fma`` when it has it), from
    ``/proc/cpuinfo`` on Linux, e.g. ``"AMD EPYC (avx2, fma)"``; else what ``platform``
    knows."""
    name, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not name:
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    if not name:
        return platform.processor() or platform.machine()
    widest = next((ext for ext in _VECTOR_EXTENSIONS if ext in flags), None)
    extensions = [e for e in (widest, "fma" if "fma" in flags else None) if e]
    return f"{name} ({', '.join(extensions)})" if extensions else name

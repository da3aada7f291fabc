"""Process-wide switches, set once by an entry point before any experiment is built.

``jax.distributed.initialize`` must precede every other JAX call of a process, the
persistent compilation cache is one directory per process, and the float32 matmul precision
is part of every program's trace; none belongs to one experiment, so ``python -m
ofql_jax.main`` and ``python -m ofql_jax.suite`` call ``setup_process`` once, before anything
compiles, and may then run many experiments (the benchmarks call ``set_matmul_precision``).

Example:
    >>> import ml_collections
    >>> setup_process(ml_collections.ConfigDict({"distributed": False,
    ...                                           "compilation_cache_dir": ""}))
"""

from __future__ import annotations

import os

import jax
import ml_collections

from ofql_jax.core.config_fields import MATMUL_PRECISIONS
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.paths import cache_path

_distributed_ready = False
# JAX records this event each time a program is loaded from the persistent cache.
_CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"
_cache_hits = 0
_counting = False


def _count_cache_hit(event: str, **_metadata) -> None:
    global _cache_hits
    if event == _CACHE_HIT_EVENT:
        _cache_hits += 1


def compilation_cache_hits() -> int:
    """How many programs this process has loaded from the persistent compilation cache since
    the first call (which starts counting; ``enable_compilation_cache`` makes it)."""
    global _counting
    if not _counting:
        jax.monitoring.register_event_listener(_count_cache_hit)
        _counting = True
    return _cache_hits


def enable_compilation_cache(directory: str) -> None:
    """JAX's persistent compilation cache: a second run of the same config compiles from disk.

    ``"auto"``: ``<cache root>/xla`` (``ofql_jax.core.paths``); ``""``: left as it is (off, unless
    ``JAX_COMPILATION_CACHE_DIR`` says otherwise). Starts counting cache hits."""
    compilation_cache_hits()
    path = cache_path(directory, "xla")
    if path:
        jax.config.update("jax_compilation_cache_dir", str(path))


def cluster_from_environment() -> dict[str, str | int]:
    """``jax.distributed.initialize`` arguments from ``JAX_COORDINATOR_ADDRESS``,
    ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` where all three are set (any machine,
    e.g. several processes on one host); otherwise none, and JAX detects the cluster
    (SLURM, Open MPI, Kubernetes, Cloud TPU)."""
    names = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
    values = [os.environ.get(name, "").strip() for name in names]
    if not all(values):
        return {}
    try:
        return dict(coordinator_address=values[0], num_processes=int(values[1]),
                    process_id=int(values[2]))  # fmt: skip
    except ValueError:
        raise OFQLError(
            f"JAX_NUM_PROCESSES={values[1]!r} and JAX_PROCESS_ID={values[2]!r} must be "
            "integers: set them to the number of processes and this process's index."
        ) from None


def matmul_precision() -> str:
    """The float32 matmul precision a program traced now gets (``default`` when unset).

    Example:
        >>> set_matmul_precision("highest"); matmul_precision()
        'highest'
    """
    return str(jax.config.jax_default_matmul_precision or "default")


def set_matmul_precision(precision: str) -> None:
    """Every float32 matmul the process compiles from now on runs at ``precision``:
    ``highest`` (true float32), ``high`` or ``default`` (the backend's fastest: TF32 on
    recent NVIDIA GPUs, bf16 passes on TPUs, float32 on CPUs). Process-wide, so call it
    first; JAX keys its compiled programs on it, so a later call changes only later programs.

    Raises ``OFQLError`` when a ``jax.default_matmul_precision`` context in this thread
    overrides it: a program would then silently compile at the context's precision.

    Example:
        >>> set_matmul_precision("highest")
    """
    jax.config.update("jax_default_matmul_precision", precision)
    applied = matmul_precision()
    if applied != precision:
        raise OFQLError(
            f"matmul precision {precision!r} is overridden by a jax.default_matmul_precision"
            f"({applied!r}) context: leave the context before building the run."
        )


def setup_process(config: ml_collections.ConfigDict) -> None:
    """Join the cluster when ``config.distributed`` (once per process; see
    ``cluster_from_environment``), switch on the compilation cache of
    ``config.compilation_cache_dir`` and set a valid ``config.matmul_precision`` before
    anything compiles."""
    global _distributed_ready
    if config.distributed and not _distributed_ready:
        # CPU devices of several processes talk through Gloo (GPUs use NCCL regardless).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        try:
            jax.distributed.initialize(**cluster_from_environment())
        except (ValueError, RuntimeError) as err:
            raise OFQLError(
                f"Cannot join the cluster ({str(err).splitlines()[0].rstrip('.')}): run under "
                "SLURM or another launcher JAX detects, or set JAX_COORDINATOR_ADDRESS, "
                "JAX_NUM_PROCESSES and JAX_PROCESS_ID."
            ) from None
        _distributed_ready = True
    enable_compilation_cache(config.compilation_cache_dir)
    # A bad value is left to check_config, which names the field and its choices.
    if config.get("matmul_precision") in MATMUL_PRECISIONS:
        set_matmul_precision(config.matmul_precision)

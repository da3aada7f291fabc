"""Process-wide switches, set once by an entry point before any experiment is built.

``jax.distributed.initialize`` must precede every other JAX call of a process, and the
persistent compilation cache is one directory per process; neither belongs to one
experiment, so ``python -m ofql_jax.main`` and ``python -m ofql_jax.suite`` call
``setup_process`` once and may then run many experiments.

Example:
    >>> import ml_collections
    >>> setup_process(ml_collections.ConfigDict({"distributed": False,
    ...                                           "compilation_cache_dir": ""}))
"""

from __future__ import annotations

import os

import jax
import ml_collections

_distributed_ready = False


def enable_compilation_cache(directory: str) -> None:
    """JAX's persistent compilation cache: a second run of the same config compiles from disk."""
    if directory:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(directory))


def setup_process(config: ml_collections.ConfigDict) -> None:
    """Join the cluster when ``config.distributed`` (reads the cluster's environment; once
    per process) and switch on the compilation cache of ``config.compilation_cache_dir``."""
    global _distributed_ready
    if config.distributed and not _distributed_ready:
        jax.distributed.initialize()
        _distributed_ready = True
    enable_compilation_cache(config.compilation_cache_dir)

"""Training, as one import: the library entry point ``run`` and the names most loops need.

The work is split by job: ``ofql_jax.trainer`` (the pure multi-seed chunk and its compiled
program), ``ofql_jax.experiment`` (the ``Experiment`` loop and its builders) and
``ofql_jax.results`` (the ``results.json`` schema, summaries and provenance). This module
re-exports them so that existing code keeps working.

Example:
    >>> from ofql_jax.train import run  # doctest: +SKIP
    >>> results = run(config, "runs/hopper")  # doctest: +SKIP
"""

from ofql_jax.experiment import Experiment, move_aside, run
from ofql_jax.results import provenance, transitions_hash
from ofql_jax.runtime import enable_compilation_cache, setup_process
from ofql_jax.trainer import (
    DIAGNOSTIC_BATCH,
    MultiSeedTrainer,
    diagnosed_chunks,
    fetch,
    init_states,
    make_diagnostics,
    make_train_chunk,
    seed_keys,
    seed_values,
)

__all__ = [
    "DIAGNOSTIC_BATCH",
    "Experiment",
    "MultiSeedTrainer",
    "diagnosed_chunks",
    "enable_compilation_cache",
    "fetch",
    "init_states",
    "make_diagnostics",
    "make_train_chunk",
    "move_aside",
    "provenance",
    "run",
    "seed_keys",
    "seed_values",
    "setup_process",
    "transitions_hash",
]

"""Command-line entry point: ``python -m ofql_jax.main --config=experiments/d4rl.py:TASK``.

Flags: ``--config`` (an ml_collections config file, fields overridable with
``--config.field=value``), ``--workdir`` (outputs and checkpoints; default
``runs/<task>``; re-running on a workdir with checkpoints resumes), ``--debug``
(show tracebacks). User-fixable failures end in one sentence and exit status 2.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config, e.g. experiments/d4rl.py:hopper-medium.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (default runs/<task>).")
_DEBUG = flags.DEFINE_bool("debug", False, "Show full tracebacks for errors.")

EXIT_USER_ERROR = 2


def main(argv: list[str]) -> int:
    del argv
    from ofql_jax.errors import OFQLError

    config = _CONFIG.value
    if config is None:
        print("error: no config given: pass --config=experiments/d4rl.py[:task].", file=sys.stderr)
        return EXIT_USER_ERROR
    workdir = _WORKDIR.value or os.path.join("runs", config.task)
    try:
        from ofql_jax.train import run

        results = run(config, workdir)
    except OFQLError as err:
        if _DEBUG.value:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    mean = results.get("mean")
    summary = f"{mean:.1f} +- {results['std']:.1f}" if mean is not None else "not evaluated"
    print(
        f"{results['task']} ({results['dataset_id']}): final score {summary} over "
        f"{results['num_seeds']} seeds; {results['updates_per_second']:.1f} updates/s; "
        f"results in {os.path.join(workdir, 'results.json')}"
    )
    return 0


def entry() -> None:
    logging.set_verbosity(logging.WARNING)
    app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
    entry()

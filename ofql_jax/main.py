"""Command-line entry point: ``python -m ofql_jax.main --config=experiments/d4rl.py:TASK``.

Flags: ``--config`` (an ml_collections config file, fields overridable with
``--config.field=value``), ``--workdir`` (outputs and checkpoints; default
``runs/<task>``; re-running on a workdir with checkpoints resumes), ``--overwrite``
(move an existing run in the workdir aside and start afresh), ``--allow_config_change``
(resume although the saved config differs), ``--debug`` (show tracebacks). A failure
the user can fix ends in one sentence on stderr and exit status 2; nothing in the
workdir is overwritten.
"""

from __future__ import annotations

import os
import re
import sys

from absl import flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config, e.g. experiments/d4rl.py:hopper-medium.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (default runs/<task>).")
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Move an existing run in --workdir aside (renamed) and start afresh."
)
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change",
    False,
    "Resume a run in --workdir even though its saved config differs from this one.",
)
_DEBUG = flags.DEFINE_bool("debug", False, "Show full tracebacks for errors.")

EXIT_USER_ERROR = 2
CONFIG_HELP = "see experiments/d4rl.py and ofql_jax/agents/ofql.py for every field and its type"


def _one_line(text: object) -> str:
    return re.sub(r"\s+", " ", str(text).replace("\\n", " ")).strip()


def _flag_error(err: Exception) -> str:
    """One sentence for a command line that absl rejected."""
    text = _one_line(err)
    unknown = re.match(r"Unknown command line flag '([\w.]+)'", text)
    if unknown and unknown.group(1).startswith("config."):
        return f"--{unknown.group(1)} is not a config field: {CONFIG_HELP}."
    if unknown:
        return (
            f"--{unknown.group(1)} is not a flag: use --config, --workdir, --overwrite, "
            "--allow_config_change or --debug."
        )
    bad_value = re.match(r"flag (--[\w.]+=\S*): (.*)", text)
    if bad_value:
        return f"{bad_value.group(1)} has the wrong type ({bad_value.group(2)}): {CONFIG_HELP}."
    return f"invalid command line ({text}): {CONFIG_HELP}."


def _algorithm_into_config_arg(argv: list[str]) -> list[str]:
    """``--config.algorithm=NAME`` also goes into the config argument (``file.py:...,
    algorithm=NAME``), so that get_config builds NAME's own ``agent`` fields before the
    ``--config.agent.*`` overrides are applied to them."""
    names = [a.split("=", 1)[1] for a in argv if a.startswith("--config.algorithm=")]
    if not names:
        return argv
    out, suffix = [], f"algorithm={names[-1]}"
    for i, arg in enumerate(argv):
        value = arg[len("--config=") :] if arg.startswith("--config=") else None
        if value is None and i > 0 and argv[i - 1] == "--config":
            value = arg  # the "--config FILE" form
        if value is not None:
            joined = f"{value}:{suffix}" if value.endswith(".py") else f"{value},{suffix}"
            arg = f"--config={joined}" if arg.startswith("--config=") else joined
        out.append(arg)
    return out


def parse(argv: list[str]) -> str | None:
    """Parse flags and load the config; return an error sentence for user mistakes."""
    from ofql_jax.errors import OFQLError

    protocol_flag = [a for a in argv if a.split("=", 1)[0] == "--config.protocol"]
    if protocol_flag:
        return (
            f"{protocol_flag[0]} would only relabel the run: choose the protocol after the task, "
            "e.g. --config=experiments/d4rl.py:hopper-medium,dql."
        )
    argv = _algorithm_into_config_arg(argv)
    try:
        flags.FLAGS(argv)
        config = _CONFIG.value
        if config is not None:
            config.to_dict()  # a file that failed to load only raises on first use
    except flags.Error as err:
        return _flag_error(err)
    except OFQLError as err:  # e.g. an unknown task name in get_config
        return str(err)
    except OSError as err:  # ml_collections reports a missing config file as IOError
        path = re.search(r"Attempted \[[^\]]*\]: (\S+)", _one_line(err))
        where = path.group(1) if path else "the --config file"
        return (
            f"cannot load the config file {where}: pass an existing one, "
            "e.g. --config=experiments/d4rl.py."
        )
    except AttributeError as err:  # ml_collections: overriding a field that does not exist
        text = _one_line(err)
        hint = re.search(r'Did you mean "([\w.]+)" instead of "([\w.]+)"', text)
        if hint:
            field, suggestion = hint.group(2), hint.group(1)
            return f"{field} is not a config field (did you mean {suggestion}?): {CONFIG_HELP}."
        return f"invalid config override ({text}): {CONFIG_HELP}."
    except (KeyError, TypeError, ValueError) as err:
        return f"invalid config override ({_one_line(err)}): {CONFIG_HELP}."
    if config is None:
        return "no config given: pass --config=experiments/d4rl.py[:task]."
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    argv = list(sys.argv if argv is None else argv)
    debug = "--debug" in argv
    logging.set_verbosity(logging.WARNING)
    problem = parse(argv)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USER_ERROR

    from ofql_jax.errors import OFQLError
    from ofql_jax.experiment import move_aside, run
    from ofql_jax.runtime import setup_process

    config = _CONFIG.value
    workdir = _WORKDIR.value or os.path.join("runs", config.task)
    try:
        if _OVERWRITE.value:
            moved = move_aside(workdir)
            if moved:
                print(f"Moved the previous run in {workdir} to {moved}.", file=sys.stderr)
        setup_process(config)  # before any other JAX call
        results = run(config, workdir, allow_config_change=_ALLOW_CONFIG_CHANGE.value)
    except OFQLError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(summary_line(results, workdir))
    return 0


def summary_line(results: dict, workdir: str) -> str:
    """The last console line: final score(s), speed and where the results are.

    Example:
        >>> line = summary_line({"task": "hopper-medium", "dataset_id": "d", "num_seeds": 2,
        ...                      "mean": 50.0, "std": 1.0, "updates_per_second": 9.0}, "w")
        >>> line.split(";")[0]
        'hopper-medium (d): final score 50.0 +- 1.0 over 2 seeds'
    """
    rate = results.get("updates_per_second")

    def score(entry: dict) -> str:
        mean = entry.get("mean")
        return f"{mean:.1f} +- {entry['std']:.1f}" if mean is not None else "not evaluated"

    if results.get("settings"):  # a sweep: one score per setting
        summary = "; ".join(f"{s['name']}: {score(s)}" for s in results["settings"])
    else:
        summary = score(results)
    speed = f"{rate:.1f} updates/s" if rate else "no steps left to train"
    return (
        f"{results['task']} ({results['dataset_id']}): final score {summary} over "
        f"{results['num_seeds']} seeds; {speed}; results in {os.path.join(workdir, 'results.json')}"
    )


if __name__ == "__main__":
    sys.exit(main())

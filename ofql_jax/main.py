"""Command-line entry point: ``python -m ofql_jax.main --config=experiments/d4rl.py:TASK``.

The flags are listed by ``--help`` (``ofql_jax.core.cli_help.FLAG_HELP``). A failure the user
can fix ends in one sentence on stderr and exit status 2; nothing in the workdir is
overwritten, and a failed start removes the folders it created.

``--config.algorithm=NAME`` needs the agent fields of NAME, which the config file builds: the
flags are parsed once as given (any field name accepted), then the config is built again for
the chosen algorithm and every ``--config.*`` value is applied to it, each name checked there.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from pathlib import Path

import ml_collections
from absl import flags, logging
from ml_collections import config_flags

from ofql_jax.agents import AGENTS
from ofql_jax.core.cli_help import (
    closest_fields,
    config_fields,
    config_reference,
    get_config_of,
    help_text,
    one_line,
)
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.workdir_lock import WorkdirLock
from ofql_jax.training.experiment import move_aside, run
from ofql_jax.training.runtime import setup_process

# Any field name is accepted at parse time: parse() rebuilds the config for the chosen
# algorithm and checks every override's name against it.
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file.", lock_config=False, accept_new_attributes=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (default runs/<task>).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Move an existing run aside and start afresh.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume although the saved config differs."
)
flags.DEFINE_bool("debug", False, "Show full tracebacks for errors.")

EXIT_USER_ERROR = 2
CONFIG_HELP = "see docs/config.md or --help for every field and its type"
HELP_FLAGS = ("--help", "-h", "--helpfull", "--helpshort", "-help")
REFERENCE_FLAG = "--help-config-md"
REPO_ROOT = Path(__file__).resolve().parents[1]  # experiments/ lives here in a source checkout


def _config_arg(argv: list[str]) -> tuple[int, str] | None:
    """(index, value) of the ``--config`` argument (``--config=V`` or ``--config V``)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return i, arg[len("--config=") :]
        if arg == "--config" and i + 1 < len(argv):
            return i + 1, argv[i + 1]
    return None


def _split_config_value(value: str) -> tuple[str, str | None]:
    path, sep, rest = value.partition(".py:")
    return (path + ".py", rest) if sep else (value, None)


def resolve_config_path(argv: list[str]) -> list[str]:
    """A relative ``--config`` file missing from the working directory is looked up in the
    repository this package was installed from, so the documented command works anywhere."""
    found = _config_arg(argv)
    if found is None:
        return argv
    i, value = found
    path, rest = _split_config_value(value)
    if not path or os.path.isabs(path) or os.path.exists(path):
        return argv
    candidate = REPO_ROOT / path
    if not candidate.is_file():
        return argv
    joined = str(candidate) + (f":{rest}" if rest is not None else "")
    out = list(argv)
    out[i] = f"--config={joined}" if out[i].startswith("--config=") else joined
    return out


def load_config(value: str, algorithm: str | None = None) -> ml_collections.ConfigDict:
    """``get_config`` of the config file ``value`` (``FILE[.py:ARG]``), for ``algorithm``
    when given (the config file reads it as ``ARG,algorithm=NAME``)."""
    path, rest = _split_config_value(value)
    if algorithm is not None:
        rest = f"{rest},algorithm={algorithm}" if rest else f"algorithm={algorithm}"
    get_config = get_config_of(Path(path), f"cannot load the config file {path}.")
    return get_config(rest) if rest is not None else get_config()


def _load_default_config(argv: list[str]) -> ml_collections.ConfigDict | None:
    """The config the command line names, before overrides (None if it does not load)."""
    found = _config_arg(argv)
    value = found[1] if found else "experiments/d4rl.py"
    if not found and not os.path.exists(value):
        value = str(REPO_ROOT / value)
    algorithms = [a.split("=", 1)[1] for a in argv if a.startswith("--config.algorithm=")]
    try:
        return load_config(value, algorithms[-1] if algorithms else None)
    except Exception:  # the parse step reports a broken config file in one sentence
        return None


def _default_fields(argv: list[str]) -> list[str] | None:
    loaded = _load_default_config(argv)
    return None if loaded is None else config_fields(loaded)


def _is_field(name: str, fields: list[str]) -> bool:
    return name in fields or any(f.startswith(name + ".") for f in fields)


def _closest_hint(name: str, fields: list[str] | None) -> str:
    """`` (did you mean --config.x or --config.y?)`` or the run fields and ``--help``."""
    if fields is None:
        return ""
    near = closest_fields(name, fields)
    if near:
        return " (did you mean " + " or ".join(f"--config.{f}" for f in near) + "?)"
    top = sorted({f.split(".", 1)[0] for f in fields})
    return f" (fields: {', '.join(top)}; --help lists every field with its default)"


def _inside(filename: str | None, workdir: str) -> bool:
    if not filename:
        return False
    path, top = Path(os.path.abspath(filename)), Path(os.path.abspath(workdir))
    return path == top or top in path.parents


def check_workdir(workdir: str) -> str | None:
    """One sentence if ``workdir`` cannot hold a run (a file, or not writable)."""
    path = Path(workdir)
    if path.exists() and not path.is_dir():
        return f"--workdir {workdir} is a file, not a directory: pass a directory."
    probe_from = path
    while not probe_from.exists():  # the nearest existing parent must let us create it
        probe_from = probe_from.parent
    if not probe_from.is_dir():
        return f"--workdir {workdir} lies under the file {probe_from}: pass a directory."
    if not os.access(probe_from, os.W_OK | os.X_OK):
        return f"cannot write to --workdir {workdir} ({probe_from} is not writable): pass a " \
            "directory you can write to."  # fmt: skip
    return None


def remove_empty_tree(workdir: str | Path) -> None:
    """Remove ``workdir`` if it holds nothing but empty folders (never a file)."""
    for root, _, files in os.walk(workdir, topdown=False):
        if files:
            return
        try:
            os.rmdir(root)
        except OSError:
            return


def _flag_error(err: Exception, argv: list[str]) -> str:
    """One sentence for a command line that absl rejected."""
    text = one_line(err)
    unknown = re.match(r"Unknown command line flag '([\w.]+)'", text)
    if unknown and unknown.group(1).startswith("config."):
        name = unknown.group(1)[len("config.") :]
        hint = _closest_hint(name, _default_fields(argv)) or f": {CONFIG_HELP}"
        return f"--{unknown.group(1)} is not a config field{hint}."
    if unknown:
        return (
            f"--{unknown.group(1)} is not a flag: use --config, --workdir, --overwrite, "
            "--allow_config_change or --debug."
        )
    bad_value = re.match(r"flag (--[\w.]+=\S*): (.*)", text)
    if bad_value:
        return f"{bad_value.group(1)} has the wrong type ({bad_value.group(2)}): {CONFIG_HELP}."
    return f"invalid command line ({text}): {CONFIG_HELP}."


def parse(argv: list[str]):
    """``(config, None)``, or ``(None, one sentence)`` for a user mistake."""
    protocol_flag = [a for a in argv if a.split("=", 1)[0] == "--config.protocol"]
    if protocol_flag:
        return None, (
            f"{protocol_flag[0]} would only relabel the run: choose the protocol after the task, "
            "e.g. --config=experiments/d4rl.py:hopper-medium,dql."
        )
    try:
        flags.FLAGS(argv)
        if _CONFIG.value is None:
            return None, "no config given: pass --config=experiments/d4rl.py[:task]."
        _CONFIG.value.to_dict()  # a file that failed to load only raises on first use
        return _settle(flags.FLAGS["config"]), None
    except flags.Error as err:
        return None, _flag_error(err, argv)
    except OFQLError as err:  # e.g. an unknown task or algorithm name in get_config
        return None, str(err)
    except OSError as err:  # ml_collections reports a missing config file as IOError
        path = re.search(r"Attempted \[[^\]]*\]: (\S+)", one_line(err))
        where = path.group(1) if path else "the --config file"
        return None, (
            f"cannot load the config file {where}: pass an existing one, "
            "e.g. --config=experiments/d4rl.py."
        )
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        # AttributeError, KeyError: absl set a field under a block that does not exist.
        fields = _default_fields(argv) if isinstance(err, AttributeError | KeyError) else None
        for arg in argv if fields is not None else ():
            name = arg[len("--config.") :].split("=", 1)[0]
            if arg.startswith("--config.") and "=" in arg and not _is_field(name, fields):
                return None, f"--config.{name} is not a config field{_closest_hint(name, fields)}."
        return None, f"invalid config override ({one_line(err)}): {CONFIG_HELP}."


def _settle(flag) -> ml_collections.ConfigDict:
    """The config file's config for the algorithm the flags chose, with every override
    applied in order; an override that names no field of it is refused with the nearest."""
    overrides = config_flags.get_override_values(flag)
    config = load_config(config_flags.get_config_filename(flag), overrides.get("algorithm"))
    fields = config_fields(config)
    for name, value in overrides.items():
        if not _is_field(name, fields):
            raise OFQLError(f"--config.{name} is not a config field{_closest_hint(name, fields)}.")
        *blocks, leaf = name.split(".")
        holder = config
        for block in blocks:
            holder = holder[block]
        try:
            holder[leaf] = value
        except (TypeError, ValueError) as err:
            raise OFQLError(
                f"--config.{name}={value} has the wrong type ({one_line(err)}): {CONFIG_HELP}."
            ) from None
    config.lock()
    return config


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    argv = resolve_config_path(list(sys.argv if argv is None else argv))
    debug = "--debug" in argv
    logging.set_verbosity(logging.WARNING)
    if any(arg in HELP_FLAGS or arg == REFERENCE_FLAG for arg in argv[1:]):
        config = _load_default_config(argv)
        if config is None:
            print("error: cannot load the --config file to list its fields: pass an existing "
                  "one, e.g. --config=experiments/d4rl.py.", file=sys.stderr)  # fmt: skip
            return EXIT_USER_ERROR
        if REFERENCE_FLAG in argv:  # docs/config.md: every algorithm's fields as Markdown
            print(config_reference(AGENTS, config.task, config.algorithm).rstrip("\n"))
        else:
            print(help_text(config, AGENTS[config.algorithm]))
        return 0
    config, problem = parse(argv)
    if config is not None:
        workdir = _WORKDIR.value or os.path.join("runs", config.task)
        problem = check_workdir(workdir)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USER_ERROR
    created = Path(os.path.abspath(workdir))
    while not created.parent.exists():  # the topmost folder this run will create
        created = created.parent
    existed = created.exists()
    lock = None
    try:
        setup_process(config)  # before any other JAX call
        import jax

        main_process = jax.process_index() == 0  # the one that writes and reports
        if main_process:
            if _OVERWRITE.value and WorkdirLock.held_by(workdir) is None:
                moved = move_aside(workdir)  # never the folder of a live run
                if moved:
                    print(f"Moved the previous run in {workdir} to {moved}.", file=sys.stderr)
            lock = WorkdirLock.acquire(workdir)  # one run per workdir
        if jax.process_count() > 1:  # the others wait until the workdir is ready
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("ofql_jax: workdir ready")
        results = run(config, workdir, allow_config_change=_ALLOW_CONFIG_CHANGE.value)
    except (OFQLError, OSError) as err:
        if lock is not None:
            lock.release()
        # Only an OS error on a path in the workdir (full disk, no permission) is the user's.
        if debug or isinstance(err, OSError) and not _inside(err.filename, workdir):
            raise
        if not existed:
            remove_empty_tree(created)  # a failed start leaves nothing behind
        if isinstance(err, OSError):
            err = f"cannot write to --workdir {workdir} ({os.strerror(err.errno).lower()}): " + (
                "free some space and re-run the same command to resume."
                if err.errno in (errno.ENOSPC, errno.EDQUOT)
                else "pass a directory you can write to."
            )
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:  # also on an unexpected exception (its traceback follows); idempotent
        if lock is not None:
            lock.release()
    if main_process:
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

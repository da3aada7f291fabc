"""Which data a run trains on: the official Minari dataset or the local replica.

``config.data_source``:

- ``official``: the task's Minari dataset(s), from the local cache or downloaded; a clear
  error when neither works.
- ``replica``: the local replica ``ofql/<env>/<level>-v0``, built first if missing
  (``ofql_jax.behavior.replica``; locomotion tasks only).
- ``auto`` (default): official when cached, or when downloads are on and the Minari
  server answers within a few seconds; otherwise the replica. One log line says which and
  why, and a resumed run keeps the source its first start chose.

``config.dataset_id`` overrides all of this (source ``dataset_id``).

Example:
    >>> choice = choose_data(get_config("hopper-medium"))  # doctest: +SKIP
    >>> choice.source, choice.dataset_ids  # offline, nothing cached
    ('replica', ('ofql/hopper/medium-v0',))
    >>> prepare_data(choice, config)  # builds the replica (progress bar) if missing
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import ml_collections

from ofql_jax.behavior.replica import LEVELS, ensure_replica, replica_id
from ofql_jax.behavior.zoo import ENV_IDS
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.tasks import get_task
from ofql_jax.data import minari_data
from ofql_jax.data.minari_data import ensure_local, is_local, server_reachable

SOURCES = ("auto", "official", "replica")
PROBE_SECONDS = 3.0


@dataclasses.dataclass(frozen=True)
class DataChoice:
    dataset_ids: tuple[str, ...]
    source: str  # "official" | "replica" | "dataset_id"
    reason: str  # one clause: why this source

    def describe(self) -> str:
        return f"Data: {self.source} {', '.join(self.dataset_ids)} ({self.reason})."


def _replica_ids(task_name: str) -> tuple[str, str] | None:
    """(env, level) of the task's replica, or None for tasks without one."""

    env, level = task_name.split("-", 1)
    return (env, level) if env in ENV_IDS and level in LEVELS else None


def _official_unavailable_reason(ids: tuple[str, ...], download: bool) -> str | None:
    """None when every official id is cached or downloadable now, else why not."""
    missing = [i for i in ids if not is_local(i)]
    if not missing:
        return None
    if not download:
        return f"official {missing[0]} is not cached and config.download is False"
    if not server_reachable(PROBE_SECONDS):
        host, port = minari_data.MINARI_SERVER
        return (
            f"official {missing[0]} is not cached and the Minari server {host}:{port} did not "
            f"answer within {PROBE_SECONDS:.0f} s"
        )
    return None


def _recorded_source(path: Path | None) -> str | None:
    """The source an earlier start of this run chose (None if absent or unreadable)."""
    try:
        return json.loads(path.read_text()).get("source") if path else None
    except (OSError, ValueError, AttributeError):
        return None


def choose_data(config: ml_collections.ConfigDict, workdir: str | Path | None = None) -> DataChoice:
    """Resolve ``config.data_source`` into dataset ids and the reason (``prepare_data`` fetches).

    With ``workdir`` holding an earlier choice (``data_source.json``), ``auto`` keeps it so
    a resumed run trains on the data it started with.
    """
    if config.dataset_id:
        ids = tuple(s.strip() for s in config.dataset_id.split(",") if s.strip())
        return DataChoice(ids, "dataset_id", "set by --config.dataset_id")
    if config.data_source not in SOURCES:
        raise OFQLError(
            f"config.data_source = {config.data_source!r} is invalid: it must be one of "
            f"{', '.join(SOURCES)}."
        )
    task = get_task(config.task)
    replica = _replica_ids(task.name)
    official = task.dataset_ids
    source = config.data_source
    reason = f"config.data_source={source}"
    recorded = Path(workdir) / "data_source.json" if workdir else None
    earlier = _recorded_source(recorded)
    if source == "auto" and earlier in ("official", "replica"):
        source, reason = earlier, f"{earlier} was chosen when this run started"
    elif source == "auto":
        if not official:
            source, reason = "replica", f"Minari has no official {task.name} dataset"
        else:
            why_not = _official_unavailable_reason(official, config.download)
            if why_not is None:
                cached = all(is_local(i) for i in official)
                source = "official"
                reason = "cached locally" if cached else "the Minari server is reachable"
            elif replica is not None:
                source, reason = "replica", why_not
            else:
                source = "official"  # no replica for this domain: the official error says why
    if source == "official":
        if not official:
            fix = (
                "use --config.data_source=replica to build the local replica"
                if replica
                else "set --config.dataset_id to a local Minari dataset"
            )
            raise OFQLError(f"Minari has no official {task.name} dataset: {fix}.")
        choice = DataChoice(official, "official", reason)
    else:
        if replica is None:
            raise OFQLError(
                f"There is no replica of {task.name} (replicas exist for hopper, halfcheetah "
                "and walker2d): use --config.data_source=official, or set --config.dataset_id "
                "to a local Minari dataset."
            )

        choice = DataChoice((replica_id(*replica),), "replica", reason)
    if recorded is not None:
        recorded.parent.mkdir(parents=True, exist_ok=True)
        recorded.write_text(json.dumps(dataclasses.asdict(choice), indent=2))
    return choice


def prepare_data(choice: DataChoice, config: ml_collections.ConfigDict) -> None:
    """Make the chosen datasets local: download official ones, build a missing replica."""
    if choice.source == "replica":
        env, level = _replica_ids(config.task)
        ensure_replica(
            env,
            level,
            num_steps=config.replica_steps,
            seed=config.replica_seed,
            num_envs=config.replica_envs,
            behavior_dir=config.behavior_dir,
            progress=config.progress,
        )
    else:
        for dataset_id in choice.dataset_ids:
            ensure_local(dataset_id, download=config.download)

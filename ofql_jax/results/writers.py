"""TensorBoard curves (one run per seed plus their mean) and the results.json summary."""

from __future__ import annotations

import json
import os
import struct
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tensorboardX import SummaryWriter


def run_points(
    metrics: dict[str, Any], runs: list[str], groups: np.ndarray, means: list[str]
) -> Iterator[tuple[str, str, float]]:
    """``(run, tag, value)`` for every point to log: each member's value to its run, and each
    group's mean over its finite members to the group's mean run; a scalar metric goes to
    the mean runs only. ``metrics`` maps tag -> per-member array ``[members]`` or a scalar."""
    for tag, values in metrics.items():
        values = np.asarray(values, np.float64)
        if values.ndim == 0:
            for mean in means:
                yield mean, tag, float(values)
            continue
        for run, value in zip(runs, values, strict=True):
            yield run, tag, float(value)
        for group, mean in enumerate(means):
            # Diverged members carry NaN: the mean curve is over the healthy ones.
            chosen = values[groups == group]
            if np.isfinite(chosen).any():
                yield mean, tag, float(np.nanmean(chosen))


def mean_run_names(group_names: list[str]) -> list[str]:
    """The mean run of each group: ``mean`` without a sweep, ``<setting>/mean`` with one."""
    return [f"{name}/mean" if name else "mean" for name in group_names]


class Reporter:
    """Writes each metric for every member (seed) and the mean of each group of members.

    Runs are ``tb/seed_<v>`` and ``tb/mean`` without a sweep, ``tb/<setting>/seed_<v>``
    and ``tb/<setting>/mean`` with one. The same tag is used in every run, so
    TensorBoard overlays seeds and means.

    Example:
        >>> rep = Reporter("/tmp/run", ["seed_0", "seed_1"], [0, 0], [""])  # doctest: +SKIP
        >>> rep.scalars(1000, {"critic/loss": np.array([0.5, 0.7])})
    """

    def __init__(
        self, workdir: str | Path, runs: list[str], groups: list[int], group_names: list[str]
    ):
        root = Path(workdir) / "tb"
        self.runs, self.groups = list(runs), np.asarray(groups)
        self.means = mean_run_names(group_names)
        self.writer_of = {name: SummaryWriter(str(root / name)) for name in self.runs + self.means}

    def scalars(self, step: int, metrics: dict[str, Any]) -> None:
        """``metrics`` maps tag -> per-member array ``[members]`` or a scalar (mean runs)."""
        for run, tag, value in run_points(metrics, self.runs, self.groups, self.means):
            self.writer_of[run].add_scalar(tag, value, step)

    def text(self, tag: str, text: str) -> None:
        """A note (e.g. which data the run uses) in every run, at step 0."""
        for writer in self.writer_of.values():
            writer.add_text(tag, text, 0)

    def flush(self) -> None:
        for writer in self.writer_of.values():
            writer.flush()

    def close(self) -> None:
        for writer in self.writer_of.values():
            writer.close()


class NullReporter:
    """Stands in for ``Reporter`` on processes other than 0 in multi-host runs."""

    def scalars(self, step: int, metrics: dict[str, Any]) -> None:
        pass

    def text(self, tag: str, text: str) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def write_json_atomic(path: str | Path, payload: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename, so a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, default=_json_default)
        f.write("\n")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars of one TensorBoard run directory: ``{tag: [(step, value), ...]}``.

    Reads tensorboardX's event files directly (TFRecord framing around ``Event`` protos),
    so no TensorBoard install is needed. Later files and later events win on repeated steps.

    Example:
        >>> read_scalars("runs/hopper/tb/mean")["critic/loss"][:2]  # doctest: +SKIP
        [(1000, 11.2), (2000, 7.9)]
    """
    from tensorboardX.proto.event_pb2 import Event

    values: dict[str, dict[int, float]] = defaultdict(dict)
    for path in sorted(Path(run_dir).glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            record = data[pos + 12 : pos + 12 + length]
            pos += 12 + length + 4
            if len(record) < length:
                break  # a file still being written ends mid-record
            event = Event.FromString(record)
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    values[value.tag][int(event.step)] = float(value.simple_value)
    return {tag: sorted(steps.items()) for tag, steps in values.items()}

"""TensorBoard curves (one run per seed plus their mean) and the results.json summary."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from tensorboardX import SummaryWriter


class Reporter:
    """Writes each metric for every seed (``tb/seed_<v>``) and the mean over seeds (``tb/mean``).

    Same tag in every run, so TensorBoard overlays the seeds and their mean.

    Example:
        >>> rep = Reporter("/tmp/run", seed_values=[0, 1])  # doctest: +SKIP
        >>> rep.scalars(1000, {"critic/loss": np.array([0.5, 0.7])})
    """

    def __init__(self, workdir: str | Path, seed_values: list[int]):
        root = Path(workdir) / "tb"
        self.seed_writers = [SummaryWriter(str(root / f"seed_{v}")) for v in seed_values]
        self.mean_writer = SummaryWriter(str(root / "mean"))

    def scalars(self, step: int, metrics: dict[str, Any]) -> None:
        """``metrics`` maps tag -> per-seed array ``[num_seeds]`` or a scalar (mean run only)."""
        for tag, values in metrics.items():
            values = np.asarray(values, np.float64)
            if values.ndim == 0:
                self.mean_writer.add_scalar(tag, float(values), step)
                continue
            for writer, value in zip(self.seed_writers, values, strict=True):
                writer.add_scalar(tag, float(value), step)
            # Diverged seeds carry NaN: the mean curve is over the healthy ones.
            if np.isfinite(values).any():
                self.mean_writer.add_scalar(tag, float(np.nanmean(values)), step)

    def text(self, tag: str, text: str) -> None:
        self.mean_writer.add_text(tag, text, 0)

    def flush(self) -> None:
        for writer in [*self.seed_writers, self.mean_writer]:
            writer.flush()

    def close(self) -> None:
        for writer in [*self.seed_writers, self.mean_writer]:
            writer.close()


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

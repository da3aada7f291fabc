"""Optional Weights & Biases logging: the same scalars as TensorBoard, and the config.

Off unless ``config.wandb_project`` is set; needs ``pip install -e .[wandb]``. One W&B run per
experiment, resumed with the experiment (its id is kept in ``<workdir>/wandb_id``); a member's
curve is ``<run>/<tag>`` with the TensorBoard run name (``seed_0/critic/loss``,
``eta=0.1/seed_0/critic/loss``), a group's mean is ``mean/<tag>`` (``eta=0.1/mean/<tag>``).
``config.wandb_mode = "offline"`` (the default) writes under ``<workdir>/wandb`` without a
network; ``wandb sync <workdir>/wandb/offline-run-*`` uploads it later.

Example:
    >>> rep = WandbReporter(config, "/tmp/run", ["seed_0"], [0], [""])  # doctest: +SKIP
    >>> rep.scalars(1000, {"critic/loss": np.array([0.5])})  # doctest: +SKIP
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from ofql_jax.core.errors import OFQLError
from ofql_jax.results.writers import mean_run_names, run_points


def _import_wandb():
    try:
        import wandb
    except ImportError:
        raise OFQLError(
            "config.wandb_project is set but wandb is not installed: pip install -e .[wandb], "
            'or set --config.wandb_project="" to log to TensorBoard only.'
        ) from None
    return wandb


class WandbReporter:
    """``Reporter``'s interface (scalars, text, flush, close) onto one W&B run."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        workdir: str | Path,
        runs: list[str],
        groups: list[int],
        group_names: list[str],
    ):
        wandb = _import_wandb()
        workdir = Path(workdir)
        id_file = workdir / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id + "\n")
        self.runs, self.groups = list(runs), np.asarray(groups)
        self.means = mean_run_names(group_names)
        self.run = wandb.init(
            project=config.wandb_project,
            entity=config.wandb_entity or None,
            mode=config.wandb_mode,
            dir=str(workdir),
            name=config.wandb_name or workdir.name,
            id=run_id,
            resume="allow",
            config=config.to_dict(),
            settings=wandb.Settings(silent=True),
        )

    def scalars(self, step: int, metrics: dict[str, Any]) -> None:
        """As ``Reporter.scalars``: per-member arrays, or scalars that only the means get."""
        points = run_points(metrics, self.runs, self.groups, self.means)
        self.run.log({f"{run}/{tag}": value for run, tag, value in points}, step=step)

    def text(self, tag: str, text: str) -> None:
        self.run.summary[tag] = text

    def flush(self) -> None:
        pass  # W&B sends in the background

    def close(self) -> None:
        self.run.finish()


class Reporters:
    """Several reporters behind one: TensorBoard always, W&B when configured."""

    def __init__(self, *reporters):
        self.reporters = reporters

    def scalars(self, step: int, metrics: dict[str, Any]) -> None:
        for r in self.reporters:
            r.scalars(step, metrics)

    def text(self, tag: str, text: str) -> None:
        for r in self.reporters:
            r.text(tag, text)

    def flush(self) -> None:
        for r in self.reporters:
            r.flush()

    def close(self) -> None:
        for r in self.reporters:
            r.close()

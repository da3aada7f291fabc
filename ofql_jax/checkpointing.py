"""Orbax checkpoints of the whole multi-seed agent pytree plus JSON run metadata.

Layout: ``<workdir>/checkpoints/<step>/{state,meta}``. Orbax writes each step
into a temporary directory and renames it when complete, so an interrupted
save never replaces the previous checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from ofql_jax.errors import OFQLError


class Checkpointer:
    """Save and restore ``(state pytree, JSON metadata)`` by training step.

    Example:
        >>> ckpt = Checkpointer("/tmp/run/checkpoints", max_to_keep=3)  # doctest: +SKIP
        >>> ckpt.save(1000, states, {"evaluations": []})
        >>> states, meta = ckpt.restore(ckpt.latest_step(), like=states)
    """

    def __init__(self, directory: str | Path, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        """Write ``state`` (arrays; typed PRNG keys must be stored as key data) and ``meta``."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, step: int, like: Any) -> tuple[Any, dict[str, Any]]:
        """Restore the checkpoint at ``step`` into the structure, shapes and dtypes of ``like``."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
        )
        try:
            restored = self._manager.restore(step, args=args)
        except Exception as err:  # orbax raises many types for damaged or mismatched files
            raise OFQLError(
                f"The checkpoint at {self.directory / str(step)} cannot be restored "
                f"({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}); "
                "delete that step directory to fall back to an earlier one, or use a new --workdir."
            ) from err
        return restored["state"], dict(restored["meta"])

    def restore_metadata(self, step: int) -> dict[str, Any]:
        """Only the JSON metadata of the checkpoint at ``step`` (no arrays are read)."""
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            )
        except Exception as err:  # as in restore
            raise OFQLError(
                f"The checkpoint metadata at {self.directory / str(step)} cannot be read "
                f"({type(err).__name__}); delete that step directory to fall back to an "
                "earlier one."
            ) from err
        return dict(restored["meta"])

    def close(self) -> None:
        self._manager.close()

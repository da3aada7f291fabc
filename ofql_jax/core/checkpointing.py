"""Orbax checkpoints of the whole multi-seed agent pytree plus JSON run metadata.

Layout: ``<workdir>/checkpoints/<step>/{state,meta}``. Orbax writes each step
into a temporary directory and renames it when complete, so an interrupted
save never replaces the previous checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from ofql_jax.core.errors import OFQLError

# ``state.hparams`` kept out of checkpoints: constant in training and set from the run's
# config (and sweep) as every hparam, but made a leaf after checkpoints without it existed, so
# leaving it out keeps those checkpoints' layout and bytes (and tests/regression's hashes) as
# they were. ``restore`` puts it back like any hparam a checkpoint lacks (from ``like``).
UNSAVED_HPARAMS = ("grad_norm",)


def saved_steps(directory: str | Path) -> list[int]:
    """The steps saved in a ``checkpoints`` folder, sorted (none if it is missing), read from
    the folder names without opening Orbax."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


class Checkpointer:
    """Save and restore ``(state pytree, JSON metadata)`` by training step.

    Example:
        >>> ckpt = Checkpointer("/tmp/run/checkpoints", max_to_keep=3)  # doctest: +SKIP
        >>> ckpt.save(1000, states, {"evaluations": []})
        >>> states, meta = ckpt.restore(ckpt.latest_step(), like=states)
    """

    def __init__(self, directory: str | Path, max_to_keep: int = 3, keep_period: int = 0):
        """Keep the newest ``max_to_keep`` checkpoints, and every one whose step is a multiple
        of ``keep_period`` (0: none)."""
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, keep_period=keep_period or None, create=True,
            enable_async_checkpointing=False,
        )  # fmt: skip
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        """Write ``state`` (arrays; typed PRNG keys must be stored as key data; without the
        ``UNSAVED_HPARAMS``) and ``meta``."""
        hparams = getattr(state, "hparams", None)
        if isinstance(hparams, dict) and hasattr(state, "replace"):
            state = state.replace(
                hparams={k: v for k, v in hparams.items() if k not in UNSAVED_HPARAMS}
            )
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()

    def restore(
        self, step: int, like: Any, hparam_defaults: Mapping[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Restore the checkpoint at ``step`` into the structure, shapes and dtypes of ``like``.

        A continuous hyperparameter added to an agent after the checkpoint was written (a key
        of ``like.hparams`` that the checkpoint lacks) takes ``like``'s value, or, where
        ``like`` is abstract (``jax.eval_shape``), ``hparam_defaults[key]`` (e.g. the run's
        ``config.agent``): such a field's default must reproduce the behaviour from before it
        existed. The ``UNSAVED_HPARAMS`` are always restored so.
        """
        added = {}  # the hparams the checkpoint lacks, read once, checked before any array
        for key in self._hparams_missing(step, like):
            leaf = like.hparams[key]
            if isinstance(leaf, jax.ShapeDtypeStruct):
                if hparam_defaults is None or key not in hparam_defaults:
                    raise OFQLError(
                        f"The checkpoint at {self.directory / str(step)} predates the "
                        f"hyperparameter {key!r} and no value was given for it: load it "
                        "with the ofql-jax version that trained it."
                    )
                leaf = jnp.full(leaf.shape, float(hparam_defaults[key]), leaf.dtype)
            added[key] = leaf
        if not added:
            return self._restore_exact(step, like)
        kept = {k: v for k, v in like.hparams.items() if k not in added}
        state, meta = self._restore_exact(step, like.replace(hparams=kept))
        return state.replace(hparams={**state.hparams, **added}), meta

    def _restore_exact(self, step: int, like: Any) -> tuple[Any, dict[str, Any]]:
        """``restore`` for a ``like`` whose structure is the checkpoint's."""
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

    def _hparams_missing(self, step: int, like: Any) -> set[str]:
        """Keys of ``like.hparams`` that the checkpoint at ``step`` has no array for."""
        hparams = getattr(like, "hparams", None)
        if not isinstance(hparams, dict) or not hasattr(like, "replace"):
            return set()
        # The item's own handler reads the tree metadata: a ``StandardCheckpointer`` on the
        # item directory also looks for the step's ``_CHECKPOINT_METADATA`` there and logs
        # an absl warning on every resume.
        handler = ocp.StandardCheckpointHandler()
        try:
            saved = handler.metadata(self.directory / str(step) / "state")
            saved_keys = set(saved["hparams"])
        except Exception:  # noqa: BLE001 - unreadable: let restore report it
            return set()
        finally:
            handler.close()
        return set(hparams) - saved_keys

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

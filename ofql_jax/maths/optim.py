"""The optimiser step every agent and the critics share."""

from __future__ import annotations

from typing import Any

import jax
import optax

Params = Any


def apply_adam(
    tx: optax.GradientTransformation,
    params: Params,
    grads: Params,
    opt_state: optax.OptState,
    lr: jax.Array,
    grad_norm: jax.Array | float | None = None,
) -> tuple[Params, optax.OptState]:
    """One Adam step with a traced learning rate (a sweepable ``hparams`` leaf); a ``tx``
    from ``agents.base.adam_direction`` clips at ``grad_norm`` (a member's
    ``state.hparams["grad_norm"]``; None: the threshold it was built with)."""
    extra = {} if grad_norm is None else {"grad_norm": grad_norm}
    updates, opt_state = tx.update(grads, opt_state, **extra)
    updates = jax.tree.map(lambda u: -lr * u, updates)
    return optax.apply_updates(params, updates), opt_state

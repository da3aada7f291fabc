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
) -> tuple[Params, optax.OptState]:
    """One Adam step with a traced learning rate (a sweepable ``hparams`` leaf)."""
    updates, opt_state = tx.update(grads, opt_state)
    updates = jax.tree.map(lambda u: -lr * u, updates)
    return optax.apply_updates(params, updates), opt_state

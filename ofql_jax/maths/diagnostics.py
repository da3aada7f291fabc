"""Training health: value bounds derived from the dataset and the value-divergence monitor.

A critic that extrapolates upward on out-of-data actions stays finite long after it has
stopped meaning anything (issue: OFQL on the hopper replica reached Q = 1,600 where the
largest value the rewards allow is about 400). ``value_bounds`` computes what the data
allows; ``Experiment`` compares every seed's ``diag/q_policy_mean`` (the critics' mean
value of the policy's own actions, from ``agent.diagnose``) with it after every chunk.

Example:
    >>> b = value_bounds(np.array([1.0, 1.0, 2.0]), np.array([0.0, 0.0, 1.0]), [3], 0.5)
    >>> b.upper, b.lower, round(b.best_return, 3)
    (4.0, 1.0, 2.0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax


@dataclasses.dataclass(frozen=True)
class ValueBounds:
    """What discounted values the dataset's rewards allow (after reward tuning).

    ``upper``/``lower`` hold for ANY policy: ``max r / (1 - gamma)`` (or ``max r`` when every
    reward is negative, since an episode may end after one step), and likewise below.
    ``best_return`` is the largest discounted return-to-go from any state of the data (the
    behaviour's best; a learned policy may exceed it, but not ``upper``).
    """

    upper: float
    lower: float
    best_return: float
    reward_max: float
    reward_min: float
    discount: float

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def _geometric_sum(reward: float, discount: float) -> float:
    if discount >= 1.0:
        return float("inf") if reward > 0 else (float("-inf") if reward < 0 else 0.0)
    return reward / (1.0 - discount)


def value_bounds(
    rewards: np.ndarray,
    dones: np.ndarray,
    episode_lengths: Sequence[int] | None,
    discount: float,
) -> ValueBounds:
    """Bounds on Q from the rewards; ``episode_lengths`` (in order) give ``best_return``.

    Without episode lengths the dataset is cut at its terminations only.
    """
    rewards = np.asarray(rewards, np.float64)
    r_max, r_min = float(rewards.max()), float(rewards.min())
    upper = _geometric_sum(r_max, discount) if r_max >= 0 else r_max
    lower = _geometric_sum(r_min, discount) if r_min <= 0 else r_min
    if episode_lengths is None:
        ends = np.flatnonzero(np.asarray(dones) > 0) + 1
    else:
        ends = np.cumsum(np.asarray(episode_lengths, np.int64))
    best, start = -np.inf, 0
    for end in [*ends.tolist(), rewards.shape[0]]:
        if end <= start:
            continue
        # Return-to-go by the backward recursion, one episode at a time.
        running = 0.0
        for r in rewards[start:end][::-1].tolist():
            running = r + discount * running
            best = max(best, running)
        start = end
    return ValueBounds(upper, lower, float(best), r_max, r_min, float(discount))


def outside_bounds(q_policy: np.ndarray, bounds: ValueBounds) -> np.ndarray:
    """Per member: True where the value of its own actions left ``[lower, upper]``.

    Non-finite values are not flagged here (the non-finite check reports those).

    Example:
        >>> b = ValueBounds(10.0, 0.0, 8.0, 0.1, 0.0, 0.99)
        >>> outside_bounds(np.array([5.0, 12.0, np.nan]), b).tolist()
        [False, True, False]
    """
    q = np.asarray(q_policy, np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(q) & ((q > bounds.upper) | (q < bounds.lower))


def above_data_best(q_policy: np.ndarray, bounds: ValueBounds) -> np.ndarray:
    """Per member: True where the mean value of its own actions is above the best discounted
    return from any state of the data, yet inside the bounds (``outside_bounds`` flags those).

    A policy may beat the data at some states, but a batch mean above the data's single best
    return-to-go says the critics value out-of-data actions higher than anything the data
    shows; on this project's medium-expert replicas that came before the collapses at high
    eta (docs/results/2026-12-06-learning).

    Example:
        >>> b = ValueBounds(10.0, 0.0, 8.0, 0.1, 0.0, 0.99)
        >>> above_data_best(np.array([5.0, 9.0, 12.0, np.nan]), b).tolist()
        [False, True, False, False]
    """
    q = np.asarray(q_policy, np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(q) & (q > bounds.best_return) & (q <= bounds.upper)


def saturation_rate(actions: np.ndarray, threshold: float = 0.99) -> float:
    """Share of action components with ``|a| > threshold`` (the data's, to compare with
    ``diag/saturation`` of the policy)."""
    return float(np.mean(np.abs(np.asarray(actions)) > threshold))


def adam_preconditioner(opt_state: Any) -> Callable[[Any], Any] | None:
    """``g -> g / (sqrt(nu_hat) + eps)``: the per-parameter scaling Adam applies next (its
    second moment with bias correction, momentum left out), or None without an Adam state."""
    adam = [
        s
        for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
        if isinstance(s, optax.ScaleByAdamState)
    ]
    if not adam:
        return None
    nu, count = adam[0].nu, adam[0].count
    correction = 1.0 - 0.999 ** jnp.maximum(count, 1).astype(jnp.float32)  # optax's b2

    def precondition(grads):
        return jax.tree.map(lambda g, n: g / (jnp.sqrt(n / correction) + 1e-8), grads, nu)

    return precondition


def action_moves(
    actions_fn: Callable[[Any], jax.Array],
    params: Any,
    q_grads: Any,
    bc_grads: Any,
    q_weight: jax.Array | float,
    opt_state: Any = None,
) -> dict[str, jax.Array]:
    """Where each actor term moves the acting action: ``J g`` with ``J`` the Jacobian of
    ``actions_fn(params) -> [batch, d]`` (the actions the policy acts with, clip included)
    with respect to the parameters, by one ``jax.jvp`` per direction.

    The global gradient-norm ratio hides where a gradient lands: a BC gradient can be large
    in parameters that barely move the acting action. Returned (RMS over the batch of the
    per-state action change, per unit step along the gradient):

    - ``diag/action_move_q`` = ``q_weight |J g_Q|`` and ``diag/action_move_bc`` = ``|J g_BC|``;
    - ``diag/action_ratio`` = their ratio (> 1: the Q term moves the action more than BC);
    - ``diag/action_cos``: cosine of the two moves (< 0: BC pulls the action back);
    - with an Adam ``opt_state``, ``diag/action_ratio_adam``: the same ratio for the steps Adam
      takes, both gradients scaled by its current per-parameter second moment.

    Example:
        >>> f = lambda p: p["w"] * jnp.ones((2, 1))  # the action is the parameter itself
        >>> m = action_moves(f, {"w": 1.0}, {"w": 2.0}, {"w": -1.0}, 0.5)
        >>> round(float(m["diag/action_ratio"]), 3), round(float(m["diag/action_cos"]), 3)
        (1.0, -1.0)
    """

    def move(direction):
        return jax.jvp(actions_fn, (params,), (direction,))[1]

    def rms(x):
        return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(x), -1)))

    d_q, d_bc = move(q_grads), move(bc_grads)
    q_move, bc_move = q_weight * rms(d_q), rms(d_bc)
    cos = jnp.sum(d_q * d_bc) / (jnp.linalg.norm(d_q) * jnp.linalg.norm(d_bc) + 1e-30)
    out = {
        "diag/action_move_q": q_move,
        "diag/action_move_bc": bc_move,
        "diag/action_ratio": q_move / (bc_move + 1e-12),
        "diag/action_cos": cos,
    }
    precondition = adam_preconditioner(opt_state) if opt_state is not None else None
    if precondition is not None:
        adam_q = q_weight * rms(move(precondition(q_grads)))
        out["diag/action_ratio_adam"] = adam_q / (rms(move(precondition(bc_grads))) + 1e-12)
    return out

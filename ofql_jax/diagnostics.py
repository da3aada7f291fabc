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
from collections.abc import Sequence

import numpy as np


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


def saturation_rate(actions: np.ndarray, threshold: float = 0.99) -> float:
    """Share of action components with ``|a| > threshold`` (the data's, to compare with
    ``diag/saturation`` of the policy)."""
    return float(np.mean(np.abs(np.asarray(actions)) > threshold))

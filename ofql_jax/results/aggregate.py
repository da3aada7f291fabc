"""Aggregate scores over seeds and tasks: IQM and (stratified) percentile-bootstrap CIs.

What rliable (Agarwal et al. 2021) computes, in numpy: rliable itself cannot be used here
(rliable 1.2.0 installs, but its dependency arch 7.2.0 fails to import with pandas 3.1.1, a
TypeError in ``deprecate_kwarg``).

* ``iqm``: the interquartile mean, ``scipy.stats.trim_mean(x, 0.25)`` of the flattened scores
  (the same cut: ``int(0.25 n)`` values off each end).
* ``stratified_bootstrap_ci``: resample the seeds of each task with replacement,
  independently per task (tasks are the strata and are never resampled), compute the
  statistic on each resample, take the 2.5 and 97.5 percentiles. With one task this is the
  ordinary percentile bootstrap (``scipy.stats.bootstrap(method="percentile")``).

Scores are passed as a list with one 1-D array of seed scores per task (tasks may have
different numbers of seeds). Statistics take that list with a leading resample axis, each
array ``[reps, seeds_of_task]``, and return ``[reps]``.

Example:
    >>> import numpy as np
    >>> iqm(np.arange(8.0))  # the middle four: 2, 3, 4, 5
    3.5
    >>> point, lo, hi = stratified_bootstrap_ci([np.array([1.0, 2.0, 3.0])], mean_of_task_means)
    >>> point, lo <= point <= hi
    (2.0, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Statistic = Callable[[list[np.ndarray]], np.ndarray]


def _trim_mean(x: np.ndarray, proportion: float = 0.25) -> np.ndarray:
    """Trimmed mean along the last axis, cut as ``scipy.stats.trim_mean``."""
    n = x.shape[-1]
    cut = int(proportion * n)
    kept = np.sort(x, axis=-1)[..., cut : n - cut]
    return kept.mean(axis=-1)


def iqm(scores) -> float:
    """Interquartile mean of all values (flattened): the mean of the middle 50%."""
    flat = np.asarray(scores, np.float64).ravel()
    if flat.size == 0:
        raise ValueError("iqm of no scores")
    return float(_trim_mean(flat))


def mean_of_task_means(samples: list[np.ndarray]) -> np.ndarray:
    """Mean over tasks of each task's mean over seeds (every task weighs the same)."""
    return np.mean([s.mean(axis=-1) for s in samples], axis=0)


def iqm_of_runs(samples: list[np.ndarray]) -> np.ndarray:
    """IQM of all (task, seed) runs together, as rliable's aggregate IQM."""
    return _trim_mean(np.concatenate(samples, axis=-1))


def stratified_bootstrap_ci(
    scores: Sequence[np.ndarray],
    statistic: Statistic,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(point estimate, lower, upper)`` of ``statistic`` with a percentile-bootstrap CI.

    Each replicate draws, for every task separately, as many seeds as it has, with
    replacement. A task with one seed contributes that seed to every replicate.
    """
    tasks = [np.asarray(s, np.float64).ravel() for s in scores]
    if not tasks or any(t.size == 0 for t in tasks):
        raise ValueError("every task needs at least one score")
    rng = np.random.default_rng(seed)
    point = float(statistic([t[None, :] for t in tasks])[0])
    samples = [t[rng.integers(0, t.size, size=(reps, t.size))] for t in tasks]
    values = statistic(samples)
    tail = 100.0 * (1.0 - confidence) / 2.0
    lower, upper = np.percentile(values, [tail, 100.0 - tail])
    return point, float(lower), float(upper)


def bootstrap_mean_ci(
    scores, reps: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean over seeds with a percentile-bootstrap CI (one task: the stratified case)."""
    return stratified_bootstrap_ci([np.asarray(scores)], mean_of_task_means, reps, confidence, seed)

"""The SAC replay buffer: host numpy arrays, appended in order, never overwritten.

Capacity is the run's total number of env steps, so the buffer doubles as the record
of everything the behaviour agent saw; D4RL's *medium-replay* is its first
``medium_step`` rows.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ofql_jax.core.types import Transitions

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminations", "truncations")


class ReplayBuffer:
    """Append-only transitions; ``sample`` draws uniform minibatches with a numpy Generator.

    Example:
        >>> buf = ReplayBuffer(capacity=10, obs_dim=3, act_dim=1)
        >>> buf.add(np.zeros(3), np.zeros(1), 1.0, np.ones(3), False, False)
        >>> buf.sample(np.random.default_rng(0), 4).rewards.shape
        (4,)
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int):
        self.capacity = capacity
        self.size = 0
        self.data = dict(
            observations=np.zeros((capacity, obs_dim), np.float32),
            actions=np.zeros((capacity, act_dim), np.float32),  # in [-1, 1]
            rewards=np.zeros(capacity, np.float32),
            next_observations=np.zeros((capacity, obs_dim), np.float32),
            terminations=np.zeros(capacity, bool),
            truncations=np.zeros(capacity, bool),
        )

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        if self.size >= self.capacity:
            raise IndexError(f"replay buffer is full ({self.capacity} transitions)")
        i = self.size
        d = self.data
        d["observations"][i] = obs
        d["actions"][i] = action
        d["rewards"][i] = reward
        d["next_observations"][i] = next_obs
        d["terminations"][i] = terminated
        d["truncations"][i] = truncated
        self.size += 1

    def sample(self, rng: np.random.Generator, batch_size: int) -> Transitions:
        idx = rng.integers(0, self.size, batch_size)
        d = self.data
        return Transitions(
            observations=d["observations"][idx],
            actions=d["actions"][idx],
            rewards=d["rewards"][idx],
            next_observations=d["next_observations"][idx],
            dones=d["terminations"][idx].astype(np.float32),
        )

    def save(self, path: str | Path) -> None:
        """Write the filled rows to ``path`` (.npz) atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **{k: v[: self.size] for k, v in self.data.items()})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def load(self, path: str | Path) -> None:
        with np.load(path) as saved:
            n = len(saved["rewards"])
            if n > self.capacity:
                raise ValueError(
                    f"{path} holds {n} transitions, more than capacity {self.capacity}"
                )
            for k in FIELDS:
                self.data[k][:n] = saved[k]
        self.size = n

"""Critic targets and losses against hand computations on tiny batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.core.types import Transitions
from ofql_jax.maths import critic


def _batch():
    return Transitions(
        observations=jnp.zeros((3, 2)),
        actions=jnp.zeros((3, 1)),
        rewards=jnp.array([1.0, -0.5, 2.0]),
        next_observations=jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]),
        dones=jnp.array([0.0, 1.0, 0.0]),
    )


def _q(obs, act):
    # Two heads, hand-checkable: Q1 = s0 + a, Q2 = 2 s1 - a.
    return jnp.stack([obs[..., 0] + act[..., 0], 2 * obs[..., 1] - act[..., 0]])


def test_td_target_by_hand():
    next_action = lambda s, k: jnp.full(s.shape[:-1] + (1,), 0.5)  # noqa: E731
    y = critic.td_target(_q, next_action, _batch(), jax.random.key(0), discount=0.9)
    # s'=(1,0): Q1=1.5, Q2=-0.5 -> min -0.5 ; y = 1 + 0.9 * -0.5 = 0.55
    # s'=(0,2): done -> y = -0.5
    # s'=(1,1): Q1=1.5, Q2=1.5 -> 1.5 ; y = 2 + 0.9 * 1.5 = 3.35
    np.testing.assert_allclose(y, [0.55, -0.5, 3.35], rtol=1e-6)


def test_max_q_backup_by_hand():
    # Candidates a in {-1, 0, 1} (3 samples per s'): each head maxes, then min of heads.
    cands = jnp.array([-1.0, 0.0, 1.0])
    next_action = lambda s, k: jnp.broadcast_to(cands[:, None], s.shape[:-1] + (1,))  # noqa: E731
    y = critic.td_target(
        _q, next_action, _batch(), jax.random.key(0), 0.9, max_q_backup=True, num_backup_samples=3
    )
    # s'=(1,0): Q1 max = 2, Q2 max = 1 -> 1 ; y = 1 + 0.9 = 1.9
    # s'=(1,1): Q1 max = 2, Q2 max = 3 -> 2 ; y = 2 + 1.8 = 3.8
    np.testing.assert_allclose(y, [1.9, -0.5, 3.8], rtol=1e-6)


def test_critic_loss_and_polyak_by_hand():
    q = jnp.array([[1.0, 2.0], [0.0, 4.0]])
    y = jnp.array([1.5, 2.0])
    loss, info = critic.critic_loss(q, y)
    # head 1: (0.25 + 0) / 2 = 0.125 ; head 2: (2.25 + 4) / 2 = 3.125
    np.testing.assert_allclose(loss, 3.25)
    np.testing.assert_allclose(info["critic/q_mean"], 1.75)
    new = critic.polyak({"w": jnp.array([0.0, 10.0])}, {"w": jnp.array([1.0, 0.0])}, 0.1)
    np.testing.assert_allclose(new["w"], [0.1, 9.0], rtol=1e-6)

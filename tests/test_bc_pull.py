"""benchmarks/bc_pull.py: on growing batches the noise of a batch gradient averages out and
its mean stays, so the cosine settles at the mean gradients' (a closed form here)."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.core.types import Transitions
from ofql_jax.maths.diagnostics import action_moves

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bc_pull import pull_by_batch_size  # noqa: E402

D = 6
Q_DIR = jnp.ones(D) / np.sqrt(D)  # the Q term's gradient: a fixed unit direction


def diagnose(state, batch, key):
    """The action is the parameter itself (4 states); the BC gradient is -Q_DIR (a pull
    straight back) plus the batch mean of per-sample N(0, I) noise (the data's actions)."""
    del key
    params = {"w": state}
    bc = -Q_DIR + batch.actions.mean(0)
    return action_moves(lambda p: jnp.broadcast_to(p["w"], (4, D)), params, {"w": Q_DIR},
                        {"w": bc}, 1.0)  # fmt: skip


def test_the_cosine_settles_at_the_mean_gradients_as_the_batch_grows():
    n = 200_000
    rng = np.random.default_rng(0)
    actions = rng.standard_normal((n, D)).astype(np.float32)
    data = Transitions(np.zeros((n, 1), np.float32), actions, np.zeros(n, np.float32),
                       np.zeros((n, 1), np.float32), np.zeros(n, np.float32))  # fmt: skip
    got = pull_by_batch_size(jax.jit(diagnose), jnp.zeros(D), data, [16, 16384], 8, seed=1)
    small, large = got[16], got[16384]
    assert len(small["diag/action_cos"]) == 8 and len(set(small["diag/action_cos"])) == 8
    # The noise's mean over B rows has norm about sqrt(D / B): 0.61 at B = 16, 0.019 at 16,384.
    assert -0.97 < np.mean(small["diag/action_cos"]) < -0.6
    assert np.mean(large["diag/action_cos"]) < -0.999
    np.testing.assert_allclose(np.mean(large["diag/action_move_bc"]), 1.0, atol=0.02)
    np.testing.assert_allclose(large["diag/action_move_q"], 1.0, rtol=1e-5)
    again = pull_by_batch_size(jax.jit(diagnose), jnp.zeros(D), data, [16], 8, seed=1)
    assert again[16] == small  # the same seed draws the same batches

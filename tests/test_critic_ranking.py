"""benchmarks/critic_ranking.py and mode_choice.py: rollouts against a plain Gymnasium loop,
the summary's closed forms, the behaviour log-odds against scipy's Gaussians."""

import sys
from pathlib import Path

import numpy as np

from ofql_jax.data.envs import make_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from critic_ranking import rollout_values, summarize  # noqa: E402


def policy(obs, noise):
    """A deterministic map of (obs, noise) to actions in [-1, 1]."""
    return np.tanh(0.3 * obs[:, :6] + 0.5 * noise)


def test_rollouts_equal_a_plain_loop_and_share_the_continuations_draws():
    env = make_env("HalfCheetah-v5").unwrapped
    env.reset(seed=3)
    for _ in range(5):
        env.step(env.action_space.sample())
    sim = [(env.data.qpos.copy(), env.data.qvel.copy())]
    env.step(np.full(6, 0.3))
    sim.append((env.data.qpos.copy(), env.data.qvel.copy()))
    cands = np.random.default_rng(0).uniform(-1, 1, (2, 3, 6))
    cands[1, 2] = cands[1, 1]  # two equal candidates of a state
    envs = [make_env("HalfCheetah-v5").unwrapped for _ in range(6)]
    for e in envs:
        e.reset(seed=0)
    g = rollout_values(envs, sim, cands, policy, lambda a: a, 6, horizon=4, gamma=0.9, seed=7)
    assert g[1, 1] == g[1, 2]  # same first action, same draws afterwards
    # The same noise, drawn as the probe draws it: one row per state and step.
    rng = np.random.default_rng(7)
    draws = [rng.standard_normal((2, 1, 6)).astype(np.float32) for _ in range(4)]
    for s in range(2):
        for j in range(3):
            plain = make_env("HalfCheetah-v5").unwrapped
            plain.reset(seed=1)
            plain.set_state(*sim[s])
            obs, ret, action = None, 0.0, cands[s, j]
            for t in range(5):
                obs, r, _, _, _ = plain.step(action)
                ret += 0.9**t * r
                if t < 4:
                    action = policy(obs[None].astype(np.float32), draws[t][s])[0]
            np.testing.assert_allclose(g[s, j], ret, rtol=1e-6)
    assert np.ptp(g[0]) > 0  # different first actions matter


def test_summary_closed_forms():
    q = np.array([[0.0, 1.0, 2.0], [3.0, 1.0, 2.0]])
    g = np.array([[1.0, 2.0, 6.0], [0.0, 5.0, 1.0]])
    out = summarize(q, g, w=1e6)  # a sharp choice: the argmax of Q
    assert out["spearman"] == np.mean([1.0, -1.0])  # row 2: Q ranks 3, 1, 2; g ranks 1, 3, 2
    np.testing.assert_allclose(out["choice_gain"], np.mean([6 - 3, 0 - 2]))
    np.testing.assert_allclose(out["argmax_q_gain"], out["choice_gain"])
    np.testing.assert_allclose(out["oracle_gain"], np.mean([3.0, 3.0]))
    np.testing.assert_allclose(out["critics_claimed_gain"], np.mean([1.0, 1.0]))
    flat = summarize(q, g, w=0.0)  # a uniform pick gains nothing
    np.testing.assert_allclose(flat["choice_gain"], 0.0, atol=1e-12)


def test_mode_log_odds_are_the_two_gaussians_log_ratio():
    import scipy.stats
    from mode_choice import log_odds

    def expert(obs):
        return np.full(obs.shape[:-1] + (2,), 0.5), np.full(obs.shape[:-1] + (2,), 0.2)

    def medium(obs):
        return np.full(obs.shape[:-1] + (2,), -0.5), np.full(obs.shape[:-1] + (2,), 0.4)

    obs = np.zeros((3, 4))
    cands = np.random.default_rng(0).uniform(-0.99, 0.99, (3, 5, 2))  # 5 candidates per state
    u = np.arctanh(cands)
    want = (scipy.stats.norm.logpdf(u, 0.5, 0.2) - scipy.stats.norm.logpdf(u, -0.5, 0.4)).sum(-1)
    np.testing.assert_allclose(log_odds(expert, medium, obs, cands), want, rtol=1e-10)
    np.testing.assert_allclose(log_odds(expert, medium, obs, cands[:, 0]), want[:, 0], rtol=1e-10)

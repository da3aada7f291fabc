"""Evaluator: bounded waves, worker processes and their determinism, on a real MuJoCo env.

One tiny agent (16-unit MLPs, random parameters) and one small Hopper-v5 Minari dataset
(30-step episodes) serve every test. The jitted wave policy is shared between evaluators, and
every evaluation uses the same ``sample_kwargs`` and one of two wave shapes, so the policy
compiles twice in this file (XLA's CPU compiles are the slow part on a busy machine).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import signal

import jax
import numpy as np
import pytest

from ofql_jax.agents import default_config, make_ofql
from ofql_jax.core.errors import OFQLError
from ofql_jax.data import DatasetInfo, load_minari
from ofql_jax.evaluation.env_pool import DatasetEnvFactory, ProcessEnvPool, split_counts
from ofql_jax.evaluation.evaluator import (
    EvaluationStopped,
    Evaluator,
    action_keys,
    episode_env_seed,
    wave_shape,
)

NUM_SEEDS, NUM_EPISODES, STEP, CANDIDATES = 2, 5, 4000, 4
SEED_VALUES = [11, 12]


@pytest.fixture(scope="module")
def info(tmp_path_factory: pytest.TempPathFactory) -> DatasetInfo:
    from minari_factory import make_hopper_dataset

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))
        make_hopper_dataset("test/hopper/eval-v0", num_steps=60, max_episode_steps=30)
        return load_minari("test/hopper/eval-v0")[1]


SAMPLE_KWARGS = dict(noise_temperature=1.0)  # sample_actions' default: forwarded, same actions
TRACED_KWARGS: list[dict] = []  # the keyword arguments each trace of sample_actions received


@pytest.fixture(scope="module")
def agent_states(info: DatasetInfo):
    """A tiny OFQL agent whose sample_actions records its kwargs, and random stacked states.

    The states take ``agent.init``'s shapes (``eval_shape``) with random values: compiling
    ``init`` costs far more than everything here.
    """
    config = default_config()
    config.hidden_dims = config.critic_hidden_dims = (16, 16)
    config.time_dim = 8
    agent = make_ofql(config, info.obs_dim, info.act_dim)

    def sample_actions(state, obs, key, num_candidates, **kwargs):
        TRACED_KWARGS.append(kwargs)
        return agent.sample_actions(state, obs, key, num_candidates, **kwargs)

    shapes = jax.eval_shape(jax.vmap(agent.init), jax.random.split(jax.random.key(0), NUM_SEEDS))
    rng = np.random.default_rng(0)
    states = jax.tree.map(
        lambda x: (
            rng.uniform(-0.5, 0.5, x.shape).astype(x.dtype)
            if np.issubdtype(x.dtype, np.floating)
            else np.zeros(x.shape, x.dtype)
        ),
        shapes,
    )
    return agent._replace(sample_actions=sample_actions), states


def run(agent_states, info: DatasetInfo, seed_mask=None, **kwargs) -> tuple[np.ndarray, ...]:
    """Returns and episode lengths of one evaluation by a fresh Evaluator (closed after)."""
    agent, states = agent_states
    kwargs.setdefault("sample_kwargs", SAMPLE_KWARGS)
    evaluator = Evaluator(agent, info, NUM_SEEDS, NUM_EPISODES, **kwargs)
    try:
        returns = evaluator.evaluate(states, SEED_VALUES, STEP, CANDIDATES, seed_mask)
        return returns, evaluator.last_episode_lengths.copy()
    finally:
        evaluator.close()


@pytest.fixture(scope="module")
def reference(agent_states, info: DatasetInfo) -> tuple[np.ndarray, np.ndarray]:
    """In-process, one wave of all 10 episodes."""
    return run(agent_states, info)


def test_action_keys_follow_the_documented_formula():
    keys = action_keys(np.uint32([3, 9]), np.uint32(STEP), np.uint32([0, 7]), np.uint32(5))
    for i, value in enumerate([3, 9]):
        for j, episode in enumerate([0, 7]):
            key = jax.random.fold_in(jax.random.key(value), STEP)
            key = jax.random.fold_in(jax.random.fold_in(key, episode), 5)
            np.testing.assert_array_equal(jax.random.key_data(keys[i, j]), jax.random.key_data(key))


def test_wave_layout_and_worker_split_stay_within_their_caps():
    assert wave_shape(3, 150, 150) == (3, 50)
    assert wave_shape(5, 10, 150) == (5, 10)
    assert wave_shape(4, 10, 3) == (3, 1)  # more seeds than envs: seeds are split too
    for capacity in range(1, 20):
        for workers in range(1, capacity + 1):
            caps = split_counts(capacity, workers)
            assert sum(caps) == capacity
            for n in range(capacity + 1):
                assert all(c <= cap for c, cap in zip(split_counts(n, workers), caps, strict=True))


def test_returns_identical_for_any_number_of_workers(agent_states, info, reference):
    returns, lengths = reference
    assert np.isfinite(returns).all() and (lengths > 0).all()
    assert (lengths <= 30).all() and len(np.unique(returns)) == returns.size
    # 10 episodes over 2 workers (5 + 5) and over 3 (4 + 3 + 3, uneven).
    for workers in (2, 3):
        got_returns, got_lengths = run(agent_states, info, num_workers=workers)
        np.testing.assert_array_equal(got_returns, returns)
        np.testing.assert_array_equal(got_lengths, lengths)
    # Several waves (of 2 seeds x 2 episodes) over 2 workers, against the same waves in-process.
    in_process = run(agent_states, info, max_envs=4)
    np.testing.assert_array_equal(
        run(agent_states, info, max_envs=4, num_workers=2)[0], in_process[0]
    )


def test_waves_never_exceed_max_envs_and_run_every_episode_once(agent_states, info, reference):
    agent, states = agent_states
    evaluator = Evaluator(agent, info, NUM_SEEDS, NUM_EPISODES, max_envs=4)
    waves: list[list[int]] = []
    reset = evaluator.pool.reset
    evaluator.pool.reset = lambda seeds: waves.append(list(seeds)) or reset(seeds)
    kwargs = dict(sample_kwargs=SAMPLE_KWARGS)  # given per call here, at construction elsewhere
    returns = evaluator.evaluate(states, SEED_VALUES, STEP, CANDIDATES, **kwargs)
    lengths = evaluator.last_episode_lengths.copy()
    assert len(evaluator.envs) == 4 and evaluator.wave_shape == (2, 2)
    again = evaluator.evaluate(states, SEED_VALUES, STEP, CANDIDATES, **kwargs)  # reused envs
    np.testing.assert_array_equal(again, returns)
    evaluator.close()

    # Episodes (0, 1), (2, 3), then 4 alone in a wave padded to 2 x 2 (twice).
    assert [len(wave) for wave in waves] == [4, 4, 2] * 2
    waves = waves[:3]
    by_wave = [[(v, e) for v in SEED_VALUES for e in pair] for pair in ([0, 1], [2, 3], [4])]
    assert waves == [[episode_env_seed(v, STEP, e) for v, e in wave] for wave in by_wave]
    # Same reset seeds and action keys as one big wave, hence the same episodes; but XLA's CPU
    # matmuls may round differently for a [2, 2] than for a [2, 5] batch (seen: 1e-7 apart for
    # [2, 1]), so returns are only asserted equal to float32 rounding, not bit for bit (on
    # these 30-step episodes; over 1000 steps MuJoCo can amplify such differences).
    np.testing.assert_array_equal(lengths, reference[1])
    np.testing.assert_allclose(returns, reference[0], rtol=1e-5)
    assert TRACED_KWARGS and all(kwargs == SAMPLE_KWARGS for kwargs in TRACED_KWARGS)
    # One env at a time: seeds are split over waves too, each wave taking its seed's state.
    returns, lengths = run(agent_states, info, max_envs=1)
    np.testing.assert_array_equal(lengths, reference[1])
    np.testing.assert_allclose(returns, reference[0], rtol=1e-5)


def test_masked_seed_gets_nan_and_is_never_stepped(agent_states, info, reference):
    agent, states = agent_states
    evaluator = Evaluator(
        agent, info, NUM_SEEDS, NUM_EPISODES, num_workers=2, sample_kwargs=SAMPLE_KWARGS
    )
    resets: list[int] = []
    reset = evaluator.pool.reset
    evaluator.pool.reset = lambda seeds: resets.extend(seeds) or reset(seeds)
    mask = np.array([True, False])
    returns = evaluator.evaluate(states, SEED_VALUES, STEP, CANDIDATES, mask)
    lengths = evaluator.last_episode_lengths.copy()
    none = evaluator.evaluate(states, SEED_VALUES, STEP, CANDIDATES, np.zeros(NUM_SEEDS, bool))
    evaluator.close()
    # Only seed 0's envs were reset, and a wave steps nothing but the envs it reset.
    assert resets == [episode_env_seed(SEED_VALUES[0], STEP, e) for e in range(NUM_EPISODES)]
    assert np.isnan(returns[1]).all() and (lengths[1] == 0).all()
    assert np.isnan(none).all() and (evaluator.last_episode_lengths == 0).all()
    # A seed keeps its place in the wave, so masking another one changes none of its bits.
    np.testing.assert_array_equal(returns[0], reference[0][0])
    np.testing.assert_array_equal(lengths[0], reference[1][0])


def test_bad_settings_are_refused(agent_states, info):
    agent, _ = agent_states
    with pytest.raises(OFQLError, match="max_envs"):
        Evaluator(agent, info, NUM_SEEDS, NUM_EPISODES, max_envs=0)
    with pytest.raises(OFQLError, match="num_workers"):
        Evaluator(agent, info, NUM_SEEDS, NUM_EPISODES, num_workers=-1)


def test_a_dead_worker_is_an_error_not_a_hang(agent_states, info):
    agent, states = agent_states
    evaluator = Evaluator(agent, info, NUM_SEEDS, NUM_EPISODES, num_workers=2)
    pool = evaluator.pool  # evaluate fails at its first reset: no policy is compiled
    assert isinstance(pool, ProcessEnvPool) and evaluator.envs == []
    os.kill(pool.pids[1], signal.SIGKILL)
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        future = executor.submit(evaluator.evaluate, states, SEED_VALUES, STEP, CANDIDATES)
        with pytest.raises(OFQLError, match=r"worker 1 of 2 .* exited with code -9"):
            future.result(timeout=60)
    assert not any(p.is_alive() for p in pool._processes)  # the survivor was stopped too
    with pytest.raises(OFQLError, match="worker 1 of 2"):  # and the pool stays failed
        evaluator.evaluate(states, SEED_VALUES, STEP, CANDIDATES)
    evaluator.close()


def test_worker_errors_become_one_line_ofql_errors(agent_states, info):
    with pytest.raises(OFQLError, match="records no environment spec"):  # verbatim
        Evaluator(agent_states[0], dataclasses.replace(info, env_spec=None), 1, 2, num_workers=2)
    pool = ProcessEnvPool(DatasetEnvFactory(info), info.observation_space, 2, 2)
    pool.reset([1, 2])
    with pytest.raises(OFQLError, match=r"worker [01] raised ValueError: .* while stepping"):
        pool.step(np.zeros((2, info.act_dim + 1), np.float32), np.ones(2, bool))
    pool.close()


def test_workers_exit_when_the_parent_goes_away(info: DatasetInfo):
    pool = ProcessEnvPool(DatasetEnvFactory(info), info.observation_space, 2, 2)
    try:
        pool._conns[0].close()  # what the worker sees when the parent dies: EOF on its pipe
        pool._processes[0].join(30)
        assert pool._processes[0].exitcode == 0
        assert pool._processes[1].is_alive()
    finally:
        pool.close()
    assert not any(p.is_alive() for p in pool._processes)


def test_should_stop_abandons_an_evaluation_and_the_next_one_is_whole(
    agent_states, info, reference
):
    agent, states = agent_states
    evaluator = Evaluator(agent, info, NUM_SEEDS, NUM_EPISODES, sample_kwargs=SAMPLE_KWARGS)
    asked = []
    try:
        with pytest.raises(EvaluationStopped):
            evaluator.evaluate(states, SEED_VALUES, STEP, CANDIDATES,
                               should_stop=lambda: asked.append(1) or len(asked) > 5)  # fmt: skip
        assert len(asked) == 6  # asked at every environment step, abandoned at once
        returns = evaluator.evaluate(states, SEED_VALUES, STEP, CANDIDATES)
        np.testing.assert_array_equal(returns, reference[0])
    finally:
        evaluator.close()


def test_workers_and_their_forkserver_ignore_a_sigterm_to_the_process_group(info):
    """A scheduler's SIGTERM reaches every process of the group: the workers ignore it (the
    parent decides), and the forkserver's death, which closes the workers' exit sentinels,
    is not taken for theirs."""
    from multiprocessing import forkserver

    pool = ProcessEnvPool(DatasetEnvFactory(info), info.observation_space, 2, 2)
    try:
        before = pool.reset([1, 2])
        for pid in pool.pids:
            os.kill(pid, signal.SIGTERM)
        os.kill(forkserver._forkserver._forkserver_pid, signal.SIGTERM)
        for _ in range(3):  # still answering, whether its sentinels fired yet or not
            np.testing.assert_array_equal(pool.reset([1, 2]), before)
            pool.step(np.zeros((2, info.act_dim), np.float32), np.ones(2, bool))
    finally:
        pool.close()


def test_in_process_envs_are_the_datasets_env(info, agent_states):
    evaluator = Evaluator(agent_states[0], info, 1, 1)
    assert len(evaluator.envs) == 1 and evaluator.envs[0].spec.max_episode_steps == 30
    evaluator.close()

"""Tests for ofql_jax.data against independent computations on real (tiny) Minari datasets."""

from __future__ import annotations

import time
from collections import OrderedDict

import gymnasium as gym
import minari
import numpy as np
import pytest
from gymnasium.envs.registration import EnvSpec
from minari import EpisodeData
from minari_factory import (
    make_antmaze_dataset,
    make_cartpole_dataset,
    make_hopper_buffers_dataset,
    make_hopper_dataset,
    make_inverted_pendulum_dataset,
)

from ofql_jax.core.errors import OFQLError
from ofql_jax.data import minari_data
from ofql_jax.data.minari_data import (
    ActionScaler,
    DatasetInfo,
    check_spaces,
    ensure_local,
    episodes_to_transitions,
    flatten_observation,
    load_minari,
    observation_dim,
)


def _box(*shape: int) -> gym.spaces.Box:
    return gym.spaces.Box(-np.inf, np.inf, shape, np.float64)


def _raw_episodes(dataset_id: str) -> list[EpisodeData]:
    """The episodes exactly as Minari stores them, read back with Minari only."""
    return list(minari.load_dataset(dataset_id).iterate_episodes())


# --- observations ----------------------------------------------------------------------------


def test_flatten_nested_dict_uses_sorted_keys() -> None:
    # OrderedDict keeps this unsorted order in the space, so sorting must come from us.
    goal = lambda: gym.spaces.Dict(OrderedDict(microwave=_box(1), kettle=_box(2, 2)))
    space = gym.spaces.Dict(
        OrderedDict(observation=_box(3), desired_goal=goal(), achieved_goal=goal())
    )
    rng = np.random.default_rng(0)
    obs = {
        "observation": rng.normal(size=3),
        "desired_goal": {"microwave": rng.normal(size=1), "kettle": rng.normal(size=(2, 2))},
        "achieved_goal": {"microwave": rng.normal(size=1), "kettle": rng.normal(size=(2, 2))},
    }
    expected = np.concatenate(
        [
            obs["achieved_goal"]["kettle"].ravel(),
            obs["achieved_goal"]["microwave"],
            obs["desired_goal"]["kettle"].ravel(),
            obs["desired_goal"]["microwave"],
            obs["observation"],
        ]
    ).astype(np.float32)
    flat = flatten_observation(obs, space)
    assert flat.dtype == np.float32
    np.testing.assert_array_equal(flat, expected)
    assert observation_dim(space) == expected.size == 13

    # The same with a leading time axis, as Minari returns an episode's observations.
    batch = {
        "observation": np.stack([obs["observation"]] * 4),
        "desired_goal": {k: np.stack([v] * 4) for k, v in obs["desired_goal"].items()},
        "achieved_goal": {k: np.stack([v] * 4) for k, v in obs["achieved_goal"].items()},
    }
    np.testing.assert_array_equal(
        flatten_observation(batch, space, batch_dims=1), np.stack([expected] * 4)
    )


def test_flatten_box_and_shape_mismatch() -> None:
    space = _box(2, 3)
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(flatten_observation(x, space), np.arange(6, dtype=np.float32))
    with pytest.raises(OFQLError, match="does not match"):
        flatten_observation(np.zeros(5), space)


def test_antmaze_dict_observations_and_reward_tune(minari_dir) -> None:
    make_antmaze_dataset()
    raw = _raw_episodes("test/antmaze/umaze-v0")
    tuned, info = load_minari("test/antmaze/umaze-v0", reward_tune="antmaze")
    plain, _ = load_minari("test/antmaze/umaze-v0")

    assert info.obs_dim == 2 + 2 + 105  # AntMaze v5 includes contact forces (v4: 27)
    keys = ("achieved_goal", "desired_goal", "observation")  # sorted, written out by hand
    per_episode = [np.concatenate([e.observations[k] for k in keys], axis=1) for e in raw]
    first = np.concatenate([o[:-1] for o in per_episode])
    last = np.concatenate([o[1:] for o in per_episode])
    np.testing.assert_allclose(tuned.observations, first, rtol=1e-6)
    np.testing.assert_allclose(tuned.next_observations, last, rtol=1e-6)
    raw_rewards = np.concatenate([e.rewards for e in raw])
    assert np.ptp(raw_rewards) > 0  # dense rewards: the tune is checked on varied values
    np.testing.assert_allclose(tuned.rewards, (raw_rewards - 0.5) * 4, rtol=1e-6)
    np.testing.assert_allclose(plain.rewards, raw_rewards, rtol=1e-6)
    assert (info.ref_min_score, info.ref_max_score) == (0.0, 1.0)


def test_unknown_reward_tune_refused(minari_dir) -> None:
    with pytest.raises(OFQLError, match="reward_tune"):
        load_minari("test/hopper/random-v0", reward_tune="cql")


# --- episodes -> transitions -----------------------------------------------------------------


def test_hopper_alignment_terminations_and_truncations(minari_dir) -> None:
    make_hopper_dataset(ref_scores=(-20.0, 3000.0))
    raw = _raw_episodes("test/hopper/random-v0")
    t, info = load_minari("test/hopper/random-v0")

    # The random Hopper data must contain both kinds of episode ends for this test to mean much.
    assert any(e.terminations[-1] for e in raw)
    assert any(e.truncations[-1] and not e.terminations[-1] for e in raw)
    assert t.size == info.num_transitions == sum(len(e) for e in raw) == 300
    assert info.num_episodes == len(raw)
    assert (info.obs_dim, info.act_dim) == (11, 3)
    assert (info.ref_min_score, info.ref_max_score) == (-20.0, 3000.0)
    for field in (t.observations, t.actions, t.rewards, t.next_observations, t.dones):
        assert field.dtype == np.float32

    i = 0
    for ep in raw:
        for s in range(len(ep)):
            np.testing.assert_array_equal(t.observations[i], ep.observations[s].astype(np.float32))
            np.testing.assert_array_equal(
                t.next_observations[i], ep.observations[s + 1].astype(np.float32)
            )
            np.testing.assert_array_equal(t.actions[i], ep.actions[s])  # bounds are already ±1
            assert t.rewards[i] == np.float32(ep.rewards[s])
            assert t.dones[i] == float(ep.terminations[s])
            if ep.truncations[s] and not ep.terminations[s]:
                assert t.dones[i] == 0.0
            i += 1


def test_terminated_and_truncated_step_counts_as_terminated(minari_dir) -> None:
    _, raw = make_hopper_buffers_dataset(
        "test/hopper/flags-v0",
        episode_lengths=[3, 2, 2],
        terminations=[[0, 0, 1], [0, 0], [0, 1]],
        truncations=[[0, 0, 1], [0, 1], [0, 0]],
    )
    t, _ = load_minari("test/hopper/flags-v0")
    np.testing.assert_array_equal(t.dones, [0, 0, 1, 0, 0, 0, 1])

    # The same through episodes_to_transitions on hand-made EpisodeData.
    episodes = [EpisodeData(id=i, infos={}, **ep) for i, ep in enumerate(raw)]
    scaler = ActionScaler(np.full(3, -1, np.float32), np.full(3, 1, np.float32))
    direct = episodes_to_transitions(episodes, _box(11), scaler, "none")
    np.testing.assert_array_equal(direct.dones, [0, 0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(
        direct.next_observations[2], raw[0]["observations"][3].astype(np.float32)
    )


def test_empty_episode_list_gives_empty_transitions() -> None:
    scaler = ActionScaler(np.full(2, -1, np.float32), np.full(2, 1, np.float32))
    t = episodes_to_transitions([], _box(4), scaler, "none")
    assert t.observations.shape == (0, 4) and t.actions.shape == (0, 2) and t.size == 0


def test_non_finite_values_refused(minari_dir) -> None:
    def corrupt(raw):
        raw[1]["observations"][2, 4] = np.nan
        raw[1]["rewards"][0] = np.inf

    make_hopper_buffers_dataset(
        "test/hopper/nan-v0", [3, 3], [[0, 0, 1]] * 2, [[0, 0, 0]] * 2, corrupt=corrupt
    )
    with pytest.raises(OFQLError, match=r"'test/hopper/nan-v0' contains 2 non-finite"):
        load_minari("test/hopper/nan-v0")


def test_actions_outside_declared_bounds(minari_dir) -> None:
    def overshoot(raw):
        raw[0]["actions"][0, 0] = 1.5  # far outside [-1, 1]
        raw[0]["actions"][1, 1] = -1.2

    make_hopper_buffers_dataset(
        "test/hopper/oob-v0", [3], [[0, 0, 1]], [[0] * 3], corrupt=overshoot
    )
    with pytest.raises(OFQLError, match=r"'test/hopper/oob-v0' has 2 action values outside"):
        load_minari("test/hopper/oob-v0")

    def rounding(raw):
        raw[0]["actions"][0, 0] = np.float32(1.0 + 5e-5)  # within tolerance: clipped

    make_hopper_buffers_dataset(
        "test/hopper/round-v0", [3], [[0, 0, 1]], [[0] * 3], corrupt=rounding
    )
    t, _ = load_minari("test/hopper/round-v0")
    assert t.actions[0, 0] == 1.0


# --- actions ---------------------------------------------------------------------------------


def test_action_scaler_round_trip_and_identity() -> None:
    scaler = ActionScaler(np.array([-3.0, 0.0], np.float32), np.array([3.0, 2.0], np.float32))
    a = np.array([[-3.0, 0.0], [3.0, 2.0], [0.0, 1.0], [1.5, 0.5]], np.float32)
    expected = np.array([[-1, -1], [1, 1], [0, 0], [0.5, -0.5]], np.float32)
    np.testing.assert_allclose(scaler.to_unit(a), expected, atol=1e-7)
    np.testing.assert_allclose(scaler.from_unit(scaler.to_unit(a)), a, atol=1e-6)
    assert not scaler.is_identity

    unit = ActionScaler(np.full(2, -1, np.float32), np.full(2, 1, np.float32))
    assert unit.is_identity
    assert unit.to_unit(a) is a and unit.from_unit(a) is a  # exact: no arithmetic at all


def test_inverted_pendulum_actions_rescaled(minari_dir) -> None:
    make_inverted_pendulum_dataset()
    raw_actions = np.concatenate(
        [e.actions for e in _raw_episodes("test/invertedpendulum/random-v0")]
    )
    t, info = load_minari("test/invertedpendulum/random-v0")
    assert info.action_space.low[0] == -3.0 and info.action_space.high[0] == 3.0
    assert t.actions.min() >= -1.0 and t.actions.max() <= 1.0
    np.testing.assert_allclose(t.actions, raw_actions / 3.0, atol=1e-6)
    on_bound = np.abs(raw_actions) == 3.0
    assert on_bound.any()
    np.testing.assert_array_equal(np.abs(t.actions[on_bound]), 1.0)
    np.testing.assert_allclose(info.scaler.from_unit(t.actions), raw_actions, atol=1e-5)


# --- space checks ----------------------------------------------------------------------------


def test_discrete_actions_refused(minari_dir) -> None:
    make_cartpole_dataset()
    with pytest.raises(
        OFQLError, match=r"'test/cartpole/random-v0' has action space Discrete\(2\)"
    ):
        load_minari("test/cartpole/random-v0")


@pytest.mark.parametrize(
    "obs_space, act_space, match",
    [
        (gym.spaces.Box(0, 255, (84, 84, 3), np.uint8), gym.spaces.Box(-1, 1, (2,)), "image"),
        (
            gym.spaces.Dict(pixels=gym.spaces.Box(0, 1, (8, 8))),
            gym.spaces.Box(-1, 1, (2,)),
            "image",
        ),
        (gym.spaces.Box(0, 5, (3,), np.int64), gym.spaces.Box(-1, 1, (2,)), "int64"),
        (gym.spaces.Tuple([_box(2)]), gym.spaces.Box(-1, 1, (2,)), "Tuple"),
        (_box(3), gym.spaces.Box(-np.inf, np.inf, (2,)), "continuous"),
        (_box(3), gym.spaces.Box(-1, 1, (2,), np.int32), "continuous"),
        (_box(3), gym.spaces.MultiDiscrete([2, 3]), "continuous"),
    ],
)
def test_check_spaces_refusals(obs_space, act_space, match) -> None:
    with pytest.raises(OFQLError, match=match) as err:
        check_spaces("x/y-v0", obs_space, act_space)
    assert "'x/y-v0'" in str(err.value)


def test_check_spaces_accepts_vector_spaces() -> None:
    obs = gym.spaces.Dict(a=_box(3), b=gym.spaces.Dict(c=_box()))
    check_spaces("x/y-v0", obs, gym.spaces.Box(-3, 3, (1,), np.float32))


# --- several datasets ------------------------------------------------------------------------


def test_medium_expert_concatenation_order(minari_dir) -> None:
    make_hopper_dataset("test/hopper/medium-v0", num_steps=120, seed=1, ref_scores=(1.0, 2.0))
    make_hopper_dataset("test/hopper/expert-v0", num_steps=80, seed=2, ref_scores=(3.0, 4.0))
    medium = _raw_episodes("test/hopper/medium-v0")
    expert = _raw_episodes("test/hopper/expert-v0")
    t, info = load_minari(["test/hopper/medium-v0", "test/hopper/expert-v0"])

    assert t.size == info.num_transitions == 200
    assert info.num_episodes == len(medium) + len(expert)
    assert info.dataset_ids == ("test/hopper/medium-v0", "test/hopper/expert-v0")
    assert (info.ref_min_score, info.ref_max_score) == (1.0, 2.0)  # from the first dataset
    np.testing.assert_array_equal(t.observations[0], medium[0].observations[0].astype(np.float32))
    np.testing.assert_array_equal(t.observations[120], expert[0].observations[0].astype(np.float32))
    np.testing.assert_array_equal(
        t.next_observations[-1], expert[-1].observations[-1].astype(np.float32)
    )
    raw_rewards = np.concatenate([e.rewards for e in medium + expert]).astype(np.float32)
    np.testing.assert_array_equal(t.rewards, raw_rewards)


def test_datasets_with_different_spaces_refused(minari_dir) -> None:
    make_hopper_dataset(num_steps=40)
    make_inverted_pendulum_dataset(num_steps=40)
    with pytest.raises(OFQLError, match="differ"):
        load_minari(["test/hopper/random-v0", "test/invertedpendulum/random-v0"])


# --- local / remote --------------------------------------------------------------------------


def _assert_offline_message(message: str, dataset_id: str, minari_dir) -> None:
    assert f"'{dataset_id}'" in message and "MINARI_DATASETS_PATH" in message
    assert str(minari_dir) in message and f"minari download {dataset_id}" in message
    assert "cannot be reached" in message and "\n" not in message


def test_absent_dataset_unreachable_server_fails_fast(minari_dir, monkeypatch) -> None:
    # An unresolvable host; a connect that hangs is covered by the next test.
    server = ("minari-server.invalid", 443)
    monkeypatch.setattr(minari_data, "MINARI_SERVER", server)
    monkeypatch.setattr(minari, "download_dataset", pytest.fail)  # must not even try
    start = time.monotonic()
    with pytest.raises(OFQLError) as err:
        load_minari("mujoco/hopper/medium-v0")
    assert time.monotonic() - start < 10
    _assert_offline_message(str(err.value), "mujoco/hopper/medium-v0", minari_dir)


def test_probe_is_bounded_even_when_connect_hangs(monkeypatch) -> None:
    # Stands in for a DNS lookup or SYN that never answers: the probe must still return.
    def hang(*args, **kwargs):
        time.sleep(30)
        raise OSError("timed out")

    monkeypatch.setattr(minari_data.socket, "create_connection", hang)
    start = time.monotonic()
    assert not minari_data.server_reachable(0.3)
    assert time.monotonic() - start < 2


def test_absent_dataset_real_default_server(minari_dir) -> None:
    if minari_data.server_reachable(2.0):
        pytest.skip("the Minari server is reachable here; this test checks the offline path")
    start = time.monotonic()
    with pytest.raises(OFQLError) as err:
        ensure_local("D4RL/antmaze/umaze-v1")
    assert time.monotonic() - start < 10
    _assert_offline_message(str(err.value), "D4RL/antmaze/umaze-v1", minari_dir)


def test_absent_dataset_download_disabled(minari_dir) -> None:
    with pytest.raises(OFQLError, match="downloading is disabled"):
        load_minari("mujoco/hopper/medium-v0", download=False)


def test_download_failure_converted(minari_dir, monkeypatch) -> None:
    def unknown(dataset_id):
        raise ValueError(f"Couldn't find any version for dataset {dataset_id}.")

    monkeypatch.setattr(minari_data, "server_reachable", lambda timeout_s: True)
    monkeypatch.setattr(minari, "download_dataset", unknown)
    with pytest.raises(OFQLError, match="minari list remote"):
        ensure_local("nope/nothing-v0")


def test_local_dataset_needs_no_network(minari_dir, monkeypatch) -> None:
    make_hopper_dataset(num_steps=40)
    monkeypatch.setattr(minari_data, "server_reachable", pytest.fail)
    ensure_local("test/hopper/random-v0", download=False)


def test_malformed_id_refused(minari_dir) -> None:
    with pytest.raises(OFQLError, match="Malformed"):
        load_minari("not a valid id")


# --- environments ----------------------------------------------------------------------------


def test_make_env_hopper_uses_env_spec(minari_dir) -> None:
    make_hopper_dataset(num_steps=40)
    _, info = load_minari("test/hopper/random-v0")
    env = info.make_env()
    obs, _ = env.reset(seed=0)
    assert flatten_observation(obs, env.observation_space).shape == (info.obs_dim,)
    assert env.spec.max_episode_steps == 40  # no eval env recorded: the collection env
    env.close()


def test_make_env_antmaze_prefers_eval_env_spec(minari_dir) -> None:
    make_antmaze_dataset(num_steps=20)
    _, info = load_minari("test/antmaze/umaze-v0")
    env = info.make_env()
    obs, _ = env.reset(seed=0)
    assert flatten_observation(obs, info.observation_space).shape == (info.obs_dim,)
    assert env.spec.max_episode_steps == 700  # eval env, not the 20-step collection env
    env.close()


def _info(spec: EnvSpec | None) -> DatasetInfo:
    scaler = ActionScaler(np.full(1, -1, np.float32), np.full(1, 1, np.float32))
    return DatasetInfo(
        dataset_ids=("x/y-v0",),
        num_transitions=0,
        num_episodes=0,
        obs_dim=3,
        act_dim=1,
        observation_space=_box(3),
        action_space=gym.spaces.Box(-1, 1, (1,)),
        scaler=scaler,
        ref_min_score=None,
        ref_max_score=None,
        env_spec=spec,
    )


def test_make_env_errors() -> None:
    with pytest.raises(OFQLError, match="records no environment spec"):
        _info(None).make_env()
    missing = EnvSpec("Missing-v0", entry_point="ofql_no_such_package.envs:Env")
    with pytest.raises(OFQLError, match="ofql_no_such_package"):
        _info(missing).make_env()
    hopper = "gymnasium.envs.mujoco.hopper_v5:HopperEnv"
    broken = EnvSpec("Broken-v0", entry_point=hopper, kwargs={"no_such_kwarg": 1})
    with pytest.raises(OFQLError, match="Cannot make the environment 'Broken-v0'"):
        _info(broken).make_env()

"""Replica datasets: batched rollouts, Minari's writer, the D4RL recipe per level."""

from __future__ import annotations

import json
import os
import shutil
from importlib import metadata
from pathlib import Path

import gymnasium as gym
import jax
import minari
import numpy as np
import pytest

from ofql_jax.behavior import zoo
from ofql_jax.behavior.export import export
from ofql_jax.behavior.replica import build_replica, ensure_replica, load_dataset, replay_episodes
from ofql_jax.behavior.rollout import random_policy, run_episodes
from ofql_jax.behavior.sac import default_config
from ofql_jax.behavior.train_sac import SACTrainer
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.tasks import D4RL_REF_SCORES
from ofql_jax.core.versions import cpu_model
from ofql_jax.data import load_minari
from ofql_jax.data.minari_data import datasets_root


@pytest.fixture(scope="module")
def tiny_sac_run(tmp_path_factory) -> Path:
    """A 400-step Hopper SAC run with 16x16 networks and snapshots at 200 and 400."""
    workdir = tmp_path_factory.mktemp("sac") / "hopper"
    config = default_config()
    config.hidden_dims = (16, 16)
    trainer = SACTrainer(
        "Hopper-v5", workdir, num_steps=400, seed=3, start_steps=100, eval_every=200,
        eval_episodes=2, checkpoint_every=10_000, progress=False, sac_config=config,
    )  # fmt: skip
    trainer.run()
    return workdir


@pytest.fixture
def tiny_policies(tiny_sac_run, tmp_path, monkeypatch) -> Path:
    """hopper-medium (step 200) and hopper-expert (step 400) exported to a private POLICY_DIR."""
    monkeypatch.setattr(zoo, "POLICY_DIR", tmp_path / "policies")
    export(tiny_sac_run, "medium", step=200, episodes=2)
    export(tiny_sac_run, "expert", step=400, episodes=2)
    return tmp_path / "policies"


def test_screen_evaluates_snapshots_like_export_and_writes_nothing(
    tiny_sac_run, tiny_policies, capsys
):
    from ofql_jax.behavior.export import main, screen

    before = sorted((p.name, p.stat().st_mtime_ns) for p in tiny_policies.iterdir())
    rows = screen(tiny_sac_run, [200, 400], episodes=2)
    assert [r["step"] for r in rows] == [200, 400]
    # The same snapshot on the same episodes as the expert export (step 400, 2 episodes).
    expert = zoo.policy_meta("hopper", "expert")
    assert rows[1]["return_mean_deterministic"] == expert["return_mean_deterministic"]
    assert (
        rows[0]["return_mean_deterministic"]
        == zoo.policy_meta("hopper", "medium")["return_mean_deterministic"]
    )
    assert (
        main([f"--workdir={tiny_sac_run}", "--level=expert", "--screen=400", "--episodes=2"]) == 0
    )
    assert "| 400 |" in capsys.readouterr().out
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tiny_policies.iterdir()) == before
    with pytest.raises(SystemExit) as exit_info:
        main([f"--workdir={tiny_sac_run}", "--level=expert", "--screen=4oo"])
    assert exit_info.value.code == 2
    assert "'4oo' is not a comma-separated list of integers" in capsys.readouterr().err
    assert main([f"--workdir={tiny_sac_run}", "--level=expert", "--screen=300"]) == 2
    assert "No snapshot" in capsys.readouterr().err


def test_rollouts_take_exact_steps_and_reproduce_from_reset_seeds():
    make = lambda: gym.make("Hopper-v5")  # noqa: E731
    a = run_episodes(make, random_policy(3, 0), 4, seed=50, num_steps=500, record=True)
    b = run_episodes(make, random_policy(3, 0), 4, seed=50, num_steps=500, record=True)
    assert a.steps == 500 == sum(ep.length for ep in a.episodes)
    assert 1 <= sum(ep.cut for ep in a.episodes) <= 4  # the envs still running at the end
    assert all(ep.truncations[-1] for ep in a.episodes if ep.cut)
    for x, y in zip(a.episodes, b.episodes, strict=True):
        np.testing.assert_array_equal(x.observations, y.observations)
    for ep in a.episodes[:5]:  # independent check: the recorded start is the seeded reset
        obs0, _ = gym.make("Hopper-v5").reset(seed=ep.seed)
        np.testing.assert_allclose(ep.observations[0], obs0, rtol=1e-6)
    done = run_episodes(make, random_policy(3, 1), 3, seed=0, num_episodes=7)
    assert len(done.returns) == 7 and done.steps == done.lengths.sum()


def test_random_replica_is_a_minari_dataset_with_d4rl_references(minari_dir):
    build_replica("hopper", "random", num_steps=300, num_envs=4, progress=False)
    dataset = minari.load_dataset("ofql/hopper/random-v0")
    assert dataset.total_steps == 300
    meta = dataset.storage.metadata
    assert (meta["ref_min_score"], meta["ref_max_score"]) == D4RL_REF_SCORES["hopper"]
    replica = meta["ofql_replica"]
    assert replica["level"] == "random" and replica["env_id"] == "Hopper-v5"
    assert replica["num_steps"] == 300 and replica["rollout_steps_per_second"] > 0
    # what reaches the data's bits is recorded: the physics, the policy's kernels, the CPU
    assert replica["versions"]["mujoco"] == metadata.version("mujoco")
    assert replica["versions"]["jaxlib"] == metadata.version("jaxlib")
    assert replica["cpu"] == cpu_model() and replica["cpu"]
    for ep in dataset.iterate_episodes():
        assert np.all(np.abs(ep.actions) <= 1.0)
        assert len(ep.observations) == len(ep.actions) + 1
    transitions, info = load_minari("ofql/hopper/random-v0")
    assert transitions.size == 300 and info.obs_dim == 11
    assert info.env_spec.id == "Hopper-v5"


def test_medium_and_medium_expert_replicas_follow_the_shipped_policies(minari_dir, tiny_policies):
    build_replica("hopper", "medium", num_steps=200, num_envs=4, progress=False)
    medium = minari.load_dataset("ofql/hopper/medium-v0")
    meta = medium.storage.metadata["ofql_replica"]
    assert meta["sac_step"] == 200 and "train_command" in meta
    # Independent recomputation of the first step: 4 envs reset with seeds s, s+1, s+2, s+3,
    # one batched policy call with key fold_in(key(s), 0), sampled actions.
    seed = meta["rollout_seed"]
    policy = zoo.load_policy("hopper", "medium")
    obs = np.stack([gym.make("Hopper-v5").reset(seed=seed + i)[0] for i in range(4)])
    first = policy.act(obs.astype(np.float32), jax.random.fold_in(jax.random.key(seed), 0))
    episodes = list(medium.iterate_episodes())
    seeds = [m["seed"] for m in medium.storage.get_episode_metadata(range(len(episodes)))]
    by_seed = dict(zip(seeds, episodes, strict=True))
    for i in range(4):
        np.testing.assert_allclose(by_seed[seed + i].actions[0], first[i], rtol=1e-5, atol=1e-6)

    build_replica("hopper", "medium-expert", num_steps=200, num_envs=4, progress=False)
    mixed = minari.load_dataset("ofql/hopper/medium-expert-v0")
    assert mixed.total_steps == 400  # D4RL: medium then expert, each num_steps
    expert = minari.load_dataset("ofql/hopper/expert-v0")
    mixed_eps = list(mixed.iterate_episodes())
    parts = list(medium.iterate_episodes()) + list(expert.iterate_episodes())
    assert len(mixed_eps) == len(parts)
    for a, b in zip(mixed_eps, parts, strict=True):
        np.testing.assert_array_equal(a.actions, b.actions)


def test_medium_replay_is_the_sac_buffer_up_to_the_medium_step(
    minari_dir, tiny_sac_run, tiny_policies, tmp_path
):
    build_replica("hopper", "medium-replay", sac_run=tiny_sac_run, progress=False)
    dataset = minari.load_dataset("ofql/hopper/medium-replay-v0")
    assert dataset.total_steps == 200  # the medium policy was exported at step 200
    replays = sorted((tiny_sac_run / "checkpoints").glob("replay_*.npz"))
    with np.load(replays[-1]) as saved:
        obs, rewards = saved["observations"][:200], saved["rewards"][:200]
    got_obs = np.concatenate([ep.observations[:-1] for ep in dataset.iterate_episodes()])
    got_rew = np.concatenate([ep.rewards for ep in dataset.iterate_episodes()])
    np.testing.assert_array_equal(got_obs.astype(np.float32), obs)
    np.testing.assert_allclose(got_rew, rewards, rtol=1e-6)
    # Without the run, SAC is re-run to step 200 with the same settings: the same data.
    rerun, info = replay_episodes("hopper", tmp_path / "behavior", progress=False)
    assert info["replay_source"].startswith("a re-run")
    np.testing.assert_array_equal(
        np.concatenate([ep.observations[:-1] for ep in rerun]).astype(np.float32), obs
    )


def test_an_existing_replica_is_reused_never_overwritten_and_an_incomplete_one_is_rebuilt(
    minari_dir,
):
    dataset_id = ensure_replica("hopper", "random", num_steps=200, num_envs=2, progress=False)
    metadata = datasets_root() / dataset_id / "data" / "metadata.json"
    stamp = metadata.stat().st_mtime_ns
    assert ensure_replica("hopper", "random", num_steps=200, progress=False) == dataset_id
    assert metadata.stat().st_mtime_ns == stamp
    with pytest.raises(OFQLError, match=r"was built with requested_steps 200 \(asked 300\)"):
        ensure_replica("hopper", "random", num_steps=300, progress=False)
    raw = json.loads(metadata.read_text())
    del raw["ofql_replica"]  # what a build killed before its last write leaves
    metadata.write_text(json.dumps(raw))
    ensure_replica("hopper", "random", num_steps=250, num_envs=2, progress=False)
    assert minari.load_dataset(dataset_id).total_steps == 250
    assert os.path.exists(metadata)


@pytest.mark.parametrize("env", sorted(zoo.ENV_IDS))
def test_shipped_medium_policy_returns_lie_in_the_d4rl_medium_band(env):
    meta = zoo.load_policy(env, "medium").meta
    lo, hi = zoo.MEDIUM_BANDS[env]
    assert meta["eval_episodes"] == 100
    assert lo <= meta["return_mean_deterministic"] <= hi, meta["return_mean_deterministic"]
    expert = zoo.load_policy(env, "expert").meta
    assert expert["return_mean_deterministic"] > meta["return_mean_deterministic"]


# Every shipped expert has reached D4RL's level (version 2 of each, 2026-11-26 and 27).
@pytest.mark.parametrize("env", ["hopper", "halfcheetah", "walker2d"])
def test_shipped_expert_policy_reaches_the_d4rl_expert_level(env):
    meta = zoo.policy_meta(env, "expert")
    assert meta["eval_episodes"] == 100
    assert meta["return_mean_deterministic"] >= zoo.EXPERT_LEVELS[env]
    assert meta["version"] >= 2 and len(meta["params_sha256"]) == 64


def test_replica_cli_writes_a_dataset_and_refuses_to_overwrite_it(minari_dir):
    import subprocess
    import sys

    args = [sys.executable, "-m", "ofql_jax.behavior.replica", "--env=walker2d", "--level=random",
            "--num_steps=300", "--num_envs=2"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "wrote ofql/walker2d/random-v0: " in done.stdout and "steps/s" in done.stdout
    assert minari.load_dataset("ofql/walker2d/random-v0").total_steps == 300
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "already exists: delete it with `minari delete ofql/walker2d/random-v0`" in again.stderr


def test_a_replica_of_an_older_behaviour_policy_is_refused_never_reused_or_deleted(
    minari_dir, tiny_sac_run, tiny_policies
):
    assert zoo.policy_version("hopper", "expert") == 1  # first export
    build_replica("hopper", "medium-expert", num_steps=200, num_envs=2, progress=False)
    mixed = minari.load_dataset("ofql/hopper/medium-expert-v0").storage.metadata["ofql_replica"]
    assert mixed["behavior_versions"] == {"medium": 1, "expert": 1}
    export(tiny_sac_run, "expert", step=400, episodes=2)  # the same parameters: same version
    assert zoo.policy_version("hopper", "expert") == 1
    assert ensure_replica("hopper", "expert", num_steps=200, progress=False)

    export(tiny_sac_run, "expert", step=200, episodes=2)  # a new expert
    assert zoo.policy_version("hopper", "expert") == 2
    assert zoo.policy_version("hopper", "medium") == 1
    expert_meta = datasets_root() / "ofql/hopper/expert-v0/data/metadata.json"
    stamp = expert_meta.stat().st_mtime_ns
    with pytest.raises(OFQLError) as err:
        ensure_replica("hopper", "medium-expert", num_steps=200, progress=False)
    assert str(err.value) == (
        "The local replicas ofql/hopper/medium-expert-v0 (built from version 1 of the hopper "
        "expert policy, version 2 is shipped); ofql/hopper/expert-v0 (built from version 1 of "
        "the hopper expert policy, version 2 is shipped) predate this ofql_jax's behaviour "
        "policies: delete them with `minari delete ofql/hopper/medium-expert-v0 "
        "ofql/hopper/expert-v0` and run again to rebuild them."
    )
    with pytest.raises(OFQLError, match=r"delete it with `minari delete ofql/hopper/expert-v0`"):
        load_dataset("ofql/hopper/expert-v0")
    assert expert_meta.stat().st_mtime_ns == stamp  # refused, not rebuilt or deleted
    assert ensure_replica("hopper", "medium", num_steps=200, progress=False)  # medium is current

    # A replica from before versions were recorded counts as built from version 1.
    raw = json.loads(expert_meta.read_text())
    del raw["ofql_replica"]["behavior_versions"]
    expert_meta.write_text(json.dumps(raw))
    with pytest.raises(OFQLError, match=r"expert-v0 \(built from version 1 of the hopper expert"):
        ensure_replica("hopper", "expert", num_steps=200, progress=False)

    for stale in ("expert", "medium-expert"):
        shutil.rmtree(datasets_root() / f"ofql/hopper/{stale}-v0")
    ensure_replica("hopper", "medium-expert", num_steps=200, num_envs=2, progress=False)
    rebuilt = minari.load_dataset("ofql/hopper/medium-expert-v0").storage.metadata
    assert rebuilt["ofql_replica"]["behavior_versions"] == {"medium": 1, "expert": 2}
    assert load_minari("ofql/hopper/medium-expert-v0")[0].size == 400

"""AntMaze and Kitchen through the same loader, training and evaluation as MuJoCo.

Their official Minari datasets cannot be fetched here, so each test writes a tiny dataset in the
real Gymnasium-Robotics environment with Minari's own writer, using the settings Minari's D4RL
datasets were made with (tests/minari_factory.py), then trains a few steps with the task's
config and evaluates once on short episodes.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import minari
import mujoco
import numpy as np
from minari_factory import (
    D4RL_UMAZE_EVAL_MAP,
    KITCHEN_COMPLETE_TASKS,
    MICROWAVE_GOAL,
    MICROWAVE_QPOS,
    make_d4rl_antmaze_dataset,
    make_kitchen_dataset,
)

from ofql_jax.agents import default_config, make_ofql
from ofql_jax.data import load_minari, robotics_compat
from ofql_jax.data.collect import register_robotics
from ofql_jax.evaluation.evaluator import Evaluator
from ofql_jax.results.schema import transitions_hash
from ofql_jax.training.experiment import Experiment

REPO = Path(__file__).resolve().parents[1]
TINY_AGENT = dict(hidden_dims=(32, 32), critic_hidden_dims=(32, 32), time_dim=8)
EVAL_STEPS = 10  # evaluation episode length recorded in the test datasets


def task_config(task: str, dataset_id: str):
    """experiments/d4rl.py's config for ``task`` on a local dataset, made cheap: one seed, tiny
    networks, 20 steps, one evaluation (at the end) of 2 episodes, D4RL reference scores."""
    spec = importlib.util.spec_from_file_location("d4rl_config", REPO / "experiments" / "d4rl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config(task)
    c.dataset_id = dataset_id
    c.normalize_with_task = True  # the datasets store no reference scores: use D4RL's
    for key, value in TINY_AGENT.items():
        c.agent[key] = value
    c.num_seeds, c.num_steps, c.batch_size, c.steps_per_call = 1, 20, 32, 10
    c.eval_every, c.eval_episodes, c.eval_candidates = 0, 2, 4
    c.checkpoint_every, c.progress, c.compilation_cache_dir = 0, False, ""
    return c


def check_evaluation(results: dict, ref: tuple[float, float], max_return: float) -> None:
    """Exactly one evaluation, at the last step, with finite scores normalised by ``ref``."""
    (entry,) = results["evaluations"]
    assert entry["step"] == results["steps"] == 20
    assert results["score_normalization"] == "d4rl_table"
    low, high = ref
    for suffix in ("", "_one_step"):  # N = 4 candidates and the plain one-step policy
        returns = np.array(entry[f"returns{suffix}"], dtype=np.float64)
        scores = np.array(entry[f"scores{suffix}"], dtype=np.float64)
        assert returns.shape == scores.shape == (1,)
        assert np.all(np.isfinite(scores))
        assert np.all((returns >= 0) & (returns <= max_return))
        np.testing.assert_allclose(scores, 100 * (returns - low) / (high - low))
        assert results[f"final_scores{suffix}"] == entry[f"scores{suffix}"]


# --- the Kitchen environment itself -----------------------------------------------------------


def test_kitchen_env_constructs_steps_and_rewards_tasks() -> None:
    register_robotics()  # applies ofql_jax.data.robotics_compat where MuJoCo needs it
    assert not robotics_compat.joint_accessors_broken()
    env = gym.make("FrankaKitchen-v1", tasks_to_complete=KITCHEN_COMPLETE_TASKS)
    obs, _ = env.reset(seed=0)
    data = env.unwrapped.data
    # The robot part of the observation is the arm's qpos (plus ~1e-3 sensor noise).
    np.testing.assert_allclose(obs["observation"][:9], data.qpos[:9], atol=0.01)
    obs, reward, terminated, _, info = env.step(np.zeros(9))
    assert (reward, terminated, info["step_task_completions"]) == (0.0, False, [])

    data.qpos[MICROWAVE_QPOS] = MICROWAVE_GOAL  # the microwave door at its goal angle
    data.qvel[MICROWAVE_QPOS] = 0.0
    obs, reward, terminated, _, info = env.step(np.zeros(9))
    assert (reward, terminated, info["step_task_completions"]) == (1.0, False, ["microwave"])
    assert sorted(info["tasks_to_complete"]) == sorted(set(KITCHEN_COMPLETE_TASKS) - {"microwave"})
    np.testing.assert_allclose(obs["achieved_goal"]["microwave"], [MICROWAVE_GOAL], atol=0.05)

    goals = {"kettle": (range(23, 30), [-0.23, 0.75, 1.62, 0.99, 0.0, 0.0, -0.06])}
    goals.update({"light switch": ([17, 18], [-0.69, -0.05]), "slide cabinet": ([19], [0.37])})
    for index, goal in goals.values():
        data.qpos[list(index)] = goal
    data.qvel[:] = 0.0
    _, reward, terminated, _, info = env.step(np.zeros(9))
    assert (reward, terminated) == (3.0, True)  # the three remaining tasks; all four done
    assert sorted(info["episode_task_completions"]) == sorted(KITCHEN_COMPLETE_TASKS)
    env.close()


def test_compat_joint_accessors_read_and_write_every_joint_type() -> None:
    model = mujoco.MjModel.from_xml_string(
        """<mujoco><worldbody>
        <body><freejoint name="free"/><geom size="0.1"/></body>
        <body pos="1 0 0"><joint name="ball" type="ball"/><geom size="0.1"/></body>
        <body pos="2 0 0"><joint name="hinge" type="hinge"/><geom size="0.1"/>
          <body><joint name="slide" type="slide"/><geom size="0.1"/></body></body>
        </worldbody></mujoco>"""
    )
    data = mujoco.MjData(model)
    data.qpos[:] = np.arange(model.nq) + 1.0
    data.qvel[:] = -(np.arange(model.nv) + 1.0)
    fixed = robotics_compat._make_fixed(mujoco)
    qpos = {name: fixed["get_joint_qpos"](model, data, name) for name in ("free", "ball")}
    np.testing.assert_array_equal(qpos["free"], data.qpos[0:7])
    np.testing.assert_array_equal(qpos["ball"], data.qpos[7:11])
    np.testing.assert_array_equal(fixed["get_joint_qpos"](model, data, "hinge"), [12.0])
    np.testing.assert_array_equal(fixed["get_joint_qpos"](model, data, "slide"), [13.0])
    np.testing.assert_array_equal(fixed["get_joint_qvel"](model, data, "hinge"), [-10.0])
    np.testing.assert_array_equal(fixed["get_joint_qvel"](model, data, "slide"), [-11.0])
    fixed["set_joint_qpos"](model, data, "slide", 0.5)
    fixed["set_joint_qvel"](model, data, "hinge", 0.25)
    fixed["set_joint_qvel"](model, data, "ball", [1.0, 2.0, 3.0])
    assert (data.qpos[12], data.qvel[9]) == (0.5, 0.25)
    np.testing.assert_array_equal(data.qvel[6:9], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(data.qpos[:12], np.arange(12) + 1.0)  # neighbours untouched


# --- end to end ---------------------------------------------------------------------------------


def test_antmaze_umaze_diverse_trains_and_evaluates(minari_dir, tmp_path) -> None:
    dataset_id = "test/antmaze/umaze-d4rl-v0"
    make_d4rl_antmaze_dataset(dataset_id, eval_max_episode_steps=EVAL_STEPS)
    raw = list(minari.load_dataset(dataset_id).iterate_episodes())
    raw_rewards = np.concatenate([e.rewards for e in raw])
    assert set(np.unique(raw_rewards)) == {0.0, 1.0}  # sparse, and the goal was reached
    assert not any(e.terminations.any() for e in raw)  # a continuing task never terminates

    config = task_config("antmaze-umaze-diverse", dataset_id)
    assert (config.reward_tune, config.agent.max_q_backup) == ("antmaze", True)
    experiment = Experiment(config, tmp_path / "run")
    # Dict observations flattened: achieved_goal (2) + desired_goal (2) + observation (105).
    assert experiment.setup.agent.obs_dim == 109 and experiment.setup.agent.act_dim == 8
    assert experiment.setup.agent.config.max_q_backup
    data = experiment.setup.data
    assert data.observations.shape == (raw_rewards.size, 109)
    np.testing.assert_allclose(np.asarray(data.rewards), (raw_rewards - 0.5) * 4)
    assert not np.asarray(data.dones).any()
    first = raw[0].observations
    np.testing.assert_allclose(
        np.asarray(data.observations[0]),
        np.concatenate([first[k][0] for k in ("achieved_goal", "desired_goal", "observation")]),
        rtol=1e-6,
    )
    # Evaluation runs the dataset's recorded eval env: D4RL's eval map, short episodes.
    env = experiment.setup.evaluator.envs[0]
    assert env.spec.max_episode_steps == EVAL_STEPS
    assert env.spec.kwargs["maze_map"] == D4RL_UMAZE_EVAL_MAP
    assert env.spec.kwargs["continuing_task"] and not env.spec.kwargs["reset_target"]

    results = experiment.run()
    check_evaluation(results, ref=(0.0, 1.0), max_return=EVAL_STEPS)
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["evaluations"] == results["evaluations"]
    assert on_disk["config"]["agent"]["max_q_backup"] is True
    assert on_disk["dataset_id"] == dataset_id


def test_kitchen_complete_cli_trains_and_evaluates(minari_dir, tmp_path) -> None:
    dataset_id = "test/kitchen/complete-v0"
    make_kitchen_dataset(dataset_id, num_steps=60, max_episode_steps=EVAL_STEPS)
    raw = list(minari.load_dataset(dataset_id).iterate_episodes())
    raw_rewards = np.concatenate([e.rewards for e in raw])
    assert 0 < raw_rewards.sum() < raw_rewards.size  # the scripted microwave openings count

    workdir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "ofql_jax.main",
        "--config=experiments/d4rl.py:kitchen-complete",
        f"--config.dataset_id={dataset_id}",
        f"--workdir={workdir}",
        "--config.normalize_with_task=True",
        "--config.agent.hidden_dims=(32,32)",
        "--config.agent.critic_hidden_dims=(32,32)",
        "--config.agent.time_dim=8",
        "--config.num_seeds=1",
        "--config.num_steps=20",
        "--config.batch_size=32",
        "--config.steps_per_call=10",
        "--config.eval_every=0",
        "--config.eval_episodes=2",
        "--config.eval_candidates=4",
        "--config.checkpoint_every=0",
        "--config.progress=False",
        "--config.compilation_cache_dir=",
    ]
    # A fresh process: the evaluation env is built only through DatasetInfo.make_env, which
    # must apply the MuJoCo compatibility fix itself (this process already has it applied).
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "kitchen-complete (test/kitchen/complete-v0): final score" in proc.stdout

    results = json.loads((workdir / "results.json").read_text())
    assert results["config"]["agent"]["max_q_backup"] is False
    assert results["config"]["reward_tune"] == "none"
    check_evaluation(results, ref=(0.0, 4.0), max_return=4.0)  # each task pays once
    transitions, info = load_minari(dataset_id)
    # Nested dict observations: 2 x (microwave 1 + kettle 7 + light switch 2 + slide 1) + 59.
    assert info.obs_dim == 2 * (1 + 7 + 2 + 1) + 59
    assert transitions.observations.shape == (raw_rewards.size, info.obs_dim)
    assert info.env_spec.max_episode_steps == EVAL_STEPS  # no eval env: the collection env
    np.testing.assert_allclose(transitions.rewards, raw_rewards)  # no reward tune for Kitchen
    assert results["dataset_sha256"] == transitions_hash(transitions)  # what was trained on

    # The dataset's env (like Minari's) keeps paying for a finished task on every step and never
    # ends; evaluation must use D4RL's kitchen semantics instead, for the (0, 4) reference.
    assert not info.env_spec.kwargs["remove_task_when_completed"]
    evaluator = Evaluator(make_ofql(default_config(), info.obs_dim, info.act_dim), info, 1, 1)
    kitchen = evaluator.envs[0].unwrapped
    assert kitchen.remove_task_when_completed and kitchen.terminate_on_tasks_completed
    assert evaluator.envs[0].spec.max_episode_steps == EVAL_STEPS
    evaluator.close()

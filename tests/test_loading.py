"""A finished run as an artefact: load_run, the README's example, python -m ofql_jax.evaluate."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DATASET

REPO = Path(__file__).resolve().parents[1]
TINY_RUN = dict(
    num_seeds=2, num_steps=40, eval_every=40, checkpoint_every=20, eval_one_candidate=True
)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny 2-seed OFQL run (40 steps, checkpoints at 20 and 40, evaluated at 40 with one
    candidate beside N = 4 and N = 1) at
    ``<root>/runs/offline``, and an empty Minari directory for the processes that load it
    (so any attempt to read the dataset fails)."""
    from minari_factory import make_hopper_dataset
    from test_train import small_config

    from ofql_jax.training.experiment import run

    root = tmp_path_factory.mktemp("loading")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root / "minari"))
        make_hopper_dataset(
            DATASET, num_steps=400, max_episode_steps=40, ref_scores=(-20.272305, 3234.3)
        )
        results = run(small_config(**TINY_RUN), root / "runs" / "offline")
    (root / "empty_minari").mkdir()
    return root, results


def run_python(code: str, cwd: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MINARI_DATASETS_PATH": str(root / "empty_minari")}
    command = [sys.executable, "-c", code] if code else [sys.executable, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


LOAD_AND_EVALUATE = """
import json, ofql_jax
run = ofql_jax.load_run("runs/offline")
out = run.evaluate(seeds=[1])
print(json.dumps({"step": run.step, "seeds": run.seeds, "env_id": run.env_id,
                  "variants": out["variants"], "members": out["members"]}))
"""


def test_load_run_in_a_fresh_process_reproduces_the_final_evaluation(finished_run):
    root, results = finished_run
    done = run_python(LOAD_AND_EVALUATE, root, root)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["step"] == 40 and got["seeds"] == [0, 1] and got["env_id"] == "Hopper-v5"
    assert got["members"] == [{"label": "1", "seed": 1, "setting": 0}]
    final = results["evaluations"][-1]
    n = final["candidates"]
    # Exactly the returns the training run logged for seed 1 (index 1), both variants.
    assert got["variants"][f"N={n}"]["returns"] == [final["returns"][1]]
    assert got["variants"]["N=1"]["returns"] == [final["returns_one_step"][1]]
    assert got["variants"]["one candidate"]["returns"] == [final["returns_one_candidate"][1]]
    assert got["variants"][f"N={n}"]["scores"] == [final["scores"][1]]


def test_evaluate_with_other_selection_settings_matches_the_logged_variants(finished_run):
    """The noise of N = 1 set to the candidates' 0.5 gives the one-candidate variant the run
    logged (same episodes and draws); left alone, the logged N = 1 at noise x 1."""
    from ofql_jax.core.errors import OFQLError
    from ofql_jax.training.loading import load_run

    root, results = finished_run
    final = results["evaluations"][-1]
    assert results["eval_settings"]["one_candidate"] == "N = 1, noise x 0.5, same actor"
    assert final["returns_one_candidate"] != final["returns_one_step"]  # the noise matters
    run = load_run(root / "runs" / "offline")
    half = run.evaluate(num_candidates=1, noise_temperature=0.5)["variants"]["N=1"]
    assert half["returns"] == final["returns_one_candidate"]
    assert half["settings"]["noise_temperature"] == 0.5
    plain = run.evaluate(num_candidates=1)["variants"]["N=1"]
    assert plain["returns"] == final["returns_one_step"]
    with pytest.raises(OFQLError, match=r"Unknown selection settings \['temperature'\]"):
        run.evaluate(temperature=1.0)


def test_policy_acts_in_env_units_like_the_agent(finished_run):
    """``run.policy`` = the agent's one-step map, then the action scaler (identity here)."""
    import jax

    from ofql_jax import load_run
    from ofql_jax.agents.base import select_actor

    root, _ = finished_run
    run = load_run(root / "runs" / "offline", step=20)
    assert run.step == 20 and run.info.num_transitions == 0  # nothing read from the dataset
    policy = run.policy(seed=1, num_candidates=1, noise_seed=3)
    obs = np.random.default_rng(0).normal(size=(5, run.info.obs_dim)).astype(np.float32)
    actions = policy(obs)
    noise = np.random.default_rng(3).standard_normal((5, run.agent.noise_dim), dtype=np.float32)
    state = run.state(seed=1)
    params = select_actor(state, "ema")  # the protocol's actor (paper: EMA)
    expected = jax.jit(lambda o, z: run.agent.decide(params, {}, o, z))(obs, noise)
    np.testing.assert_allclose(actions, np.asarray(expected), rtol=0, atol=1e-6)
    assert actions.shape == (5, 3) and np.all(np.abs(actions) <= 1)
    assert policy(obs[0]).shape == (3,)
    with pytest.raises(Exception, match="no seed 7"):
        run.policy(seed=7)


def test_readme_load_example_runs_verbatim(finished_run):
    root, _ = finished_run
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Load, evaluate and watch a run", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    done = run_python(code, root, root)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "ofql Hopper-v5 40 [0, 1]"
    assert re.fullmatch(r"one episode: return -?\d+\.\d", lines[1])
    assert lines[2].startswith("{'N=4': [") and "'N=1': [" in lines[2]


def test_evaluate_cli_writes_json_and_a_video(finished_run):
    import imageio_ffmpeg

    root, results = finished_run
    video = root / "video" / "seed0.mp4"
    args = ["-m", "ofql_jax.evaluate", "--workdir=runs/offline", "--seeds=0",
            "--candidates=1", f"--video={video}", "--video_steps=4", "--video_size=64x48",
            "--no_progress"]  # fmt: skip
    done = run_python("", root, root, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads((root / "runs/offline/evaluations/step_40.json").read_text())
    assert list(out["variants"]) == ["N=1"]
    assert out["variants"]["N=1"]["returns"] == [results["evaluations"][-1]["returns_one_step"][0]]
    assert re.search(r"N=1 +0: normalised score -?\d+\.\d", done.stdout)
    reader = imageio_ffmpeg.read_frames(str(video))
    assert next(reader)["size"] == (64, 48)
    frames = [np.frombuffer(f, np.uint8).reshape(48, 64, 3) for f in reader]
    assert len(frames) == 5  # the reset frame + 4 steps
    assert frames[0].std() > 10  # a rendered scene, not a blank image
    assert out["videos"][0]["frames"] == 5 and out["videos"][0]["path"] == str(video)
    again = run_python("", root, root, *args[:5], "--episodes=1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (root / "runs/offline/evaluations/step_40-1.json").exists()  # never overwritten


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workdir=nowhere"], "nowhere is not a directory"),
        (["--workdir=runs"], "holds no config.json"),
        (["--workdir=runs/offline", "--step=30"], "kept no checkpoint at step 30"),
        (["--workdir=runs/offline", "--seeds=5"], "has no seed 5"),
        (["--workdir=runs/offline", "--video=x.avi"], "must end in .mp4"),
        (["--workdir=runs/offline", "--noise_temperature=0"], "must be above 0"),
    ],
)
def test_evaluate_cli_errors_are_one_sentence(finished_run, args, message, capsys, monkeypatch):
    from ofql_jax.evaluate import main

    root, _ = finished_run
    monkeypatch.chdir(root)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_the_acting_record_matches_what_the_dataset_gives(finished_run, monkeypatch):
    """Runs saved before acting records fall back to the dataset; both give the same record."""
    from ofql_jax.training.loading import _fallback_info, _read_config

    root, results = finished_run
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root / "minari"))
    config = _read_config(root / "runs" / "offline")
    assert json.loads(json.dumps(_fallback_info(config))) == results["acting"]


def test_results_of_every_schema_version_load_and_a_newer_one_is_refused(finished_run, tmp_path):
    from ofql_jax.core.errors import OFQLError
    from ofql_jax.results.schema import SCHEMA_VERSION, load_results

    root, results = finished_run
    assert results["schema_version"] == SCHEMA_VERSION
    assert load_results(root / "runs" / "offline") == json.loads(json.dumps(results))
    old = REPO / "tests" / "regression" / "saved_run"  # written before the version field
    raw = json.loads((old / "results.json").read_text())
    assert "schema_version" not in raw
    assert load_results(old) == {"schema_version": SCHEMA_VERSION, **raw}
    (tmp_path / "results.json").write_text(json.dumps({**raw, "schema_version": 99}))
    with pytest.raises(OFQLError, match="schema version 99, newer than this ofql-jax reads"):
        load_results(tmp_path)


def test_a_checkpoint_from_before_a_new_hyperparameter_restores_with_the_config_value(
    tmp_path, caplog
):
    """A run saved before an agent gained a continuous hyperparameter still restores (and
    load_run still loads it): the new key takes the run's config value. Restoring logs no
    Orbax warning (it printed "Metadata file does not exist" on every resume)."""
    import logging

    import jax
    import jax.numpy as jnp

    from ofql_jax.agents.base import AgentState
    from ofql_jax.core.checkpointing import Checkpointer
    from ofql_jax.core.errors import OFQLError

    def state(hparams):
        return AgentState(step=jnp.full((2,), 7, jnp.int32), rng=jnp.zeros((2, 2), jnp.uint32),
                          policy_params={"w": jnp.arange(6.0).reshape(2, 3)},
                          target_policy_params={}, critic_params={}, target_critic_params={},
                          policy_opt_state={}, critic_opt_state={}, hparams=hparams)  # fmt: skip

    ckpt = Checkpointer(tmp_path / "checkpoints")
    ckpt.save(7, state({"eta": jnp.array([0.1, 0.3])}), {"note": "old"})
    new = state({"eta": jnp.zeros(2), "uniform_ratio": jnp.array([0.5, 0.5])})
    with caplog.at_level(logging.WARNING):
        restored, meta = ckpt.restore(7, like=new)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert meta == {"note": "old"}
    np.testing.assert_array_equal(restored.hparams["eta"], np.float32([0.1, 0.3]))  # saved
    np.testing.assert_array_equal(restored.hparams["uniform_ratio"], [0.5, 0.5])  # from like
    np.testing.assert_array_equal(restored.policy_params["w"], np.arange(6.0).reshape(2, 3))

    abstract = jax.eval_shape(lambda: new)
    restored, _ = ckpt.restore(7, like=abstract, hparam_defaults={"uniform_ratio": 0.0})
    np.testing.assert_array_equal(restored.hparams["uniform_ratio"], [0.0, 0.0])
    with pytest.raises(OFQLError, match="predates the hyperparameter 'uniform_ratio'"):
        ckpt.restore(7, like=abstract)
    ckpt.close()


def test_evaluate_cli_replaces_the_selection_settings(finished_run, monkeypatch, capsys):
    from ofql_jax.evaluate import main

    root, results = finished_run
    monkeypatch.chdir(root)
    args = ["--workdir=runs/offline", "--seeds=0", "--candidates=1", "--noise_temperature=0.5",
            "--no_progress", "--out=one_candidate.json"]  # fmt: skip
    assert main(args) == 0
    assert "selection settings replaced: noise_temperature=0.5" in capsys.readouterr().out
    out = json.loads((root / "one_candidate.json").read_text())
    assert out["variants"]["N=1"]["settings"]["noise_temperature"] == 0.5
    assert out["variants"]["N=1"]["returns"] == [
        results["evaluations"][-1]["returns_one_candidate"][0]
    ]


def test_few_step_eval_acts_with_k_mean_flow_jumps_and_k1_is_the_run(finished_run):
    """benchmarks/few_step_eval.py: K = 1 reproduces the run's logged N = 1 returns; K = 2
    acts with two jumps of the same network, written out here by hand."""
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(REPO / "benchmarks"))
    from few_step_eval import with_steps

    from ofql_jax.agents import ofql
    from ofql_jax.training.loading import load_run

    root, results = finished_run
    run = load_run(root / "runs" / "offline")
    one = with_steps(run, 1).evaluate(num_candidates=1)["variants"]["N=1"]
    assert one["returns"] == results["evaluations"][-1]["returns_one_step"]
    two_run = with_steps(run, 2)
    assert run.agent.sample_actions is not two_run.agent.sample_actions  # run is unchanged
    state = jax.tree.map(lambda x: x[0], run.states)
    obs = jnp.asarray(np.random.default_rng(0).standard_normal((5, run.agent.obs_dim)), jnp.float32)
    key = jax.random.key(3)
    got = two_run.agent.sample_actions(state, obs, key)
    noise = jax.random.normal(jax.random.split(key)[0], (5, run.agent.act_dim))
    net = ofql.policy_network(run.config.agent, run.agent.act_dim)
    ones = jnp.ones((5,))

    def u(z, r, t):
        return net.apply(state.policy_params, z, r * ones, t * ones, obs)

    half = noise - 0.5 * u(noise, 0.5, 1.0)
    want = jnp.clip(half - 0.5 * u(half, 0.0, 0.5), -1.0, 1.0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, run.agent.sample_actions(state, obs, key), atol=1e-4)
    two = two_run.evaluate(num_candidates=1)["variants"]["N=1"]
    assert two["returns"] != one["returns"]

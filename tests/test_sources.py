"""config.data_source: official, replica or auto, chosen with one logged reason and recorded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from minari_factory import make_hopper_dataset
from test_reliability import assert_one_clear_line
from test_train import REPO, small_config

from ofql_jax.behavior.sources import choose_data
from ofql_jax.core.errors import OFQLError
from ofql_jax.data import minari_data
from ofql_jax.training.experiment import run


@pytest.fixture
def offline(monkeypatch):
    """The Minari server refuses connections at once (as on a machine without network)."""
    monkeypatch.setattr(minari_data, "MINARI_SERVER", ("127.0.0.1", 9))


def task_config(task="hopper-medium", **overrides):
    c = small_config(task=task, dataset_id="")
    for key, value in overrides.items():
        c[key] = value
    return c


def test_auto_falls_back_to_the_replica_offline_and_says_why(minari_dir, offline):
    choice = choose_data(task_config())
    assert choice.source == "replica"
    assert choice.dataset_ids == ("ofql/hopper/medium-v0",)
    assert "not cached" in choice.reason and "127.0.0.1:9" in choice.reason
    assert choice.describe().startswith("Data: replica ofql/hopper/medium-v0 (")


def test_auto_uses_a_cached_official_dataset(minari_dir, offline):
    make_hopper_dataset("mujoco/hopper/medium-v0", num_steps=200)
    choice = choose_data(task_config())
    assert (choice.source, choice.dataset_ids) == ("official", ("mujoco/hopper/medium-v0",))
    assert choice.reason == "cached locally"


def test_auto_takes_the_replica_when_minari_has_no_official_dataset(minari_dir):
    choice = choose_data(task_config("hopper-medium-replay"))
    assert choice.source == "replica"
    assert choice.reason == "Minari has no official hopper-medium-replay dataset"


def test_explicit_sources_and_their_errors(minari_dir, offline):
    assert choose_data(task_config(data_source="replica")).source == "replica"
    with pytest.raises(OFQLError, match="Minari has no official hopper-medium-replay dataset"):
        choose_data(task_config("hopper-medium-replay", data_source="official"))
    with pytest.raises(OFQLError, match="There is no replica of antmaze-umaze"):
        choose_data(task_config("antmaze-umaze", data_source="replica"))
    explicit = choose_data(task_config(dataset_id="a/b-v0,c/d-v0"))
    assert (explicit.source, explicit.dataset_ids) == ("dataset_id", ("a/b-v0", "c/d-v0"))


def test_a_resumed_auto_run_keeps_the_source_it_started_with(minari_dir, offline, tmp_path):
    (tmp_path / "data_source.json").write_text(json.dumps({"source": "official"}))
    make_hopper_dataset("mujoco/hopper/medium-v0", num_steps=200)
    choice = choose_data(task_config(), tmp_path)
    assert choice.source == "official" and "when this run started" in choice.reason
    (tmp_path / "data_source.json").write_text("{truncated")  # unreadable: decide afresh
    assert choose_data(task_config(), tmp_path).reason == "cached locally"


def test_offline_run_builds_the_replica_trains_and_records_the_source(
    minari_dir, offline, tmp_path
):
    config = task_config(replica_steps=600, replica_envs=4, num_steps=20, eval_every=0)
    config.eval_episodes = 1
    results = run(config, tmp_path / "run")
    assert results["data_source"] == "replica"
    assert results["dataset_id"] == "ofql/hopper/medium-v0"
    assert "did not answer" in results["data_source_reason"]
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["data_source"] == "replica"
    assert json.loads((tmp_path / "run" / "data_source.json").read_text())["source"] == "replica"
    assert (minari_dir / "ofql" / "hopper" / "medium-v0").is_dir()


def test_official_source_offline_is_one_clear_line(minari_dir, tmp_path):
    """This machine has no route to the Minari server (as test_reliability assumes too)."""
    done = subprocess.run(
        [sys.executable, "-m", "ofql_jax.main", "--config=experiments/d4rl.py",
         "--config.data_source=official", f"--workdir={tmp_path / 'w'}"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert_one_clear_line(done, "mujoco/hopper/medium-v0", "cannot be reached")
    assert not (minari_dir / "ofql").exists()  # nothing was built behind the user's back

"""Matmul precision: set once per process, provably in the compiled programs, recorded.

The evidence is what ``benchmarks/device_check.py`` records on a GPU: the optimized HLO's dots
(their ``operand_precision`` and operand types) and a numeric check of the policy's forward
pass against ``highest``. On a CPU ``default`` is float32 (identical numbers, other HLO);
bf16 matmul inputs are rounded on every backend, so they differ everywhere.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from ofql_jax.agents.ofql import default_config, make_ofql
from ofql_jax.core.errors import OFQLError
from ofql_jax.training.runtime import matmul_precision, set_matmul_precision

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from device_check import matmul_evidence, policy_difference, precision_applied  # noqa: E402

OBS, ACT = 5, 2


@pytest.fixture
def process_precision():
    """Restores the process-wide precision a test changes."""
    before = jax.config.jax_default_matmul_precision
    yield
    jax.config.update("jax_default_matmul_precision", before)


def tiny(matmul_dtype: str = "float32"):
    config = default_config()
    config.hidden_dims, config.critic_hidden_dims, config.time_dim = (32, 32), (32, 32), 8
    config.matmul_dtype = matmul_dtype
    return make_ofql(config, OBS, ACT)


def _hlo(fn, *args, precision: str | None = None) -> str:
    if precision is None:
        return jax.jit(fn).lower(*args).compile().as_text()
    with jax.default_matmul_precision(precision):
        return jax.jit(fn).lower(*args).compile().as_text()


def _tf32_or_bf16_passes() -> bool:
    """Whether ``default`` rounds float32 matmuls here: TPUs, and NVIDIA GPUs from Ampere."""
    device = jax.devices()[0]
    if device.platform == "tpu":
        return True
    return device.platform == "gpu" and float(getattr(device, "compute_capability", 0)) >= 8


def test_a_none_context_in_a_thread_overrides_the_process_precision(process_precision):
    """What device_check did: its baseline programs were traced in threads inside
    ``jax.default_matmul_precision(None)``, which means ``default``, not the process's
    ``highest``. The evidence shows it, and ``set_matmul_precision`` refuses there."""
    set_matmul_precision("highest")
    x = jnp.ones((4, 8))

    def in_thread(precision):
        with jax.default_matmul_precision(precision):
            return matmul_evidence(_hlo(lambda a: a @ a.T, x))

    with ThreadPoolExecutor(1) as pool:
        inherited = matmul_evidence(pool.submit(_hlo, lambda a: a @ a.T, x).result())
        cleared, explicit = pool.map(in_thread, [None, "default"])
    assert precision_applied(inherited, "highest", False)  # a plain thread inherits it
    assert cleared["dot_precision"] == explicit["dot_precision"] == {"default": 1}
    with jax.default_matmul_precision(None), pytest.raises(OFQLError, match="overridden"):
        set_matmul_precision("highest")


def test_default_and_bf16_programs_against_highest(process_precision):
    set_matmul_precision("highest")
    agent, bf16 = tiny(), tiny("bfloat16")
    params = agent.init(jax.random.key(0)).policy_params
    obs, noise = jnp.ones((4, OBS)), jnp.ones((4, ACT))
    for precision in ("highest", "default"):
        hlo = _hlo(lambda p, o, z: agent.decide(p, {}, o, z), params, obs, noise,
                   precision=precision)  # fmt: skip
        evidence = matmul_evidence(hlo)
        assert evidence["dots"] >= 5 and precision_applied(evidence, precision, False), evidence
    evidence = matmul_evidence(_hlo(lambda p, o, z: bf16.decide(p, {}, o, z), params, obs, noise))
    assert precision_applied(evidence, "highest", True), evidence

    assert policy_difference(agent, agent, "highest") == 0.0
    default = policy_difference(agent, agent, "default")
    if _tf32_or_bf16_passes():
        assert default > 1e-5
    else:
        assert default == 0.0  # this CPU: default is float32
    assert policy_difference(bf16, agent, "highest") > 1e-5  # inputs rounded to 8 bits


def test_results_record_the_precision_the_run_compiled_at(
    hopper_dataset, tmp_path, process_precision
):
    """A run at ``default`` in a process left at ``highest`` by an earlier run: its training
    chunk's dots are ``default`` and its results.json says so."""
    from test_train import small_config

    from ofql_jax.training.experiment import Experiment

    config = small_config(num_seeds=1, num_steps=10, eval_episodes=0, checkpoint_every=10)
    config.matmul_precision = "default"
    set_matmul_precision("highest")
    experiment = Experiment(config, tmp_path / "run")
    assert matmul_precision() == "default"
    experiment.run()
    recorded = json.loads((tmp_path / "run" / "results.json").read_text())["matmul_precision"]
    chunk = experiment.setup.trainer.compile(experiment.states, experiment.setup.data, 10)
    evidence = matmul_evidence(chunk.as_text())
    assert evidence["dots"] > 10 and precision_applied(evidence, "default", False), evidence
    assert recorded == "default"

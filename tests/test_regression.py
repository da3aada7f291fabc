"""The numbers of fixed small runs are those recorded before the redesign (issue 36).

``tests/regression_runs.py`` holds the runs (every field explicit) and the fingerprint. Under
the JAX version, backend and CPU model that recorded a baseline the check is bit for bit;
elsewhere (CI may install a newer JAX; a machine may have another CPU) it compares with the
nearest recorded entry (the same JAX version if there is one, else the newest) at a
tolerance and says so in the assertion, since XLA's numerics change between versions and
its compiled kernels between CPUs. ``python tests/regression_runs.py --record`` adds this
machine's entry.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import regression_runs as rr


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regression")
    rr.make_dataset(tmp / "minari")
    return tmp, rr.environment(tmp / "minari", tmp / "cache")


def expected() -> tuple[dict[str, Any], bool]:
    """The baseline of this JAX version, backend and CPU (exact), else the nearest (approx):
    one of the same JAX version and backend, else the newest recorded one."""
    stored = json.loads(rr.BASELINE.read_text())
    key = rr.baseline_key()
    if key in stored:
        return stored[key], True
    same_jax = rr.baseline_key(with_cpu=False)
    near = sorted(k for k in stored if k == same_jax or k.startswith(f"{same_jax} on "))
    return stored[(near or sorted(stored))[-1]], False


# Scalars added after the first baselines were recorded (new diagnostics, tested on their own):
# a run may log them beside an older entry's; every recorded name and number is still checked.
ADDED_AFTER_BASELINE = {"diag/two_step_mse_to_data", "diag/two_step_saturation"}


def assert_same(got: Any, want: Any, exact: bool, where: str = "") -> None:
    if isinstance(want, dict):
        added = ADDED_AFTER_BASELINE  # in entries recorded since, and then checked too
        assert sorted(set(got) - added) == sorted(set(want) - added), where
        for k in want:
            if k in got or k not in added:  # a run saved by older code logged no added ones
                assert_same(got[k], want[k], exact, f"{where}/{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, exact, f"{where}[{i}]")
    elif isinstance(want, float) and not exact:
        assert math.isclose(got, want, rel_tol=1e-3, abs_tol=1e-4), (where, got, want)
    elif where.endswith("checkpoint_sha256") and not exact:
        return  # bytes cannot match across XLA versions; the scalars above stand for them
    else:
        assert got == want, (where, got, want)


@pytest.mark.parametrize("name", list(rr.RUNS))
def test_fixed_runs_give_the_recorded_numbers(world, name):
    tmp, env = world
    rr.run(name, tmp / name, env)
    want, exact = expected()
    assert_same(rr.fingerprint(tmp / name), want[name], exact, f"{rr.baseline_key()} {name}")


def test_a_run_saved_by_the_old_code_loads_and_resumes_to_the_recorded_numbers(world):
    from ofql_jax import load_run

    tmp, env = world
    workdir = tmp / "saved_run"
    shutil.copytree(rr.SAVED_RUN, workdir)
    want, exact = expected()
    # Bit for bit only under the JAX version and CPU that saved it (its first 100 steps).
    made = json.loads((workdir / "results.json").read_text())
    made_by = f"jax {made['versions']['jax']} cpu on {made.get('cpu')}"
    exact = exact and rr.baseline_key() == made_by
    # Loaded as an artefact, it acts as it did when it was saved.
    saved = json.loads((workdir / "results.json").read_text())["evaluations"][-1]
    run = load_run(workdir)
    assert run.step == 100 and run.seeds == [0, 1]
    got = run.evaluate(seeds=[1])
    assert_same(got["variants"]["N=4"]["returns"], [saved["returns"][1]], exact, "N=4")
    assert_same(got["variants"]["N=1"]["returns"], [saved["returns_one_step"][1]], exact, "N=1")
    # Resumed to step 200, it reaches the uninterrupted run's fingerprint.
    rr.run("ofql", workdir, env)
    assert_same(rr.fingerprint(workdir), want["ofql"], exact, "saved_run resumed")


def test_the_regression_runs_fix_every_agent_field():
    """A field added to an agent must be added to the regression runs (or defaults move them)."""
    from ofql_jax.agents import get_agent_spec

    for name, (algorithm, agent, _) in rr.RUNS.items():
        fields = set(get_agent_spec(algorithm).default_config())
        assert fields <= set(agent), (name, sorted(fields - set(agent)))
    assert Path(rr.SAVED_RUN / "config.json").exists()

"""Shared pytest fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Let tests import helper modules that live next to them (tests/minari_factory.py).
sys.path.insert(0, os.path.dirname(__file__))

# Tests compile hundreds of tiny programs and run each for a few steps: XLA's backend at
# optimisation level 0 compiles them about twice as fast (measured: a cold 3-seed
# Experiment 34 s -> 16 s) and runs them a little slower. Inherited by the CLI runs tests
# start. Tests that check the shipped numerics bit for bit (tests/test_reliability.py's
# kills) run their processes with the default level: see TEST_XLA_FLAGS there.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"
if TEST_XLA_FLAGS not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()

# One JAX compilation cache for the whole test session (and the CLI runs it starts, which
# inherit the variable): the many tiny programs that tests compile again and again are
# compiled once. Set before JAX is imported; never the user's cache.
# OFQL_JAX_CACHE points the CLI's "auto" cache paths (ofql_jax.core.paths) there too.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="ofql_jax_test_cache_")
    atexit.register(shutil.rmtree, _cache, True)  # the session's own; workers inherit the path
    os.environ["OFQL_JAX_CACHE"] = _cache
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(_cache, "xla")


# --- data fixtures (ofql_jax.data) -----------------------------------------------------------


@pytest.fixture
def minari_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty MINARI_DATASETS_PATH for one test (never the user's ~/.minari)."""
    path = tmp_path / "minari_datasets"
    path.mkdir()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(path))
    return path


# --- end of data fixtures --------------------------------------------------------------------


# --- training fixtures ---------------------------------------------------------------------------

DATASET = "test/hopper/random-v0"  # the small Hopper dataset most training tests use


@pytest.fixture
def hopper_dataset(minari_dir: Path) -> Path:
    """A 400-step random Hopper-v5 dataset (40-step episodes) with D4RL reference scores."""
    from minari_factory import make_hopper_dataset

    make_hopper_dataset(
        DATASET, num_steps=400, max_episode_steps=40, ref_scores=(-20.272305, 3234.3)
    )
    return minari_dir

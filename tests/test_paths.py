"""Cache paths outside the workdir honour OFQL_JAX_CACHE and XDG_CACHE_HOME."""

from __future__ import annotations

from pathlib import Path

import jax

from ofql_jax.core.paths import cache_path, cache_root
from ofql_jax.training.runtime import enable_compilation_cache


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("OFQL_JAX_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "ofql_jax"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "ofql_jax"
    monkeypatch.setenv("OFQL_JAX_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    assert cache_path("auto", "behavior") == tmp_path / "mine" / "behavior"
    assert cache_path("", "xla") == ""
    assert cache_path("~/elsewhere", "xla") == Path.home() / "elsewhere"


def test_auto_compilation_cache_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("OFQL_JAX_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    before = jax.config.jax_compilation_cache_dir
    try:
        enable_compilation_cache("auto")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "ofql_jax" / "xla")
        enable_compilation_cache("")  # off: left as it was
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "ofql_jax" / "xla")
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def test_the_default_configs_use_the_cache_root():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    import d4rl

    c = d4rl.get_config("hopper-medium-replay")
    assert c.compilation_cache_dir == "auto" and c.behavior_dir == "auto"

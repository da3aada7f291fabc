"""Where ofql-jax keeps files outside a run's workdir: one cache root, overridable.

The cache root is ``$OFQL_JAX_CACHE`` when set, else ``$XDG_CACHE_HOME/ofql_jax``, else
``~/.cache/ofql_jax`` (the XDG base directory default). Config fields that hold a cache
path (``compilation_cache_dir``, ``behavior_dir``) default to ``"auto"``: a sub-directory
of the root. Minari's datasets (downloads and this project's replicas) live where Minari
keeps them: ``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``.

Example:
    >>> import os
    >>> os.environ["OFQL_JAX_CACHE"] = "/scratch/ofql"
    >>> str(cache_path("auto", "xla")), cache_path("", "xla"), str(cache_path("~/x", "xla"))[-2:]
    ('/scratch/ofql/xla', '', '/x')
    >>> del os.environ["OFQL_JAX_CACHE"]
"""

from __future__ import annotations

import os
from pathlib import Path

AUTO = "auto"


def cache_root() -> Path:
    """``$OFQL_JAX_CACHE``, else ``$XDG_CACHE_HOME/ofql_jax``, else ``~/.cache/ofql_jax``."""
    if os.environ.get("OFQL_JAX_CACHE"):
        return Path(os.environ["OFQL_JAX_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ofql_jax"


def cache_path(value: str | Path, name: str) -> Path | str:
    """A cache path field's directory: ``"auto"`` -> ``cache_root() / name``; ``""`` stays
    ``""`` (off, where the field allows it); anything else is the path itself (``~`` expanded)."""
    if str(value) == AUTO:
        return cache_root() / name
    if str(value) == "":
        return ""
    return Path(value).expanduser()

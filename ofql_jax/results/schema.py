"""The results schema: what ``results.json`` holds, its summaries and provenance, and reading it.

One training run (``ofql_jax.training.experiment.Experiment``) writes ``<workdir>/results.json``;
the
suite runner and the report read it back with ``load_results``. Its keys:

- what was trained: ``algorithm``, ``task``, ``dataset_id``, ``data_source`` (official |
  replica | ...), ``data_source_reason``, ``dataset_sha256``, ``env_id`` (the evaluation
  environment, e.g. ``Hopper-v5``), ``acting`` (what acting needs without the dataset:
  env
  spec, spaces, score reference; ``ofql_jax.evaluation.acting``), ``num_seeds``, ``seeds``,
  ``steps``,
  ``protocol``,
  ``protocol_settings``, ``eval_settings``, ``score_normalization``, ``config``;
- scores: ``evaluations`` (one entry per evaluation: ``step``, ``candidates``, ``scores``
  and ``returns`` per member, ``scores_one_step`` (N = 1), ``scores_<option>`` for an
  agent's ``eval_options`` such as DQL's ``ddim1``, and the ``diagnostics`` then), and
  the final summaries ``final_scores<suffix>``, ``mean<suffix>``, ``std<suffix>`` (over the
  members that did not diverge; ``None`` when none is left);
- a sweep adds ``members`` (label, seed, setting; setting-major) and ``settings`` (per
  setting: ``hparams``, ``name`` and its own summaries);
- health: ``diverged_seeds`` (non-finite) and ``value_diverged_seeds`` (Q left the dataset's
  bounds), each ``{label: step}``, ``value_bounds``, ``data_saturation``, ``diagnostics``;
- cost and provenance: ``updates_per_second`` (the median over this process's training
  chunks, so a paused chunk counts once), ``seed_updates_per_second``,
  ``compile_seconds``, ``compilation_cache_hits`` (programs this process loaded from the
  persistent compilation cache for the run), ``matmul_precision`` (what the run's programs
  were compiled at: ``config.matmul_precision``, set process-wide before anything compiles
  by ``ofql_jax.training.runtime.set_matmul_precision`` and read back from JAX; highest = true
  float32; default = TF32 on recent NVIDIA GPUs, float32 on CPUs), ``versions``,
  ``backend``, ``device_count``, ``devices``.

Example:
    >>> summarize({"scores": [10.0, None, 30.0]}, [0, 1, 2], ["0", "1", "2"], {"1": 5}, [""])
    {'final_scores': [10.0, None, 30.0], 'mean': 20.0, 'std': 10.0}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ofql_jax.core.errors import OFQLError
from ofql_jax.core.types import Transitions

RESULTS_FILE = "results.json"


def finite_or_none(values: Iterable[float]) -> list[float | None]:
    """JSON-safe floats: non-finite values become ``None``."""
    return [float(v) if np.isfinite(v) else None for v in values]


def mean_std(scores: np.ndarray, alive: np.ndarray) -> tuple[float | None, float | None]:
    """Mean and (population) std over the members marked alive; ``(None, None)`` if none."""
    kept = scores[alive]
    return (float(kept.mean()), float(kept.std())) if kept.size else (None, None)


def summarize(
    final: Mapping[str, Any],
    members: Sequence[int],
    labels: Sequence[str],
    diverged: Mapping[str, int],
    suffixes: Sequence[str],
) -> dict[str, Any]:
    """``final_scores<suffix>``, ``mean<suffix>``, ``std<suffix>`` of the chosen members.

    ``final`` is the last evaluation entry; ``labels[i]`` names member ``i``; members in
    ``diverged`` (non-finite) and members without a score are left out of mean and std.
    """
    out: dict[str, Any] = {"final_scores": [], "mean": None, "std": None}
    for suffix in dict.fromkeys(["", "_one_step", *suffixes]):
        if f"scores{suffix}" not in final:
            continue
        picked = [final[f"scores{suffix}"][i] for i in members]
        scores = np.array([np.nan if v is None else v for v in picked], np.float64)
        alive = np.array([labels[i] not in diverged for i in members], bool)
        mean, std = mean_std(scores, alive & np.isfinite(scores))
        out[f"final_scores{suffix}"] = picked
        out[f"mean{suffix}"], out[f"std{suffix}"] = mean, std
    return out


PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "minari", "gymnasium",
            "gymnasium-robotics", "mujoco", "numpy")  # fmt: skip


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """The installed version of each package (``None`` where it is not installed)."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance() -> dict[str, Any]:
    """Versions, backend and device count, so a result can be tied to what produced it."""
    return {
        "versions": package_versions(),
        "backend": jax.default_backend(),
        "device_count": jax.device_count(),
        "devices": [str(d) for d in jax.devices()],
    }


def transitions_hash(transitions: Transitions) -> str:
    """SHA-256 of the dataset exactly as trained on (after flattening, scaling, reward tune)."""
    digest = hashlib.sha256()
    for name in ("observations", "actions", "rewards", "next_observations", "dones"):
        array = np.ascontiguousarray(getattr(transitions, name))
        digest.update(f"{name}{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def load_results(workdir: str | Path) -> dict[str, Any] | None:
    """``<workdir>/results.json`` as a dict; ``None`` when the run has not finished.

    Raises ``OFQLError`` for a file that exists but cannot be read as JSON.
    """
    path = Path(workdir) / RESULTS_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise OFQLError(
            f"{path} cannot be read as JSON ({err}): re-run the training command for "
            f"{Path(workdir)} to rewrite it."
        ) from err


def _pick(value: Any, index: Sequence[int], width: int) -> Any:
    """``value`` restricted to the members in ``index`` when it is a per-member list."""
    if isinstance(value, list) and len(value) == width:
        return [value[i] for i in index]
    if isinstance(value, dict):
        return {k: _pick(v, index, width) for k, v in value.items()}
    return value


def select_setting(results: Mapping[str, Any], setting: int) -> dict[str, Any]:
    """The results of one setting of a sweep, shaped like an unswept run's.

    Per-member lists (scores, returns, diagnostics) keep only that setting's members,
    its summaries become the top-level ``final_scores``/``mean``/``std``, member labels
    (``eta=0.1/seed_3``) become seed labels (``3``), and ``hparams``/``setting`` say which
    setting it was. Used by the suite to give each cell of a merged sweep its own results.
    """
    members = results["members"]
    index = [i for i, m in enumerate(members) if m["setting"] == setting]
    width = len(members)
    summary = results["settings"][setting]
    seed_of = {members[i]["label"]: str(members[i]["seed"]) for i in index}
    out = {k: v for k, v in results.items() if k not in ("members", "settings")}
    out["evaluations"] = [_pick(entry, index, width) for entry in results.get("evaluations", [])]
    out["diagnostics"] = _pick(results.get("diagnostics", {}), index, width)
    for key in ("diverged_seeds", "value_diverged_seeds"):
        flagged = results.get(key, {})
        out[key] = {seed_of[label]: step for label, step in flagged.items() if label in seed_of}
    out.update({k: v for k, v in summary.items() if k not in ("hparams", "name")})
    out["hparams"], out["setting"] = summary["hparams"], summary["name"]
    return out

"""The results schema: what ``results.json`` holds, written and read in one place.

A training run (``ofql_jax.training.experiment``) writes ``<workdir>/results.json`` from a
``RunResults`` (its fields, ``provenance()``, the final summaries of ``summarize`` and the
``evaluations``, each an ``evaluation_entry``; docs/running.md lists the keys for users);
``load_results`` reads it back in the current layout for ``load_run``, the suite and the report.
``schema_version`` says which layout a file has: absent = 1, files written before the field
existed, which hold the same keys.

Example:
    >>> summarize({"scores": [10.0, None, 30.0]}, [0, 1, 2], ["0", "1", "2"], {"1": 5}, [""])
    {'final_scores': [10.0, None, 30.0], 'mean': 20.0, 'std': 10.0}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from ofql_jax.core.errors import OFQLError
from ofql_jax.core.types import Transitions
from ofql_jax.core.versions import cpu_model, package_versions
from ofql_jax.results.writers import write_json_atomic

RESULTS_FILE = "results.json"
ONE_CANDIDATE = "_one_candidate"  # suffix of ``eval_one_candidate``'s scores
SCHEMA_VERSION = 2


@dataclasses.dataclass(frozen=True)
class EvalVariant:
    """One way a run's members are evaluated, and where its numbers go in the results.

    ``name`` labels it for people (``N=50``, ``N=1``, an agent's option such as ``ddim1``);
    ``suffix`` ends its keys in an evaluation entry and the summaries (``scores<suffix>``,
    ``eval/score<suffix>``); ``overrides`` update the protocol's sample settings.

    Example:
        >>> EvalVariant("ddim1", "_ddim1", 50, {"sampling_steps": 1}).suffix
        '_ddim1'
    """

    name: str
    suffix: str
    candidates: int
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def eval_variants(
    config: ml_collections.ConfigDict,
    has_critic: bool = True,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[EvalVariant]:
    """The evaluations of a run, the protocol's first: its N candidates, the plain one-step
    policy (N = 1, noise x 1, same actor), with ``eval_one_candidate`` one candidate drawn
    as the N are (N = 1 at the protocol's noise: what the critics' choice starts from) and
    an agent's ``extra`` variants (name -> sample overrides, e.g. DQL's ``ddim1``) with N
    candidates. Agents without a critic are evaluated with N = 1 only.

    Example:
        >>> c = ml_collections.ConfigDict(dict(eval_candidates=50, eval_one_step=True))
        >>> [(v.name, v.suffix, v.candidates) for v in eval_variants(c)]
        [('N=50', '', 50), ('N=1', '_one_step', 1)]
        >>> c.eval_one_candidate = True  # one candidate at the protocol's noise, no choice
        >>> [(v.name, v.suffix, v.candidates, v.overrides) for v in eval_variants(c)][-1]
        ('one candidate', '_one_candidate', 1, {})
    """
    extra = extra or {}
    if not has_critic:  # nothing to score candidates with: the policy's own action
        one = {"noise_temperature": 1.0}
        return [EvalVariant("N=1", "", 1, one)] + [
            EvalVariant(name, f"_{name}", 1, {**one, **o}) for name, o in extra.items()
        ]
    n = config.eval_candidates
    variants = [EvalVariant(f"N={n}", "", n, {})]
    if config.eval_one_step and n != 1:
        variants.append(EvalVariant("N=1", "_one_step", 1, {"noise_temperature": 1.0}))
    if config.get("eval_one_candidate", False) and n != 1:
        variants.append(EvalVariant("one candidate", ONE_CANDIDATE, 1, {}))
    variants += [EvalVariant(name, f"_{name}", n, dict(o)) for name, o in extra.items()]
    return variants


def finite_or_none(values: Iterable[float]) -> list[float | None]:
    """JSON-safe floats: non-finite values become ``None``."""
    return [float(v) if np.isfinite(v) else None for v in values]


def summarize(
    final: Mapping[str, Any],
    members: Sequence[int],
    labels: Sequence[str],
    diverged: Mapping[str, int],
    suffixes: Sequence[str],
) -> dict[str, Any]:
    """``final_scores<suffix>``, ``mean<suffix>``, ``std<suffix>`` of the chosen members.

    ``final`` is the last evaluation entry; ``labels[i]`` names member ``i``; members in
    ``diverged`` (non-finite) and members without a score are left out of mean and std;
    a suffix that ``final`` lacks is skipped.
    """
    out: dict[str, Any] = {"final_scores": [], "mean": None, "std": None}
    for suffix in dict.fromkeys(suffixes):
        if f"scores{suffix}" not in final:
            continue
        picked = [final[f"scores{suffix}"][i] for i in members]
        scores = np.array([np.nan if v is None else v for v in picked], np.float64)
        alive = np.array([labels[i] not in diverged for i in members], bool)
        kept = scores[alive & np.isfinite(scores)]  # population std; None when none is left
        out[f"final_scores{suffix}"] = picked
        out[f"mean{suffix}"] = float(kept.mean()) if kept.size else None
        out[f"std{suffix}"] = float(kept.std()) if kept.size else None
    return out


def evaluation_entry(
    step: int,
    diagnostics: Mapping[str, np.ndarray],
    variants: Sequence[EvalVariant],
    scores: Mapping[str, np.ndarray],
    returns: Mapping[str, np.ndarray],
) -> dict[str, Any]:
    """One element of ``evaluations``: per-member mean ``scores`` and ``returns`` of each
    variant (by name), and the ``diagnostics`` of that step when there are any."""
    entry: dict[str, Any] = {"step": step}
    if diagnostics:
        entry["diagnostics"] = {k: finite_or_none(v) for k, v in diagnostics.items()}
    entry["candidates"] = variants[0].candidates
    for v in variants:
        entry[f"scores{v.suffix}"] = finite_or_none(scores[v.name])
        entry[f"returns{v.suffix}"] = finite_or_none(returns[v.name])
    return entry


def provenance() -> dict[str, Any]:
    """Versions, CPU, backend and devices, so a result can be tied to what produced it."""
    devices = jax.devices()
    return {
        "versions": package_versions(),
        "cpu": cpu_model(),
        "backend": jax.default_backend(),
        "device_count": jax.device_count(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,  # e.g. "NVIDIA H200"; on CPU "cpu"
    }


def transitions_hash(transitions: Transitions) -> str:
    """SHA-256 of the dataset exactly as trained on (after flattening, scaling, reward tune)."""
    digest = hashlib.sha256()
    for name in ("observations", "actions", "rewards", "next_observations", "dones"):
        array = np.ascontiguousarray(getattr(transitions, name))
        digest.update(f"{name}{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class RunResults:
    """``results.json`` field by field; ``to_json`` lays it out as the file has it."""

    algorithm: str
    task: str
    dataset_id: str
    data_source: str
    data_source_reason: str
    dataset_sha256: str
    env_id: str | None  # the evaluation environment, e.g. Hopper-v5
    acting: dict[str, Any]  # what acting needs without the dataset (evaluation.acting)
    num_seeds: int
    seeds: list[int]
    steps: int
    score_normalization: str
    protocol: str
    protocol_settings: dict[str, Any]
    eval_candidates: int
    eval_settings: dict[str, Any]
    diverged_seeds: dict[str, int]
    value_diverged_seeds: dict[str, int]
    value_bounds: dict[str, float]
    data_saturation: float
    diagnostics: dict[str, list[float | None]]
    updates_per_second: float | None  # median over the chunks: a paused one counts once
    seed_updates_per_second: float | None
    compile_seconds: float
    compilation_cache_hits: int  # programs loaded from the persistent compilation cache
    matmul_precision: str  # read back from JAX: highest = float32, default = TF32 on new GPUs
    summaries: dict[str, Any]  # final_scores<suffix>, mean<suffix>, std<suffix> of all members
    evaluations: list[dict[str, Any]]
    config: dict[str, Any]
    members: list[dict[str, Any]] | None = None  # a sweep's members, setting-major
    settings: list[dict[str, Any]] | None = None  # a sweep's settings with their summaries
    # The multi-dataset program the run trained in (its tasks and members; its
    # seed_updates_per_second counts all of them), None for a program of its own.
    program: dict[str, Any] | None = None
    provenance: dict[str, Any] = dataclasses.field(default_factory=lambda: provenance())

    _NESTED = ("summaries", "evaluations", "config", "members", "settings", "program", "provenance")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for field in dataclasses.fields(self):
            if field.name not in self._NESTED:
                out[field.name] = getattr(self, field.name)
        out.update(self.provenance)
        out.update(self.summaries)
        if self.settings is not None:  # a sweep: a mean across settings means nothing
            out["mean"] = out["std"] = None
            out["members"], out["settings"] = self.members, self.settings
        if self.program is not None:
            out["program"] = self.program
        out.update(evaluations=self.evaluations, config=self.config)
        return out


def write_results(workdir: str | Path, results: RunResults) -> None:
    """Write ``<workdir>/results.json`` (atomically: a crash never leaves half a file)."""
    write_json_atomic(Path(workdir) / RESULTS_FILE, results.to_json())


def load_results(workdir: str | Path) -> dict[str, Any] | None:
    """``<workdir>/results.json`` in the current layout; ``None`` when the run has not finished.
    Raises ``OFQLError`` for a file that is not JSON, or one written by a newer ofql-jax."""
    path = Path(workdir) / RESULTS_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise OFQLError(
            f"{path} cannot be read as JSON ({err}): re-run the training command for "
            f"{Path(workdir)} to rewrite it."
        ) from err
    version = raw.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise OFQLError(
            f"{path} has results schema version {version!r}, newer than this ofql-jax reads "
            f"({SCHEMA_VERSION}): read it with the ofql-jax version that wrote it."
        )
    raw.pop("schema_version", None)  # version 1 holds the same keys, only lacks this one
    return {"schema_version": SCHEMA_VERSION, **raw}


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

"""The behaviour policies shipped with the package (``ofql_jax/behavior/policies/*.npz``).

Each file holds a SAC actor (tanh-Gaussian, 256x256 ReLU) and JSON metadata: the
env, the level, the SAC step and seed it was taken at, its 100-episode returns and
the command that trained it. ``python -m ofql_jax.behavior.export`` writes them.

Example:
    >>> policy = load_policy("hopper", "medium")  # doctest: +SKIP
    >>> policy.act(np.zeros((4, 11), np.float32), jax.random.key(0), stochastic=True).shape
    (4, 3)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from ofql_jax.behavior.sac import default_config, make_sac
from ofql_jax.behavior.train_sac import load_actor, load_actor_meta
from ofql_jax.core.errors import OFQLError

POLICY_DIR = Path(__file__).parent / "policies"

# The D4RL locomotion envs, as Gymnasium MuJoCo v5.
ENV_IDS = {"hopper": "Hopper-v5", "halfcheetah": "HalfCheetah-v5", "walker2d": "Walker2d-v5"}

# D4RL's medium level: about a third of expert. The bands (v5 returns) the issue asks for.
MEDIUM_BANDS = {
    "hopper": (1000.0, 2000.0),
    "halfcheetah": (4000.0, 5500.0),
    "walker2d": (2500.0, 3500.0),
}

# D4RL's expert level on v5: the least deterministic 100-episode mean return an expert
# policy must reach (D4RL's experts returned 3,234, 12,135 and 4,592).
EXPERT_LEVELS = {"hopper": 3000.0, "halfcheetah": 10000.0, "walker2d": 4000.0}

POLICY_LEVELS = ("medium", "expert")


def policy_path(env: str, level: str) -> Path:
    return POLICY_DIR / f"{env}-{level}.npz"


@dataclasses.dataclass
class BehaviorPolicy:
    """A loaded SAC actor; ``act`` is one jitted call for a batch of observations."""

    env: str  # "hopper" | "halfcheetah" | "walker2d"
    level: str  # "medium" | "expert"
    params: dict
    meta: dict[str, Any]

    def __post_init__(self):
        sac = make_sac(self.meta["obs_dim"], self.meta["act_dim"], sac_config_of(self.meta))
        self._act = jax.jit(sac.act, static_argnums=3)

    def act(self, obs: np.ndarray, key: jax.Array, stochastic: bool = True) -> np.ndarray:
        """Actions in [-1, 1] for ``obs`` ``[n, obs_dim]`` (sampled, or the mean action)."""
        return np.asarray(self._act(self.params, obs, key, stochastic))


def load_policy(env: str, level: str) -> BehaviorPolicy:
    """The shipped ``level`` policy of ``env``, or an OFQLError naming what exists."""
    path = policy_path(env, level)
    if not path.exists():
        have = sorted(p.stem for p in POLICY_DIR.glob("*.npz"))
        raise OFQLError(
            f"No shipped behaviour policy {env}-{level} (looked for {path}); shipped: "
            f"{', '.join(have) or 'none'}. Train one with `python -m ofql_jax.behavior.train_sac "
            f"--env={ENV_IDS.get(env, '<env>')} --workdir=DIR` and export it with "
            f"`python -m ofql_jax.behavior.export --workdir=DIR --level={level}`."
        )
    params, meta = load_actor(path)
    return BehaviorPolicy(env=env, level=level, params=params, meta=meta)


def policy_meta(env: str, level: str) -> dict[str, Any]:
    """The shipped policy's metadata alone (no parameters loaded); {} if it is not shipped."""
    path = policy_path(env, level)
    return load_actor_meta(path) if path.exists() else {}


def policy_version(env: str, level: str) -> int:
    """The shipped policy's version: 1 for the first export, +1 whenever its parameters change.

    Replicas record the versions they were built from (``ofql_jax.behavior.replica``), so a
    replica of an older policy is detected instead of silently reused.
    """
    return int(policy_meta(env, level).get("version", 1))


def params_digest(params: dict) -> str:
    """SHA-256 of an actor's parameters (names, shapes, dtypes and values), for versioning."""
    import hashlib

    digest = hashlib.sha256()
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    for path, leaf in sorted(leaves, key=lambda kv: jax.tree_util.keystr(kv[0])):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{jax.tree_util.keystr(path)}:{array.dtype}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def shipped() -> list[dict[str, Any]]:
    """Metadata of every shipped policy (for tables and tests)."""
    return [load_actor_meta(p) for p in sorted(POLICY_DIR.glob("*.npz"))]


def sac_config_of(meta: dict[str, Any]) -> ml_collections.ConfigDict:
    config = default_config()
    config.hidden_dims = tuple(meta["hidden_dims"])
    return config

"""What acting in a run's environment needs, recorded as JSON, and a policy in the env's units.

A trained agent maps flat float32 observations to actions in [-1, 1]. Acting in the real
environment also needs its id and kwargs, its observation space (Dict observations are
flattened, keys sorted), its action space (the affine map back to ``[low, high]``) and the
score normalisation. ``acting_record`` writes those as JSON (into every checkpoint's
metadata and ``results.json``), ``info_from_record`` rebuilds the ``DatasetInfo`` that
evaluation uses from it, so a finished run is evaluated without reading its dataset.

Example:
    >>> record = acting_record(info, ref=(-20.27, 3234.3), ref_source="dataset")  # doctest: +SKIP
    >>> info_from_record(record).make_env()  # doctest: +SKIP
    <TimeLimit<OrderEnforcing<PassiveEnvChecker<HopperEnv<Hopper-v5>>>>>
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec
from minari.serialization import deserialize_space, serialize_space

from ofql_jax.core.errors import OFQLError
from ofql_jax.data.minari_data import ActionScaler, DatasetInfo, flatten_observation
from ofql_jax.evaluation.policy import Policy

RECORD_VERSION = 1  # bump when the record's keys change meaning


def _spec_json(spec: EnvSpec | None) -> str | None:
    """The env spec as Gymnasium's JSON, ``None`` without a spec or when its kwargs are not
    JSON (e.g. a callable): such a run then cannot build its environment from the record."""
    if spec is None:
        return None
    try:
        return spec.to_json()
    except (ValueError, TypeError):
        return None


def acting_record(
    info: DatasetInfo, ref: tuple[float, float] | None, ref_source: str
) -> dict[str, Any]:
    """The JSON record of what acting and scoring need (see the module docstring)."""
    return {
        "version": RECORD_VERSION,
        "dataset_ids": list(info.dataset_ids),
        "env_id": info.env_id,
        "env_spec": _spec_json(info.env_spec),
        "obs_dim": info.obs_dim,
        "act_dim": info.act_dim,
        "observation_space": serialize_space(info.observation_space),
        "action_space": serialize_space(info.action_space),
        "score_reference": list(ref) if ref is not None else None,
        "score_normalization": ref_source,
        "requirements": list(info.requirements),
    }


def info_from_record(record: dict[str, Any]) -> DatasetInfo:
    """The ``DatasetInfo`` evaluation uses, rebuilt from ``acting_record`` (no transitions:
    ``num_transitions`` and ``num_episodes`` are 0, ``episode_lengths`` is ``None``)."""
    if record.get("version") != RECORD_VERSION:
        raise OFQLError(
            f"This run's acting record has version {record.get('version')!r}, this ofql-jax "
            f"reads version {RECORD_VERSION}: load it with the ofql-jax version that trained it."
        )
    action_space = deserialize_space(record["action_space"])
    spec = EnvSpec.from_json(record["env_spec"]) if record.get("env_spec") else None
    ref = record.get("score_reference")
    return DatasetInfo(
        dataset_ids=tuple(record["dataset_ids"]),
        num_transitions=0,
        num_episodes=0,
        obs_dim=int(record["obs_dim"]),
        act_dim=int(record["act_dim"]),
        observation_space=deserialize_space(record["observation_space"]),
        action_space=action_space,
        scaler=ActionScaler.from_space(action_space),
        ref_min_score=None if ref is None else float(ref[0]),
        ref_max_score=None if ref is None else float(ref[1]),
        env_spec=spec,
        requirements=tuple(record.get("requirements", ())),
    )


def _batch_dims(obs: Any, space: gym.Space) -> int:
    """How many leading batch axes ``obs`` has beyond one observation of ``space``."""
    while isinstance(space, gym.spaces.Dict):
        key = sorted(space.spaces)[0]
        obs, space = obs[key], space.spaces[key]
    return np.ndim(obs) - len(space.shape)


class EnvPolicy:
    """A ``Policy`` in the environment's own units: raw observations in (a Box array or a
    Dict, one or a batch), actions out in the action space's ``[low, high]``.

    Example:
        >>> policy = EnvPolicy(Policy(agent, state), info)  # doctest: +SKIP
        >>> env.step(policy(obs))  # doctest: +SKIP
    """

    def __init__(self, policy: Policy, info: DatasetInfo):
        self.policy, self.info = policy, info

    def __call__(self, observation: Any) -> np.ndarray:
        space = self.info.observation_space
        flat = flatten_observation(observation, space, _batch_dims(observation, space))
        return self.info.scaler.from_unit(self.policy(flat))

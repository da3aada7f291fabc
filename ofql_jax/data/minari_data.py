"""Load Minari datasets into flat float32 ``Transitions`` for offline RL.

The pipeline is: ``ensure_local`` (never hang on a dead network) -> ``minari.load_dataset``
-> ``check_spaces`` (continuous Box actions, vector observations) -> ``episodes_to_transitions``
(flatten dict observations, scale actions to [-1, 1], tune rewards, done = termination only).
Everything stays in numpy; the training code moves arrays to the device.

Example:
    >>> transitions, info = load_minari("mujoco/hopper/medium-v0")  # doctest: +SKIP
    >>> transitions.observations.shape == (info.num_transitions, info.obs_dim)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from ofql_jax.core.errors import OFQLError
from ofql_jax.core.types import Transitions
from ofql_jax.data import robotics_compat
from ofql_jax.data.envs import make_env

# The Minari remote (Hugging Face hub). Probed with a bounded TCP connect before any download,
# because minari's own client retries for ~25 s when offline.
MINARI_SERVER: tuple[str, int] = ("huggingface.co", 443)

REWARD_TUNES = ("none", "antmaze")

# Actions may exceed the declared bounds by this fraction of (high - low) before we refuse.
ACTION_BOUND_TOLERANCE = 1e-4


# --------------------------------------------------------------------------------------------
# Observations
# --------------------------------------------------------------------------------------------


def flatten_observation(obs: Any, space: gym.Space, batch_dims: int = 0) -> np.ndarray:
    """Flatten a Box or (nested) Dict observation into one float32 vector per item.

    Order: a Box leaf is raveled (C order); a Dict is flattened recursively with its keys in
    SORTED (alphabetical) order and the pieces concatenated. AntMaze's
    ``{"observation", "achieved_goal", "desired_goal"}`` thus becomes
    ``[achieved_goal, desired_goal, observation]``.

    ``batch_dims`` leading axes are kept: 0 for one env observation, 1 for an episode's
    stacked observations as Minari returns them (a dict of arrays with a time axis).

    Example:
        >>> box = gym.spaces.Box(-1, 1, (2,))
        >>> space = gym.spaces.Dict({"b": box, "a": gym.spaces.Box(-1, 1, (1,))})
        >>> flatten_observation({"b": np.array([1.0, 2.0]), "a": np.array([0.0])}, space)
        array([0., 1., 2.], dtype=float32)
        >>> episode = {"b": np.ones((5, 2)), "a": np.zeros((5, 1))}
        >>> flatten_observation(episode, space, batch_dims=1).shape
        (5, 3)
    """
    if isinstance(space, gym.spaces.Dict):
        if not isinstance(obs, Mapping):
            raise OFQLError(
                f"An observation of type {type(obs).__name__} does not match its Dict space "
                f"{space}: the dataset looks corrupt, so re-download it with `minari download`."
            )
        parts = [flatten_observation(obs[key], space[key], batch_dims) for key in sorted(space)]
        return np.concatenate(parts, axis=-1, dtype=np.float32)
    if isinstance(space, gym.spaces.Box):
        arr = np.asarray(obs)
        if arr.shape[batch_dims:] != space.shape:
            raise OFQLError(
                f"An observation of shape {arr.shape} does not match its space {space} "
                f"(with {batch_dims} batch axes): the dataset looks corrupt, so re-download it "
                "with `minari download`."
            )
        return arr.reshape(arr.shape[:batch_dims] + (-1,)).astype(np.float32, copy=False)
    raise OFQLError(
        f"Observation space {space} is neither a Box nor a Dict: OFQL needs vector "
        "observations, so choose another dataset with --config.dataset_id."
    )


def observation_dim(space: gym.Space) -> int:
    """Length of ``flatten_observation``'s output for one observation of ``space``.

    Example:
        >>> space = gym.spaces.Dict({"a": gym.spaces.Box(0, 1, (2,)), "b": gym.spaces.Box(0, 1)})
        >>> observation_dim(space)
        3
    """
    if isinstance(space, gym.spaces.Dict):
        return sum(observation_dim(sub) for sub in space.values())
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape, dtype=np.int64))
    raise OFQLError(
        f"Observation space {space} is neither a Box nor a Dict: OFQL needs vector "
        "observations, so choose another dataset with --config.dataset_id."
    )


# --------------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class ActionScaler:
    """Affine map between an action Box ``[low, high]`` and the agent's ``[-1, 1]``.

    Exact identity (the input is returned untouched) when the bounds already are -1 and 1, so
    standard MuJoCo/AntMaze datasets see no float rounding. Compared by identity (eq=False)
    because numpy fields make dataclass equality ambiguous.

    Example:
        >>> s = ActionScaler(low=np.array([-3.0], np.float32), high=np.array([3.0], np.float32))
        >>> s.to_unit(np.array([1.5], np.float32)), s.from_unit(np.array([-1.0], np.float32))
        (array([0.5], dtype=float32), array([-3.], dtype=float32))
    """

    low: np.ndarray  # [act_dim] float32
    high: np.ndarray  # [act_dim] float32

    @classmethod
    def from_space(cls, space: gym.spaces.Box) -> ActionScaler:
        """The scaler for a (checked, 1-D, finite) action Box."""
        return cls(
            low=np.asarray(space.low, np.float32).ravel(),
            high=np.asarray(space.high, np.float32).ravel(),
        )

    @property
    def is_identity(self) -> bool:
        """True when the bounds are exactly -1 and 1 (no arithmetic is done then)."""
        return bool(np.all(self.low == -1.0) and np.all(self.high == 1.0))

    @property
    def _center(self) -> np.ndarray:
        return (self.high + self.low) / 2

    @property
    def _half_range(self) -> np.ndarray:
        return (self.high - self.low) / 2

    def to_unit(self, a: Any) -> Any:
        """Map actions in ``[low, high]`` to ``[-1, 1]`` (numpy or jax arrays, any batch)."""
        if self.is_identity:
            return a
        return (a - self._center) / self._half_range

    def from_unit(self, u: Any) -> Any:
        """Map agent actions in ``[-1, 1]`` back to the env's ``[low, high]``."""
        if self.is_identity:
            return u
        return u * self._half_range + self._center


# --------------------------------------------------------------------------------------------
# Space checks
# --------------------------------------------------------------------------------------------


def _observation_problem(space: gym.Space, path: str = "observation") -> str | None:
    """Why ``space`` cannot be flattened into a float vector, or None when it can."""
    if isinstance(space, gym.spaces.Dict):
        for key in sorted(space):
            problem = _observation_problem(space[key], f"{path}[{key!r}]")
            if problem is not None:
                return problem
        return None
    if not isinstance(space, gym.spaces.Box):
        return f"{path} is a {type(space).__name__} space, not a float Box"
    if space.dtype == np.uint8 or len(space.shape) >= 2:
        return f"{path} is an image-like Box {space} (uint8 or 2+ axes)"
    if not np.issubdtype(space.dtype, np.floating):
        return f"{path} is a {space.dtype} Box, not a float one"
    return None


def check_spaces(dataset_id: str, observation_space: gym.Space, action_space: gym.Space) -> None:
    """Refuse datasets OFQL cannot learn from, with one sentence saying why and what to do.

    Actions must be a 1-D float ``gymnasium.spaces.Box`` with finite bounds and low < high;
    observations a float Box (at most 1 axis) or a nested Dict of such Boxes.

    Example:
        >>> check_spaces("x/y-v0", gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2))
        Traceback (most recent call last):
        ...
        ofql_jax.core.errors.OFQLError: Dataset 'x/y-v0' has action space Discrete(2), ...
    """
    ok_actions = (
        isinstance(action_space, gym.spaces.Box)
        and np.issubdtype(action_space.dtype, np.floating)
        and len(action_space.shape) == 1
        and bool(np.all(np.isfinite(action_space.low)))
        and bool(np.all(np.isfinite(action_space.high)))
        and bool(np.all(action_space.low < action_space.high))
    )
    if not ok_actions:
        raise OFQLError(
            f"Dataset {dataset_id!r} has action space {action_space}, but OFQL needs a "
            "continuous gymnasium.spaces.Box action space (1-D, float, finite bounds with "
            "low < high): choose a continuous-control dataset with --config.dataset_id."
        )
    problem = _observation_problem(observation_space)
    if problem is not None:
        raise OFQLError(
            f"Dataset {dataset_id!r} cannot be used because its {problem}, and OFQL needs vector "
            "observations (a float Box or a Dict of float Boxes, no images): choose a "
            "state-based dataset with --config.dataset_id."
        )


# --------------------------------------------------------------------------------------------
# Episodes -> transitions
# --------------------------------------------------------------------------------------------


def _check_reward_tune(reward_tune: str) -> None:
    if reward_tune not in REWARD_TUNES:
        raise OFQLError(
            f"Unknown reward_tune {reward_tune!r}: use one of {', '.join(REWARD_TUNES)}."
        )


def tune_rewards(rewards: np.ndarray, reward_tune: str) -> np.ndarray:
    """Apply DQL's reward transform: "antmaze" -> ``(r - 0.5) * 4``, "none" -> unchanged.

    Example:
        >>> tune_rewards(np.array([0.0, 1.0]), "antmaze")
        array([-2.,  2.], dtype=float32)
    """
    _check_reward_tune(reward_tune)
    rewards = np.asarray(rewards, np.float64)
    if reward_tune == "antmaze":
        rewards = (rewards - 0.5) * 4.0
    return rewards.astype(np.float32)


@dataclasses.dataclass
class _Parts:
    """Per-episode arrays, concatenated once at the end (1M steps, ~2k episodes)."""

    obs: list[np.ndarray] = dataclasses.field(default_factory=list)  # each [T + 1, obs_dim]
    actions: list[np.ndarray] = dataclasses.field(default_factory=list)  # each [T, act_dim]
    rewards: list[np.ndarray] = dataclasses.field(default_factory=list)
    dones: list[np.ndarray] = dataclasses.field(default_factory=list)
    num_episodes: int = 0

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.asarray([len(r) for r in self.rewards], np.int64)


def _convert_episodes(
    episodes: Iterable[Any],
    observation_space: gym.Space,
    scaler: ActionScaler,
    reward_tune: str,
    dataset_id: str,
    parts: _Parts,
) -> None:
    """Append each episode's flattened, scaled, tuned arrays to ``parts`` after checking them."""
    _check_reward_tune(reward_tune)
    # Out-of-bounds tolerance in unit space: 1e-4 of (high - low) is 2e-4 of [-1, 1]'s width.
    unit_limit = 1.0 + 2.0 * ACTION_BOUND_TOLERANCE
    nonfinite = {"observations": 0, "actions": 0, "rewards": 0}
    out_of_bounds = 0
    for ep in episodes:
        obs = flatten_observation(ep.observations, observation_space, batch_dims=1)
        raw_actions = np.asarray(ep.actions)
        steps = len(ep.rewards)
        if obs.shape[0] != steps + 1 or raw_actions.shape[0] != steps:
            raise OFQLError(
                f"Episode {ep.id} of dataset {dataset_id!r} has {obs.shape[0]} observations and "
                f"{raw_actions.shape[0]} actions for {steps} rewards: the dataset looks corrupt, "
                "so re-download it with `minari download`."
            )
        actions = np.asarray(scaler.to_unit(raw_actions.reshape(steps, -1)), np.float32)
        rewards = np.asarray(ep.rewards)
        nonfinite["observations"] += int(np.count_nonzero(~np.isfinite(obs)))
        nonfinite["actions"] += int(np.count_nonzero(~np.isfinite(actions)))
        nonfinite["rewards"] += int(np.count_nonzero(~np.isfinite(rewards)))
        out_of_bounds += int(np.count_nonzero(np.abs(actions) > unit_limit))
        parts.obs.append(obs)
        parts.actions.append(np.clip(actions, -1.0, 1.0))  # absorb float rounding at bounds
        parts.rewards.append(tune_rewards(rewards, reward_tune))
        # Only termination stops bootstrapping; truncation (time limit) never does, and a step
        # that is both terminated and truncated is a termination.
        parts.dones.append(np.asarray(ep.terminations, dtype=bool).astype(np.float32))
        parts.num_episodes += 1

    total_nonfinite = sum(nonfinite.values())
    if total_nonfinite:
        detail = ", ".join(f"{n} in {name}" for name, n in nonfinite.items() if n)
        raise OFQLError(
            f"Dataset {dataset_id!r} contains {total_nonfinite} non-finite values (NaN or inf: "
            f"{detail}), which would poison training: re-download it or choose another dataset."
        )
    if out_of_bounds:
        raise OFQLError(
            f"Dataset {dataset_id!r} has {out_of_bounds} action values outside its declared "
            f"action space bounds [{scaler.low.tolist()}, {scaler.high.tolist()}] by more than "
            f"{ACTION_BOUND_TOLERANCE:g} of the range: fix the dataset's action_space or choose "
            "another dataset."
        )


def _concat(parts: _Parts, obs_dim: int, act_dim: int) -> Transitions:
    """One concatenation per field; next_observations are the same episodes shifted by one."""
    if not parts.obs:
        empty = np.zeros((0,), np.float32)
        return Transitions(
            observations=np.zeros((0, obs_dim), np.float32),
            actions=np.zeros((0, act_dim), np.float32),
            rewards=empty,
            next_observations=np.zeros((0, obs_dim), np.float32),
            dones=empty.copy(),
        )
    return Transitions(
        observations=np.concatenate([o[:-1] for o in parts.obs]),
        actions=np.concatenate(parts.actions),
        rewards=np.concatenate(parts.rewards),
        next_observations=np.concatenate([o[1:] for o in parts.obs]),
        dones=np.concatenate(parts.dones),
    )


def episodes_to_transitions(
    episodes: Iterable[Any],
    observation_space: gym.Space,
    scaler: ActionScaler,
    reward_tune: str,
    dataset_id: str = "<episodes>",
) -> Transitions:
    """Turn Minari episodes (``EpisodeData``-like) into one float32 numpy ``Transitions``.

    Per episode of T steps: observations = flattened ``observations[:-1]``, next_observations
    = ``observations[1:]``, actions scaled to [-1, 1] then clipped, rewards tuned (see
    ``tune_rewards``), dones = ``terminations`` (truncations never set done). Refuses
    non-finite values and actions outside the declared bounds with ``OFQLError`` naming
    ``dataset_id`` and the count.

    Example:
        >>> from minari import EpisodeData
        >>> ep = EpisodeData(id=0, observations=np.zeros((3, 2)), actions=np.zeros((2, 1)),
        ...     rewards=np.ones(2), terminations=np.array([False, True]),
        ...     truncations=np.array([False, False]), infos={})
        >>> scaler = ActionScaler(np.array([-1.0], np.float32), np.array([1.0], np.float32))
        >>> episodes_to_transitions([ep], gym.spaces.Box(-1, 1, (2,)), scaler, "none").dones
        array([0., 1.], dtype=float32)
    """
    parts = _Parts()
    _convert_episodes(episodes, observation_space, scaler, reward_tune, dataset_id, parts)
    return _concat(parts, observation_dim(observation_space), scaler.low.shape[0])


# --------------------------------------------------------------------------------------------
# Environments
# --------------------------------------------------------------------------------------------


def _import_env_package(spec: EnvSpec) -> None:
    """Import the package an env spec's entry point lives in; register gymnasium_robotics.

    gymnasium_robotics (AntMaze, Kitchen) prints an unrelated Adroit notice to stderr on import;
    it is silenced, and ``robotics_compat`` makes FrankaKitchen-v1 construct on MuJoCo >= 3.12.
    """
    entry = spec.entry_point if isinstance(spec.entry_point, str) else ""
    package = entry.split(":", 1)[0].split(".", 1)[0]
    if package == "gymnasium_robotics":
        robotics_compat.register()
    elif package and package != "gymnasium":
        importlib.import_module(package)


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetInfo:
    """What the rest of OFQL needs to know about the loaded dataset(s).

    ``ref_min_score`` / ``ref_max_score`` come from the Minari metadata of the FIRST dataset id
    (None when absent); ``env_spec`` is its ``eval_env_spec`` when present, else its
    ``env_spec`` (None when the dataset records neither). Spaces are the original, unscaled
    ones; ``scaler`` maps between them and the agent's [-1, 1] actions.

    Example:
        >>> transitions, info = load_minari("mujoco/hopper/medium-v0")  # doctest: +SKIP
        >>> env = info.make_env()  # doctest: +SKIP
        >>> obs, _ = env.reset(seed=0)  # doctest: +SKIP
        >>> flatten_observation(obs, info.observation_space).shape  # doctest: +SKIP
        (11,)
    """

    dataset_ids: tuple[str, ...]
    num_transitions: int
    num_episodes: int
    obs_dim: int
    act_dim: int
    observation_space: gym.Space
    action_space: gym.spaces.Box
    scaler: ActionScaler
    ref_min_score: float | None
    ref_max_score: float | None
    env_spec: EnvSpec | None
    requirements: tuple[str, ...] = ()  # the first dataset's pip requirements, for messages
    episode_lengths: np.ndarray | None = None  # steps per episode, in transition order

    @property
    def env_id(self) -> str | None:
        """The evaluation environment's id (e.g. ``Hopper-v5``); ``None`` without a spec."""
        return getattr(self.env_spec, "id", None) if self.env_spec is not None else None

    def make_env(self, **kwargs: Any) -> gym.Env:
        """Build the evaluation environment (``gym.make(env_spec, **kwargs)``).

        Raises OFQLError with a one-sentence fix when the spec is missing, the env's package is
        not installed, or construction fails.
        """
        name = self.dataset_ids[0]
        spec = self.env_spec
        if spec is None:
            raise OFQLError(
                f"Dataset {name!r} records no environment spec, so OFQL cannot evaluate on it: "
                "choose a dataset that records its env_spec, or train without evaluation."
            )
        reqs = f" (the dataset lists {', '.join(self.requirements)})" if self.requirements else ""
        try:
            _import_env_package(spec)
        except ImportError as err:
            raise OFQLError(
                f"The environment {spec.id!r} of dataset {name!r} needs the missing package "
                f"{err.name or err}: install it with pip{reqs}."
            ) from err
        try:
            return make_env(spec, **kwargs)
        except Exception as err:  # any construction failure is a user-fixable install problem
            first_line = (str(err).strip().splitlines() or [""])[0]
            raise OFQLError(
                f"Cannot make the environment {spec.id!r} of dataset {name!r} "
                f"({type(err).__name__}: {first_line}): install versions of its packages that "
                f"match the dataset{reqs}."
            ) from err


# --------------------------------------------------------------------------------------------
# Local availability and download
# --------------------------------------------------------------------------------------------


def datasets_root() -> Path:
    """The local Minari directory (``MINARI_DATASETS_PATH`` or ``~/.minari/datasets``)."""
    return Path(
        os.environ.get("MINARI_DATASETS_PATH")
        or os.path.join(os.path.expanduser("~"), ".minari", "datasets")
    )


def _parse_id(dataset_id: str) -> str | None:
    """The id's namespace, with an OFQLError for malformed ids."""
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        return parse_dataset_id(dataset_id)[0]
    except (ValueError, TypeError) as err:
        raise OFQLError(
            f"Malformed Minari dataset id {dataset_id!r}: ids look like "
            "'namespace/name-v0', e.g. 'mujoco/hopper/medium-v0'."
        ) from err


def is_local(dataset_id: str) -> bool:
    """Whether ``dataset_id`` is in ``minari.list_local_datasets()`` (scans only its namespace).

    Example:
        >>> is_local("no/such-v0")
        False
    """
    import minari

    namespace = _parse_id(dataset_id)
    if not (datasets_root() / (namespace or "")).is_dir():
        return False  # also stops minari from creating directories for a mere lookup
    return dataset_id in minari.list_local_datasets(prefix=namespace)


def server_reachable(timeout_s: float, server: tuple[str, int] | None = None) -> bool:
    """TCP-connect to ``server`` (default ``MINARI_SERVER``) within ``timeout_s``, DNS included.

    The connect runs in a daemon thread because ``getaddrinfo`` ignores socket timeouts. Only
    a TCP connect is tried: a transparent proxy that accepts every connection makes this
    report True, in which case minari's own download reports the failure (slowly).

    Example:
        >>> server_reachable(0.5, ("minari-server.invalid", 443))
        False
    """
    host, port = server or MINARI_SERVER  # read at call time so tests can monkeypatch it
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="minari-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(result and result[0])


def ensure_local(dataset_id: str, download: bool = True, probe_timeout_s: float = 3.0) -> None:
    """Make sure ``dataset_id`` is in the local Minari directory, downloading it if allowed.

    Fails fast (about ``probe_timeout_s`` seconds) with an OFQLError when the Minari server
    cannot be reached, instead of minari's ~25 s of retries.

    Example:
        >>> ensure_local("mujoco/hopper/medium-v0")  # doctest: +SKIP
    """
    import minari

    if is_local(dataset_id):
        return
    where = datasets_root()
    fix = (
        f"run `minari download {dataset_id}` on a machine with internet and copy "
        f"{where / dataset_id} here, or set --config.dataset_id to a local dataset"
    )
    if not download:
        raise OFQLError(
            f"Dataset {dataset_id!r} is not in MINARI_DATASETS_PATH ({where}) and downloading "
            f"is disabled: {fix}."
        )
    if not server_reachable(probe_timeout_s):
        host, port = MINARI_SERVER
        raise OFQLError(
            f"Dataset {dataset_id!r} is not in MINARI_DATASETS_PATH ({where}) and the Minari "
            f"server {host}:{port} cannot be reached: {fix}."
        )
    try:
        minari.download_dataset(dataset_id)
    except ValueError as err:  # unknown id, or no version compatible with this minari
        raise OFQLError(
            f"Minari cannot download dataset {dataset_id!r} ({err}): check the id and version "
            "with `minari list remote`."
        ) from err
    except Exception as err:  # network / hub errors mid-download
        raise OFQLError(
            f"Downloading dataset {dataset_id!r} from the Minari server failed "
            f"({type(err).__name__}: {err}): retry, or {fix}."
        ) from err
    if not is_local(dataset_id):
        raise OFQLError(
            f"Dataset {dataset_id!r} was downloaded but is not in MINARI_DATASETS_PATH "
            f"({where}): delete {where / dataset_id} and download it again."
        )


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _load(dataset_id: str) -> Any:
    """``minari.load_dataset`` with its failures (e.g. incompatible version) as OFQLError."""
    import minari

    try:
        return minari.load_dataset(dataset_id)
    except Exception as err:
        raise OFQLError(
            f"Minari cannot read local dataset {dataset_id!r} ({type(err).__name__}: {err}): "
            f"delete {datasets_root() / dataset_id} and download it again."
        ) from err


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def load_minari(
    dataset_ids: str | Sequence[str], reward_tune: str = "none", download: bool = True
) -> tuple[Transitions, DatasetInfo]:
    """Load one or more Minari datasets as a single numpy ``Transitions`` (in the given order).

    Several ids are concatenated in order, which is how D4RL built medium-expert
    (medium + expert). All ids must share observation and action spaces.

    Example:
        >>> ids = ["mujoco/hopper/medium-v0", "mujoco/hopper/expert-v0"]
        >>> t, info = load_minari(ids)  # doctest: +SKIP
        >>> t.size == info.num_transitions  # doctest: +SKIP
        True
    """
    ids = (dataset_ids,) if isinstance(dataset_ids, str) else tuple(dataset_ids)
    if not ids:
        raise OFQLError("No dataset id was given: set --config.dataset_id to a Minari dataset.")
    _check_reward_tune(reward_tune)
    for dataset_id in ids:
        _parse_id(dataset_id)  # refuse a malformed id before any slow work
    for dataset_id in ids:
        ensure_local(dataset_id, download=download)
    datasets = [_load(dataset_id) for dataset_id in ids]
    first = datasets[0]
    for dataset_id, dataset in zip(ids, datasets, strict=True):
        check_spaces(dataset_id, dataset.observation_space, dataset.action_space)
        if (
            dataset.observation_space != first.observation_space
            or dataset.action_space != first.action_space
        ):
            raise OFQLError(
                f"Dataset {dataset_id!r} has spaces ({dataset.observation_space}, "
                f"{dataset.action_space}) that differ from {ids[0]!r}'s "
                f"({first.observation_space}, {first.action_space}): only combine datasets of "
                "the same environment."
            )

    observation_space = first.observation_space
    scaler = ActionScaler.from_space(first.action_space)
    parts = _Parts()
    for dataset_id, dataset in zip(ids, datasets, strict=True):
        _convert_episodes(
            dataset.iterate_episodes(), observation_space, scaler, reward_tune, dataset_id, parts
        )
    obs_dim = observation_dim(observation_space)
    act_dim = int(scaler.low.shape[0])
    transitions = _concat(parts, obs_dim, act_dim)

    metadata = first.storage.metadata
    info = DatasetInfo(
        dataset_ids=ids,
        num_transitions=int(transitions.rewards.shape[0]),
        num_episodes=parts.num_episodes,
        obs_dim=obs_dim,
        act_dim=act_dim,
        observation_space=observation_space,
        action_space=first.action_space,
        scaler=scaler,
        ref_min_score=_optional_float(metadata.get("ref_min_score")),
        ref_max_score=_optional_float(metadata.get("ref_max_score")),
        # minari parses eval_env_spec but has no public getter for it
        env_spec=getattr(first, "_eval_env_spec", None) or first.env_spec,
        requirements=tuple(metadata.get("requirements") or ()),
        episode_lengths=parts.episode_lengths,
    )
    return transitions, info

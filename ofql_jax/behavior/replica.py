"""Local replicas of D4RL's locomotion datasets, built offline from shipped SAC policies.

``ofql/<env>/<level>-v0`` (env: hopper, halfcheetah, walker2d; level: random, medium,
expert, medium-expert, medium-replay) is written with Minari's own writer, so
``minari.load_dataset`` opens it. The recipe is D4RL's:

- random: uniform actions;
- medium / expert: the shipped SAC policy of that level, actions *sampled* from its
  tanh-Gaussian (as the D4RL/Minari behaviour policies were run);
- medium-expert: the medium episodes followed by the expert episodes;
- medium-replay: the SAC replay buffer up to the step the medium policy was taken at.
  The buffer is not shipped (tens of MB), so it is rebuilt by re-running the same SAC
  run (env, seed, settings) to that step in ``behavior_dir`` (resumable).

Rollouts step ``num_envs`` envs together with one jitted policy call per step. The
dataset's metadata (``ofql_replica``) records the policy, its step and returns, the seed,
env id, package versions and CPU; ``ref_min_score``/``ref_max_score`` are D4RL's random/expert
returns. Replica scores are **not** comparable with published D4RL numbers.

    python -m ofql_jax.behavior.replica --env=hopper --level=medium
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ofql_jax.behavior.rollout import Episode, random_policy, run_episodes
from ofql_jax.behavior.train_sac import SACTrainer
from ofql_jax.behavior.zoo import ENV_IDS, load_policy, policy_version, sac_config_of
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.paths import AUTO, cache_path
from ofql_jax.core.tasks import D4RL_REF_SCORES
from ofql_jax.core.types import Transitions
from ofql_jax.core.versions import cpu_model, package_versions
from ofql_jax.data.envs import make_env
from ofql_jax.data.minari_data import (
    ActionScaler,
    DatasetInfo,
    datasets_root,
    is_local,
    load_minari,
)

NAMESPACE = "ofql"
LEVELS = ("random", "medium", "expert", "medium-expert", "medium-replay")
_LEVEL_SEED = {"random": 0, "medium": 1, "expert": 2}  # disjoint reset seeds per level
MEDIUM_EXPERT_PARTS = ("medium", "expert")  # D4RL's medium-expert: these replicas, in order
# The shipped behaviour policies each level's data comes from (medium-replay: the medium
# policy's SAC run, cut at its step).
BEHAVIOR_LEVELS = {
    "random": (),
    "medium": ("medium",),
    "expert": ("expert",),
    "medium-expert": MEDIUM_EXPERT_PARTS,
    "medium-replay": ("medium",),
}
# The packages whose versions a replica records (with the CPU's model): they reach its bits.
REPLICA_PACKAGES = ("gymnasium", "minari", "mujoco", "numpy", "jax", "jaxlib")
DEFAULT_BEHAVIOR_DIR = "auto"  # <cache root>/behavior (ofql_jax.core.paths)


def replica_id(env: str, level: str) -> str:
    """``ofql/<env>/<level>-v0``, the Minari id of a replica.

    Example:
        >>> replica_id("hopper", "medium-replay")
        'ofql/hopper/medium-replay-v0'
    """
    check_env_level(env, level)
    return f"{NAMESPACE}/{env}/{level}-v0"


def check_env_level(env: str, level: str) -> None:
    if env not in ENV_IDS or level not in LEVELS:
        raise OFQLError(
            f"There is no replica of {env}-{level}: replicas exist for envs {', '.join(ENV_IDS)} "
            f"and levels {', '.join(LEVELS)}."
        )


def _episode_buffers(episodes: list[Episode], first_id: int = 0) -> list:
    from minari.data_collector import EpisodeBuffer

    return [
        EpisodeBuffer(
            id=first_id + k,
            seed=ep.seed,
            observations=ep.observations.astype(np.float64),
            actions=ep.actions.astype(np.float32),
            rewards=list(ep.rewards),
            terminations=list(ep.terminations),
            truncations=list(ep.truncations),
        )
        for k, ep in enumerate(episodes)
    ]


def _episodes_from_dataset(dataset_id: str) -> list[Episode]:
    import minari

    dataset = minari.load_dataset(dataset_id)
    seeds = [
        m.get("seed") for m in dataset.storage.get_episode_metadata(range(dataset.total_episodes))
    ]
    out = []
    for ep, seed in zip(dataset.iterate_episodes(), seeds, strict=True):
        out.append(
            Episode(
                observations=np.asarray(ep.observations),
                actions=np.asarray(ep.actions),
                rewards=np.asarray(ep.rewards),
                terminations=np.asarray(ep.terminations, bool),
                truncations=np.asarray(ep.truncations, bool),
                seed=-1 if seed is None else int(seed),
                # a step budget cut it (time limits end these envs at 1000 steps)
                cut=bool(ep.truncations[-1]) and len(ep.rewards) < 1000,
            )
        )
    return out


def rollout_episodes(
    env: str, level: str, num_steps: int, seed: int, num_envs: int, progress: bool
) -> tuple[list[Episode], dict[str, Any]]:
    """``num_steps`` transitions of the ``random``, ``medium`` or ``expert`` behaviour."""
    env_id = ENV_IDS[env]
    rollout_seed = seed * 10_000_000 + _LEVEL_SEED[level] * 1_000_000
    with make_env(env_id) as probe:
        act_dim = int(np.prod(probe.action_space.shape))
    if level == "random":
        policy = random_policy(act_dim, rollout_seed)
        info: dict[str, Any] = dict(policy="uniform random actions in the action box")
    else:
        behaviour = load_policy(env, level)
        key = jax.random.key(rollout_seed)

        def policy(obs: np.ndarray, step: int) -> np.ndarray:
            return behaviour.act(obs, jax.random.fold_in(key, step), stochastic=True)

        keep = (
            "sac_step", "return_mean_deterministic", "return_std_deterministic",
            "return_mean_stochastic", "return_std_stochastic", "train_command",
        )  # fmt: skip
        info = dict(policy=f"SAC {env}-{level} (sampled actions)", sac_seed=behaviour.meta["seed"])
        info.update({k: behaviour.meta[k] for k in keep})
    label = f"rollout {replica_id(env, level)}" if progress else None
    result = run_episodes(
        lambda: make_env(env_id), policy, num_envs, rollout_seed, num_steps=num_steps,
        record=True, progress=label,
    )  # fmt: skip
    info.update(rollout_steps_per_second=result.steps_per_second, rollout_seed=rollout_seed)
    return result.episodes, info


def replay_episodes(
    env: str, behavior_dir: str | Path, progress: bool, sac_run: str | Path | None = None
) -> tuple[list[Episode], dict[str, Any]]:
    """The SAC replay buffer up to the medium policy's step, as episodes (medium-replay).

    ``sac_run``: the train_sac workdir the shipped medium policy came from (or any run of
    the same settings that got at least that far); its latest checkpoint's buffer is cut at
    the medium step. Without it the run is repeated to that step in ``behavior_dir``.
    """

    medium = load_policy(env, "medium")
    run = medium.meta["sac_run"]
    step = int(medium.meta["sac_step"])
    if sac_run is not None:
        data, source = _buffer_of_run(Path(sac_run), run, step), f"the buffer of {sac_run}"
        with make_env(run["env"]) as probe:
            scaler = ActionScaler.from_space(probe.action_space)
        final_return = None
    else:
        root = cache_path(behavior_dir or AUTO, "behavior")
        workdir = Path(root) / f"{env}-seed{run['seed']}-to{step}"
        print(
            f"medium-replay: re-running SAC on {run['env']} (seed {run['seed']}) to step {step}, "
            f"the medium policy's step, in {workdir} (resumable; its buffer is the dataset)",
            file=sys.stderr,
        )
        trainer = SACTrainer(
            run["env"], workdir, num_steps=step, seed=run["seed"], start_steps=run["start_steps"],
            batch_size=run["batch_size"], eval_every=run["eval_every"],
            eval_episodes=run["eval_episodes"], progress=progress,
            sac_config=sac_config_of(medium.meta),
        )  # fmt: skip
        trainer.run()
        data, source, scaler = trainer.buffer.data, f"a re-run in {workdir}", trainer.scaler
        final_return = trainer.log[-1]["eval_return_mean"] if trainer.log else None
    episodes = buffer_episodes(data, step, scaler)
    info = dict(
        policy=f"SAC {env} replay buffer up to step {step} (the medium policy's step)",
        replay_source=source,
        sac_step=step,
        sac_seed=run["seed"],
        rerun_final_logged_eval_return=final_return,
        shipped_medium_logged_eval_return=medium.meta["logged_eval_return"],
    )
    return episodes, info


def _buffer_of_run(workdir: Path, run: dict[str, Any], step: int) -> dict[str, np.ndarray]:
    """The replay arrays of the newest checkpoint of ``workdir``, checked against ``run``."""
    config = workdir / "config.json"
    saved = json.loads(config.read_text()) if config.exists() else {}
    same = {k: saved.get(k) for k in ("env", "seed", "start_steps", "batch_size", "sac")}
    wanted = {k: run.get(k) for k in same}
    replays = {int(p.stem.split("_")[1]): p for p in (workdir / "checkpoints").glob("replay_*.npz")}
    newest = max(replays, default=-1)
    if same != wanted or newest < step:
        raise OFQLError(
            f"{workdir} is not a SAC run of the shipped medium policy's settings with at least "
            f"{step} steps checkpointed: pass the run it was exported from, or leave --sac_run "
            "out to re-run SAC to that step."
        )
    with np.load(replays[newest]) as saved_arrays:
        return dict(saved_arrays)


def buffer_episodes(data: dict[str, np.ndarray], size: int, scaler) -> list[Episode]:
    """Split the first ``size`` buffer rows into episodes (the last one, if open, is cut)."""
    ends = np.flatnonzero(data["terminations"][:size] | data["truncations"][:size]) + 1
    bounds = list(ends) + ([size] if not len(ends) or ends[-1] != size else [])
    episodes, start = [], 0
    for end in bounds:
        trunc = data["truncations"][start:end].copy()
        term = data["terminations"][start:end].copy()
        cut = not (term[-1] or trunc[-1])
        if cut:
            trunc[-1] = True  # cut at the medium step, like the last episode of a D4RL dataset
        episodes.append(
            Episode(
                observations=np.concatenate(
                    [data["observations"][start:end], data["next_observations"][end - 1 : end]]
                ),
                actions=np.clip(
                    scaler.from_unit(data["actions"][start:end]), scaler.low, scaler.high
                ),
                rewards=data["rewards"][start:end].astype(np.float64),
                terminations=term,
                truncations=trunc,
                seed=-1,
                cut=cut,
            )
        )
        start = end
    return episodes


def build_replica(
    env: str,
    level: str,
    num_steps: int = 1_000_000,
    seed: int = 0,
    num_envs: int = 16,
    behavior_dir: str | Path = DEFAULT_BEHAVIOR_DIR,
    progress: bool = True,
    sac_run: str | Path | None = None,
) -> Any:
    """Write ``ofql/<env>/<level>-v0`` with Minari's writer and return the MinariDataset.

    ``num_steps`` transitions per policy level (medium-expert holds 2 x num_steps, as
    D4RL's did; medium-replay holds as many as the buffer up to the medium step).
    """
    import minari

    dataset_id = replica_id(env, level)
    if is_local(dataset_id):
        raise OFQLError(
            f"Replica {dataset_id} already exists: delete it with `minari delete {dataset_id}` "
            "to rebuild it."
        )
    t0 = time.perf_counter()
    if level in _LEVEL_SEED:
        episodes, info = rollout_episodes(env, level, num_steps, seed, num_envs, progress)
    elif level == "medium-expert":
        episodes, info = [], dict(parts=[])
        for part in MEDIUM_EXPERT_PARTS:
            part_id = ensure_replica(env, part, num_steps, seed, num_envs, behavior_dir, progress)
            episodes += _episodes_from_dataset(part_id)
            info["parts"].append(part_id)
        info["policy"] = "medium episodes then expert episodes (D4RL's medium-expert)"
    else:
        episodes, info = replay_episodes(env, behavior_dir, progress, sac_run)
    steps = int(sum(ep.length for ep in episodes))
    returns = [ep.rewards.sum() for ep in episodes if not ep.cut]
    random_ref, expert_ref = D4RL_REF_SCORES[env]
    env_id = ENV_IDS[env]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`eval_env` is set to None")
            dataset = minari.create_dataset_from_buffers(
                dataset_id,
                _episode_buffers(episodes),
                env=env_id,
                algorithm_name=f"ofql_jax replica ({level})",
                author="ofql_jax",
                author_email="n/a",
                code_permalink="ofql_jax/behavior/replica.py",
                ref_min_score=float(random_ref),
                ref_max_score=float(expert_ref),
                description=(
                    f"Local replica of D4RL {env}-{level} on {env_id}, built offline by ofql_jax: "
                    f"{info['policy']}. Not the official dataset; scores are not comparable with "
                    "published D4RL numbers."
                ),
            )
        meta = dict(
            replica=True,
            env=env,
            env_id=env_id,
            level=level,
            seed=seed,
            num_steps=steps,
            requested_steps=num_steps,
            num_episodes=len(episodes),
            mean_episode_return=float(np.mean(returns)) if returns else None,
            d4rl_ref_scores=[float(random_ref), float(expert_ref)],
            build_seconds=time.perf_counter() - t0,
            # What reaches the data's last bits: a rebuild matches bit for bit only with
            # the same versions on the same CPU (docs/data.md, "Reproducing a replica").
            versions=package_versions(REPLICA_PACKAGES),
            cpu=cpu_model(),
            # What stale_replicas compares with the shipped policies (zoo.policy_version).
            behavior_versions={lv: policy_version(env, lv) for lv in BEHAVIOR_LEVELS[level]},
            **info,
        )
        # Written last: a replica without it is incomplete (see ensure_replica).
        dataset.storage.update_metadata({"ofql_replica": meta})
    except BaseException:
        _delete(dataset_id)
        raise
    return minari.load_dataset(dataset_id)


def _delete(dataset_id: str) -> None:
    import shutil

    shutil.rmtree(datasets_root() / dataset_id, ignore_errors=True)


def replica_metadata(dataset_id: str) -> dict[str, Any]:
    """The ``ofql_replica`` metadata of a local replica ({} if incomplete or unreadable)."""
    import json

    path = datasets_root() / dataset_id / "data" / "metadata.json"  # minari's layout
    try:
        return dict(json.loads(path.read_text()).get("ofql_replica") or {})
    except (OSError, ValueError):
        return {}


def stale_replicas(env: str, level: str) -> list[str]:
    """Why the local replica of (env, level), or a part it is made of, is out of date.

    A replica records the version of each shipped behaviour policy it was built from
    (``behavior_versions``; replicas from before that field were built from version 1).
    One line per local replica whose versions differ from the policies shipped now.
    """
    levels = (level, *MEDIUM_EXPERT_PARTS) if level == "medium-expert" else (level,)
    shipped = {policy: policy_version(env, policy) for policy in BEHAVIOR_LEVELS[level]}
    reasons = []
    for lv in levels:
        dataset_id = replica_id(env, lv)
        meta = replica_metadata(dataset_id) if is_local(dataset_id) else {}
        if not meta:
            continue
        built = meta.get("behavior_versions") or {}
        for policy in BEHAVIOR_LEVELS[lv]:
            version = int(built.get(policy, 1))
            if version != shipped[policy]:
                reasons.append(
                    f"{dataset_id} (built from version {version} of the {env} {policy} "
                    f"policy, version {shipped[policy]} is shipped)"
                )
    return reasons


def check_replica_current(dataset_id: str) -> None:
    """OFQLError naming the fix when a local ``ofql/`` replica is older than its policies."""
    parts = dataset_id.split("/")
    if len(parts) != 3 or parts[0] != NAMESPACE or not parts[2].endswith("-v0"):
        return
    env, level = parts[1], parts[2][: -len("-v0")]
    if env not in ENV_IDS or level not in BEHAVIOR_LEVELS:
        return
    stale = stale_replicas(env, level)
    if stale:
        ids = " ".join(reason.split(" ", 1)[0] for reason in stale)
        what, verb, them = (
            ("replica", "predates", "it") if len(stale) == 1 else ("replicas", "predate", "them")
        )
        raise OFQLError(
            f"The local {what} {'; '.join(stale)} {verb} this ofql_jax's behaviour "
            f"policies: delete {them} with `minari delete {ids}` and run again to rebuild {them}."
        )


def load_dataset(
    dataset_ids: str | Sequence[str], reward_tune: str = "none", download: bool = True
) -> tuple[Transitions, DatasetInfo]:
    """``load_minari``, refusing a local replica built from older behaviour policies."""
    ids = (dataset_ids,) if isinstance(dataset_ids, str) else tuple(dataset_ids)
    for dataset_id in ids:
        check_replica_current(dataset_id)
    return load_minari(ids, reward_tune, download)


def ensure_replica(
    env: str,
    level: str,
    num_steps: int = 1_000_000,
    seed: int = 0,
    num_envs: int = 16,
    behavior_dir: str | Path = DEFAULT_BEHAVIOR_DIR,
    progress: bool = True,
) -> str:
    """The id of the local replica, built first if it does not exist yet.

    An existing replica built with other settings (size or seed), or from an older shipped
    behaviour policy (``stale_replicas``), is never reused or overwritten: that is an
    OFQLError naming the fix.
    """
    dataset_id = replica_id(env, level)
    if is_local(dataset_id) and not replica_metadata(dataset_id):
        # Only build_replica writes into this namespace, and it marks completion last.
        print(f"Replica {dataset_id} is incomplete (its build was interrupted): rebuilding it.",
              file=sys.stderr)  # fmt: skip
        _delete(dataset_id)
    if not is_local(dataset_id):
        print(f"Building replica {dataset_id} ({num_steps} steps per level).", file=sys.stderr)
        build_replica(env, level, num_steps, seed, num_envs, behavior_dir, progress)
        return dataset_id
    check_replica_current(dataset_id)
    meta = replica_metadata(dataset_id)
    wanted = dict(requested_steps=num_steps, seed=seed)
    if level == "medium-replay":
        wanted = dict(seed=seed)
    diff = {k: (meta.get(k), v) for k, v in wanted.items() if meta.get(k) != v}
    if diff:
        what = ", ".join(f"{k} {old} (asked {new})" for k, (old, new) in diff.items())
        raise OFQLError(
            f"The local replica {dataset_id} was built with {what}: reuse it with those "
            f"settings, or delete it with `minari delete {dataset_id}` to rebuild."
        )
    return dataset_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, choices=sorted(ENV_IDS), help="D4RL env name")
    parser.add_argument("--level", required=True, choices=LEVELS, help="D4RL level")
    parser.add_argument("--num_steps", type=int, default=1_000_000, help="transitions per level")
    parser.add_argument("--seed", type=int, default=0, help="seed of actions and resets")
    parser.add_argument("--num_envs", type=int, default=16, help="envs stepped together")
    parser.add_argument(
        "--behavior_dir", default=DEFAULT_BEHAVIOR_DIR, help="where medium-replay re-runs SAC"
    )
    parser.add_argument(
        "--sac_run", default=None, help="medium-replay: the SAC run the medium policy came from"
    )
    args = parser.parse_args(argv)
    try:
        build_replica(
            args.env, args.level, args.num_steps, args.seed, args.num_envs, args.behavior_dir,
            sac_run=args.sac_run,
        )  # fmt: skip
        meta = replica_metadata(replica_id(args.env, args.level))
    except OFQLError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rate = meta.get("rollout_steps_per_second")
    print(
        f"wrote {replica_id(args.env, args.level)}: {meta['num_episodes']} episodes, "
        f"{meta['num_steps']} steps, mean episode return {meta['mean_episode_return']}, "
        f"{meta['build_seconds']:.0f} s" + (f" (rollout {rate:.0f} steps/s)" if rate else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pick a SAC snapshot, evaluate it on 100 episodes and ship it as a behaviour policy.

    python -m ofql_jax.behavior.export --workdir=runs/sac/hopper --level=medium

Without ``--step`` the *medium* snapshot is the first whose logged evaluation lies in
the env's medium band (``zoo.MEDIUM_BANDS``) and the *expert* snapshot is the best one.
The chosen actor is evaluated on ``--episodes`` episodes, both deterministically (the
mean action, the number in docs/data.md's table) and stochastically (the sampled actions
that generate replica datasets), and written to ``ofql_jax/behavior/policies``. A policy
whose parameters differ from the file it replaces gets the next ``version``, which
makes replicas built from the old one detectable (``ofql_jax.behavior.replica.stale_replicas``).

``--screen=STEP,STEP,...`` evaluates those snapshots deterministically on the same
episodes and writes nothing, to choose a ``--step`` on more than the logged 10 episodes
(the best of several screened snapshots is a little flattered by the choice):

    python -m ofql_jax.behavior.export --workdir=runs/sac/walker2d --level=expert \
        --screen=540000,570000,600000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from ofql_jax.behavior import zoo
from ofql_jax.behavior.rollout import run_episodes
from ofql_jax.behavior.train_sac import EVAL_SEED, load_actor, save_actor
from ofql_jax.behavior.zoo import ENV_IDS, MEDIUM_BANDS, BehaviorPolicy
from ofql_jax.core.cli_help import int_list
from ofql_jax.core.errors import OFQLError
from ofql_jax.data.envs import make_env


def env_name(env_id: str) -> str:
    for name, gym_id in ENV_IDS.items():
        if gym_id == env_id:
            return name
    raise OFQLError(f"{env_id} is not one of the D4RL locomotion envs {sorted(ENV_IDS.values())}.")


def choose_step(log: list[dict[str, Any]], env: str, level: str) -> int:
    """The snapshot step for ``level`` from the run's evaluation log."""
    if not log:
        raise OFQLError("The SAC run has no evaluations yet: train longer before exporting.")
    if level == "expert":
        return max(log, key=lambda r: (r["eval_return_mean"], r["step"]))["step"]
    lo, hi = MEDIUM_BANDS[env]
    for record in log:
        if lo <= record["eval_return_mean"] <= hi:
            return record["step"]
    best = max(r["eval_return_mean"] for r in log)
    raise OFQLError(
        f"No {env} snapshot has evaluated inside the medium band [{lo:.0f}, {hi:.0f}] yet "
        f"(best so far {best:.0f}): train longer, or pass --step explicitly."
    )


def evaluate(policy: BehaviorPolicy, episodes: int, stochastic: bool) -> np.ndarray:
    key = jax.random.key(EVAL_SEED)

    def act(obs: np.ndarray, step: int) -> np.ndarray:
        return policy.act(obs, jax.random.fold_in(key, step), stochastic)

    env_id = ENV_IDS[policy.env]
    return run_episodes(lambda: make_env(env_id), act, 20, EVAL_SEED, num_episodes=episodes).returns


def load_snapshot(
    workdir: Path, step: int, config: dict[str, Any]
) -> tuple[dict, dict[str, Any], dict[str, Any]]:
    """The actor params at ``step``, its logged record and the sizes a BehaviorPolicy needs.

    ``config`` is the run's ``config.json``, read once by the caller.
    """
    snapshot = workdir / "snapshots" / f"{step}.npz"
    if not snapshot.exists():
        raise OFQLError(f"No snapshot {snapshot}: pick a step listed in {workdir}/log.jsonl.")
    params, snap_meta = load_actor(snapshot)
    sizes = dict(
        obs_dim=int(params["params"]["mlp"]["Dense_0"]["kernel"].shape[0]),
        act_dim=int(params["params"]["mlp"]["Dense_2"]["kernel"].shape[1]) // 2,
        hidden_dims=list(config["sac"]["hidden_dims"]),
    )
    return params, snap_meta, sizes


def screen(workdir: Path, steps: list[int], episodes: int = 100) -> list[dict[str, Any]]:
    """Deterministic returns of the snapshots at ``steps`` on export's episodes; no writes."""
    config = json.loads((workdir / "config.json").read_text())
    env = env_name(config["env"])
    rows = []
    for step in steps:
        params, snap_meta, sizes = load_snapshot(workdir, step, config)
        policy = BehaviorPolicy(env=env, level="screen", params=params, meta=sizes)
        returns = evaluate(policy, episodes, stochastic=False)
        rows.append(
            dict(
                step=step,
                logged_eval_return=snap_meta["eval_return_mean"],
                return_mean_deterministic=float(returns.mean()),
                return_std_deterministic=float(returns.std()),
                return_min_deterministic=float(returns.min()),
            )
        )
    return rows


def export(
    workdir: Path, level: str, step: int | None = None, episodes: int = 100
) -> dict[str, Any]:
    """Evaluate the chosen snapshot and write it to ``zoo.POLICY_DIR``; returns its metadata."""
    config = json.loads((workdir / "config.json").read_text())
    env = env_name(config["env"])
    log = [json.loads(line) for line in (workdir / "log.jsonl").read_text().splitlines() if line]
    step = choose_step(log, env, level) if step is None else step
    params, snap_meta, sizes = load_snapshot(workdir, step, config)
    meta: dict[str, Any] = dict(
        env=env,
        env_id=config["env"],
        level=level,
        sac_step=step,
        seed=config["seed"],
        **sizes,
        sac_run=config,
        train_command=(
            f"python -m ofql_jax.behavior.train_sac --env={config['env']} --workdir=DIR "
            f"--num_steps={config['num_steps']} --seed={config['seed']}"
        ),
        logged_eval_return=snap_meta["eval_return_mean"],
        medium_band=list(MEDIUM_BANDS[env]),
        versions=dict(gymnasium=gym.__version__),
    )
    policy = BehaviorPolicy(env=env, level=level, params=params, meta=meta)
    for name, stochastic in (("deterministic", False), ("stochastic", True)):
        returns = evaluate(policy, episodes, stochastic)
        meta[f"return_mean_{name}"] = float(returns.mean())
        meta[f"return_std_{name}"] = float(returns.std())
    meta["eval_episodes"] = episodes
    # A new policy gets the next version, so that replicas built from the old one are detected.
    digest, old = zoo.params_digest(params), zoo.policy_meta(env, level)
    if not old:
        meta["version"] = 1
    elif old.get("params_sha256") == digest:
        meta["version"] = int(old.get("version", 1))
    else:
        meta["version"] = int(old.get("version", 1)) + 1
    meta["params_sha256"] = digest
    zoo.POLICY_DIR.mkdir(parents=True, exist_ok=True)
    save_actor(zoo.policy_path(env, level), params, meta)
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="a train_sac run directory")
    parser.add_argument("--level", required=True, choices=["medium", "expert"])
    parser.add_argument("--step", type=int, default=None, help="snapshot step (default: auto)")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes")
    parser.add_argument(
        "--screen",
        type=int_list,
        default=None,
        help="comma-separated snapshot steps to evaluate, e.g. 540000,600000; writes nothing",
    )
    args = parser.parse_args(argv)
    try:
        if args.screen is not None:
            rows = screen(Path(args.workdir), list(args.screen), args.episodes)
        else:
            meta = export(Path(args.workdir), args.level, args.step, args.episodes)
    except OFQLError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.screen is not None:
        print(f"| step | logged (10 episodes) | deterministic ({args.episodes} episodes) | min |")
        print("|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['step']} | {r['logged_eval_return']:.0f} | "
                f"{r['return_mean_deterministic']:.0f} ± {r['return_std_deterministic']:.0f} | "
                f"{r['return_min_deterministic']:.0f} |"
            )
        return 0
    print(
        f"| {meta['env_id']} | {meta['level']} | {meta['return_mean_deterministic']:.0f} ± "
        f"{meta['return_std_deterministic']:.0f} | {meta['return_mean_stochastic']:.0f} ± "
        f"{meta['return_std_stochastic']:.0f} | {meta['sac_step']} | `{meta['train_command']}` |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

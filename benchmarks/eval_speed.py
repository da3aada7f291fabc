"""Evaluation speed: one full ``Evaluator.evaluate`` at Hopper shapes, per number of workers.

Hopper-v5 (obs 11, act 3), OFQL's default 3 x 256 networks at their random init, 3 seeds x
150 episodes with N = 50 candidates (the paper's protocol), waves of at most ``--max_envs``
environments. An untrained policy falls within a few dozen steps; ``--episode_steps L`` makes
every episode exactly L steps (Hopper's ``terminate_when_unhealthy=False`` and a time limit of
L), which times full-length episodes. Each worker count gets a fresh ``Evaluator``; the policy
is compiled before the clock starts. Returns must be bit-identical across worker counts (the
script exits with status 1 otherwise).

Usage:
    python benchmarks/eval_speed.py                              # --workers 1 0 (0: all cores)
    python benchmarks/eval_speed.py --episode_steps 1000 --json  # full-length episodes
    python benchmarks/eval_speed.py --seeds 1 --episodes 10 --workers 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import gymnasium as gym
import jax
import numpy as np

from ofql_jax.agents.ofql import default_config, make_ofql
from ofql_jax.data import ActionScaler, DatasetInfo, observation_dim
from ofql_jax.data.envs import make_env
from ofql_jax.evaluation.evaluator import Evaluator

ENV_ID = "Hopper-v5"


def hopper_info(episode_steps: int | None) -> DatasetInfo:
    """Hopper-v5 as a ``DatasetInfo`` (no dataset needed), maybe with fixed-length episodes."""
    spec = gym.spec(ENV_ID)
    if episode_steps is not None:
        kwargs = {**spec.kwargs, "terminate_when_unhealthy": False}
        spec = dataclasses.replace(spec, max_episode_steps=episode_steps, kwargs=kwargs)
    env = make_env(spec)
    info = DatasetInfo(
        dataset_ids=(f"benchmark/{ENV_ID}",),
        num_transitions=0,
        num_episodes=0,
        obs_dim=observation_dim(env.observation_space),
        act_dim=int(env.action_space.shape[0]),
        observation_space=env.observation_space,
        action_space=env.action_space,
        scaler=ActionScaler.from_space(env.action_space),
        ref_min_score=None,
        ref_max_score=None,
        env_spec=spec,
    )
    env.close()
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=150, help="per seed")
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--max_envs", type=int, default=150)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 0], help="0: all cores")
    parser.add_argument("--episode_steps", type=int, default=None, help="fixed episode length")
    parser.add_argument("--step", type=int, default=50_000, help="training step evaluated")
    parser.add_argument("--json", action="store_true", help="also print one JSON object")
    args = parser.parse_args()

    info = hopper_info(args.episode_steps)
    agent = make_ofql(default_config(), info.obs_dim, info.act_dim)
    keys = jax.random.split(jax.random.key(0), args.seeds)
    states = jax.block_until_ready(jax.jit(jax.vmap(agent.init))(keys))
    seed_values = list(range(args.seeds))

    rows, reference = [], None
    for workers in args.workers:
        start = time.perf_counter()
        evaluator = Evaluator(
            agent, info, args.seeds, args.episodes, max_envs=args.max_envs, num_workers=workers
        )
        startup = time.perf_counter() - start
        try:
            start = time.perf_counter()
            evaluator.compile(states, args.candidates)
            compile_s = time.perf_counter() - start
            start = time.perf_counter()
            returns = evaluator.evaluate(states, seed_values, args.step, args.candidates)
            seconds = time.perf_counter() - start
            env_steps = int(evaluator.last_episode_lengths.sum())
        finally:
            evaluator.close()
        reference = returns if reference is None else reference
        row = dict(
            workers=workers,
            num_workers=evaluator.num_workers,
            wave_shape=list(evaluator.wave_shape),
            startup_s=startup,
            compile_s=compile_s,
            eval_s=seconds,
            env_steps=env_steps,
            env_steps_per_s=env_steps / seconds,
            mean_return=float(returns.mean()),
            identical=bool(np.array_equal(returns, reference)),
        )
        rows.append(row)
        print(
            f"workers={workers} ({evaluator.num_workers} used): eval {seconds:8.2f} s, "
            f"{row['env_steps_per_s']:9.0f} env steps/s ({env_steps} steps), start-up "
            f"{startup:.2f} s, compile {compile_s:.2f} s, identical returns: {row['identical']}",
            flush=True,
        )
    identical = all(row["identical"] for row in rows)
    print(f"Returns bit-identical across worker counts: {identical}")
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        device = jax.devices()[0]
        print(
            json.dumps(
                dict(
                    env=ENV_ID,
                    **settings,
                    device=f"{device.platform}:{device.device_kind}",
                    cpu_count=os.cpu_count(),
                    identical=identical,
                    rows=rows,
                )
            )
        )
    if not identical:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

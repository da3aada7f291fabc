"""Replica rollout speed: env steps/s of ``run_episodes`` for random and SAC-policy actions.

Each row steps ``num_envs`` Gymnasium MuJoCo v5 envs together with one policy call per
step (a jitted SAC actor for the policy rows), recording episodes as ``build_replica``
does. The Minari write is not included (``build_seconds`` in a replica's metadata is).

Usage:
    python benchmarks/rollout_speed.py                      # hopper, 20k steps per row
    python benchmarks/rollout_speed.py --env walker2d --steps 50000 --num_envs 1 16 64
"""

from __future__ import annotations

import argparse
import json

import jax

from ofql_jax.behavior.rollout import random_policy, run_episodes
from ofql_jax.behavior.zoo import ENV_IDS, load_policy
from ofql_jax.data.envs import make_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="hopper", choices=sorted(ENV_IDS))
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--num_envs", type=int, nargs="+", default=[1, 4, 16, 64])
    args = parser.parse_args()
    env_id = ENV_IDS[args.env]
    with make_env(env_id) as probe:  # the action size, and a first observation for the warm-up
        act_dim = probe.action_space.shape[0]
        first_obs = probe.reset(seed=0)[0]
    policy = load_policy(args.env, "medium")
    key = jax.random.key(0)
    rows = []
    for num_envs in args.num_envs:
        for name in ("random", "medium policy"):
            if name == "random":
                act = random_policy(act_dim, 0)
            else:
                policy.act(first_obs[None].repeat(num_envs, 0), key)  # compile outside timing

                def act(obs, step):
                    return policy.act(obs, jax.random.fold_in(key, step))

            result = run_episodes(
                lambda: make_env(env_id), act, num_envs, 0, num_steps=args.steps, record=True
            )
            rows.append(dict(actions=name, num_envs=num_envs, steps_per_s=result.steps_per_second))
            print(f"{name:>14} num_envs={num_envs:>3}: {result.steps_per_second:8.0f} steps/s")
    print(json.dumps(dict(env=env_id, steps=args.steps, rows=rows)))


if __name__ == "__main__":
    main()

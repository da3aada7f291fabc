"""Write a Minari dataset by stepping a Gymnasium environment with a policy.

``python -m ofql_jax.data.collect`` builds a D4RL-style *random* dataset (uniform
actions), e.g. a local Hopper dataset to train on when the official Minari
datasets cannot be downloaded. Reference scores of known MuJoCo tasks (D4RL's
random/expert returns) are stored in the metadata so scores are normalised.

Example:
    python -m ofql_jax.data.collect --env=Hopper-v5 --dataset_id=local/hopper/random-v0 \
        --num_steps=100000
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import minari
import numpy as np
from tqdm.auto import tqdm

from ofql_jax.core.errors import OFQLError
from ofql_jax.core.tasks import D4RL_REF_SCORES
from ofql_jax.data import robotics_compat
from ofql_jax.data.envs import make_env
from ofql_jax.data.minari_data import is_local

ActionFn = Callable[[gym.Env, np.random.Generator], Any]

# Gymnasium ids whose D4RL reference returns are known (docs/algorithm.md).
ENV_REF_SCORES = {
    "Hopper-v5": D4RL_REF_SCORES["hopper"],
    "HalfCheetah-v5": D4RL_REF_SCORES["halfcheetah"],
    "Walker2d-v5": D4RL_REF_SCORES["walker2d"],
}


def random_action(env: gym.Env, rng: np.random.Generator) -> Any:
    """A uniform action in a Box (else the space's own sampler)."""
    space = env.action_space
    if isinstance(space, gym.spaces.Box):
        return rng.uniform(space.low, space.high).astype(space.dtype)
    return space.sample()


def register_robotics() -> None:
    """Register Gymnasium-Robotics envs (AntMaze, Kitchen), hiding its import-time notice.

    Also applies ``robotics_compat`` so FrankaKitchen-v1 constructs on MuJoCo >= 3.12.
    """
    robotics_compat.register()


def collect_dataset(
    dataset_id: str,
    env_id: str,
    num_steps: int,
    action_fn: ActionFn = random_action,
    seed: int = 0,
    max_episode_steps: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    eval_env: gym.Env | str | None = None,
    ref_scores: tuple[float, float] | None = None,
    metadata: dict[str, Any] | None = None,
    progress: bool = False,
) -> minari.MinariDataset:
    """Step ``env_id`` for ``num_steps`` through ``minari.DataCollector`` and write the dataset.

    Episode ``k`` is reset with ``seed + k`` so the dataset is reproducible. Without
    ``eval_env`` the collection env (with its ``max_episode_steps``) is the evaluation env.
    ``ref_scores = (random, expert)`` go into the metadata as ``ref_min_score`` /
    ``ref_max_score``.
    """
    rng = np.random.default_rng(seed)
    env = minari.DataCollector(
        make_env(env_id, max_episode_steps=max_episode_steps, **(env_kwargs or {}))
    )
    episode = 0
    env.reset(seed=seed)
    for _ in tqdm(
        range(num_steps), desc=f"collect {dataset_id}", disable=not progress, unit="step"
    ):
        _, _, terminated, truncated, _ = env.step(action_fn(env, rng))
        if terminated or truncated:
            episode += 1
            env.reset(seed=seed + episode)
    ref = {}
    if ref_scores is not None:
        ref = dict(ref_min_score=float(ref_scores[0]), ref_max_score=float(ref_scores[1]))
    info = dict(
        algorithm_name="random",
        author="ofql_jax",
        author_email="n/a",
        code_permalink="ofql_jax/data/collect.py",
        description=f"{num_steps} steps of uniform random actions in {env_id}.",
    )
    info.update(metadata or {})
    dataset = env.create_dataset(dataset_id, eval_env=eval_env, **ref, **info)
    env.close()
    return dataset


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Hopper-v5", help="Gymnasium id, e.g. Hopper-v5")
    parser.add_argument("--dataset_id", default="local/hopper/random-v0", help="Minari id to write")
    parser.add_argument("--num_steps", type=int, default=100_000, help="transitions to collect")
    parser.add_argument("--seed", type=int, default=0, help="seed of actions and resets")
    args = parser.parse_args(argv)
    if args.env.startswith(("AntMaze", "FrankaKitchen")):
        register_robotics()
    try:
        if is_local(args.dataset_id):
            raise OFQLError(
                f"Dataset {args.dataset_id} already exists: choose another --dataset_id or "
                f"delete it with `minari delete {args.dataset_id}`."
            )
        try:
            gym.spec(args.env)
        except gym.error.Error as err:
            raise OFQLError(
                f"Unknown Gymnasium environment {args.env!r} ({err}): use an id "
                "such as Hopper-v5, HalfCheetah-v5 or Walker2d-v5."
            ) from err
    except OFQLError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with warnings.catch_warnings():  # the collection env is the intended evaluation env
        warnings.filterwarnings("ignore", message=r"`eval_env` is set to None")
        dataset = collect_dataset(
            args.dataset_id,
            args.env,
            args.num_steps,
            seed=args.seed,
            ref_scores=ENV_REF_SCORES.get(args.env),
            progress=True,
        )
    print(
        f"wrote {dataset.spec.dataset_id}: {dataset.total_episodes} episodes, "
        f"{dataset.total_steps} steps"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

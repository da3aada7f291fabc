"""Train a SAC behaviour policy on a Gymnasium MuJoCo env, with checkpoints and snapshots.

    python -m ofql_jax.behavior.train_sac --env=Hopper-v5 --workdir=runs/sac/hopper \
        --num_steps=1000000 --seed=0

Every ``eval_every`` steps the deterministic policy is evaluated on ``eval_episodes``
episodes and its actor is saved to ``<workdir>/snapshots/<step>.npz``: these are the
candidates that ``python -m ofql_jax.behavior.export`` turns into the shipped
*medium* and *expert* policies. Checkpoints (Orbax state + the replay buffer + host RNG
state) are written at the first episode end after every ``checkpoint_every`` steps, so a
killed run re-started with the same command continues exactly where the checkpoint was
taken. The replay buffer is never overwritten (capacity = num_steps), so its first rows
are D4RL's *medium-replay* data. Returns go to TensorBoard (``<workdir>/tb``) and to
``<workdir>/log.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from ofql_jax.behavior.replay import ReplayBuffer
from ofql_jax.behavior.rollout import run_episodes
from ofql_jax.behavior.sac import SACState, default_config, make_sac
from ofql_jax.core.checkpointing import Checkpointer
from ofql_jax.core.cli_help import int_list
from ofql_jax.core.errors import OFQLError
from ofql_jax.core.stop_request import StopRequest
from ofql_jax.data import envs
from ofql_jax.data.minari_data import ActionScaler

EVAL_SEED = 1_000_000  # evaluation episodes use their own reset seeds, disjoint from training


def save_actor(path: Path, actor_params: Any, meta: dict[str, Any]) -> None:
    """Actor parameters as a flat .npz (``mlp/Dense_0/kernel`` ...) plus JSON metadata."""
    flat = {
        "/".join(str(getattr(k, "key", k)) for k in kp): np.asarray(v)
        for kp, v in jax.tree_util.tree_flatten_with_path(actor_params["params"])[0]
    }
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, __meta__=np.asarray(json.dumps(meta)), **flat)
    os.replace(tmp, path)


def _meta_of(f: Any) -> dict[str, Any]:
    return json.loads(str(f["__meta__"]))


def load_actor_meta(path: str | Path) -> dict[str, Any]:
    """The metadata ``save_actor`` wrote, without loading the parameters."""
    with np.load(path) as f:
        return _meta_of(f)


def load_actor(path: str | Path) -> tuple[dict, dict[str, Any]]:
    """Inverse of ``save_actor``: (flax params dict, metadata)."""
    params: dict = {}
    with np.load(path) as f:
        meta = _meta_of(f)
        for name in f.files:
            if name == "__meta__":
                continue
            node = params
            *parents, leaf = name.split("/")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = jnp.asarray(f[name])
    return {"params": params}, meta


def make_env(env_id: str) -> gym.Env:
    try:
        env = envs.make_env(env_id)
    except gym.error.Error as err:
        raise OFQLError(
            f"Unknown Gymnasium environment {env_id!r} ({err}): use an id such as Hopper-v5, "
            "HalfCheetah-v5 or Walker2d-v5."
        ) from err
    if not isinstance(env.action_space, gym.spaces.Box) or not isinstance(
        env.observation_space, gym.spaces.Box
    ):
        raise OFQLError(
            f"{env_id} has spaces {env.observation_space} / {env.action_space}, but SAC here needs "
            "Box observations and Box actions: choose a MuJoCo env such as Hopper-v5."
        )
    return env


class SACTrainer:
    """One SAC run in ``workdir``; ``run()`` trains to ``num_steps`` (resuming if possible)."""

    def __init__(
        self,
        env_id: str,
        workdir: str | Path,
        num_steps: int,
        seed: int = 0,
        start_steps: int = 5000,
        batch_size: int = 256,
        eval_every: int = 10_000,
        eval_episodes: int = 10,
        checkpoint_every: int = 50_000,
        progress: bool = True,
        sac_config=None,
    ):
        self.env_id, self.num_steps, self.seed = env_id, num_steps, seed
        self.start_steps, self.batch_size = start_steps, batch_size
        self.eval_every, self.eval_episodes = eval_every, eval_episodes
        self.checkpoint_every, self.progress = checkpoint_every, progress
        self.workdir = Path(workdir)
        self.env = make_env(env_id)
        self.obs_dim = int(np.prod(self.env.observation_space.shape))
        self.act_dim = int(np.prod(self.env.action_space.shape))
        self.scaler = ActionScaler.from_space(self.env.action_space)
        self.config = sac_config or default_config()
        self.sac = make_sac(self.obs_dim, self.act_dim, self.config)
        self._update = jax.jit(self.sac.update, donate_argnums=0)
        self._act = jax.jit(self.sac.act, static_argnums=3)
        self._check_workdir()
        self.checkpointer = Checkpointer(self.workdir / "checkpoints", max_to_keep=2)
        self.state: SACState = self.sac.init(jax.random.key(seed))
        self.buffer = ReplayBuffer(num_steps, self.obs_dim, self.act_dim)
        self.rng = np.random.default_rng(seed)
        self.act_key = jax.random.key(seed + 1)
        self.step = 0
        self.episodes = 0
        self.log: list[dict[str, Any]] = []
        self._restore()

    # -- workdir ------------------------------------------------------------------------------
    def _run_config(self) -> dict[str, Any]:
        return dict(
            env=self.env_id,
            seed=self.seed,
            num_steps=self.num_steps,
            start_steps=self.start_steps,
            batch_size=self.batch_size,
            eval_every=self.eval_every,
            eval_episodes=self.eval_episodes,
            sac=self.config.to_dict(),
        )

    def _check_workdir(self) -> None:
        path = self.workdir / "config.json"
        mine = json.loads(json.dumps(self._run_config()))
        if path.exists():
            saved = json.loads(path.read_text())
            # num_steps may grow: a longer run continues (from a fresh episode) where it stopped.
            keys = (set(saved) | set(mine)) - {"num_steps"}
            changed = sorted(k for k in keys if saved.get(k) != mine.get(k))
            if changed:
                raise OFQLError(
                    f"{self.workdir} holds a SAC run with different settings "
                    f"({', '.join(changed)}): re-run with the saved settings from config.json "
                    "or use a new --workdir."
                )
        (self.workdir / "snapshots").mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(mine, indent=2))

    def _restore(self) -> None:
        step = self.checkpointer.latest_step()
        if step is None:
            return
        like = self.state.replace(key=jax.random.key_data(self.state.key))
        state, meta = self.checkpointer.restore(step, like)
        self.state = state.replace(key=jax.random.wrap_key_data(state.key))
        replay = self.workdir / "checkpoints" / f"replay_{step}.npz"
        if not replay.exists():
            raise OFQLError(
                f"The replay buffer {replay} of checkpoint {step} is missing: delete "
                f"{self.workdir / 'checkpoints' / str(step)} to fall back to an earlier one."
            )
        self.buffer.load(replay)
        self.rng.bit_generator.state = meta["rng"]
        self.step, self.episodes, self.log = meta["step"], meta["episodes"], meta["log"]
        print(f"resumed {self.workdir} at step {self.step}", file=sys.stderr)

    def _save(self) -> None:
        ckpt_dir = self.workdir / "checkpoints"
        self.buffer.save(ckpt_dir / f"replay_{self.step}.npz")
        meta = dict(
            step=self.step, episodes=self.episodes, log=self.log, rng=self.rng.bit_generator.state
        )
        state = self.state.replace(key=jax.random.key_data(self.state.key))
        self.checkpointer.save(self.step, state, meta)
        kept = {f"replay_{s}.npz" for s in self.checkpointer.all_steps()}
        for old in ckpt_dir.glob("replay_*.npz"):
            if old.name not in kept:
                old.unlink()

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, num_episodes: int, seed: int = EVAL_SEED) -> np.ndarray:
        """Undiscounted returns of the deterministic (mean) policy."""
        params = self.state.actor_params
        key = jax.random.key(0)

        def policy(obs: np.ndarray, _: int) -> np.ndarray:
            return np.asarray(self._act(params, obs, key, False))

        result = run_episodes(
            lambda: envs.make_env(self.env_id), policy, min(num_episodes, 10), seed, num_episodes
        )
        return result.returns

    def _evaluate_and_snapshot(self, writer, episode_returns: list[float]) -> None:
        returns = self.evaluate(self.eval_episodes)
        record = dict(
            step=self.step,
            eval_return_mean=float(returns.mean()),
            eval_return_std=float(returns.std()),
            train_return_recent=float(np.mean(episode_returns[-10:])) if episode_returns else None,
            wall_time=time.time(),
        )
        self.log.append(record)
        with open(self.workdir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        writer.add_scalar("eval/return_mean", record["eval_return_mean"], self.step)
        writer.add_scalar("eval/return_std", record["eval_return_std"], self.step)
        meta = dict(env=self.env_id, seed=self.seed, **record)
        save_actor(self.workdir / "snapshots" / f"{self.step}.npz", self.state.actor_params, meta)

    # -- training -----------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        from tensorboardX import SummaryWriter

        writer = SummaryWriter(str(self.workdir / "tb"))
        bar = tqdm(
            total=self.num_steps,
            initial=self.step,
            desc=f"SAC {self.env_id}",
            unit="step",
            disable=not self.progress,
            smoothing=0.05,
        )
        obs = self._reset()
        episode_return, episode_returns = 0.0, []
        checkpoint_due = False
        try:
            with StopRequest("at the next episode end") as stop:
                while self.step < self.num_steps:
                    if self.step < self.start_steps:
                        action = self.rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
                    else:
                        key = jax.random.fold_in(self.act_key, self.step)
                        action = np.asarray(
                            self._act(self.state.actor_params, obs[None], key, True)
                        )[0]
                    if self.buffer.size >= self.start_steps:
                        # Dispatched asynchronously: the env step below overlaps the update.
                        batch = self.buffer.sample(self.rng, self.batch_size)
                        self.state, metrics = self._update(self.state, batch)
                    env_action = np.clip(
                        self.scaler.from_unit(action), self.scaler.low, self.scaler.high
                    )
                    next_obs, reward, term, trunc, _ = self.env.step(env_action)
                    next_obs = np.asarray(next_obs, np.float32).ravel()
                    self.buffer.add(obs, action, reward, next_obs, term, trunc)
                    episode_return += float(reward)
                    obs = next_obs
                    self.step += 1
                    bar.update(1)
                    if self.step % self.eval_every == 0 or self.step == self.num_steps:
                        self._evaluate_and_snapshot(writer, episode_returns)
                        last = self.log[-1]
                        bar.set_postfix(eval=f"{last['eval_return_mean']:.0f}")
                        if self.buffer.size > self.start_steps:
                            for name, value in metrics.items():
                                writer.add_scalar(f"sac/{name}", float(value), self.step)
                        writer.flush()
                    if self.step % self.checkpoint_every == 0:
                        checkpoint_due = True
                    if term or trunc:
                        writer.add_scalar("train/episode_return", episode_return, self.step)
                        episode_returns.append(episode_return)
                        episode_return = 0.0
                        self.episodes += 1
                        obs = self._reset()
                        # Checkpoints sit on episode boundaries, so a resumed run is identical.
                        if checkpoint_due or stop.signum is not None:
                            self._save()
                            checkpoint_due = False
                            if stop.signum is not None:
                                raise OFQLError(
                                    f"Stopped by {stop.name} at step {self.step} after saving a "
                                    "checkpoint: re-run the same command to resume."
                                )
                if self.checkpointer.latest_step() != self.step:
                    self._save()
        finally:
            bar.close()
            writer.close()
        return self.log

    def _reset(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self.seed * 1_000_003 + self.episodes)
        return np.asarray(obs, np.float32).ravel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Hopper-v5", help="Gymnasium MuJoCo id, e.g. Hopper-v5")
    parser.add_argument("--workdir", required=True, help="run directory (resumed if it exists)")
    parser.add_argument("--num_steps", type=int, default=1_000_000, help="env steps (= updates)")
    parser.add_argument("--seed", type=int, default=0, help="seed of init, actions and resets")
    parser.add_argument("--start_steps", type=int, default=5000, help="uniform-action steps first")
    parser.add_argument("--eval_every", type=int, default=10_000, help="steps between snapshots")
    parser.add_argument("--eval_episodes", type=int, default=10, help="episodes per evaluation")
    parser.add_argument(
        "--checkpoint_every", type=int, default=50_000, help="steps between checkpoints"
    )
    parser.add_argument(
        "--hidden_dims", type=int_list, default=(256, 256), help="actor/critic hidden widths"
    )
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    sac_config = default_config()
    sac_config.hidden_dims = args.hidden_dims
    try:
        trainer = SACTrainer(
            args.env,
            args.workdir,
            args.num_steps,
            seed=args.seed,
            start_steps=args.start_steps,
            eval_every=args.eval_every,
            eval_episodes=args.eval_episodes,
            checkpoint_every=args.checkpoint_every,
            progress=not args.no_progress,
            sac_config=sac_config,
        )
        log = trainer.run()
    except OFQLError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if log:
        print(json.dumps(log[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

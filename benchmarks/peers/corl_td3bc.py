"""A peer reference run outside this package: CORL's TD3+BC on a replica (issue 35).

Set up (CORL's code is not part of ofql-jax; fetch github.com/tinkoff-ai/CORL, run at 6afec90):

    mkdir -p runs/peer_td3bc && cd runs/peer_td3bc
    cp <CORL>/algorithms/offline/td3_bc.py .        # then delete `import d4rl` and replace
                                                    # `import gym` by `import gymnasium as gym`
    cp <CORL>/configs/offline/td3_bc/hopper/medium_expert_v2.yaml .
    python -m venv --system-site-packages venv    # ofql-jax's environment: minari, gymnasium
    venv/bin/pip install torch==2.13.0 pyrallis==0.3.1
    cp ../../benchmarks/peers/corl_td3bc.py driver.py
    OMP_NUM_THREADS=2 venv/bin/python driver.py --out run_seed0 --threads 2 \
        --max-timesteps 1000000 --eval-freq 100000 --n-episodes 30 --seed 0 \
        --log-every 5000   # resumes from run_seed0

The evaluation's episodes do not touch the training's random streams, so the first 10 of 30
are CORL's 10 (its config's ``n_episodes``); 1 and 2 threads gave the same losses at step 4,000
(2026-12-07).

Driver: CORL's TD3+BC (td3_bc.py, imported as a module) on the ofql hopper medium-expert
Minari replica, evaluated in Gymnasium Hopper-v5, with checkpoint/resume.

What comes from CORL's file (unchanged code): TrainConfig, compute_mean_std, normalize_states,
ReplayBuffer, set_seed, Actor, Critic, TD3_BC (train step, state_dict/load_state_dict).
What the driver replaces (because it relies on d4rl / old gym's API):
  * d4rl.qlearning_dataset(env)   -> qlearning_dataset_from_minari() below
  * wrap_env(TransformObservation)-> state normalisation inside evaluate()
  * eval_actor (env.seed, 4-tuple step) -> evaluate(): reset(seed=seed) once, then reset(),
    episode ends at terminated or truncated (TimeLimit 1000 of Hopper-v5)
  * env.get_normalized_score      -> d4rl_score() with D4RL's hopper reference returns
  * wandb                         -> stub module (no network); metrics go to the log/JSONL
The training loop mirrors CORL's train(): same order of seeding / network construction,
replay_buffer.sample -> trainer.train each step, evaluate when (t + 1) % eval_freq == 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import types
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

# --- wandb stub (no network) -------------------------------------------------------------
_wandb = types.ModuleType("wandb")
_wandb.init = lambda *a, **k: None
_wandb.log = lambda *a, **k: None
_wandb.run = types.SimpleNamespace(save=lambda *a, **k: None)
sys.modules["wandb"] = _wandb

import gymnasium as gym  # noqa: E402
import minari  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import td3_bc as corl  # noqa: E402  (CORL's file, import lines changed only)

DATASET_ID = "ofql/hopper/medium-expert-v0"
ENV_ID = "Hopper-v5"
D4RL_HOPPER_RANDOM = -20.272305
D4RL_HOPPER_EXPERT = 3234.3


def d4rl_score(ret: float) -> float:
    return 100.0 * (ret - D4RL_HOPPER_RANDOM) / (D4RL_HOPPER_EXPERT - D4RL_HOPPER_RANDOM)


def qlearning_dataset_from_minari(dataset_id: str) -> dict[str, np.ndarray]:
    """D4RL qlearning_dataset format from Minari episodes.

    Per episode of T steps (T+1 observations): observations = obs[:-1], next_observations =
    obs[1:], terminals = terminations (truncations never set a terminal), rewards as stored.
    Same convention as ofql_jax.data.minari_data.episodes_to_transitions (actions not clipped
    here; they are checked to lie in [-1, 1]).
    """
    ds = minari.load_dataset(dataset_id)
    obs, nobs, act, rew, term = [], [], [], [], []
    for ep in ds.iterate_episodes():
        o = np.asarray(ep.observations, np.float32)
        obs.append(o[:-1])
        nobs.append(o[1:])
        act.append(np.asarray(ep.actions, np.float32))
        rew.append(np.asarray(ep.rewards, np.float32))
        term.append(np.asarray(ep.terminations, bool))
    data = {
        "observations": np.concatenate(obs),
        "actions": np.concatenate(act),
        "next_observations": np.concatenate(nobs),
        "rewards": np.concatenate(rew),
        "terminals": np.concatenate(term),
    }
    n_eps = len(rew)
    print(
        f"[data] {dataset_id}: {n_eps} episodes, {len(data['rewards'])} transitions, "
        f"{int(data['terminals'].sum())} terminals, actions in "
        f"[{data['actions'].min():.4f}, {data['actions'].max():.4f}], "
        f"episode returns mean {np.mean([r.sum() for r in rew]):.1f}",
        flush=True,
    )
    return data


@torch.no_grad()
def evaluate(env, actor, mean, std, n_episodes: int, seed: int, device: str = "cpu"):
    """CORL's eval_actor for Gymnasium: seed once, deterministic actor, raw-reward returns."""
    actor.eval()
    returns, lengths = [], []
    for i in range(n_episodes):
        state, _ = env.reset(seed=seed) if i == 0 else env.reset()
        done, ep_ret, ep_len = False, 0.0, 0
        while not done:
            action = actor.act((state - mean) / std, device)
            state, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            ep_ret += float(reward)
            ep_len += 1
        returns.append(ep_ret)
        lengths.append(ep_len)
    actor.train()
    return np.asarray(returns), np.asarray(lengths)


def save_checkpoint(path: Path, trainer, step: int, evaluations: list, mean, std) -> None:
    ckpt = {
        "step": step,
        "trainer": trainer.state_dict(),  # CORL's (online nets, optimisers, total_it)
        # CORL's load_state_dict re-creates targets as copies of the online nets, so the
        # targets are saved separately to make a resumed run exact.
        "actor_target": trainer.actor_target.state_dict(),
        "critic_1_target": trainer.critic_1_target.state_dict(),
        "critic_2_target": trainer.critic_2_target.state_dict(),
        "np_rng": np.random.get_state(),
        "py_rng": random.getstate(),
        "torch_rng": torch.get_rng_state(),
        "evaluations": evaluations,
        "state_mean": mean,
        "state_std": std,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, trainer):
    ckpt = torch.load(path, weights_only=False)
    trainer.load_state_dict(ckpt["trainer"])
    trainer.actor_target.load_state_dict(ckpt["actor_target"])
    trainer.critic_1_target.load_state_dict(ckpt["critic_1_target"])
    trainer.critic_2_target.load_state_dict(ckpt["critic_2_target"])
    np.random.set_state(ckpt["np_rng"])
    random.setstate(ckpt["py_rng"])
    torch.set_rng_state(ckpt["torch_rng"])
    return ckpt


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--config", default=str(HERE / "medium_expert_v2.yaml"))
    p.add_argument("--max-timesteps", type=int, default=1_000_000)
    p.add_argument("--eval-freq", type=int, default=100_000)
    p.add_argument("--n-episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=1000)
    p.add_argument("--resume-from", default="", help="checkpoint; default: OUT/latest.pt if any")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        # 2026-12-07, this 2-core CPU: 1 thread 85 steps/s, 2 threads 111-123 on an idle
        # machine but under 18 beside another busy process (OpenMP's threads spin), and
        # 48-60 with OMP_WAIT_POLICY=PASSIVE: use 2 only when nothing else runs
        help="torch threads (2 only on an otherwise idle machine)",
    )
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # CORL config from its yaml; only run-length/eval cadence/device are overridden.
    with open(args.config) as f:
        cfg_dict = yaml.safe_load(f)
    cfg_dict.update(
        device="cpu",
        seed=args.seed,
        max_timesteps=args.max_timesteps,
        eval_freq=args.eval_freq,
        n_episodes=args.n_episodes,
        checkpoints_path=None,
    )
    config = corl.TrainConfig(**cfg_dict)
    print("[config]", json.dumps(asdict(config)), flush=True)

    env = gym.make(ENV_ID)  # TimeLimit(1000)
    state_dim = env.observation_space.shape[0]
    action_dim = env.action_space.shape[0]

    dataset = qlearning_dataset_from_minari(DATASET_ID)
    if config.normalize_reward:
        corl.modify_reward(dataset, config.env)
    if config.normalize:
        state_mean, state_std = corl.compute_mean_std(dataset["observations"], eps=1e-3)
    else:
        state_mean, state_std = 0, 1
    dataset["observations"] = corl.normalize_states(dataset["observations"], state_mean, state_std)
    dataset["next_observations"] = corl.normalize_states(
        dataset["next_observations"], state_mean, state_std
    )
    replay_buffer = corl.ReplayBuffer(state_dim, action_dim, config.buffer_size, config.device)
    replay_buffer.load_d4rl_dataset(dataset)
    del dataset
    max_action = float(env.action_space.high[0])

    seed = config.seed
    corl.set_seed(seed)  # env=None: CORL's env.seed is old-gym; eval env is seeded in reset()
    env.action_space.seed(seed)

    actor = corl.Actor(state_dim, action_dim, max_action).to(config.device)
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=3e-4)
    critic_1 = corl.Critic(state_dim, action_dim).to(config.device)
    critic_1_optimizer = torch.optim.Adam(critic_1.parameters(), lr=3e-4)
    critic_2 = corl.Critic(state_dim, action_dim).to(config.device)
    critic_2_optimizer = torch.optim.Adam(critic_2.parameters(), lr=3e-4)
    trainer = corl.TD3_BC(
        max_action=max_action,
        actor=actor,
        actor_optimizer=actor_optimizer,
        critic_1=critic_1,
        critic_1_optimizer=critic_1_optimizer,
        critic_2=critic_2,
        critic_2_optimizer=critic_2_optimizer,
        discount=config.discount,
        tau=config.tau,
        device=config.device,
        policy_noise=config.policy_noise * max_action,
        noise_clip=config.noise_clip * max_action,
        policy_freq=config.policy_freq,
        alpha=config.alpha,
    )

    start, evaluations = 0, []
    resume = Path(args.resume_from) if args.resume_from else out / "latest.pt"
    if not args.no_resume and resume.exists():
        ckpt = load_checkpoint(resume, trainer)
        actor = trainer.actor
        start, evaluations = ckpt["step"], ckpt["evaluations"]
        assert np.allclose(ckpt["state_mean"], state_mean) and np.allclose(
            ckpt["state_std"], state_std
        )
        print(f"[resume] from {resume} at step {start} (total_it {trainer.total_it})", flush=True)

    print(
        f"[train] TD3+BC, env {ENV_ID}, data {DATASET_ID}, seed {seed}, "
        f"steps {start}->{config.max_timesteps}",
        flush=True,
    )
    t0, t_last, s_last, acc = time.time(), time.time(), start, {}
    for t in range(start, int(config.max_timesteps)):
        batch = replay_buffer.sample(config.batch_size)
        batch = [b.to(config.device) for b in batch]
        log_dict = trainer.train(batch)
        for k, v in log_dict.items():
            acc.setdefault(k, []).append(v)
        if (t + 1) % args.log_every == 0:
            now = time.time()
            sps = (t + 1 - s_last) / (now - t_last)
            left = (config.max_timesteps - t - 1) / max(sps, 1e-9)
            means = " ".join(f"{k} {np.mean(v):.4g}" for k, v in acc.items())
            print(
                f"[step {t + 1}] {sps:.1f} steps/s, ETA {left / 3600:.2f} h | {means}", flush=True
            )
            t_last, s_last, acc = now, t + 1, {}
        if (t + 1) % config.eval_freq == 0:
            te = time.time()
            rets, lens = evaluate(env, actor, state_mean, state_std, config.n_episodes, config.seed)
            scores = np.array([d4rl_score(r) for r in rets])
            rec = {
                "step": t + 1,
                "mean_return": float(rets.mean()),
                "std_return": float(rets.std()),
                "min_return": float(rets.min()),
                "max_return": float(rets.max()),
                "d4rl_score": d4rl_score(float(rets.mean())),
                "score_std": float(scores.std()),
                "returns": rets.tolist(),
                "lengths": lens.tolist(),
                "eval_seconds": time.time() - te,
                "wall_time": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            evaluations.append(rec)
            with open(out / "evals.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            print("---------------------------------------", flush=True)
            print(
                f"[eval] step {t + 1}: return {rets.mean():.1f} +- {rets.std():.1f} "
                f"(min {rets.min():.1f}, max {rets.max():.1f}), "
                f"D4RL score {rec['d4rl_score']:.2f}, "
                f"lengths {lens.tolist()}",
                flush=True,
            )
            print("---------------------------------------", flush=True)
            ck = out / f"checkpoint_{t + 1}.pt"
            save_checkpoint(ck, trainer, t + 1, evaluations, state_mean, state_std)
            save_checkpoint(out / "latest.pt", trainer, t + 1, evaluations, state_mean, state_std)
            print(f"[ckpt] {ck}", flush=True)
            t_last = time.time()  # keep eval time out of the steps/s figure
            s_last = t + 1
    print(f"[done] {config.max_timesteps} steps, {time.time() - t0:.0f} s this process", flush=True)


if __name__ == "__main__":
    main()

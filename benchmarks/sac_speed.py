"""SAC update speed on this CPU: one thread against all cores, with a matmul for scale.

Each setting runs in its own process (XLA reads ``XLA_FLAGS`` at import): *1 thread* is
``--xla_cpu_multi_thread_eigen=false`` pinned to one core (how two SAC runs share a
2-core machine), *all cores* is XLA's default threading. A row gives the jitted SAC
update (batch 256, 256 x 256 networks, as ``train_sac``) in ms and updates/s, and a
256 x 256 float32 matmul's GFLOP/s measured in the same process, so rows from different
days compare as ratios. ``update_gflops`` counts the update's matmul FLOPs (see
``update_flops``: about 0.59 GFLOP for Walker2d-v5), so it says how close the update runs
to the plain matmul.

Usage:
    python benchmarks/sac_speed.py                 # Hopper-v5 sizes (obs 11, act 3)
    python benchmarks/sac_speed.py --env Walker2d-v5 --updates 500
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def update_flops(obs_dim: int, act_dim: int, hidden: int = 256, batch: int = 256) -> float:
    """Matmul FLOPs of one SAC update (biases and elementwise work left out).

    Per sample, with C the twin critics' forward MACs and A the actor's: the critic step
    is a forward and backward of the critics (3C), the target critics (C) and the actor
    at the next state (A); the actor step is the actor's forward and backward (3A) and
    the critics' forward and input-gradient backward (2C): 6C + 4A MACs.
    """
    critics = 2 * ((obs_dim + act_dim) * hidden + hidden * hidden + hidden)
    actor = obs_dim * hidden + hidden * hidden + hidden * 2 * act_dim
    return 2.0 * batch * (6 * critics + 4 * actor)


def measure(env_id: str, updates: int) -> dict:
    """Time ``updates`` SAC updates and 2,000 matmuls in this process."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ofql_jax.behavior.sac import make_sac
    from ofql_jax.core.types import Transitions
    from ofql_jax.data.envs import make_env

    env = make_env(env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    sac = make_sac(obs_dim, act_dim)
    state = sac.init(jax.random.key(0))
    update = jax.jit(sac.update, donate_argnums=0)
    rng = np.random.default_rng(0)

    def normal(*shape):
        return jnp.asarray(rng.normal(size=(256, *shape)).astype(np.float32))

    batch = Transitions(normal(obs_dim), normal(act_dim), normal(), normal(obs_dim), normal() * 0)
    state, _ = update(state, batch)
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(updates):
        state, _ = update(state, batch)
    jax.block_until_ready(state)
    update_s = (time.perf_counter() - start) / updates

    x = jnp.ones((256, 256), jnp.float32)
    matmul = jax.jit(lambda a: a @ a)
    matmul(x).block_until_ready()
    start = time.perf_counter()
    for _ in range(2000):
        y = matmul(x)
    y.block_until_ready()
    matmul_gflops = 2 * 256**3 / ((time.perf_counter() - start) / 2000) / 1e9
    return dict(
        update_ms=round(update_s * 1e3, 2),
        updates_per_s=round(1 / update_s, 1),
        update_gflops=round(update_flops(obs_dim, act_dim) / update_s / 1e9, 1),
        matmul_gflops=round(matmul_gflops, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Hopper-v5", help="Gymnasium MuJoCo id (sets the sizes)")
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.env, args.updates)))
        return
    settings = {
        "1 thread": ("--xla_cpu_multi_thread_eigen=false", {0}),
        "all cores": ("", set(range(os.cpu_count() or 1))),
    }
    rows = []
    for name, (flags, cores) in settings.items():
        env = dict(os.environ, XLA_FLAGS=flags)
        cmd = [sys.executable, __file__, "--env", args.env, "--updates", str(args.updates)]
        done = subprocess.run(
            cmd + ["--child"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=lambda cores=cores: os.sched_setaffinity(0, cores),
        )
        row = dict(setting=name, cores=len(cores), **json.loads(done.stdout.splitlines()[-1]))
        rows.append(row)
        print(
            f"{name:>9} ({row['cores']} cores): update {row['update_ms']:6.2f} ms "
            f"({row['updates_per_s']:6.1f}/s, {row['update_gflops']:5.1f} GFLOP/s), "
            f"matmul {row['matmul_gflops']:6.1f} GFLOP/s"
        )
    print(json.dumps(dict(env=args.env, updates=args.updates, rows=rows)))


if __name__ == "__main__":
    main()

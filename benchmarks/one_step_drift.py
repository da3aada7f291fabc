"""Where OFQL's one-step map sits against the same network's few-step samplers, per checkpoint.

The Q term of OFQL's actor loss acts on the one-step map ``a = e - u(e, r=0, t=1)`` only,
while the paper's (t, r) sampler trains L_FBC on logit-normal pairs that almost never come
near the corner (r, t) = (0, 1). This probe loads a run's checkpoints and compares, on
dataset states, the one-step map with K-step mean-flow sampling (``z <- z - (t - r) u(z, r,
t)`` over K equal intervals) and with the instantaneous flow (Euler on ``u(z, t, t)``): each
sampler's mean squared distance to the dataset action at the same state, its share of
saturated components (|a| > 0.99) and the critics' value of its actions. If the one-step
map leaves the data while the few-step samplers of the same network stay, the Q term has
bent the corner of the mean-velocity field and not the field as a whole.

    python benchmarks/one_step_drift.py runs/x/programs/ofql-hopper-medium-expert \
        --steps 200000,240000 --states 4096 --json drift.json

Reads the run's dataset once (the replica or Minari data it trained on); nothing is written
into the run. The acting actor is the EMA (the paper's protocol); ``--actor online`` probes
the online policy instead.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.agents import ofql
from ofql_jax.maths import critic as critic_lib
from ofql_jax.maths import flow_matching, meanflow
from ofql_jax.training.experiment import load_run_data
from ofql_jax.training.loading import load_run


def samplers(policy, params, obs: jax.Array, noise: jax.Array, ks: list[int], euler: int):
    """``{name: actions}`` of one member: K-step mean flow for each K, and the flow ODE."""

    def u(z, r, t):
        return policy.apply(params, z, r, t, obs)

    out = {
        f"mean flow, {k} step{'s' if k > 1 else ''}": meanflow.few_step_action(u, noise, k)
        for k in ks
    }
    if euler:  # the instantaneous velocity u(z, t, t), integrated from t = 1 to 0
        out[f"flow ODE, {euler} Euler steps"] = flow_matching.euler_sample(
            lambda z, t: u(z, t, t), noise, euler, clip=(-1.0, 1.0)
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", help="an OFQL run's workdir (a suite's programs/<name>)")
    parser.add_argument("--steps", default="", help="checkpoint steps (default: every kept one)")
    parser.add_argument("--states", type=int, default=4096, help="dataset states probed")
    parser.add_argument("--ks", default="1,2,4,8", help="mean-flow step counts")
    parser.add_argument("--euler", type=int, default=32, help="flow-ODE Euler steps (0: none)")
    parser.add_argument("--actor", choices=("ema", "online"), default="ema")
    parser.add_argument("--seed", type=int, default=0, help="draws of states and noise")
    parser.add_argument("--json", default=None, help="write the table here")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    first = load_run(workdir)
    if first.config.algorithm != "ofql":
        raise SystemExit(f"{workdir} is a {first.config.algorithm} run: pass an OFQL run.")
    steps = [int(s) for s in args.steps.split(",") if s] or sorted(
        int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()
    )
    data = load_run_data(first.config, None)
    rng = np.random.default_rng(args.seed)
    idx = rng.choice(data.info.num_transitions, args.states, replace=False)
    obs = jnp.asarray(data.transitions.observations[idx])
    data_actions = jnp.asarray(data.transitions.actions[idx])
    noise = jnp.asarray(rng.standard_normal(data_actions.shape), jnp.float32)
    policy = ofql.policy_network(first.config.agent, data.info.act_dim)
    critics = critic_lib.make_critics(first.config.agent)
    ks = [int(k) for k in args.ks.split(",") if k]
    rows = []
    q_data_of = jax.jit(lambda p: critics.apply(p, obs, data_actions).mean())
    for step in steps:
        run = first if step == first.step else load_run(workdir, step)
        for i, member in enumerate(run.members):
            pick = lambda tree, i=i: jax.tree.map(lambda x: x[i], tree)  # noqa: E731
            states = run.states
            params = pick(
                states.target_policy_params if args.actor == "ema" else states.policy_params
            )
            critic_params = pick(states.critic_params)
            q_data = float(q_data_of(critic_params))
            for name, actions in samplers(policy, params, obs, noise, ks, args.euler).items():
                row = {
                    "step": step,
                    "seed": member.seed,
                    "sampler": name,
                    "mse_to_data": float(jnp.square(actions - data_actions).sum(-1).mean()),
                    "saturation": float(jnp.mean(jnp.abs(actions) > 0.99)),
                    "q_mean": float(critics.apply(critic_params, obs, actions).mean()),
                    "q_data_mean": q_data,
                }
                rows.append(row)
                print(
                    f"step {step:>8} seed {member.seed} {name:<24} mse to data "
                    f"{row['mse_to_data']:.3f}  saturation {row['saturation']:.3f}  "
                    f"Q {row['q_mean']:.1f} (data {q_data:.1f})",
                    flush=True,
                )
    if args.json:
        meta = {
            "workdir": str(workdir),
            "actor": args.actor,
            "states": args.states,
            "seed": args.seed,
            "data_saturation": float(jnp.mean(jnp.abs(data_actions) > 0.99)),
        }
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

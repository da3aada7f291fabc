"""Evaluate sweep members with another member's critics: which part makes the N-candidate score?

Under the paper's protocol (N candidates from the actor, the critics pick one), a score
difference between two settings may come from the candidates (the actor) or from the choice
(the critics). This probe loads one checkpoint of a sweep program (``load_run``), gives each
member of ``--pairs`` the critics (online and target) of its partner, and evaluates the
swapped members with the run's protocol at N candidates. Episodes are seeded by (seed, step,
episode) as in the run's own evaluation, so a swapped member meets the same starts its
unswapped self met and ``--also_unswapped`` reproduces the run's logged scores. The run's
workdir is only read.

    python benchmarks/swap_critics.py runs/x/programs/ofql-halfcheetah-medium-expert-eta-sweep \
        --step 100000 --pairs eta=0.3/seed_0:eta=0/seed_0,eta=0.3/seed_1:eta=0/seed_1 \
        --json swap.json

Each pair ``A:B`` evaluates A's actor with B's critics and B's actor with A's critics.
``--spread S`` also measures, on S dataset states (fixed draws), each member's N candidates
as its protocol draws them: their spread (the per-dimension standard deviation over the N,
averaged), their distance to the data action (root mean square; also the protocol's chosen
action's), and the critics' view of them: the candidates' mean Q and the best candidate's Q
minus that mean, under its own critics and under its partner's.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
from probe_cli import finish

from ofql_jax.maths.critic import make_critics
from ofql_jax.training.experiment import load_run_data
from ofql_jax.training.loading import load_run


def swapped_states(states, rows: list[int], critic_rows: list[int]):
    """``states`` with row ``rows[i]``'s critics replaced by row ``critic_rows[i]``'s."""
    src = jnp.arange(jax.tree.leaves(states.critic_params)[0].shape[0])
    src = src.at[jnp.asarray(rows)].set(jnp.asarray(critic_rows))
    take = lambda tree: jax.tree.map(lambda x: x[src], tree)  # noqa: E731
    return states.replace(
        critic_params=take(states.critic_params),
        target_critic_params=take(states.target_critic_params),
    )


def candidate_spread(run, rows, critic_rows, num_states: int, n: int) -> dict:
    """Per member: spread of its N candidates, distance to the data, their Q (own, partner)."""
    data = load_run_data(run.config, None).transitions
    idx = np.random.default_rng(0).choice(len(data.observations), num_states, replace=False)
    obs = jnp.asarray(data.observations[idx])
    data_act = jnp.asarray(data.actions[idx])
    settings = run.sample_settings(n)
    agent, critics = run.agent, run.states.target_critic_params
    critic_net = make_critics(run.config.agent)
    keys = jax.random.split(jax.random.key(1), n)  # the same draws for every member
    one = {k: v for k, v in settings.items() if k in ("actor", "noise_temperature")}
    obs_rep = jnp.repeat(obs[:, None], n, axis=1)
    out = {}
    for row, partner in zip(rows, critic_rows, strict=True):
        state = jax.tree.map(lambda x, r=row: x[r], run.states)
        cands = jnp.stack(
            [agent.sample_actions(state, obs, k, 1, **one) for k in keys], axis=1
        )  # [S, N, d]
        chosen = agent.sample_actions(state, obs, jax.random.key(2), n, **settings)
        stats = {
            "candidate_std": float(cands.std(axis=1).mean()),
            "rms_to_data": float(jnp.sqrt(((cands - data_act[:, None]) ** 2).mean())),
            "chosen_rms_to_data": float(jnp.sqrt(((chosen - data_act) ** 2).mean())),
        }
        for name, r in (("own", row), ("partner", partner)):
            params = jax.tree.map(lambda x, r=r: x[r], critics)
            q = critic_net.apply(params, obs_rep, cands).min(0)  # [S, N]
            stats[f"q_best_minus_mean_{name}"] = float((q.max(1) - q.mean(1)).mean())
            stats[f"q_mean_{name}"] = float(q.mean())
        out[run.members[row].label] = stats
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", help="a sweep program's workdir (a suite's programs/<name>)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint (default: newest)")
    parser.add_argument("--pairs", required=True, help="A:B,... member labels to swap")
    parser.add_argument("--candidates", type=int, default=None, help="N (the run's protocol)")
    parser.add_argument("--episodes", type=int, default=None, help="per member (run's default)")
    parser.add_argument("--also_unswapped", action="store_true", help="evaluate as trained too")
    parser.add_argument("--spread", type=int, default=0, help="states for the spread (0: no)")
    parser.add_argument("--skip_eval", action="store_true", help="only the spread")
    parser.add_argument("--json", default=None, help="write the scores here")
    args = parser.parse_args()
    run = load_run(args.workdir, args.step)
    labels = [m.label for m in run.members]
    rows, critic_rows = [], []
    for pair in args.pairs.split(","):
        a, b = (run.member_index(member=x.strip()) for x in pair.split(":"))
        rows += [a, b]
        critic_rows += [b, a]
    n = args.candidates or run.config.eval_candidates
    wanted = {run.members[r].seed for r in rows}
    out = {"workdir": str(run.workdir), "step": run.step, "candidates": n, "results": {}}
    cases = [] if args.skip_eval else [("swapped", swapped_states(run.states, rows, critic_rows))]
    if args.also_unswapped and not args.skip_eval:
        cases.append(("as_trained", run.states))
    if args.spread:
        out["spread"] = candidate_spread(run, rows, critic_rows, args.spread, n)
        for label, stats in out["spread"].items():
            print(f"  {label:>16}: " + ", ".join(f"{k} {v:.4g}" for k, v in stats.items()))
    for name, states in cases:
        start = time.time()
        view = dataclasses.replace(run, states=states)
        res = view.evaluate(sorted(wanted), args.episodes, n, progress=True)
        scores = next(iter(res["variants"].values()))["scores"]
        members = [m["label"] for m in res["members"]]
        out["results"][name] = {
            "scores": dict(zip(members, scores, strict=True)),
            "episodes": res["episodes"],
            "seconds": round(time.time() - start, 1),
        }
        print(f"{name} ({time.time() - start:.0f} s):")
        for r, c in zip(rows, critic_rows, strict=True):
            actor, critic = labels[r], labels[c] if name == "swapped" else labels[r]
            score = out["results"][name]["scores"][labels[r]]
            print(f"  actor {actor:>16}  critics {critic:>16}: {score:.1f}")
    out["pairs"] = [
        {"actor": labels[r], "critics": labels[c]} for r, c in zip(rows, critic_rows, strict=True)
    ]
    finish(out, "swap_critics.py", args.json)


if __name__ == "__main__":
    main()

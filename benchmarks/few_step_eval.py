"""Returns of an OFQL checkpoint when its network acts with K mean-flow steps instead of one.

OFQL acts with the one-step map ``a = e - u(e, 0, 1)``; the same mean-velocity network also
samples in K jumps over equal intervals (``z_r = z_t - (t - r) u(z_t, r, t)``,
``ofql_jax.maths.meanflow.few_step_action``). ``benchmarks/one_step_drift.py`` compares the
samplers' actions on dataset states; this probe compares their **returns**: it evaluates
every member of a run at one checkpoint with K = 1, 2, 4, ... steps, on the run's own episode
starts and noise draws, N candidates (default 1) at a noise temperature (default 1.0, the
run's N = 1). K = 1 reproduces the run's own score (checked: it is the agent's sampler).

If the few-step samplers of an eta-0 actor (flow BC's) score well above its one-step map,
the one-step map is a worse behaviour model than the field it was distilled from, and OFQL's
Q term starts from that handicap; if they score alike, the one-step map is faithful.

    python benchmarks/few_step_eval.py runs/x/programs/ofql-halfcheetah-medium-expert-eta-sweep \
        --step 200000 --ks 1,2,4 --json few_step.json

The run's workdir is only read.
"""

from __future__ import annotations

import dataclasses
import time

from probe_cli import checkpoint_parser, chosen_members, finish

from ofql_jax.agents import base, ofql
from ofql_jax.maths import critic as critic_lib
from ofql_jax.maths import meanflow
from ofql_jax.training.loading import LoadedRun, load_run


def with_steps(run: LoadedRun, steps: int) -> LoadedRun:
    """``run`` whose agent acts with ``steps`` mean-flow jumps (``steps = 1``: unchanged)."""
    if steps == 1:
        return run
    policy = ofql.policy_network(run.config.agent, run.agent.act_dim)
    critics = critic_lib.make_critics(run.config.agent)

    def act(params, obs, noise):
        u = lambda z, r, t: policy.apply(params, z, r, t, obs)  # noqa: E731
        return meanflow.few_step_action(u, noise, steps)

    decide = base.candidate_decide(act, critics)
    sample = base.standard_sample_actions(lambda: decide, run.agent.act_dim)
    agent = run.agent._replace(sample_actions=sample, decide=decide)
    return dataclasses.replace(run, agent=agent)


def main() -> None:
    parser = checkpoint_parser(__doc__)
    parser.add_argument("--ks", default="1,2,4", help="mean-flow step counts")
    parser.add_argument("--candidates", type=int, default=1, help="N (1: no critics' choice)")
    parser.add_argument("--noise", type=float, default=1.0, help="noise temperature")
    parser.add_argument("--episodes", type=int, default=None, help="per member (run's default)")
    parser.add_argument("--json", default=None, help="write the scores here")
    args = parser.parse_args()
    run = load_run(args.workdir, args.step)
    if run.config.algorithm != "ofql":
        raise SystemExit(f"{args.workdir} is a {run.config.algorithm} run: pass an OFQL run.")
    labels = [m.label for m in run.members]
    shown = chosen_members(run, args.members)  # every member is evaluated; these are reported
    out = {"workdir": str(run.workdir), "step": run.step, "candidates": args.candidates,
           "noise_temperature": args.noise, "scores": {}}  # fmt: skip
    for k in [int(x) for x in args.ks.split(",") if x]:
        start = time.time()
        res = with_steps(run, k).evaluate(
            None, args.episodes, args.candidates, noise_temperature=args.noise
        )
        variant = next(iter(res["variants"].values()))
        out["episodes"] = res["episodes"]
        scores = {x: s for x, s in zip(labels, variant["scores"], strict=True) if x in shown}
        out["scores"][str(k)] = scores
        row = "  ".join(f"{label} {s:.1f}" for label, s in scores.items())
        print(f"K = {k:>2} ({time.time() - start:.0f} s): {row}", flush=True)
    finish(out, "few_step_eval.py", args.json)


if __name__ == "__main__":
    main()

"""Which behaviour do the critics choose? Candidates scored by the replica's own two policies.

A medium-expert replica mixes the episodes of two shipped SAC policies (``ofql_jax.behavior``),
so the log-odds ``log pi_E(a|s) - log pi_M(a|s)`` of the expert's tanh-Gaussian against the
medium one's says which behaviour an action ``a`` looks like at ``s`` (positive: the
expert's; the tanh Jacobian is the same for both and cancels). This probe plays a member's
protocol episodes (the run's evaluation starts), keeps the observation every ``--every``
steps, draws the protocol's N candidates there and reports, per member: the candidates' mean
log-odds and share classed expert, the same for the critics' choice (weighted by
softmax(w Q), as the protocol draws), the rank correlation of Q with the log-odds over
the N, and how spread the N are (their std per action dim and share at the clip edge). It
first checks the classifier on the data: actions of the replica's medium episodes (its first
``medium`` steps) against those of its expert episodes.

    python benchmarks/mode_choice.py runs/x/programs/ofql-halfcheetah-medium-expert-eta-sweep \
        --step 150000 --json modes.json
"""

from __future__ import annotations

import time

import jax.numpy as jnp
import numpy as np
import scipy.stats
from critic_ranking import candidates_and_q, choice_weights, collect_states
from probe_cli import checkpoint_parser, chosen_members, finish

from ofql_jax.behavior.sac import make_sac
from ofql_jax.behavior.zoo import load_policy, sac_config_of
from ofql_jax.training.experiment import load_run_data
from ofql_jax.training.loading import load_run

EDGE = 1.0 - 1e-6  # actions at the clip boundary: atanh stays finite


def gaussian_params(env: str, level: str):
    """``(obs [..., o]) -> (mean, std)`` of the shipped policy's pre-tanh Gaussian."""
    policy = load_policy(env, level)
    sac = make_sac(policy.meta["obs_dim"], policy.meta["act_dim"], sac_config_of(policy.meta))

    def params(obs):
        mean, log_std = sac.actor.apply(policy.params, jnp.asarray(obs, jnp.float32))
        return np.asarray(mean, np.float64), np.exp(np.asarray(log_std, np.float64))

    return params


def log_odds(expert, medium, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """``log pi_E(a|s) - log pi_M(a|s)`` for actions ``[..., d]`` at ``obs`` ``[..., o]``
    (broadcast over a candidates axis when ``obs`` has one fewer)."""
    u = np.arctanh(np.clip(actions, -EDGE, EDGE))
    out = 0.0
    for sign, (mean, std) in ((1.0, expert(obs)), (-1.0, medium(obs))):
        if mean.ndim < u.ndim:
            mean, std = mean[..., None, :], std[..., None, :]
        out = out + sign * (-0.5 * ((u - mean) / std) ** 2 - np.log(std)).sum(-1)
    return out


def main() -> None:
    parser = checkpoint_parser(__doc__)
    parser.add_argument("--episodes", type=int, default=4, help="protocol episodes per member")
    parser.add_argument("--every", type=int, default=20, help="keep a state every K steps")
    parser.add_argument("--candidates", type=int, default=None, help="N (the run's protocol)")
    parser.add_argument("--data_states", type=int, default=4096, help="per level, the check")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    run = load_run(args.workdir, args.step)
    env = run.config.task.split("-")[0]
    expert, medium = gaussian_params(env, "expert"), gaussian_params(env, "medium")
    data = load_run_data(run.config, None).transitions
    half = len(data.observations) // 2  # medium-expert: the medium episodes first
    rng = np.random.default_rng(0)
    check = {}
    for level, lo_idx, hi_idx in (("medium", 0, half), ("expert", half, len(data.actions))):
        idx = rng.integers(lo_idx, hi_idx, args.data_states)
        lo = log_odds(expert, medium, data.observations[idx], data.actions[idx])
        check[level] = {"mean_log_odds": float(lo.mean()), "share_classed_expert":
                        float((lo > 0).mean())}  # fmt: skip
    print(f"data check: {check}")
    chosen = chosen_members(run, args.members)
    n = args.candidates or run.config.eval_candidates
    out = {"workdir": str(run.workdir), "step": run.step, "candidates": n, "env": env,
           "data_check": check, "members": {}}  # fmt: skip
    for label in chosen:
        start = time.time()
        row = run.member_index(member=label)
        _, obs = collect_states(run, row, args.episodes, args.every, 1000)
        cands, q, settings = candidates_and_q(run, row, obs, n, seed=run.members[row].seed)
        lo = log_odds(expert, medium, obs, cands)  # [S, N]
        p = choice_weights(q, settings["q_temperature"])
        rho = [scipy.stats.spearmanr(a, b).statistic for a, b in zip(q, lo, strict=True)]
        stats = {
            "states": len(obs),
            "candidates_mean_log_odds": float(lo.mean()),
            "chosen_mean_log_odds": float((p * lo).sum(1).mean()),
            "candidates_share_expert": float((lo > 0).mean()),
            "chosen_share_expert": float((p * (lo > 0)).sum(1).mean()),
            "spearman_q_log_odds": float(np.nanmean(rho)),
            "spearman_se": float(np.nanstd(rho, ddof=1) / np.sqrt(np.isfinite(rho).sum())),
            # How far the actor is from deterministic: the N candidates' std per action dim
            # (mean over dims and states), and their share of components at the clip edge.
            "candidates_std": float(cands.std(axis=1).mean()),
            "candidates_saturation": float((np.abs(cands) > 0.99).mean()),
            "seconds": round(time.time() - start, 1),
        }
        out["members"][label] = stats
        print(f"{label:>16} ({len(obs)} states): log-odds candidates "
              f"{stats['candidates_mean_log_odds']:+.2f} -> chosen "
              f"{stats['chosen_mean_log_odds']:+.2f}; classed expert "
              f"{stats['candidates_share_expert']:.2f} -> {stats['chosen_share_expert']:.2f}; "
              f"Spearman(Q, log-odds) {stats['spearman_q_log_odds']:+.3f} +- "
              f"{stats['spearman_se']:.3f}; candidates' std {stats['candidates_std']:.3f}, "
              f"saturation {stats['candidates_saturation']:.3f}", flush=True)  # fmt: skip
    finish(out, "mode_choice.py", args.json)


if __name__ == "__main__":
    main()

"""Do the critics rank an actor's N candidates as the environment does? Monte Carlo probe.

Under the paper's protocol the target critics' min scores N candidates and one is drawn from
softmax(w Q). This probe measures how well that choice matches the environment, per member
of a checkpoint (``load_run``): it plays ``--episodes`` episodes with the member's own
protocol policy (the run's evaluation starts), keeps the simulator state every
``--every`` steps, draws at each kept state the N candidates as the protocol does, and for
every candidate restores the state, takes the candidate and then follows a continuation
policy for ``--horizon`` steps, summing the discounted rewards (``g``, the candidate's
Monte Carlo value over that horizon). The continuation is the member's own actor with its
initial noise scaled by ``--continuation_noise`` (0: the noise-free one-step map, so that
OFQL's rollouts are deterministic); its draws are shared by all candidates of a state
(common random numbers), so candidates differ by their first action only.

Per state it compares the critics' Q with g over the N candidates: the rank correlation
(Spearman), what the choice gains in g over a uniform pick (sum_j softmax(w Q)_j g_j - mean
g), the most a choice could gain (max g - mean g) and what the critics believe the choice
gains (the same in Q). Reported as means over states (and their standard error). The run's
workdir is only read; simulator states come from MuJoCo environments (``set_state``).

    python benchmarks/critic_ranking.py runs/x/programs/ofql-halfcheetah-medium-expert-eta-sweep \
        --step 150000 --json ranking.json

The horizon truncates g (0.99^300 = 0.05 of the weight is left out); candidates of one state
share everything after their first action but its consequences, so the truncation shifts
their g alike. A continuation other than the protocol's own policy (N = 50) keeps the
rollouts cheap: g is the value of a candidate followed by the one-step actor, not by the
critics' choice.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
from probe_cli import checkpoint_parser, chosen_members, finish

from ofql_jax.agents.base import scale_noise, select_actor
from ofql_jax.evaluation.evaluator import episode_env_seed
from ofql_jax.evaluation.policy import decide_with
from ofql_jax.maths.critic import make_critics
from ofql_jax.training.loading import load_run


def collect_states(run, row: int, episodes: int, every: int, max_steps: int):
    """Simulator states (qpos, qvel) and observations every ``every`` steps of the member's
    protocol episodes (the run's evaluation starts)."""
    member = run.members[row]
    policy = run.policy(member=member.label, noise_seed=member.seed)
    env = run.make_env()
    sim, obs_kept = [], []
    try:
        for e in range(episodes):
            obs, _ = env.reset(seed=episode_env_seed(member.seed, run.step, e))
            for t in range(1, max_steps + 1):
                obs, _, terminated, truncated, _ = env.step(policy(obs))
                if terminated or truncated:
                    break
                if t % every == 0:
                    data = env.unwrapped.data
                    sim.append((data.qpos.copy(), data.qvel.copy()))
                    obs_kept.append(np.asarray(obs, np.float32))
    finally:
        env.close()
    return sim, np.stack(obs_kept)


def candidates_and_q(run, row: int, obs: np.ndarray, n: int, seed: int):
    """The protocol's N candidates at each state (unit actions [S, N, d]) and the target
    critics' min of each [S, N]."""
    settings = run.sample_settings(n)
    state = jax.tree.map(lambda x: x[row], run.states)
    params = select_actor(state, settings["actor"])
    noise = jax.random.normal(jax.random.key(seed), (len(obs), n, run.agent.noise_dim))
    noise = scale_noise(noise, settings["noise_temperature"], run.agent.scaled_noise_dim)
    obs_rep = jnp.repeat(jnp.asarray(obs)[:, None], n, axis=1)
    cands = decide_with(run.agent, 1.0)(params, {}, obs_rep, noise, None)
    critic_net = make_critics(run.config.agent)
    q = critic_net.apply(state.target_critic_params, obs_rep, cands).min(0)
    return np.asarray(cands), np.asarray(q), settings


def rollout_values(envs, sim, cands: np.ndarray, act, to_env, noise_dim: int, horizon: int,
                   gamma: float, seed: int) -> np.ndarray:  # fmt: skip
    """g [S, N]: candidate ``cands[s, j]`` (unit actions) taken in ``envs[s * N + j]`` restored
    to ``sim[s]`` (qpos, qvel), then ``act(obs [S * N, o], noise [S * N, z])`` (unit actions)
    for ``horizon`` steps, rewards discounted by ``gamma`` and summed until termination.
    Each step's N(0, I) noise [noise_dim] is drawn once per state and shared by its N
    candidates (common random numbers), so they differ by their first action only; ``act``
    applies its own temperature."""
    s, n, _ = cands.shape
    for b, env in enumerate(envs):
        env.set_state(*sim[b // n])
    actions = to_env(cands.reshape(s * n, -1))
    rng = np.random.default_rng(seed)
    g, alive, discount = np.zeros(s * n), np.ones(s * n, bool), 1.0
    obs_dim = envs[0].observation_space.shape[0]
    for t in range(horizon + 1):  # the candidate, then ``horizon`` continuation steps
        obs = np.zeros((s * n, obs_dim), np.float32)
        for b, env in enumerate(envs):
            if alive[b]:
                o, r, terminated, _, _ = env.step(actions[b])
                g[b] += discount * r
                obs[b], alive[b] = o, not terminated
        discount *= gamma
        if t == horizon or not alive.any():
            break
        z = rng.standard_normal((s, 1, noise_dim)).astype(np.float32)
        z = np.broadcast_to(z, (s, n, noise_dim)).reshape(s * n, -1)
        actions = to_env(np.asarray(act(obs, z)))
    return g.reshape(s, n)


def continuation(run, row: int, noise_temperature: float):
    """``act(obs, noise)``: the member's actor (the protocol's parameters) with its initial
    noise scaled by ``noise_temperature``, jitted."""
    state = jax.tree.map(lambda x: x[row], run.states)
    params = select_actor(state, run.sample_settings(1)["actor"])
    decide = decide_with(run.agent, 1.0)
    temperature, scaled = np.float32(noise_temperature), run.agent.scaled_noise_dim
    return jax.jit(lambda o, z: decide(params, {}, o, scale_noise(z, temperature, scaled), None))


def choice_weights(q: np.ndarray, w: float) -> np.ndarray:
    """softmax(w Q) over the candidates axis of ``q`` [S, N]: the protocol's draw."""
    p = np.exp(w * (q - q.max(1, keepdims=True)))
    return p / p.sum(1, keepdims=True)


def summarize(q: np.ndarray, g: np.ndarray, w: float) -> dict[str, float]:
    """Means over states (and standard errors) of how the critics' choice fares in g."""
    p = choice_weights(q, w)
    rho = np.array([scipy.stats.spearmanr(qs, gs).statistic for qs, gs in zip(q, g, strict=True)])
    rows = {
        "spearman": rho,
        "choice_gain": (p * g).sum(1) - g.mean(1),
        "oracle_gain": g.max(1) - g.mean(1),
        "critics_claimed_gain": (p * q).sum(1) - q.mean(1),
        "g_std_over_candidates": g.std(1),
        "q_std_over_candidates": q.std(1),
        "g_mean": g.mean(1),
        "q_mean": q.mean(1),
        "argmax_q_gain": g[np.arange(len(g)), q.argmax(1)] - g.mean(1),
    }
    out = {}
    for k, v in rows.items():
        v = v[np.isfinite(v)]
        out[k] = float(v.mean())
        out[f"{k}_se"] = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return out


def main() -> None:
    parser = checkpoint_parser(__doc__)
    parser.add_argument("--episodes", type=int, default=2, help="protocol episodes per member")
    parser.add_argument("--every", type=int, default=100, help="keep a state every K steps")
    parser.add_argument("--max_steps", type=int, default=1000, help="steps per episode")
    parser.add_argument("--candidates", type=int, default=None, help="N (the run's protocol)")
    parser.add_argument("--horizon", type=int, default=300, help="continuation steps")
    parser.add_argument("--continuation_noise", type=float, default=0.0,
                        help="the continuation's noise temperature (0: noise-free)")  # fmt: skip
    parser.add_argument("--jitter", type=float, default=0.0,
                        help="a control: every candidate is the first one plus this times "
                             "N(0, 1) noise, so g's spread is what the rollouts make of tiny "
                             "differences")  # fmt: skip
    parser.add_argument("--rollouts", type=int, default=1,
                        help="continuations per candidate, g averaged (draws differ between "
                             "rollouts, shared by a state's candidates)")  # fmt: skip
    parser.add_argument("--gamma", type=float, default=None,
                        help="discount of g (default: the run's; 1 with the continuation at "
                             "the protocol's noise makes choice_gain the per-step advantage "
                             "of the critics' choice over one candidate)")  # fmt: skip
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    run = load_run(args.workdir, args.step)
    chosen = chosen_members(run, args.members)
    n = args.candidates or run.config.eval_candidates
    gamma = args.gamma if args.gamma is not None else float(run.config.agent.get("discount", 0.99))
    out = {"workdir": str(run.workdir), "step": run.step, "candidates": n, "gamma": gamma,
           "horizon": args.horizon, "continuation_noise": args.continuation_noise,
           "rollouts": args.rollouts, "jitter": args.jitter, "members": {}}  # fmt: skip
    envs = None
    for label in chosen:
        start = time.time()
        row = run.member_index(member=label)
        sim, obs = collect_states(run, row, args.episodes, args.every, args.max_steps)
        cands, q, settings = candidates_and_q(run, row, obs, n, seed=run.members[row].seed)
        if args.jitter:
            rng = np.random.default_rng(2)
            cands = np.clip(cands[:, :1] + args.jitter * rng.standard_normal(cands.shape), -1, 1)
        if envs is None or len(envs) != cands.shape[0] * n:
            envs = [run.make_env().unwrapped for _ in range(cands.shape[0] * n)]
        act = continuation(run, row, args.continuation_noise)
        g = np.mean([rollout_values(envs, sim, cands, act, run.info.scaler.from_unit,
                                    run.agent.noise_dim, args.horizon, gamma, seed=1 + k)
                     for k in range(args.rollouts)], axis=0)  # fmt: skip
        stats = summarize(q, g, settings["q_temperature"])
        stats.update(states=len(obs), seconds=round(time.time() - start, 1))
        out["members"][label] = stats
        print(f"{label:>16} ({len(obs)} states, {time.time() - start:.0f} s): "
              f"spearman {stats['spearman']:+.3f} +- {stats['spearman_se']:.3f}, choice gain "
              f"{stats['choice_gain']:+.2f} +- {stats['choice_gain_se']:.2f} (oracle "
              f"{stats['oracle_gain']:.2f}, critics claim {stats['critics_claimed_gain']:.2f}), "
              f"g std {stats['g_std_over_candidates']:.2f}, Q std "
              f"{stats['q_std_over_candidates']:.2f}", flush=True)  # fmt: skip
    out["settings"] = {k: v for k, v in settings.items()}
    finish(out, "critic_ranking.py", args.json)


if __name__ == "__main__":
    main()

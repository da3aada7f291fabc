"""Does the Q term act? Agents on a bimodal bandit whose data mixes a good and a bad behaviour.

``ofql_jax.data.synthetic.bimodal_bandit``: two equally likely action modes at +0.5 and -0.5
in every action dim, a reward that peaks on the +0.5 mode (``--reward peak``) or keeps rising
past the data (``--reward rising``), every step terminal. Behaviour cloning keeps half its
actions on each mode; an agent whose Q term acts moves them to the +0.5 mode. Each setting
trains ``--seeds`` seeds in one vmapped program (networks 3 x 128, batch 256, the agent's
defaults otherwise) and prints, after every ``--chunk`` updates, the share of the online
one-step (N = 1) actions on the good mode, their mean |a| (data: 0.5), the share of
saturated components and the mean true reward (data: 0.47), averaged over seeds, plus the
action-space diagnostic ``diag/action_ratio`` (eta |J g_Q| / |J g_BC|, docs/algorithm.md).

A setting is ``algorithm[:field=value,...]`` with the agent's config fields, e.g.

    python benchmarks/bandit_study.py                                  # issue 35's grid
    python benchmarks/bandit_study.py ofql ofql:endpoint_ratio=0 dql flow_bc --steps 3000
    python benchmarks/bandit_study.py ofql:eta=0.001 --reward rising --json out.json
    python benchmarks/bandit_study.py --load out.json --plot out.png   # a figure, no training
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from ofql_jax.agents import AGENTS
from ofql_jax.data.synthetic import BIMODAL_SPREAD, bimodal_bandit, bimodal_stats
from ofql_jax.training.trainer import init_states, make_diagnostics, make_train_chunk, seed_values

RATIO = "diag/action_ratio"
DIAGNOSTICS = ("action_ratio", "action_ratio_adam", "action_cos", "grad_ratio", "q_policy_mean")
DEFAULT_SETTINGS = (  # the default, each open choice against it, and the baselines
    "ofql",
    "ofql:bc_loss_reduction=mean",
    "ofql:endpoint_ratio=0.25",
    "ofql:eta=0.001",
    "ofql:eta=1.0",
    "flow_bc",
    "dql",
    "fql",
)


def parse_setting(text: str) -> tuple[str, dict]:
    """``"ofql:eta=0.1,bc_loss_reduction=mean"`` -> ``("ofql", {"eta": 0.1, ...})``."""
    name, _, rest = text.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = float(value) if "." in value or "e" in value else int(value)
        except ValueError:
            overrides[key] = value
    return name, overrides


def bandit_config(name: str, overrides: dict, width: int = 128):
    c = AGENTS[name].default_config()
    for field in ("hidden_dims", "critic_hidden_dims", "flow_hidden_dims"):
        if field in c:
            c[field] = (width,) * 3
    for key, value in overrides.items():
        if key not in c:
            raise SystemExit(f"error: {name} has no config field {key!r}.")
        c[key] = type(c[key])(value) if not isinstance(c[key], tuple) else value
    return c


def run(
    name: str, config, steps: int, chunk: int, seeds: int, reward: str, act_dim: int, spread: float
) -> list[dict]:
    """Train agent ``name`` with ``config``; after every chunk, the policy's place on the bandit
    (seed means)."""
    data = bimodal_bandit(act_dim=act_dim, reward=reward, spread=spread)
    data = jax.tree.map(jnp.asarray, data)
    agent = AGENTS[name].make(config, data.observations.shape[1], act_dim, steps)
    values = seed_values(0, seeds)
    states = init_states(agent, values)
    train = jax.jit(jax.vmap(make_train_chunk(agent, 256, chunk), in_axes=(0, None)))
    diagnose = make_diagnostics(agent, 1024) if agent.diagnose is not None else None
    probe = jax.random.normal(jax.random.key(7), (2048, data.observations.shape[1]))
    act = jax.jit(jax.vmap(lambda s, k: agent.sample_actions(s, probe, k)))
    rows = []
    for i in range(steps // chunk):
        states, _ = train(states, data)
        keys = jax.random.split(jax.random.key(100 + i), seeds)
        actions = np.asarray(act(states, keys))
        per_seed = [bimodal_stats(a, reward) for a in actions]
        row = {"step": (i + 1) * chunk}
        row.update({k: float(np.mean([p[k] for p in per_seed])) for k in per_seed[0]})
        row["good_mode_seeds"] = [p["good_mode"] for p in per_seed]
        if diagnose is not None:
            diag = jax.device_get(
                diagnose(states, data, jnp.asarray(values, jnp.uint32), jnp.uint32(i))
            )
            for key in (f"diag/{k}" for k in DIAGNOSTICS):
                if key in diag:
                    row[key] = float(np.mean(diag[key]))
        rows.append(row)
    return rows


def plot(results: dict[str, list[dict]], path: str, title: str) -> None:
    """Good-mode share, mean true reward and saturation against updates, one line a setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("good_mode", "share on the better mode"), ("reward", "mean true reward"),
              ("saturation", "share of |a| > 0.99"))  # fmt: skip
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colors = plt.get_cmap("tab20").colors
    for ax, (key, name) in zip(axes, panels, strict=True):
        for i, (setting, rows) in enumerate(results.items()):
            ax.plot([r["step"] for r in rows], [r[key] for r in rows], marker="o",
                    color=colors[i % len(colors)], label=setting)  # fmt: skip
        ax.set_xlabel("updates")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[1].axhline(0.47, color="grey", ls="--", lw=1)  # the data's mean reward
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", nargs="*", default=list(DEFAULT_SETTINGS))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--chunk", type=int, default=1000, help="updates between measurements")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--reward", default="peak", choices=["peak", "rising"])
    parser.add_argument("--act_dim", type=int, default=3)
    parser.add_argument("--spread", type=float, default=BIMODAL_SPREAD, help="std around a mode")
    parser.add_argument("--json", default=None, help="also write every row to this file")
    parser.add_argument("--load", default=None, help="read the rows of an earlier --json run")
    parser.add_argument("--plot", default=None, help="draw the rows into this PNG")
    args = parser.parse_args()
    if args.load:
        with open(args.load) as f:
            saved = json.load(f)
        title = "bimodal bandit ({reward}, d = {act_dim}, spread {spread:g}), {seeds} seeds"
        plot(saved["results"], args.plot, title.format(**{"spread": 0.1, **saved["args"]}))
        return
    print(
        f"bimodal bandit ({args.reward}, d = {args.act_dim}, spread {args.spread:g}), "
        f"{args.seeds} seeds; per chunk: "
        "good-mode share / mean|a| / saturation / true reward [action ratio]"
    )
    results, configs = {}, {}
    for setting in args.settings:
        name, overrides = parse_setting(setting)
        c = bandit_config(name, overrides)
        fields = ("eta", "endpoint_ratio", "bc_loss_reduction", "time_scale", "alpha")
        configs[setting] = {"algorithm": name, **{f: c[f] for f in fields if f in c}}
        start = time.perf_counter()
        rows = run(
            name, c, args.steps, args.chunk, args.seeds, args.reward, args.act_dim, args.spread
        )
        results[setting] = rows
        cells = "  ".join(
            f"{r['step']}: {r['good_mode']:.2f}/{r['abs_mean']:.2f}/{r['saturation']:.2f}/"
            f"{r['reward']:.2f}" + (f" [{r[RATIO]:.3g}]" if RATIO in r else "")
            for r in rows
        )
        print(f"{setting:<48} {cells}  ({time.perf_counter() - start:.0f} s)", flush=True)
        if args.json:  # after every setting, so that a stopped study keeps what it measured
            with open(args.json, "w") as f:
                json.dump({"args": vars(args), "configs": configs, "results": results}, f, indent=1)
    if args.plot:
        plot(results, args.plot, f"bimodal bandit ({args.reward}, d = {args.act_dim}, "
             f"spread {args.spread:g}), {args.seeds} seeds")  # fmt: skip


if __name__ == "__main__":
    main()

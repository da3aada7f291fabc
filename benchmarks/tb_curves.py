"""Curves of TensorBoard scalars from several programs side by side, one panel a scalar.

Each program is a run directory with ``tb/seed_<i>`` folders (a CLI workdir, or a suite's
``programs/<name>``); every seed is drawn thin and their mean thick, so runs that live in
different workdirs (e.g. separate CPU processes of one comparison) share one figure.

    python benchmarks/tb_curves.py runs/a/programs/ofql-x:OFQL runs/b/programs/flowbc-x:"flow BC" \
        --keys diag/saturation,diag/one_step_mse_to_data --out curves.png
    python benchmarks/tb_curves.py W/programs/ofql-x --keys diag/q_policy_mean --print
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ofql_jax.results.writers import read_scalars


def load(run: Path, keys: list[str]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``{seed folder: {key: (steps, values)}}`` for the keys each seed has."""
    out = {}
    for seed_dir in sorted((run / "tb").glob("seed_*")):
        scalars = read_scalars(seed_dir)
        out[seed_dir.name] = {
            k: (np.array([s for s, _ in scalars[k]]), np.array([v for _, v in scalars[k]]))
            for k in keys
            if k in scalars
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directory, optionally :label")
    parser.add_argument("--keys", required=True, help="comma-separated scalar names")
    parser.add_argument("--out", default=None, help="PNG to write")
    parser.add_argument("--print", action="store_true", help="print every seed's last values")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    keys = [k for k in args.keys.split(",") if k]
    runs = []
    for text in args.runs:
        path, _, label = text.partition(":")
        runs.append((Path(path), label or Path(path).name, load(Path(path), keys)))
    if args.print:
        for _, label, seeds in runs:
            for seed, series in seeds.items():
                last = ", ".join(f"{k} {v[-1]:.4g} @ {s[-1]}" for k, (s, v) in series.items())
                print(f"{label} {seed}: {last}")
    if not args.out:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for ax, key in zip(axes.flat, keys, strict=False):
        for i, (_, label, seeds) in enumerate(runs):
            curves = [series[key] for series in seeds.values() if key in series]
            for steps, values in curves:
                ax.plot(steps, values, color=colors[i % 10], lw=0.6, alpha=0.4)
            if curves:
                n = min(len(s) for s, _ in curves)
                mean = np.mean([v[:n] for _, v in curves], axis=0)
                ax.plot(curves[0][0][:n], mean, color=colors[i % 10], lw=1.8, label=label)
        ax.set_title(key)
        ax.set_xlabel("gradient steps")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colors[i % 10], lw=1.8) for i in range(len(runs))]
    fig.legend(handles, [label for _, label, _ in runs], loc="lower center", ncol=len(runs))
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

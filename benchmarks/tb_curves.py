"""Curves of TensorBoard scalars from several programs side by side, one panel a scalar.

Each program is a run directory with ``tb/seed_<i>`` folders (a CLI workdir, or a suite's
``programs/<name>``), or a swept setting's folder of them (``programs/<name>/tb/eta=0.3``);
every seed is drawn thin and their mean thick, so runs that live in different workdirs (e.g.
separate CPU processes of one comparison) share one figure.

    python benchmarks/tb_curves.py runs/a/programs/ofql-x:OFQL runs/b/programs/flowbc-x:"flow BC" \
        --keys diag/saturation,diag/one_step_mse_to_data --out curves.png
    python benchmarks/tb_curves.py W/programs/ofql-x --keys diag/q_policy_mean --print

A run may draw another of its scalars in a panel (``PATH:LABEL:eval/score=eval/score_one_step``
puts OFQL's N = 1 score beside the others' scores; a run given such pairs draws only their
panels); ``--points FILE:LABEL`` adds a peer's
evaluations from a JSON ``{"scores": {key: [[step, value], ...]}}`` (e.g. a run outside this
repo), drawn as markers; ``--hline key=value:label`` draws a reference (the data's mean score,
the value bound); ``--json FILE`` writes every run's keys per seed and step (thinned by
``--every``) with the command that made it, the form of the results pages' JSON files:

    python benchmarks/tb_curves.py W/programs/ofql-x/tb/eta=0.3:eta=0.3 \
        --keys eval/score,diag/saturation --json out.json --every 5000 --source "code abc1234"
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ofql_jax.results.writers import read_scalars, write_json_atomic


def load(run: Path, keys: list[str]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``{seed folder: {key: (steps, values)}}`` for the keys each seed has."""
    out = {}
    # A run's tb/seed_<i>, or a sweep member's folder (programs/<p>/tb/eta=0.3) holding them.
    root = run / "tb" if (run / "tb").is_dir() else run
    for seed_dir in sorted(root.glob("seed_*")):
        scalars = read_scalars(seed_dir)
        out[seed_dir.name] = {
            k: (np.array([s for s, _ in scalars[k]]), np.array([v for _, v in scalars[k]]))
            for k in keys
            if k in scalars
        }
    return out


def parse_run(text: str, keys: list[str]):
    """``PATH[:LABEL[:KEY=SOURCE,...]]`` -> (path, label, seeds) with SOURCE read as KEY."""
    path, _, rest = text.partition(":")
    label, _, renames = rest.partition(":")
    mapping = dict(pair.split("=", 1) for pair in renames.split(",") if pair)
    sources = {k: mapping.get(k, k) for k in keys if not mapping or k in mapping}
    read = load(Path(path), sorted(set(sources.values())))
    seeds = {
        seed: {k: series[src] for k, src in sources.items() if src in series}
        for seed, series in read.items()
    }
    return Path(path), label or Path(path).name, seeds


def load_points(text: str) -> tuple[str, dict[str, np.ndarray]]:
    """``FILE[:LABEL]`` -> (label, {key: array of (step, value) rows})."""
    import json

    path, _, label = text.partition(":")
    data = json.loads(Path(path).read_text())
    scores = {k: np.asarray(v, dtype=float) for k, v in data["scores"].items()}
    return label or data.get("label", Path(path).stem), scores


def write_json(path: Path, runs, every: int, source: str) -> None:
    """``{"source", "command", "members": {label: {seed: {key: {step: value}}}}}``, values
    rounded to 4 decimals, steps divisible by ``every``."""
    import shlex
    import sys

    members = {
        label: {
            seed: {
                key: {str(int(s)): round(float(v), 4) for s, v in zip(*series, strict=True)
                      if int(s) % every == 0}
                for key, series in keys.items()
            }
            for seed, keys in seeds.items()
        }
        for _, label, seeds in runs
    }  # fmt: skip
    command = "python benchmarks/tb_curves.py " + shlex.join(sys.argv[1:])
    write_json_atomic(path, {"source": source, "command": command, "members": members})
    print(f"wrote {path}")


def _steps(x: float, _pos: int) -> str:
    """Tick label: 250000 -> 250k, 1000000 -> 1M."""
    return f"{x / 1e6:g}M" if abs(x) >= 1e6 else f"{x / 1e3:g}k" if abs(x) >= 1e3 else f"{x:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", help="run directory, optionally :label")
    parser.add_argument("--keys", required=True, help="comma-separated scalar names")
    parser.add_argument("--out", default=None, help="PNG to write")
    parser.add_argument("--print", action="store_true", help="print every seed's last values")
    parser.add_argument("--title", default="")
    parser.add_argument("--points", action="append", default=[], help="FILE[:LABEL] (JSON)")
    parser.add_argument("--hline", action="append", default=[], help="KEY=VALUE[:LABEL]")
    parser.add_argument("--json", default=None, help="JSON to write: {label: {seed: {key: ...}}}")
    parser.add_argument("--every", type=int, default=1, help="--json keeps steps divisible by it")
    parser.add_argument("--source", default="", help="--json: what produced the runs")
    args = parser.parse_args()
    if not args.runs and not args.points:
        parser.error("give a run directory or --points FILE (or both)")
    keys = [k for k in args.keys.split(",") if k]
    runs = [parse_run(text, keys) for text in args.runs]
    points = [load_points(text) for text in args.points]
    hlines = []
    for text in args.hline:
        key, _, rest = text.partition("=")
        value, _, label = rest.partition(":")
        hlines.append((key, float(value), label))
    if args.print:
        for _, label, seeds in runs:
            for seed, series in seeds.items():
                last = ", ".join(f"{k} {v[-1]:.4g} @ {s[-1]}" for k, (s, v) in series.items())
                print(f"{label} {seed}: {last}")
    if args.json:
        write_json(Path(args.json), runs, args.every, args.source)
    if not args.out:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    labels = [label for _, label, _ in runs] + [label for label, _ in points]
    ncol = min(len(labels), 4 if cols > 1 else 1)  # one panel is too narrow for columns
    legend_rows = -(-len(labels) // ncol)
    legend_inches = 0.25 * legend_rows + 0.2  # room below the panels for every legend row
    height = 3.6 * rows + legend_inches
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, height), squeeze=False)
    colors = plt.get_cmap("tab20" if len(runs) + len(points) > 10 else "tab10").colors

    def color(k: int):  # the k-th curve's, runs first, then the point sets
        return colors[k % len(colors)]

    for ax, key in zip(axes.flat, keys, strict=False):
        for i, (_, label, seeds) in enumerate(runs):
            curves = [series[key] for series in seeds.values() if key in series]
            for steps, values in curves:
                ax.plot(steps, values, color=color(i), lw=0.6, alpha=0.4)
            if curves:
                n = min(len(s) for s, _ in curves)
                mean = np.mean([v[:n] for _, v in curves], axis=0)
                few = n <= 12  # evaluations: a marker each, so a single point shows too
                ax.plot(curves[0][0][:n], mean, color=color(i), lw=1.8, label=label,
                        marker="o" if few else None, ms=4)  # fmt: skip
        for j, (label, scores) in enumerate(points):
            if key in scores:
                pts, c = scores[key], color(len(runs) + j)
                marker = "os^Dv"[j % 5]
                ax.plot(pts[:, 0], pts[:, 1], ls="--", marker=marker, color=c, lw=1.0,
                        ms=5, mfc="none" if j % 2 else c, label=label)  # fmt: skip
        for hkey, value, label in hlines:
            if hkey == key:
                ax.axhline(value, color="0.3", ls=":", lw=1.2)
                if label:
                    ax.annotate(label, (0.01, value), xycoords=("axes fraction", "data"),
                                fontsize=8, color="0.3", va="bottom")  # fmt: skip
        ax.set_title(key)
        ax.set_xlabel("gradient steps")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(_steps))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=color(i), lw=1.8) for i in range(len(runs))]
    handles += [
        plt.Line2D([], [], color=color(len(runs) + j), ls="--", marker="os^Dv"[j % 5],
                   ms=5, mfc="none" if j % 2 else color(len(runs) + j))
        for j in range(len(points))
    ]  # fmt: skip
    fig.legend(handles, labels, loc="lower center", ncol=ncol)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout(rect=(0, (legend_inches + 0.1) / height, 1, 1))
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Evaluate a checkpoint of a training run, and optionally film its policy.

    python -m ofql_jax.evaluate --workdir=runs/demo [--step=N] [--seeds=0,2] [--episodes=10]
        [--candidates=1] [--noise_temperature=0.5] [--video=runs/demo/hopper.mp4]

By default the newest checkpoint, every seed and the run's own protocol (episodes, N
candidates and N = 1, its temperatures and actor): the returns then equal those the run
logged at that step, because episodes and actions are seeded by (seed value, step,
episode). ``--noise_temperature``, ``--q_temperature`` and ``--actor`` replace the
protocol's selection settings on the same episodes and draws. Prints the normalised score
per seed and writes everything to a JSON file (``--out``; default
``<workdir>/evaluations/step_<N>.json``, never overwritten).

``--video`` renders ``--video_episodes`` episodes per chosen seed offscreen with MuJoCo
(``ofql_jax.evaluation.video``: EGL on a GPU, OSMesa on CPU) and writes one MP4 per seed
(``out.mp4`` for one seed, ``out_seed<v>.mp4`` for several). Filmed episodes use the fast
``Policy`` (its own random stream), so their returns, given in the JSON, are fresh episodes and
not the evaluation's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ofql_jax.core.cli_help import int_list
from ofql_jax.core.errors import OFQLError
from ofql_jax.evaluation.evaluator import episode_env_seed
from ofql_jax.evaluation.video import choose_gl_backend, render_episode, write_mp4
from ofql_jax.results.writers import write_json_atomic
from ofql_jax.training.loading import load_run

EXIT_USER_ERROR = 2


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 480x360") from None
    return width, height


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ofql_jax.evaluate", description=__doc__.split("\n\n")[0]
    )
    add = parser.add_argument
    add("--workdir", required=True, help="the training run's workdir")
    add("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    add("--seeds", type=int_list, default=None, help="seed values, e.g. 0,2 (default: all)")
    add("--episodes", type=int, default=None,
        help="episodes per seed (default: the run's eval_episodes, else 10)")  # fmt: skip
    add("--candidates", type=int, default=None,
        help="N candidates scored by the critics; 1 = the one-step policy (default: the "
             "run's protocol, N and N = 1)")  # fmt: skip
    add("--noise_temperature", type=float, default=None,
        help="scale of the initial noise of every evaluated variant (default: the run's, "
             "noise x 1 at N = 1); --candidates=1 --noise_temperature=0.5 is one of the "
             "paper protocol's 50 candidates, without the critics' choice")  # fmt: skip
    add("--q_temperature", type=float, default=None,
        help="w of the softmax(w Q) choice among N candidates (default: the run's)")  # fmt: skip
    add("--actor", choices=("ema", "online"), default=None,
        help="actor parameters to act with (default: the run's eval_actor)")  # fmt: skip
    add("--max_envs", type=int, default=None,
        help="environments stepped at once (default: the run's eval_max_envs; another "
             "value may change returns at float rounding)")  # fmt: skip
    add("--workers", type=int, default=None,
        help="environment worker processes (default: the run's eval_workers; 0 = all "
             "cores)")  # fmt: skip
    add("--out", default=None, help="JSON output (default <workdir>/evaluations/step_<N>.json)")
    add("--video", default=None, help="write MP4 video(s) to this path")
    add("--video_episodes", type=int, default=1, help="filmed episodes per seed")
    add("--video_steps", type=int, default=None, help="stop filming after this many steps")
    add("--video_size", type=_size, default=(480, 360), help="frame size WIDTHxHEIGHT")
    add("--video_candidates", type=int, default=1,
        help="N for the filmed policy (default 1: the one-step policy)")  # fmt: skip
    add("--no_progress", action="store_true", help="no progress bars")
    add("--debug", action="store_true", help="tracebacks for errors")
    return parser.parse_args(argv)


def free_path(path: Path) -> Path:
    """``path``, or ``<stem>-1<suffix>``, ``-2``, ... when it exists (nothing is overwritten)."""
    n, candidate = 0, path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def check_args(args: argparse.Namespace) -> None:
    for name in ("episodes", "video_episodes", "video_steps", "candidates", "video_candidates",
                 "max_envs"):  # fmt: skip
        value = getattr(args, name)
        if value is not None and value < 1:
            raise OFQLError(f"--{name}={value} must be at least 1.")
    for name in ("noise_temperature", "q_temperature"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise OFQLError(f"--{name}={value} must be above 0.")
    if args.video and Path(args.video).suffix.lower() != ".mp4":
        raise OFQLError(f"--video={args.video} must end in .mp4: name an MP4 file.")


def film(run, args: argparse.Namespace, seeds: list[int]) -> list[dict[str, Any]]:
    """Render ``--video_episodes`` episodes per seed into one MP4 per seed."""
    backend = choose_gl_backend()
    width, height = args.video_size
    env = run.make_env(render_mode="rgb_array", width=width, height=height)
    fps = float(env.metadata.get("render_fps", 30))
    films = []
    try:
        for seed in seeds:
            policy = run.policy(seed=seed, num_candidates=args.video_candidates, noise_seed=seed)
            frames, episodes = [], []
            for e in range(args.video_episodes):
                env_seed = episode_env_seed(seed, run.step, e)
                shots, ret, steps = render_episode(
                    env, policy, env_seed, args.video_steps, not args.no_progress
                )
                frames += shots
                episodes.append({"env_seed": env_seed, "return": ret, "steps": steps})
            base = Path(args.video)
            path = base if len(seeds) == 1 else base.with_name(f"{base.stem}_seed{seed}.mp4")
            path = write_mp4(free_path(path), frames, fps)
            returns = [round(x["return"], 1) for x in episodes]
            print(f"seed {seed}: wrote {path} ({len(frames)} frames at {fps:g} fps, "
                  f"MUJOCO_GL={backend}), returns {returns}")  # fmt: skip
            films.append({"seed": seed, "path": str(path), "frames": len(frames), "fps": fps,
                          "candidates": args.video_candidates, "episodes": episodes})  # fmt: skip
    finally:
        env.close()
    return films


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate (and film) as ``args`` say, print the scores and write the JSON."""
    check_args(args)
    run = load_run(args.workdir, args.step)
    seeds = list(args.seeds) if args.seeds is not None else sorted(set(run.seeds))
    print(f"Evaluating {run.workdir} at step {run.step} ({run.config.algorithm}, "
          f"{run.env_id}): seeds {seeds}", flush=True)  # fmt: skip
    selection = {k: getattr(args, k) for k in ("noise_temperature", "q_temperature", "actor")
                 if getattr(args, k) is not None}  # fmt: skip
    if selection:
        print("  selection settings replaced: "
              + ", ".join(f"{k}={v}" for k, v in selection.items()), flush=True)  # fmt: skip
    out = run.evaluate(seeds, args.episodes, args.candidates, max_envs=args.max_envs,
                       workers=args.workers, progress=not args.no_progress,
                       **selection)  # fmt: skip
    unit = "normalised score" if run.score_reference else "raw return"
    for name, variant in out["variants"].items():
        for member, score, episodes in zip(out["members"], variant["scores"],
                                           variant["episode_returns"], strict=True):  # fmt: skip
            spread = np.std([np.nan if r is None else r for r in episodes])
            text = "diverged, not run" if score is None else f"{unit} {score:.1f}"
            print(f"  {name:>6}  {member['label']:>12}: {text} (return sd {spread:.1f}, "
                  f"{len(episodes)} episodes)")  # fmt: skip
    out.update(workdir=str(run.workdir), algorithm=run.config.algorithm, env_id=run.env_id,
               score_reference=run.score_reference)  # fmt: skip
    if args.video:
        out["videos"] = film(run, args, seeds)
    path = Path(args.out) if args.out else run.workdir / "evaluations" / f"step_{run.step}.json"
    path = free_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, out)
    print(f"Wrote {path}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (2: a user error, one sentence)."""
    args = parse_args(argv)
    try:
        evaluate(args)
    except OFQLError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written.", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The paper's toy experiment (App. C): one-step mean flow against multi-step flow and DDPM.

Three generative models, each the same MLP (3 x 64, Mish, raw time inputs as FQL's flow
network), learn three 2-D distributions (checkerboard, two-arm spiral, two moons, generated
in the unit box and scaled to [-4, 4]^2, FFJORD's checkerboard scale) with no conditioning,
through this project's own maths, every sampler clipping to the box as the agents clip to
[-1, 1]:

- ``u``: a mean-velocity field ``u(z, r, t)`` trained with OFQL's MeanFlow loss
  (``meanflow.flow_bc_loss``, the paper's time sampler) and sampled in one step
  (``meanflow.one_step_action``);
- ``v``: a velocity field trained with flow matching (``flow_matching.flow_bc_loss``) and
  sampled with K clipped Euler steps (``flow_matching.euler_sample``, as FBRAC acts);
- ``ddpm``: DQL's noise predictor on a T-step VP schedule (``diffusion.noise_prediction_loss``),
  sampled with the clipped ancestral chain respaced to K steps (``diffusion.respace`` and
  ``diffusion.ddpm_sample``, as DQL acts with fewer steps).

Each model is trained once per (dataset, seed) with Adam (3e-3), 100 epochs of 40 shuffled
batches of 2,048 (the dataset holds 40 x 2,048 points), every (dataset, seed) pair in one
vmapped, jitted epoch. Samples, mapped back to the unit box, are compared with held-out
ground truth by the sliced Wasserstein-1 and the energy distance (``sliced_wasserstein``,
``energy_distance``).

Usage:
    python experiments/toy.py --outdir=runs/toy          # the paper's settings, 3 seeds
    python experiments/toy.py --quick --outdir=/tmp/toy  # tiny settings, seconds

Writes ``toy.png`` (rows: datasets; columns: data, u(1), v(K), DDPM(K)), ``toy.md`` and
``toy.json`` (distances, mean +- std over seeds) to ``--outdir``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance
from tqdm import tqdm

from ofql_jax.core.cli_help import int_list
from ofql_jax.core.errors import OFQLError
from ofql_jax.maths import diffusion, flow_matching, meanflow
from ofql_jax.maths.networks import MLP

EXIT_USER_ERROR = 2
DATASETS = ("checkerboard", "spiral", "moons")
MODELS = ("u", "v", "ddpm")
LABELS = {"data": "data", "u": "u", "v": "v", "ddpm": "DDPM"}
COLORS = {"data": "0.2", "u": "C3", "v": "C0", "ddpm": "C2"}

Params = dict
Sampler = Callable[[Params, jax.Array, int, int], jax.Array]  # (params, key, n, steps) -> x


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    """Every knob of the toy experiment; the defaults are the paper's App. C settings."""

    datasets: tuple[str, ...] = DATASETS
    seeds: int = 3  # independent trainings per (dataset, model)
    epochs: int = 100
    batches: int = 40  # batches per epoch; the training set holds batches * batch_size points
    batch_size: int = 2048
    width: int = 64  # hidden units per layer
    depth: int = 3  # hidden layers (Mish)
    lr: float = 3e-3  # Adam learning rate, every model (the paper's is unknown)
    # Half-width of the training box: the unit-box data are multiplied by it and every sampler
    # clips to [-scale, scale], as the agents clip actions to [-1, 1]. 4 is FFJORD's
    # checkerboard scale; in the unit box N(0, I) noise swamps the data's fine structure and
    # every model blurs it at this budget (docs/algorithm.md, "Toy experiment").
    scale: float = 4.0
    steps: tuple[int, ...] = (1, 2, 5, 10)  # sampling steps of v and DDPM (u: always 1)
    ddpm_T: int = 10  # DDPM training chain length (VP schedule of DQL); steps <= T respace it
    flow_ratio: float = 0.5  # u's P(r = t) (OFQL's value)
    endpoint_ratio: float = 0.0  # u's share of (r, t) = (0, 1) pairs; 0 = the paper's sampler
    # u's MeanFlow adaptive loss weight power p (agent.loss_weight_power); 0 = off, as OFQL.
    weight_power: float = 0.0
    eval_samples: int = 2000  # generated and held-out points per distance
    projections: int = 128  # directions of the sliced Wasserstein distance
    seed: int = 0  # base seed of data, initialisation and sampling


QUICK = {
    "seeds": 2, "epochs": 2, "batches": 4, "batch_size": 256, "eval_samples": 300,
    "projections": 32,
}  # fmt: skip


# --- data ---------------------------------------------------------------------------------


def checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform on the 8 dark squares of a 4 x 4 board covering [-1, 1]^2 (FFJORD's layout).

    Example:
        >>> x = checkerboard(1000, np.random.default_rng(0))
        >>> bool(np.all(np.abs(x) <= 1)), bool(np.all((np.floor(2 * x).sum(1) % 2) == 0))
        (True, True)
    """
    col = rng.integers(0, 4, n)
    row = 2 * rng.integers(0, 2, n) + (col % 2)  # dark squares: row + col even
    cells = np.stack([col, row], 1) + rng.uniform(0.0, 1.0, (n, 2))
    return (cells / 2.0 - 1.0).astype(np.float32)


def spiral(n: int, rng: np.random.Generator, noise: float = 0.02) -> np.ndarray:
    """Two interleaved spiral arms of 1.5 turns, radius growing linearly to 0.9, plus
    Gaussian noise of std ``noise`` (FFJORD's ``2spirals``, rescaled).

    Example:
        >>> spiral(5, np.random.default_rng(0)).shape
        (5, 2)
    """
    angle = np.sqrt(rng.uniform(0.0, 1.0, n)) * 3.0 * np.pi  # sqrt: uniform along the arm
    arm = np.where(rng.integers(0, 2, n) == 1, 1.0, -1.0)[:, None]
    radius = 0.9 * angle / (3.0 * np.pi)
    x = arm * np.stack([-np.cos(angle), np.sin(angle)], 1) * radius[:, None]
    return (x + noise * rng.normal(size=(n, 2))).astype(np.float32)


def moons(n: int, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """sklearn's ``make_moons`` (two interleaved half circles, Gaussian noise of std ``noise``)
    with uniformly drawn angles, centred and scaled by 0.55 into [-1, 1]^2.

    Example:
        >>> x = moons(1000, np.random.default_rng(0))
        >>> bool(np.all(np.abs(x) < 1))
        True
    """
    angle = rng.uniform(0.0, np.pi, n)
    inner = rng.integers(0, 2, n).astype(bool)
    outer_xy = np.stack([np.cos(angle), np.sin(angle)], 1)
    inner_xy = np.stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)], 1)
    x = np.where(inner[:, None], inner_xy, outer_xy) + noise * rng.normal(size=(n, 2))
    return (0.55 * (x - np.array([0.5, 0.25]))).astype(np.float32)


GENERATORS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "checkerboard": checkerboard,
    "spiral": spiral,
    "moons": moons,
}


def sample_data(name: str, n: int, seed: Sequence[int]) -> np.ndarray:
    """``n`` points of dataset ``name`` from the NumPy stream ``seed`` (a tuple: one stream
    per purpose, dataset and seed, so training, held-out and reference sets never overlap)."""
    if name not in GENERATORS:
        raise OFQLError(f"unknown dataset {name!r}; use one of {', '.join(GENERATORS)}")
    return GENERATORS[name](n, np.random.default_rng(list(seed)))


# --- distances ----------------------------------------------------------------------------


def sliced_wasserstein(x: np.ndarray, y: np.ndarray, projections: int = 128) -> float:
    """Sliced Wasserstein-1 distance between the samples ``x [n, 2]`` and ``y [m, 2]``:
    ``SW1 = (1/P) sum_k W1(<x, d_k>, <y, d_k>)`` over ``P = projections`` unit directions
    ``d_k = (cos phi_k, sin phi_k)``, ``phi_k = pi k / P`` (a fixed quadrature of the uniform
    direction average, so the distance is deterministic), ``W1`` the 1-D Wasserstein-1
    distance of the empirical distributions (``scipy.stats.wasserstein_distance``).

    Example:
        >>> x = np.random.default_rng(0).normal(size=(500, 2))
        >>> sliced_wasserstein(x, x), round(sliced_wasserstein(x, x + [1.0, 0.0]), 3)
        (0.0, 0.637)
    """
    phi = np.pi * np.arange(projections) / projections
    directions = np.stack([np.cos(phi), np.sin(phi)], 1)
    px, py = x @ directions.T, y @ directions.T
    return float(np.mean([wasserstein_distance(px[:, k], py[:, k]) for k in range(projections)]))


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Energy distance between the samples ``x [n, d]`` and ``y [m, d]`` (Szekely & Rizzo):
    ``sqrt(2 E|X - Y| - E|X - X'| - E|Y - Y'|)`` with Euclidean norms and every expectation
    the mean over all pairs (V-statistics, so it is >= 0 and 0 for identical samples); in 1-D
    it equals ``scipy.stats.energy_distance``.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(500, 2))
        >>> energy_distance(x, x), round(energy_distance(x, x + [1.0, 0.0]), 3)
        (0.0, 0.665)
    """
    cross = cdist(x, y).mean()
    within = cdist(x, x).mean() + cdist(y, y).mean()
    return float(np.sqrt(max(2.0 * cross - within, 0.0)))  # max: float rounding near 0


# --- models -------------------------------------------------------------------------------


class ToyModel(NamedTuple):
    """A generative model as pure functions: ``init(key) -> params``, ``loss(params, x, key)``
    and ``sample(params, key, n, steps) -> [n, 2]`` (``steps`` static)."""

    name: str
    init: Callable[[jax.Array], Params]
    loss: Callable[[Params, jax.Array, jax.Array], jax.Array]
    sample: Sampler
    steps: tuple[int, ...]  # the step counts it is evaluated at


def _column(t: jax.Array, dtype) -> jax.Array:
    return t[..., None].astype(dtype)


def make_models(config: ToyConfig) -> tuple[ToyModel, ...]:
    """The three models of the experiment, unconditioned, on the project's losses and samplers.

    Example:
        >>> u = make_models(ToyConfig(width=8, depth=1))[0]
        >>> params = u.init(jax.random.key(0))
        >>> u.sample(params, jax.random.key(1), 4, 1).shape
        (4, 2)
    """
    c = config
    mlp = MLP((c.width,) * c.depth, 2, "mish")
    dim = 2

    def init_with(inputs: int) -> Callable[[jax.Array], Params]:
        return lambda key: mlp.init(key, jnp.zeros((1, inputs)))

    # u(z, r, t): input concat[z, r, t].
    def u_fn(params):
        return lambda z, r, t: mlp.apply(
            params, jnp.concatenate([z, _column(r, z.dtype), _column(t, z.dtype)], -1)
        )

    def u_loss(params, x, key):
        return meanflow.flow_bc_loss(
            u_fn(params), x, key, c.flow_ratio, reduction="sum",
            endpoint_ratio=c.endpoint_ratio, weight_power=c.weight_power,
        )[0]  # fmt: skip

    def u_sample(params, key, n, steps):
        del steps  # one step by construction
        noise = jax.random.normal(key, (n, dim))
        return meanflow.one_step_action(u_fn(params), noise, bound=c.scale)

    # v(z, t): input concat[z, t].
    def v_fn(params):
        return lambda z, t: mlp.apply(params, jnp.concatenate([z, _column(t, z.dtype)], -1))

    def v_loss(params, x, key):
        return flow_matching.flow_bc_loss(v_fn(params), x, key, reduction="sum")

    def v_sample(params, key, n, steps):
        noise = jax.random.normal(key, (n, dim))
        return flow_matching.euler_sample(v_fn(params), noise, steps, clip=(-c.scale, c.scale))

    # eps(x, k): input concat[x, (k + 1) / T], the integer step scaled into (0, 1].
    schedule = diffusion.make_schedule(diffusion.vp_beta_schedule(c.ddpm_T))

    def eps_fn(params):
        return lambda x, k: mlp.apply(
            params, jnp.concatenate([x, _column((k + 1) / c.ddpm_T, x.dtype)], -1)
        )

    def ddpm_loss(params, x, key):
        k_step, k_noise = jax.random.split(key)
        k = diffusion.sample_timesteps(k_step, x.shape[:-1], c.ddpm_T)
        noise = jax.random.normal(k_noise, x.shape)
        return diffusion.noise_prediction_loss(eps_fn(params), schedule, x, k, noise)

    def ddpm_sample(params, key, n, steps):
        noise = jax.random.normal(key, (n, steps + 1, dim))  # x_T, then one draw per step
        chain = diffusion.respace(schedule, steps)
        x_T, step_noise = noise[:, 0], noise[:, 1:]
        return diffusion.ddpm_sample(eps_fn(params), chain, x_T, step_noise, bound=c.scale)

    return (
        ToyModel("u", init_with(dim + 2), u_loss, u_sample, (1,)),
        ToyModel("v", init_with(dim + 1), v_loss, v_sample, c.steps),
        ToyModel("ddpm", init_with(dim + 1), ddpm_loss, ddpm_sample, c.steps),
    )


# --- training -----------------------------------------------------------------------------


def make_epoch(model: ToyModel, config: ToyConfig) -> Callable:
    """One epoch of one member: ``epoch((params, opt_state), data [N, 2], key) -> (state,
    mean loss)``, a shuffle then a ``lax.scan`` of Adam steps over ``config.batches`` batches.

    Example:
        >>> c = ToyConfig(width=8, depth=1, batches=2, batch_size=4)
        >>> model = make_models(c)[1]
        >>> params = model.init(jax.random.key(0))
        >>> state = (params, optax.adam(c.lr).init(params))
        >>> data = jnp.zeros((8, 2))
        >>> _, loss = make_epoch(model, c)(state, data, jax.random.key(1))
        >>> loss.shape
        ()
    """
    tx = optax.adam(config.lr)

    def step(state, xs):
        params, opt_state = state
        batch, key = xs
        loss, grads = jax.value_and_grad(model.loss)(params, batch, key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def epoch(state, data, key):
        k_perm, k_steps = jax.random.split(key)
        order = jax.random.permutation(k_perm, data.shape[0])
        batches = data[order].reshape(config.batches, config.batch_size, data.shape[-1])
        state, losses = jax.lax.scan(
            step, state, (batches, jax.random.split(k_steps, config.batches))
        )
        return state, losses.mean()

    return epoch


def train(
    model: ToyModel,
    data: jax.Array,
    keys: jax.Array,
    config: ToyConfig,
    tick: Callable[[], object] | None = None,
) -> Params:
    """Train ``model`` on every member at once: ``data [M, N, 2]``, ``keys [M]``; returns the
    stacked parameters. ``tick()`` is called after each epoch (a progress bar)."""
    tx = optax.adam(config.lr)
    params = jax.vmap(model.init)(jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys))
    state = (params, jax.vmap(tx.init)(params))
    epoch = jax.jit(jax.vmap(make_epoch(model, config)), donate_argnums=0)
    for e in range(config.epochs):
        epoch_keys = jax.vmap(lambda k, e=e: jax.random.fold_in(jax.random.fold_in(k, 1), e))(keys)
        state, loss = epoch(state, data, epoch_keys)
        if not bool(jnp.all(jnp.isfinite(loss))):
            raise OFQLError(f"model {model.name} diverged (loss {loss}) in epoch {e}; lower --lr.")
        if tick is not None:
            tick()
    return state[0]


def generate(model: ToyModel, params: Params, keys: jax.Array, n: int, steps: int) -> np.ndarray:
    """``n`` samples of every member with ``steps`` sampling steps: ``[M, n, 2]``."""
    sample_keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(k, 2), steps))(keys)
    fn = jax.jit(jax.vmap(lambda p, k: model.sample(p, k, n, steps)))
    return np.asarray(fn(params, sample_keys))


# --- the experiment -----------------------------------------------------------------------


def check_config(c: ToyConfig) -> None:
    """Raise ``OFQLError`` (one sentence naming the fix) for settings that cannot run."""
    for name in c.datasets:
        if name not in GENERATORS:
            raise OFQLError(f"unknown dataset {name!r}; use one of {', '.join(GENERATORS)}")
    positive = ("seeds", "epochs", "batches", "batch_size", "width", "depth", "ddpm_T",
                "eval_samples", "projections")  # fmt: skip
    for field in positive:
        if getattr(c, field) < 1:
            raise OFQLError(f"--{field} = {getattr(c, field)} must be >= 1.")
    if not c.datasets or not c.steps:
        raise OFQLError("--datasets and --steps must each name at least one value.")
    if min(c.steps) < 1 or max(c.steps) > c.ddpm_T:
        raise OFQLError(f"--steps {list(c.steps)} must lie in [1, --ddpm_T = {c.ddpm_T}].")
    if not (c.lr > 0 and c.scale > 0 and 0 <= c.flow_ratio <= 1 and 0 <= c.endpoint_ratio <= 1):
        raise OFQLError(
            "--lr and --scale must be > 0, --flow_ratio and --endpoint_ratio in [0, 1]."
        )
    if c.weight_power < 0:
        raise OFQLError(f"--weight_power = {c.weight_power} must be >= 0 (0: no adaptive weight).")


def member_keys(config: ToyConfig, model_index: int) -> jax.Array:
    """One key per (dataset, seed) member, dataset-major, from the base seed by ``fold_in``."""
    base = jax.random.fold_in(jax.random.key(config.seed), model_index)
    return jnp.stack([
        jax.random.fold_in(jax.random.fold_in(base, d), s)
        for d in range(len(config.datasets)) for s in range(config.seeds)
    ])  # fmt: skip


def summary(values: Sequence[float]) -> dict:
    """Mean, population std (``np.std``) and the per-seed values."""
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std()), "per_seed": v.tolist()}


def run(config: ToyConfig, progress: bool = True) -> dict:
    """Train and evaluate every (dataset, model, seed); returns the results and seed 0's samples.

    The result: ``rows`` (one per dataset, model and step count, plus ``model = "data"``,
    ``steps = 0``: fresh ground-truth samples, the estimators' floor), each with ``sw1`` and
    ``energy`` as ``summary`` dicts, and ``samples[dataset][column] [n, 2]`` for the figure.

    Example:
        >>> c = ToyConfig(datasets=("moons",), seeds=1, epochs=1, batches=1, batch_size=8,
        ...               width=8, depth=1, steps=(1,), ddpm_T=2, eval_samples=16)
        >>> len(run(c, progress=False)["rows"])  # data, u(1), v(1), DDPM(1)
        4
    """
    c = config
    check_config(c)
    started = time.perf_counter()
    n_train = c.batches * c.batch_size
    data = np.stack([
        sample_data(name, n_train, (c.seed, 0, d, s))
        for d, name in enumerate(c.datasets) for s in range(c.seeds)
    ])  # fmt: skip
    held_out = [sample_data(n, c.eval_samples, (c.seed, 1, d)) for d, n in enumerate(c.datasets)]
    models = make_models(c)
    evaluations = sum(len(m.steps) for m in models)
    bar = tqdm(total=len(models) * c.epochs + evaluations, desc="toy", disable=not progress)
    rows, samples = [], {name: {} for name in c.datasets}

    def add_rows(model: str, steps: int, generated: np.ndarray) -> None:
        for d, name in enumerate(c.datasets):
            members = generated[d * c.seeds : (d + 1) * c.seeds]
            sw1 = [sliced_wasserstein(x, held_out[d], c.projections) for x in members]
            energy = [energy_distance(x, held_out[d]) for x in members]
            rows.append({"dataset": name, "model": model, "steps": steps,
                         "sw1": summary(sw1), "energy": summary(energy)})  # fmt: skip
            samples[name][(model, steps)] = members[0]

    reference = np.stack([
        sample_data(name, c.eval_samples, (c.seed, 2, d, s))
        for d, name in enumerate(c.datasets) for s in range(c.seeds)
    ])  # fmt: skip
    add_rows("data", 0, reference)
    for i, model in enumerate(models):
        bar.set_description(f"toy: training {LABELS[model.name]}")
        keys = member_keys(c, i)
        params = train(model, jnp.asarray(c.scale * data), keys, c, bar.update)
        bar.set_description(f"toy: sampling {LABELS[model.name]}")
        for steps in model.steps:
            generated = generate(model, params, keys, c.eval_samples, steps) / c.scale
            add_rows(model.name, steps, generated)  # distances in the unit box
            bar.update()
    bar.close()
    return {
        "config": dataclasses.asdict(c),
        "definitions": DEFINITIONS,
        "wall_time_s": time.perf_counter() - started,
        "rows": rows,
        "samples": samples,
    }


DEFINITIONS = {
    "sw1": "sliced Wasserstein-1: mean over P directions (cos phi_k, sin phi_k), phi_k = pi k/P, "
    "of scipy.stats.wasserstein_distance between the projected generated and held-out samples",
    "energy": "energy distance sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|), Euclidean, V-statistics "
    "over all pairs of generated X and held-out Y (scipy.stats.energy_distance in 1-D)",
    "std": "population standard deviation over seeds (np.std)",
    "data": "model 'data', steps 0: fresh ground-truth samples, the estimators' floor",
}


# --- outputs ------------------------------------------------------------------------------


def columns(config: ToyConfig) -> list[tuple[str, int]]:
    """The (model, steps) columns of the table and the figure, in the paper's order."""
    return [("data", 0), ("u", 1)] + [(m, k) for m in ("v", "ddpm") for k in config.steps]


def column_label(model: str, steps: int) -> str:
    return "data" if model == "data" else f"{LABELS[model]}({steps})"


def markdown_table(results: dict) -> str:
    """``toy.md``: one table per distance, rows (model, steps), columns datasets."""
    c = ToyConfig(**{**results["config"], "datasets": tuple(results["config"]["datasets"]),
                     "steps": tuple(results["config"]["steps"])})  # fmt: skip
    index = {(r["dataset"], r["model"], r["steps"]): r for r in results["rows"]}
    lines = [
        "# Toy experiment (App. C)",
        "",
        f"{c.seeds} seeds; {c.epochs} epochs x {c.batches} batches of {c.batch_size}; MLP "
        f"{c.depth} x {c.width} Mish; Adam {c.lr:g}; data box [-{c.scale:g}, {c.scale:g}]^2; "
        f"u: flow_ratio {c.flow_ratio:g}, endpoint_ratio {c.endpoint_ratio:g}, "
        f"weight_power {c.weight_power:g}; "
        f"DDPM T = {c.ddpm_T} (VP); distances in the unit box, "
        f"{c.eval_samples} samples against {c.eval_samples} held-out points; "
        f"wall time {results['wall_time_s']:.0f} s. Mean +- std over seeds (np.std).",
    ]
    for metric, title in (("sw1", f"Sliced Wasserstein-1 ({c.projections} directions)"),
                          ("energy", "Energy distance")):  # fmt: skip
        lines += ["", f"## {title}", "", DEFINITIONS[metric] + ".", ""]
        lines.append("| model (steps) | " + " | ".join(c.datasets) + " |")
        lines.append("|---|" + "---|" * len(c.datasets))
        for model, steps in columns(c):
            cells = [index[(d, model, steps)][metric] for d in c.datasets]
            text = [f"{s['mean']:.3f} +- {s['std']:.3f}" for s in cells]
            lines.append(f"| {column_label(model, steps)} | " + " | ".join(text) + " |")
    return "\n".join(lines) + "\n"


def plot_grid(results: dict, path: str) -> None:
    """``toy.png``: scatter plots of seed 0's samples, rows datasets, columns (model, steps)."""
    try:  # optional: only the figure needs matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise OFQLError("the figure needs matplotlib; pip install 'matplotlib>=3.8'.") from err
    c = results["config"]
    cols = columns(ToyConfig(steps=tuple(c["steps"])))
    rows = c["datasets"]
    fig = Figure(figsize=(1.9 * len(cols), 1.9 * len(rows) + 0.3), layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas, without pyplot's global state
    axes = fig.subplots(len(rows), len(cols), squeeze=False)
    for i, name in enumerate(rows):
        for j, (model, steps) in enumerate(cols):
            ax, x = axes[i, j], results["samples"][name][(model, steps)]
            ax.scatter(x[:, 0], x[:, 1], s=1.5, alpha=0.6, color=COLORS[model], linewidths=0)
            ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xticks=[], yticks=[], aspect="equal")
            if i == 0:
                ax.set_title(column_label(model, steps), fontsize=10)
            if j == 0:
                ax.set_ylabel(name, fontsize=10)
    fig.savefig(path, dpi=110)


def write_outputs(results: dict, outdir: str) -> list[str]:
    """Write ``toy.png``, ``toy.md`` and ``toy.json`` (no samples) to ``outdir``."""
    try:
        os.makedirs(outdir, exist_ok=True)
        paths = [os.path.join(outdir, f) for f in ("toy.png", "toy.md", "toy.json")]
        plot_grid(results, paths[0])
        with open(paths[1], "w") as f:
            f.write(markdown_table(results))
        with open(paths[2], "w") as f:
            json.dump({k: v for k, v in results.items() if k != "samples"}, f, indent=1)
    except OSError as err:
        raise OFQLError(
            f"cannot write to {outdir} ({err.strerror}); pass a writable --outdir."
        ) from None
    return paths


# --- command line -------------------------------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def parse_args(argv: Sequence[str] | None) -> tuple[ToyConfig, argparse.Namespace]:
    """The config from the command line: the defaults, then ``--quick``'s, then given flags."""
    parser = argparse.ArgumentParser(
        prog="python experiments/toy.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--outdir", default=os.path.join("runs", "toy"), help="output folder")
    parser.add_argument("--quick", action="store_true", help=f"tiny settings: {QUICK}")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="tracebacks for errors")
    kinds = {"datasets": _names, "steps": int_list}
    for field in dataclasses.fields(ToyConfig):
        kind = kinds.get(field.name, type(field.default))
        parser.add_argument(f"--{field.name}", type=kind, default=None,
                            help=f"default {field.default}")  # fmt: skip
    args = parser.parse_args(argv)
    values = {**(QUICK if args.quick else {})}
    values.update({k: v for k, v in vars(args).items() if k in ToyConfig.__dataclass_fields__
                   and v is not None})  # fmt: skip
    return ToyConfig(**values), args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the toy experiment from the command line; returns the exit status (2: user error)."""
    config, args = parse_args(argv)
    try:
        results = run(config, progress=not args.no_progress)
        paths = write_outputs(results, args.outdir)
    except OFQLError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(markdown_table(results))
    print(f"wrote {', '.join(paths)} in {results['wall_time_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The App. C toy experiment: its distances against closed forms and bad samplers, and the
command end to end on tiny settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

# The toy is an experiment script (experiments/toy.py), imported here as a module.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import toy  # noqa: E402

TINY = [
    "--seeds=2", "--epochs=1", "--batches=2", "--batch_size=16", "--width=8", "--depth=1",
    "--steps=1,2", "--ddpm_T=2", "--eval_samples=64", "--projections=8", "--no_progress",
]  # fmt: skip


def test_energy_distance_is_scipys_in_one_dimension():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 1)), rng.exponential(size=(200, 1))
    assert toy.energy_distance(x, y) == pytest.approx(stats.energy_distance(x[:, 0], y[:, 0]))


def test_sliced_wasserstein_of_a_shift_is_the_mean_projected_shift():
    # Shifting a sample by c moves every projection by <c, d_k>: W1 = |<c, d_k>| exactly.
    x = np.random.default_rng(0).uniform(-1, 1, size=(400, 2))
    shift = np.array([0.3, -0.4])
    phi = np.pi * np.arange(16) / 16
    expected = np.abs(shift @ np.stack([np.cos(phi), np.sin(phi)])).mean()
    assert toy.sliced_wasserstein(x, x + shift, 16) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name", toy.DATASETS)
def test_distances_rank_a_perfect_sampler_above_collapsed_and_blurred_ones(name):
    held_out = toy.sample_data(name, 1500, (7, 1))
    perfect = toy.sample_data(name, 1500, (7, 2))  # fresh draws of the true distribution
    assert np.all(np.abs(perfect) <= 1.0)  # inside the samplers' clip box
    collapsed = np.broadcast_to(perfect.mean(0), perfect.shape)  # all mass at the mean
    noise = np.random.default_rng(3).normal(scale=0.3, size=perfect.shape)
    blurred = perfect + noise
    for distance in (toy.sliced_wasserstein, toy.energy_distance):
        good = distance(perfect, held_out)
        assert good < 0.5 * distance(collapsed, held_out), (distance.__name__, name)
        assert good < 0.5 * distance(blurred, held_out), (distance.__name__, name)


def test_the_command_writes_the_figure_table_and_every_row(tmp_path, capsys):
    assert toy.main([f"--outdir={tmp_path}", *TINY]) == 0
    assert (tmp_path / "toy.png").stat().st_size > 10_000
    results = json.loads((tmp_path / "toy.json").read_text())
    table = (tmp_path / "toy.md").read_text()
    got = {(r["dataset"], r["model"], r["steps"]) for r in results["rows"]}
    expected = {(d, "data", 0) for d in toy.DATASETS} | {(d, "u", 1) for d in toy.DATASETS}
    expected |= {(d, m, k) for d in toy.DATASETS for m in ("v", "ddpm") for k in (1, 2)}
    assert got == expected and len(results["rows"]) == len(expected)
    for row in results["rows"]:
        for metric in ("sw1", "energy"):
            s = row[metric]
            assert len(s["per_seed"]) == 2 and np.isfinite(s["mean"]) and s["std"] >= 0
            assert s["mean"] == pytest.approx(np.mean(s["per_seed"]))
    for label in ("| u(1) |", "| v(2) |", "| DDPM(1) |", "| data |"):
        assert table.count(label) == 2, label  # one row in each distance's table
    assert "checkerboard | spiral | moons" in table
    assert "toy.json" in capsys.readouterr().out


def test_user_errors_are_one_sentence_and_exit_status_2(tmp_path, capsys):
    assert toy.main([f"--outdir={tmp_path}", "--datasets=swirl", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown dataset 'swirl'") and "\n" not in err
    assert toy.main([f"--outdir={tmp_path}", *TINY, "--steps=1,5"]) == 2  # 5 > ddpm_T = 2
    assert "--ddpm_T" in capsys.readouterr().err
    assert toy.main([f"--outdir={tmp_path}", *TINY, "--weight_power=-1"]) == 2
    assert "--weight_power" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        toy.main(["--help"])
    assert exit_info.value.code == 0 and "--quick" in capsys.readouterr().out


def test_weight_power_turns_on_the_adaptive_weight_of_u():
    # With p = 1 each sample's loss is ||d||^2 / (||d||^2 + eps) < 1; unweighted it is ~||d||^2.
    x = jnp.asarray(np.random.default_rng(0).normal(size=(64, 2)) * 4.0, jnp.float32)
    losses = {}
    for power in (0.0, 1.0):
        u = toy.make_models(toy.ToyConfig(width=8, depth=1, weight_power=power))[0]
        params = u.init(jax.random.key(0))
        losses[power] = float(jax.jit(u.loss)(params, x, jax.random.key(1)))
    assert losses[0.0] > 1.0 and 0.0 < losses[1.0] < 1.0

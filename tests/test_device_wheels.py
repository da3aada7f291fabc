"""The GPU scripts' wheel step (benchmarks/wheels.sh) leaves out wheels built for another Python."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = f"cp{sys.version_info.major}{sys.version_info.minor}"
OTHER = "cp27" if HERE != "cp27" else "cp26"


def _bash(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f"source benchmarks/wheels.sh; {script}"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def _wheels(folder: Path, names: list[str]) -> Path:
    folder.mkdir()
    for name in names:  # only the file names are read: tags decide
        (folder / name).touch()
    return folder


def test_wheels_fit_reads_the_interpreter_tags(tmp_path):
    pure = _wheels(tmp_path / "pure", ["chex-0.1-py3-none-any.whl"])
    native = _wheels(tmp_path / "native", [
        "chex-0.1-py3-none-any.whl", f"mujoco_core-4.0.0-{OTHER}-{OTHER}-manylinux_2_28_x86_64.whl",
    ])  # fmt: skip
    assert _bash(f"wheels_fit {pure}").returncode == 0
    assert _bash(f"wheels_fit {native}").returncode == 1


def test_install_wheels_leaves_a_foreign_set_out_with_one_line(tmp_path):
    native = _wheels(tmp_path / "native", [
        f"mujoco_core-4.0.0-{OTHER}-{OTHER}-manylinux_2_28_x86_64.whl",
    ])  # fmt: skip
    done = _bash(f"install_wheels {native} {tmp_path / 'site'}; echo rc=$?; echo $PYTHONPATH")
    assert "are for another Python" in done.stdout
    assert "rc=0" in done.stdout
    assert not (tmp_path / "site").exists()  # nothing installed, nothing shadowed
    assert str(REPO) in done.stdout.splitlines()[-1]

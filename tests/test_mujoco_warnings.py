"""MuJoCo's settotalmass deprecation (every HalfCheetah build) is dropped, nothing else."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mujoco")

SCRIPT = """
import sys
import mujoco
from ofql_jax.data import mujoco_warnings
if sys.argv[1] == "quiet":
    assert mujoco_warnings.quiet() and mujoco_warnings.quiet()  # idempotent
xml = ('<mujoco><compiler settotalmass="2"/><worldbody><body><geom size=".1"/>'
       '<joint/></body></worldbody></mujoco>')
model = mujoco.MjModel.from_xml_string(xml)
print("mass", round(float(model.body_subtreemass[0]), 6), flush=True)
handler = mujoco.get_mju_user_warning()
if handler is not None:
    handler("another warning")
"""


def _run(mode: str, script: str = SCRIPT) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_quiet_drops_settotalmass_only_and_keeps_its_effect():
    loud, quiet = _run("loud"), _run("quiet")
    assert "settotalmass" in loud  # MuJoCo prints it without the handler (the test can fail)
    assert "settotalmass" not in quiet
    assert "WARNING: another warning" in quiet  # every other warning still reaches the user
    assert "mass 2.0" in loud and "mass 2.0" in quiet  # the attribute still scales the masses


ENV_SCRIPT = """
import sys
import gymnasium as gym
from ofql_jax.data.envs import make_env
build = make_env if sys.argv[1] == "factory" else gym.make
for _ in range(2):
    with build("HalfCheetah-v5") as env:
        print("act", env.action_space.shape, flush=True)
"""


def test_the_env_factory_builds_halfcheetah_without_the_notice():
    plain, factory = _run("plain", ENV_SCRIPT), _run("factory", ENV_SCRIPT)
    assert "settotalmass" in plain  # Gymnasium's HalfCheetah prints it (the test can fail)
    assert "settotalmass" not in factory
    assert factory.count("act (6,)") == 2


def test_the_package_builds_envs_only_through_the_factory():
    """One place applies the per-process setup: a new ``gym.make`` call would bypass it."""
    root = Path(__file__).resolve().parents[1]
    call = re.compile(r"\bgym\.make\(")
    offenders = [
        f"{path.relative_to(root)}:{i}"
        for folder in ("ofql_jax", "benchmarks")
        for path in sorted((root / folder).rglob("*.py"))
        if path.name != "envs.py" and "peers" not in path.parts
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if call.search(line.split("#")[0]) and "``gym.make" not in line
    ]
    assert offenders == [], offenders

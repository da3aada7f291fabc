"""Make Gymnasium-Robotics' FrankaKitchen-v1 work with MuJoCo >= 3.12.

The bug: MuJoCo 3.12 moved to pybind11 3, after which comparing a MuJoCo enum with a NumPy
integer is asymmetric: ``np.int32(3) == mjtJoint.mjJNT_HINGE`` is True but
``mjtJoint.mjJNT_HINGE == np.int32(3)`` is False. ``x in (a, b)`` compares from the tuple
element's side, so in gymnasium-robotics <= 1.4.2 the line

    assert joint_type in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)

of ``gymnasium_robotics.utils.mujoco_utils.{get,set}_joint_{qpos,qvel}`` fails for every hinge
or slide joint (``joint_type`` is ``model.jnt_type[i]``, a ``numpy.int32``). FrankaKitchen-v1
reads its robot state through ``get_joint_qpos`` and so raises ``AssertionError`` while being
constructed. Upstream fixed it by converting the joint type to ``int``
(Farama-Foundation/Gymnasium-Robotics PR #330, not in a PyPI release as of 1.4.2).

The fix here does the same: ``apply()`` replaces those four module functions with versions
that compare ``int(model.jnt_type[i])`` and otherwise do what the installed code does (same
index arithmetic, same copies; the setters' shape check of multi-dimensional joints compares
with a tuple, which the installed ``(end_idx - start_idx)`` meant but never did). Callers
look the functions up on the module (``robot_get_obs``, ``self._utils.get_joint_qpos``), so
rebinding the module attributes reaches all of them. It patches only when a probe on a
one-hinge model shows the installed ``get_joint_qpos`` is broken, so on an older MuJoCo or a
fixed gymnasium-robotics it does nothing. AntMaze and the Gymnasium MuJoCo v5 envs never call
these four functions.

Example:
    >>> from ofql_jax.data import robotics_compat
    >>> robotics_compat.apply() in (True, False)
    True
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import gymnasium as gym
import numpy as np

_PROBE_XML = """
<mujoco><worldbody><body>
  <joint name="probe" type="hinge"/><geom size="0.1"/>
</body></worldbody></mujoco>
"""

_done = False


def _ndim(mujoco: Any, joint_type: int, free: int, ball: int) -> int:
    """Number of qpos/qvel entries of a joint; ``free``/``ball`` as the installed code has them."""
    if joint_type == int(mujoco.mjtJoint.mjJNT_FREE):
        return free
    if joint_type == int(mujoco.mjtJoint.mjJNT_BALL):
        return ball
    assert joint_type in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    return 1


def _joint(mujoco: Any, model: Any, name: str) -> tuple[int, int]:
    joint_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
    assert joint_id != -1, f"Joint with name '{name}' is not part of the model!"
    return joint_id, int(model.jnt_type[joint_id])


def _make_fixed(mujoco: Any) -> dict[str, Any]:
    """The four accessors of gymnasium_robotics 1.4.2, with the joint type compared as int.

    Each reads or writes ``data.<array>[start : start + ndim]`` with ``start`` from the joint's
    address table and ``ndim`` by joint type (free, ball, else 1), as upstream does (its ball
    joint's qvel reads 4 values and writes 3; kept as upstream has it).
    """

    def span(model: Any, name: str, address: str, free: int, ball: int) -> tuple[int, int]:
        joint_id, joint_type = _joint(mujoco, model, name)
        return getattr(model, address)[joint_id], _ndim(mujoco, joint_type, free, ball)

    def getter(array: str, address: str, free: int, ball: int) -> Any:
        def get(model, data, name):
            start, ndim = span(model, name, address, free, ball)
            return getattr(data, array)[start : start + ndim].copy()

        return get

    def setter(array: str, address: str, free: int, ball: int) -> Any:
        def set_(model, data, name, value):
            start, ndim = span(model, name, address, free, ball)
            value = np.array(value)
            if ndim > 1:
                assert value.shape == (ndim,), f"Value has incorrect shape {name}: {value}"
            getattr(data, array)[start : start + ndim] = value

        return set_

    return dict(
        get_joint_qpos=getter("qpos", "jnt_qposadr", 7, 4),
        get_joint_qvel=getter("qvel", "jnt_dofadr", 6, 4),
        set_joint_qpos=setter("qpos", "jnt_qposadr", 7, 4),
        set_joint_qvel=setter("qvel", "jnt_dofadr", 6, 3),
    )


def joint_accessors_broken() -> bool:
    """Whether the installed ``get_joint_qpos`` fails on a plain hinge joint (the bug above)."""
    import mujoco
    from gymnasium_robotics.utils import mujoco_utils

    model = mujoco.MjModel.from_xml_string(_PROBE_XML)
    try:
        mujoco_utils.get_joint_qpos(model, mujoco.MjData(model), "probe")
    except AssertionError:
        return True
    return False


def apply() -> bool:
    """Patch ``gymnasium_robotics.utils.mujoco_utils`` if it has the bug; True if it patched.

    Idempotent and cheap (one tiny model is compiled on the first call only).
    """
    global _done
    if _done:
        return False
    import mujoco
    from gymnasium_robotics.utils import mujoco_utils

    if joint_accessors_broken():
        for name, fn in _make_fixed(mujoco).items():
            setattr(mujoco_utils, name, fn)
        _done = True
        return True
    _done = True  # nothing to fix (or already fixed): do not probe again
    return False


def register() -> None:
    """Import and register Gymnasium-Robotics (AntMaze, Kitchen, ...), then ``apply()``.

    gymnasium_robotics prints an unrelated Adroit notice to stderr on import; it is silenced.
    """
    with contextlib.redirect_stderr(io.StringIO()):
        import gymnasium_robotics
    gym.register_envs(gymnasium_robotics)
    apply()

"""Silence one harmless MuJoCo deprecation that Gymnasium's HalfCheetah prints on every build.

MuJoCo 4 warns ``compiler attribute 'settotalmass' is deprecated ...`` each time a model with
that attribute compiles, and Gymnasium's ``half_cheetah.xml`` has it, so every HalfCheetah
env (each evaluation worker, each replica rollout) printed it: 120 copies in one 100k-step
run's log, burying the progress bar and real errors. The attribute still works (the masses are
scaled as before); the fix is Gymnasium's to make. ``quiet()`` installs a MuJoCo warning
handler, once per process, that drops exactly that message and prints every other warning as
MuJoCo does (``WARNING: <text>``, on stderr). It does nothing without MuJoCo.

Example:
    >>> from ofql_jax.data import mujoco_warnings
    >>> mujoco_warnings.quiet() in (True, False)
    True
"""

from __future__ import annotations

import sys

_DROPPED = ("compiler attribute 'settotalmass' is deprecated",)
_installed = False


def _handler(message: str) -> None:
    if not message.startswith(_DROPPED):
        print(f"WARNING: {message}", file=sys.stderr, flush=True)


def quiet() -> bool:
    """Install the handler in this process (idempotent); False when MuJoCo is missing.

    A handler someone else installed is left alone.
    """
    global _installed
    if _installed:
        return True
    try:
        import mujoco
    except ImportError:
        return False
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_handler)
    _installed = True
    return True

"""Offscreen videos of a trained policy: MuJoCo renders frames, imageio's ffmpeg writes an MP4.

MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` when it first renders.
``choose_gl_backend`` sets it where the user has not: ``egl`` when JAX sees a GPU (NVIDIA's
EGL renders headless on it), ``osmesa`` otherwise (Mesa's software renderer; Debian/Ubuntu:
``apt-get install libosmesa6``). It must run before the first environment renders.

Example:
    >>> choose_gl_backend()  # doctest: +SKIP
    'osmesa'
    >>> frames, ret = render_episode(env, policy, env_seed=0)  # doctest: +SKIP
    >>> write_mp4("hopper.mp4", frames, fps=env.metadata["render_fps"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from ofql_jax.core.errors import OFQLError

INSTALL_HINT = (
    "install an offscreen OpenGL library (Debian/Ubuntu: apt-get install libosmesa6; or "
    "set MUJOCO_GL=egl on a machine with a GPU driver)"
)


def choose_gl_backend() -> str:
    """Set ``MUJOCO_GL`` (and PyOpenGL's platform) unless set: ``egl`` on a GPU, else
    ``osmesa``; returns the backend in force."""
    if "MUJOCO_GL" not in os.environ:
        import jax

        os.environ["MUJOCO_GL"] = "egl" if jax.default_backend() == "gpu" else "osmesa"
    backend = os.environ["MUJOCO_GL"]
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


def follow_tracked_body(env: gym.Env) -> bool:
    """Make a Gymnasium MuJoCo env's free camera follow the body its camera config names.

    The v5 locomotion envs set ``trackbodyid`` but leave the camera free, so a running
    HalfCheetah or Hopper leaves the picture; a tracking camera keeps it in view. Call it
    after the first ``render()`` (the viewer exists then); returns whether it applied.
    """
    import mujoco

    try:
        renderer = env.unwrapped.mujoco_renderer
        body = renderer.default_cam_config.get("trackbodyid", -1)
        viewer = renderer._get_viewer(env.unwrapped.render_mode)  # gymnasium has no public one
    except (AttributeError, TypeError):  # not a MuJoCo env, or another gymnasium layout
        return False
    if body is None or body < 0 or renderer.camera_id not in (None, -1):
        return False
    viewer.cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    viewer.cam.trackbodyid = body
    renderer.camera_id = None  # -1 would reset the camera to free on every render
    return True


def render_episode(
    env: gym.Env,
    policy: Callable[[np.ndarray], np.ndarray],
    env_seed: int,
    max_steps: int | None = None,
    progress: bool = True,
) -> tuple[list[np.ndarray], float, int]:
    """Run one episode of ``policy`` in ``env`` (made with ``render_mode="rgb_array"``),
    rendering every step; returns ``(frames, return, steps)``. ``max_steps`` stops early
    (the return is then that of the steps run)."""
    try:
        obs, _ = env.reset(seed=env_seed)
        env.render()  # creates the viewer
        follow_tracked_body(env)
        frames = [env.render()]
    except Exception as err:  # GL libraries fail with many exception types
        raise OFQLError(
            f"MuJoCo cannot render offscreen with MUJOCO_GL={os.environ.get('MUJOCO_GL')} "
            f"({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}): "
            f"{INSTALL_HINT}."
        ) from err
    if frames[0] is None:
        raise OFQLError(
            f"The environment {env.spec.id if env.spec else env} returned no frame: make it "
            "with render_mode='rgb_array'."
        )
    total, steps, done = 0.0, 0, False
    limit = max_steps or (env.spec.max_episode_steps if env.spec else None)
    bar = tqdm(total=limit, unit="frame", disable=not progress, leave=False)
    while not done and (max_steps is None or steps < max_steps):
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        frames.append(env.render())
        total, steps, done = total + float(reward), steps + 1, terminated or truncated
        bar.update()
    bar.close()
    return frames, total, steps


def write_mp4(path: str | Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """Write RGB frames ``[H, W, 3]`` to an H.264 MP4 with imageio's ffmpeg."""
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the writer imageio uses for .mp4)
    except ImportError as err:
        raise OFQLError(
            f"Writing MP4 needs {err.name}: pip install -e .[video] (imageio, imageio-ffmpeg)."
        ) from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # ffmpeg runs as a subprocess; JAX warns about any fork, harmless for an exec.
        warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
        # macro_block_size=1 keeps odd frame sizes as they are instead of resizing them.
        imageio.mimwrite(path, list(frames), fps=fps, codec="libx264", macro_block_size=1)
    return path

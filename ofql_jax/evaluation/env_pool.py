"""Evaluation environments, stepped in this process or spread over worker processes.

A pool holds ``capacity`` environment slots. ``reset(seeds)`` starts one episode in each of the
first ``len(seeds)`` slots; ``step(actions, active)`` advances the active ones and returns
flattened observations, rewards and termination flags. ``LocalEnvPool`` does this in-process;
``ProcessEnvPool`` gives each of W long-lived worker processes a contiguous part of the slots in
use, so the (GIL-bound) Python side of MuJoCo stepping runs on W cores. Both run the same
``EnvSlots`` code, so which pool steps an episode never changes its observations or rewards.

Workers start with ``forkserver`` (``spawn`` where that is missing): JAX runs threads, so the
parent never forks itself. They ignore SIGINT and SIGTERM, which a terminal or a scheduler may
send to the whole process group (the parent's ``StopRequest`` decides when to stop), exit when
the parent's end of their pipe closes (the parent died), and are daemons, so they never
outlive it. A worker that dies or stops answering becomes an ``OFQLError``. As with
any non-fork start method, a script that starts workers needs ``if __name__ == "__main__":``.

Example:
    >>> factory = DatasetEnvFactory(info)  # doctest: +SKIP
    >>> pool = ProcessEnvPool(factory, info.observation_space, 8, 2)  # doctest: +SKIP
    >>> obs = pool.reset([0, 1, 2])  # doctest: +SKIP
    >>> obs, rewards, terminated, truncated = pool.step(actions, active)  # doctest: +SKIP
    >>> pool.close()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import struct
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from ofql_jax.core.errors import OFQLError
from ofql_jax.data import DatasetInfo, flatten_observation, observation_dim

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class DatasetEnvFactory:
    """A picklable ``info.make_env(**kwargs)``: workers rebuild the dataset's env themselves.

    ``DatasetInfo`` (spaces, ``EnvSpec`` with a string entry point, numpy scaler) pickles, and
    ``make_env`` imports the env's package (and applies ``robotics_compat``) in the worker.
    """

    info: DatasetInfo
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __call__(self) -> gym.Env:
        return self.info.make_env(**self.kwargs)


def split_counts(n: int, parts: int) -> list[int]:
    """``n`` items over ``parts`` contiguous blocks, the first ``n % parts`` one larger.

    For ``n <= m`` every block of ``n`` is at most that block of ``m``, so worker capacities
    ``split_counts(capacity, W)`` hold any smaller wave split the same way.

    Example:
        >>> split_counts(7, 3)
        [3, 2, 2]
    """
    return [n // parts + (i < n % parts) for i in range(parts)]


class EnvSlots:
    """``capacity`` envs from ``make_env``; episodes run in the first slots (in one process)."""

    def __init__(self, make_env: Callable[[], gym.Env], space: gym.Space, capacity: int):
        self.space, self.obs_dim = space, observation_dim(space)
        self.envs: list[gym.Env] = []
        try:
            for _ in range(capacity):
                self.envs.append(make_env())
        except BaseException:
            self.close()
            raise

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """Start an episode in slot i with ``seeds[i]``; float32 ``[len(seeds), obs_dim]``."""
        if len(seeds) > len(self.envs):
            raise ValueError(f"{len(seeds)} episodes for {len(self.envs)} environment slots")
        obs = np.zeros((len(seeds), self.obs_dim), np.float32)
        for i, seed in enumerate(seeds):
            obs[i] = flatten_observation(self.envs[i].reset(seed=int(seed))[0], self.space)
        return obs

    def step(self, actions: np.ndarray, active: np.ndarray) -> StepResult:
        """Step slot i with ``actions[i]`` where ``active[i]``; other rows come back zero."""
        n = len(actions)
        obs = np.zeros((n, self.obs_dim), np.float32)
        rewards = np.zeros(n, np.float64)
        terminated, truncated = np.zeros(n, bool), np.zeros(n, bool)
        for i in np.flatnonzero(active):
            raw, reward, term, trunc, _ = self.envs[i].step(actions[i])
            obs[i] = flatten_observation(raw, self.space)
            rewards[i], terminated[i], truncated[i] = float(reward), bool(term), bool(trunc)
        return obs, rewards, terminated, truncated

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []


class LocalEnvPool:
    """All slots in this process: no start-up cost, no IPC; the envs stay inspectable."""

    def __init__(self, make_env: Callable[[], gym.Env], space: gym.Space, capacity: int):
        self.slots = EnvSlots(make_env, space, capacity)
        self.capacity, self.num_workers = capacity, 1

    @property
    def envs(self) -> list[gym.Env]:
        return self.slots.envs

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        return self.slots.reset(seeds)

    def step(self, actions: np.ndarray, active: np.ndarray) -> StepResult:
        return self.slots.step(actions, active)

    def close(self) -> None:
        self.slots.close()


# Wire format: every message is one ``send_bytes`` frame whose first byte says what follows.
# The per-step frames carry raw array bytes (pickling them costs more than the pipe itself);
# rare ones (start-up, reset, errors, close) are pickled.
_PICKLED, _STEP, _STEPPED = b"P", b"S", b"R"
_STEP_HEADER = struct.Struct("<II16s")  # rows, action columns, action dtype (numpy ``str``)


def _pickled(obj: Any) -> bytes:
    return _PICKLED + pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _encode_step(actions: np.ndarray, active: np.ndarray) -> bytes:
    rows, cols = actions.shape
    header = _STEP_HEADER.pack(rows, cols, actions.dtype.str.encode())
    return b"".join((_STEP, header, actions.tobytes(), active.astype(bool).tobytes()))


def _decode_step(frame: bytes) -> tuple[np.ndarray, np.ndarray]:
    rows, cols, dtype = _STEP_HEADER.unpack_from(frame, 1)
    dtype = np.dtype(dtype.rstrip(b"\0").decode())
    start = 1 + _STEP_HEADER.size
    actions = np.frombuffer(frame, dtype, rows * cols, start).reshape(rows, cols)
    active = np.frombuffer(frame, bool, rows, start + actions.nbytes)
    return actions.copy(), active  # writable, as the in-process actions are


def _encode_result(result: StepResult) -> bytes:
    return b"".join((_STEPPED, *(np.ascontiguousarray(part).tobytes() for part in result)))


def _decode_result(frame: bytes, rows: int, obs_dim: int) -> StepResult:
    obs = np.frombuffer(frame, np.float32, rows * obs_dim, 1).reshape(rows, obs_dim)
    offset = 1 + obs.nbytes
    rewards = np.frombuffer(frame, np.float64, rows, offset)
    terminated = np.frombuffer(frame, bool, rows, offset + rewards.nbytes)
    truncated = np.frombuffer(frame, bool, rows, offset + rewards.nbytes + rows)
    return obs, rewards, terminated, truncated


def _error_text(err: BaseException) -> tuple[str, str]:
    """``("ofql", message)`` for OFQLError (shown verbatim), else the exception's first line."""
    if isinstance(err, OFQLError):
        return "ofql", str(err)
    first_line = (str(err).strip().splitlines() or [""])[0]
    return "other", f"{type(err).__name__}: {first_line}" if first_line else type(err).__name__


def _serve(slots: EnvSlots, frame: bytes) -> bytes | None:
    """The reply to one request frame; None for ``close``."""
    try:
        if frame[:1] == _STEP:
            return _encode_result(slots.step(*_decode_step(frame)))
        name, *args = pickle.loads(frame[1:])
        if name == "close":
            return None
        return _pickled(("ok", getattr(slots, name)(*args)))
    except Exception as err:
        return _pickled(("error", *_error_text(err)))


def _worker(
    conn: multiprocessing.connection.Connection,
    make_env: Callable[[], gym.Env],
    space: gym.Space,
    capacity: int,
) -> None:
    """Serve ``reset`` / ``step`` requests for this worker's slots until told or orphaned."""
    for sig in (signal.SIGINT, signal.SIGTERM):  # the parent stops us (close, or its death)
        signal.signal(sig, signal.SIG_IGN)
    if "jax" in sys.modules:  # should an env use JAX, keep it off the parent's accelerator
        sys.modules["jax"].config.update("jax_platforms", "cpu")
    try:
        slots = EnvSlots(make_env, space, capacity)
    except BaseException as err:
        conn.send_bytes(_pickled(("error", *_error_text(err))))
        return
    try:
        conn.send_bytes(_pickled(("ok", os.getpid())))
        while True:
            try:
                frame = conn.recv_bytes()
            except (EOFError, OSError):  # the parent is gone
                return
            reply = _serve(slots, frame)
            if reply is None:
                return
            conn.send_bytes(reply)
    except OSError:  # the parent is gone mid-reply (BrokenPipeError is an OSError)
        return
    finally:
        slots.close()


def _default_context() -> multiprocessing.context.BaseContext:
    """forkserver (preloading this module, so each worker starts as a cheap fork), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")


def _shutdown(processes: list[Any], conns: list[multiprocessing.connection.Connection]) -> None:
    """Ask every worker to exit, then terminate (and kill) the ones that do not."""
    for conn in conns:
        with contextlib.suppress(OSError, ValueError):
            conn.send_bytes(_pickled(("close",)))
    deadline = time.monotonic() + 5.0
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
            process.join(1.0)
        if process.is_alive():
            process.kill()
            process.join(1.0)
    for conn in conns:
        conn.close()


class ProcessEnvPool:
    """``capacity`` slots over ``num_workers`` daemon processes (capacities ``split_counts``).

    Every wave of n episodes is split the same way, so each worker steps a contiguous block of
    about n / W envs. Per step the parent sends each worker with an active env one pipe frame
    of raw action bytes and receives one of observations, rewards and flags (pickling them
    cost twice the pipe's own round trip). ``timeout_s`` bounds every wait: start-up (imports,
    env construction) and each reply.
    """

    def __init__(
        self,
        make_env: Callable[[], gym.Env],
        space: gym.Space,
        capacity: int,
        num_workers: int,
        timeout_s: float = 600.0,
        context: multiprocessing.context.BaseContext | None = None,
    ):
        if not 1 <= num_workers <= capacity:
            raise ValueError(f"num_workers={num_workers} must be in [1, capacity={capacity}]")
        self.capacity, self.num_workers, self.timeout_s = capacity, num_workers, timeout_s
        self.obs_dim = observation_dim(space)
        self._counts = [0] * num_workers  # envs of the current wave held by each worker
        self._failed: str | None = None
        ctx = context or _default_context()
        self._processes, self._conns = [], []
        self._finalizer = weakref.finalize(self, _shutdown, self._processes, self._conns)
        try:
            for i, cap in enumerate(split_counts(capacity, num_workers)):
                parent_end, child_end = ctx.Pipe()
                process = ctx.Process(
                    target=_worker,
                    args=(child_end, make_env, space, cap),
                    name=f"ofql-eval-env-{i}",
                    daemon=True,
                )
                process.start()
                child_end.close()  # so a dead worker reads as EOF here
                self._processes.append(process)
                self._conns.append(parent_end)
            self.pids: list[int] = self._gather(range(num_workers), "starting")
        except BaseException:
            self.close()
            raise

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        self._counts = split_counts(len(seeds), self.num_workers)
        bounds = np.cumsum([0, *self._counts])
        workers = [w for w in range(self.num_workers) if self._counts[w]]
        for w in workers:
            request = _pickled(("reset", [int(s) for s in seeds[bounds[w] : bounds[w + 1]]]))
            self._send(w, request, "resetting")
        obs = np.zeros((len(seeds), self.obs_dim), np.float32)
        for w, part in zip(workers, self._gather(workers, "resetting"), strict=True):
            obs[bounds[w] : bounds[w + 1]] = part
        return obs

    def step(self, actions: np.ndarray, active: np.ndarray) -> StepResult:
        n = len(actions)
        if n != sum(self._counts):
            raise ValueError(f"{n} actions for a wave of {sum(self._counts)} episodes")
        actions, active = np.ascontiguousarray(actions), np.asarray(active, bool)
        bounds = np.cumsum([0, *self._counts])
        blocks = [slice(bounds[w], bounds[w + 1]) for w in range(self.num_workers)]
        workers = [w for w in range(self.num_workers) if active[blocks[w]].any()]
        for w in workers:
            self._send(w, _encode_step(actions[blocks[w]], active[blocks[w]]), "stepping")
        obs = np.zeros((n, self.obs_dim), np.float32)
        rewards = np.zeros(n, np.float64)
        terminated, truncated = np.zeros(n, bool), np.zeros(n, bool)
        for w, part in zip(workers, self._gather(workers, "stepping"), strict=True):
            block = blocks[w]
            obs[block], rewards[block], terminated[block], truncated[block] = part
        return obs, rewards, terminated, truncated

    def close(self) -> None:
        self._finalizer()

    # --- plumbing -------------------------------------------------------------------------

    def _fail(self, message: str) -> OFQLError:
        """Stop every worker (their envs are useless now) and return the error to raise."""
        self._failed = message
        self.close()
        return OFQLError(message)

    def _died(self, w: int, doing: str) -> OFQLError:
        process = self._processes[w]
        process.join(1.0)
        code = process.exitcode
        how = f"exited with code {code}" if code is not None else "closed its pipe"
        return self._fail(
            f"Evaluation worker {w} of {self.num_workers} (pid {process.pid}) {how} while "
            f"{doing} environments, so this evaluation cannot finish: look above for its "
            "error (or the system log for an out-of-memory kill) and rerun, or evaluate "
            "in-process with num_workers=1."
        )

    def _send(self, w: int, frame: bytes, doing: str) -> None:
        if self._failed is not None:
            raise OFQLError(self._failed)
        try:
            self._conns[w].send_bytes(frame)
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            raise self._died(w, doing) from None

    def _unpickle_reply(self, w: int, frame: bytes, doing: str) -> Any:
        status, *rest = pickle.loads(frame[1:])
        if status == "ok":
            return rest[0]
        kind, text = rest
        raise self._fail(
            text
            if kind == "ofql"
            else f"An evaluation environment in worker {w} raised {text} while {doing}: fix "
            "the environment, or evaluate in-process with num_workers=1 to see the traceback."
        )

    def _gather(self, workers: Sequence[int], doing: str) -> list[Any]:
        """The replies of ``workers`` in order; a death, an error or silence raises OFQLError."""
        if self._failed is not None:
            raise OFQLError(self._failed)
        replies: dict[int, Any] = {}
        waiting = {self._conns[w]: w for w in workers}
        waiting.update({self._processes[w].sentinel: w for w in workers})
        deadline = time.monotonic() + self.timeout_s
        while len(replies) < len(workers):
            remaining = deadline - time.monotonic()
            ready = multiprocessing.connection.wait(list(waiting), max(0.0, remaining))
            if not ready:
                late = [w for w in workers if w not in replies]
                raise self._fail(
                    f"Evaluation workers {late} did not answer within {self.timeout_s:g} s "
                    f"while {doing} environments, so this evaluation was stopped: check the "
                    "environment for a hang, or evaluate in-process with num_workers=1."
                )
            for obj in ready:
                w = waiting.get(obj)
                if w is None or w in replies:
                    continue
                conn = self._conns[w]
                if obj is not conn and not conn.poll():
                    # The sentinel fired, yet the pipe is open: the worker lives, and the
                    # forkserver that reports its exit was stopped (a SIGTERM to the process
                    # group). A worker's death closes its pipe, so wait on that alone.
                    del waiting[obj]
                    continue
                try:
                    frame = conn.recv_bytes()
                except (EOFError, OSError):
                    raise self._died(w, doing) from None
                if frame[:1] == _STEPPED:
                    replies[w] = _decode_result(frame, self._counts[w], self.obs_dim)
                else:
                    replies[w] = self._unpickle_reply(w, frame, doing)
                waiting.pop(conn)
                waiting.pop(self._processes[w].sentinel, None)
        return [replies[w] for w in workers]

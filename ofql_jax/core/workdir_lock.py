"""One run per workdir: a lock file naming the process that holds it.

``WorkdirLock.acquire(workdir)`` creates ``<workdir>/.lock`` atomically with the holder's
pid, host, process start time and command. A second run on the same workdir is refused
with one sentence naming the holder. A lock left by a killed run (same host, and that pid
no longer runs or is now another process) is taken over with a note on stderr. A lock from
another host cannot be checked from here, so it is reported with how to clear it.

Example:
    >>> import tempfile
    >>> with WorkdirLock.acquire(tempfile.mkdtemp()) as lock:
    ...     lock.path.name
    '.lock'
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from ofql_jax.core.errors import OFQLError

LOCK_FILE = ".lock"


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of stat, counted after the name


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    now = _start_ticks(pid)
    return start is None or now is None or now == start


class WorkdirLock:
    """The lock of one workdir; ``release()`` (or leaving the ``with`` block) removes it."""

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder

    @classmethod
    def acquire(cls, workdir: str | Path) -> WorkdirLock:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / LOCK_FILE
        holder = dict(
            pid=os.getpid(), host=socket.gethostname(), start=_start_ticks(os.getpid()),
            since=time.strftime("%Y-%m-%d %H:%M:%S"), command=" ".join(sys.argv),
        )  # fmt: skip
        for _ in range(3):  # a stale lock is removed, then the create is tried again
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                cls._check_stale(path, workdir)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(holder, f)
            return cls(path, holder)
        raise OFQLError(
            f"Cannot lock {workdir}: another run keeps taking it; use another --workdir."
        )

    @staticmethod
    def held_by(workdir: str | Path) -> dict | None:
        """The holder of ``workdir``'s lock if a live run holds it (None otherwise)."""
        path = Path(workdir) / LOCK_FILE
        try:
            holder = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if holder.get("host") == socket.gethostname() and not _alive(
            int(holder.get("pid", -1)), holder.get("start")
        ):
            return None
        return holder

    @classmethod
    def _check_stale(cls, path: Path, workdir: Path) -> None:
        holder = cls.held_by(workdir)
        if holder is None:  # stale (or unreadable, e.g. half-written by a killed run)
            print(f"Taking over the lock of {workdir}: the run that held it is gone.",
                  file=sys.stderr)  # fmt: skip
            path.unlink(missing_ok=True)
            return
        where = holder.get("host")
        here = where == socket.gethostname()
        raise OFQLError(
            f"{workdir} is in use by the run of pid {holder.get('pid')} on {where} (since "
            f"{holder.get('since')}): wait for it to finish, stop it, or use another --workdir"
            + ("." if here else f"; if that run is gone, delete {path}.")
        )

    def release(self) -> None:
        try:
            if json.loads(self.path.read_text()).get("pid") == self.holder["pid"]:
                self.path.unlink()
        except (OSError, ValueError):
            pass

    def __enter__(self) -> WorkdirLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

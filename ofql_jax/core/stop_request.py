"""SIGTERM / Ctrl-C as a flag that a training loop checks at its next safe point."""

from __future__ import annotations

import signal

from tqdm.auto import tqdm


class StopRequest:
    """Within ``with``, the first SIGINT/SIGTERM sets ``signum``; a second stops at once.

    ``when`` names the loop's safe point for the console message, e.g. "after this chunk".
    ``requested`` is the flag to poll, also from inside long work that can be abandoned
    (an evaluation asks it at every environment step).

    Example:
        >>> with StopRequest("after this chunk") as stop:
        ...     stop.requested
        False
    """

    def __init__(self, when: str):
        self.when = when
        self.signum: int | None = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:  # second signal: stop at once
            raise KeyboardInterrupt
        self.signum = signum
        tqdm.write(f"{signal.Signals(signum).name} received: saving a checkpoint {self.when}.")

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.signum is not None

    @property
    def name(self) -> str:
        """The received signal's name, e.g. "SIGTERM" (only once one was received)."""
        return signal.Signals(self.signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

"""The one exception type that ends a run with a clear sentence instead of a traceback."""


class OFQLError(Exception):
    """A user-facing failure: the message names the problem and the fix.

    `ofql_jax.main` catches it, prints the message as one line, and exits with
    status 2 (no traceback unless ``--debug`` is given). Library code raises it
    for anything a user can correct: unknown dataset, wrong action space,
    unreachable server, bad config value, corrupt checkpoint.
    """


class StoppedError(OFQLError):
    """A run stopped on request (SIGTERM / Ctrl-C) after saving a checkpoint.

    A suite stops at it instead of going on with the next cell.
    """

"""The errors the engine raises on purpose.

Every one of them carries a message meant for an operator; the CLI prints it
without a traceback, and the socket server sends it as the `error` field.
"""


class HiveError(Exception):
    """A refusal or failure that the operator should read."""


def error_text(error: Exception) -> str:
    """What to record of an error: our own message, or the type and text of a surprise."""
    return str(error) if isinstance(error, HiveError) else f"{type(error).__name__}: {error}"


class InvalidName(HiveError):
    """An agent name that fails the strict pattern."""


class NotFound(HiveError):
    """An agent, approval or ref that does not exist."""


class Conflict(HiveError):
    """The request contradicts the current state (already resolved, in flight...)."""


class RefLocked(HiveError):
    """A git `.lock` file left behind blocks a ref or index update."""

    def __init__(self, lock_path: str):
        self.lock_path = lock_path
        super().__init__(
            f"git lock file {lock_path} exists: another git process is running, "
            f"or one died and left it behind; if none is running, remove that file"
        )


class StateLocked(HiveError):
    """Another engine owns the state root."""


class BuildFailed(HiveError):
    """A container build or rebuild failed; the message is the error to record."""

"""Errors the core raises; cli.py turns each into a message and a non-zero exit."""


class FtimgError(Exception):
    """A failure the user can act on: the message says what, where, and what to do."""

    def __init__(self, message: str, log_tail: str = ""):
        super().__init__(message)
        self.log_tail = log_tail

    def __str__(self) -> str:
        text = super().__str__()
        if self.log_tail:
            text += "\n--- last lines of the log ---\n" + self.log_tail.rstrip()
        return text


class LockError(FtimgError):
    """images.lock or a profile spec is missing, malformed, or disagrees with the other."""


class FetchError(FtimgError):
    """An artifact could not be downloaded or failed its sha256 check."""


class EngineError(FtimgError):
    """The Docker engine is unreachable or refused an operation."""


class BuildError(EngineError):
    """An image build failed; carries the tail of the build log."""


class VerifyError(FtimgError):
    """An image does not match images.lock."""

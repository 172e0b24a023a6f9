"""The one exception type jobs raise for problems the user can fix."""


class JobError(Exception):
    """A bad input, flag or environment; the message says what, where, and what to do."""

"""Time limits: a :class:`Deadline` passed down to every loop that may run long."""

import time

from .errors import TimeLimitError

__all__ = ["Deadline"]


class Deadline:
    """A point in time (``time.monotonic()`` clock) after which work stops.

    ``Deadline(None)`` never expires. Loops call :meth:`check` between units of work
    (a region, a batch, an LP round), so a limit is honoured to within one unit.

    Examples
    --------
    >>> Deadline(None).expired()
    False
    >>> Deadline(0.0).expired()
    True
    """

    def __init__(self, seconds):
        if seconds is not None and not seconds >= 0:
            raise ValueError(f"a time limit must be a non-negative number of seconds, "
                             f"got {seconds!r}")
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def expired(self):
        """Whether the time limit has passed."""
        return self.at is not None and time.monotonic() > self.at

    def remaining(self):
        """Seconds left (``inf`` without a limit, never negative)."""
        return float("inf") if self.at is None else max(0.0, self.at - time.monotonic())

    def check(self, what, partial=None):
        """Raise :class:`TimeLimitError` (naming ``what`` and carrying ``partial``) if the
        limit has passed."""
        if self.expired():
            raise TimeLimitError(f"{what}: time limit of {self.seconds:g} s reached",
                                 partial)

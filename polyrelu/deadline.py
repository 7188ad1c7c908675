"""Time limits: a :class:`Deadline` passed down to every loop that may run long."""

import multiprocessing
import signal
import threading
import time
from contextlib import contextmanager

from .errors import TimeLimitError

__all__ = ["Deadline", "hard_limit"]


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

    def wait(self):
        """The seconds left as a timeout for a blocking wait: None without a limit."""
        return None if self.at is None else self.remaining()

    def check(self, what, partial=None):
        """Raise :class:`TimeLimitError` (naming ``what`` and carrying ``partial``) if the
        limit has passed."""
        if self.expired():
            raise TimeLimitError(f"{what}: time limit of {self.seconds:g} s reached",
                                 partial)


@contextmanager
def hard_limit(seconds, what="the command", kill_children=False):
    """Raise :class:`TimeLimitError` in the main thread ``seconds`` from now, wherever it
    is (a backstop for work that does not check a :class:`Deadline` often enough, such
    as one long solver call); with ``kill_children`` (for a whole program, such as the
    command line) every worker process started with :mod:`multiprocessing` is killed
    first. A no-op without a limit or outside the main thread. Nested limits keep the
    earlier expiry.

    Parameters
    ----------
    seconds : float or None
        Time from now; None for no limit.
    what : str
        Names the work in the error message.
    kill_children : bool
        Kill every :mod:`multiprocessing` child process before raising.

    Raises
    ------
    TimeLimitError
        When the limit expires inside the block (``partial`` is None).

    Examples
    --------
    >>> import time
    >>> try:
    ...     with hard_limit(0.05):
    ...         time.sleep(5)
    ... except TimeLimitError as err:
    ...     print(err)
    the command: hard time limit of 0.05 s reached
    """
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        for child in multiprocessing.active_children() if kill_children else ():
            child.kill()
        raise TimeLimitError(f"{what}: hard time limit of {seconds:g} s reached")

    previous = signal.signal(signal.SIGALRM, expire)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    if 0 < outer < seconds:  # an enclosing limit comes first: keep it
        signal.setitimer(signal.ITIMER_REAL, outer)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-3))

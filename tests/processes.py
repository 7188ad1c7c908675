"""Child processes for the tests that interrupt a run."""

import signal

__all__ = ["default_sigint"]


def default_sigint():
    """``preexec_fn`` of a child that a test stops with SIGINT: restores SIGINT's default
    action, which a test runner started in the background inherits as ignored (the child's
    Python then never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)

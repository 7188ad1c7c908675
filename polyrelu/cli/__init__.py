"""The ``polyrelu`` command line: one module per command (``add_parser`` declares its
options, ``run`` does the work and returns the results), shared helpers in ``arguments``."""

from .main import main

__all__ = ["main"]

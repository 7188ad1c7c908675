"""``python -m polyrelu.cli``: the command line."""

from .main import entry

entry()

"""``python -m polyrelu``: the command line."""

from .cli.main import entry

entry()

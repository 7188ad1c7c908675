"""The ``polyrelu`` command line.

Every command prints its results as ``key: value`` lines (or one JSON object
with ``--json``) and exits with status 0 on success, 2 on bad input, 1 when a
``--cross-check`` finds the two enumerators disagreeing.
"""

import sys

from ..errors import PolyreluError
from . import (
    check_certificate,
    energy,
    injectivity,
    lipschitz,
    regions,
    slice,
    spectrum,
    verify,
    verify_instances,
)
from .arguments import Parser, print_results

__all__ = ["main"]

COMMANDS = (regions, lipschitz, spectrum, energy, injectivity, slice, verify,
            check_certificate, verify_instances)


def main(argv=None):
    """Run the ``polyrelu`` command line with ``argv`` (default: ``sys.argv[1:]``)."""
    args = parser().parse_args(argv)
    try:
        results = args.command(args)
    except PolyreluError as err:
        print(f"polyrelu: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("polyrelu: interrupted", file=sys.stderr)
        return 130
    print_results(results, args.json)
    return 1 if results.get("cross_check") == "DISAGREE" else 0


def parser():
    """The argument parser of every command."""
    top = Parser(prog="polyrelu", description="Exact polyhedral geometry of ReLU networks.")
    commands = top.add_subparsers(required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return top

"""The ``polyrelu`` command line.

Every command prints its results as ``key: value`` lines (or one JSON object
with ``--json``) and exits with status

- 0 on success;
- 1 when a ``--cross-check`` finds the two enumerators disagreeing;
- 2 on an error: bad input, an unreadable or unwritable file, a failed write of a
  result (the results are printed first and saved to a rescue file in the current
  directory, whose name is printed); always one line ``polyrelu: error: ...`` on stderr;
- 3 when ``--timeout`` expired (or ``verify`` answered ``timeout``): what was found is
  printed, labelled ``partial: true``, and one line on stderr says so;
- 130 when interrupted (Ctrl-C).
"""

import os
import sys
import zipfile

from ..deadline import Deadline, hard_limit
from ..errors import InvalidFileError, PolyreluError, TimeLimitError
from ..threads import blas_threads
from . import (
    check_certificate,
    check_lipschitz_certificate,
    energy,
    injectivity,
    lipschitz,
    regions,
    slice,
    spectrum,
    topology,
    verify,
    verify_instances,
)
from .arguments import Parser, positive_int, print_results
from .outputs import WRITE_ERROR

__all__ = ["main", "entry"]

COMMANDS = (regions, lipschitz, check_lipschitz_certificate, spectrum, energy, injectivity,
            slice, topology, verify, check_certificate, verify_instances)


# the hard stop comes this long after --timeout, for work that does not check its Deadline
# often enough (one long solver call); --timeout S returns within S + 5 s in all
HARD_STOP_AFTER = 2.0


def main(argv=None):
    """Run the ``polyrelu`` command line with ``argv`` (default: ``sys.argv[1:]``); returns
    the exit status (see the module docstring)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code
    timeout = getattr(args, "timeout", None)
    args.deadline = Deadline(timeout)
    try:
        with hard_limit(None if timeout is None else timeout + HARD_STOP_AFTER,
                        kill_children=True), blas_threads(args.blas_threads):
            results = args.command(args)
    except TimeLimitError as err:
        return _partial(err, args.json)
    except PolyreluError as err:
        return _error(err)
    except OSError as err:
        return _error(InvalidFileError(_os_message(err)))
    except zipfile.BadZipFile as err:
        return _error(InvalidFileError(f"not a valid zip (.npz) file: {err}"))
    except MemoryError:
        return _error(PolyreluError(
            "out of memory: the domain holds more pieces than fit at once (in high "
            "input dimension, try a smaller domain, --count-only, or --timeout)"))
    except KeyboardInterrupt:
        print("polyrelu: interrupted", file=sys.stderr)
        return 130
    failed_write = results.pop(WRITE_ERROR, None)
    print_results(results, args.json)
    if failed_write:
        return _error(failed_write)
    if results.get("result") == "timeout":
        print("polyrelu: time limit reached: no answer (result: timeout)", file=sys.stderr)
        return 3
    return 1 if results.get("cross_check") == "DISAGREE" else 0


def entry():
    """The ``polyrelu`` program: :func:`main`, then exit with its status. After a time
    limit the process exits at once (``os._exit``, once the output is flushed): every
    result is printed and every checkpoint chunk written by then, and killed worker
    processes must not hold the exit up."""
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (``polyrelu ... | head``): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    if status == 3:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def _error(message):
    print(f"polyrelu: error: {message}", file=sys.stderr)
    return 2


def _os_message(err):
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or err}"


def _partial(err, as_json):
    """Print the partial results a TimeLimitError carries (a dict, labelled partial)."""
    partial = err.partial if isinstance(err.partial, dict) else {}
    failed_write = partial.pop(WRITE_ERROR, None)
    print_results({"partial": True, **partial}, as_json)
    print(f"polyrelu: time limit reached, partial results: {err}", file=sys.stderr)
    if failed_write:
        print(f"polyrelu: error: {failed_write}", file=sys.stderr)
    return 3


def parser():
    """The argument parser of every command."""
    top = Parser(prog="polyrelu",
                 description="Exact polyhedral geometry of piecewise-linear networks.")
    top.add_argument("--blas-threads", type=positive_int, default=1, metavar="N",
                     help="threads of the BLAS library (default 1: polyrelu's matrices are "
                          "small, and more threads only contend; --jobs sets the parallelism)")
    commands = top.add_subparsers(required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return top

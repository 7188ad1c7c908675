"""``polyrelu verify-instances``: run a benchmark csv of instances, write a results csv."""

import argparse
import sys

from ..errors import PolyreluError
from ..verification.instances import run_instances
from .arguments import positive_int, seconds
from .outputs import check_output

__all__ = ["add_parser", "run"]


def add_parser(commands):
    """Declare the ``verify-instances`` command and its options."""
    parser = commands.add_parser(
        "verify-instances", help="run a benchmark csv of instances, write a results csv",
        description="Verify every line (network,property,timeout) of a VNN-COMP style "
                    "instances csv; results are appended to OUT as they finish and a rerun "
                    "skips the instances already there. A network or property named x "
                    "that exists only as x.gz is read from the gzip.")
    parser.add_argument("instances", metavar="CSV", help="instances csv")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="results csv")
    parser.add_argument("--timeout-cap", type=seconds, metavar="S",
                        help="at most S seconds per instance (default: its own limit)")
    parser.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                        help="run N instances at once, one worker process each (results "
                             "in the csv's order)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run the instances on a Dask cluster (dask.distributed "
                             "scheduler address) instead of --jobs worker processes")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="print each result as it finishes (default: on)")
    parser.set_defaults(command=run)


def run(args):
    """Run the instances (appending to the results csv) and return the totals."""
    check_output(args.output, "-o")
    if args.scheduler and args.jobs > 1:
        raise PolyreluError("--jobs and --scheduler exclude each other (on a Dask cluster "
                            "its workers decide how many instances run at once)")
    return run_instances(args.instances, args.output, timeout_cap=args.timeout_cap,
                         jobs=args.jobs, scheduler=args.scheduler,
                         progress=_show if args.progress else None)


def _show(row):
    print(f"{row['network']} {row['property']}: {row['result']} in {row['seconds']} s "
          f"(check: {row['check'] or '-'})", file=sys.stderr, flush=True)

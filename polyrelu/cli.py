"""The ``polyrelu`` command line.

Every command prints its results as ``key: value`` lines (or one JSON object
with ``--json``) and exits with status 0 on success, 2 on bad input.
"""

import argparse
import json
import re
import sys

import numpy as np

from .domain import Domain
from .errors import PolyreluError
from .loaders import load_network
from .options import Options
from .walk import enumerate_regions

__all__ = ["main"]


def main(argv=None):
    """Run the ``polyrelu`` command line with ``argv`` (default: ``sys.argv[1:]``)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        results = args.command(args)
    except PolyreluError as err:
        print(f"polyrelu: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("polyrelu: interrupted", file=sys.stderr)
        return 130
    _print_results(results, args.json)
    return 0


class _Parser(argparse.ArgumentParser):
    """An argument parser that reads ``-1,-2.5e-3`` as a value (a list of numbers), not an option."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-[\d.][\d.,eE+-]*$")


def _parser():
    parser = _Parser(
        prog="polyrelu", description="Exact polyhedral geometry of ReLU networks.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    regions = commands.add_parser(
        "regions", help="enumerate the linear regions of a network over a domain",
        description="Enumerate every activation region of NET over the input domain by "
                    "walking their adjacency graph.")
    regions.add_argument("net", metavar="NET", help="network file (.npz, .onnx, .pt, .joblib)")
    _add_domain_arguments(regions)
    regions.add_argument("-o", "--output", metavar="FILE",
                         help="save the region complex to FILE (.npz)")
    regions.add_argument("--facet-method", choices=("auto", "qhull", "lp"), default="auto",
                         help="how facets are found (default: auto)")
    _add_common_arguments(regions)
    regions.set_defaults(command=_regions_command)
    return parser


def _add_domain_arguments(parser):
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--box", nargs=2, metavar=("LO", "HI"),
                       help="input box: LO and HI are each one number for every dimension "
                            "or a comma-separated list")
    group.add_argument("--vnnlib", metavar="FILE",
                       help="take the input box from a VNN-LIB property file")


def _add_common_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (default: on when stderr is a terminal)")


def domain_from_args(args, dim):
    """The :class:`Domain` given by ``--box`` or ``--vnnlib`` for a network with ``dim`` inputs."""
    if args.vnnlib:
        from .vnnlib import input_box

        lower, upper = input_box(args.vnnlib)
    else:
        lower, upper = (_parse_bound(text, dim, name) for text, name in zip(args.box, ("LO", "HI")))
    return Domain.box(lower, upper)


def _parse_bound(text, dim, name):
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError as err:
        raise PolyreluError(f"--box {name} must be numbers separated by commas, got {text!r}") \
            from err
    if len(values) == 1:
        return np.full(dim, values[0])
    if len(values) != dim:
        raise PolyreluError(
            f"--box {name} has {len(values)} values but the network has {dim} inputs")
    return np.array(values)


def _regions_command(args):
    network = load_network(args.net)
    domain = domain_from_args(args, network.input_dim)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    complex_ = enumerate_regions(network, domain, options=Options(facet_method=args.facet_method),
                                 progress=progress)
    stats = complex_.stats
    results = {
        "regions": len(complex_),
        "affine_pieces": len(complex_.affine_pieces()),
        "edges": complex_.graph.number_of_edges(),
        "seconds": round(stats["seconds"], 3),
        "lps": stats["lps"],
        "lps_per_region": round(stats["lps"] / max(len(complex_), 1), 3),
        "regions_per_second": round(len(complex_) / max(stats["seconds"], 1e-9), 1),
        "network": repr(network),
        "domain": repr(domain),
    }
    if stats["thin_regions"]:
        results["thin_regions_skipped"] = stats["thin_regions"]
    if args.output:
        complex_.save(args.output)
        results["saved"] = args.output
    return results


def _print_results(results, as_json):
    if as_json:
        print(json.dumps(results))
        return
    for key, value in results.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    sys.exit(main())

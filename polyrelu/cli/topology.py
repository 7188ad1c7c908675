"""``polyrelu topology``: Betti numbers, barcodes and critical points of a network's outputs."""

from ..errors import PolyreluError, TimeLimitError
from ..regions.walk import enumerate_regions
from ..topology import barcode, betti_numbers, critical_points, vertex_incidence
from .arguments import add_command, add_timeout, inputs

__all__ = ["add_parser", "run"]


def add_parser(commands):
    """Declare the ``topology`` command and its options."""
    parser = add_command(
        commands, "topology", run,
        "Betti numbers of sublevel sets and decision regions, barcodes, critical points",
        "Exact homology over GF(2) of a closed set of the domain cut out by NET's outputs "
        "(from the region complex: the nerve of the set's convex pieces): betti_0 ... "
        "betti_{d-1}.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--level", type=float, metavar="C",
                       help="the sublevel set {f_K <= C}")
    which.add_argument("--superlevel", type=float, metavar="C",
                       help="the superlevel set {f_K >= C}")
    which.add_argument("--class", dest="winner", type=int, metavar="K",
                       help="the decision region of output K (where f_K >= every other "
                            "output)")
    parser.add_argument("--output-index", type=int, default=0, metavar="K",
                        help="the output f_K of --level and --superlevel (default: 0)")
    parser.add_argument("--barcode", action="store_true",
                        help="also print the persistence barcode of the (sub- or super-) "
                             "level filtration: lines bar_k: BIRTH DEATH")
    parser.add_argument("--critical", action="store_true",
                        help="also print the PL critical points of f_K: lines "
                             "critical_INDEX: VALUE at POINT")
    add_timeout(parser)


def run(args):
    """Walk the regions, then the Betti numbers (and barcode, critical points) asked for."""
    if args.winner is not None and (args.barcode or args.critical):
        raise PolyreluError("--barcode and --critical need --level or --superlevel (a "
                            "filtration by one output), not --class")
    network, domain, progress = inputs(args)
    try:
        complex_ = enumerate_regions(network, domain, progress=progress,
                                     deadline=args.deadline)
    except TimeLimitError as err:
        raise TimeLimitError(str(err), {"regions_found": len(err.partial or ())}) from err
    incidence = vertex_incidence(complex_)  # the vertices, once for every result below
    betti = betti_numbers(complex_, output=args.output_index, level=args.level,
                          superlevel=args.superlevel, winner=args.winner, incidence=incidence)
    results = {f"betti_{k}": b for k, b in enumerate(betti)}
    results["regions"] = len(complex_)
    if args.barcode:
        results["bars"] = [{"dim": bar.dim, "birth": bar.birth, "death": _finite(bar.death)}
                           for bar in barcode(complex_, output=args.output_index,
                                              superlevel=args.superlevel is not None,
                                              incidence=incidence)]
    if args.critical:
        results["critical_points"] = [
            {"index": p.index, "value": p.value, "point": p.point.tolist(),
             "multiplicity": p.multiplicity}
            for p in critical_points(complex_, output=args.output_index,
                                     incidence=incidence)]
    return results


def _finite(value):
    return None if value in (float("inf"), float("-inf")) else value

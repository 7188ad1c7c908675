"""``polyrelu slice``: the exact regions of a 2-D slice of input space, drawn."""

import importlib.util
from pathlib import Path

import numpy as np

from ..analysis.table import slice_table
from ..errors import PolyreluError
from ..planar.boundary import decision_boundary
from ..planar.slices import plane_through, slice_regions
from ..planar.view import slice_view
from .arguments import (
    add_command,
    add_timeout,
    network_from_args,
    parse_bound,
    parse_point,
)
from .outputs import (
    add_table_option,
    check_output,
    check_table,
    write_output,
    write_table_output,
)

__all__ = ["add_parser", "run"]


def add_parser(commands):
    """Declare the ``slice`` command and its options."""
    parser = add_command(
        commands, "slice", run, "exact regions of a 2-D slice, drawn",
        "Exact activation regions of NET on a plane of input space (shapely polygons), drawn "
        "to a picture. A point X is comma-separated numbers or a .npy file holding d numbers "
        "(e.g. a flattened image).", domain=False)
    plane = parser.add_mutually_exclusive_group(required=True)
    plane.add_argument("--through", nargs=3, metavar=("X1", "X2", "X3"),
                       help="the plane through three input points (orthonormal frame, origin X1)")
    plane.add_argument("--plane", nargs=3, metavar=("X0", "U", "V"),
                       help="the plane X0 + t1 U + t2 V")
    plane.add_argument("--box", nargs=2, metavar=("LO", "HI"),
                       help="a 2-input network's own input plane over this box")
    parser.add_argument("--tbox", nargs=2, metavar=("LO", "HI"),
                        help="box of slice coordinates t (default: [-1, 1]^2 for --plane, the "
                             "three points with a margin for --through)")
    parser.add_argument("-o", "--output", metavar="PICTURE",
                        help="write a picture (.png or .svg) or an interactive page (.html)")
    parser.add_argument("--color", choices=("pattern", "gradient", "output", "neuron"),
                        default="pattern", help="fill regions by (default: pattern)")
    parser.add_argument("--output-index", type=int, default=0, metavar="K",
                        help="the output used by --color gradient/output (default: 0)")
    parser.add_argument("--neuron", type=int, metavar="J",
                        help="the hidden pre-activation (global index, layer by layer: the "
                             "neuron of a ReLU network) for --color neuron")
    parser.add_argument("--boundary", action="store_true",
                        help="compute and draw the exact decision boundary (top-two logit ties)")
    parser.add_argument("--graph", action="store_true", help="draw the adjacency graph")
    add_table_option(parser, "slice's pieces")
    add_timeout(parser)


def _check_picture(path):
    """Before any work: the picture's format, its folder, and matplotlib."""
    if path is None:
        return
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".svg", ".html"):
        raise PolyreluError(f"-o {path}: a picture file name must end in .png, .svg or "
                            ".html (an interactive page)")
    check_output(path, "-o")
    if suffix == ".html" and importlib.util.find_spec("bokeh") is None:
        raise PolyreluError("-o ....html needs bokeh for the interactive page: pip install "
                            "'polyrelu[view]' (or write .png)")
    if suffix != ".html" and importlib.util.find_spec("matplotlib") is None:
        raise PolyreluError("-o needs matplotlib to draw the picture: pip install "
                            "'polyrelu[plots]' (or drop -o)")


def run(args):
    """The slice's regions and edges, its decision boundary and the picture's path."""
    _check_picture(args.output)
    check_table(args.table)
    network = network_from_args(args)
    plane, marks = _slice(network, args)
    results = {"regions": len(plane), "edges": plane.graph.number_of_edges(),
               "seconds": round(plane.stats["seconds"], 3),
               "thin_pieces_skipped": plane.stats["thin_pieces"],
               "network": repr(network), "slice_box": list(plane.domain.bounds)}
    if args.boundary:
        results["boundary_segments"] = len(decision_boundary(plane))
    labels = ["X1", "X2", "X3"] if marks is not None else None
    if args.output and Path(args.output).suffix.lower() == ".html":
        write_output(results, "page", args.output, lambda path: slice_view(
            plane, path, output=args.output_index, points=marks, labels=labels))
    elif args.output:
        from ..planar.pictures import slice_picture

        write_output(results, "picture", args.output, lambda path: slice_picture(
            plane, path, color=args.color, output=args.output_index, neuron=args.neuron,
            boundary=args.boundary, graph=args.graph, points=marks, labels=labels))
    write_table_output(results, args.table, lambda: slice_table(plane))
    return results


def _slice(network, args):
    """The :class:`PlanarSlice` the arguments name, and the slice coordinates of the
    points it goes through (None unless ``--through``)."""
    d = network.input_dim
    tbox = None
    if args.tbox:
        tbox = [parse_bound(text, 2, name, "--tbox").tolist()
                for text, name in zip(args.tbox, ("LO", "HI"))]
    if args.through:
        points = np.array([parse_point(text, d) for text in args.through])
        origin, directions, auto_box = plane_through(points)
        plane = slice_regions(network, origin, directions, tbox or auto_box,
                              deadline=args.deadline)
        return plane, plane.coordinates(points)
    if args.plane:
        origin, u, v = (parse_point(text, d) for text in args.plane)
        return slice_regions(network, origin, np.column_stack([u, v]),
                             tbox or ([-1.0, -1.0], [1.0, 1.0]), deadline=args.deadline), None
    if d != 2:
        raise PolyreluError(f"--box slices the input plane of a 2-input network; this one "
                            f"has {d} inputs (use --through or --plane)")
    box = [parse_bound(text, 2, name, "--box") for text, name in zip(args.box, ("LO", "HI"))]
    return slice_regions(network, [0.0, 0.0], np.eye(2), box, deadline=args.deadline), None

"""``polyrelu spectrum``: exact DC and Fourier coefficients along a path."""

from ..analysis.paths import ClosedCurve, Segment, path_pieces
from ..analysis.spectrum import path_spectrum
from .arguments import add_command, network_from_args, parse_bound

__all__ = ["add_parser", "run"]


def add_parser(commands):
    """Declare the ``spectrum`` command and its options."""
    parser = add_command(
        commands, "spectrum", run,
        "exact DC and Fourier coefficients of the outputs along a path",
        "Exact DC and harmonic amplitudes of NET's outputs (or a hidden layer's features) "
        "along the closed curve X0 + U cos t + V sin t (one period) or the segment from A to "
        "B (period 1). With one output the keys are dc, harmonic_1, ...; with several, "
        "output_0_dc, output_0_harmonic_1, ...", domain=False)
    path = parser.add_mutually_exclusive_group(required=True)
    path.add_argument("--curve", nargs=3, metavar=("X0", "U", "V"),
                      help="each one number for every dimension or a comma-separated list")
    path.add_argument("--segment", nargs=2, metavar=("A", "B"), help="the segment's ends")
    parser.add_argument("--harmonics", type=int, default=8, metavar="K",
                        help="number of harmonics (default: 8)")
    parser.add_argument("--layer", type=int, help="features of this hidden layer instead")


def run(args):
    """The pieces along the path and the exact coefficients of each output."""
    network = network_from_args(args)
    dim = network.input_dim
    if args.curve:
        path = ClosedCurve(*(parse_bound(text, dim, name, "--curve")
                             for text, name in zip(args.curve, ("X0", "U", "V"))))
    else:
        path = Segment(*(parse_bound(text, dim, name, "--segment")
                         for text, name in zip(args.segment, ("A", "B"))))
    pieces = path_pieces(network, path)
    result = path_spectrum(network, path, args.harmonics, layer=args.layer, pieces=pieces)
    results = {"pieces": len(pieces), "period": result.period}
    several = len(result.dc) > 1
    for j in range(len(result.dc)):
        prefix = f"output_{j}_" if several else ""
        results[f"{prefix}dc"] = float(result.dc[j])
        for k in range(args.harmonics):
            results[f"{prefix}harmonic_{k + 1}"] = float(result.amplitude[k, j])
    return results

"""``polyrelu check-lipschitz-certificate``: re-check a saved Lipschitz certificate."""

from ..analysis.lipschitz_certificate import load_lipschitz_certificate
from ..analysis.lipschitz_checker import check_lipschitz_certificate
from .arguments import add_loading_arguments, network_from_args

__all__ = ["add_parser", "run"]


def add_parser(commands):
    """Declare the ``check-lipschitz-certificate`` command."""
    parser = commands.add_parser(
        "check-lipschitz-certificate", help="re-check a saved Lipschitz certificate",
        description="Re-validate CERT (written by 'polyrelu lipschitz --certificate') for NET "
                    "without searching: prints 'certificate: valid' with the proven bracket "
                    "of the constant, its norm and box, or exits with status 2 and the first "
                    "flaw.")
    parser.add_argument("net", metavar="NET", help="network file")
    parser.add_argument("certificate", metavar="CERT", help="certificate file (.npz)")
    parser.add_argument("--norm", choices=("1", "2", "inf"),
                        help="require the certificate to be for this norm")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_loading_arguments(parser)
    parser.set_defaults(command=run)


def run(args):
    """``certificate: valid`` and the checker's summary, or a PolyreluError naming the flaw."""
    certificate = load_lipschitz_certificate(args.certificate)
    summary = check_lipschitz_certificate(network_from_args(args), certificate,
                                          norm=args.norm)
    norm = "inf" if summary["norm"] == float("inf") else f"{summary['norm']:g}"
    return {"certificate": "valid", **summary, "norm": norm,
            "box_lower": certificate.lower.tolist(), "box_upper": certificate.upper.tolist()}

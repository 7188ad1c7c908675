"""``polyrelu check-certificate``: re-check a saved verification certificate."""

from ..verification.certificate_io import load_certificate
from ..verification.checker import check_certificate
from ..verification.vnnlib import read_vnnlib
from .arguments import add_loading_arguments, network_from_args

__all__ = ["add_parser", "run"]


def add_parser(commands):
    """Declare the ``check-certificate`` command."""
    parser = commands.add_parser(
        "check-certificate", help="re-check a saved verification certificate",
        description="Re-validate CERT (written by 'polyrelu verify --certificate') for NET and "
                    "PROP without searching: prints 'certificate: valid' or exits with status "
                    "2 and the first flaw.")
    parser.add_argument("net", metavar="NET", help="network file")
    parser.add_argument("property", metavar="PROP", help="VNN-LIB property file")
    parser.add_argument("certificate", metavar="CERT", help="certificate file (.npz)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_loading_arguments(parser)
    parser.set_defaults(command=run)


def run(args):
    """``certificate: valid`` and the checker's summary, or a PolyreluError naming the flaw."""
    summary = check_certificate(network_from_args(args), read_vnnlib(args.property),
                                load_certificate(args.certificate))
    return {"certificate": "valid", **summary}

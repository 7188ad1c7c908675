"""``polyrelu verify``: decide a VNN-LIB property exactly (holds / violated)."""

import argparse
import sys

from ..network.loaders import load_network
from ..verification.certificate_io import save_certificate
from ..verification.counterexample import check_counterexample_onnx
from ..verification.checked import verify
from ..verification.search import result_file_text
from ..verification.vnnlib import read_vnnlib

__all__ = ["add_parser", "run"]


def add_parser(commands):
    """Declare the ``verify`` command and its options."""
    parser = commands.add_parser(
        "verify", help="decide a VNN-LIB property exactly (holds / violated)",
        description="Decide whether NET satisfies the VNN-LIB property PROP: 'holds' with a "
                    "certificate (checked before printing), 'violated' with a counterexample "
                    "(re-checked exactly and, for ONNX files, with onnxruntime), or 'timeout'.")
    parser.add_argument("net", metavar="NET", help="network file (.onnx, .npz, .pt, .joblib)")
    parser.add_argument("property", metavar="PROP", help="VNN-LIB property file")
    parser.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="search in N worker processes")
    parser.add_argument("--exact-threshold", type=int, default=10, metavar="T",
                        help="decide sub-boxes with at most T unstable neurons on their "
                             "regions (default: 10)")
    parser.add_argument("--exact-depth", type=int, default=12, metavar="K",
                        help="decide sub-boxes K bisections deep on their regions "
                             "(default: 12)")
    parser.add_argument("--result", metavar="FILE",
                        help="write the answer in the VNN-COMP result format (sat/unsat/"
                             "timeout/unknown, with the counterexample)")
    parser.add_argument("--certificate", metavar="FILE",
                        help="save the certificate of a 'holds' answer to FILE (.npz)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show the sub-boxes searched (default: on when stderr is a "
                             "terminal)")
    parser.set_defaults(command=run)


def run(args):
    """Search, re-check the answer (certificate or counterexample) and write the files."""
    network = load_network(args.net)
    prop = read_vnnlib(args.property)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    result = verify(network, prop, timeout=args.timeout, jobs=args.jobs,
                    exact_threshold=args.exact_threshold, exact_depth=args.exact_depth,
                    progress=_print_box_count if show else None)
    if show:
        print(file=sys.stderr)
    out = {"result": result.status, "seconds": round(result.stats["seconds"], 3),
           "boxes": result.stats["boxes"], "lps": result.stats["lps"]}
    if result.status == "holds":
        out.update(certificate="checked", **result.certificate.counts())
    if "certificate_rejected" in result.stats:  # the search said holds, the checker did not
        out["certificate_rejected"] = result.stats["certificate_rejected"]
    if result.status == "violated":
        out.update(_counterexample(args.net, prop, result.counterexample))
    if args.result:
        with open(args.result, "w") as handle:
            handle.write(result_file_text(result))
        out["result_file"] = args.result
    if args.certificate and result.certificate is not None:
        save_certificate(result.certificate, args.certificate)
        out["certificate_file"] = args.certificate
    return out


def _counterexample(net, prop, cex):
    """The counterexample's entries of the results (with the onnxruntime re-check for ONNX)."""
    out = {"counterexample": cex.x.tolist(), "output": cex.output.tolist(),
           "exact_check": "passed" + ("" if cex.exact else " at a rational point next to the "
                                      "printed float")}
    if str(net).endswith(".onnx"):
        passes, _, worst = check_counterexample_onnx(net, prop, cex)
        out["onnxruntime_check"] = f"{'passed' if passes else 'FAILED'} (worst row {worst:.3g})"
    return out


def _print_box_count(boxes):
    print(f"\rverify: {boxes} sub-boxes searched", end="", file=sys.stderr, flush=True)

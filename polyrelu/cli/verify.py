"""``polyrelu verify``: decide a VNN-LIB property exactly (holds / violated)."""

import argparse
import sys

from ..errors import TimeLimitError
from ..network.loaders import gzip_fallback, read_gzip
from ..verification.certificate_io import save_certificate
from ..verification.checked import verify
from ..verification.counterexample import check_counterexample_onnx
from ..verification.search import result_file_text, timeout_result
from ..verification.vnnlib import read_vnnlib
from .arguments import add_loading_arguments, network_from_args, positive_int, seconds
from .outputs import check_output, write_output

__all__ = ["add_parser", "run"]


def add_parser(commands):
    """Declare the ``verify`` command and its options."""
    parser = commands.add_parser(
        "verify", help="decide a VNN-LIB property exactly (holds / violated)",
        description="Decide whether NET satisfies the VNN-LIB property PROP: 'holds' with a "
                    "certificate (checked before printing), 'violated' with a counterexample "
                    "(re-checked exactly and, for ONNX files, with onnxruntime), or 'timeout'.")
    parser.add_argument("net", metavar="NET", help="network file (.onnx, .npz, .skops; .pt, "
                                                   ".pt2, .joblib with --trust-pickle)")
    parser.add_argument("property", metavar="PROP", help="VNN-LIB property file")
    parser.add_argument("--timeout", type=seconds, metavar="S",
                        help="give up after S seconds (result: timeout, exit status 3)")
    parser.add_argument("--jobs", type=positive_int, default=1, metavar="N",
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
    add_loading_arguments(parser)
    parser.set_defaults(command=run)


def run(args):
    """Search, re-check the answer (certificate or counterexample) and write the files."""
    check_output(args.result, "--result")
    check_output(args.certificate, "--certificate")
    network = network_from_args(args)
    prop = read_vnnlib(args.property)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        result = verify(network, prop, deadline=args.deadline, jobs=args.jobs,
                        exact_threshold=args.exact_threshold, exact_depth=args.exact_depth,
                        progress=_print_box_count if show else None)
    except TimeLimitError as err:  # the hard stop: a search step outlived the limit
        result = timeout_result(args.deadline.seconds, str(err))
    if show:
        print(file=sys.stderr)
    out = {"result": result.status, "seconds": round(result.stats["seconds"], 3),
           "falsify_seconds": round(result.stats.get("falsify_seconds", 0.0), 3),
           "boxes": result.stats["boxes"], "lps": result.stats["lps"]}
    if result.status == "holds":
        out.update(certificate="checked", **result.certificate.counts())
    if "certificate_rejected" in result.stats:  # the search said holds, the checker did not
        out["certificate_rejected"] = result.stats["certificate_rejected"]
    if result.status == "violated":
        out.update(_counterexample(args.net, prop, result.counterexample))
    if args.result:
        write_output(out, "result_file", args.result, lambda path: _write_text(
            path, result_file_text(result)))
    if args.certificate and result.certificate is not None:
        write_output(out, "certificate_file", args.certificate,
                     lambda path: save_certificate(result.certificate, path))
    return out


def _write_text(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def _counterexample(net, prop, cex):
    """The counterexample's entries of the results (with the onnxruntime re-check for ONNX)."""
    out = {"counterexample": cex.x.tolist(), "output": cex.output.tolist(),
           "exact_check": "passed" + ("" if cex.exact else " at a rational point next to the "
                                      "printed float")}
    net = gzip_fallback(net)
    if net.name.endswith((".onnx", ".onnx.gz")):
        model = read_gzip(net) if net.name.endswith(".gz") else net
        try:
            passes, _, worst = check_counterexample_onnx(model, prop, cex)
        except ImportError:
            out["onnxruntime_check"] = "skipped (install onnxruntime: pip install onnxruntime)"
            return out
        out["onnxruntime_check"] = f"{'passed' if passes else 'FAILED'} (worst row {worst:.3g})"
    return out


def _print_box_count(boxes):
    print(f"\rverify: {boxes} sub-boxes searched", end="", file=sys.stderr, flush=True)

"""The ``polyrelu`` command line.

Every command prints its results as ``key: value`` lines (or one JSON object
with ``--json``) and exits with status 0 on success, 2 on bad input, 1 when a
``--cross-check`` finds the two enumerators disagreeing.
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
    return 1 if results.get("cross_check") == "DISAGREE" else 0


class _Parser(argparse.ArgumentParser):
    """An argument parser that reads ``-1,-2.5e-3`` as a value (numbers), not an option."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-[\d.][\d.,eE+-]*$")


def _parser():
    parser = _Parser(
        prog="polyrelu", description="Exact polyhedral geometry of ReLU networks.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    regions = _command(
        commands, "regions", _regions_command,
        "enumerate the linear regions of a network over a domain",
        "Enumerate every activation region of NET over the input domain by walking their "
        "adjacency graph.")
    regions.add_argument("-o", "--output", metavar="FILE",
                         help="save the region complex to FILE (.npz)")
    regions.add_argument("--facet-method", choices=("auto", "qhull", "lp"), default="auto",
                         help="how facets are found (default: auto)")
    regions.add_argument("--cross-check", action="store_true",
                         help="also run the layer-wise splitting enumerator and report any "
                              "region found by one and not the other")
    regions.add_argument("--count-only", action="store_true",
                         help="only count the regions (splitting enumerator, no facets)")
    regions.add_argument("--checkpoint", metavar="DIR",
                         help="stream regions to DIR as they are found; rerunning the same "
                              "command resumes an interrupted run from there")
    regions.add_argument("--checkpoint-seconds", type=float, default=5.0, metavar="S",
                         help="write the checkpoint at least every S seconds (default: 5)")
    regions.add_argument("--jobs", type=int, default=1, metavar="N",
                         help="build regions in N worker processes")
    regions.add_argument("--scheduler", metavar="ADDRESS",
                         help="build regions on a Dask cluster (dask.distributed scheduler)")

    lip = _command(
        commands, "lipschitz", _lipschitz_command,
        "exact Lipschitz constant over a domain, with baselines",
        "Exact Lipschitz constant of NET over the domain (max over regions of the Jacobian's "
        "operator norm), compared with approximate bounds.")
    lip.add_argument("--norm", choices=("1", "2", "inf"), default="2",
                     help="vector norm on inputs and outputs (default: 2)")
    lip.add_argument("--output", type=int, help="measure only this output component")
    lip.add_argument("--no-sdp", action="store_true", help="skip the LipSDP baseline (l2)")
    _add_spectrum_and_energy_commands(commands)
    _add_injectivity_command(commands)
    _add_slice_command(commands)
    _add_verify_commands(commands)
    return parser


def _command(commands, name, function, summary, description, domain=True):
    """A sub-command taking NET, --json, --progress and (if ``domain``) --box or --vnnlib."""
    parser = commands.add_parser(name, help=summary, description=description)
    parser.add_argument("net", metavar="NET", help="network file (.npz, .onnx, .pt, .joblib)")
    if domain:
        _add_domain_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (default: on when stderr is a terminal)")
    parser.set_defaults(command=function)
    return parser


def _add_domain_arguments(parser):
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--box", nargs=2, metavar=("LO", "HI"),
                       help="input box: LO and HI are each one number for every dimension "
                            "or a comma-separated list")
    group.add_argument("--vnnlib", metavar="FILE",
                       help="take the input box from a VNN-LIB property file")


def domain_from_args(args, dim):
    """The :class:`Domain` given by ``--box`` or ``--vnnlib`` for a network with ``dim`` inputs."""
    if args.vnnlib:
        from .vnnlib import input_box

        lower, upper = input_box(args.vnnlib)
    else:
        lower, upper = (_parse_bound(text, dim, name, "--box")
                        for text, name in zip(args.box, ("LO", "HI")))
    return Domain.box(lower, upper)


def _parse_bound(text, dim, name, option="--box"):
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError as err:
        raise PolyreluError(f"{option} {name} must be numbers separated by commas, "
                            f"got {text!r}") from err
    if len(values) == 1:
        return np.full(dim, values[0])
    if len(values) != dim:
        raise PolyreluError(
            f"{option} {name} has {len(values)} values but the network has {dim} inputs")
    return np.array(values)


def _inputs(args):
    """(network, domain, progress) from a command's arguments."""
    network = load_network(args.net)
    domain = domain_from_args(args, network.input_dim)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    return network, domain, progress


def _regions_command(args):
    network, domain, progress = _inputs(args)
    if args.count_only:
        from .splitting import count_regions

        count, stats = count_regions(network, domain, progress=progress)
        return {"regions": count, "seconds": round(stats["seconds"], 3), "lps": stats["lps"],
                "method": "splitting (count only)"}
    options = Options(facet_method=args.facet_method)
    checkpoint = None
    if args.checkpoint:
        from .checkpoint import Checkpoint

        checkpoint = Checkpoint(args.checkpoint, network, domain, options,
                                flush_seconds=args.checkpoint_seconds)
    if args.jobs > 1 or args.scheduler:
        from .parallel import enumerate_parallel

        complex_ = enumerate_parallel(network, domain, jobs=args.jobs, scheduler=args.scheduler,
                                      options=options, checkpoint=checkpoint,
                                      progress=progress)
    else:
        complex_ = enumerate_regions(network, domain, options=options, progress=progress,
                                     checkpoint=checkpoint)
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
    if stats.get("resumed_regions"):
        results["resumed_regions"] = stats["resumed_regions"]
    if stats["thin_regions"]:
        results["thin_regions_skipped"] = stats["thin_regions"]
    if args.cross_check:
        from .crosscheck import cross_check

        report = cross_check(network, domain, walked=complex_, progress=progress)
        results.update({
            "cross_check": "agree" if report.agree else "DISAGREE",
            "splitting_regions": report.second_count,
            "only_in_walk": len(report.only_in_first),
            "only_in_splitting": len(report.only_in_second),
            "mismatched": len(report.mismatched),
        })
        for point in (report.only_in_first + report.only_in_second)[:5]:
            results.setdefault("missing_region_points", []).append(point.tolist())
    if args.output:
        complex_.save(args.output)
        results["saved"] = args.output
    return results


def _lipschitz_command(args):
    from .atoms import layer_stability
    from .lipschitz import check_certificate, lipschitz
    from .lipschitz_bounds import compare_bounds

    network, domain, progress = _inputs(args)
    result = lipschitz(network, domain, args.norm, output=args.output, progress=progress)
    check_certificate(result)
    bounds = compare_bounds(result, domain, sdp=not args.no_sdp)
    table = []
    for bound in bounds:
        if bound.note:
            table.append({"method": bound.method, "value": None, "kind": bound.kind,
                          "ratio_to_exact": None, "consistent": None,
                          "seconds": round(bound.seconds, 3), "note": bound.note})
            continue
        consistent = (bound.kind == "exact"
                      or (bound.kind == "upper" and bound.value >= result.value * (1 - 1e-6))
                      or (bound.kind == "lower" and bound.value <= result.value * (1 + 1e-12)))
        table.append({"method": bound.method, "value": bound.value, "kind": bound.kind,
                      "ratio_to_exact": bound.value / result.value if result.value else None,
                      "consistent": consistent, "seconds": round(bound.seconds, 3)})
    stability = layer_stability(result.complex)
    return {
        "lipschitz": result.value,
        "norm": args.norm,
        "region": result.region,
        "witness": result.witness.tolist(),
        "exact_bracket": [result.exact_lower, result.exact_upper],
        "witness_pattern_exact": result.witness_pattern_exact,
        "regions": len(result.complex),
        "certificate_rechecked": True,
        "all_bounds_consistent": all(row["consistent"] is not False for row in table),
        "layer_norms_at_most_1": stability.stable,
        "worst_layer_norm": stability.worst_value,
        "worst_layer_norm_at": f"region {stability.worst_region}, layer {stability.worst_layer}",
        "table": table,
    }


def _print_results(results, as_json):
    if as_json:
        print(json.dumps(results))
        return
    table = results.pop("table", None)
    for key, value in results.items():
        print(f"{key}: {value}")
    if table:
        print()
        print(f"{'method':<26}{'value':>14}{'kind':>7}{'ratio':>10}{'consistent':>12}"
              f"{'seconds':>9}")
        for row in table:
            if row.get("note"):
                print(f"{row['method']:<26}{'failed':>14}{row['kind']:>7}  {row['note']}")
                continue
            ratio = "" if row["ratio_to_exact"] is None else f"{row['ratio_to_exact']:.4f}"
            print(f"{row['method']:<26}{row['value']:>14.8g}{row['kind']:>7}{ratio:>10}"
                  f"{str(row['consistent']):>12}{row['seconds']:>9.3f}")


def _add_spectrum_and_energy_commands(commands):
    spectrum = _command(
        commands, "spectrum", _spectrum_command,
        "exact DC and Fourier coefficients of the outputs along a path",
        "Exact DC and harmonic amplitudes of NET's outputs (or a hidden layer's features) "
        "along the closed curve X0 + U cos t + V sin t (one period) or the segment from A to "
        "B (period 1). With one output the keys are dc, harmonic_1, ...; with several, "
        "output_0_dc, output_0_harmonic_1, ...", domain=False)
    path = spectrum.add_mutually_exclusive_group(required=True)
    path.add_argument("--curve", nargs=3, metavar=("X0", "U", "V"),
                      help="each one number for every dimension or a comma-separated list")
    path.add_argument("--segment", nargs=2, metavar=("A", "B"), help="the segment's ends")
    spectrum.add_argument("--harmonics", type=int, default=8, metavar="K",
                          help="number of harmonics (default: 8)")
    spectrum.add_argument("--layer", type=int, help="features of this hidden layer instead")
    energy = _command(
        commands, "energy", _energy_command,
        "null-set check and feature energies over a domain",
        "Is there x != 0 in the domain that NET maps to 0 (witness or certificate, by LPs over "
        "the regions)? Optionally the exact extremes of the output energy and the per-layer "
        "energies of one input.")
    energy.add_argument("--extremes", action="store_true",
                        help="exact min and max of ||NET(x)||^2 over the domain")
    energy.add_argument("--signal", metavar="X", help="per-layer energies of this input")


def _spectrum_command(args):
    from .paths import ClosedCurve, Segment, path_pieces
    from .spectrum import path_spectrum

    network = load_network(args.net)
    dim = network.input_dim
    if args.curve:
        path = ClosedCurve(*(_parse_bound(text, dim, name, "--curve")
                             for text, name in zip(args.curve, ("X0", "U", "V"))))
    else:
        path = Segment(*(_parse_bound(text, dim, name, "--segment")
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


def _energy_command(args):
    from .energy import energy_range, layer_energies, null_set_check

    network, domain, progress = _inputs(args)
    regions = enumerate_regions(network, domain, progress=progress)
    check = null_set_check(network, domain, regions=regions)
    results = {"null_set": "trivial" if check.trivial else "non-trivial",
               "regions": len(regions), "lps": check.lps}
    if not check.trivial:
        results.update(witness=check.witness.tolist(), witness_residual=check.residual)
    if args.extremes:
        extremes = energy_range(network, domain, regions=regions)
        results.update(energy_min=extremes.min, energy_min_at=extremes.argmin.tolist(),
                       energy_max=extremes.max, energy_max_at=extremes.argmax.tolist())
    if args.signal:
        x = _parse_bound(args.signal, network.input_dim, "X", "--signal")
        for key, values in layer_energies(network, x).items():
            results[f"layer_energy_{key}"] = values.tolist()
    return results
def _add_injectivity_command(commands):
    parser = _command(
        commands, "injectivity", _injectivity_command,
        "exact injectivity of the ReLU layers over a box",
        "Decide exactly whether hidden layer L of NET (or every hidden layer, in order) is "
        "injective on the image of the input box; print a witness pair when it is not.")
    parser.add_argument("--layer", type=int, metavar="L",
                        help="hidden layer to check (default: all, stopping at the first failure)")


def _injectivity_command(args):
    from .injectivity import network_injectivity

    network, domain, _ = _inputs(args)
    layers = None if args.layer is None else [args.layer]
    result = network_injectivity(network, domain, layers=layers)
    out = {
        "injective": "yes" if result.injective else "no",
        "layers": "all" if layers is None else args.layer,
        "frame_condition": {True: "holds", False: "fails", None: "not checked"}[
            result.frame_condition],
        "sets_checked": result.sets_checked,
        "lps": result.lps,
    }
    if not result.injective:
        x, y = result.witness
        out.update({"failing_layer": result.layer, "witness_x": x.tolist(),
                    "witness_y": y.tolist()})
        if result.witness_exact is not None:
            out["witness_exact"] = result.witness_exact
    return out
def _add_slice_command(commands):
    cut = _command(
        commands, "slice", _slice_command, "exact regions of a 2-D slice, drawn",
        "Exact activation regions of NET on a plane of input space (shapely polygons), drawn "
        "to a picture. A point X is comma-separated numbers or a .npy file holding d numbers "
        "(e.g. a flattened image).", domain=False)
    plane = cut.add_mutually_exclusive_group(required=True)
    plane.add_argument("--through", nargs=3, metavar=("X1", "X2", "X3"),
                       help="the plane through three input points (orthonormal frame, origin X1)")
    plane.add_argument("--plane", nargs=3, metavar=("X0", "U", "V"),
                       help="the plane X0 + t1 U + t2 V")
    plane.add_argument("--box", nargs=2, metavar=("LO", "HI"),
                       help="a 2-input network's own input plane over this box")
    cut.add_argument("--tbox", nargs=2, metavar=("LO", "HI"),
                     help="box of slice coordinates t (default: [-1, 1]^2 for --plane, the "
                          "three points with a margin for --through)")
    cut.add_argument("-o", "--output", metavar="PICTURE", help="write a picture (.png or .svg)")
    cut.add_argument("--color", choices=("pattern", "gradient", "output", "neuron"),
                     default="pattern", help="fill regions by (default: pattern)")
    cut.add_argument("--output-index", type=int, default=0, metavar="K",
                     help="the output used by --color gradient/output (default: 0)")
    cut.add_argument("--neuron", type=int, metavar="J",
                     help="the hidden neuron (global index) for --color neuron")
    cut.add_argument("--boundary", action="store_true",
                     help="compute and draw the exact decision boundary (top-two logit ties)")
    cut.add_argument("--graph", action="store_true", help="draw the adjacency graph")


def _slice_command(args):
    from .slices import decision_boundary, plane_through, slice_regions

    network = load_network(args.net)
    d = network.input_dim
    tbox = None
    if args.tbox:
        tbox = [_parse_bound(text, 2, name, "--tbox").tolist()
                for text, name in zip(args.tbox, ("LO", "HI"))]
    marks = None
    if args.through:
        points = np.array([_parse_point(text, d) for text in args.through])
        origin, directions, auto_box = plane_through(points)
        plane = slice_regions(network, origin, directions, tbox or auto_box)
        marks = plane.coordinates(points)
    elif args.plane:
        origin, u, v = (_parse_point(text, d) for text in args.plane)
        plane = slice_regions(network, origin, np.column_stack([u, v]),
                              tbox or ([-1.0, -1.0], [1.0, 1.0]))
    else:
        if d != 2:
            raise PolyreluError(f"--box slices the input plane of a 2-input network; this one "
                                f"has {d} inputs (use --through or --plane)")
        plane = slice_regions(network, [0.0, 0.0], np.eye(2),
                              [_parse_bound(text, 2, name, "--box") for text, name in
                               zip(args.box, ("LO", "HI"))])
    results = {"regions": len(plane), "edges": plane.graph.number_of_edges(),
               "seconds": round(plane.stats["seconds"], 3),
               "thin_pieces_skipped": plane.stats["thin_pieces"],
               "network": repr(network), "slice_box": list(plane.domain.bounds)}
    boundary = decision_boundary(plane) if args.boundary else None
    if boundary is not None:
        results["boundary_segments"] = len(boundary)
    if args.output:
        from .pictures import slice_picture

        slice_picture(plane, args.output, color=args.color, output=args.output_index,
                      neuron=args.neuron, boundary=args.boundary, graph=args.graph,
                      points=marks, labels=["X1", "X2", "X3"] if marks is not None else None)
        results["picture"] = args.output
    return results


def _parse_point(text, dim):
    """A point of input space from comma-separated numbers or a .npy file of ``dim`` numbers."""
    if text.endswith(".npy"):
        try:
            values = np.load(text, allow_pickle=False).astype(np.float64).ravel()
        except (OSError, ValueError) as err:
            raise PolyreluError(f"cannot read point file {text!r}: {err}") from err
    else:
        try:
            values = np.array([float(part) for part in text.split(",")])
        except ValueError as err:
            raise PolyreluError(f"a point must be numbers separated by commas or a .npy file, "
                                f"got {text!r}") from err
    if values.size != dim:
        raise PolyreluError(f"point {text!r} has {values.size} values but the network has "
                            f"{dim} inputs")
    return values


def _add_verify_commands(commands):
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
    parser.set_defaults(command=_verify_command)

    checker = commands.add_parser(
        "check-certificate", help="re-check a saved verification certificate",
        description="Re-validate CERT (written by 'polyrelu verify --certificate') for NET and "
                    "PROP without searching: prints 'certificate: valid' or exits with status "
                    "2 and the first flaw.")
    checker.add_argument("net", metavar="NET", help="network file")
    checker.add_argument("property", metavar="PROP", help="VNN-LIB property file")
    checker.add_argument("certificate", metavar="CERT", help="certificate file (.npz)")
    checker.add_argument("--json", action="store_true", help="print one JSON object")
    checker.set_defaults(command=_check_certificate_command)

    runner = commands.add_parser(
        "verify-instances", help="run a benchmark csv of instances, write a results csv",
        description="Verify every line (network,property,timeout) of a VNN-COMP style "
                    "instances csv; results are appended to OUT as they finish and a rerun "
                    "skips the instances already there.")
    runner.add_argument("instances", metavar="CSV", help="instances csv")
    runner.add_argument("-o", "--output", required=True, metavar="OUT", help="results csv")
    runner.add_argument("--timeout-cap", type=float, metavar="S",
                        help="at most S seconds per instance (default: its own limit)")
    runner.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="worker processes per instance")
    runner.add_argument("--json", action="store_true", help="print one JSON object")
    runner.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="print each result as it finishes (default: on)")
    runner.set_defaults(command=_verify_instances_command)


def _verify_command(args):
    from .verify import (check_certificate, check_counterexample_onnx, result_file_text,
                         verify)
    from .vnnlib import read_vnnlib

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
        summary = check_certificate(network, prop, result.certificate)
        out.update(certificate="checked", **{k: v for k, v in summary.items() if k != "boxes"})
    if result.status == "violated":
        cex = result.counterexample
        out.update(counterexample=cex.x.tolist(), output=cex.output.tolist(),
                   exact_check="passed" + ("" if cex.exact else " at a rational point "
                                           "next to the printed float"))
        if str(args.net).endswith(".onnx"):
            passes, _, worst = check_counterexample_onnx(args.net, prop, cex)
            out["onnxruntime_check"] = f"{'passed' if passes else 'FAILED'} (worst row " \
                                       f"{worst:.3g})"
    if args.result:
        with open(args.result, "w") as handle:
            handle.write(result_file_text(result))
        out["result_file"] = args.result
    if args.certificate and result.certificate is not None:
        from .certificate_io import save_certificate

        save_certificate(result.certificate, args.certificate)
        out["certificate_file"] = args.certificate
    return out


def _check_certificate_command(args):
    from .certificate_io import load_certificate
    from .verify import check_certificate
    from .vnnlib import read_vnnlib

    summary = check_certificate(load_network(args.net), read_vnnlib(args.property),
                                load_certificate(args.certificate))
    return {"certificate": "valid", **summary}


def _print_box_count(boxes):
    print(f"\rverify: {boxes} sub-boxes searched", end="", file=sys.stderr, flush=True)


def _verify_instances_command(args):
    from .instances import run_instances

    def show(row):
        print(f"{row['network']} {row['property']}: {row['result']} in {row['seconds']} s "
              f"(check: {row['check'] or '-'})", file=sys.stderr, flush=True)

    return run_instances(args.instances, args.output, timeout_cap=args.timeout_cap,
                         jobs=args.jobs, progress=show if args.progress else None)


if __name__ == "__main__":
    sys.exit(main())

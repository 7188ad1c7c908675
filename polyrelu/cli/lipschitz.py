"""``polyrelu lipschitz``: the exact Lipschitz constant over a domain.

By default by branch and bound over partial activation patterns
(:func:`polyrelu.lipschitz_search`); with ``--enumerate`` from every region (today's full
report: per-region values re-checked, layer-norm stability, the baselines' table).
"""

from ..analysis.atoms import layer_stability
from ..analysis.lipschitz import check_certificate, lipschitz
from ..analysis.lipschitz_bounds import compare_bounds
from ..analysis.lipschitz_certificate import save_lipschitz_certificate
from ..analysis.lipschitz_search import lipschitz_search
from ..errors import PolyreluError, TimeLimitError
from .arguments import add_command, add_timeout, inputs, parse_bound
from .outputs import check_output, write_output

__all__ = ["add_parser", "run"]


def add_parser(commands):
    """Declare the ``lipschitz`` command and its options."""
    parser = add_command(
        commands, "lipschitz", run,
        "exact Lipschitz constant over a domain (branch and bound)",
        "Exact Lipschitz constant of NET over the domain (max over regions of the Jacobian's "
        "operator norm), by branch and bound over partial activation patterns; with "
        "--enumerate from every region, compared with approximate bounds.")
    parser.add_argument("--norm", choices=("1", "2", "inf"), default="2",
                        help="vector norm on inputs and outputs (default: 2)")
    parser.add_argument("--output", type=int, help="measure only this output component")
    parser.add_argument("--direction", metavar="V",
                        help="maximise the directional derivative's norm ||J v|| instead "
                             "(V: comma-separated, one number per input; search only)")
    parser.add_argument("--layer", type=int,
                        help="maximise over hidden layer LAYER's map instead (the Jacobian "
                             "of its pre-activations; search only)")
    parser.add_argument("--enumerate", action="store_true",
                        help="enumerate every region (per-region values, layer-norm "
                             "stability, the baselines' table) instead of the search")
    parser.add_argument("--certificate", metavar="FILE",
                        help="save the search's certificate (its tree, with the bound that "
                             "closed each branch) to FILE (.npz; a box domain; check it with "
                             "'polyrelu check-lipschitz-certificate')")
    parser.add_argument("--no-sdp", action="store_true",
                        help="skip the LipSDP baseline (l2, with --enumerate)")
    add_timeout(parser)


def run(args):
    """The exact constant by the search, or (``--enumerate``) by every region with its
    re-checked certificate and the baselines' table."""
    if args.enumerate and (args.direction is not None or args.layer is not None):
        raise PolyreluError("--direction and --layer need the search (drop --enumerate)")
    if args.no_sdp and not args.enumerate:
        raise PolyreluError("--no-sdp applies to --enumerate only (the search computes no "
                            "baselines)")
    if args.certificate is not None and args.enumerate:
        raise PolyreluError("--certificate needs the search (drop --enumerate)")
    check_output(args.certificate, "--certificate")
    network, domain, progress = inputs(args)
    if args.certificate is not None and domain.kind != "box":
        raise PolyreluError("--certificate needs a box domain (--box, --center/--radius)")
    if not args.enumerate:
        return _search(args, network, domain)
    try:
        result = lipschitz(network, domain, args.norm, output=args.output, progress=progress,
                           deadline=args.deadline)
    except TimeLimitError as err:
        raise _with_bracket(err, args.norm, "largest norm over the {} regions found (lower), "
                                            "product of layer norms (upper)") from err
    check_certificate(result)
    table = [_row(bound, result.value)
             for bound in compare_bounds(result, domain, sdp=not args.no_sdp,
                                         deadline=args.deadline)]
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


def _search(args, network, domain):
    """The report of the branch-and-bound search."""
    direction = (None if args.direction is None
                 else parse_bound(args.direction, network.input_dim, "V", "--direction"))
    try:
        result = lipschitz_search(network, domain, args.norm, output=args.output,
                                  direction=direction, layer=args.layer,
                                  deadline=args.deadline)
    except TimeLimitError as err:
        raise _with_bracket(err, args.norm, "best region found: {} reached, and those of "
                                            "sampled points (lower); largest bound of the "
                                            "open branches (upper)",
                            args.certificate) from err
    stats = result.stats
    out = {
        "lipschitz": result.value,
        "norm": args.norm,
        "method": "branch and bound",
        "witness": result.witness.tolist(),
        "exact_bracket": [result.exact_lower, result.exact_upper],
        "witness_pattern_exact": result.witness_pattern_exact,
        "active_slots": int(result.pattern.sum()),
        "regions_reached": stats["regions"],
        "pieces_bounded": stats["bounded"],
        "pieces_pruned": stats["pruned"],
        "lps": stats["lps"],
        "seconds": round(stats["seconds"], 3),
    }
    _save_certificate(out, args.certificate, result.certificate)
    return out


def _save_certificate(out, path, certificate):
    """Write ``certificate`` to ``path`` if asked (``out`` notes the file, or the failure)."""
    if path is not None and certificate is not None:
        write_output(out, "certificate_file", path,
                     lambda target: save_lipschitz_certificate(certificate, target))


def _with_bracket(err, norm, bracket_from, certificate=None):
    """The time limit ``err`` reported with its Lipschitz bracket; ``bracket_from`` says
    where the bounds come from (``{}``: the number of regions); the bracket's certificate
    is saved to ``certificate`` (a path) if given."""
    found = err.partial or {}
    out = {"lipschitz_bracket": [found.get("lower"), found.get("upper")],
           "bracket_from": bracket_from.format(found.get("regions")), "norm": norm}
    _save_certificate(out, certificate, found.get("certificate"))
    return TimeLimitError(str(err), out)


def _row(bound, exact):
    """One row of the baselines' table: a bound and whether it is consistent with ``exact``."""
    if bound.note:
        return {"method": bound.method, "value": None, "kind": bound.kind,
                "ratio_to_exact": None, "consistent": None,
                "seconds": round(bound.seconds, 3), "note": bound.note}
    consistent = (bound.kind == "exact"
                  or (bound.kind == "upper" and bound.value >= exact * (1 - 1e-6))
                  or (bound.kind == "lower" and bound.value <= exact * (1 + 1e-12)))
    return {"method": bound.method, "value": bound.value, "kind": bound.kind,
            "ratio_to_exact": bound.value / exact if exact else None,
            "consistent": consistent, "seconds": round(bound.seconds, 3)}

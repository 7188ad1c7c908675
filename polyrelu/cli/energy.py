"""``polyrelu energy``: the null-set check and feature energies over a domain."""

from ..analysis.energy import energy_range, layer_energies, null_set_check
from ..errors import TimeLimitError
from ..regions.walk import enumerate_regions
from .arguments import add_command, add_timeout, inputs, parse_bound
from .regions import partial_summary

__all__ = ["add_parser", "run"]


def add_parser(commands):
    """Declare the ``energy`` command and its options."""
    parser = add_command(
        commands, "energy", run,
        "null-set check and feature energies over a domain",
        "Is there x != 0 in the domain that NET maps to 0 (witness or certificate, by LPs over "
        "the regions)? Optionally the exact extremes of the output energy and the per-layer "
        "energies of one input.")
    parser.add_argument("--extremes", action="store_true",
                        help="exact min and max of ||NET(x)||^2 over the domain")
    parser.add_argument("--signal", metavar="X", help="per-layer energies of this input")
    add_timeout(parser)


def run(args):
    """The null-set answer (with a witness when non-trivial), extremes and layer energies."""
    network, domain, progress = inputs(args)
    try:
        regions = enumerate_regions(network, domain, progress=progress, deadline=args.deadline)
    except TimeLimitError as err:
        raise TimeLimitError(str(err), {"null_set": "undecided",
                                        **partial_summary(err.partial)}) from err
    try:
        check = null_set_check(network, domain, regions=regions, deadline=args.deadline)
    except TimeLimitError as err:
        raise TimeLimitError(str(err), {"null_set": "undecided", "regions": len(regions),
                                        **err.partial}) from err
    results = {"null_set": "trivial" if check.trivial else "non-trivial",
               "regions": len(regions), "lps": check.lps}
    if not check.trivial:
        results.update(witness=check.witness.tolist(), witness_residual=check.residual)
    if args.extremes:
        try:
            extremes = energy_range(network, domain, regions=regions, deadline=args.deadline)
        except TimeLimitError as err:
            raise TimeLimitError(str(err), {**results, "energy_extremes": "not computed",
                                            **err.partial}) from err
        results.update(energy_min=extremes.min, energy_min_at=extremes.argmin.tolist(),
                       energy_max=extremes.max, energy_max_at=extremes.argmax.tolist())
    if args.signal:
        x = parse_bound(args.signal, network.input_dim, "X", "--signal")
        for key, values in layer_energies(network, x).items():
            results[f"layer_energy_{key}"] = values.tolist()
    return results

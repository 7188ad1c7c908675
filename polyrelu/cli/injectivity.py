"""``polyrelu injectivity``: exact injectivity of the ReLU layers over a box."""

from ..analysis.injectivity import network_injectivity
from .arguments import add_command, add_timeout, inputs

__all__ = ["add_parser", "run"]


def add_parser(commands):
    """Declare the ``injectivity`` command and its options."""
    parser = add_command(
        commands, "injectivity", run,
        "exact injectivity of the ReLU layers over a box",
        "Decide exactly whether hidden layer L of NET (or every hidden layer, in order) is "
        "injective on the image of the input box; print a witness pair when it is not.")
    parser.add_argument("--layer", type=int, metavar="L",
                        help="hidden layer to check (default: all, stopping at the first failure)")
    add_timeout(parser)


def run(args):
    """The answer, the frame condition's status and, if not injective, a witness pair."""
    network, domain, _ = inputs(args)
    layers = None if args.layer is None else [args.layer]
    result = network_injectivity(network, domain, layers=layers, deadline=args.deadline)
    out = {
        "injective": {True: "yes", False: "no", None: "undecided"}[result.injective],
        "layers": "all" if layers is None else args.layer,
        "frame_condition": {True: "holds", False: "fails", None: "not checked"}[
            result.frame_condition],
        "sets_checked": result.sets_checked,
        "lps": result.lps,
    }
    if result.injective is None:  # the solver failed on some sets, even after retries
        out.update({"undecided_layer": result.layer, "undecided_sets": len(result.undecided),
                    "undecided_reason": result.undecided[0]})
    elif not result.injective:
        x, y = result.witness
        out.update({"failing_layer": result.layer, "witness_x": x.tolist(),
                    "witness_y": y.tolist()})
        if result.witness_exact is not None:
            out["witness_exact"] = result.witness_exact
    return out

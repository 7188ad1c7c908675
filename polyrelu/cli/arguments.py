"""What the commands share: the parser class, NET / domain / --json / --progress
arguments, parsing of numbers and points, and printing the results."""

import argparse
import json
import re
import sys
import warnings

import numpy as np

from ..arrayfiles import read_npy, read_npz
from ..errors import PolyreluError
from ..geometry.domain import Domain
from ..network.loaders import load_network
from ..network.model import MAX_PARAMETERS
from ..verification.vnnlib import input_box

__all__ = ["Parser", "add_command", "add_loading_arguments", "domain_from_args",
           "network_from_args", "parse_bound", "parse_point", "inputs", "print_results",
           "show_progress", "positive_int", "seconds", "add_timeout"]


class Parser(argparse.ArgumentParser):
    """An argument parser that reads ``-1,-2.5e-3``, ``-inf`` or ``-1,nan`` as a value (so
    that it is refused for what it is), not as an option, and reports a usage error in
    one line (exit status 2)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d|\.\d|inf|nan)[\w.,+-]*$",
                                                   re.IGNORECASE)

    def error(self, message):
        """Print ``polyrelu <command>: error: message`` (one line) and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_command(commands, name, function, summary, description, domain=True):
    """A sub-command taking NET, --json, --progress and (if ``domain``) a domain (--box,
    --vnnlib, --center/--radius or --polytope)."""
    parser = commands.add_parser(name, help=summary, description=description)
    parser.add_argument("net", metavar="NET",
                        help="network file (.npz, .onnx, .skops; .pt, .pt2, .joblib with "
                             "--trust-pickle)")
    add_loading_arguments(parser)
    if domain:
        _add_domain_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (default: on when stderr is a terminal)")
    parser.set_defaults(command=function)
    return parser


def add_loading_arguments(parser):
    """``--trust-pickle``, ``--allow-extreme-numerics`` and ``--max-parameters``, read by
    :func:`network_from_args` and :func:`domain_from_args`."""
    parser.add_argument("--trust-pickle", action="store_true",
                        help="unpickle .pt/.pth/.pt2/.joblib/.pkl network files: this RUNS "
                             "CODE from the file, only for files you trust")
    parser.add_argument("--allow-extreme-numerics", action="store_true",
                        help="proceed on numbers polyrelu refuses (denormal weights, "
                             "overflow, unresolved neuron ranges, tiny domains): the answer "
                             "may be wrong")
    parser.add_argument("--max-parameters", type=_positive_int, default=MAX_PARAMETERS,
                        metavar="N", help="refuse network files holding more than N "
                                          f"parameters (default: {MAX_PARAMETERS})")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def network_from_args(args):
    """The network of ``args.net``, loaded with the choices of
    :func:`add_loading_arguments`; the unpickling warning is one line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        network = load_network(args.net, trust=getattr(args, "trust_pickle", False),
                               allow_extreme_numerics=_allow_extreme(args),
                               max_parameters=getattr(args, "max_parameters", MAX_PARAMETERS))
    for warning in caught:
        print(f"polyrelu: warning: {warning.message}", file=sys.stderr)
    return network


def _allow_extreme(args):
    return getattr(args, "allow_extreme_numerics", False)


def _add_domain_arguments(parser):
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--box", nargs=2, metavar=("LO", "HI"),
                       help="input box: LO and HI are each one number for every dimension "
                            "or a comma-separated list")
    group.add_argument("--vnnlib", metavar="FILE",
                       help="take the input box from a VNN-LIB property file")
    group.add_argument("--center", metavar="X",
                       help="the l_inf ball of --radius R around the point X (comma-separated "
                            "numbers or a .npy file)")
    group.add_argument("--polytope", metavar="FILE",
                       help="the polytope {x : A x <= b} of the arrays A and b in an .npz file")
    parser.add_argument("--radius", type=float, metavar="R",
                        help="the radius of the --center ball")


def domain_from_args(args, dim):
    """The :class:`Domain` given by ``--box``, ``--vnnlib``, ``--center``/``--radius`` or
    ``--polytope`` for a network with ``dim`` inputs."""
    allow = _allow_extreme(args)
    if (args.radius is not None) != (args.center is not None):
        raise PolyreluError("--center and --radius go together (an l_inf ball)")
    if args.center is not None:
        return Domain.ball(parse_point(args.center, dim), args.radius,
                           allow_extreme_numerics=allow)
    if args.polytope:
        A, b = _polytope_arrays(args.polytope, dim)
        return Domain.polytope(A, b, allow_extreme_numerics=allow)
    if args.vnnlib:
        lower, upper = input_box(args.vnnlib)
    else:
        lower, upper = (parse_bound(text, dim, name, "--box")
                        for text, name in zip(args.box, ("LO", "HI")))
    with np.errstate(over="ignore"):
        if not np.isfinite(np.sum((upper - lower) ** 2)):
            raise PolyreluError("the box is too large for float64 arithmetic (its squared "
                                "diameter overflows); rescale the inputs")
    return Domain.box(lower, upper, allow_extreme_numerics=allow)


def _polytope_arrays(path, dim):
    """``(A, b)`` from an .npz file: headers checked before loading, no pickles."""
    arrays = read_npz(path, "polytope (.npz with A and b)", max_entries=MAX_PARAMETERS)
    if "A" not in arrays or "b" not in arrays:
        raise PolyreluError(f"--polytope {path}: the file needs arrays A and b")
    A, b = arrays["A"], arrays["b"]
    if A.ndim != 2 or A.shape[1] != dim or b.shape != (A.shape[0],):
        raise PolyreluError(f"--polytope {path}: A must be (k, {dim}) and b (k,), got "
                            f"{A.shape} and {b.shape}")
    return A, b


def parse_bound(text, dim, name, option="--box"):
    """``dim`` numbers from ``text``: one number for every dimension or a comma-separated
    list of ``dim``; ``name`` and ``option`` name the argument in errors."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError as err:
        raise PolyreluError(f"{option} {name} must be numbers separated by commas, "
                            f"got {text!r}") from err
    if not all(np.isfinite(values)):
        raise PolyreluError(f"{option} {name} must be finite numbers, got {text!r}")
    if len(values) == 1:
        return np.full(dim, values[0])
    if len(values) != dim:
        raise PolyreluError(
            f"{option} {name} has {len(values)} values but the network has {dim} inputs")
    return np.array(values)


def parse_point(text, dim):
    """A point of input space from comma-separated numbers or a .npy file of ``dim`` numbers
    (its header is checked before anything is loaded; no pickles)."""
    if text.endswith(".npy"):
        values = read_npy(text, "point (.npy)", max_entries=dim).astype(np.float64).ravel()
    else:
        try:
            values = np.array([float(part) for part in text.split(",")])
        except ValueError as err:
            raise PolyreluError(f"a point must be numbers separated by commas or a .npy file, "
                                f"got {text!r}") from err
    if values.size != dim:
        raise PolyreluError(f"point {text!r} has {values.size} values but the network has "
                            f"{dim} inputs")
    if not np.all(np.isfinite(values)):
        raise PolyreluError(f"point {text!r} has a non-finite value")
    return values


def show_progress(args):
    """Whether to show progress: ``--progress`` / ``--no-progress``, else when stderr is a
    terminal."""
    return sys.stderr.isatty() if args.progress is None else args.progress


def inputs(args):
    """(network, domain, progress) from a command's arguments."""
    network = network_from_args(args)
    domain = domain_from_args(args, network.input_dim)
    return network, domain, show_progress(args)


# result entries printed one line per element (a list of dicts) instead of ``key: value``
_LINE_LISTS = {
    "bars": lambda bar: f"bar_{bar['dim']}: {bar['birth']} "
                        f"{'inf' if bar['death'] is None else bar['death']}",
    "critical_points": lambda p: f"critical_{p['index']}: {p['value']} at "
                                 f"{','.join(map(str, p['point']))}"
                                 + (f" (multiplicity {p['multiplicity']})"
                                    if p['multiplicity'] > 1 else ""),
}


def print_results(results, as_json):
    """Print a command's results: ``key: value`` lines (a ``table`` entry as a table after
    them), or one JSON object."""
    if as_json:
        print(json.dumps(results))
        return
    table = results.pop("table", None)
    lines = {key: results.pop(key) for key in _LINE_LISTS if key in results}
    for key, value in results.items():
        print(f"{key}: {value}")
    for key, rows in lines.items():
        for row in rows:
            print(_LINE_LISTS[key](row))
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


# -- validated option types and the shared --timeout ---------------------------------------

def positive_int(text):
    """argparse type: an integer >= 1 (e.g. ``--jobs``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seconds(text):
    """argparse type: a finite number of seconds >= 0 (e.g. ``--timeout``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") \
            from None
    if not (np.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got "
                                         f"{text!r}")
    return value


def add_timeout(parser):
    """``--timeout S``: stop after S seconds and print what was found, labelled partial
    (exit status 3)."""
    parser.add_argument("--timeout", type=seconds, metavar="S",
                        help="stop after S seconds and print what was found so far, labelled "
                             "partial (exit status 3)")

"""Certificates of verification: the pieces that close an input box, and the constraint
systems both the search and the checker build from a network, a sub-box and a pattern.

A :class:`Certificate` lists pieces: :class:`BoundPiece` (a sub-box closed by sound
bounds), :class:`StarPiece` (a partial piece of an exactly decided sub-box closed by
the bounds of the remaining layers) and :class:`RegionPiece` (an activation region
with Farkas multipliers). :mod:`polyrelu.verification.checker` re-validates them.
"""

from dataclasses import dataclass, field

import numpy as np

from ..errors import CertificateError, SolverError
from ..network.layers import LINEAR, Layer
from ..network.model import Network, network_fingerprint
from ..network.windowless import without_windows

__all__ = [
    "BOUND_MARGIN",
    "FARKAS_MARGIN",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "BoundPiece",
    "BoxHint",
    "Certificate",
    "CertificateError",
    "RegionPiece",
    "StarPiece",
    "box_from_path",
    "farkas_gap",
    "free_inputs",
    "network_fingerprint",
    "piece_counts",
    "region_constraints",
    "rigorous_bounding_box",
    "star_box_hint",
    "tail_network",
    "verification_network",
    "with_inputs",
]

FORMAT_NAME = "polyrelu-certificate"
FORMAT_VERSION = 4     # 1: pieces named their own rows (unsound); 2: rows re-derived;
# 3: the same layout for networks of ReLU and linear units (patterns and rows by ReLU slot);
# 4: bound pieces may carry relaxation slopes (optional arrays)
READABLE_VERSIONS = (2, 3, 4)  # a version 2 file is a version 3 file of a Linear + ReLU
# network; a version 3 file is a version 4 file without slopes
FARKAS_MARGIN = 1e-10  # relative margin the search wants a Farkas certificate to prove by
BOUND_MARGIN = 1e-9    # the search closes boxes by bounds only with this relative margin


@dataclass(frozen=True)
class BoundPiece:
    """A sub-box closed by bounds.

    ``path`` is the list of ``(input, side)`` bisections from the case's box.
    ``multipliers[k]`` are non-negative weights ``lam`` on the rows of unsafe
    polytope k such that the sound lower bound of ``lam @ C_k f(x)`` over the box
    exceeds ``lam @ d_k``: no output of the box satisfies all rows of polytope k.

    ``slopes[k]``, if given and not None, are the lower relaxation slopes (each in
    [0, 1], one per hidden unit, layer after layer) of that bound's back-substitution
    of the row ``lam @ C_k`` (:func:`polyrelu.geometry.symbolic.linear_bounds`; used at
    the units the box leaves unstable); otherwise the default slopes.
    """

    case: int
    path: tuple
    multipliers: tuple
    slopes: tuple = ()


@dataclass(frozen=True)
class RegionPiece:
    """An activation region of an exactly decided sub-box (``pattern``: all pattern slots,
    one per ReLU unit, packed bits), with one Farkas vector per unsafe polytope proving the
    region misses it (rows: box, ReLU units, unsafe rows, see :func:`region_constraints`)."""

    case: int
    path: tuple
    pattern: np.ndarray
    multipliers: tuple


@dataclass(frozen=True)
class StarPiece:
    """A piece of an exactly decided sub-box, closed before all its ReLU units were fixed.

    The piece is the sub-box cut by the sign rows of every ReLU unit (pattern slot) of
    the hidden layers before ``layer``, as ``pattern`` gives them (packed bits; the bits
    of ``layer`` and later are 0). The piece names no rows: the checker rebuilds them. On
    the piece the earlier layers are affine, and the sound bounds of the remaining layers
    over the piece's bounding box refute every unsafe polytope with ``multipliers[k]``
    (as in :class:`BoundPiece`).

    ``box_rows`` and ``box_weights`` are an optional hint for that bounding box: weight
    ``box_weights[i]`` on the piece's (unit-normalised) row ``box_rows[i, 1]`` in the
    combination bounding direction ``box_rows[i, 0]`` (``k < d``: ``x_k`` from above,
    ``d + k``: from below); rows ``0 .. 2d - 1`` are the sub-box's faces, row ``2d + j``
    the sign row of slot j. The checker evaluates the hint, never trusts it.
    """

    case: int
    path: tuple
    layer: int
    pattern: np.ndarray
    multipliers: tuple
    box_rows: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    box_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class BoxHint:
    """A hint, not a piece: proposed multipliers for the bounding box of a node of an
    exactly decided sub-box's splitting tree (the set of :class:`StarPiece` with these
    ``case``, ``path``, ``layer`` and ``pattern``, but not closed there: its pieces lie
    deeper). ``box_rows`` and ``box_weights`` as in :class:`StarPiece`. The checker may
    use the box they prove for its stability proofs at that node (and must evaluate it,
    restricted to rows it has derived itself); a wrong hint only makes the checker do
    its own LPs."""

    case: int
    path: tuple
    layer: int
    pattern: np.ndarray
    box_rows: np.ndarray
    box_weights: np.ndarray


@dataclass
class Certificate:
    """Evidence that a property holds: pieces covering every input box (and optional
    :class:`BoxHint` s, which prove nothing and only save the checker LPs)."""

    fingerprint: str
    pieces: list = field(default_factory=list)
    version: int = FORMAT_VERSION
    hints: list = field(default_factory=list)

    def counts(self):
        """Number of bound-closed boxes, bound-closed partial pieces and Farkas-closed
        regions."""
        return piece_counts(self.pieces)


def piece_counts(pieces):
    """``{"bound_pieces": ..., "star_pieces": ..., "region_pieces": ...}`` of a piece list."""
    kinds = [type(piece).__name__ for piece in pieces]
    return {"bound_pieces": kinds.count("BoundPiece"), "star_pieces": kinds.count("StarPiece"),
            "region_pieces": kinds.count("RegionPiece")}


def box_from_path(case, path):
    """The sub-box of ``case``'s input box reached by the bisections in ``path``."""
    lower, upper = case.lower.copy(), case.upper.copy()
    for dim, side in path:
        middle = (lower[dim] + upper[dim]) / 2
        if side:
            lower[dim] = middle
        else:
            upper[dim] = middle
    return lower, upper


def verification_network(network, prop=None):
    """The network verification and the certificate checker work on: every hidden layer
    keeps all its units, in order, and has ReLU and linear units only.
    :func:`polyrelu.network.windowless.without_windows`: ``network`` itself when it is of
    that form, else its exact rewrite (the same real-valued function; max windows become
    trees of ``x + relu(y - x)``). For a property with ``input_rows`` (constraints that
    mix inputs), the rewrite also outputs its inputs: ``(f(x), x)``, see
    :func:`with_inputs`."""
    flat = without_windows(network)
    return with_inputs(flat) if prop is not None and prop.input_rows else flat


def with_inputs(network):
    """The network ``x -> (f(x), x)``: every hidden layer carries the inputs on extra
    linear units (identity weights, exact), the output layer appends them. ``network``
    must keep all its units in order (:func:`verification_network`).

    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])  # |x|
    >>> with_inputs(net).forward([[-3.0]]).tolist()
    [[3.0, -3.0]]
    """
    d = network.input_dim
    layers = []
    for index, layer in enumerate(network.layers):
        carried = np.eye(d) if index == 0 else np.hstack([np.zeros((d, layer.n_in)),
                                                          np.eye(d)])
        weight = np.vstack([np.hstack([layer.weight, np.zeros((layer.n_z, d))])
                            if index else layer.weight, carried])
        bias = np.concatenate([layer.bias, np.zeros(d)])
        if layer is network.layers[-1]:
            layers.append(Layer.affine(weight, bias))
        else:
            units = np.concatenate([layer.units, np.full(d, LINEAR)])
            layers.append(Layer.build(weight, bias, units=units))
    return Network.from_layers(layers, allow_extreme_numerics=network.allow_extreme_numerics)


def free_inputs(network, case):
    """``(mask, network)``: the inputs the case's box does not fix, and the network on them
    (fixed inputs folded into the first layer's bias). Exactly decided sub-boxes and their
    regions live in these coordinates."""
    free = case.upper > case.lower
    if free.all():
        return free, network
    first = network.layers[0]
    bias = first.bias + first.weight[:, ~free] @ case.lower[~free]
    return free, _with_first_layer(network.layers, 0, first.weight[:, free], bias)


def tail_network(network, pattern, layer):
    """The layers from hidden layer ``layer`` on, as a network on the input, for the
    inputs whose earlier layers have activation ``pattern`` (there they are affine)."""
    maps = network.affine_maps(pattern)
    start = sum(w.shape[0] for w in network.weights[:layer])
    stop = start + network.weights[layer].shape[0]
    return _with_first_layer(network.layers, layer, maps.pre_A[start:stop],
                             maps.pre_c[start:stop])


def _with_first_layer(layers, index, weight, bias):
    """The network of ``layers[index:]`` with the affine map of ``layers[index]`` replaced."""
    old = layers[index]
    if old is layers[-1]:
        first = Layer.affine(weight, bias)
    else:
        first = Layer.build(weight, bias, units=old.units, keep=old.keep, windows=old.windows,
                            names=old.names, window_names=old.window_names)
    return Network.from_layers([first, *layers[index + 1:]])


def rigorous_bounding_box(solver, A, b, lower, upper, duals=False):
    """A box containing ``{x in [lower, upper] : A x <= b}``, from LP duals.

    For each coordinate the LP's dual multipliers ``y >= 0`` give the valid bound
    ``x_k <= y b + |y A - e_k| . reach`` whatever the LP's own accuracy. With ``duals``
    also returns the multipliers, shape (2d, rows): row k bounds ``x_k`` from above,
    row ``d + k`` from below.
    """
    reach = np.maximum(np.abs(lower), np.abs(upper))
    low, high = lower.astype(float).copy(), upper.astype(float).copy()
    d = len(lower)
    multipliers = np.zeros((2 * d, len(b)))
    for k in range(len(lower)):
        for sign in (1.0, -1.0):
            direction = np.zeros(len(lower))
            direction[k] = sign
            result = solver.maximize_warm(direction, A, b)
            if result.status != "optimal":
                raise SolverError(f"bounding-box LP is {result.status}")
            y = np.maximum(result.row_duals, 0.0)
            multipliers[k if sign > 0 else d + k] = y
            bound = y @ b + np.abs(y @ A - direction) @ reach
            if sign > 0:
                high[k] = min(high[k], bound)
            else:
                low[k] = max(low[k], -bound)
    return (low, high, multipliers) if duals else (low, high)


def star_box_hint(multipliers, sources, d):
    """``(box_rows, box_weights)`` of a :class:`StarPiece` from bounding-box multipliers on a
    piece's rows (shape (2d, rows)) and each row's source (domain face ``-1 - k`` or
    neuron ``j``)."""
    directions, rows = np.nonzero(multipliers)
    sources = np.asarray(sources)[rows]
    canonical = np.where(sources < 0, -1 - sources, 2 * d + sources)
    return (np.column_stack([directions, canonical]).astype(np.int64),
            multipliers[directions, rows].astype(np.float64))


def region_constraints(network, pattern, box_rows, unsafe=()):
    """``A x <= b`` of the closed activation region ``pattern`` inside a box, and the same
    system with each unsafe polytope's rows appended.

    Rows: the box rows, then one row per pattern slot (a ReLU unit of a network without
    windows: ``z_j >= 0`` if active, ``z_j <= 0`` if not), normalised to unit length
    (zero rows kept as ``0 <= +-c``). Returns ``(A, b, systems)`` with
    ``systems[k] = (A_k, b_k)`` for ``unsafe[k]`` (its rows
    ``C_k (W_eff x + b_eff) <= d_k``, also unit rows).
    """
    maps = network.affine_maps(pattern)
    G, g, _ = network.kink_rows(pattern, maps)  # G x + g >= 0
    A, b = _unit_rows(np.vstack([box_rows[0], -G]), np.concatenate([box_rows[1], g]))
    systems = []
    for polytope in unsafe:
        rows, rhs = _unit_rows(polytope.C @ maps.W_eff, polytope.d - polytope.C @ maps.b_eff)
        systems.append((np.vstack([A, rows]), np.concatenate([b, rhs])))
    return A, b, systems


def _unit_rows(A, b):
    norms = np.linalg.norm(A, axis=1)
    scale = np.where(norms > 0, norms, 1.0)
    return A / scale[:, None], b / scale


def farkas_gap(A, b, y, reach):
    """How far multipliers ``y`` are from proving ``{x in box : A x <= b}`` empty (< 0: proved).

    For every ``x`` with ``A x <= b`` and ``|x_i| <= reach_i``, and ``y >= 0``:
    ``(y A) x <= y b``, hence ``0 <= y b + |y A| . reach``. So the set is empty if
    ``y b + |y A| . reach < 0``. The gap adds a margin ``FARKAS_MARGIN`` times the
    magnitude of the terms, above the float64 rounding of ``A``, ``b`` and the sums.
    """
    y = np.maximum(np.asarray(y, dtype=np.float64), 0.0)
    residual = y @ A
    magnitude = 1.0 + np.abs(y) @ np.abs(b) + (np.abs(y) @ np.abs(A)) @ reach
    return float(y @ b + np.abs(residual) @ reach + FARKAS_MARGIN * magnitude)

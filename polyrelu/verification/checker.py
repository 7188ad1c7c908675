"""The certificate checker: re-validates a "holds" certificate without the search.

It imports no search code: only the piece types and the network fingerprint of
:mod:`polyrelu.verification.certificate`, the sound bounds of
:mod:`polyrelu.geometry.symbolic`, the LP layer (whose answers are never trusted: only
their dual multipliers are used, re-evaluated rigorously) and the rigorous arithmetic
of :mod:`polyrelu.verification.rigorous`. Nothing in a piece is trusted that can be
re-derived: its rows come from the network, the sub-box and the pattern; the
coverage of an exactly decided sub-box is proven by rebuilding the splitting tree of
its pieces. docs/certificate-format.md states the rules.
"""

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from ..geometry.lp import LPSolver
from ..geometry.symbolic import linear_bounds, linear_bounds_batch
from ..options import Options
from .certificate import (
    FORMAT_VERSION,
    READABLE_VERSIONS,
    BoundPiece,
    BoxHint,
    CertificateError,
    RegionPiece,
    StarPiece,
    box_from_path,
    network_fingerprint,
    verification_network,
)
from .rigorous import (
    LPRows,
    box_from_multipliers,
    dot_error,
    empty_by_multipliers,
    first_layer,
    lp_box,
    lp_proves_at_most,
    narrowed,
    next_layer,
    one_cut_bounds,
    tail_bounds_batch,
    upper_over_box,
    upward,
    widened,
)

__all__ = ["check_certificate"]

_MAX_PATH = 4096  # bisections of one sub-box at most (a deeper path is refused, not recursed)


def check_certificate(network, prop, certificate, *, options=None):
    """Re-validate a "holds" certificate; raise :class:`CertificateError` naming the first flaw.

    Checks, without using the search: the format version and the network fingerprint;
    every piece's shape; in every case the sub-boxes, rebuilt from their split paths,
    are the leaves of one complete bisection tree of the input box; a sub-box closed
    by bounds is refuted by recomputed sound bounds; the pieces of an exactly decided
    sub-box are the leaves of a complete splitting tree (every neuron a node does not
    split is proven stable there) and each is closed: a partial piece by sound bounds
    of the remaining layers over its rigorously derived bounding box, a region by its
    Farkas multipliers, evaluated with rigorous rounding-error bounds.

    Returns
    -------
    dict
        ``boxes`` and the piece counts.

    A network with max windows is checked on its exact rewrite without them
    (:func:`polyrelu.verification.certificate.verification_network`); the certificate's
    fingerprint is the given network's.
    """
    _check_header(network, certificate)
    network = verification_network(network, prop)
    shape, checked_paths = _Shape(network), {}
    for piece in certificate.pieces:
        try:
            _check_piece(shape, prop, piece, checked_paths)
        except (TypeError, ValueError, AttributeError, IndexError) as err:
            if isinstance(err, CertificateError):
                raise
            raise CertificateError(f"a malformed piece ({type(err).__name__})") from None
    hints = _hint_table(shape, prop, certificate)
    solver = _LazySolver(options or Options())
    stars = _StarChecks()
    by_box = {}
    for piece in certificate.pieces:
        path = tuple((int(dim), int(side)) for dim, side in piece.path)
        by_box.setdefault((int(piece.case), path), []).append(piece)
    for index, case in enumerate(prop.cases):
        paths = [path for (c, path) in by_box if c == index]
        _check_tiling(paths, index)
        bounded = [path for path in paths
                   if any(isinstance(p, BoundPiece) for p in by_box[(index, path)])]
        closed = _refuted_at_once(network, case, bounded, by_box, index)
        for path in paths:
            if path not in closed:
                _check_box(network, case, index, path, by_box[(index, path)], solver, stars,
                           hints.get((index, path), {}))
    stars.run()
    return {"boxes": len(by_box), **certificate.counts()}


class _Shape:
    """The sizes of a network, read once (the network's own properties recompute them)."""

    def __init__(self, network):
        self.input_dim, self.num_hidden = network.input_dim, network.num_hidden
        self.slot_sizes = tuple(int(n) for n in network.slot_sizes)
        self.offsets = np.cumsum((0,) + self.slot_sizes)


def _check_header(network, certificate):
    version = getattr(certificate, "version", None)
    if version not in READABLE_VERSIONS:
        raise CertificateError(f"certificate format version {version!r} is not supported "
                               f"(this checker reads versions "
                               f"{', '.join(map(str, READABLE_VERSIONS))})")
    if version != FORMAT_VERSION and not network.is_relu_mlp:
        raise CertificateError(f"a version {version} certificate is for a Linear + ReLU "
                               f"network; this network has {network.describe_units()}")
    if certificate.fingerprint != network_fingerprint(network):
        raise CertificateError("certificate is for a different network (fingerprint mismatch)")


# ------------------------------------------------------------------ shapes of pieces

def _check_piece(network, prop, piece, checked_paths=None):
    """Types, ranges and sizes of one piece, before anything is computed from it."""
    if type(piece) not in (BoundPiece, StarPiece, RegionPiece):
        raise CertificateError(f"unknown piece kind {type(piece).__name__}")
    if not isinstance(piece.case, (int, np.integer)) or not 0 <= piece.case < len(prop.cases):
        raise CertificateError(f"piece for case {piece.case!r}: the property has "
                               f"{len(prop.cases)} input boxes")
    case = prop.cases[piece.case]
    _check_path(piece.path, network.input_dim, checked_paths)
    if not isinstance(piece, BoundPiece):
        _check_pattern(network, piece)
    if isinstance(piece, StarPiece):
        _check_hint(network, case, piece)
    if len(piece.multipliers) != len(case.unsafe):
        raise CertificateError(f"piece has {len(piece.multipliers)} multiplier vectors for "
                               f"{len(case.unsafe)} unsafe sets")
    free = int(np.sum(case.upper > case.lower))
    for k, (lam, unsafe) in enumerate(zip(piece.multipliers, case.unsafe)):
        size = len(unsafe.d)
        if isinstance(piece, RegionPiece):
            size += 2 * free + network.num_hidden
        lam = np.asarray(lam)
        if lam.dtype != np.float64 or lam.shape != (size,) or not np.all(np.isfinite(lam)) \
                or np.any(lam < 0) or not np.any(lam > 0):
            raise CertificateError(f"multipliers for unsafe set {k} must be {size} finite "
                                   "non-negative float64 numbers, not all zero")


def _check_path(path, dim, checked=None):
    """A split path: at most _MAX_PATH steps ``(input, side)`` of ints in range. With
    ``checked`` (a dict), a path object already checked (by identity: the pieces of one
    sub-box share theirs) is not checked again; the dict keeps the objects alive."""
    if checked is not None and id(path) in checked:
        return
    if len(path) > _MAX_PATH:
        raise CertificateError(f"a split path has {len(path)} steps (at most {_MAX_PATH})")
    for step in path:
        if len(step) != 2 or not all(isinstance(v, (int, np.integer)) for v in step) \
                or not 0 <= step[0] < dim or step[1] not in (0, 1):
            raise CertificateError(f"bad split step {step!r} (expected (input < {dim}, 0 or 1))")
    if checked is not None and type(path) is tuple:
        checked[id(path)] = path


def _hint_table(network, prop, certificate):
    """``{(case, path): {(layer, pattern bytes): (box_rows, box_weights)}}`` of the
    bounding-box hints of the star pieces and of the certificate's :class:`BoxHint` s
    (shapes and ranges checked; their values are only ever evaluated, never trusted:
    the first hint of a node is used, a later duplicate ignored)."""
    table = {}
    extra = getattr(certificate, "hints", None) or []
    if not isinstance(extra, (list, tuple)):
        raise CertificateError("the certificate's hints must be a list")
    for hint in list(certificate.pieces) + list(extra):
        if isinstance(hint, StarPiece):
            pass  # shapes checked with the pieces
        elif type(hint) is BoxHint:
            try:
                _check_box_hint(network, prop, hint)
            except (TypeError, ValueError, AttributeError, IndexError) as err:
                if isinstance(err, CertificateError):
                    raise
                raise CertificateError(f"a malformed hint ({type(err).__name__})") from None
        else:
            continue
        if not len(hint.box_weights):
            continue
        path = tuple((int(dim), int(side)) for dim, side in hint.path)
        node = (int(hint.layer), bytes(hint.pattern))
        table.setdefault((int(hint.case), path), {}).setdefault(
            node, (hint.box_rows, hint.box_weights))
    return table


def _check_box_hint(network, prop, hint):
    """A :class:`BoxHint`: case, path, layer and pattern as for a star piece, its
    directions and rows in range, weights >= 0 and finite."""
    if not isinstance(hint.case, (int, np.integer)) or not 0 <= hint.case < len(prop.cases):
        raise CertificateError(f"a hint for case {hint.case!r}: the property has "
                               f"{len(prop.cases)} input boxes")
    _check_path(hint.path, network.input_dim)
    _check_pattern(network, hint)
    _check_hint(network, prop.cases[hint.case], hint)


def _check_hint(network, case, piece):
    """A star piece's (or a BoxHint's) bounding-box hint: directions and rows in range,
    weights >= 0."""
    d = int(np.sum(case.upper > case.lower))
    rows, weights = piece.box_rows, piece.box_weights
    count = 2 * d + int(sum(network.slot_sizes[:piece.layer]))
    if not (isinstance(rows, np.ndarray) and isinstance(weights, np.ndarray)
            and rows.dtype.kind == "i" and rows.ndim == 2 and rows.shape[1] == 2
            and weights.dtype == np.float64 and weights.shape == (len(rows),)
            and np.all((rows[:, 0] >= 0) & (rows[:, 0] < 2 * d))
            and np.all((rows[:, 1] >= 0) & (rows[:, 1] < count))
            and np.all(np.isfinite(weights)) and np.all(weights >= 0)):
        raise CertificateError("a star piece's bounding-box hint is malformed")


def _check_pattern(network, piece):
    pattern, n = piece.pattern, network.num_hidden
    if not isinstance(pattern, np.ndarray) or pattern.dtype != np.uint8 \
            or pattern.shape != ((n + 7) // 8,):
        raise CertificateError(f"a pattern must be {(n + 7) // 8} packed bytes (uint8)")
    bits = np.unpackbits(pattern)
    used = n
    if isinstance(piece, (StarPiece, BoxHint)):
        layers = len(network.slot_sizes)
        if not isinstance(piece.layer, (int, np.integer)) or not 0 <= piece.layer < layers:
            raise CertificateError(f"star piece or hint at layer {piece.layer!r} (the network has "
                                   f"{layers} hidden layers)")
        used = int(sum(network.slot_sizes[:piece.layer]))
    if bits[used:].any():
        raise CertificateError("a pattern sets bits beyond the neurons it fixes")


# ------------------------------------------------------------------ bisection tree

def _check_tiling(paths, case):
    """The split paths must be the leaves of one complete binary tree of bisections."""
    if not paths:
        raise CertificateError(f"case {case}: no piece covers the input box")
    stack = [((), paths)]
    while stack:
        prefix, members = stack.pop()
        if members == [prefix]:
            continue
        depth = len(prefix)
        if any(len(path) == depth for path in members):
            raise CertificateError(f"case {case}: box {list(prefix)} is both closed and split")
        dims = {path[depth][0] for path in members}
        if len(dims) != 1:
            raise CertificateError(f"case {case}: box {list(prefix)} is split along several "
                                   "inputs")
        dim = dims.pop()
        for side in (0, 1):
            below = [path for path in members if path[depth][1] == side]
            if not below:
                raise CertificateError(f"case {case}: sub-box {list(prefix) + [(dim, side)]} "
                                       "is not covered")
            stack.append((prefix + ((dim, side),), below))


def _check_box(network, case, index, path, pieces, solver, stars, hints):
    lower, upper = box_from_path(case, path)
    where = f"case {index}, box {list(path)}"
    if any(isinstance(piece, BoundPiece) for piece in pieces):
        if len(pieces) != 1:
            raise CertificateError(f"{where}: closed by bounds and by other pieces at once")
        _check_refutation(network, lower, upper, case, pieces[0].multipliers, where)
        return
    _ExactBox(network, case, lower, upper, solver, where, stars, hints).check(pieces)


def _refuted_at_once(network, case, paths, by_box, index):
    """The sub-boxes among ``paths`` (each with one bound piece) that one batched bound
    computation refutes: sound lower bounds ``L_r`` of every unsafe row ``C_r f(x)`` over
    each sub-box, and ``sum_r lam_r L_r > lam . d`` compared exactly (a weaker test than
    bounding ``lam . C f`` itself; the sub-boxes it does not settle are checked alone)."""
    single = [path for path in paths if len(by_box[(index, path)]) == 1]
    if not single:
        return set()
    boxes = [box_from_path(case, path) for path in single]
    rows = np.vstack([unsafe.C for unsafe in case.unsafe])
    bounds = linear_bounds_batch(network, np.array([lo for lo, _ in boxes]),
                                 np.array([hi for _, hi in boxes]), rows)
    starts = np.cumsum([0] + [len(unsafe.d) for unsafe in case.unsafe])
    closed = set()
    for path, bound in zip(single, bounds):
        multipliers = by_box[(index, path)][0].multipliers
        if np.all(np.isfinite(bound.lower)) and all(
                _exact_sum(lam, bound.lower[starts[k]:starts[k + 1]]) >
                _exact_sum(lam, unsafe.d_exact)
                for k, (lam, unsafe) in enumerate(zip(multipliers, case.unsafe))):
            closed.add(path)
    return closed


def _exact_sum(weights, values):
    """``sum_i weights_i values_i`` in exact rational arithmetic."""
    return sum((Fraction(float(w)) * (v if isinstance(v, Fraction) else Fraction(float(v)))
                for w, v in zip(weights, values) if w), Fraction(0))


def _check_refutation(network, lower, upper, case, multipliers, where):
    """Sound bounds of ``network`` over the box refute each unsafe set with its multipliers:
    ``lam . C f(x) > lam . d`` on the whole box, compared exactly (Fractions), with the
    rounding of ``lam @ C`` bounded by ``|f|``'s own sound bounds."""
    rows = _refutation_rows(case, multipliers, network.output_dim)
    bounds = linear_bounds(network, lower, upper, rows)
    flaw = _refutation_flaw(bounds.lower, case, multipliers)
    if flaw is not None:
        raise CertificateError(f"{where}: {flaw}")


def _refutation_rows(case, multipliers, m):
    """The rows bounded for a refutation: ``lam_k @ C_k`` per unsafe set, then ``+-I``
    (sound bounds of ``|f|``, for the rounding of ``lam_k @ C_k``)."""
    rows = [np.asarray(lam) @ unsafe.C for lam, unsafe in zip(multipliers, case.unsafe)]
    return np.vstack(rows + [np.eye(m), -np.eye(m)])


def _refutation_flaw(lower, case, multipliers):
    """None if the sound lower bounds ``lower`` of :func:`_refutation_rows` refute every
    unsafe set (exact comparison), else the reason."""
    k_all = len(multipliers)
    m = (len(lower) - k_all) // 2
    magnitude = np.maximum(np.abs(lower[k_all:k_all + m]), np.abs(lower[k_all + m:]))
    for k, (lam, unsafe) in enumerate(zip(multipliers, case.unsafe)):
        error = dot_error(np.abs(lam), np.abs(unsafe.C), len(lam)) @ magnitude * (1 + 1e-12)
        if np.isfinite(lower[k]) and np.isfinite(error):
            # float first: lower - error rounded down against lam . d_up rounded up
            d_up = _rounded_up(unsafe)
            top = float(np.dot(lam, d_up))
            top = float(widened(top, dot_error(np.abs(lam), np.abs(d_up), len(lam))))
            if np.isfinite(top) and float(narrowed(lower[k], error)) > top:
                continue
        rhs = sum((Fraction(float(v)) * d for v, d in zip(lam, unsafe.d_exact) if v),
                  Fraction(0))
        finite = np.isfinite(lower[k]) and np.isfinite(error)
        low = Fraction(float(lower[k])) - Fraction(float(error)) if finite else None
        if not (finite and low > rhs):
            return (f"bounds do not refute unsafe set {k} "
                    f"({float(lower[k]):.6g} <= {float(rhs):.6g})")
    return None


_ROUNDED_UP = {}  # id(unsafe set) -> (the set, its d rounded up)


def _rounded_up(unsafe):
    """``d`` of an unsafe set with every entry raised to a float ``>= d_exact``."""
    entry = _ROUNDED_UP.get(id(unsafe))
    if entry is None or entry[0] is not unsafe:
        if len(_ROUNDED_UP) > 256:
            _ROUNDED_UP.clear()
        d_up = np.array(unsafe.d, dtype=np.float64)
        for i, exact in enumerate(unsafe.d_exact):
            while np.isfinite(d_up[i]) and Fraction(float(d_up[i])) < exact:
                d_up[i] = np.nextafter(d_up[i], np.inf)
        entry = _ROUNDED_UP[id(unsafe)] = (unsafe, d_up)
    return entry[1]


class _StarChecks:
    """Star-piece refutations, collected while the splitting trees are checked and then
    bounded in batches (one vectorised computation per case, layer and batch): every
    tail is bounded over its piece's box exactly as :func:`_refute_star` would one at a
    time. A refutation that fails over a hinted box is retried over the checker's own LP
    box (:meth:`_ExactBox.refute_star_again`) before the certificate is rejected."""

    BATCH = 512

    def __init__(self):
        self.groups = {}

    def add(self, exact, node, piece, box, hinted):
        key = (id(exact.case), id(exact.network), node.layer)
        self.groups.setdefault(key, []).append((exact, node, piece, box, hinted))

    def run(self):
        while self.groups:
            groups, self.groups = self.groups, {}
            for items in groups.values():
                for start in range(0, len(items), self.BATCH):
                    self._run(items[start:start + self.BATCH])

    def _run(self, items):
        exact, node = items[0][0], items[0][1]
        layer, network = node.layer, exact.network
        A = np.array([node.maps[-1].A for _, node, _, _, _ in items])
        c = np.array([node.maps[-1].c for _, node, _, _, _ in items])
        low = np.array([box[0] for _, _, _, box, _ in items])
        high = np.array([box[1] for _, _, _, box, _ in items])
        eps = np.array([node.maps[-1].slack(np.maximum(np.abs(lo), np.abs(hi)))
                        for (_, node, _, _, _), lo, hi in zip(items, low, high)])
        C = np.array([_refutation_rows(exact.case, piece.multipliers, network.output_dim)
                      for _, _, piece, _, _ in items])
        bounds = tail_bounds_batch(A, c, eps, network.layers[layer:], low, high, C)
        for (exact, node, piece, _, hinted), lower in zip(items, bounds):
            flaw = _refutation_flaw(lower, exact.case, piece.multipliers)
            if flaw is None:
                continue
            if hinted:
                exact.refute_star_again(node, piece)
            else:
                raise CertificateError(f"{exact.where}, star piece at layer {layer}: {flaw}")


# ------------------------------------------------------------------ exactly decided boxes

@dataclass
class _Node:
    """A node of the splitting tree of an exactly decided sub-box: the sub-box cut by the
    sign rows ``G x <= h`` of the neurons ``decided`` so far (all neurons of earlier
    layers, some of layer ``layer``), which have activation ``pattern``; ``maps[l]`` are
    layer l's pre-activation maps there; ``box`` bounds the node (``tight``: by LPs)."""

    pieces: list
    layer: int
    maps: list
    pattern: np.ndarray
    decided: np.ndarray
    G: np.ndarray
    h: np.ndarray
    box: tuple
    tight: bool = False
    hinted: int = -1  # the box was intersected with the box of the hint of the node at
    # the start of layer ``hinted``
    whole: bool = False  # ... evaluated with all the hint's rows
    lp: LPRows = None  # the LP form of the node's rows, made when first needed


class _ExactBox:
    """The coverage and closure checks of the pieces of one exactly decided sub-box."""

    def __init__(self, network, case, lower, upper, solver, where, stars, hints):
        self.network, self.case, self.solver, self.where = network, case, solver, where
        self.stars, self.hints = stars, hints
        self.free = case.upper > case.lower
        self.lower, self.upper = lower[self.free], upper[self.free]
        self.fixed = lower[~self.free]
        self.reach = np.maximum(np.abs(self.lower), np.abs(self.upper))
        self.offsets = np.cumsum((0,) + tuple(network.slot_sizes))
        self.layers, self.num_hidden = len(self.offsets) - 1, int(self.offsets[-1])
        self.relu_units = [layer.relu_units for layer in network.layers[:-1]]
        self.terms = _exact_terms(network)
        self.bits = {}

    def check(self, pieces):
        """Rebuild the splitting tree of ``pieces`` (depth first) and check every leaf."""
        n, d = self.num_hidden, len(self.lower)
        for piece in pieces:
            self.bits[id(piece)] = np.unpackbits(piece.pattern, count=n).astype(bool)
        first = first_layer(self.network, self.free, self.fixed)
        if self.terms.used and self.layers:
            first.terms = self.terms.layer_terms(0)
        root = _Node(list(pieces), 0, [first],
                     np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), np.zeros((0, d)),
                     np.zeros(0), (self.lower, self.upper))
        stack = [root]
        while stack:
            stack.extend(self._visit(stack.pop()))

    def _visit(self, node):
        """Check a leaf, or return the node's children (one node: itself, a layer later)."""
        start, stop = self.offsets[node.layer], self.offsets[node.layer + 1] \
            if node.layer < self.layers else self.offsets[-1]
        if not node.decided[start:stop].any():
            if self._leaf(node):
                return []
        open_ = np.flatnonzero(~node.decided[start:stop]) + start
        bits = np.array([self.bits[id(piece)][open_] for piece in node.pieces])
        split = np.flatnonzero(bits.any(axis=0) & ~bits.all(axis=0))
        if len(split):
            j = open_[split[0]]
            return [self._child(node, j, side, [p for p in node.pieces
                                                if self.bits[id(p)][j] == side])
                    for side in (False, True)]
        self._prove_stable(node, open_, bits[0])
        return [self._next_layer(node)]

    def _leaf(self, node):
        """At the start of a layer: a star piece of this layer, or (after the last layer)
        a region, must be the node's only piece; returns whether the node is a leaf."""
        layers = self.layers
        here = [p for p in node.pieces if isinstance(p, StarPiece) and p.layer == node.layer]
        if node.layer == layers or here:
            if len(node.pieces) != 1:
                raise CertificateError(f"{self.where}: {len(node.pieces)} pieces overlap at "
                                       f"layer {node.layer} (duplicates or nested pieces)")
            if here:
                self._check_star(node, here[0])
            elif isinstance(node.pieces[0], RegionPiece):
                self._check_region(node, node.pieces[0])
            else:
                raise CertificateError(f"{self.where}: a star piece does not fit the tree")
            return True
        return False

    def _child(self, node, j, active, pieces):
        """``node`` cut by neuron j's sign row (``active``: ``z_j >= 0``)."""
        row, rhs, _ = self._sign_rows(node.layer, node.maps[-1], [j - self.offsets[node.layer]],
                                      [active])
        pattern, decided = node.pattern.copy(), node.decided.copy()
        pattern[j], decided[j] = active, True
        return _Node(pieces, node.layer, node.maps, pattern, decided,
                     np.vstack([node.G, row]), np.concatenate([node.h, rhs]), node.box,
                     False)

    def _sign_rows(self, layer, maps, slots, active):
        """``(G, outer, inner)`` for the ReLU slots ``slots`` (local indices) of hidden layer
        ``layer`` (pre-activation ``maps``) with signs ``active``: ``s z_j(x) <= 0``
        (``s = -1`` if active) implies ``G_j x <= outer_j`` on the sub-box, and
        ``G_j x <= inner_j`` on a set implies ``s z_j <= 0`` there (the maps' rounding
        error between them)."""
        rows = self.relu_units[layer][np.asarray(slots, dtype=int)]
        sign = np.where(np.asarray(active, dtype=bool), -1.0, 1.0)
        slack = self._slack(maps)[rows]
        value = -sign * maps.c[rows]
        return (sign[:, None] * maps.A[rows], widened(value, slack), narrowed(value, slack))

    def _slack(self, maps):
        """``maps.slack`` on the sub-box, computed once per map."""
        cached = getattr(maps, "box_slack", None)
        if cached is None:
            cached = maps.box_slack = maps.slack(self.reach)
        return cached

    def _prove_stable(self, node, neurons, active):
        """Every neuron in ``neurons`` keeps the sign ``active`` on the whole node: interval
        bounds over the node's box (LP-tightened when many remain), then the box with one
        of the node's rows at a time, then one LP each."""
        start = self.offsets[node.layer]
        G, outer, inner = self._sign_rows(node.layer, node.maps[-1], neurons - start, active)
        # the other side {s z_j > 0} has no point in the node if max_node G_j x <= inner_j
        if node.hinted != node.layer + 1:
            self._apply_hint(node, neurons, active)
        pending = upper_over_box(G, *node.box) > inner
        if pending.sum() > 2 * len(self.lower) and not node.tight \
                and node.hinted != node.layer + 1:
            self._tighten(node)
            pending &= upper_over_box(G, *node.box) > inner
        if self._empty(node):
            pending[:] = False
        if pending.any() and self.terms.used:
            rows = self.relu_units[node.layer][neurons[pending] - start]
            pending[pending] = ~self.terms.known(node.maps[-1].terms[rows], node,
                                                 active[pending])
        if pending.any():
            pending[pending] = one_cut_bounds(G[pending], node.G, node.h, *node.box) \
                > inner[pending]
        if pending.any() and node.lp is None:
            node.lp = LPRows(node.G, node.h, self.lower, self.upper)
        for i in np.flatnonzero(pending):
            if not lp_proves_at_most(self.solver, G[i], node.lp, node.G, node.h, *node.box,
                                     inner[i]):
                raise CertificateError(
                    f"{self.where}: neuron {self.network.neuron_name(neurons[i])} is "
                    f"{'active' if active[i] else 'inactive'} in every piece of a node but not "
                    "provably so on the node (a piece is missing)")
        node.pattern[neurons] = active
        node.decided[neurons] = True
        node.G, node.h = np.vstack([node.G, G]), np.concatenate([node.h, outer])
        node.lp = None

    def _apply_hint(self, node, neurons, active):
        """Intersect the node's box with the box of the hint for the node it becomes once
        ``neurons`` are decided as ``active`` (the hint's rows of undecided neurons left
        out: only rows the node already has are used)."""
        stop = self.offsets[node.layer + 1]
        pattern = node.pattern[:stop].copy()
        pattern[neurons] = active
        hint = self.hints.get(self._key(node.layer + 1, pattern))
        if hint is not None:
            *box, node.whole = self._hint_box(node, *hint)
            node.box, node.hinted = tuple(box), node.layer + 1

    def _key(self, layer, prefix):
        """The hint table's key of the node at the start of ``layer`` with pattern
        ``prefix`` (the bits of the earlier layers)."""
        bits = np.zeros(self.num_hidden, dtype=bool)
        bits[:len(prefix)] = prefix
        return (layer, bytes(np.packbits(bits)))

    def _tighten(self, node):
        """Replace the node's box by its rigorous LP bounding box."""
        node.box, node.tight = lp_box(self.solver, node.G, node.h, *node.box), True

    @staticmethod
    def _empty(node):
        """Whether the node's rigorous box proves it empty (it then needs no proof)."""
        return bool(np.any(node.box[0] > node.box[1]))

    def _next_layer(self, node):
        """``node`` with every neuron of its layer decided, moved to the next layer."""
        start, stop = self.offsets[node.layer], self.offsets[node.layer + 1]
        sources = self.network.layers[node.layer].sources(node.pattern[start:stop])
        maps = next_layer(self.network, node.layer, node.maps[-1], sources)
        if self.terms.used and node.layer + 1 < self.layers:
            maps.terms = self.terms.layer_terms(node.layer + 1, sources, node.maps[-1].terms)
        return _Node(node.pieces, node.layer + 1, node.maps + [maps], node.pattern,
                     node.decided, node.G, node.h, node.box, node.tight, node.hinted,
                     node.whole)

    def _check_star(self, node, piece):
        """The remaining layers' sound bounds over the piece's bounding box refute every
        unsafe set (the box from the piece's hint, evaluated rigorously; if that is not
        enough, from the checker's own LPs). The bounds are computed later, in batches
        (:class:`_StarChecks`)."""
        if len(piece.box_weights) and not node.tight:
            # the box of this piece's hint with all its rows, if the parent applied it
            box = node.box if node.hinted == node.layer and node.whole else \
                self._hint_box(node, piece.box_rows, piece.box_weights)[:2]
            self.stars.add(self, node, piece, box, True)
        else:
            self.refute_star_again(node, piece)

    def refute_star_again(self, node, piece):
        """Queue the piece's refutation over the node's LP box (no more retries)."""
        if not node.tight:
            self._tighten(node)
        if not self._empty(node):
            self.stars.add(self, node, piece, node.box, False)

    def _hint_box(self, node, rows, weights):
        """The node's box intersected with the box that hint multipliers prove: weight
        ``weights[i]`` on the unit-normalised row ``rows[i, 1]`` (sub-box faces, then
        neuron sign rows, rebuilt here from the node's pattern) bounding direction
        ``rows[i, 0]``; entries on neurons the node has not decided are left out.
        Returns ``(low, high, whether every entry was used)``."""
        d = len(self.lower)
        neuron = rows[:, 1] - 2 * d
        usable = (weights > 0) & ((neuron < 0) | node.decided[np.maximum(neuron, 0)])
        whole = bool(usable.all())
        rows, weights, neuron = rows[usable], weights[usable], neuron[usable]
        used = np.unique(neuron[neuron >= 0])
        parts_G, parts_h = [np.eye(d), -np.eye(d)], [self.upper, -self.lower]
        layer_of = np.searchsorted(self.offsets, used, side="right") - 1
        for layer in np.unique(layer_of):
            js = used[layer_of == layer]
            G, outer, _ = self._sign_rows(layer, node.maps[layer], js - self.offsets[layer],
                                          node.pattern[js])
            parts_G.append(G)
            parts_h.append(outer)
        G, h = np.vstack(parts_G), np.concatenate(parts_h)
        column = np.where(neuron < 0, rows[:, 1], 2 * d + np.searchsorted(used, neuron))
        norms = np.linalg.norm(G, axis=1)
        Y = np.zeros((2 * d, len(h)))
        np.add.at(Y, (rows[:, 0], column), weights / np.where(norms > 0, norms, 1.0)[column])
        low, high = box_from_multipliers(Y, G, h, self.lower, self.upper)
        return np.maximum(low, node.box[0]), np.minimum(high, node.box[1]), whole

    def _check_region(self, node, piece):
        """Farkas multipliers on the region's rows (box, neurons in order, unsafe rows)
        prove that the region misses each unsafe set."""
        out = node.maps[-1]  # after the last hidden layer: the output layer's maps
        d = len(self.lower)
        G_box = np.vstack([np.eye(d), -np.eye(d)])
        h_box = np.concatenate([self.upper, -self.lower])
        G_n, h_n = self._neuron_rows(node)
        for k, (lam, unsafe) in enumerate(zip(piece.multipliers, self.case.unsafe)):
            G_u, h_u = self._unsafe_rows(out, unsafe)
            G = np.vstack([G_box, G_n, G_u])
            h = np.concatenate([h_box, h_n, h_u])
            norms = np.linalg.norm(G, axis=1)
            y = np.asarray(lam) / np.where(norms > 0, norms, 1.0)
            if not empty_by_multipliers(y, G, h, self.lower, self.upper):
                raise CertificateError(f"{self.where}: Farkas multipliers do not prove that a "
                                       f"region misses unsafe set {k}")

    def _neuron_rows(self, node, layers=None):
        """Outer sign rows of every neuron of the first ``layers`` hidden layers (default:
        all), in neuron order."""
        layers = self.layers if layers is None else layers
        parts = [self._sign_rows(layer, maps, np.arange(len(self.relu_units[layer])),
                                 node.pattern[self.offsets[layer]:self.offsets[layer + 1]])
                 for layer, maps in enumerate(node.maps[:layers])]
        d = len(self.lower)
        return (np.vstack([np.zeros((0, d))] + [G for G, _, _ in parts]),
                np.concatenate([np.zeros(0)] + [outer for _, outer, _ in parts]))

    def _unsafe_rows(self, out, unsafe):
        """Outer rows of ``C f(x) <= d`` on the region (``f = A x + c`` up to its error), with
        ``d`` rounded up to cover the exact right-hand sides."""
        C = unsafe.C
        d_up = np.array([v if Fraction(float(v)) >= exact else np.nextafter(v, np.inf)
                         for v, exact in zip(unsafe.d, unsafe.d_exact)])
        m = C.shape[1]
        coef_err = dot_error(np.abs(C), np.abs(out.A), m) + np.abs(C) @ out.E
        const_err = dot_error(np.abs(C), np.abs(out.c), m) + np.abs(C) @ out.e
        constant = C @ out.c
        slack = upward(coef_err @ self.reach + const_err, len(self.reach) + 1) \
            + 4 * np.finfo(float).eps * np.abs(constant)
        return C @ out.A, widened(d_up - constant, slack)



class _ExactTerms:
    """Hidden pre-activations as exact integer combinations of earlier ones, for the sign
    proofs that rounding-error bounds cannot give: a unit whose weight row and bias equal
    an earlier unit's of its layer (the ReLU of ``relu(t)`` and of ``abs(t)``) has its
    pre-activation; a unit with integer weights and no bias (the max trees of
    :func:`polyrelu.network.windowless.without_windows`) is, on a node, the integer
    combination of the pre-activations its active inputs equal, e.g. ``y - x = y``
    where ``x`` is an inactive ReLU. When that combination is ``k z_a`` for one unit
    ``a`` of known sign on the node, or 0, the unit's sign is known there exactly
    (its sign row lies on ``a``'s, and no float bound proves one from the other).

    Terms are rows over the global pre-activation indices (the *anchors*)."""

    def __init__(self, network):
        self.layers = network.layers[:-1]
        sizes = [layer.n_z for layer in self.layers]
        self.offsets = np.cumsum([0] + sizes)
        self.slot_z = network.slot_units()
        self.first, self.integer = [], []
        for index, layer in enumerate(self.layers):
            rows = np.column_stack([layer.weight, layer.bias])
            _, first, group = np.unique(rows, axis=0, return_index=True, return_inverse=True)
            self.first.append(first[group.reshape(-1)])
            whole = np.all((layer.weight == np.round(layer.weight))
                           & (np.abs(layer.weight) <= 2.0 ** 20), axis=1)
            self.integer.append(whole & (layer.bias == 0) & (index > 0))
        self.used = any(np.any(f != np.arange(len(f))) or i.any()
                        for f, i in zip(self.first, self.integer))

    def layer_terms(self, layer, sources=None, previous=None):
        """Terms of hidden layer ``layer``'s pre-activations, from the ``sources`` of the
        layer before on the node and that layer's terms ``previous``."""
        n = self.layers[layer].n_z
        terms = np.zeros((n, int(self.offsets[-1])))
        terms[np.arange(n), self.offsets[layer] + self.first[layer]] = 1.0
        rows = np.flatnonzero(self.integer[layer])
        if rows.size:
            inputs = np.flatnonzero(sources >= 0)
            weight = self.layers[layer].weight[np.ix_(rows, inputs)]
            terms[rows] = weight @ previous[sources[inputs]]  # exact: small integers
        return terms

    def known(self, terms, node, active):
        """Which rows of ``terms`` have the sign ``active`` on the node for certain."""
        sign = np.zeros(int(self.offsets[-1]), dtype=np.int8)
        decided = np.flatnonzero(node.decided)
        sign[self.slot_z[decided]] = np.where(node.pattern[decided], 1, -1)
        count = np.count_nonzero(terms, axis=1)
        anchor = np.argmax(terms != 0, axis=1)
        coefficient = terms[np.arange(len(terms)), anchor]
        implied = np.sign(coefficient) * sign[anchor]
        return (count == 0) | ((count == 1) & (implied == np.where(active, 1, -1)))


@lru_cache(maxsize=8)
def _exact_terms(network):
    """The :class:`_ExactTerms` of a network (made once per network)."""
    return _ExactTerms(network)


class _LazySolver:
    """An :class:`LPSolver` made on first use (most certificates need no LP at all)."""

    def __init__(self, options):
        self.options, self.solver = options, None

    def __getattr__(self, name):
        if self.solver is None:
            self.solver = LPSolver(self.options)
        return getattr(self.solver, name)

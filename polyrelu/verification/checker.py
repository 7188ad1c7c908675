"""The certificate checker: re-validates a "holds" certificate without the search.

It imports no search code: only the piece types and the network fingerprint of
:mod:`polyrelu.verification.certificate`, the sound bounds of
:mod:`polyrelu.geometry.symbolic`, the LP layer (whose answers are never trusted: only
their dual multipliers are used, re-evaluated rigorously) and the rigorous arithmetic
of :mod:`polyrelu.certify.rigorous`. Nothing in a piece is trusted that can be
re-derived: its rows come from the network, the sub-box and the pattern; the
coverage of an exactly decided sub-box is proven by rebuilding the splitting tree of
its pieces. docs/certificate-format.md states the rules.
"""

from fractions import Fraction

import numpy as np

from ..certify.pattern_tree import LazySolver, PatternTree
from ..certify.rigorous import (
    dot_error,
    empty_by_multipliers,
    narrowed,
    tail_bounds_batch,
    upward,
    widened,
)
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
    solver = LazySolver(options or Options())
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
        self.hidden_units = sum(w.shape[0] for w in network.weights[:-1])
        self.relu_hidden = all(layer.is_relu for layer in network.layers[:-1])


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
    if isinstance(piece, BoundPiece):
        _check_slopes(network, piece)
    else:
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


def _check_slopes(network, piece):
    """A bound piece's slopes (``network``: its _Shape): none, or one entry per unsafe
    set, each None or one float64 number in [0, 1] per hidden unit (of ReLU hidden
    layers)."""
    slopes = piece.slopes
    if not isinstance(slopes, tuple) or not slopes:
        if isinstance(slopes, tuple):
            return
        raise CertificateError("a bound piece's slopes must be a tuple")
    size = network.hidden_units
    if len(slopes) != len(piece.multipliers):
        raise CertificateError(f"bound piece has {len(slopes)} slope vectors for "
                               f"{len(piece.multipliers)} unsafe sets")
    if not network.relu_hidden:
        raise CertificateError("relaxation slopes are for networks of ReLU hidden layers")
    for k, alpha in enumerate(slopes):
        if alpha is None:
            continue
        alpha = np.asarray(alpha)
        if alpha.dtype != np.float64 or alpha.shape != (size,) or not np.all(
                (alpha >= 0.0) & (alpha <= 1.0)):
            raise CertificateError(f"slopes for unsafe set {k} must be {size} float64 "
                                   "numbers in [0, 1]")


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
        _check_refutation(network, lower, upper, case, pieces[0].multipliers, where,
                          pieces[0].slopes)
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


def _check_refutation(network, lower, upper, case, multipliers, where, slopes=()):
    """Sound bounds of ``network`` over the box refute each unsafe set with its multipliers:
    ``lam . C f(x) > lam . d`` on the whole box, compared exactly (Fractions), with the
    rounding of ``lam @ C`` bounded by ``|f|``'s own sound bounds. The bound of
    ``lam_k . C_k f`` uses the piece's relaxation slopes ``slopes[k]`` where given
    (checked by :func:`_check_slopes`; any slope in [0, 1] is sound)."""
    rows = _refutation_rows(case, multipliers, network.output_dim)
    bounds = linear_bounds(network, lower, upper, rows,
                           slopes=_slope_rows(network, slopes, len(rows)))
    flaw = _refutation_flaw(bounds.lower, case, multipliers)
    if flaw is not None:
        raise CertificateError(f"{where}: {flaw}")


def _slope_rows(network, slopes, count):
    """The slopes of :func:`_check_refutation`'s ``count`` rows as
    :func:`polyrelu.geometry.symbolic.linear_bounds` takes them (NaN: the default slope),
    or None if the piece gives none."""
    if not any(alpha is not None for alpha in slopes):
        return None
    sizes = [w.shape[0] for w in network.weights[:-1]]
    table = np.full((count, sum(sizes)), np.nan)
    for k, alpha in enumerate(slopes):
        if alpha is not None:
            table[k] = alpha
    return np.split(table, np.cumsum(sizes)[:-1], axis=1)


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

class _ExactBox:
    """The coverage and closure checks of the pieces of one exactly decided sub-box: the
    splitting tree is :class:`polyrelu.certify.pattern_tree.PatternTree`'s, the leaf
    checks (star pieces and regions) are verification's."""

    def __init__(self, network, case, lower, upper, solver, where, stars, hints):
        self.network, self.case, self.where, self.stars = network, case, where, stars
        self.tree = PatternTree(network, lower, upper, case.upper > case.lower, solver, where,
                                hints)

    def check(self, pieces):
        """Rebuild the splitting tree of ``pieces`` and check every leaf."""
        layers = self.tree.layers
        self.tree.check(pieces,
                        lambda p: (p.layer if isinstance(p, StarPiece) else layers, 0),
                        self._leaf)

    def _leaf(self, node, piece):
        if isinstance(piece, StarPiece) and piece.layer == node.layer:
            self._check_star(node, piece)
        elif isinstance(piece, RegionPiece):
            self._check_region(node, piece)
        else:
            raise CertificateError(f"{self.where}: a star piece does not fit the tree")

    def _check_star(self, node, piece):
        """The remaining layers' sound bounds over the piece's bounding box refute every
        unsafe set (the box from the piece's hint, evaluated rigorously; if that is not
        enough, from the checker's own LPs). The bounds are computed later, in batches
        (:class:`_StarChecks`)."""
        if len(piece.box_weights) and not node.tight:
            # the box of this piece's hint with all its rows, if the parent applied it
            box = node.box if node.hinted == node.layer and node.whole else \
                self.tree.hint_box(node, piece.box_rows, piece.box_weights)[:2]
            self.stars.add(self, node, piece, box, True)
        else:
            self.refute_star_again(node, piece)

    def refute_star_again(self, node, piece):
        """Queue the piece's refutation over the node's LP box (no more retries)."""
        if not node.tight:
            self.tree.tighten(node)
        if not self.tree.is_empty(node):
            self.stars.add(self, node, piece, node.box, False)

    def _check_region(self, node, piece):
        """Farkas multipliers on the region's rows (box, neurons in order, unsafe rows)
        prove that the region misses each unsafe set."""
        out = node.maps[-1]  # after the last hidden layer: the output layer's maps
        d = len(self.tree.lower)
        G_box = np.vstack([np.eye(d), -np.eye(d)])
        h_box = np.concatenate([self.tree.upper, -self.tree.lower])
        G_n, h_n = self.tree.neuron_rows(node)
        for k, (lam, unsafe) in enumerate(zip(piece.multipliers, self.case.unsafe)):
            G_u, h_u = self._unsafe_rows(out, unsafe)
            G = np.vstack([G_box, G_n, G_u])
            h = np.concatenate([h_box, h_n, h_u])
            norms = np.linalg.norm(G, axis=1)
            y = np.asarray(lam) / np.where(norms > 0, norms, 1.0)
            if not empty_by_multipliers(y, G, h, self.tree.lower, self.tree.upper):
                raise CertificateError(f"{self.where}: Farkas multipliers do not prove that a "
                                       f"region misses unsafe set {k}")

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
        slack = upward(coef_err @ self.tree.reach + const_err, len(self.tree.reach) + 1) \
            + 4 * np.finfo(float).eps * np.abs(constant)
        return C @ out.A, widened(d_up - constant, slack)

"""The Lipschitz certificate checker: re-validates a :class:`LipschitzCertificate` without
the search.

It imports no search code (not :mod:`polyrelu.analysis.lipschitz_search`, not
:mod:`polyrelu.regions.branching`): the tree is rebuilt by
:class:`polyrelu.certify.pattern_tree.PatternTree`, which proves in rigorous arithmetic
that the leaves' partial patterns cover the box; every bound is recomputed here in
outward-rounded float64 arithmetic (:mod:`polyrelu.certify.rigorous`); regions and the
witness are re-checked in rational arithmetic where floats do not settle them
(:func:`polyrelu.analysis.lipschitz.exact_value_bracket`). From the file only the box,
the objective, the claimed bracket, the leaves' patterns and bounds and the witness are
read, and each is checked, not trusted.

The rules (docs/certificate-format.md, *Lipschitz certificates*):

1. the fingerprint is the network's; the objective is well formed;
2. the leaves are the leaves of a complete splitting tree of the box (coverage proven);
3. a bound leaf's bound is at most the claimed upper end, and at least a sound upper
   bound, recomputed over the leaf's piece, of the objective over every completion of
   its pattern (interval Jacobian products with rounding-error bounds, the piece's
   pre-activation bounds from the rigorous back-substitution of its tail);
4. a region leaf's value is at most the claimed upper end (rigorous float bound, or the
   exact bracket of its pattern);
5. the witness lies in the box, has the claimed pattern exactly, and that region's exact
   value is at least the claimed lower end.
"""

import numpy as np

from ..certify.pattern_tree import LazySolver, PatternTree
from ..certify.rigorous import (
    dot_error,
    interval_product,
    narrowed,
    norm_upper,
    one_cut_bounds,
    tail_bounds_batch,
    times_slopes,
    upper_over_box,
    upward,
    widened,
)
from ..errors import CertificateError, PolyreluError
from ..network.layers import RELU
from ..network.model import network_fingerprint
from ..network.windowless import without_windows
from ..options import Options
from .lipschitz import exact_pattern, exact_value_bracket, hidden_map
from .lipschitz_certificate import BOUND, FORMAT_VERSION, REGION

__all__ = ["check_lipschitz_certificate"]

_NORMS = (1.0, 2.0, np.inf)
_BATCH = 256  # leaves bounded in one vectorised computation


def check_lipschitz_certificate(network, certificate, *, domain=None, norm=None,
                                options=None):
    """Re-validate a Lipschitz certificate; raise :class:`CertificateError` naming the
    first flaw.

    ``domain`` and ``norm``, when given, must be the certificate's (a certificate answers
    one question: its box, norm and functional).

    Returns
    -------
    dict
        ``lipschitz_bracket`` (the claimed ``[lower, upper]``, now proven), ``norm`` and
        the leaf counts.

    Examples
    --------
    >>> from polyrelu import Network, Domain, lipschitz_search
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> result = lipschitz_search(absolute, Domain.box([-1], [1]))
    >>> low, high = check_lipschitz_certificate(absolute, result.certificate)["lipschitz_bracket"]
    >>> bool(low <= 1.0 <= high)
    True
    """
    _check_header(network, certificate)
    measured = _measured_network(network, certificate)
    _check_question(certificate, measured, domain, norm)
    leaves = _leaves(measured, certificate)
    checks = _LeafChecks(measured, certificate, LazySolver(options or Options()))
    checks.tree.check(leaves, lambda leaf: (leaf.layer, leaf.units), checks.add)
    checks.run()
    _check_witness(measured, certificate)
    return {"lipschitz_bracket": [certificate.lower_value, certificate.upper_value],
            "norm": certificate.norm, **certificate.counts()}


# ------------------------------------------------------------------ header and shapes

def _check_header(network, certificate):
    version = getattr(certificate, "version", None)
    if version != FORMAT_VERSION:
        raise CertificateError(f"Lipschitz certificate format version {version!r} is not "
                               f"supported (this checker reads version {FORMAT_VERSION})")
    if certificate.fingerprint != network_fingerprint(network):
        raise CertificateError("certificate is for a different network (fingerprint mismatch)")


def _floats(value, shape, what):
    """``value`` as a finite float64 array of ``shape`` (a CertificateError otherwise)."""
    if not (isinstance(value, np.ndarray) and value.dtype == np.float64
            and value.shape == shape and np.all(np.isfinite(value))):
        raise CertificateError(f"the certificate's {what} must be {shape} finite float64 "
                               "numbers")
    return value


def _measured_network(network, c):
    """The network whose Jacobian the certificate is about (up to ``layer``, without max
    windows), after the box, objective and claim are checked for shape."""
    d = network.input_dim
    lower, upper = _floats(c.lower, (d,), "box"), _floats(c.upper, (d,), "box")
    if np.any(lower > upper):
        raise CertificateError("the certificate's box is empty (a lower end above its upper)")
    if c.layer is not None and not isinstance(c.layer, (int, np.integer)):
        raise CertificateError("the certificate's layer must be an integer")
    try:
        measured = without_windows(hidden_map(network, c.layer))
    except PolyreluError as err:
        raise CertificateError(f"the certificate's layer: {err}") from None
    if c.norm not in _NORMS:
        raise CertificateError(f"the certificate's norm must be 1, 2 or inf, not {c.norm!r}")
    functional = c.functional
    if not (isinstance(functional, np.ndarray) and functional.ndim == 2
            and 1 <= len(functional) <= 4 * measured.output_dim + 64):
        raise CertificateError("the certificate's functional must be a matrix with at most "
                               f"{4 * measured.output_dim + 64} rows")
    _floats(functional, (len(functional), measured.output_dim), "functional")
    if c.direction is not None:
        _floats(c.direction, (d,), "direction")
    claim = np.array([c.lower_value, c.upper_value])
    if not (np.all(np.isfinite(claim)) and 0 <= claim[0] <= claim[1]):
        raise CertificateError(f"the claimed bracket {claim.tolist()} is not 0 <= lower <= "
                               "upper")
    return measured


def _check_question(c, measured, domain, norm):
    """The certificate answers the question asked (``domain``, ``norm``; None: any)."""
    if norm is not None and float(norm if norm != "inf" else np.inf) != c.norm:
        raise CertificateError(f"the certificate is for the l{c.norm:g} norm, not l{norm}")
    if domain is not None and (domain.kind != "box" or not np.array_equal(domain.lower, c.lower)
                               or not np.array_equal(domain.upper, c.upper)):
        raise CertificateError("the certificate is for another domain (its box differs)")


class _Leaf:
    """One leaf of the certificate's tree (``box``: the search's box, a hint)."""

    def __init__(self, index, kind, layer, units, pattern, box, value):
        self.index, self.kind, self.layer, self.units = index, kind, layer, units
        self.pattern, self.box, self.value = pattern, box, value


def _leaves(network, c):
    """The leaves after their kinds, layers, units, patterns and values are checked."""
    arrays = (c.kinds, c.layers, c.units, c.patterns, c.boxes, c.values)
    if not all(isinstance(a, np.ndarray) for a in arrays):
        raise CertificateError("the certificate's leaves must be arrays")
    count, width = len(c.kinds), (network.num_hidden + 7) // 8
    if not count:
        raise CertificateError("the certificate has no leaves")
    if any(a.dtype.kind != "i" or a.shape != (count,) for a in (c.kinds, c.layers, c.units)) \
            or c.patterns.dtype != np.uint8 or c.patterns.shape != (count, width) \
            or c.values.dtype != np.float64 or c.values.shape != (count,):
        raise CertificateError(f"the certificate's leaf arrays must hold {count} entries each "
                               f"(patterns: {width} bytes)")
    _floats(c.boxes, (count, 2, network.input_dim), "leaf boxes")
    layers, sizes = len(network.slot_sizes), np.array(network.slot_sizes + (0,))
    offsets = np.cumsum((0,) + network.slot_sizes)
    bound, region = c.kinds == BOUND, c.kinds == REGION
    in_range = np.clip(c.layers, 0, layers)
    ok = (bound & (c.layers >= 0) & (c.layers < layers) & (c.units >= 0)
          & (c.units < sizes[in_range]) & np.isfinite(c.values)) \
        | (region & (c.layers == layers) & (c.units == 0) & ~np.isnan(c.values)
           & (c.values < np.inf))
    if not ok.all():
        i = int(np.argmin(ok))
        raise CertificateError(f"leaf {i}: kind {c.kinds[i]}, layer {c.layers[i]}, units "
                               f"{c.units[i]}, value {c.values[i]} do not fit the network")
    bits = np.unpackbits(c.patterns, axis=1)
    fixed = offsets[in_range] + c.units
    beyond = np.arange(bits.shape[1])[None, :] >= fixed[:, None]
    if np.any(bits.astype(bool) & beyond):
        raise CertificateError(f"leaf {int(np.argmax((bits.astype(bool) & beyond).any(1)))}: "
                               "its pattern sets bits beyond the units it fixes")
    return [_Leaf(i, int(c.kinds[i]), int(c.layers[i]), int(c.units[i]), c.patterns[i],
                  c.boxes[i], float(c.values[i])) for i in range(count)]


# ------------------------------------------------------------------ leaves

class _LeafChecks:
    """The closure checks of the leaves, collected while the tree is rebuilt and then
    computed in batches."""

    def __init__(self, network, c, solver):
        self.network, self.c, self.solver = network, c, solver
        d = network.input_dim
        self.tree = PatternTree(network, c.lower, c.upper, np.ones(d, dtype=bool), solver,
                                "Lipschitz certificate")
        self.norm, self.C, self.direction = c.norm, c.functional, c.direction
        self.upper = c.upper_value
        self.relu = [layer.units == RELU for layer in network.layers[:-1]]
        self.bounds, self.regions = {}, []

    def add(self, node, leaf):
        """The tree's leaf callback: queue the leaf's check."""
        if leaf.value > self.upper:
            raise CertificateError(f"leaf {leaf.index}: its value {leaf.value!r} is above the "
                                   f"claimed maximum {self.upper!r}")
        if leaf.kind == REGION:
            self.regions.append((node, leaf))
        else:
            self.bounds.setdefault(leaf.layer, []).append((node, leaf))

    def run(self):
        """Check every queued leaf."""
        for layer, items in self.bounds.items():
            for first in range(0, len(items), _BATCH):
                self._check_bounds(layer, items[first:first + _BATCH])
        for first in range(0, len(self.regions), _BATCH):
            self._check_regions(self.regions[first:first + _BATCH])

    def _check_bounds(self, layer, items):
        """Each bound leaf's claimed bound is at least a sound bound over its piece: from
        its own layer over the search's box (once the piece is proven inside it), else over
        the tree's box, then over its LP box, then also from each earlier layer (the search
        may have closed it by an ancestor's bound, over a larger box)."""
        nodes = [node for node, _ in items]
        claimed = np.array([leaf.value for _, leaf in items])
        boxes = [self._hint_box(node, leaf) for node, leaf in items]
        pending = self._bounds_from(layer, nodes, boxes) > claimed
        if not pending.any():
            return
        retry = [nodes[i] for i in np.flatnonzero(pending)]
        wide = [node.box for node in retry]  # a bound over a larger box may be smaller
        best = self._bounds_from(layer, retry, wide)
        for node in retry:
            if not node.tight:
                self.tree.tighten(node)
        boxes = [node.box for node in retry]
        empty = np.array([self.tree.is_empty(node) for node in retry])
        for start in range(layer, -1, -1):
            best = np.minimum(best, self._bounds_from(start, retry, boxes))
            if np.all(empty | (best <= claimed[pending])):
                return
        worst = int(np.argmax(~empty & (best > claimed[pending])))
        leaf = items[int(np.flatnonzero(pending)[worst])][1]
        raise CertificateError(
            f"leaf {leaf.index} (closed at layer {layer}): its bound {leaf.value!r} is below "
            f"the checker's sound bound {float(best[worst])!r} of the norm over its piece "
            "(a bound lowered, or a piece that is not the search's)")

    def _hint_box(self, node, leaf):
        """The search's box of the leaf, widened by 1e-12 relative, if the node (the
        leaf's piece) provably lies inside it (its box, or the box the node's rows give
        one at a time); else the node's box."""
        low, high = leaf.box
        low = low - 1e-12 * (1 + np.abs(low))
        high = high + 1e-12 * (1 + np.abs(high))
        for box in (node.box, self._one_cut_box(node)):
            if np.all(box[0] >= low) and np.all(box[1] <= high):
                return low, high
        return node.box

    @staticmethod
    def _one_cut_box(node):
        """The node's box shrunk by each of its rows in turn (rigorous)."""
        d = len(node.box[0])
        bounds = one_cut_bounds(np.vstack([np.eye(d), -np.eye(d)]), node.G, node.h, *node.box)
        return np.maximum(node.box[0], -bounds[d:]), np.minimum(node.box[1], bounds[:d])

    def _bounds_from(self, start, nodes, boxes):
        """Sound upper bounds of the objective over each node (inside its box in
        ``boxes``) and every completion of its pattern, from layer ``start``'s
        pre-activation maps on (the units the node fixes at ``start`` and later have their
        slopes fixed)."""
        maps = [node.maps[start] for node in nodes]
        A = np.array([m.A for m in maps])
        c = np.array([m.c for m in maps])
        E = np.array([m.E for m in maps])
        low = np.array([box[0] for box in boxes])
        high = np.array([box[1] for box in boxes])
        eps = np.array([m.slack(np.maximum(np.abs(lo), np.abs(hi)))
                        for m, lo, hi in zip(maps, low, high)])
        slopes = self._slopes(start, nodes, A, c, eps, low, high)
        T_mid, T_rad = self._tail_jacobian(start, slopes)
        J_mid, J_rad = interval_product(T_mid, T_rad, A, E)
        direct = norm_upper(J_mid, J_rad, self.norm, self.direction)
        chained = upward(norm_upper(T_mid, T_rad, self.norm, None)
                         * norm_upper(A, E, self.norm, self.direction))
        return np.minimum(direct, chained)

    def _slopes(self, start, nodes, A, c, eps, low, high):
        """Per hidden layer from ``start`` on, ``(s_lo, s_hi)`` (items, units): each unit's
        derivative interval over the boxes, fixed where the node decides the unit."""
        network, slopes = self.network, []
        for k in range(start, len(self.relu)):
            lo, hi = self._pre_bounds(start, k, A, c, eps, low, high)
            relu = self.relu[k]
            s_lo = np.where(relu, lo > 0, 1.0)
            s_hi = np.where(relu, hi > 0, 1.0)
            first, units = self.tree.offsets[k], network.layers[k].relu_units
            for i, node in enumerate(nodes):
                fixed = self._fixed(node, k)
                bits = node.pattern[first:first + len(units)][fixed]
                s_lo[i, units[fixed]] = s_hi[i, units[fixed]] = bits
            slopes.append((s_lo, s_hi))
        return slopes

    def _fixed(self, node, k):
        """Which ReLU units of hidden layer ``k`` get their slope from the node's pattern:
        all of an earlier layer; of the node's own layer, those it was split on (as the
        search fixes the units its piece was cut by: the l2 bound is not monotone in the
        slopes, so fixing more could make it larger)."""
        first, size = self.tree.offsets[k], self.network.slot_sizes[k]
        if k < node.layer:
            return np.ones(size, dtype=bool)
        fixed = np.zeros(size, dtype=bool)
        if k == node.layer and node.cut:
            fixed[np.array(node.cut) - first] = True
        return fixed

    def _pre_bounds(self, start, k, A, c, eps, low, high):
        """Rigorous bounds of hidden layer ``k``'s pre-activations over the boxes, from layer
        ``start``'s maps ``A x + c`` (error ``eps``): directly at ``start``, later by the
        back-substitution of :func:`polyrelu.certify.rigorous.tail_bounds_batch`."""
        if k == start:
            top = np.array([upper_over_box(a, lo, hi) for a, lo, hi in zip(A, low, high)])
            bottom = -np.array([upper_over_box(-a, lo, hi) for a, lo, hi in zip(A, low, high)])
            return narrowed(bottom + c, eps), widened(top + c, eps)
        n = self.network.layers[k].n_z
        rows = np.broadcast_to(np.vstack([np.eye(n), -np.eye(n)]), (len(A), 2 * n, n))
        bounds = tail_bounds_batch(A, c, eps, self.network.layers[start:k + 1], low, high, rows)
        return bounds[:, :n], -bounds[:, n:]

    def _tail_jacobian(self, start, slopes):
        """The interval ``[T_mid +- T_rad]`` (items, k, units of layer ``start``) holding
        ``C`` times the Jacobian of the layers from ``start``'s pre-activations to the
        output, for every slope in ``slopes`` (rounding errors included)."""
        layers = self.network.layers
        W = layers[-1].weight
        count = len(slopes[0][0])
        T_mid = np.broadcast_to(self.C @ W, (count,) + (len(self.C), W.shape[1]))
        T_rad = np.broadcast_to(dot_error(np.abs(self.C), np.abs(W), W.shape[0]), T_mid.shape)
        for k in range(len(layers) - 2, start - 1, -1):
            if k < len(layers) - 2:
                W = layers[k + 1].weight
                T_mid, T_rad = interval_product(T_mid, T_rad, W, np.zeros_like(W))
            T_mid, T_rad = times_slopes(T_mid, T_rad, *slopes[k - start])
        return T_mid, T_rad

    def _check_regions(self, items):
        """Each region's value is at most the claimed maximum: the rigorous float bound of
        ``C`` times its output map, or its exact bracket."""
        A = np.array([node.maps[-1].A for node, _ in items])
        E = np.array([node.maps[-1].E for node, _ in items])
        count = len(items)
        C = np.broadcast_to(self.C, (count,) + self.C.shape)
        mid, rad = interval_product(C, np.zeros_like(C), A, E)
        values = norm_upper(mid, rad, self.norm, self.direction)
        for i in np.flatnonzero(values > self.upper):
            node, leaf = items[i]
            exact = exact_value_bracket(self.network, node.pattern, self.C, self.norm,
                                        self.direction)[1]
            if exact > self.upper:
                raise CertificateError(f"leaf {leaf.index}: a region's value {exact!r} is "
                                       f"above the claimed maximum {self.upper!r}")


def _check_witness(network, c):
    """The witness is in the box, has the claimed pattern exactly, and its region's exact
    value is at least the claimed lower end."""
    witness = _floats(c.witness, (network.input_dim,), "witness")
    if np.any(witness < c.lower) or np.any(witness > c.upper):
        raise CertificateError("the witness is outside the box")
    pattern = network.activation_pattern(witness[None])[0]
    claimed = c.pattern
    if not (isinstance(claimed, np.ndarray) and claimed.dtype == np.uint8
            and np.array_equal(claimed, np.packbits(pattern))):
        raise CertificateError("the witness does not have the claimed maximising pattern")
    if not exact_pattern(network, witness, pattern):
        raise CertificateError("the witness lies on a boundary of its region (its pattern "
                               "does not hold exactly there)")
    low = exact_value_bracket(network, pattern, c.functional, c.norm, c.direction)[0]
    if low < c.lower_value:
        raise CertificateError(f"the witness's region has value {low!r}, below the claimed "
                               f"maximum {c.lower_value!r}")

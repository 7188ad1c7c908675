"""A second, independent enumerator: layer-wise splitting (star-set style).

Start from the domain. For each hidden layer in turn, every piece is split by every
neuron of that layer whose sign is not fixed on it: interval bounds over the
piece's bounding box settle most neurons, two LPs (min and max of the
pre-activation) the rest. Pieces thinner than the radius tolerance are dropped as
soon as they appear (their sub-pieces would be thinner still). The leaves are the
regions. Nothing here walks the adjacency graph, so the result is an independent
check of :func:`polyrelu.enumerate_regions` (see :func:`polyrelu.cross_check`).
"""

import time
from dataclasses import dataclass

import networkx as nx
import numpy as np

from .bounds import neuron_status
from .domain import check_input_dimension
from .lp import LPSolver
from .options import Options
from .polytope import HPolytope, minimal_representation
from .progress import progress_bar
from .region import Region, RegionComplex

__all__ = ["enumerate_by_splitting", "count_regions", "iter_leaves", "Leaf"]


@dataclass
class Leaf:
    """A piece of the domain: ``{x : A x <= b}`` (unit rows) with a partial pattern."""

    A: np.ndarray
    b: np.ndarray
    sources: np.ndarray
    pattern: np.ndarray
    center: np.ndarray
    radius: float
    box: tuple = None  # a bounding box (low, high), possibly loose (the parent's)


def enumerate_by_splitting(network, domain, *, options=None, progress=False):
    """Every activation region of ``network`` over ``domain``, by layer-wise splitting.

    Returns a :class:`RegionComplex` with the same regions (pattern, minimal
    H-polytope, interior point, affine map) as :func:`polyrelu.enumerate_regions`;
    its graph has the regions as nodes and no edges (this enumerator does not
    compute adjacency). Facets are found with LPs unless ``options.facet_method``
    says "qhull".

    Examples
    --------
    >>> from polyrelu import Network, Domain
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> len(enumerate_by_splitting(absolute, Domain.box([-1], [1])))
    2
    """
    options = options or Options(facet_method="lp")
    start = time.perf_counter()
    solver = LPSolver(options)
    min_radius = options.min_radius_rel * domain.diameter
    regions = []
    bar = progress_bar(progress, "splitting")
    for leaf in iter_leaves(network, domain, options=options, solver=solver):
        facets = minimal_representation(leaf.A, leaf.b, leaf.center, min_radius=min_radius,
                                        solver=solver, use_qhull=options.use_qhull(domain.dim))
        rows = facets.rows
        maps = network.affine_maps(leaf.pattern)
        regions.append(Region(len(regions), np.packbits(leaf.pattern), network.num_hidden,
                              HPolytope(leaf.A[rows], leaf.b[rows], leaf.sources[rows]),
                              leaf.center, leaf.radius, maps.W_eff, maps.b_eff))
        bar.update(1)
    bar.close()
    graph = nx.Graph()
    graph.add_nodes_from(range(len(regions)))
    stats = {"lps": solver.count, "seconds": time.perf_counter() - start,
             "regions": len(regions), "enumerator": "splitting", "graph": "not computed"}
    status = neuron_status(network, domain, options)
    return RegionComplex(network, domain, regions, graph, stats, status.zero_tol)


def count_regions(network, domain, *, options=None, progress=False):
    """Number of activation regions, by layer-wise splitting without computing facets.

    Returns ``(count, stats)`` with ``stats`` holding ``lps`` and ``seconds``.
    """
    options = options or Options()
    start = time.perf_counter()
    solver = LPSolver(options)
    bar = progress_bar(progress, "splitting")
    count = 0
    for _ in iter_leaves(network, domain, options=options, solver=solver):
        count += 1
        bar.update(1)
    bar.close()
    return count, {"lps": solver.count, "seconds": time.perf_counter() - start}


def iter_leaves(network, domain, *, options=None, solver=None):
    """Yield every region as a :class:`Leaf` (depth first), without facet computation."""
    check_input_dimension(network, domain)
    options = options or Options()
    splitter = LayerSplitter(network, domain, options, solver or LPSolver(options))
    stack = [(splitter.root(), 0)]
    layers = len(network.hidden_sizes)
    while stack:
        leaf, layer = stack.pop()
        if layer == layers:
            yield leaf
            continue
        children = splitter.split_layer(leaf, layer)
        stack.extend((child, layer + 1) for child in reversed(children))


class LayerSplitter:
    """Splits pieces of ``domain`` by the neurons of one hidden layer at a time (the step
    :func:`iter_leaves` repeats; also used by :mod:`polyrelu.verify`)."""

    def __init__(self, network, domain, options, solver):
        self.network, self.domain, self.solver = network, domain, solver
        self.status = neuron_status(network, domain, options)
        self.unstable = np.zeros(network.num_hidden, dtype=bool)
        self.unstable[self.status.unstable] = True
        self.min_radius = options.min_radius_rel * domain.diameter
        self.bounds = np.cumsum((0,) + network.hidden_sizes)

    def root(self):
        """The whole domain as a :class:`Leaf` (no neuron decided yet)."""
        domain = self.domain
        return Leaf(domain.A, domain.b, -1 - np.arange(len(domain.b)),
                    np.zeros(self.network.num_hidden, dtype=bool), domain.center, domain.radius)

    def split_layer(self, leaf, layer, box=None):
        """All sub-pieces of ``leaf`` cut by the neurons of hidden layer ``layer``.

        Neurons are first settled by interval bounds over a bounding box of the leaf:
        ``box`` if given, else the (looser) box inherited from its parent; the leaf's
        own box is computed (2d LPs) only when the inherited one leaves a neuron open.
        """
        maps = self.network.affine_maps(leaf.pattern)
        tight = box is not None or leaf.box is None
        if box is None:
            box = self._bounding_box(leaf) if leaf.box is None else leaf.box
        leaf.box = box
        pieces = [leaf]
        for j in range(self.bounds[layer], self.bounds[layer + 1]):
            a, c = maps.pre_A[j], maps.pre_c[j]
            state = self._settled(j, a, c, box)
            if state is None and not tight:
                box, tight = self._bounding_box(leaf), True
                for piece in pieces:
                    piece.box = box
                state = self._settled(j, a, c, box)
            if state is None:
                pieces = [child for piece in pieces for child in self._split(piece, j, a, c)]
            elif state != "zero":
                for piece in pieces:
                    piece.pattern[j] = state
        return pieces

    def _settled(self, j, a, c, box):
        """Neuron j's state on a piece inside ``box``: True/False, "zero" (identically zero:
        canonically inactive) or None (the box does not settle it)."""
        low, high = box
        half, mid = (high - low) / 2, (high + low) / 2
        size = np.abs(a) @ half
        centre_value = a @ mid + c
        if size + abs(centre_value) <= self.status.zero_tol[j]:
            return "zero"
        if not self.unstable[j]:
            return bool(self.status.always_active[j])
        if np.linalg.norm(a) * self.domain.diameter <= self.status.zero_tol[j]:
            return bool(c > 0)  # constant on the domain
        if abs(centre_value) - size > self.status.zero_tol[j]:
            # settled by the interval bound on the box, clear of the "identically zero" case
            return bool(centre_value > 0)
        return None

    def _split(self, piece, j, a, c):
        """``piece`` cut by neuron j's hyperplane ``a x + c = 0``: one or two full pieces."""
        norm = np.linalg.norm(a)
        unit, offset = a / norm, c / norm
        upper = self.solver.maximize_warm(unit, piece.A, piece.b)
        lower = self.solver.maximize_warm(-unit, piece.A, piece.b)
        if upper.status != "optimal" or lower.status != "optimal":
            return []
        reach_positive = upper.value + offset
        reach_negative = lower.value - offset
        if reach_negative <= 0:
            return [_child(piece, j, True, None)]
        if reach_positive <= 0:
            return [_child(piece, j, False, None)]
        children = []
        for active, row, rhs in ((True, -unit, offset), (False, unit, -offset)):
            A = np.vstack([piece.A, row])
            b = np.append(piece.b, rhs)
            center, radius = self.solver.chebyshev_ball(A, b)
            if center is not None and radius > self.min_radius:
                children.append(_child(piece, j, active, (A, b, center, radius)))
        return children

    def _bounding_box(self, leaf):
        d = self.domain.dim
        if leaf.A is self.domain.A:
            return self.domain.lower, self.domain.upper
        low, high = np.empty(d), np.empty(d)
        for k in range(d):
            e = np.zeros(d)
            e[k] = 1.0
            high[k] = self.solver.maximize_warm(e, leaf.A, leaf.b).value
            low[k] = -self.solver.maximize_warm(-e, leaf.A, leaf.b).value
        return low, high


def _with_bit(pattern, j, state):
    """A copy of ``pattern`` with bit ``j`` set to ``state``."""
    pattern = pattern.copy()
    pattern[j] = state
    return pattern


def _child(piece, j, active, cut):
    if cut is None:
        return Leaf(piece.A, piece.b, piece.sources, _with_bit(piece.pattern, j, active),
                    piece.center, piece.radius, piece.box)
    A, b, center, radius = cut
    return Leaf(A, b, np.append(piece.sources, j), _with_bit(piece.pattern, j, active),
                center, radius, piece.box)

"""A second, independent enumerator: layer-wise splitting (star-set style).

Start from the domain. For each hidden layer in turn, every piece is cut by every
neuron of that layer whose hyperplane crosses it. Each piece carries a bounding box
and witness points (points of the piece, the first one as deep inside as known).
Deciding a neuron on a piece goes from cheap to exact:

1. interval bounds of its pre-activation over the box;
2. the witnesses: one strictly on each side proves both sides have interior;
3. when all witnesses lie on one side, an exact bound of the other side over the box
   intersected with one cut at a time (a Lagrangian bound, no LP), then a ray from
   the witnesses along the gradient (it may reach the other side);
4. only then one LP for that side: its Chebyshev ball, whose centre becomes a new
   witness. A side no wider than the radius tolerance holds no region.

Every pending neuron is decided on the whole piece before the piece is cut, so a
neuron that misses it is decided once. A leaf counts as a region when a witness
(or their mean) lies deeper inside it than the radius tolerance, otherwise by its
Chebyshev-ball LP. Nothing here walks the adjacency graph, so the result is an
independent check of :func:`polyrelu.enumerate_regions` (see
:func:`polyrelu.cross_check`).
"""

import copy
import time
from dataclasses import dataclass

import networkx as nx
import numpy as np

from ..geometry.domain import check_input_dimension
from ..geometry.interval import neuron_status
from ..geometry.lp import LPSolver
from ..geometry.polytope import HPolytope, minimal_representation
from ..options import Options
from ..progress import progress_bar
from .batch_splitting import (
    _ACTIVE,
    _CROSSING,
    _EMPTY,
    _INACTIVE,
    _KEEP_ACTIVE,
    _UNDECIDED,
    SplitterBase,
    contract,
    count_by_batches,
    cut_bound,
    needed_cuts,
    ray,
    tighten,
    toward,
)
from .region import Region, RegionComplex

__all__ = ["enumerate_by_splitting", "count_regions", "iter_leaves", "Leaf"]


@dataclass
class Leaf:
    """A piece of the domain: ``{x : A x <= b}`` (unit rows) with a partial pattern.

    ``points`` are points of the piece (witnesses; the first one the deepest inside it,
    as far as known), ``box`` a bounding box (possibly
    loose), ``map_A x + map_c`` the input of the next hidden layer on the piece;
    ``center`` and ``radius`` (its Chebyshev ball) are set once it is a region.
    """

    A: np.ndarray
    b: np.ndarray
    sources: np.ndarray
    pattern: np.ndarray
    points: np.ndarray
    box: tuple
    map_A: np.ndarray
    map_c: np.ndarray
    center: np.ndarray = None
    radius: float = None
    cuts: tuple = None  # the rows the box does not imply, (H, beta): set when first needed


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
    for leaf in iter_leaves(network, domain, options=options, solver=solver, exact_balls=True):
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


def count_regions(network, domain, *, options=None, progress=False, chunk=1024):
    """Number of activation regions, by layer-wise splitting without computing facets.

    The pieces are split many at a time (at most ``chunk``; see
    :mod:`polyrelu.regions.batch_splitting`): the same regions as :func:`iter_leaves` yields,
    counted. Returns ``(count, stats)`` with ``stats`` holding ``lps`` and ``seconds``.

    Examples
    --------
    >>> from polyrelu import Network, Domain
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> count_regions(absolute, Domain.box([-1], [1]))[0]
    2
    """
    check_input_dimension(network, domain)
    options = options or Options()
    start = time.perf_counter()
    solver = LPSolver(options)
    bar = progress_bar(progress, "splitting")
    count = count_by_batches(network, domain, options, solver, chunk=chunk, progress=bar)
    bar.close()
    return count, {"lps": solver.count, "seconds": time.perf_counter() - start}


def iter_leaves(network, domain, *, options=None, solver=None, exact_balls=False):
    """Yield every region as a :class:`Leaf` (depth first), without facet computation.

    Pieces thinner than the radius tolerance are not yielded. Each leaf's ``center``
    is an interior point at distance ``radius`` (> the tolerance) from its boundary:
    its Chebyshev ball with ``exact_balls=True``, otherwise possibly a smaller ball
    (a witness point that already proves the leaf thick enough, saving an LP).
    """
    check_input_dimension(network, domain)
    options = options or Options()
    splitter = LayerSplitter(network, domain, options, solver or LPSolver(options))
    stack = [(splitter.root(), 0)]
    layers = len(network.hidden_sizes)
    while stack:
        leaf, layer = stack.pop()
        if layer == layers:
            if splitter.finish(leaf, exact=exact_balls):
                yield leaf
            continue
        children = splitter.split_layer(leaf, layer)
        stack.extend((child, layer + 1) for child in reversed(children))


class LayerSplitter(SplitterBase):
    """Splits pieces of ``domain`` by the neurons of one hidden layer at a time (the step
    :func:`iter_leaves` repeats; also used by :mod:`polyrelu.verification.search`).

    A neuron's sign on a piece is decided cheapest first (see the module docstring):
    interval bounds over the piece's box, its witness points, a box-and-one-cut
    bound, a ray along the gradient, and only then one LP per side no witness
    reaches (that side's Chebyshev ball, whose centre becomes a witness).
    """

    def root(self):
        """The whole domain as a :class:`Leaf` (no neuron decided yet)."""
        domain, d = self.domain, self.domain.dim
        return Leaf(domain.A, domain.b, -1 - np.arange(len(domain.b)),
                    np.zeros(self.network.num_hidden, dtype=bool), self.domain_witnesses(),
                    (domain.lower, domain.upper), np.eye(d), np.zeros(d))

    def split_layer(self, leaf, layer, box=None):
        """All pieces of ``leaf`` cut by the neurons of hidden layer ``layer``.

        ``box``, if given, is a bounding box of ``leaf`` (it tightens the one the leaf
        carries). Every piece returned has interior; whether it is wider than the
        radius tolerance is settled on the leaves, by :meth:`finish`.
        """
        low, high = leaf.box if box is None else box
        low, high = tighten(np.maximum(leaf.box[0], low)[None],
                            np.minimum(leaf.box[1], high)[None], leaf.A[None], leaf.b[None])
        leaf.box = (low[0], high[0])
        start, stop = self.bounds[layer], self.bounds[layer + 1]
        weights, bias = self.network.weights[layer], self.network.biases[layer]
        pre_A, pre_c = weights @ leaf.map_A, weights @ leaf.map_c + bias
        state = self.settle(slice(start, stop), pre_A[None], pre_c[None], leaf.box[0][None],
                            leaf.box[1][None])[0]
        pattern = leaf.pattern.copy()
        pattern[start:stop] = state == _ACTIVE
        top = copy.copy(leaf)
        top.pattern, top.cuts = pattern, None
        pieces, stack = [], [(top, np.flatnonzero(state == _UNDECIDED))]
        while stack:  # depth first, so that consecutive LPs share most of their rows
            piece, pending = stack.pop()
            crossing = []
            for i in pending:  # settle on the whole piece what can be settled, then cut
                piece, verdict = self._decide(piece, start + i, pre_A[i], pre_c[i])
                if verdict == _EMPTY:
                    break
                if verdict == _CROSSING:
                    crossing.append(i)
            else:
                if crossing:
                    i = crossing[0]
                    children = self._cut(piece, start + i, pre_A[i], pre_c[i])
                    stack.extend((child, crossing[1:]) for child in reversed(children))
                else:
                    mask = piece.pattern[start:stop]
                    piece.map_A, piece.map_c = pre_A * mask[:, None], pre_c * mask
                    pieces.append(piece)
        return pieces

    def finish(self, leaf, exact=False):
        """Whether ``leaf`` is a region (wider than the radius tolerance); if so, set its
        ``center`` and ``radius``: its Chebyshev ball when ``exact``, else the ball
        around its deepest witness point (or their mean) when that is wide enough."""
        if not exact and len(leaf.points):
            candidates = np.vstack([leaf.points, leaf.points.mean(axis=0)])
            depth = (leaf.b - candidates @ leaf.A.T).min(axis=1)
            best = int(np.argmax(depth))
            if depth[best] > self.min_radius:
                leaf.center, leaf.radius = candidates[best], float(depth[best])
                return True
        center, radius = self.solver.chebyshev_ball(leaf.A, leaf.b)
        if center is None or radius <= self.min_radius:
            return False
        leaf.center, leaf.radius = center, radius
        return True

    def _decide(self, piece, j, a, c):
        """Whether neuron j's hyperplane ``a x + c = 0`` cuts ``piece``: returns ``(piece,
        verdict)``, verdict _CROSSING (then ``piece`` holds witnesses on both sides),
        _ACTIVE or _INACTIVE (settled: the state is written into the pattern; a side too
        thin to hold a region is cut off, giving a new piece) or _EMPTY (no region)."""
        tol = self.status.zero_tol[j]
        low, high = piece.box
        size, centre = np.abs(a) @ ((high - low) / 2), a @ ((high + low) / 2) + c
        if size + abs(centre) <= tol or abs(centre) - size > tol:
            return self._settled(piece, j, abs(centre) - size > tol and centre > 0)
        values = piece.points @ a + c
        top, bottom = values.max(), values.min()
        for sign in (1.0, -1.0):  # one side unreached: bound it, then look along the gradient
            reached, other = (top > tol, bottom < -tol) if sign > 0 else (bottom < -tol, top > tol)
            if reached or not other:
                continue
            if cut_bound(sign * a[None], low, high, *self._cuts(piece))[0] + sign * c < -tol:
                return self._settled(piece, j, sign < 0)  # that side is empty
            point, gain = ray(piece.A[None], piece.b[None], piece.points[None],
                              np.ones((1, len(values)), dtype=bool), values[None],
                              sign * a[None], sign)
            if gain[0] > tol:
                piece.points = np.vstack([piece.points, point])
                values = np.append(values, sign * gain[0])
                top, bottom = max(top, values[-1]), min(bottom, values[-1])
        norm = np.sqrt(a @ a)
        radius = [np.inf, np.inf]  # of the sides (active, inactive), where an LP measured it
        for k, (sign, reached) in enumerate(((1.0, top > tol), (-1.0, bottom < -tol))):
            if not reached:
                center, radius[k] = self.side_ball(*piece.box, *self._cuts(piece),
                                                   -sign * a / norm, sign * c / norm)
                if radius[k] > self.min_radius:
                    piece.points = np.vstack([piece.points, center])
                    values = np.append(values, center @ a + c)
        verdict = self.side_verdict(radius)
        if verdict in (_EMPTY, _CROSSING):
            return piece, verdict
        active = verdict in (_ACTIVE, _KEEP_ACTIVE)
        if verdict not in (_ACTIVE, _INACTIVE):  # the other side is too thin: cut it off
            sign = 1.0 if active else -1.0
            piece = self._child(piece, j, active, -sign * a / norm, sign * c / norm,
                                piece.points[sign * values > 0])
        return self._settled(piece, j, active)

    @staticmethod
    def _settled(piece, j, active):
        """``(piece, verdict)`` for neuron j settled ``active`` (written into the pattern)."""
        piece.pattern[j] = active
        return piece, (_ACTIVE if active else _INACTIVE)

    def _cut(self, piece, j, a, c):
        """The two sides of ``piece`` cut by neuron j's hyperplane ``a x + c = 0`` (which
        :meth:`_decide` found crossing it), each with its witnesses, the deepest first."""
        values = piece.points @ a + c
        norm = np.sqrt(a @ a)
        slack = (piece.b - piece.points @ piece.A.T).min(axis=1)
        children = []
        for active, sign in ((True, 1.0), (False, -1.0)):
            side = sign * values > 0
            depth = np.where(side, np.minimum(slack, sign * values / norm), -np.inf)
            points = piece.points[side]
            if not side[0]:  # the deepest witness on this side, or one towards it
                on_way = toward(piece.points[None], values[None],
                                np.ones((1, len(values)), dtype=bool), sign)[0]
                deepest = piece.points[np.argmax(depth)]
                way_depth = min((piece.b - piece.A @ on_way).min(), sign * (on_way @ a + c) / norm)
                points = np.vstack([on_way if way_depth > depth.max() else deepest, points])
            children.append(self._child(piece, j, active, -sign * a / norm, sign * c / norm,
                                        points))
        return children

    def _cuts(self, piece):
        """``(H, beta)``: the rows of ``piece`` its box does not imply, so that the piece
        is its box intersected with ``H x <= beta`` (cached on the piece)."""
        if piece.cuts is None:
            piece.cuts = needed_cuts(piece.A[self.first_cut:], piece.b[self.first_cut:],
                                     *piece.box)
        return piece.cuts

    @staticmethod
    def _child(piece, j, active, row, rhs, points):
        """The side ``active`` of ``piece`` cut by ``row x <= rhs``, with its witnesses."""
        pattern = piece.pattern.copy()
        pattern[j] = active
        return Leaf(np.vstack([piece.A, row]), np.append(piece.b, rhs),
                    np.append(piece.sources, j), pattern, points,
                    _contract(piece.box, row, rhs), piece.map_A, piece.map_c)


def _contract(box, row, rhs):
    """``box`` shrunk by the single constraint ``row x <= rhs`` (see :func:`contract`)."""
    low, high = contract(box[0][None], box[1][None], row[None], np.array([rhs]))
    return low[0], high[0]

"""Exact 2-D slices of input space: the planar partition of a plane into activation regions.

A *slice* is the plane ``x = origin + U t`` of input space (``U`` of shape (d, 2))
with ``t`` in a convex polygon (a box by default). On it the network is a
2-input network (:func:`plane_network`: the affine pre-map absorbed into the
first layer), and its activation regions are convex polygons in ``t``.

The planar algorithm needs no LP: start from the slice polygon and push it
through the network layer by layer (any network of :mod:`polyrelu.network.layers`).
Each piece carries the affine map from ``t`` to the current layer's input; every
pre-activation of the layer is affine on the piece, so the sign of a ReLU unit's at
the piece's vertices says whether it is active on all of it, inactive on all of it,
or cuts it along a line; a cutting unit splits the piece in two (exact half-plane
clipping of a convex polygon, the two halves sharing the cut's end points). Linear
units pass through. Then each max window splits the piece into its argmax cells,
pair by pair along the lines where two entries tie (the lower position wins on a
tie). Nothing is merged: the pieces are the activation regions of the slice, with
the engine's conventions:

- pattern: a ReLU slot is active where its pre-activation is > 0; a unit whose
  pre-activation is identically zero on a piece (below the per-slot
  ``zero_tol`` of :func:`polyrelu.geometry.interval.neuron_status` on the slice's bounding
  box) is inactive, and two window entries identically equal on a piece (within
  the same tolerance) are a tie won by the lower position, as in
  :meth:`Network.canonical_pattern`;
- thin pieces: a piece whose inradius is at most ``Options.min_radius_rel``
  times the diagonal of the slice's bounding box is a sliver inside the rounding
  error. Like the engine's thin regions it is dropped as soon as it appears
  (with its sub-pieces), and counted in ``stats["thin_pieces"]`` with its area
  in ``stats["thin_area"]``; the kept pieces' areas add up to the slice's area
  minus that.

The same regions come out of :func:`polyrelu.enumerate_regions` run on
:func:`plane_network` over the same polygon (the tests check it).
"""

import time
from dataclasses import dataclass

import networkx as nx
import numpy as np
import shapely
from shapely.geometry.polygon import orient

from ..deadline import Deadline
from ..errors import InvalidDomainError
from ..geometry.domain import Domain
from ..geometry.interval import neuron_status
from ..geometry.lp import LPSolver
from ..network.layers import LINEAR, Layer
from ..network.model import Network
from ..options import Options
from ..regions.region import pattern_key

__all__ = ["SlicePiece", "PlanarSlice", "plane_network", "slice_regions", "slice_through",
           "plane_through"]


@dataclass(frozen=True, eq=False)
class SlicePiece:
    """One activation region of a slice: a convex polygon in slice coordinates.

    Attributes
    ----------
    id : int
        Index in its :class:`PlanarSlice` (and node of its graph).
    polygon : shapely.Polygon
        The piece in slice coordinates ``t`` (counter-clockwise exterior).
    edge_sources : ndarray of int, shape (k,)
        Edge i (from vertex i to vertex i + 1) lies on the line of kink
        ``edge_sources[i]`` (``>= 0``: a ReLU slot below N, else N plus the index of a
        window pair, as in :meth:`Network.kink_rows`) or on edge ``f`` of the slice
        polygon (``-1 - f``).
    pattern : ndarray of bool, shape (N,)
        The (canonical) pattern: ReLU slots and window argmax one-hots.
    W_eff : ndarray, shape (m, 2);  b_eff : ndarray, shape (m,)
        On the piece the network computes ``W_eff @ t + b_eff``.
    """

    id: int
    polygon: shapely.Polygon
    edge_sources: np.ndarray
    pattern: np.ndarray
    W_eff: np.ndarray
    b_eff: np.ndarray

    @property
    def vertices(self):
        """Vertices, shape (k, 2), counter-clockwise, without repeating the first."""
        return np.asarray(self.polygon.exterior.coords)[:-1]

    def apply(self, t):
        """The piece's affine map at slice points of shape (n, 2): array (n, m)."""
        return np.atleast_2d(t) @ self.W_eff.T + self.b_eff


class PlanarSlice:
    """All activation regions of a 2-D slice, with their adjacency graph.

    Attributes
    ----------
    network : Network
        The network, on its own input space.
    origin : ndarray, shape (d,);  directions : ndarray, shape (d, 2)
        The slice is ``x = origin + directions @ t``.
    plane : Network
        The network on the slice: 2 inputs ``t`` (:func:`plane_network`).
    domain : shapely.Polygon
        The convex polygon of ``t`` that is sliced.
    pieces : list of SlicePiece
        ``pieces[i].id == i``.
    graph : networkx.Graph
        Nodes are piece ids; an edge joins two pieces sharing an edge of
        positive length, with attribute ``kink`` (whose line holds it: a ReLU slot
        ``k < N``, or ``N + p`` for the tie of ``plane.window_pairs[p]``).
    stats : dict
        ``seconds``, ``thin_pieces``, ``thin_area``, ``min_radius``.
    zero_tol : ndarray, shape (N,)
        Magnitude below which a pre-activation counts as identically zero.
    """

    def __init__(self, network, origin, directions, domain, pieces, graph, stats, zero_tol):
        self.network, self.origin, self.directions = network, origin, directions
        self.plane = plane_network(network, origin, directions)
        self.domain, self.pieces, self.graph = domain, list(pieces), graph
        self.stats, self.zero_tol = dict(stats), zero_tol
        self._index = {pattern_key(p.pattern): p.id for p in self.pieces}

    def __len__(self):
        return len(self.pieces)

    def __iter__(self):
        return iter(self.pieces)

    def __getitem__(self, index):
        return self.pieces[index]

    def __repr__(self):
        return f"<PlanarSlice: {len(self)} pieces of {self.network}>"

    def to_input(self, t):
        """Input-space points ``origin + directions @ t`` of slice points (n, 2): (n, d)."""
        return self.origin + np.atleast_2d(t) @ self.directions.T

    def coordinates(self, x):
        """Slice coordinates (n, 2) of input points (n, d): least squares, exact on the plane."""
        offsets = np.atleast_2d(np.asarray(x, dtype=np.float64)) - self.origin
        return np.linalg.lstsq(self.directions, offsets.T, rcond=None)[0].T

    def locate(self, t):
        """Piece id of each slice point (n, 2), from its activation pattern; -1 if none."""
        lower, upper = _bounding_box(self.domain)
        found = []
        for pattern in self.plane.activation_pattern(np.atleast_2d(t)):
            key = pattern_key(pattern)
            if key not in self._index:
                key = pattern_key(self.plane.canonical_pattern(
                    pattern, self.zero_tol, lower, upper)[0])
            found.append(self._index.get(key, -1))
        return np.array(found, dtype=np.int64)

    def crossed_pieces(self, start, end):
        """Ids of the pieces a segment crosses in positive length, in order along it.

        Examples
        --------
        >>> absolute = Network([[[1.0, 0.0], [-1.0, 0.0]], [[1.0, 1.0]]], [[0, 0], [0]])
        >>> plane = slice_regions(absolute, [0, 0], np.eye(2), ([-1, -1], [1, 1]))
        >>> across = plane.crossed_pieces([-1, 0], [1, 0])
        >>> len(across), len(plane.crossed_pieces([0.5, -1], [0.5, 1]))
        (2, 1)
        """
        start, end = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
        segment = shapely.LineString([start, end])
        candidates = shapely.STRtree([p.polygon for p in self.pieces]).query(segment)
        crossed = []
        for index in candidates:
            part = self.pieces[index].polygon.intersection(segment)
            if part.length > 2 * self.stats["min_radius"]:
                middle = np.asarray(part.centroid.coords[0])
                crossed.append((float((middle - start) @ (end - start)), int(index)))
        return [index for _, index in sorted(crossed)]

    def area(self):
        """Total area of the pieces (the slice's area minus ``stats["thin_area"]``)."""
        return float(sum(p.polygon.area for p in self.pieces))


def plane_network(network, origin, directions):
    """The network restricted to the affine subspace ``x = origin + directions @ t``.

    Returns a :class:`Network` with ``directions.shape[1]`` inputs: the pre-map is
    absorbed into the first layer (``W_0 U`` and ``W_0 x_0 + b_0``), which keeps its units,
    kept entries and windows; the other layers are the network's own.

    Examples
    --------
    >>> net = Network([[[1.0, 2.0]], [[1.0]]], [[0.5], [0.0]])
    >>> plane = plane_network(net, [1.0, 0.0], [[0.0], [1.0]])
    >>> plane.forward([[2.0]]).tolist()
    [[5.5]]
    """
    origin = np.asarray(origin, dtype=np.float64)
    directions = np.asarray(directions, dtype=np.float64)
    first = network.layers[0]
    composed = Layer.build(first.weight @ directions, first.weight @ origin + first.bias,
                           units=first.units, keep=first.keep, windows=first.windows,
                           names=first.names, window_names=first.window_names)
    return Network.from_layers([composed, *network.layers[1:]])


def slice_regions(network, origin, directions, bounds, *, options=None, deadline=None):
    """Every activation region of ``network`` on the plane ``x = origin + directions @ t``.

    Parameters
    ----------
    network : Network
    origin : array_like, shape (d,)
    directions : array_like, shape (d, 2)
        Two linearly independent directions (orthonormal ones keep areas and
        angles of input space).
    bounds : (lower, upper) pair of 2-vectors, or a convex shapely Polygon
        The region of ``t`` to slice: the box ``lower <= t <= upper`` or the polygon.
    deadline : Deadline, optional
        Checked per polygon cut (:class:`TimeLimitError` on expiry).
    options : Options, optional
        ``min_radius_rel`` and ``zero_rel`` as in :func:`polyrelu.enumerate_regions`.

    Returns
    -------
    PlanarSlice

    The 1-D slice of a segment from ``a`` to ``b`` is
    ``polyrelu.path_pieces(network, polyrelu.Segment(a, b))`` (:mod:`polyrelu.analysis.paths`).

    Raises
    ------
    InvalidDomainError
        If the shapes do not match the network, the directions are dependent,
        or the bounds are empty, degenerate or not convex.

    Examples
    --------
    >>> absolute = Network([[[1.0, 0.0], [-1.0, 0.0]], [[1.0, 1.0]]], [[0, 0], [0]])
    >>> plane = slice_regions(absolute, [0, 0], np.eye(2), ([-1, -1], [1, 1]))
    >>> len(plane), plane.graph.number_of_edges(), plane.area()
    (2, 1, 4.0)
    >>> right = plane[plane.locate([[0.5, 0.0]])[0]]
    >>> right.pattern.tolist(), right.apply([[0.5, 0.0]]).tolist()
    ([True, False], [[0.5]])
    """
    start = time.perf_counter()
    options = options or Options()
    origin, directions = _check_plane(network, origin, directions)
    polygon, sources = _slice_polygon(bounds)
    plane = plane_network(network, origin, directions)
    lower, upper = _bounding_box(polygon)
    box = Domain.box(lower, upper)
    zero_tol = neuron_status(plane, box, options).zero_tol
    splitter = _Splitter(plane, zero_tol, options.min_radius_rel * box.diameter,
                         LPSolver(options), deadline or Deadline(None))
    leaves = splitter.run(np.asarray(polygon.exterior.coords)[:-1], sources)
    pieces = []
    for vertices, edge_sources, pattern, M, m in leaves:
        W, b = plane.weights[-1], plane.biases[-1]
        pieces.append(SlicePiece(len(pieces), shapely.Polygon(vertices), edge_sources,
                                 pattern, W @ M, W @ m + b))
    graph = _adjacency(pieces, splitter.min_radius)
    stats = {"seconds": time.perf_counter() - start, "pieces": len(pieces),
             "thin_pieces": splitter.thin, "thin_area": splitter.thin_area,
             "min_radius": splitter.min_radius, "lps": splitter.solver.count}
    return PlanarSlice(network, origin, directions, polygon, pieces, graph, stats, zero_tol)


def slice_through(network, points, *, margin=0.25, options=None):
    """The slice through three input points, in an orthonormal frame of their plane.

    The frame and the sliced box are :func:`plane_through`'s.
    ``PlanarSlice.coordinates(points)`` gives the points' slice coordinates (for
    marking them in a picture).

    Raises
    ------
    InvalidDomainError
        If there are not three points of the network's input dimension, or they
        are (nearly) collinear.

    Examples
    --------
    >>> net = Network([[[1.0, 0, 0], [0, 1.0, 0]], [[1.0, 1.0]]], [[0, 0], [0]])
    >>> plane = slice_through(net, [[0, 0, 5], [1, 0, 5], [0, 1, 5]], margin=1.0)
    >>> len(plane), np.round(plane.coordinates([[1, 0, 5]]), 12).tolist()
    (4, [[1.0, 0.0]])
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape != (3, network.input_dim):
        raise InvalidDomainError(
            f"expected three points of dimension {network.input_dim}, got shape {points.shape}")
    origin, directions, box = plane_through(points, margin=margin)
    return slice_regions(network, origin, directions, box, options=options)


def plane_through(points, *, margin=0.25):
    """Origin, orthonormal directions and slice box of the plane through three points.

    The origin is ``points[0]``; the first direction points to ``points[1]``; the
    box is the points' bounding box in that frame, widened on each side by
    ``margin`` times its larger side. Returns ``(origin, directions, (lower, upper))``.

    Examples
    --------
    >>> origin, U, (low, high) = plane_through([[0, 0, 1], [2, 0, 1], [0, 1, 1]], margin=0)
    >>> np.abs(U.T).tolist(), low.tolist(), high.tolist()
    ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [0.0, 0.0], [2.0, 1.0])
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] != 3:
        raise InvalidDomainError(f"expected three points, got an array of shape {points.shape}")
    spans = (points[1:] - points[0]).T
    basis, triangular = np.linalg.qr(spans)
    scale = max(np.linalg.norm(spans, axis=0).max(), np.finfo(float).tiny)
    if not np.all(np.isfinite(points)) or np.abs(np.diag(triangular)).min() <= 1e-9 * scale:
        raise InvalidDomainError("the three points are (nearly) collinear or not finite: "
                                 "they do not span a plane")
    basis = basis * np.sign(np.diag(triangular))
    coords = (points - points[0]) @ basis
    low, high = coords.min(axis=0), coords.max(axis=0)
    pad = margin * (high - low).max()
    return points[0], basis, (low - pad, high + pad)


# -- the planar splitting -------------------------------------------------------------------

class _Splitter:
    """Layer-by-layer splitting of convex polygons by the kinks' lines: first by each ReLU
    unit's line, then each max window into its argmax cells."""

    def __init__(self, plane, zero_tol, min_radius, solver, deadline):
        self.plane, self.zero_tol, self.min_radius = plane, zero_tol, min_radius
        self.deadline = deadline
        self.offsets = np.concatenate([[0], np.cumsum(plane.slot_sizes)]).astype(int)
        self.pair_offsets = np.concatenate([[0], np.cumsum(
            [_window_pairs(layer)[0].size * layer.windows.shape[0]
             for layer in plane.layers[:-1]])]).astype(int)
        self.solver = solver
        self.thin, self.thin_area = 0, 0.0

    def run(self, vertices, sources):
        """The leaves: (vertices, edge sources, pattern, M, m), layer input ``M t + m``."""
        pieces = [(vertices, sources, np.zeros(self.plane.num_hidden, dtype=bool),
                   np.eye(2), np.zeros(2))]
        for index, layer in enumerate(self.plane.layers[:-1]):
            pieces = [child for piece in pieces
                      for child in self._split_layer(piece, index, layer)]
        return pieces

    def _split_layer(self, piece, index, layer):
        """One piece cut by a layer's kinks; each child with the layer's output map."""
        vertices, sources, pattern, M, m = piece
        A, c = layer.weight @ M, layer.weight @ m + layer.bias
        first = self.offsets[index]
        relu = layer.relu_units
        parts = self._split_relu((vertices, sources, pattern), A[relu], c[relu], first, index)
        if layer.windows.shape[0]:
            parts = [child for part in parts
                     for child in self._split_windows(part, layer, index, A, c)]
        slots = slice(first, self.offsets[index + 1])
        return [(v, s, p, *_select_rows(A, c, layer.sources(p[slots]))) for v, s, p in parts]

    def _split_relu(self, part, A, c, first, index):
        """Cut by every ReLU unit's line (pre-activations ``A t + c``); slots from ``first``."""
        vertices, sources, pattern = part
        done = []
        stack = [(vertices, sources, pattern.copy(), np.arange(len(c)))]
        while stack:
            self.deadline.check(f"slice (layer {index})")
            vertices, sources, pattern, candidates = stack.pop()
            values = vertices @ A[candidates].T + c[candidates]
            zero = np.abs(values).max(axis=0) <= self.zero_tol[first + candidates]
            pattern[first + candidates] = (values.min(axis=0) >= 0) & ~zero
            cutting = candidates[~zero & (values.min(axis=0) < 0) & (values.max(axis=0) > 0)]
            if not cutting.size:
                done.append((vertices, sources, pattern))
                continue
            j = cutting[0]
            column = np.flatnonzero(candidates == j)[0]
            for active, (child, child_sources) in zip(
                    (True, False), _cut(vertices, sources, values[:, column], first + j)):
                if not self._is_thin(child):
                    child_pattern = pattern.copy()
                    child_pattern[first + j] = active
                    stack.append((child, child_sources, child_pattern, cutting[1:]))
        return done

    def _split_windows(self, part, layer, index, A, c):
        """Cut a piece into the argmax cells of every max window of ``layer``.

        On a piece, a window position is *dominated* when another one is at least as
        large at every vertex (values within the slots' ``zero_tol`` of each other
        everywhere are tied, and the lower position wins a tie). A window with one
        undominated position is decided; otherwise the piece is clipped into the cells
        ``{u_p >= u_q}`` of each undominated position ``p`` (convex, one per position
        that wins somewhere), and the next window is cut within each cell.
        """
        vertices, sources, pattern = part
        relu = layer.relu_units
        first = self.offsets[index] + relu.size
        n, k = layer.windows.shape
        active = layer.units == LINEAR
        active[relu] = pattern[self.offsets[index]:first]
        uA, uc = A * active[:, None], c * active
        state = np.where(layer.units == LINEAR, 0, np.where(active, 1, -1))
        window = _WindowGeometry(layer, uA, uc, self.zero_tol[first:first + n * k], state)
        kink_base = self.plane.num_hidden + self.pair_offsets[index]
        done = []
        stack = [(vertices, sources, pattern.copy(), np.arange(n))]
        while stack:
            self.deadline.check(f"slice (layer {index}, max windows)")
            vertices, sources, pattern, open_ = stack.pop()
            winners = window.undominated(vertices, open_)
            settled = winners.sum(axis=1) == 1
            slots = first + (open_[settled, None] * k + np.arange(k))
            pattern[slots] = winners[settled]
            open_, winners = open_[~settled], winners[~settled]
            if not open_.size:
                done.append((vertices, sources, pattern))
                continue
            w, rest = open_[0], open_[1:]
            for p in np.flatnonzero(winners[0]):
                cell = self._cell(vertices, sources, window, w, p, winners[0], kink_base)
                if cell is not None:
                    cell_pattern = pattern.copy()
                    cell_pattern[first + w * k:first + (w + 1) * k] = np.arange(k) == p
                    stack.append((*cell, cell_pattern, rest))
        return done

    def _cell(self, vertices, sources, window, w, p, rivals, kink_base):
        """The part of a piece where position ``p`` of window ``w`` is at least every other
        position in ``rivals``: ``(vertices, sources)``, or None if empty or thin (decided
        on the whole cell, so an empty cell is not counted as a thin piece)."""
        for q in np.flatnonzero(rivals):
            if q == p:
                continue
            gap = window.gap(vertices, w, p, q)
            if gap.max() <= 0:
                return None
            if gap.min() < 0:
                kink = kink_base + window.kink(w, p, q)
                vertices, sources = _cut(vertices, sources, gap, kink)[0]
                if len(vertices) < 3:
                    return None
        return None if self._is_thin(vertices) else (vertices, sources)

    def _is_thin(self, vertices):
        """Whether a convex polygon's inradius is at most ``min_radius`` (counted if so).

        ``area / perimeter <= inradius <= 2 area / perimeter`` for convex polygons;
        only in between is the Chebyshev radius computed (an LP).
        """
        area = _area(vertices) if len(vertices) >= 3 else 0.0
        perimeter = np.linalg.norm(_next(vertices) - vertices, axis=1).sum()
        if area > self.min_radius * perimeter:
            return False
        thin = area <= 0.5 * self.min_radius * perimeter or len(vertices) < 3 or \
            _inradius(vertices, self.solver) <= self.min_radius
        if thin:
            self.thin += 1
            self.thin_area += area
        return thin


def _window_pairs(layer):
    """Position pairs ``(upper, lower)`` of a layer's windows, ``upper < lower``, in the
    order of :attr:`Network.window_pairs`."""
    return np.triu_indices(layer.windows.shape[1], 1)


class _WindowGeometry:
    """A layer's max windows on the plane: unit value maps ``uA t + uc`` and tie tolerances."""

    def __init__(self, layer, uA, uc, zero_tol, state):
        self.windows, self.uA, self.uc = layer.windows, uA, uc
        entries = np.maximum(layer.windows, 0)
        self.on, self.off = state[entries] == 1, state[entries] == -1  # ReLU units
        n, k = layer.windows.shape
        self.upper, self.lower = _window_pairs(layer)
        self.pair = np.zeros((k, k), dtype=np.int64)
        self.pair[self.upper, self.lower] = self.pair[self.lower, self.upper] = \
            np.arange(self.upper.size)
        tol = zero_tol.reshape(n, k)
        self.tol = np.maximum(tol[:, :, None], tol[:, None, :])

    def values(self, vertices, windows):
        """Unit values (vertices, windows, k) of the windows' entries (-inf at padding)."""
        entries = self.windows[windows]
        flat = np.maximum(entries, 0).ravel()
        values = (vertices @ self.uA[flat].T + self.uc[flat]).reshape(
            len(vertices), *entries.shape)
        return np.where(entries >= 0, values, -np.inf)

    def undominated(self, vertices, windows):
        """Boolean (windows, k): the positions no other position dominates on the piece."""
        values = self.values(vertices, windows)
        valid = self.windows[windows] >= 0
        with np.errstate(invalid="ignore"):
            gap = values[:, :, :, None] - values[:, :, None, :]  # [v, w, p, q]: u_p - u_q
        gap = np.where(valid[None, :, :, None] & valid[None, :, None, :], gap, 0.0)
        tied = np.abs(gap).max(axis=0) <= self.tol[windows]
        k = valid.shape[1]
        lower_first = np.arange(k)[:, None] < np.arange(k)[None, :]  # [p, q]: p < q
        dominates = (gap.min(axis=0) >= 0) & ~tied | tied & lower_first
        # an active ReLU entry (>= 0 on the piece, as decided) beats an inactive one (0),
        # whatever the rounding at the vertices the ReLU cut made
        on, off = self.on[windows], self.off[windows]
        dominates |= on[:, :, None] & off[:, None, :]
        dominates &= ~(off[:, :, None] & on[:, None, :])
        dominates &= valid[:, :, None] & valid[:, None, :] & ~np.eye(k, dtype=bool)
        alive = valid & ~dominates.any(axis=1)
        return np.where(alive.any(axis=1, keepdims=True), alive,
                        np.arange(k) == 0)  # a cycle of ties (rounding): the first

    def kink(self, w, p, q):
        """Index of the tie of positions ``p`` and ``q`` of window ``w`` among the layer's
        window pairs."""
        return w * self.upper.size + self.pair[p, q]

    def gap(self, vertices, w, p, q):
        """``u_p - u_q`` of window ``w`` at the vertices."""
        a, b = self.windows[w, p], self.windows[w, q]
        return vertices @ (self.uA[a] - self.uA[b]) + (self.uc[a] - self.uc[b])


def _select_rows(A, c, source):
    """Rows ``source`` of the map ``(A, c)``, zero where ``source`` is -1: a layer's output."""
    keep = source >= 0
    index = np.maximum(source, 0)
    return A[index] * keep[:, None], c[index] * keep


def _cut(vertices, sources, values, neuron):
    """A convex polygon cut by the line where ``values`` (at its vertices) vanish.

    Returns ``((positive vertices, sources), (negative vertices, sources))``; the
    new edges lie on the line and get source ``neuron``; both sides share the
    crossing points.
    """
    sides = ([], []), ([], [])
    k = len(values)
    for i in range(k):
        nxt = (i + 1) % k
        here, there = values[i], values[nxt]
        crossing = None
        if here * there < 0:
            crossing = vertices[i] + here / (here - there) * (vertices[nxt] - vertices[i])
        for (points, labels), sign in zip(sides, (1.0, -1.0)):
            a, z = sign * here, sign * there
            if a > 0 and z < 0:
                points += [vertices[i], crossing]
                labels += [sources[i], neuron]
            elif a == 0 and z < 0:
                points.append(vertices[i])
                labels.append(neuron)
            elif a >= 0:
                points.append(vertices[i])
                labels.append(sources[i])
            elif z > 0:
                points.append(crossing)
                labels.append(sources[i])
    return tuple(_without_repeats(np.array(points).reshape(-1, 2),
                                  np.array(labels, dtype=np.int64)) for points, labels in sides)


def _without_repeats(vertices, sources):
    """A polygon without zero-length edges (a crossing that lands exactly on a vertex)."""
    if len(vertices) < 2:
        return vertices, sources
    moves = np.any(vertices != _next(vertices), axis=1)
    return (vertices, sources) if moves.all() else (vertices[moves], sources[moves])


def _cross(u, v):
    """z-component of the cross product of 2-vectors (broadcast over leading axes)."""
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _next(vertices):
    """Each vertex's successor around the polygon (``np.roll(vertices, -1, 0)``, faster)."""
    return np.concatenate([vertices[1:], vertices[:1]])


def _area(vertices):
    """Signed area (counter-clockwise positive), about the first vertex: no cancellation
    of large products for a small polygon far from the origin."""
    relative = vertices[1:] - vertices[0]  # the first vertex is the origin: its terms vanish
    x, y = relative[:, 0], relative[:, 1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(y[:-1], x[1:]))


def _inradius(vertices, solver):
    """Chebyshev radius of a counter-clockwise convex polygon (one LP)."""
    edges = np.roll(vertices, -1, axis=0) - vertices
    normals = np.column_stack([edges[:, 1], -edges[:, 0]])
    keep = np.linalg.norm(normals, axis=1) > 0
    normals, points = normals[keep], vertices[keep]
    _, radius = solver.chebyshev_ball(normals, np.einsum("ij,ij->i", normals, points))
    return 0.0 if radius is None else radius


def _adjacency(pieces, min_radius):
    """Graph of pieces sharing an edge longer than ``2 min_radius`` on one kink's line."""
    graph = nx.Graph()
    graph.add_nodes_from(range(len(pieces)))
    by_kink = {}
    for piece in pieces:
        vertices = piece.vertices
        for i, source in enumerate(piece.edge_sources):
            if source >= 0:
                by_kink.setdefault(int(source), []).append(
                    (piece.id, vertices[i], vertices[(i + 1) % len(vertices)]))
    tolerance = min_radius
    for kink, edges in by_kink.items():
        ids = np.array([e[0] for e in edges])
        start = np.array([e[1] for e in edges])
        end = np.array([e[2] for e in edges])
        length = np.linalg.norm(end - start, axis=1)
        unit = (end - start) / np.maximum(length, np.finfo(float).tiny)[:, None]
        rel_start = start[None, :, :] - start[:, None, :]  # [a, b] = start_b - start_a
        rel_end = end[None, :, :] - start[:, None, :]
        off_line = np.maximum(np.abs(_cross(unit[:, None, :], rel_start)),
                              np.abs(_cross(unit[:, None, :], rel_end)))
        s0 = np.einsum("ak,abk->ab", unit, rel_start)
        s1 = np.einsum("ak,abk->ab", unit, rel_end)
        overlap = (np.minimum(length[:, None], np.maximum(s0, s1))
                   - np.maximum(0.0, np.minimum(s0, s1)))
        shared = (off_line <= tolerance) & (overlap > 2 * min_radius) & \
            (ids[:, None] < ids[None, :])
        for a, b in np.argwhere(shared):
            graph.add_edge(int(ids[a]), int(ids[b]), kink=kink)
    return graph


# -- input checks and small helpers ---------------------------------------------------------

def _check_plane(network, origin, directions):
    origin = np.asarray(origin, dtype=np.float64).reshape(-1)
    directions = np.asarray(directions, dtype=np.float64)
    d = network.input_dim
    if origin.shape != (d,):
        raise InvalidDomainError(f"origin has {origin.size} values, the network takes {d} inputs")
    if directions.shape != (d, 2):
        raise InvalidDomainError(
            f"directions must have shape ({d}, 2) (one column per slice axis), "
            f"got {directions.shape}")
    if not (np.all(np.isfinite(origin)) and np.all(np.isfinite(directions))):
        raise InvalidDomainError("origin or directions have a non-finite entry")
    singular = np.linalg.svd(directions, compute_uv=False)
    if singular[-1] <= 1e-12 * max(singular[0], np.finfo(float).tiny):
        raise InvalidDomainError("the two slice directions are linearly dependent")
    return origin, directions


def _slice_polygon(bounds):
    """The sliced polygon (counter-clockwise) and its edges' sources (-1 - f)."""
    if isinstance(bounds, shapely.Polygon):
        polygon = bounds
        if not polygon.is_valid or polygon.is_empty or polygon.interiors:
            raise InvalidDomainError("the slice polygon must be a valid polygon without holes")
        if polygon.area <= 0 or polygon.convex_hull.area - polygon.area > 1e-12 * polygon.area:
            raise InvalidDomainError("the slice polygon must be convex with positive area")
        polygon = orient(shapely.Polygon(polygon.exterior.coords), 1.0)
        edges = len(polygon.exterior.coords) - 1
        return polygon, -1 - np.arange(edges)
    try:
        lower, upper = bounds
    except (TypeError, ValueError) as err:
        raise InvalidDomainError(
            "slice bounds must be a (lower, upper) pair of 2-vectors or a shapely Polygon"
        ) from err
    box = Domain.box(lower, upper)
    if box.dim != 2:
        raise InvalidDomainError(f"slice bounds must be 2-vectors, got dimension {box.dim}")
    (x0, y0), (x1, y1) = box.lower, box.upper
    polygon = shapely.Polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    # box faces as numbered by Domain.box: 0 t0 <= x1, 1 t1 <= y1, 2 t0 >= x0, 3 t1 >= y0
    return polygon, np.array([-4, -1, -2, -3])


def _bounding_box(polygon):
    x0, y0, x1, y1 = polygon.bounds
    return np.array([x0, y0]), np.array([x1, y1])



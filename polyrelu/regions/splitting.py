"""The second enumerator: layer-wise splitting (star-set style), many pieces at a time.

Start from the domain. For each hidden layer in turn, every piece is cut by every
neuron of that layer whose hyperplane crosses it. A batch of pieces lives in padded
arrays (:class:`Pieces`): rows ``A x <= b`` (padding has ``b = inf``), a bounding box,
witness points (points of the piece, the first one as deep inside as known). Deciding
a neuron on the pieces of a batch goes from cheap to exact, one array operation per
neuron over the batch:

1. interval bounds of its pre-activation over each piece's box;
2. the witnesses: one strictly on each side proves both sides have interior;
3. when all witnesses lie on one side, a bound of the other side over the box and all
   the cuts (a dual bound from a simplex run on the whole batch at once,
   :func:`~polyrelu.geometry.boxes.lp_bound`; no LP per piece), then a ray from
   the witnesses along the gradient, continued along the facets it meets (projected
   gradient steps) when it stops short;
4. only then, piece by piece, one LP for that side: its Chebyshev ball, whose centre
   becomes a new witness. A side no wider than the radius tolerance holds no region
   (it is cut off).

Every pending neuron is decided on the whole piece before the piece is cut, so a
neuron that misses it is decided once. A ReLU unit with the same weights as an earlier
one of its layer takes its state.

General networks (:mod:`polyrelu.network.layers`): a layer's pre-activation maps on a
piece come from the previous layer's outputs (its kept units and window winners); its
ReLU units are decided and cut as above, its linear units carried as they are. Then each
max window in turn: the positions beaten on a piece's box (by more than the tolerance,
or tied with a lower position: the canonical lowest argmax) cannot win there; when
several can, the piece becomes one child per position that wins on a part of it wider
than the radius tolerance (a witness beating every other candidate, else the part's
Chebyshev LP; one-cut bounds rule positions out), its rows that position's value
``>=`` each other live candidate's (kink: their tie). Each region is one leaf. A final
piece counts as a region when a witness (or their mean) lies deeper inside it than the
radius tolerance, otherwise by
its Chebyshev-ball LP (``exact=True``: always by the LP, for the exact ball).

One driving loop, :func:`split_batches`, serves every user: :func:`count_regions`
(counts the final pieces), :func:`iter_leaves` and :func:`enumerate_by_splitting` (the
regions, with facets) and verification's exact phase (which closes partial pieces
between layers through the ``between`` hook). Batches (:class:`Batch`) hold at most
``chunk`` pieces (fewer when pieces are large, :data:`BATCH_BYTES`) and are split depth
first, within a layer as across it: a batch that outgrows its limit after a cut is dealt
into parts that go on from the next kink, so memory stays bounded by the depth of the
network times a batch, however many regions there are. The open batches are independent
units of work (:func:`count_batches`: a count can stop, be stored and go on in other
processes, see :mod:`polyrelu.regions.parallel`). Nothing here walks the adjacency
graph: the result is an independent check of :func:`polyrelu.enumerate_regions`
(see :func:`polyrelu.cross_check`).
"""

import dataclasses
import time
from dataclasses import dataclass

import networkx as nx
import numpy as np

from ..deadline import Deadline
from ..errors import TimeLimitError
from ..geometry.boxes import contract, cut_bound, lp_bound, needed_cuts, tighten
from ..geometry.domain import check_input_dimension
from ..geometry.interval import neuron_status
from ..geometry.lp import LPSolver
from ..geometry.polytope import HPolytope, minimal_representation
from ..geometry.rays import ray_and_climb, toward
from ..options import Options
from ..progress import progress_bar
from .region import Region, RegionComplex

__all__ = ["enumerate_by_splitting", "count_regions", "iter_leaves", "split_batches",
           "split_step", "count_batches", "Batch", "Leaf", "Pieces", "Splitter"]

_INF = np.inf
#: The most bytes a batch of pieces may take (see :meth:`Batch.size_limit`).
BATCH_BYTES = 16 * 2 ** 20
_MAX_WITNESSES = 12
_UNDECIDED, _INACTIVE, _ACTIVE, _CROSSING, _EMPTY, _KEEP_ACTIVE, _KEEP_INACTIVE = range(-1, 6)
#: ``pieces.state`` of a unit decided active (the units before ``Batch.unit``, part way
#: through a layer, are each active or inactive).
ACTIVE_STATE = _ACTIVE


def enumerate_by_splitting(network, domain, *, options=None, progress=False, chunk=1024,
                           deadline=None):
    """Every activation region of ``network`` over ``domain``, by layer-wise splitting.

    Returns a :class:`RegionComplex` with the same regions (pattern, minimal
    H-polytope, interior point, affine map) as :func:`polyrelu.enumerate_regions`;
    its graph has the regions as nodes and no edges (this enumerator does not
    compute adjacency). Facets are found with LPs unless ``options.facet_method``
    says "qhull". ``deadline`` (a :class:`polyrelu.deadline.Deadline`) stops the run
    with :class:`polyrelu.TimeLimitError`.

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
    for leaf in iter_leaves(network, domain, options=options, solver=solver, exact_balls=True,
                            chunk=chunk, deadline=deadline):
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
             "regions": len(regions), "enumerator": "splitting", "graph": "not computed",
             "options": dataclasses.asdict(options), "thin_regions": 0}
    status = neuron_status(network, domain, options)
    return RegionComplex(network, domain, regions, graph, stats, status.zero_tol)


def count_regions(network, domain, *, options=None, progress=False, chunk=1024, deadline=None):
    """Number of activation regions, by layer-wise splitting without computing facets.

    The same regions as :func:`iter_leaves` yields, counted (a final piece is certified
    wide enough by a witness point when one lies deep enough, saving its LP). Returns
    ``(count, stats)`` with ``stats`` holding ``lps`` and ``seconds``.

    Examples
    --------
    >>> from polyrelu import Network, Domain
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> count_regions(absolute, Domain.box([-1], [1]))[0]
    2
    """
    check_input_dimension(network, domain)
    start = time.perf_counter()
    bar = progress_bar(progress, "splitting")
    deadline = deadline or Deadline(None)
    try:
        count, lps, left = count_batches(network, domain, options, chunk=chunk,
                                         deadline=deadline, progress=bar)
    finally:
        bar.close()
    if left:
        raise TimeLimitError(f"counting: time limit of {deadline.seconds:g} s reached",
                             {"regions_so_far": count, "lps": lps})
    return count, {"lps": lps, "seconds": time.perf_counter() - start}


def count_batches(network, domain, options=None, batches=None, *, chunk=1024, seconds=None,
                  deadline=None, spread=None, progress=None):
    """Count the regions of the :class:`Batch` list ``batches`` (default: the whole
    domain) as :func:`count_regions` does, for at most ``seconds`` (and not past
    ``deadline``; with ``spread``, only until the open batches hold that many pieces).
    Returns ``(regions, LPs, open)``: ``open`` is the list of batches still to split
    (empty when done), which other calls finish (in any order and process);
    ``progress.update(n)`` is called as regions are found.

    Examples
    --------
    >>> from polyrelu import Network, Domain
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> regions, lps, left = count_batches(absolute, Domain.box([-1], [1]))
    >>> regions, left
    (2, [])
    """
    options = options or Options()
    splitter = Splitter(network, domain, options, LPSolver(options))
    if batches is None:
        batches = [splitter.root_batch()]
    stack = [batch.take(np.arange(batch.pieces.count)) for batch in reversed(batches)]  # copies
    budget, deadline = Deadline(seconds), deadline or Deadline(None)
    count = 0
    while stack and not (budget.expired() or deadline.expired()):
        if spread is not None and sum(batch.pieces.count for batch in stack) >= spread:
            break
        pieces = split_step(splitter, stack, chunk=chunk)
        if pieces is not None:
            found = int(splitter.finish(pieces).sum())
            count += found
            if progress is not None:
                progress.update(found)
    return count, splitter.solver.count, stack[::-1]


def iter_leaves(network, domain, *, options=None, solver=None, exact_balls=False, chunk=1024,
                deadline=None):
    """Yield every region as a :class:`Leaf`, without facet computation.

    Pieces thinner than the radius tolerance are not yielded. Each leaf's ``center``
    is an interior point at distance ``radius`` (> the tolerance) from its boundary:
    its Chebyshev ball with ``exact_balls=True``, otherwise possibly a smaller ball
    (a witness point that already proves the leaf thick enough, saving an LP).
    """
    check_input_dimension(network, domain)
    options = options or Options()
    splitter = Splitter(network, domain, options, solver or LPSolver(options), track=True)
    for pieces in split_batches(splitter, chunk=chunk, deadline=deadline):
        wide = splitter.finish(pieces, exact=exact_balls)
        for p in np.flatnonzero(wide):
            yield pieces.leaf(p)


@dataclass
class Leaf:
    """A region found by splitting: ``{x : A x <= b}`` (unit rows; ``sources`` names each
    row: domain face ``-1 - k`` or kink j, see :meth:`polyrelu.Network.kink_rows`) with its
    activation ``pattern``, and a ball of radius ``radius`` around ``center`` inside it."""

    A: np.ndarray
    b: np.ndarray
    sources: np.ndarray
    pattern: np.ndarray
    center: np.ndarray
    radius: float


def split_batches(splitter, *, chunk=1024, between=None, deadline=None, start=None):
    """Split the domain by every hidden layer; yield the final pieces batch by batch.

    Batches hold at most ``chunk`` pieces and are split depth first, within a layer as
    across layers (see :func:`split_step`), so memory stays bounded by the depth of the
    network times ``chunk`` pieces, however many regions there are. ``between(pieces,
    layer, map_A, map_c)``, if given, is called with each batch before it is split by
    hidden layer ``layer >= 1`` (``map_A[p] x + map_c[p]`` is that layer's input on
    piece p) and returns ``(pieces, map_A, map_c)`` to go on with: it may drop pieces
    (:meth:`Pieces.keep`, and the same rows of the maps) and tighten their boxes.
    ``deadline`` (a :class:`polyrelu.deadline.Deadline`) is checked between batches.
    ``start``, if given, is a list of :class:`Batch` to split instead of the whole
    domain.
    """
    deadline = deadline or Deadline(None)
    stack = list(reversed(start)) if start is not None else [splitter.root_batch()]
    while stack:
        deadline.check("splitting")
        final = split_step(splitter, stack, chunk=chunk, between=between)
        if final is not None:
            yield final


def split_step(splitter, stack, *, chunk=1024, between=None):
    """Pop the last :class:`Batch` of the list ``stack`` and take it one step on: its
    pieces when they are final (every layer split), else None after pushing what it
    became. A step cuts by the layer's kinks (ReLU units, then max windows) until the
    batch outgrows its limit (``chunk`` pieces, fewer when they are large: see
    :meth:`Batch.size_limit`; it is then dealt into parts that go on from the next
    kink), or to the end of the layer (the next layer's batches are pushed). ``between``
    is as for :func:`split_batches`. Deterministic; the stack's batches are independent,
    so they may be finished in any order or process."""
    batch = stack.pop()
    if batch.layer == len(splitter.network.hidden_sizes):
        return batch.pieces
    if batch.unit is None:
        if between is not None and batch.layer > 0:
            pieces, map_A, map_c = between(batch.pieces, batch.layer, batch.map_A, batch.map_c)
            if not pieces.count:
                return None
            batch = Batch(pieces, map_A, map_c, batch.layer)
        batch = splitter.begin_layer(batch)
    if splitter.cut_units(batch, batch.size_limit(chunk)):
        batch = Batch(*splitter.end_layer(batch), batch.layer + 1)
    parts = _parts(batch.pieces.count, batch.size_limit(chunk))
    stack.extend(reversed([batch.take(part) for part in parts]))
    return None


def _parts(count, chunk):
    """Consecutive index ranges of at most ``chunk`` covering ``range(count)``."""
    return [np.arange(first, min(first + chunk, count)) for first in range(0, count, chunk)]


@dataclass
class Batch:
    """Open pieces, a unit of the splitting's work. With ``unit`` None they await hidden
    layer ``layer`` (``map_A[p] x + map_c[p]`` is its input on piece p; ``layer`` = the
    number of hidden layers: the pieces are final). Otherwise they are part way through
    it (see :meth:`Splitter.cut_units`): its kinks before ``unit`` are cut
    (``pieces.state``), and ``map_A[q] x + map_c[q]`` with ``q = pieces.maps[p]`` are its
    pre-activations while ``unit`` < its ReLU units, then its unit values."""

    pieces: "Pieces"
    map_A: np.ndarray
    map_c: np.ndarray
    layer: int
    unit: int = None

    def take(self, index):
        """The pieces ``index`` of the batch, as a batch (part way through a layer, the
        maps are shared, not copied)."""
        if self.unit is None:
            return Batch(self.pieces.take(index), self.map_A[index], self.map_c[index],
                         self.layer)
        return Batch(self.pieces.take(index), self.map_A, self.map_c, self.layer, self.unit)

    def size_limit(self, chunk):
        """How many pieces a batch like this one may hold: ``chunk``, or fewer when the
        pieces are large (at most ``BATCH_BYTES`` bytes in all, maps included)."""
        pieces = self.pieces
        size = sum(getattr(pieces, name).nbytes for name in pieces.fields) / pieces.count
        size += self.map_A.nbytes / len(self.map_A) + self.map_c.nbytes / len(self.map_c)
        return int(max(2, min(chunk, BATCH_BYTES // size)))

    def halves(self):
        """The batch as two batches (of at least one piece each: it needs two)."""
        index = np.arange(self.pieces.count)
        return [self.take(part) for part in np.array_split(index, 2)]

    def compact(self):
        """The batch with only the maps its pieces use (to send or store it)."""
        if self.unit is None:
            return self
        used, maps = np.unique(self.pieces.maps, return_inverse=True)
        pieces = self.pieces.take(np.arange(self.pieces.count))
        pieces.maps = maps.ravel()
        return Batch(pieces, self.map_A[used], self.map_c[used], self.layer, self.unit)


class Pieces:
    """A batch of pieces of the domain: ``{x : A[p] x <= b[p]}`` (first ``rows[p]`` rows;
    padding has ``b = inf``), boxes ``low``/``high``, witnesses ``points`` (``valid``;
    point 0 the deepest known), ``state`` of the current layer's neurons (-1 open) and
    ``maps`` (index of the piece's pre-activation map in the layer's stack). With
    ``track``: the ``pattern`` decided so far and the ``sources`` of the rows (domain
    face ``-1 - k`` or neuron j); after :meth:`Splitter.finish`, ``center`` and
    ``radius`` of the regions."""

    BASE = ("A", "b", "rows", "low", "high", "points", "valid", "state", "maps")
    TRACKED = ("pattern", "sources")

    def __init__(self, fields, **arrays):
        self.fields = fields
        for name in fields:
            setattr(self, name, arrays[name])
        self.count = len(self.b)
        self.center = self.radius = None

    def take(self, index):
        """The pieces ``index``, as a new batch."""
        return Pieces(self.fields, **{name: getattr(self, name)[index] for name in self.fields})

    def append_copies(self, index):
        """Append copies of the pieces ``index``; returns their new positions."""
        new = np.arange(self.count, self.count + len(index))
        for name in self.fields:
            array = getattr(self, name)
            setattr(self, name, np.concatenate([array[:self.count], array[index]]))
        self.count += len(index)
        return new

    def keep(self, mask):
        """Drop the pieces where ``mask`` is False."""
        for name in self.fields:
            setattr(self, name, getattr(self, name)[:self.count][mask])
        self.count = int(mask.sum())

    def widen(self, name, width, fill):
        """Pad the second axis of field ``name`` to at least ``width``."""
        array = getattr(self, name)
        if array.shape[1] < width:
            pad = np.full((array.shape[0], width - array.shape[1]) + array.shape[2:], fill,
                          dtype=array.dtype)
            setattr(self, name, np.concatenate([array, pad], axis=1))

    def constraints(self, p):
        """``(A, b, sources)`` of piece ``p`` (its rows without padding; needs ``track``)."""
        rows = self.rows[p]
        return self.A[p, :rows], self.b[p, :rows], self.sources[p, :rows]

    def leaf(self, p):
        """Piece ``p`` as a :class:`Leaf` (after :meth:`Splitter.finish`)."""
        A, b, sources = self.constraints(p)
        return Leaf(A, b, sources, self.pattern[p].copy(), self.center[p], float(self.radius[p]))


class Splitter:
    """Splits batches of pieces of ``domain`` by the neurons of one hidden layer at a time.

    It knows the network on the domain: neuron status and zero tolerances, the radius
    tolerance, the layer offsets, and which rows of a piece are cuts (the rows after
    a box domain's own; all rows of a polytope domain). With ``track`` the pieces
    carry their activation patterns and the sources of their rows.
    """

    def __init__(self, network, domain, options, solver, *, track=False):
        self.network, self.domain, self.solver = network, domain, solver
        self.track = track
        self.status = neuron_status(network, domain, options)
        self.unstable = np.zeros(network.num_hidden, dtype=bool)
        self.unstable[self.status.unstable] = True
        self.diameter = domain.diameter
        self.min_radius = options.min_radius_rel * self.diameter
        self.bounds = np.cumsum((0,) + network.slot_sizes)
        self.first_cut = len(domain.b) if domain.kind == "box" else 0
        self._window_kinks = {}
        self.twins = [_twins(layer) for layer in network.layers[:-1]]

    def root(self):
        """The whole domain as a batch of one piece (no neuron decided yet)."""
        domain = self.domain
        points = self.domain_witnesses()
        arrays = dict(A=domain.A[None], b=domain.b[None], rows=np.array([len(domain.b)]),
                      low=domain.lower[None], high=domain.upper[None], points=points[None],
                      valid=np.ones((1, len(points)), dtype=bool),
                      state=np.zeros((1, 0), dtype=int), maps=np.zeros(1, dtype=int))
        fields = Pieces.BASE
        if self.track:
            fields = fields + Pieces.TRACKED
            arrays.update(pattern=np.zeros((1, self.network.num_hidden), dtype=bool),
                          sources=(-1 - np.arange(len(domain.b)))[None])
        return Pieces(fields, **arrays)

    def root_batch(self):
        """The whole domain as a :class:`Batch`: one piece, the identity as the first
        layer's input map."""
        d = self.domain.dim
        return Batch(self.root(), np.eye(d)[None], np.zeros((1, d)), 0)

    def domain_witnesses(self):
        """Points of the domain to start from: its centre (first, the deepest), and the
        corners of a box domain in up to 6 dimensions."""
        domain, d = self.domain, self.domain.dim
        points = domain.center[None, :]
        if domain.kind == "box" and d <= 6:
            corners = np.array(np.meshgrid(*zip(domain.lower, domain.upper))).reshape(d, -1).T
            points = np.vstack([points, corners])
        return points

    def begin_layer(self, batch):
        """The batch (awaiting its layer) with its layer's pre-activation maps, its ReLU
        units settled by the boxes and none cut yet (``unit`` 0).

        Then :meth:`cut_units` decides every ReLU unit on the whole pieces and cuts the
        pieces by their crossing units in order; after each cut the later crossing units
        are decided again on the two sides (they may miss one of them). Then it splits by
        each max window in turn (:meth:`_split_window`): a piece on which its argmax is
        not fixed becomes one piece per position that wins on part of it. Then
        :meth:`end_layer` gives the next layer's input maps."""
        pieces, spec = batch.pieces, self.network.layers[batch.layer]
        pieces.low, pieces.high = tighten(pieces.low, pieces.high, pieces.A, pieces.b)
        pre_A = spec.weight @ batch.map_A
        pre_c = batch.map_c @ spec.weight.T + spec.bias
        relu = self._relu_units(batch.layer)
        start = self.bounds[batch.layer]
        n = len(self.twins[batch.layer])
        pieces.state = self.settle(slice(start, start + n), pre_A[:, relu], pre_c[:, relu],
                                   pieces.low, pieces.high)
        pieces.maps = np.arange(pieces.count)
        pieces.state[:, self.twins[batch.layer] >= 0] = _ACTIVE  # for now: copies of a twin
        return Batch(pieces, pre_A, pre_c, batch.layer, 0)

    def cut_units(self, batch, limit=None):
        """Cut the batch's pieces by its layer's kinks from ``batch.unit`` on: its ReLU
        units (``unit`` 0, 1, ...), then its max windows (``unit`` = ReLU units + window),
        until all are done (returns True) or, after a cut, the batch holds more than
        ``limit`` pieces (returns False; ``batch.unit`` is where to go on)."""
        if batch.unit < len(self.twins[batch.layer]):
            if not self._cut_relu(batch, limit):
                return False
            self._begin_windows(batch)
        return self._cut_windows(batch, limit)

    def _cut_relu(self, batch, limit):
        """Decide and cut by the ReLU units from ``batch.unit`` on (see :meth:`cut_units`).
        A unit with a twin (an earlier copy, see :func:`_twins`) takes its state."""
        pieces, layer = batch.pieces, batch.layer
        relu = self._relu_units(layer)
        pre_A, pre_c = batch.map_A[:, relu], batch.map_c[:, relu]
        start, twins, n = self.bounds[layer], self.twins[layer], len(self.twins[layer])
        for i in range(batch.unit, n):
            if twins[i] >= 0:
                pieces.state[:, i] = pieces.state[:, twins[i]]
                continue
            self._decide_open(pieces, pre_A, pre_c, start, i, i + 1 if i else n)
            crossing = np.flatnonzero(pieces.state[:, i] == _CROSSING)
            if len(crossing):
                sides = self._cut(pieces, crossing, pre_A[pieces.maps[crossing], i],
                                  pre_c[pieces.maps[crossing], i], i, start + i)
                later = pieces.state[sides, i + 1:]
                pieces.state[sides, i + 1:] = np.where(later == _CROSSING, _UNDECIDED, later)
                if limit is not None and pieces.count > limit and i + 1 < n:
                    batch.unit = i + 1
                    return False
        batch.unit = n
        return True

    def _begin_windows(self, batch):
        """After the ReLU units: the batch's maps become its layer's unit values (the
        ReLU units' masked by their states), one per piece, with a state column per max
        window."""
        pieces, spec = batch.pieces, self.network.layers[batch.layer]
        _keep_fewer_witnesses(pieces)
        start = self.bounds[batch.layer]
        active = pieces.state == _ACTIVE
        if self.track:
            pieces.pattern[:, start:start + active.shape[1]] = active
        unit_A, unit_c = batch.map_A[pieces.maps], batch.map_c[pieces.maps]
        relu = self._relu_units(batch.layer)
        unit_A[:, relu] *= active[..., None]
        unit_c[:, relu] *= active
        windows = np.zeros((pieces.count, len(spec.windows)), dtype=int)
        pieces.state = np.concatenate([pieces.state, windows], axis=1)
        pieces.maps = np.arange(pieces.count)
        batch.map_A, batch.map_c = unit_A, unit_c

    def _cut_windows(self, batch, limit):
        """Split by each max window in turn from ``batch.unit`` on (see :meth:`cut_units`):
        the winner goes into its state column."""
        pieces, spec = batch.pieces, self.network.layers[batch.layer]
        relu_units, (n, k) = len(self.twins[batch.layer]), spec.windows.shape
        slot = self.bounds[batch.layer] + relu_units
        for w in range(batch.unit - relu_units, n):
            self._split_window(pieces, spec.windows[w], batch.map_A, batch.map_c,
                               relu_units + w, slot + w * k)
            if limit is not None and pieces.count > limit and w + 1 < n:
                batch.unit = relu_units + w + 1
                return False
        batch.unit = relu_units + n
        return True

    def end_layer(self, batch):
        """``(pieces, map_A, map_c)``: the batch, cut by all its layer's kinks, with the
        next layer's input maps (the kept units, then each window's winner)."""
        pieces, spec = batch.pieces, self.network.layers[batch.layer]
        if spec.is_relu:
            return pieces, batch.map_A[pieces.maps], batch.map_c[pieces.maps]
        n, k = spec.windows.shape
        relu_units = len(self.twins[batch.layer])
        _keep_fewer_witnesses(pieces)
        winners = pieces.state[:, relu_units:]
        if self.track:
            slot = self.bounds[batch.layer] + relu_units
            onehot = winners[..., None] == np.arange(k)
            pieces.pattern[:, slot:slot + n * k] = onehot.reshape(pieces.count, -1)
        entries = np.concatenate([np.broadcast_to(spec.keep, (pieces.count, spec.keep.size)),
                                  spec.windows[np.arange(n), winners]], axis=1)
        maps = pieces.maps[:, None]
        return pieces, batch.map_A[maps, entries], batch.map_c[maps, entries]

    def _relu_units(self, layer):
        spec = self.network.layers[layer]
        return slice(None) if spec.is_relu else spec.relu_units

    def _split_window(self, pieces, window, unit_A, unit_c, column, slot):
        """Split the pieces by one max window (unit indices ``window``, -1 padding; its
        slots start at ``slot``): the winner goes into ``state[:, column]``. A position
        beaten on a piece's box (by more than the tolerance, or tied with a lower one)
        cannot win there; where several can, each becomes a child (:meth:`_window_children`)."""
        entries = np.maximum(window, 0)
        diff_A = unit_A[pieces.maps][:, entries]
        diff_c = unit_c[pieces.maps][:, entries]
        diff_A = diff_A[:, :, None] - diff_A[:, None, :]  # [p, q]: u_p - u_q
        diff_c = diff_c[:, :, None] - diff_c[:, None, :]
        tol = self.status.zero_tol[slot:slot + len(window)]
        tol = np.maximum(tol[:, None], tol[None, :])
        half, middle = (pieces.high - pieces.low) / 2, (pieces.high + pieces.low) / 2
        size = np.einsum("pabd,pd->pab", np.abs(diff_A), half)
        centre = np.einsum("pabd,pd->pab", diff_A, middle) + diff_c
        lower = np.triu(np.ones((len(window),) * 2, dtype=bool), 1)
        beats = (centre - size > tol) | ((size + np.abs(centre) <= tol) & lower)
        valid = window >= 0
        candidates = valid & ~(beats & valid[:, None]).any(1)
        candidates[~candidates.any(1)] = valid  # a cycle of near-ties: let the LPs decide
        fixed = self.status.always_active[slot:slot + len(window)]
        if fixed.any():
            candidates[:] = fixed
        pieces.state[:, column] = np.argmax(candidates, 1)
        open_ = np.flatnonzero(candidates.sum(1) > 1)
        if len(open_):
            self._window_children(pieces, open_, candidates[open_], diff_A[open_],
                                  diff_c[open_], tol, column, slot)

    def _window_children(self, pieces, index, candidates, diff_A, diff_c, tol, column, slot):
        """Replace each piece ``index[i]`` by one child per position that wins on a part of
        it wider than the radius tolerance (rows: its value >= each other candidate's);
        the parts no child keeps (thinner, or empty) are cut off."""
        wide, live, centres = self._window_sides(pieces, index, candidates, diff_A, diff_c, tol)
        owner, position = np.nonzero(wide)
        first = np.r_[True, owner[1:] != owner[:-1]]
        target = np.empty(len(owner), dtype=int)
        target[first] = index[owner[first]]
        target[~first] = pieces.append_copies(index[owner[~first]])
        inside = pieces.valid[target].copy()
        values = pieces.points[target] @ diff_A[owner, position].transpose(0, 2, 1) \
            + diff_c[owner, position][:, None, :]  # (children, witnesses, q)
        kinks = self._pair_kinks(slot, candidates.shape[1])
        for q in range(candidates.shape[1]):
            rows = np.flatnonzero(live[owner, q] & (position != q))
            if len(rows):
                at = (owner[rows], position[rows], q)
                a, c = diff_A[at], diff_c[at]
                self._append_rows(pieces, target[rows], -a, c, kinks[position[rows], q])
                inside[rows] &= values[rows, :, q] >= 0
        pieces.valid[target] = inside
        pieces.state[target, column] = position
        from_lp = [k for k in range(len(owner)) if (owner[k], position[k]) in centres]
        _add_witnesses(pieces, target[from_lp],
                       [[centres[owner[k], position[k]]] for k in from_lp])
        _deepest_first(pieces, target)
        drop = index[~wide.any(1)]
        if len(drop):
            keep = np.ones(pieces.count, dtype=bool)
            keep[drop] = False
            pieces.keep(keep)

    def _window_sides(self, pieces, index, candidates, diff_A, diff_c, tol):
        """Which candidate positions win on a part of pieces ``index`` wider than the radius
        tolerance (``wide``), on any part at all (``live``: also thin ones), and the
        Chebyshev centres found for the wide ones (a dict by (i, position)). A witness
        where a position beats every other candidate by more than the tolerance proves its
        part; one-cut bounds that one other candidate beats it everywhere rule it out;
        the rest is decided by the part's Chebyshev-ball LP."""
        points, valid = pieces.points[index], pieces.valid[index]
        values = np.einsum("iwd,ipqd->iwpq", points, diff_A) + diff_c[:, None]
        others = candidates[:, None, :] & ~np.eye(candidates.shape[1], dtype=bool)
        margin = np.where(others[:, None], values - tol, _INF).min(3)
        wide = candidates & (valid[..., None] & (margin > 0)).any(1)
        live = wide.copy()
        for i, p in zip(*np.nonzero(candidates & ~wide)):
            live[i, p] = not self._beaten(pieces, index[i], diff_A[i, p], diff_c[i, p],
                                          others[i, p], tol[p])
        centres = {}
        for i, p in zip(*np.nonzero(live & ~wide)):
            centre, radius = self._part_ball(pieces, index[i], diff_A[i, p, others[i, p]],
                                             diff_c[i, p, others[i, p]])
            live[i, p] = radius > 0
            if radius > self.min_radius:
                wide[i, p], centres[i, p] = True, centre
        return wide, live, centres

    def _beaten(self, pieces, p, a, c, others, tol):
        """True if one of the rows ``a[q] x + c[q]`` (``others``) is below ``-tol`` on all
        of piece ``p`` by a one-cut bound (:func:`cut_bound`)."""
        cuts = pieces.A[p, self.first_cut:pieces.rows[p]]
        beta = pieces.b[p, self.first_cut:pieces.rows[p]]
        bound = cut_bound(a[others], pieces.low[p], pieces.high[p], cuts, beta) + c[others]
        return bool((bound < -tol[others]).any())

    def _part_ball(self, pieces, p, a, c):
        """Chebyshev centre and radius of piece ``p`` (its box and the cuts the box does not
        imply) intersected with ``a x + c >= 0`` (rows of nonzero ``a``)."""
        rows = pieces.rows[p]
        cuts, beta = needed_cuts(pieces.A[p, self.first_cut:rows],
                                 pieces.b[p, self.first_cut:rows], pieces.low[p], pieces.high[p])
        norm = np.sqrt((a * a).sum(1))
        return self._side_ball(pieces.low[p], pieces.high[p], cuts, beta, -a / norm[:, None],
                               c / norm)

    def _pair_kinks(self, slot, k):
        """(k, k) kinks of the ties between the positions of the window whose first slot is
        ``slot`` (symmetric; the diagonal is unused)."""
        kinks = self._window_kinks.get(slot)
        if kinks is None:
            pairs = self.network.window_pairs
            offset = int(np.flatnonzero(pairs[:, 0] == slot)[0]) if k > 1 else 0
            kinks = np.zeros((k, k), dtype=int)
            first, second = np.triu_indices(k, 1)
            kinks[first, second] = self.network.num_hidden + offset + np.arange(len(first))
            kinks = self._window_kinks[slot] = kinks + kinks.T
        return kinks

    def _decide_open(self, pieces, pre_A, pre_c, start, first, stop):
        """Decide the neurons ``first, ..., stop - 1`` of the layer starting at neuron
        ``start`` on the pieces where they are open."""
        for i in range(first, stop):
            open_ = np.flatnonzero(pieces.state[:, i] == _UNDECIDED)
            if len(open_):
                self._decide(pieces, open_, i, start + i, pre_A[pieces.maps[open_], i],
                             pre_c[pieces.maps[open_], i])

    def settle(self, rows, pre_A, pre_c, low, high):
        """States of the neurons ``rows`` of one layer (pre-activations ``pre_A[p] x +
        pre_c[p]``, stacked over pieces p) that the boxes ``[low[p], high[p]]`` settle:
        _ACTIVE, _INACTIVE (also identically zero neurons, canonically inactive) or
        _UNDECIDED. The rules go from the weakest to the strongest."""
        size = (np.abs(pre_A) @ ((high - low) / 2)[..., None])[..., 0]
        centre = (pre_A @ ((high + low) / 2)[..., None])[..., 0] + pre_c
        tol = self.status.zero_tol[rows]
        state = np.where(centre > 0, _ACTIVE, _INACTIVE)
        state[np.abs(centre) - size <= tol] = _UNDECIDED
        constant = (pre_A * pre_A).sum(2) * self.diameter ** 2 <= tol ** 2
        state = np.where(constant, np.where(pre_c > 0, _ACTIVE, _INACTIVE), state)
        stable = ~self.unstable[rows]
        state[:, stable] = np.where(self.status.always_active[rows][stable], _ACTIVE, _INACTIVE)
        state[size + np.abs(centre) <= tol] = _INACTIVE
        return state

    def finish(self, pieces, exact=False):
        """Which final pieces are regions (wider than the radius tolerance): certified by
        the deepest witness or the witnesses' mean, else (and always when ``exact``) by a
        Chebyshev-ball LP. Sets ``pieces.center`` and ``pieces.radius``."""
        n = pieces.count
        if not n:
            return np.zeros(0, dtype=bool)
        mean = (pieces.points * pieces.valid[..., None]).sum(1) / pieces.valid.sum(1)[:, None]
        candidates = np.stack([pieces.points[:, 0], mean], axis=1)
        depths = (pieces.b[:, None, :] - candidates @ pieces.A.transpose(0, 2, 1)).min(2)
        best = np.argmax(depths, 1)
        pieces.center = candidates[np.arange(n), best]
        pieces.radius = depths[np.arange(n), best]
        wide = pieces.radius > self.min_radius
        for p in range(n) if exact else np.flatnonzero(~wide):
            rows = pieces.rows[p]
            center, radius = self.solver.chebyshev_ball(pieces.A[p, :rows], pieces.b[p, :rows])
            wide[p] = center is not None and radius > self.min_radius
            if wide[p]:
                pieces.center[p], pieces.radius[p] = center, radius
        return wide

    def _decide(self, pieces, index, i, j, a, c):
        """Decide neuron j (``i`` within its layer; pre-activation ``a x + c``) on the
        pieces ``index``."""
        tol = self.status.zero_tol[j]
        low, high = pieces.low[index], pieces.high[index]
        size = (np.abs(a) * (high - low) / 2).sum(1)
        centre = (a * (high + low) / 2).sum(1) + c
        verdict = np.full(len(index), _UNDECIDED)
        fixed = np.abs(centre) - size > tol
        verdict[fixed] = np.where(centre[fixed] > 0, _ACTIVE, _INACTIVE)
        verdict[size + np.abs(centre) <= tol] = _INACTIVE
        points, valid = pieces.points[index], pieces.valid[index]
        values = (points @ a[..., None])[..., 0] + c[:, None]
        reached = {1.0: np.where(valid, values, -_INF).max(1) > tol,
                   -1.0: np.where(valid, values, _INF).min(1) < -tol}
        new_points = {}
        for sign, empty_side in ((1.0, _INACTIVE), (-1.0, _ACTIVE)):
            look = np.flatnonzero((verdict == _UNDECIDED) & ~reached[sign] & reached[-sign])
            if not len(look):
                continue
            cuts = pieces.A[index[look], self.first_cut:]
            beta = np.where(cuts.any(2), pieces.b[index[look], self.first_cut:], 0.0)
            bound, vertex = lp_bound(sign * a[look], low[look], high[look], cuts, beta,
                                     below=-tol - sign * c[look])
            verdict[look[bound + sign * c[look] < -tol]] = empty_side
            top = np.einsum("kd,kd->k", sign * a[look], vertex) + sign * c[look]
            reached[sign][look[top > tol]] = True  # (NaN: not solved, compares False)
            for k, x in zip(look[top > tol], vertex[top > tol]):
                new_points.setdefault(k, []).append(x)
            look = look[(bound + sign * c[look] >= -tol) & ~(top > tol)]
            if len(look):
                found, point = ray_and_climb(pieces.A[index[look]], pieces.b[index[look]],
                                              points[look], valid[look], values[look],
                                              sign * a[look], sign, tol)
                reached[sign][look[found]] = True
                for k, x in zip(look[found], point[found]):
                    new_points.setdefault(k, []).append(x)
        verdict[(verdict == _UNDECIDED) & reached[1.0] & reached[-1.0]] = _CROSSING
        for k in np.flatnonzero(verdict == _UNDECIDED):
            verdict[k] = self._by_lps(pieces, index[k], low[k], high[k], a[k], c[k],
                                      reached[1.0][k], reached[-1.0][k],
                                      new_points.setdefault(k, []))
        for state in (_ACTIVE, _INACTIVE, _CROSSING):
            pieces.state[index[verdict == state], i] = state
        found = np.array([k for k in new_points if verdict[k] != _EMPTY], dtype=int)
        _add_witnesses(pieces, index[found], [new_points[k] for k in found])
        for sign, kept, state in ((1.0, _KEEP_ACTIVE, _ACTIVE), (-1.0, _KEEP_INACTIVE, _INACTIVE)):
            thin = np.flatnonzero(verdict == kept)  # the other side is too thin: cut it off
            if len(thin):
                self._restrict(pieces, index[thin], sign, a[thin], c[thin], i, j, state)
        if (verdict == _EMPTY).any():
            keep = np.ones(pieces.count, dtype=bool)
            keep[index[verdict == _EMPTY]] = False
            pieces.keep(keep)

    def _by_lps(self, pieces, p, low, high, a, c, positive, negative, new_points):
        """Decide by the Chebyshev balls of the unreached sides of piece ``p`` (its box rows
        and the cuts its box does not imply); ball centres are added to ``new_points``."""
        rows = pieces.rows[p]
        cuts, beta = needed_cuts(pieces.A[p, self.first_cut:rows],
                                 pieces.b[p, self.first_cut:rows], low, high)
        norm = np.sqrt(a @ a)
        radius = []
        for sign, reached in ((1.0, positive), (-1.0, negative)):
            if reached:
                radius.append(_INF)
                continue
            center, r = self._side_ball(low, high, cuts, beta, -sign * a / norm, sign * c / norm)
            radius.append(r)
            if r > self.min_radius:
                new_points.append(center)
        return self._side_verdict(radius)

    def _side_ball(self, low, high, cuts, beta, row, rhs):
        """Centre and signed radius of the Chebyshev ball of the box ``[low, high]``
        intersected with the unit rows ``cuts x <= beta`` and ``row x <= rhs`` (one row or
        several; a negative radius, or -inf if the LP fails: that side is empty)."""
        row, rhs = np.atleast_2d(row), np.atleast_1d(rhs)
        d = row.shape[1]
        A = np.ones((2 * d + len(cuts) + len(row), d + 1))  # unit rows (A_i, 1): A_i x + r <= b_i
        A[:, :d] = np.vstack([np.eye(d), -np.eye(d), cuts, row])
        cost = np.zeros(d + 1)
        cost[d] = 1.0
        result = self.solver.maximize_warm(cost, A, np.concatenate([high, -low, beta, rhs]))
        if result.status != "optimal":
            return None, -_INF
        return result.x[:d], result.x[d]

    def _side_verdict(self, radius):
        """What the radii of the (active, inactive) sides say (``inf`` for a side a
        witness reached): _EMPTY, _CROSSING, _ACTIVE / _INACTIVE (the other side has no
        interior), or _KEEP_ACTIVE / _KEEP_INACTIVE (the other side is too thin: cut it
        off)."""
        wide = [r > self.min_radius for r in radius]
        if not any(wide):
            return _EMPTY
        if all(wide):
            return _CROSSING
        if min(radius) <= 0:
            return _ACTIVE if wide[0] else _INACTIVE
        return _KEEP_ACTIVE if wide[0] else _KEEP_INACTIVE

    def _cut(self, pieces, where, a, c, i, j):
        """Cut the pieces ``where`` by their hyperplanes ``a x + c = 0`` (neuron j, ``i``
        within its layer), which cross them: each becomes its active side and a copy of
        it (appended) the inactive side. Returns the positions of both sides."""
        copies = pieces.append_copies(where)
        self._restrict(pieces, copies, -1.0, a, c, i, j, _INACTIVE)
        self._restrict(pieces, where, 1.0, a, c, i, j, _ACTIVE)
        return np.concatenate([where, copies])

    def _restrict(self, pieces, where, sign, a, c, i, j, state):
        """Cut the pieces ``where`` down to their side ``sign (a x + c) >= 0`` (neuron j,
        ``i`` within its layer, which takes ``state`` there): the row, its source, the
        contracted box and the witnesses on that side (the deepest first)."""
        self._append_rows(pieces, where, -sign * a, sign * c, j)
        points, valid = pieces.points[where], pieces.valid[where]
        values = (points @ a[..., None])[..., 0] + c[:, None]
        on_side = valid & (sign * values > 0)
        deep = toward(points, values, valid, sign)
        pieces.points[where, 0] = np.where(on_side[:, :1], points[:, 0], deep)
        on_side[:, 0] = True
        pieces.valid[where] = on_side
        pieces.state[where, i] = state

    def _append_rows(self, pieces, where, row, rhs, source):
        """Add the row ``row[k] x <= rhs[k]`` (scaled to a unit row; kink ``source``) to
        piece ``where[k]`` (distinct pieces) and contract its box."""
        depth = int(pieces.rows[where].max()) + 1
        if depth > pieces.b.shape[1]:  # room for a few more rows, not one at a time
            for name, fill in (("A", 0.0), ("b", _INF)) + ((("sources", 0),) if self.track else ()):
                pieces.widen(name, depth + 3, fill)
        norm = np.sqrt((row * row).sum(1))
        row, rhs = row / norm[:, None], rhs / norm
        rows = pieces.rows[where]
        pieces.A[where, rows], pieces.b[where, rows] = row, rhs
        if self.track:
            pieces.sources[where, rows] = source
        pieces.rows[where] = rows + 1
        pieces.low[where], pieces.high[where] = contract(pieces.low[where], pieces.high[where],
                                                         row, rhs)


def _twins(layer):
    """Per ReLU unit of ``layer``, the first earlier ReLU unit with the same weights and
    bias (its pre-activation, hence its state, everywhere), or -1: a LeakyReLU, Abs or
    Clip of a tensor that also has a ReLU lowers to such copies."""
    rows = np.column_stack([layer.weight, layer.bias])[layer.relu_units]
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    twins = first[inverse.ravel()]
    return np.where(twins < np.arange(len(rows)), twins, -1)


def _add_witnesses(pieces, where, added):
    """Add the points ``added[k]`` to the witnesses of piece ``where[k]``, in free slots
    (the witness arrays grow by at least half when they are full)."""
    counts = np.array([len(x) for x in added], dtype=int)
    if not counts.any():
        return
    free = ~pieces.valid[where]
    lacking = int((counts - free.sum(1)).max())
    if lacking > 0:
        width = pieces.points.shape[1]
        width += max(lacking, width // 2)
        pieces.widen("points", width, 0.0)
        pieces.widen("valid", width, False)
        free = ~pieces.valid[where]
    for row, slots, extra in zip(where, free, added):
        if extra:
            columns = np.flatnonzero(slots)[:len(extra)]
            pieces.points[row, columns], pieces.valid[row, columns] = extra, True


def _deepest_first(pieces, where):
    """Make witness 0 of the pieces ``where`` a valid one (their first valid witness) where
    it is not."""
    where = where[~pieces.valid[where, 0]]
    column = np.argmax(pieces.valid[where], 1)
    for name in ("points", "valid"):
        array = getattr(pieces, name)
        array[where, 0], array[where, column] = array[where, column], array[where, 0]


def _keep_fewer_witnesses(pieces):
    """Keep at most ``_MAX_WITNESSES`` valid witnesses per piece (the first ones, so the
    deepest point stays first) and no empty columns."""
    order = np.argsort(~pieces.valid, axis=1, kind="stable")
    width = min(_MAX_WITNESSES, int(pieces.valid.sum(1).max(initial=1)))
    order = order[:, :width]
    rows = np.arange(pieces.count)[:, None]
    pieces.points, pieces.valid = pieces.points[rows, order], pieces.valid[rows, order]

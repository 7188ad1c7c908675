"""`enumerate_regions`: exact region enumeration by walking the adjacency graph.

The walk starts in the region of the domain's centre. For each region it builds
the constraints of its activation pattern (one row per kink that can bound a
region on the domain: a ReLU unit's sign, a tie of two window positions that can
both win; see :meth:`polyrelu.Network.kink_rows`), keeps the facets, and crosses
every facet that lies on a kink: the pattern of a point just across a facet's
relative-interior point is the neighbour's pattern (deeper units and windows may
change too; the pattern comes from a forward pass, so bent hyperplanes and
coincident kinks are handled alike). The step across is verified: no other kink
may change sign on the way. Each pattern is visited once. The walk is complete
because the regions' adjacency graph of a convex domain is connected, and across
the relative interior of a facet lies exactly one region.
"""

import dataclasses
import time
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, wait

import networkx as nx
import numpy as np

from ..deadline import Deadline
from ..errors import NumericalAmbiguityError
from ..geometry.domain import check_input_dimension
from ..geometry.interval import neuron_status
from ..geometry.lp import LPSolver
from ..geometry.polytope import HPolytope, minimal_representation
from ..options import Options
from ..progress import progress_bar
from .checkpoint import Checkpoint
from .region import Region, RegionComplex, pattern_key

__all__ = ["enumerate_regions", "Walk"]

_MAX_HALVINGS = 60


def enumerate_regions(network, domain, *, options=None, progress=False, checkpoint=None,
                      deadline=None):
    """Enumerate every activation region of ``network`` over ``domain``.

    Parameters
    ----------
    network : Network
    domain : Domain
        Bounded, full-dimensional, of dimension ``network.input_dim``.
    options : Options, optional
        Tolerances and solver settings (see :class:`polyrelu.Options`).
    progress : bool
        Show a progress bar (tqdm) while walking.
    checkpoint : str, Path or Checkpoint, optional
        A directory to stream regions to as they are found. If it already
        holds regions of this very run (same network, domain and options), the
        walk resumes from them; an interrupted run (Ctrl-C, killed) loses at
        most the last few seconds of work and finishes with exactly the regions
        of an uninterrupted run. See :class:`polyrelu.regions.checkpoint.Checkpoint`.
    deadline : Deadline, optional
        Stop when it expires (checked between regions): :class:`TimeLimitError` is
        raised, its ``partial`` the :class:`RegionComplex` of the regions built so far
        (``stats["partial"]`` is True, ``stats["queued"]`` the regions still to build;
        the checkpoint, if any, is written first, so the same call resumes).

    Returns
    -------
    RegionComplex
        All regions (full-dimensional activation regions, see
        :mod:`polyrelu.regions.region`) and their adjacency graph.

    Raises
    ------
    InvalidDomainError
        If the domain's dimension differs from the network's input dimension.
    NumericalAmbiguityError
        If a facet cannot be crossed without landing on another hyperplane.
    TimeLimitError
        If ``deadline`` expires.

    Examples
    --------
    >>> from polyrelu import Network, Domain, enumerate_regions
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> regions = enumerate_regions(absolute, Domain.box([-1], [1]))
    >>> len(regions), regions.graph.number_of_edges()
    (2, 1)
    >>> len(regions.affine_pieces())
    2
    """
    check_input_dimension(network, domain)
    options = options or Options()
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(checkpoint, network, domain, options)
    return Walk(network, domain, options, deadline).run(progress, checkpoint)


class Walk:
    """The state of one graph walk: the visited patterns, the queue, the regions and edges
    found, the statistics. :func:`enumerate_regions` runs one in this process,
    :func:`polyrelu.regions.parallel.enumerate_parallel` with workers (``run`` with an
    executor)."""

    def __init__(self, network, domain, options, deadline=None):
        self.network, self.domain, self.options = network, domain, options
        self.deadline = deadline or Deadline(None)
        self.solver = LPSolver(options)
        status = neuron_status(network, domain, options)
        self.zero_tol = status.zero_tol
        self.kinks = KinkSet(network, status)
        self.min_radius = options.min_radius_rel * domain.diameter
        self.use_qhull = options.use_qhull(domain.dim)
        self.canonical = {}  # raw pattern key -> canonical key, for patterns seen
        self.stats = {"options": dataclasses.asdict(options), "thin_regions": 0, "recentred": 0,
                      "step_halvings": 0,
                      "stable_neurons": int(network.num_hidden - status.unstable.size),
                      "kinks": int(self.kinks.ids.size)}

    # -- the walk --------------------------------------------------------------
    def run(self, progress, checkpoint=None, executor=None, jobs=1):
        """Walk the whole graph; with an ``executor``, regions are built by its workers."""
        self.start = time.perf_counter()
        self.ids, self.regions, self.crossings, self.queue = {}, [], [], deque()
        self.worker_lps = 0
        self._restore(checkpoint)
        bar = progress_bar(progress, "walking")
        bar.update(len(self.regions))
        try:
            if executor is None:
                while self.queue:
                    self._check_deadline()
                    item = self._next_item()
                    if item is not None:
                        self._record(self.build(item), checkpoint, bar)
            else:
                self._walk_in_parallel(executor, jobs, checkpoint, bar)
        finally:
            bar.close()
            if checkpoint:
                checkpoint.flush()
        return self._complex()

    def _complex(self, **extra):
        graph = self._graph()
        self.stats.update(lps=self.solver.count + self.worker_lps,
                          seconds=time.perf_counter() - self.start,
                          regions=len(self.regions), edges=graph.number_of_edges(), **extra)
        return RegionComplex(self.network, self.domain, self.regions, graph, self.stats,
                             self.zero_tol)

    def _check_deadline(self, running=0):
        """Raise TimeLimitError with the regions found so far once the deadline passed."""
        if self.deadline.expired():
            partial = self._complex(partial=True, queued=len(self.queue) + running)
            self.deadline.check(f"region walk ({len(self.regions)} regions found)", partial)

    def build(self, item):
        """Build the queued region ``item``: (region, facet points, crossings), None if thin.

        Pure with respect to the walk's bookkeeping, so worker processes can run it.
        """
        key, bits, seed = item
        pattern = np.unpackbits(bits, count=self.network.num_hidden).astype(bool)
        maps = self.network.affine_maps(pattern)
        built = self._region(pattern, maps, seed)
        if built is None:
            return None
        region, facet_points = built
        return region, facet_points, self._crossings(region, facet_points, maps)

    def _restore(self, checkpoint):
        """Start from the stored regions of a checkpoint, or from the domain's centre."""
        stored = checkpoint.load(self.zero_tol) if checkpoint else []
        self.ids.update((region.key, region.id) for region, _ in stored)
        for region, facet_points in stored:
            maps = self.network.affine_maps(region.pattern)
            self._accept(region, self._crossings(region, facet_points, maps))
        self.stats["resumed_regions"] = len(stored)
        if not stored:
            point = self._start_point()
            self.queue.append(self._discover(point, self.network.activation_pattern(point)[0]))

    def _next_item(self):
        """The next queued region still to build (None if an earlier run stored it)."""
        item = self.queue.popleft()
        return None if self.ids.get(item[0]) is not None else item

    def _record(self, built, checkpoint, bar):
        if built is None:
            self.stats["thin_regions"] += 1
            return
        region, facet_points, crossings = built
        region = dataclasses.replace(region, id=len(self.regions))
        self._accept(region, crossings)
        if checkpoint:
            checkpoint.add(region, facet_points)
        bar.update(1)

    def _walk_in_parallel(self, executor, jobs, checkpoint, bar):
        """Workers build batches of queued regions; this process keeps the visited set."""
        token = uuid.uuid4().hex
        running = set()
        while self.queue or running:
            self._check_deadline(len(running))
            while self.queue and len(running) < 2 * jobs:
                size = max(1, min(64, len(self.queue) // (2 * jobs)))
                batch = []
                while self.queue and len(batch) < size:
                    item = self._next_item()
                    if item is not None:
                        batch.append(item)
                if batch:
                    running.add(executor.submit(_build_batch, token, self.network,
                                                self.domain, self.options, batch))
            if running:
                timeout = self.deadline.remaining()
                done, running = wait(running, timeout=None if timeout == float("inf")
                                     else timeout + 0.01, return_when=FIRST_COMPLETED)
                for future in done:
                    results, lps = future.result()
                    self.worker_lps += lps
                    for built in results:
                        self._record(built, checkpoint, bar)

    def _accept(self, region, crossings):
        """Record a built region and queue the unseen neighbours across its facets."""
        self.ids[region.key] = region.id
        self.regions.append(region)
        for kink, point, raw in crossings:
            neighbour = self._neighbour_key(point, raw)
            if neighbour == region.key:
                raise NumericalAmbiguityError(
                    f"crossing the facet of kink {self.network.kink_name(kink)} "
                    f"of region {region.id} did not change the pattern"
                )
            self.crossings.append((region.id, neighbour, kink))

    def _discover(self, point, raw):
        """(canonical key, packed canonical pattern, seed) of the region at ``point``.

        The queue holds only these (not the affine maps) to keep its memory small.
        """
        pattern, _, _ = self.network.canonical_pattern(
            raw, self.zero_tol, self.domain.lower, self.domain.upper)
        bits = np.packbits(pattern)
        return bits.tobytes(), bits, point

    def _neighbour_key(self, point, raw):
        """Canonical key of the region at ``point`` (raw pattern ``raw``); queue it if new."""
        raw_key = pattern_key(raw)
        key = self.canonical.get(raw_key)
        if key is None:
            found = self._discover(point, raw)
            key = self.canonical[raw_key] = found[0]
            if key not in self.ids:
                self.ids[key] = None
                self.queue.append(found)
        return key

    def _graph(self):
        """The adjacency graph from the recorded facet crossings (each edge seen twice)."""
        graph = nx.Graph()
        graph.add_nodes_from(range(len(self.regions)))
        one_sided = 0
        for source, target_key, kink in self.crossings:
            target = self.ids[target_key]
            if target is None:
                continue
            if graph.has_edge(source, target):
                graph.edges[source, target]["seen"] += 1
            else:
                graph.add_edge(source, target, kink=int(kink), seen=1)
        for _, _, data in graph.edges(data=True):
            one_sided += data.pop("seen") == 1
        self.stats["one_sided_edges"] = one_sided
        return graph

    # -- one region ------------------------------------------------------------
    def _region(self, pattern, maps, seed):
        """Build the region of ``pattern`` from a strictly interior ``seed``; None if thin.

        The region's id is set when the walk records it (-1 until then).
        """
        A, b, sources = self._constraints(pattern, maps)
        if self.use_qhull:
            center, radius, facets = self._facets_then_ball(A, b, sources, seed)
        else:
            center, radius, facets = self._ball_then_facets(A, b)
        if facets is None:
            return None
        rows = facets.rows
        region = Region(
            -1, np.packbits(pattern), self.network.num_hidden,
            HPolytope(A[rows], b[rows], sources[rows]), center, radius,
            maps.W_eff, maps.b_eff,
        )
        return region, facets.points

    def _facets_then_ball(self, A, b, sources, seed):
        """(centre, radius, facets) for qhull: its facets from the seed need no LP, and the
        ball LP then has only the facet rows; facets None if the region is thin. The
        facets are found again from the centre if the seed was too near the boundary."""
        facets = self._facets(A, b, seed)
        center, radius = self._chebyshev_ball(A, b, np.union1d(facets.rows,
                                                               np.flatnonzero(sources < 0)))
        if center is None or radius <= self.min_radius:
            return center, radius, None
        if np.min(b - A @ seed) < 1e-3 * radius:
            self.stats["recentred"] += 1
            facets = self._facets(A, b, center)
        return center, radius, facets

    def _ball_then_facets(self, A, b):
        """(centre, radius, facets) for the ray scheme, which needs a well-centred start:
        the ball LP over all rows, then the facets from its centre (None if thin)."""
        center, radius = self.solver.chebyshev_ball(A, b)
        if center is None or radius <= self.min_radius:
            return center, radius, None
        return center, radius, self._facets(A, b, center)

    def _chebyshev_ball(self, A, b, rows):
        """Chebyshev ball of ``{A x <= b}`` from the facet rows (plus the domain's, which
        keep it bounded); all rows are used if that ball sticks out of the region, as it
        can when facets thinner than the radius tolerance were left out."""
        center, radius = self.solver.chebyshev_ball(A[rows], b[rows])
        if center is not None and np.any(A @ center + radius * (1 - 1e-9) > b):
            center, radius = self.solver.chebyshev_ball(A, b)
        return center, radius

    def _facets(self, A, b, point):
        return minimal_representation(A, b, point, min_radius=self.min_radius,
                                      solver=self.solver, use_qhull=self.use_qhull)

    def _constraints(self, pattern, maps):
        """Rows ``A x <= b`` (unit norm) of the pattern's region, with their sources (the
        kink of each row, ``-1 - f`` for domain face ``f``)."""
        A, b, kinks = self.kinks.rows(pattern, maps)
        tol = self.kinks.tol[self.kinks.column[kinks]]
        norms = np.linalg.norm(A, axis=1)
        constant = norms * self.domain.diameter <= tol
        if np.any(b[constant] < -tol[constant]):
            raise NumericalAmbiguityError("a pattern's constant constraint is violated")
        keep = ~constant
        A, b, kinks = A[keep] / norms[keep, None], b[keep] / norms[keep], kinks[keep]
        if self.kinks.pair_units.size:
            A, b, kinks = self._first_of_coincident(A, b, kinks)
        on_domain_face = self._on_domain_face(A, b)
        A = np.vstack([A[~on_domain_face], self.domain.A])
        b = np.concatenate([b[~on_domain_face], self.domain.b])
        sources = np.concatenate([kinks[~on_domain_face], -1 - np.arange(len(self.domain.b))])
        return A, b, sources

    def _first_of_coincident(self, A, b, kinks):
        """The rows without repeats: of rows on one hyperplane (to 1e-9 of the domain's
        scale), the one of the lowest kink. A window tie whose other position is a zero
        ReLU unit lies on a ReLU unit's hyperplane; the ReLU kink (lower id) is the one the
        pattern changes at, so facets and edges are tagged with it on both sides."""
        rounded = np.round(np.column_stack([A, b / max(1.0, self.domain.diameter)]) * 1e9)
        order = np.lexsort(rounded.T[::-1])  # stable: equal rows keep their (kink) order
        ordered = rounded[order]
        repeat = np.all(ordered[1:] == ordered[:-1], axis=1)
        if not repeat.any():
            return A, b, kinks
        first = np.sort(order[np.concatenate([[True], ~repeat])])
        return A[first], b[first], kinks[first]

    def _on_domain_face(self, A, b):
        """Rows that coincide with a face of the domain (the face is kept, it has no neighbour)."""
        same_normal = A @ self.domain.A.T > 1 - 1e-12
        same_offset = np.abs(b[:, None] - self.domain.b[None, :]) <= self.min_radius
        return np.any(same_normal & same_offset, axis=1)

    # -- crossing facets -------------------------------------------------------
    def _crossings(self, region, facet_points, maps):
        """List of (kink, point just across, its raw pattern) for the region's kink facets."""
        near = self.min_radius * np.linalg.norm(
            self.kinks.gradients(region.pattern, maps), axis=1)
        return list(self._crossing_points(region, facet_points, near))

    def _crossing_points(self, region, facet_points, near):
        """(kink, point just across, its pattern) for every facet of the region on a kink.

        ``near[c]`` is the magnitude of the value of kink ``kinks.ids[c]`` at distance
        ``min_radius`` from its hyperplane on this region.
        """
        polytope = region.polytope
        rows = np.flatnonzero(polytope.sources >= 0)
        normals = polytope.A[rows]
        starts = facet_points[rows]
        starts += (polytope.b[rows] - np.einsum("ij,ij->i", normals, starts))[:, None] * normals
        inside = polytope.slack(starts)
        inside[np.arange(len(rows)), rows] = np.inf
        step = 0.5 * np.minimum(inside.min(axis=1, initial=np.inf), region.radius)
        kinks = polytope.sources[rows]
        ends, patterns = self._verified_steps(starts, normals, step, kinks, near)
        return zip(kinks.tolist(), ends, patterns)

    def _verified_steps(self, starts, normals, step, kinks, near):
        """Points ``start + step * normal`` that cross no other kink, and their patterns.

        Kinks whose hyperplane passes within the radius tolerance of the start point
        (the facet's own kink and any kink coincident with it) may change sign; every
        other kink must keep its sign and stay clear of zero (a ReLU unit its
        pre-activation's, a window pair the difference of its two values), and the
        point must stay in the domain.
        """
        values_start = self.kinks.values(self.network.preactivations(starts))
        near = np.maximum(near, 1e-3 * self.kinks.tol)  # at least the rounding error
        free_to_flip = np.abs(values_start) <= near
        free_to_flip[np.arange(len(starts)), self.kinks.column[kinks]] = True
        pending = np.arange(len(starts))
        ends = starts.copy()
        patterns = np.zeros((len(starts), self.network.num_hidden), dtype=bool)
        for _ in range(_MAX_HALVINGS):
            trial = starts[pending] + step[pending, None] * normals[pending]
            z = self.network.preactivations(trial)
            values = self.kinks.values(z)
            kept = (np.sign(values) == np.sign(values_start[pending])) & (
                np.abs(values) > near)
            good = np.all(kept | free_to_flip[pending], axis=1) & self.domain.contains(
                trial, tol=-self.min_radius)
            if good.any():  # (Layer.slots refuses zero points)
                ends[pending[good]] = trial[good]
                patterns[pending[good]] = self.kinks.patterns(z[good])
            pending = pending[~good]
            if pending.size == 0:
                return ends, patterns
            self.stats["step_halvings"] += pending.size
            step[pending] /= 2
        raise NumericalAmbiguityError(
            f"cannot step across a facet at {starts[pending[0]].tolist()} without touching "
            "another kink; the arrangement is degenerate at the tolerance "
            "(try a larger Options.zero_rel)"
        )

    def _start_point(self):
        """The domain's Chebyshev centre, nudged off every kink (except kinks constant on
        its region)."""
        rng = np.random.default_rng(self.options.seed)
        center = self.domain.center
        for attempt in range(_MAX_HALVINGS):
            nudge = rng.normal(size=center.size)
            nudge *= 0.5 ** attempt * 0.1 * self.domain.radius / np.linalg.norm(nudge)
            point = center + nudge if attempt else center
            z = self.network.preactivations(point)
            pattern, maps, _ = self.network.canonical_pattern(
                self.kinks.patterns(z)[0], self.zero_tol, self.domain.lower, self.domain.upper)
            slope = np.linalg.norm(self.kinks.gradients(pattern, maps), axis=1)
            constant = slope * self.domain.diameter <= self.kinks.tol
            if np.all((np.abs(self.kinks.values(z)[0]) > self.kinks.tol) | constant):
                return point
        raise NumericalAmbiguityError("no start point off the hyperplanes was found")


class KinkSet:
    """The kinks that can bound a region over a domain, and their values at points.

    These are the unstable ReLU slots and the ties of two window positions that can both
    win (from :func:`polyrelu.geometry.interval.neuron_status`); every other kink keeps
    its side on the whole domain. A kink's *value* is a ReLU unit's pre-activation, or
    for window positions ``(a, b)`` the difference ``u_a - u_b`` of their unit values
    (``a`` wins on ties); the pattern changes only where a value changes sign.

    Attributes
    ----------
    ids : ndarray of int, shape (K,)
        The kink ids (ReLU slots, then ``num_hidden + p`` for window pair ``p``).
    column : ndarray of int, shape (num_hidden + P,)
        Position of every kink id in ``ids``, -1 for the others.
    tol : ndarray, shape (K,)
        Magnitude below which a kink's value counts as zero.
    """

    def __init__(self, network, status):
        self.network = network
        n, pairs = network.num_hidden, network.window_pairs
        units, windowed = network.slot_units(), network.window_slots()
        unstable = np.zeros(n, dtype=bool)
        unstable[status.unstable] = True
        relu = np.flatnonzero(unstable & ~windowed)
        both = unstable[pairs].all(axis=1) if len(pairs) else np.zeros(0, dtype=bool)
        self.ids = np.concatenate([relu, n + np.flatnonzero(both)]).astype(np.int64)
        self.column = np.full(n + len(pairs), -1, dtype=np.int64)
        self.column[self.ids] = np.arange(self.ids.size)
        self.relu_units = units[relu]
        self.pair_units = units[pairs[both]].reshape(-1, 2)
        zero_tol = status.zero_tol
        self.tol = np.concatenate([zero_tol[relu], zero_tol[pairs[both]].max(axis=1, initial=0.0)
                                   if both.any() else np.zeros(0)])
        self.relu_slots = np.flatnonzero(~windowed)
        self.relu_slot_units = units[self.relu_slots]
        self.is_relu_unit = np.concatenate(
            [layer.units for layer in network.layers[:-1]] or [np.zeros(0)]) == 1
        self.z_splits = np.cumsum([layer.n_z for layer in network.layers[:-2]], dtype=np.int64)

    def values(self, z):
        """Kink values (n, K) from the hidden pre-activations ``z`` (n, Z) of n points
        (:meth:`polyrelu.Network.preactivations`)."""
        relu = z[:, self.relu_units]
        if not self.pair_units.size:
            return relu
        u = np.where(self.is_relu_unit, np.maximum(z, 0.0), z)
        return np.concatenate([relu, u[:, self.pair_units[:, 0]] - u[:, self.pair_units[:, 1]]],
                              axis=1)

    def patterns(self, z):
        """Raw activation patterns (n, N) from the hidden pre-activations ``z`` (n, Z)."""
        if self.network.is_relu_mlp:
            return z > 0
        layers = self.network.layers[:-1]
        slots = [layer.slots(part) for layer, part in zip(layers, np.split(z, self.z_splits, 1))]
        return np.concatenate(slots, axis=1) if slots else np.zeros((len(z), 0), dtype=bool)

    def rows(self, pattern, maps):
        """Rows ``A x <= b`` of ``pattern``'s region (``maps`` its affine maps) for these
        kinks, in increasing kink order, and their kinks: those of
        :meth:`polyrelu.Network.kink_rows` (for a ReLU network, built directly: the same
        rows, without the slot bookkeeping)."""
        if self.network.is_relu_mlp:
            sign = np.where(pattern[self.ids], 1.0, -1.0)
            return (-sign[:, None] * maps.pre_A[self.ids], sign * maps.pre_c[self.ids],
                    self.ids)
        G, g, kinks = self.network.kink_rows(pattern, maps)
        keep = self.column[kinks] >= 0
        return -G[keep], g[keep], kinks[keep]

    def gradients(self, pattern, maps):
        """Gradients (K, d) of the kink values on ``pattern``'s region (``maps`` its affine
        maps)."""
        relu = maps.pre_A[self.relu_units]
        if not self.pair_units.size:
            return relu
        active = np.ones(len(maps.pre_A), dtype=bool)
        active[self.relu_slot_units] = np.asarray(pattern, dtype=bool)[self.relu_slots]
        u_A = maps.pre_A * active[:, None]
        return np.vstack([relu, u_A[self.pair_units[:, 0]] - u_A[self.pair_units[:, 1]]])


_WORKER_WALKS = {}


def _build_batch(token, network, domain, options, batch):
    """Worker side of a parallel walk: build a batch of regions (one walk per process)."""
    walk = _WORKER_WALKS.get(token)
    if walk is None:
        _WORKER_WALKS.clear()
        walk = _WORKER_WALKS[token] = Walk(network, domain, options)
    before = walk.solver.count
    return [walk.build(item) for item in batch], walk.solver.count - before

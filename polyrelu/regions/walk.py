"""`enumerate_regions`: exact region enumeration by walking the adjacency graph.

The walk starts in the region of the domain's centre. For each region it builds
the constraints of its activation pattern, keeps the facets, and crosses every
facet that lies on a neuron's hyperplane: the pattern of a point just across a
facet's relative-interior point is the neighbour's pattern (deeper neurons may
change too; the pattern comes from a forward pass, so bent hyperplanes and
coincident neurons are handled alike). Each pattern is visited once. The walk
is complete because the regions' adjacency graph of a convex domain is
connected, and across the relative interior of a facet lies exactly one region.
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
        self.zero_tol, self.free = status.zero_tol, status.unstable
        self.min_radius = options.min_radius_rel * domain.diameter
        self.use_qhull = options.use_qhull(domain.dim)
        self.canonical = {}  # raw pattern key -> canonical key, for patterns seen
        self.stats = {"options": dataclasses.asdict(options), "thin_regions": 0, "recentred": 0,
                      "step_halvings": 0,
                      "stable_neurons": int(network.num_hidden - self.free.size)}

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
        for neuron, point, raw in crossings:
            neighbour = self._neighbour_key(point, raw)
            if neighbour == region.key:
                raise NumericalAmbiguityError(
                    f"crossing the facet of neuron {self.network.neuron_name(neuron)} "
                    f"of region {region.id} did not change the pattern"
                )
            self.crossings.append((region.id, neighbour, neuron))

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
        for source, target_key, neuron in self.crossings:
            target = self.ids[target_key]
            if target is None:
                continue
            if graph.has_edge(source, target):
                graph.edges[source, target]["seen"] += 1
            else:
                graph.add_edge(source, target, neuron=int(neuron), seen=1)
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
        facets = self._facets(A, b, seed)
        center, radius = self._chebyshev_ball(A, b, np.union1d(facets.rows,
                                                               np.flatnonzero(sources < 0)))
        if center is None or radius <= self.min_radius:
            return None
        if np.min(b - A @ seed) < 1e-3 * radius:
            self.stats["recentred"] += 1
            facets = self._facets(A, b, center)
        rows = facets.rows
        region = Region(
            -1, np.packbits(pattern), self.network.num_hidden,
            HPolytope(A[rows], b[rows], sources[rows]), center, radius,
            maps.W_eff, maps.b_eff,
        )
        return region, facets.points

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
        """Rows ``A x <= b`` (unit norm) of the pattern's region, with their sources."""
        free = self.free
        sign = np.where(pattern[free], 1.0, -1.0)
        A = -sign[:, None] * maps.pre_A[free]
        b = sign * maps.pre_c[free]
        norms = np.linalg.norm(A, axis=1)
        constant = norms * self.domain.diameter <= self.zero_tol[free]
        if np.any(b[constant] < -self.zero_tol[free][constant]):
            raise NumericalAmbiguityError("a pattern's constant constraint is violated")
        keep = ~constant
        A, b, free = A[keep] / norms[keep, None], b[keep] / norms[keep], free[keep]
        on_domain_face = self._on_domain_face(A, b)
        A = np.vstack([A[~on_domain_face], self.domain.A])
        b = np.concatenate([b[~on_domain_face], self.domain.b])
        sources = np.concatenate([free[~on_domain_face], -1 - np.arange(len(self.domain.b))])
        return A, b, sources

    def _on_domain_face(self, A, b):
        """Rows that coincide with a face of the domain (the face is kept, it has no neighbour)."""
        same_normal = A @ self.domain.A.T > 1 - 1e-12
        same_offset = np.abs(b[:, None] - self.domain.b[None, :]) <= self.min_radius
        return np.any(same_normal & same_offset, axis=1)

    # -- crossing facets -------------------------------------------------------
    def _crossings(self, region, facet_points, maps):
        """List of (neuron, point just across, its raw pattern) for the region's neuron facets."""
        near = self.min_radius * np.linalg.norm(maps.pre_A, axis=1)
        return list(self._crossing_points(region, facet_points, near))

    def _crossing_points(self, region, facet_points, near):
        """(neuron, point just across, its pattern) for every facet of the region on a neuron.

        ``near[j]`` is the magnitude of neuron j's pre-activation at distance
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
        neurons = polytope.sources[rows]
        ends, patterns = self._verified_steps(starts, normals, step, neurons, near)
        return zip(neurons.tolist(), ends, patterns)

    def _verified_steps(self, starts, normals, step, neurons, near):
        """Points ``start + step * normal`` that cross no other hyperplane, and their patterns.

        Neurons whose hyperplane passes within the radius tolerance of the start
        point (the facet's own neuron and any neuron coincident with it) may change
        sign; every other neuron must keep its sign and stay clear of zero, and
        the point must stay in the domain.
        """
        z_start = self.network.preactivations(starts)
        near = np.maximum(near, 1e-3 * self.zero_tol)  # at least the rounding error of z
        free_to_flip = np.abs(z_start) <= near
        free_to_flip[np.arange(len(starts)), neurons] = True
        pending = np.arange(len(starts))
        ends = starts.copy()
        patterns = np.zeros(z_start.shape, dtype=bool)
        for _ in range(_MAX_HALVINGS):
            trial = starts[pending] + step[pending, None] * normals[pending]
            z_end = self.network.preactivations(trial)
            kept = (np.sign(z_end) == np.sign(z_start[pending])) & (
                np.abs(z_end) > near)
            good = np.all(kept | free_to_flip[pending], axis=1) & self.domain.contains(
                trial, tol=-self.min_radius)
            ends[pending[good]] = trial[good]
            patterns[pending[good]] = z_end[good] > 0
            pending = pending[~good]
            if pending.size == 0:
                return ends, patterns
            self.stats["step_halvings"] += pending.size
            step[pending] /= 2
        raise NumericalAmbiguityError(
            f"cannot step across a facet at {starts[pending[0]].tolist()} without touching "
            "another hyperplane; the arrangement is degenerate at the tolerance "
            "(try a larger Options.zero_rel)"
        )

    def _start_point(self):
        """The domain's Chebyshev centre, nudged off every hyperplane."""
        rng = np.random.default_rng(self.options.seed)
        center = self.domain.center
        for attempt in range(_MAX_HALVINGS):
            nudge = rng.normal(size=center.size)
            nudge *= 0.5 ** attempt * 0.1 * self.domain.radius / np.linalg.norm(nudge)
            point = center + nudge if attempt else center
            raw = self.network.activation_pattern(point)[0]
            _, maps, zero = self.network.canonical_pattern(
                raw, self.zero_tol, self.domain.lower, self.domain.upper)
            z = maps.pre_A @ point + maps.pre_c
            if np.all((np.abs(z) > self.zero_tol) | zero):
                return point
        raise NumericalAmbiguityError("no start point off the hyperplanes was found")


_WORKER_WALKS = {}


def _build_batch(token, network, domain, options, batch):
    """Worker side of a parallel walk: build a batch of regions (one walk per process)."""
    walk = _WORKER_WALKS.get(token)
    if walk is None:
        _WORKER_WALKS.clear()
        walk = _WORKER_WALKS[token] = Walk(network, domain, options)
    before = walk.solver.count
    return [walk.build(item) for item in batch], walk.solver.count - before

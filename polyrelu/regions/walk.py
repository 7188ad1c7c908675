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
from array import array
from collections import deque
from concurrent.futures import FIRST_COMPLETED, wait

import numpy as np

from ..deadline import Deadline
from ..errors import NumericalAmbiguityError, PolyreluError
from ..geometry.domain import check_input_dimension
from ..geometry.interval import neuron_status
from ..geometry.lp import LPSolver
from ..geometry.polytope import HPolytope, minimal_representation
from ..network.model import LocalAffineMaps
from ..options import Options
from ..progress import progress_bar
from .checkpoint import Checkpoint, StreamedComplex
from .region import Region, RegionComplex

__all__ = ["Walk", "enumerate_regions", "open_checkpoint"]

_MAX_HALVINGS = 60
_THIN = -1  # the id of a pattern whose region was too thin to keep
_BATCH = 64  # regions built at once (their maps and facet steps as array operations)


def enumerate_regions(network, domain, *, options=None, progress=False, checkpoint=None,
                      deadline=None, keep=True):
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
    keep : bool
        Keep the regions in memory and return a :class:`RegionComplex` (default). With
        ``keep=False`` (a ``checkpoint`` is required) the regions are only streamed to the
        checkpoint, so the walk's memory is bounded by its frontier (the visited patterns,
        the queue, the crossings into regions not yet built, 24 bytes per edge), not by
        the complex; a :class:`~polyrelu.regions.checkpoint.StreamedComplex` is returned,
        whose ``save`` writes the complex file (on a deadline, ``partial`` is the walk's
        stats). The trade-off, measured on a 6-10-10-1 network (19k regions): streamed,
        the walk holds about 0.5 kB per region (visited patterns, the raw-to-canonical
        pattern map, the edges); kept, about 2.6 kB (a :class:`Region` object with its
        facets and affine map per region), and 1.9 kB more once ``graph`` is first used
        (networkx).

    Returns
    -------
    RegionComplex or StreamedComplex
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
    checkpoint = open_checkpoint(checkpoint, network, domain, options, keep)
    return Walk(network, domain, options, deadline).run(progress, checkpoint, keep=keep)


def open_checkpoint(checkpoint, network, domain, options, keep=True):
    """``checkpoint`` as a :class:`Checkpoint` (a path is opened), or None; a walk that
    keeps no regions (``keep=False``) needs one (:class:`PolyreluError` otherwise)."""
    if checkpoint is None and not keep:
        raise PolyreluError("a walk that keeps no regions in memory (keep=False) needs a "
                            "checkpoint to stream them to")
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(checkpoint, network, domain, options)
    return checkpoint


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
    def run(self, progress, checkpoint=None, executor=None, jobs=1, keep=True):
        """Walk the whole graph; with an ``executor``, regions are built by its workers.

        Returns the :class:`RegionComplex`; with ``keep=False`` the regions are not kept
        in memory (they are in ``checkpoint``, which is required) and a
        :class:`StreamedComplex` is returned.
        """
        self.start = time.perf_counter()
        self.ids, self.pending, self.queue = {}, {}, deque()
        self.regions = [] if keep else None
        self.count, self.one_sided, self.worker_lps = 0, 0, 0
        self.edges = array("q")  # (earlier region, later region, kink) per edge, flat
        self._restore(checkpoint)
        bar = progress_bar(progress, "walking")
        bar.update(self.count)
        try:
            if executor is None:
                while self.queue:
                    self._check_deadline()
                    batch = self._next_batch(_BATCH)
                    for done, (item, built) in enumerate(zip(batch, self.build_batch(batch))):
                        if done and self.deadline.expired():  # the rest go back to the queue
                            self.queue.extendleft(reversed(batch[done:]))
                            self._check_deadline()
                        self._record(item[0], built, checkpoint, bar)
            else:
                self._walk_in_parallel(executor, jobs, checkpoint, bar)
        finally:
            bar.close()
            if checkpoint:
                checkpoint.flush()
        return self._complex() if keep else self._streamed(checkpoint)

    def _update_stats(self, **extra):
        self.stats.update(lps=self.solver.count + self.worker_lps,
                          seconds=time.perf_counter() - self.start, regions=self.count,
                          edges=len(self.edges) // 3, one_sided_edges=self.one_sided, **extra)

    def _complex(self, **extra):
        self._update_stats(**extra)
        return RegionComplex(self.network, self.domain, self.regions, self.edge_array(),
                             self.stats, self.zero_tol)

    def _streamed(self, checkpoint):
        self._update_stats()
        return StreamedComplex(checkpoint, self.edge_array(), self.stats, self.zero_tol)

    def _check_deadline(self, running=0):
        """Raise TimeLimitError with the regions found so far once the deadline passed
        (a :class:`RegionComplex`, or the stats of a walk that keeps no regions)."""
        if self.deadline.expired():
            extra = {"partial": True, "queued": len(self.queue) + running}
            if self.regions is None:
                self._update_stats(**extra)
                partial = self.stats
            else:
                partial = self._complex(**extra)
            self.deadline.check(f"region walk ({self.count} regions found)", partial)

    def build_batch(self, items):
        """Build the queued regions ``items``: per item (region, facet points, crossings),
        or None if thin. The affine maps and the steps across the facets are computed for
        the whole batch at once.

        Pure with respect to the walk's bookkeeping, so worker processes can run it.
        """
        patterns = np.unpackbits(np.array([bits for _, bits, _ in items]), axis=1,
                                 count=self.network.num_hidden).astype(bool)
        maps = self.kinks.affine_maps(patterns)
        built = self._regions(patterns, maps, [seed for _, _, seed in items])
        kept = [i for i, found in enumerate(built) if found is not None]
        crossings = self._crossings([built[i] for i in kept], [maps[i] for i in kept])
        results = [None] * len(items)
        for i, crossed in zip(kept, crossings):
            results[i] = (*built[i], crossed)
        return results

    def _restore(self, checkpoint):
        """Start from the stored regions of a checkpoint (read chunk by chunk), or from the
        domain's centre."""
        for region, facet_points in checkpoint.stored(self.zero_tol) if checkpoint else ():
            maps = self.network.affine_maps(region.pattern)
            self._accept(region, self._crossings([(region, facet_points)], [maps])[0])
        self.stats["resumed_regions"] = self.count
        if self.count:
            self.queue = deque(item for item in self.queue if self.ids[item[0]] is None)
        else:
            point = self._start_point()
            self.queue.append(self._discover(point, self.network.activation_pattern(point)[0]))

    def _next_batch(self, size):
        """Up to ``size`` queued regions still to build (not stored by an earlier run)."""
        batch = []
        while self.queue and len(batch) < size:
            item = self.queue.popleft()
            if self.ids.get(item[0]) is None:
                batch.append(item)
        return batch

    def _record(self, key, built, checkpoint, bar):
        """Record the region built for the queued pattern ``key`` (``built`` None: thin)."""
        if built is None:
            self.stats["thin_regions"] += 1
            self.ids[key] = _THIN
            self.pending.pop(key, None)
            return
        region, facet_points, crossings = built
        region = dataclasses.replace(region, id=self.count)
        self._accept(region, crossings)
        if checkpoint:
            checkpoint.add(region, facet_points)
        bar.update(1)

    def _walk_in_parallel(self, executor, jobs, checkpoint, bar):
        """Workers build batches of queued regions; this process keeps the visited set."""
        token = uuid.uuid4().hex
        running = {}  # future -> the keys of its batch
        while self.queue or running:
            self._check_deadline(len(running))
            while self.queue and len(running) < 2 * jobs:
                batch = self._next_batch(max(1, min(_BATCH, len(self.queue) // (2 * jobs))))
                if batch:
                    future = executor.submit(_build_batch, token, self.network, self.domain,
                                             self.options, batch)
                    running[future] = [item[0] for item in batch]
            if running:
                timeout = self.deadline.remaining()
                done, _ = wait(running, timeout=None if timeout == float("inf")
                               else timeout + 0.01, return_when=FIRST_COMPLETED)
                for future in done:
                    results, lps = future.result()
                    self.worker_lps += lps
                    for key, built in zip(running.pop(future), results):
                        self._record(key, built, checkpoint, bar)

    def _accept(self, region, crossings):
        """Record a built region, its edges to the regions built before it (those across
        its facets, and those whose facets were crossed into it), and queue the unseen
        neighbours across its facets.

        A crossing into a region not built yet waits in ``pending`` until that region is
        built (or found thin), so the walk holds the crossings of its frontier only. An
        edge takes the kink of its first crossing; one seen from one side only counts in
        ``stats["one_sided_edges"]``.
        """
        self.ids[region.key] = region.id
        self.count += 1
        if self.regions is not None:
            self.regions.append(region)
        seen = {}  # earlier neighbour -> [kink of the first crossing, crossings]
        for neighbour, kink in self.pending.pop(region.key, ()):
            seen.setdefault(neighbour, [kink, 0])[1] += 1
        kinks, points, bits, canonical = crossings
        for kink, point, raw, surely in zip(kinks.tolist(), points, bits, canonical.tolist()):
            key = self._neighbour_key(point, raw, surely)
            if key == region.key:
                raise NumericalAmbiguityError(
                    f"crossing the facet of kink {self.network.kink_name(kink)} "
                    f"of region {region.id} did not change the pattern"
                )
            neighbour = self.ids[key]
            if neighbour is None:
                self.pending.setdefault(key, []).append((region.id, kink))
            elif neighbour != _THIN:
                seen.setdefault(neighbour, [kink, 0])[1] += 1
        for neighbour, (kink, times) in seen.items():
            self.edges.extend((neighbour, region.id, kink))
            self.one_sided += times == 1

    def _discover(self, point, raw):
        """(canonical key, packed canonical pattern, seed) of the region at ``point``.

        The queue holds only these (not the affine maps) to keep its memory small.
        """
        pattern, _, _ = self.network.canonical_pattern(
            raw, self.zero_tol, self.domain.lower, self.domain.upper)
        bits = np.packbits(pattern)
        return bits.tobytes(), bits, point

    def _neighbour_key(self, point, bits, canonical=False):
        """Canonical key of the region at ``point`` (raw pattern ``bits``, packed; known to
        be canonical if ``canonical``); queue it if new."""
        raw_key = bits.tobytes()
        key = raw_key if canonical else self.canonical.get(raw_key)
        if key is None:
            raw = np.unpackbits(bits, count=self.network.num_hidden).astype(bool)
            found = self._discover(point.copy(), raw)
            key = self.canonical[raw_key] = found[0]
            self._queue_new(found)
        elif canonical and key not in self.ids:  # copy the seed only for a new region
            self._queue_new((key, bits.copy(), point.copy()))
        return key

    def _queue_new(self, found):
        """Queue the discovered region ``found`` (key, bits, seed) unless it was seen."""
        if found[0] not in self.ids:
            self.ids[found[0]] = None
            self.queue.append(found)

    def edge_array(self):
        """The edges found, int64 array (E, 3): the two regions (earlier first) and the
        kink of their shared facet. A view of the walk's buffer (no copy), so it is taken
        once the walk is over (the buffer cannot grow while a view exists)."""
        return np.frombuffer(self.edges, dtype=np.int64).reshape(-1, 3)

    # -- building regions ------------------------------------------------------
    def _regions(self, patterns, maps, seeds):
        """Per pattern (with its maps and a strictly interior seed), its region and facet
        points, or None if thin. The region's id is set when the walk records it (-1 until
        then).

        With qhull the facets come first, from the seed (no LP), and the Chebyshev balls
        then need only the facet rows (:meth:`_balls`); the facets are found again from
        the centre if the seed was too near the boundary. The ray scheme needs a
        well-centred start: the balls over all rows first, then the facets from their
        centres. The balls of the batch are solved together
        (:meth:`~polyrelu.geometry.lp.LPSolver.chebyshev_balls`).
        """
        systems = self._systems(patterns, maps)
        if self.use_qhull:
            facets = [self._facets(A, b, seed) for (A, b, _), seed in zip(systems, seeds)]
            balls = self._balls(systems, [np.union1d(found.rows, np.flatnonzero(sources < 0))
                                          for found, (_, _, sources) in zip(facets, systems)])
        else:
            facets = [None] * len(systems)
            balls = self.solver.chebyshev_balls([(A, b) for A, b, _ in systems])
        built = []
        for (A, b, sources), found, (center, radius), seed, pattern, piece in zip(
                systems, facets, balls, seeds, patterns, maps):
            if center is None or radius <= self.min_radius:
                built.append(None)
                continue
            if found is None or np.min(b - A @ seed) < 1e-3 * radius:
                self.stats["recentred"] += found is not None
                found = self._facets(A, b, center)
            rows = found.rows
            built.append((Region(-1, np.packbits(pattern), self.network.num_hidden,
                                 HPolytope(A[rows], b[rows], sources[rows]), center, radius,
                                 piece.W_eff, piece.b_eff), found.points))
        return built

    def _balls(self, systems, rows):
        """Chebyshev balls of the systems ``{A x <= b}`` from their rows ``rows`` (the
        facets, plus the domain's, which keep them bounded); all rows are used for a
        ball that sticks out of its region, as it can when facets thinner than the radius
        tolerance were left out."""
        balls = self.solver.chebyshev_balls([(A[kept], b[kept])
                                             for (A, b, _), kept in zip(systems, rows)])
        for i, ((A, b, _), (center, radius)) in enumerate(zip(systems, balls)):
            if center is not None and np.any(A @ center + radius * (1 - 1e-9) > b):
                balls[i] = self.solver.chebyshev_ball(A, b)
        return balls

    def _facets(self, A, b, point):
        return minimal_representation(A, b, point, min_radius=self.min_radius,
                                      solver=self.solver, use_qhull=self.use_qhull)

    def _systems(self, patterns, maps):
        """Per pattern (n, N) and its maps, the rows ``A x <= b`` (unit norm) of its region
        and their sources (the kink of each row, ``-1 - f`` for domain face ``f``); for a
        ReLU network computed for all the patterns at once (their rows have one shape)."""
        if self.network.is_relu_mlp:
            return self._constraints(patterns, maps)
        return [system for pattern, piece in zip(patterns, maps)
                for system in self._constraints(pattern[None], [piece])]

    def _constraints(self, patterns, maps):
        """:meth:`_systems` of patterns whose kink rows have one shape."""
        A, b, kinks = self.kinks.rows(patterns, maps)
        tol = np.broadcast_to(self.kinks.tol[self.kinks.column[kinks]], b.shape)
        norms = np.linalg.norm(A, axis=2)
        constant = norms * self.domain.diameter <= tol
        if np.any(b[constant] < -tol[constant]):
            raise NumericalAmbiguityError("a pattern's constant constraint is violated")
        norms = np.where(constant, 1.0, norms)
        A, b = A / norms[..., None], b / norms
        keep = ~constant & ~self._on_domain_face(A, b)
        faces = -1 - np.arange(len(self.domain.b))
        systems = []
        for rows, offsets, kept in zip(A, b, keep):
            rows, offsets, sources = rows[kept], offsets[kept], kinks[kept]
            if self.kinks.pair_units.size:
                rows, offsets, sources = self._first_of_coincident(rows, offsets, sources)
            systems.append((np.vstack([rows, self.domain.A]),
                            np.concatenate([offsets, self.domain.b]),
                            np.concatenate([sources, faces])))
        return systems

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
        """Rows (of any leading shape) that coincide with a face of the domain (the face is
        kept, it has no neighbour)."""
        same_normal = A @ self.domain.A.T > 1 - 1e-12
        same_offset = np.abs(b[..., None] - self.domain.b) <= self.min_radius
        return np.any(same_normal & same_offset, axis=-1)

    # -- crossing facets -------------------------------------------------------
    def _crossings(self, built, maps):
        """Per built region (region, facet points), the arrays of its kink facets' kinks,
        points just across them, their raw patterns (packed) and whether each is surely
        canonical; the steps of all the regions are taken at once."""
        parts = [self._facet_starts(region, points, piece)
                 for (region, points), piece in zip(built, maps)]
        if not parts:
            return []
        starts, normals, step, kinks, near = (np.concatenate(column) for column in zip(*parts))
        ends, patterns, canonical = self._verified_steps(starts, normals, step, kinks, near)
        bounds = np.cumsum([0] + [len(part[0]) for part in parts])
        bits = np.packbits(patterns, axis=1)
        return [(kinks[start:stop], ends[start:stop], bits[start:stop], canonical[start:stop])
                for start, stop in zip(bounds[:-1], bounds[1:])]

    def _facet_starts(self, region, facet_points, maps):
        """For the region's facets on a kink: the points on them to step from, their
        normals, the step lengths, the kinks, and ``near`` (see :meth:`_verified_steps`)."""
        polytope = region.polytope
        rows = np.flatnonzero(polytope.sources >= 0)
        normals = polytope.A[rows]
        starts = facet_points[rows]
        starts += (polytope.b[rows] - np.einsum("ij,ij->i", normals, starts))[:, None] * normals
        inside = polytope.slack(starts)
        inside[np.arange(len(rows)), rows] = np.inf
        step = 0.5 * np.minimum(inside.min(axis=1, initial=np.inf), region.radius)
        kinks = polytope.sources[rows]
        gradients = self.kinks.gradients(region.pattern, maps)
        near = self.min_radius * np.linalg.norm(gradients, axis=1)
        return starts, normals, step, kinks, np.broadcast_to(near, (len(rows), near.size))

    def _verified_steps(self, starts, normals, step, kinks, near):
        """Points ``start + step * normal`` that cross no other kink, their patterns, and
        whether each pattern is surely canonical (:meth:`KinkSet.surely_canonical`).

        Kinks whose hyperplane passes within the radius tolerance of the start point
        (the facet's own kink and any kink coincident with it) may change sign; every
        other kink must keep its sign and stay clear of zero (a ReLU unit its
        pre-activation's, a window pair the difference of its two values), and the
        point must stay in the domain. ``near[i, c]`` is the magnitude of the value of
        kink ``kinks.ids[c]`` at distance ``min_radius`` from its hyperplane on the
        region of start ``i``.
        """
        values_start = self.kinks.values(self.network.preactivations(starts))
        near = np.maximum(near, 1e-3 * self.kinks.tol)  # at least the rounding error
        free_to_flip = np.abs(values_start) <= near
        free_to_flip[np.arange(len(starts)), self.kinks.column[kinks]] = True
        pending = np.arange(len(starts))
        ends = starts.copy()
        patterns = np.zeros((len(starts), self.network.num_hidden), dtype=bool)
        canonical = np.zeros(len(starts), dtype=bool)
        for _ in range(_MAX_HALVINGS):
            trial = starts[pending] + step[pending, None] * normals[pending]
            z = self.network.preactivations(trial)
            values = self.kinks.values(z)
            kept = (np.sign(values) == np.sign(values_start[pending])) & (
                np.abs(values) > near[pending])
            good = np.all(kept | free_to_flip[pending], axis=1) & self.domain.contains(
                trial, tol=-self.min_radius)
            if good.any():  # (Layer.slots refuses zero points)
                found = pending[good]
                ends[found] = trial[good]
                patterns[found] = self.kinks.patterns(z[good])
                canonical[found] = self.kinks.surely_canonical(z[good], patterns[found])
            pending = pending[~good]
            if pending.size == 0:
                return ends, patterns, canonical
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
        self.zero_margin = 2 * zero_tol + 1e-300  # a zero slot's value is below its zero_tol

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

    def surely_canonical(self, z, patterns):
        """Whether each raw pattern (n, N) at points of pre-activations ``z`` (n, Z) is its
        own canonical form (:meth:`polyrelu.Network.canonical_pattern`): for a ReLU network,
        when no active unit's value is within twice its zero tolerance of 0 (a unit whose
        map is zero on the domain has a value within its zero tolerance); never said of
        other networks (their window ties need the maps)."""
        if not self.network.is_relu_mlp:
            return np.zeros(len(z), dtype=bool)
        return ~np.any(patterns & (z <= self.zero_margin), axis=1)

    def affine_maps(self, patterns):
        """The :class:`~polyrelu.network.model.LocalAffineMaps` of each pattern (n, N); for
        a ReLU network computed for all the patterns at once (the masks of
        :meth:`polyrelu.Network.layer_masks` applied to a stack of maps)."""
        network = self.network
        if not network.is_relu_mlp:
            return [network.affine_maps(pattern) for pattern in patterns]
        n, d = len(patterns), network.input_dim
        A, c = np.broadcast_to(np.eye(d), (n, d, d)), np.zeros((n, d))
        pre_A, pre_c, offset = [], [], 0
        for w, b in zip(network.weights[:-1], network.biases[:-1]):
            A, c = np.matmul(w, A), c @ w.T + b
            pre_A.append(A)
            pre_c.append(c)
            mask = patterns[:, offset:offset + len(b)]
            A, c = A * mask[:, :, None], c * mask
            offset += len(b)
        W, b = network.weights[-1], network.biases[-1]
        A, c = np.matmul(W, A), c @ W.T + b
        pre_A = np.concatenate(pre_A, axis=1) if pre_A else np.zeros((n, 0, d))
        pre_c = np.concatenate(pre_c, axis=1) if pre_c else np.zeros((n, 0))
        return [LocalAffineMaps(*parts) for parts in zip(pre_A, pre_c, A, c)]

    def rows(self, patterns, maps):
        """Rows ``A x <= b`` of the regions of ``patterns`` (n, N) (``maps`` their affine
        maps) for these kinks, in increasing kink order, and their kinks: arrays (n, K, d),
        (n, K) and (K,). They are those of :meth:`polyrelu.Network.kink_rows` (for a ReLU
        network built directly, for all the patterns at once: the same rows, without the
        slot bookkeeping); other networks take one pattern at a time (n = 1)."""
        if self.network.is_relu_mlp:
            sign = np.where(patterns[:, self.ids], 1.0, -1.0)
            pre_A = np.stack([piece.pre_A[self.ids] for piece in maps])
            pre_c = np.stack([piece.pre_c[self.ids] for piece in maps])
            return -sign[..., None] * pre_A, sign * pre_c, self.ids
        (pattern,), (piece,) = patterns, maps
        G, g, kinks = self.network.kink_rows(pattern, piece)
        keep = self.column[kinks] >= 0
        return -G[keep][None], g[keep][None], kinks[keep]

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
    return walk.build_batch(batch), walk.solver.count - before

"""`HPolytope` and the computation of a minimal H-representation (the facets).

Sign convention, everywhere in polyrelu: a polytope is ``{x : A x <= b}``.
"""

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, HalfspaceIntersection, QhullError

from ..errors import NumericalAmbiguityError
from .boxes import cut_bound, tighten

__all__ = ["Facets", "HPolytope", "minimal_representation"]

# Rows whose projection onto another row's hyperplane is shorter than this are
# parallel to it: they do not bound the facet within its hyperplane.
_PARALLEL = 1e-12
# In-plane norms above this are computed as sqrt(1 - cos^2) (relative error below 1e-8).
_NEARLY_PARALLEL = 1e-4


@dataclass(frozen=True)
class HPolytope:
    """A bounded polytope ``{x : A x <= b}`` whose rows are tagged with their origin.

    Attributes
    ----------
    A : ndarray, shape (k, d)
        Constraint normals; polyrelu stores facets with unit-norm rows.
    b : ndarray, shape (k,)
    sources : ndarray of int, shape (k,)
        ``sources[i] >= 0`` is the global index of the hidden neuron whose
        hyperplane is row i; ``sources[i] = -1 - f`` means face ``f`` of the domain.
    """

    A: np.ndarray
    b: np.ndarray
    sources: np.ndarray

    @property
    def dim(self):
        """Dimension d of the ambient space."""
        return self.A.shape[1]

    def contains(self, points, tol=0.0):
        """Boolean array (n,): whether each point satisfies ``A x <= b + tol``."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        return np.all(points @ self.A.T <= self.b + tol, axis=1)

    def slack(self, points):
        """``b - A x`` for points of shape (n, d): array (n, k), >= 0 inside."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        return self.b - points @ self.A.T

    def vertices(self, interior_point):
        """Vertices of the polytope: qhull's halfspace intersection (d >= 2), the two ends
        ``[[lower], [upper]]`` for d = 1."""
        if self.dim == 1:
            a, b = self.A[:, 0], self.b
            return np.array([[np.max(b[a < 0] / a[a < 0])], [np.min(b[a > 0] / a[a > 0])]])
        halfspaces = np.hstack([self.A, -self.b[:, None]])
        return HalfspaceIntersection(halfspaces, np.asarray(interior_point, float)).intersections

    def volume(self, interior_point):
        """d-dimensional volume (length for d = 1), computed from the vertices."""
        vertices = self.vertices(interior_point)
        if self.dim == 1:
            return float(vertices[1, 0] - vertices[0, 0])
        return float(ConvexHull(vertices).volume)


@dataclass(frozen=True)
class Facets:
    """The non-redundant rows of a constraint system.

    Attributes
    ----------
    rows : ndarray of int, shape (f,)
        Indices (into the system given) of the facet-defining rows.
    points : ndarray, shape (f, d)
        A point in the relative interior of each facet.
    inner_radius : ndarray, shape (f,)
        A lower bound on each facet's inradius within its own hyperplane.
    """

    rows: np.ndarray
    points: np.ndarray
    inner_radius: np.ndarray


def minimal_representation(A, b, interior_point, *, min_radius, solver, use_qhull):
    """Find the facets of ``{x : A x <= b}`` from a strictly interior point.

    Parameters
    ----------
    A : ndarray, shape (k, d), rows of unit norm
    b : ndarray, shape (k,)
    interior_point : ndarray, shape (d,)
        Must satisfy every row strictly.
    min_radius : float
        Rows whose face has inradius (within its hyperplane) at most this are
        weakly redundant, not facets.
    solver : LPSolver
        Used for borderline facets and for the LP method.
    use_qhull : bool
        Polar convex hull (qhull) if True; otherwise ray shooting, bounds and one LP
        per row they leave undecided (see :func:`_facets_by_rays`). Measured on region
        polytopes, qhull is the faster up to 7 dimensions, the rays beyond.

    Returns
    -------
    Facets

    Examples
    --------
    >>> import numpy as np
    >>> from polyrelu.geometry.lp import LPSolver
    >>> A = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1], [1, 0]])
    >>> b = np.array([1.0, 1, 1, 1, 5])   # the last row is redundant
    >>> f = minimal_representation(A, b, np.zeros(2), min_radius=1e-9,
    ...                            solver=LPSolver(), use_qhull=True)
    >>> sorted(f.rows.tolist())
    [0, 1, 2, 3]
    """
    slack = b - A @ interior_point
    if np.any(slack <= 0):
        row = int(np.argmin(slack))
        raise NumericalAmbiguityError(
            f"seed point is not strictly inside the polytope (row {row} has slack {slack[row]:.3g})"
        )
    if A.shape[1] == 1:
        return _facet_points_by_lp(A, b, _facets_1d(A, b), min_radius, solver)
    if use_qhull:
        try:
            return _facets_by_polar_hull(A, slack, interior_point, min_radius, solver)
        except QhullError:
            pass  # a degenerate polar hull: the ray scheme needs none
    return _facets_by_rays(A, b, interior_point, slack, min_radius, solver)


def _facets_1d(A, b):
    bounds = b / A[:, 0]
    up = np.flatnonzero(A[:, 0] > 0)
    down = np.flatnonzero(A[:, 0] < 0)
    return np.array([up[np.argmin(bounds[up])], down[np.argmax(bounds[down])]])


def _facets_by_polar_hull(A, slack, center, min_radius, solver):
    """Facets = vertices of conv{a_i / s_i} (the polar of the polytope around ``center``).

    The hull starts from the rows nearest to ``center`` and grows (qhull's incremental
    mode) by the rows that cut the polytope of the rows taken so far, i.e. that some
    vertex of it violates: a row no vertex violates is redundant (the polytope is the
    hull of its vertices), so once none is left the rows taken bound the polytope
    exactly (not a heuristic). Until the rows taken bound a polytope, more of the
    nearest rows are added.
    """
    b = A @ center + slack
    order = np.argsort(slack)
    subset = order[:min(len(order), max(8 * A.shape[1], 32))]
    hull = ConvexHull(A[subset] / slack[subset, None], incremental=True)
    try:
        while True:
            offsets = -hull.equations[:, -1]
            taken = np.zeros(len(b), dtype=bool)
            taken[subset] = True
            if np.all(offsets > 0):
                # Each hull facet n.y + o = 0 is a polytope vertex center + n / (-o).
                vertices = center + hull.equations[:, :-1] / offsets[:, None]
                margin = 1e-9 * (1.0 + np.abs(b))
                new = np.flatnonzero(~taken & np.any(vertices @ A.T > b - margin, axis=0))
                if not new.size:
                    break
            elif taken.all():
                raise QhullError("the polytope is unbounded around its interior point")
            else:
                new = order[~taken[order]][:len(subset)]
            subset = np.concatenate([subset, new])
            hull.add_points(A[new] / slack[new, None])
    finally:
        hull.close()
    rows = subset[hull.vertices]
    points = _vertex_means(hull.simplices, vertices)[hull.vertices]
    radius = _inner_radius_bound(A[rows], b[rows], points)
    sure = radius > min_radius
    if sure.all():
        return _sorted_facets(rows, points, radius)
    checked = _facet_points_by_lp(A, b, rows[~sure], min_radius, solver)
    return _sorted_facets(
        np.concatenate([rows[sure], checked.rows]),
        np.vstack([points[sure], checked.points]),
        np.concatenate([radius[sure], checked.inner_radius]),
    )


def _vertex_means(simplices, vertices):
    """For each polar point, the mean of the polytope vertices (one per hull facet, the
    rows of ``simplices``) it belongs to: a point in the relative interior of its facet."""
    incidence = np.zeros((simplices.max(initial=-1) + 1, len(simplices)))
    incidence[simplices, np.arange(len(simplices))[:, None]] = 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return (incidence @ vertices) / incidence.sum(axis=1)[:, None]


def _sorted_facets(rows, points, radius):
    order = np.argsort(rows)
    return Facets(rows[order], points[order], radius[order])


def _inner_radius_bound(A, b, points):
    """Distance, within each facet's hyperplane, from its point to the other facets.

    ``A, b`` hold the facets only (unit rows); ``points[i]`` lies on facet i.
    """
    slack = b[None, :] - points @ A.T  # (f, f)
    projected = np.linalg.norm(A[None, :, :] - (A @ A.T)[:, :, None] * A[:, None, :], axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(projected < _PARALLEL, np.inf, slack / projected)
    return distance.min(axis=1, initial=np.inf)


def _in_plane_norms(A, row):
    """Norms of the rows of A projected onto the hyperplane of unit row ``row``."""
    return np.linalg.norm(A - np.outer(A @ A[row], A[row]), axis=1)


def _facet_points_by_lp(A, b, rows, min_radius, solver):
    """Chebyshev centre of each candidate facet within its hyperplane; keep the fat ones."""
    d = A.shape[1]
    keep, points, radii = [], [], []
    for row in rows:
        if d == 1:
            keep.append(row)
            points.append(A[row] * b[row])
            radii.append(np.inf)
            continue
        projected = _in_plane_norms(A, row)
        others = np.arange(len(b)) != row
        cost = np.zeros(d + 1)
        cost[d] = 1.0
        lower = np.full(d + 1, -np.inf)
        lower[d] = 0.0
        result = solver.maximize(
            cost,
            np.hstack([A[others], projected[others, None]]),
            b[others],
            A_eq=np.append(A[row], 0.0)[None, :],
            b_eq=b[row : row + 1],
            lower=lower,
        )
        if result.status == "optimal" and result.x[d] > min_radius:
            keep.append(row)
            points.append(result.x[:d])
            radii.append(result.x[d])
    return Facets(
        np.array(keep, dtype=np.int64), np.reshape(points, (len(keep), d)), np.array(radii)
    )


_RANDOM_RAYS = 32  # random directions shot besides the aimed rays
_AIMING_STEPS = 30  # relaxation steps that turn a row's ray until it meets that row first
_AIM_MARGIN = 1e-3  # relative margin by which an aimed ray meets its row before the next
_TIGHTENING_PASSES = 3  # of bound propagation shrinking the axis rows' box


def _facets_by_rays(A, b, center, slack, min_radius, solver):
    """Facets by shooting rays from ``center``; LPs only for the rows left undecided.

    The first hyperplane a ray from ``center`` meets bounds the polytope there; when the
    hit point's distance, within that hyperplane, to every other row exceeds
    ``min_radius``, the row is a facet and that distance bounds its inradius. Rays go
    along random directions and, for every row, along a direction aimed at it
    (:func:`_aimed_directions`); the hit points of one facet are averaged (the in-plane
    distance is concave, so the mean is at least as deep). Rows repeating an earlier row
    and rows that a bounding box of the polytope (:func:`_bounding_box`) keeps clear
    of are redundant, and so are rows that box cut by one facet found keeps clear of
    (:func:`_implied`). The rows left go through Clarkson's scheme over the facets found
    (one warm LP each, :meth:`_Found.clarkson`); the facets it meets without a proving
    hit point get the LP for their in-plane Chebyshev ball.
    """
    distinct = _distinct_rows(A, b)
    box = _bounding_box(A, b)
    live = distinct[~_implied(A, b, distinct, box, np.zeros(0, dtype=np.int64))]
    A, b, slack = A[live], b[live], slack[live]
    directions = np.vstack([_aimed_directions(A / slack[:, None]),
                            np.random.default_rng(0).normal(size=(_RANDOM_RAYS, A.shape[1]))])
    rows, points = _first_hits(A, b, slack, center, directions)
    radius = _in_plane_radius(A, b, rows, points)
    rows, points = _mean_per_row(rows[radius > min_radius], points[radius > min_radius])
    radius = _in_plane_radius(A, b, rows, points)
    sure = radius > min_radius
    found = _Found(A, b, slack, center, min_radius, rows[sure], points[sure], radius[sure])
    undecided = np.setdiff1d(np.arange(len(b)), found.rows)
    kinks = found.rows[np.abs(A[found.rows]).max(axis=1) < 1 - 1e-15]
    found.clarkson(undecided[~_implied(A, b, undecided, box, kinks)], solver)
    checked = _facet_points_by_lp(A, b, np.array(found.unsure, dtype=np.int64), min_radius,
                                  solver)
    return _sorted_facets(
        live[np.concatenate([found.rows, checked.rows])],
        np.vstack([found.points, checked.points]),
        np.concatenate([found.radius, checked.inner_radius]),
    )


class _Found:
    """The facets proven so far (rows, points, in-plane radii) of ``{A x <= b}`` around
    ``center``, and the rows met that still need their in-plane Chebyshev LP (``unsure``)."""

    def __init__(self, A, b, slack, center, min_radius, rows, points, radius):
        self.A, self.b, self.slack, self.center = A, b, slack, center
        self.min_radius = min_radius
        self.rows, self.points, self.radius = rows, points, radius
        self.unsure = []

    def clarkson(self, candidates, solver):
        """Decide ``candidates`` by Clarkson's scheme, warm-started: maximise each row over
        the facets found and the axis-aligned rows relaxed by ``1 + |b|`` (which keep the
        LP bounded); a row whose maximum stays within its offset is redundant, otherwise
        the ray from the centre to the maximiser meets a new facet (the row itself, in
        the end). Rows this cannot settle (an unbounded LP, a ray meeting a known facet)
        are left ``unsure``."""
        A, b = self.A, self.b
        loose = np.setdiff1d(np.flatnonzero(np.abs(A).max(axis=1) >= 1 - 1e-15), self.rows)
        model = self.rows.tolist() + loose.tolist()
        offsets = np.concatenate([b[self.rows], b[loose] + 1 + np.abs(b[loose])])
        decided = set(self.rows.tolist())
        for row in candidates[np.argsort(self.slack[candidates])]:
            while row not in decided:
                result = solver.maximize_warm(A[row], A[model], offsets)
                if result.status == "optimal" and \
                        result.value <= b[row] + 1e-12 * (1 + abs(b[row])):
                    break
                hit = self._meet(row, result.x) if result.status == "optimal" else None
                if hit is None or hit in decided:
                    self.unsure.append(row)
                    break
                decided.add(hit)
                model.append(hit)
                offsets = np.append(offsets, b[hit])

    def _meet(self, row, target):
        """The row first met on the ray from the centre to ``target`` (``row`` on a tie),
        recorded as a facet when its in-plane radius there proves it, else as unsure
        (unless it is known already)."""
        direction = target - self.center
        rates = self.A @ direction
        with np.errstate(divide="ignore", invalid="ignore"):
            steps = np.where(rates > 0, self.slack / rates, np.inf)
        hit = int(np.argmin(steps))
        if steps[row] <= steps[hit] * (1 + 1e-12):
            hit = int(row)
        if hit in self.rows or hit in self.unsure:
            return hit
        point = self.center + steps[hit] * direction
        point += (self.b[hit] - self.A[hit] @ point) * self.A[hit]
        radius = _in_plane_radius(self.A, self.b, np.array([hit]), point[None, :])
        if radius[0] > self.min_radius:
            self.rows = np.append(self.rows, hit)
            self.points = np.vstack([self.points, point])
            self.radius = np.append(self.radius, radius)
        else:
            self.unsure.append(hit)
        return hit


def _distinct_rows(A, b):
    """Indices of the rows that repeat no earlier row (same unit normal and offset to 1e-12)."""
    scale = 1.0 + np.abs(b).max(initial=0.0)
    same = (A @ A.T > 1 - 1e-12) & (np.abs(b[:, None] - b[None, :]) <= 1e-12 * scale)
    return np.flatnonzero(~np.triu(same, 1).any(axis=0))


def _bounding_box(A, b):
    """A box containing ``{A x <= b}``: the box of its axis-aligned rows shrunk by every
    row (:func:`tighten`, a few passes); None unless the axis-aligned rows bound every
    coordinate."""
    axis = np.abs(A).max(axis=1) >= 1 - 1e-15
    coordinate = np.argmax(np.abs(A), axis=1)
    upper = np.full(A.shape[1], np.inf)
    lower = np.full(A.shape[1], -np.inf)
    up = axis & (A[np.arange(len(b)), coordinate] > 0)
    np.minimum.at(upper, coordinate[up], b[up])
    down = axis & ~up
    np.maximum.at(lower, coordinate[down], -b[down])
    if not np.all(np.isfinite(upper) & np.isfinite(lower)):
        return None
    lower, upper = lower[None, :], upper[None, :]
    for _ in range(_TIGHTENING_PASSES):
        lower, upper = tighten(lower, upper, A[None, :, :], b[None, :])
    return lower[0], upper[0]


def _implied(A, b, rows, box, cuts):
    """Which ``rows`` the box (None: no box) cut by one of the rows ``cuts`` at a time
    keeps strictly within their offsets (:func:`cut_bound`): those are redundant."""
    if box is None:
        return np.zeros(len(rows), dtype=bool)
    reach = cut_bound(A[rows], box[0], box[1], A[cuts], b[cuts])
    return reach < b[rows] - 1e-12 * (1.0 + np.abs(b[rows]))


def _aimed_directions(polar):
    """For each row i, a direction u with ``polar[i] @ u`` above every other ``polar[j] @ u``
    where one was found: a ray from the centre along u then meets row i first.

    ``polar[j] = a_j / s_j`` (``s_j`` the centre's slack); the ray along u meets row j
    at step ``1 / (polar[j] @ u)``. Starting from the row's normal, each step moves u
    onto the half-space where row i beats the row that beats it most (Agmon-Motzkin
    relaxation, all rows at once), so it finds such a u for most facets and for no
    redundant row.
    """
    rows = np.arange(len(polar))
    directions = polar.copy()
    pending = rows
    for _ in range(_AIMING_STEPS):
        scores = directions[pending] @ polar.T
        own = scores[np.arange(len(pending)), pending]
        scores[np.arange(len(pending)), pending] = -np.inf
        rival = np.argmax(scores, axis=1)
        gap = own - scores[np.arange(len(pending)), rival]
        difference = polar[pending] - polar[rival]
        length = np.linalg.norm(difference, axis=1)
        target = _AIM_MARGIN * length * np.linalg.norm(directions[pending], axis=1)
        beaten = gap < target
        if not beaten.any():
            break
        pending, gap, difference = pending[beaten], gap[beaten], difference[beaten]
        step = (target[beaten] - gap) / length[beaten] ** 2
        directions[pending] += step[:, None] * difference
    return directions


def _first_hits(A, b, slack, center, directions):
    """For each ray ``center + t u`` (u a row of ``directions``), the row it meets first
    and the point where it does (on that row's hyperplane); rays that meet none are
    dropped."""
    rates = directions @ A.T
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.where(rates > 0, slack / rates, np.inf)
    rows = np.argmin(steps, axis=1)
    step = steps[np.arange(len(rows)), rows]
    bounded = np.isfinite(step)
    rows = rows[bounded]
    points = center + step[bounded, None] * directions[bounded]
    points += (b[rows] - np.einsum("ij,ij->i", A[rows], points))[:, None] * A[rows]
    return rows, points


def _in_plane_radius(A, b, rows, points):
    """Distance, within the hyperplane of row ``rows[i]``, from ``points[i]`` to every
    other row (0 if the point is not strictly inside them): a lower bound on the inradius
    of the row's face when positive."""
    if len(rows) == 0:
        return np.zeros(0)
    cosines = A[rows] @ A.T
    projected = np.sqrt(np.maximum(np.einsum("ij,ij->i", A, A) - cosines**2, 0.0))
    near = projected < _NEARLY_PARALLEL  # where the difference of squares loses digits
    pair, other = np.nonzero(near)
    projected[pair, other] = np.linalg.norm(
        A[other] - cosines[pair, other, None] * A[rows[pair]], axis=1)
    slack = b - points @ A.T
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(projected < _PARALLEL, np.where(slack > 0, np.inf, 0.0),
                            slack / projected)
    distance[np.arange(len(rows)), rows] = np.inf
    return np.maximum(distance.min(axis=1), 0.0)


def _mean_per_row(rows, points):
    """The distinct ``rows`` and, for each, the mean of its ``points``."""
    unique, which = np.unique(rows, return_inverse=True)
    total = np.zeros((len(unique), points.shape[1]))
    np.add.at(total, which, points)
    return unique, total / np.bincount(which)[:, None]

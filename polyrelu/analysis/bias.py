"""Bias maximisation: thresholds that keep a ReLU layer injective on a domain.

Layer ``relu(W x - a)`` (threshold convention; pass ``convention="pytorch"``
to get ``b = -a`` back). Normalise the rows, ``u_i = w_i / ||w_i||``. If 0 is
in the interior of ``conv{u_i}``, every x lies in the cone of some facet F of
that hull, and the rows of F span. So if ``a_j <= min{<x, w_j> : x in K,
x in cone(F)}`` for every facet F and member j, then at every x of K the rows
with ``<w_j, x> >= a_j`` span; on a convex K that already makes the layer
injective (for x != y with equal outputs, the rows of that set at the midpoint
are orthogonal to ``x - y``). That is the certified, deterministic estimate:

- :func:`polytope_bias`: one LP per (facet, member) on a polytope domain;
- :func:`sphere_values` and :func:`ball_bias`: the same minimum on the unit
  sphere, in closed form (the smallest correlation when all correlations in the
  facet are >= 0, else ``-||proj_{cone F}(-u_j)||``, one non-negative least
  squares), and on the ball of radius r, ``||w_j|| min(r v_j, 0)``;
- :func:`sampled_bias`: the most-correlated-bases estimate from sample points,
  which converges from above and is **not** a certificate;
- :func:`largest_uniform_shift`: the largest t keeping ``a + t d`` injective, by
  bisection with the exact decision, both ends certified.

The facets come from ``scipy.spatial.ConvexHull`` (qhull): their number grows
exponentially with n, so this is for small n (the papers use n <= 10 or so).
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from scipy.spatial import ConvexHull

from ..errors import InvalidNetworkError, PolyreluError
from ..geometry.domain import Domain
from ..geometry.lp import LPSolver
from ..options import Options
from .injectivity import CONVENTIONS, is_injective, thresholds

__all__ = [
    "BiasResult",
    "ShiftResult",
    "frame_facets",
    "polytope_bias",
    "sphere_values",
    "ball_bias",
    "sampled_bias",
    "largest_uniform_shift",
]


@dataclass(frozen=True)
class BiasResult:
    """A bias vector and how much it is worth.

    Attributes
    ----------
    bias : ndarray, shape (m,)
        In the convention asked for (threshold ``a`` or PyTorch ``b = -a``).
    convention : str
    certified : bool
        True when the bias provably keeps the layer injective on the domain.
    lps : int
        LPs solved to compute it.
    check : InjectivityResult or None
        The exact decision run on the result (polytope domains).
    """

    bias: np.ndarray
    convention: str
    certified: bool
    lps: int = 0
    check: object = None


def frame_facets(W):
    """Facets of ``conv{w_i / ||w_i||}`` as arrays of row indices (each spans R^n).

    Raises :class:`PolyreluError` unless 0 lies in the interior of the hull
    (then no bias makes the layer injective on a neighbourhood of 0).

    >>> import numpy as np
    >>> sorted(map(sorted, frame_facets(np.array([[1.0, 0], [0, 1], [-1, -1]])).tolist()))
    [[0, 1], [0, 2], [1, 2]]
    >>> frame_facets(np.array([[1.0, 0], [0, 1], [1, 1]]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    polyrelu.errors.PolyreluError: the normalised rows do not surround 0 (0 is not in the ...
    """
    U = _unit_rows(W)
    if not _surrounds_origin(U):
        raise PolyreluError(
            "the normalised rows do not surround 0 (0 is not in the interior of their convex "
            "hull): no bias makes the layer injective around 0")
    if U.shape[1] == 1:
        return np.arange(len(U))[:, None]
    return ConvexHull(U).simplices


def polytope_bias(W, domain, *, convention="threshold", options=None):
    """Certified bias for a polytope domain: one LP per (facet, member).

    ``a_j = min over facets F containing j of min{<x, w_j> : x in K and in
    cone(F)}``; a row in no facet, or whose facets' cones miss K, is left
    unconstrained and gets ``max_K <w_j, x>`` (it is never active on K). The
    result is re-checked with :func:`polyrelu.analysis.injectivity.is_injective`.

    >>> import numpy as np
    >>> from polyrelu import Domain
    >>> square = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
    >>> result = polytope_bias(square, Domain.box([0.5, 0.5], [1, 1]))
    >>> result.bias.tolist(), result.check.injective
    ([0.5, 0.5, -0.5, -0.5], True)
    """
    W = _matrix(W)
    _check_domain(domain, W)
    options = options or Options()
    solver = LPSolver(options)
    a = np.full(len(W), np.inf)
    U = _unit_rows(W)
    for facet in frame_facets(W):
        cone = U[facet]                       # x = cone.T @ c, c >= 0
        A = domain.A @ cone.T
        for j in facet:
            result = solver.maximize(-(cone @ W[j]), A, domain.b, lower=np.zeros(len(facet)))
            if result.status == "optimal":
                a[j] = min(a[j], -result.value)
    for j in np.flatnonzero(np.isinf(a)):
        a[j] = solver.maximize(W[j], domain.A, domain.b).value
    check = is_injective(W, a, domain, options=options)
    return BiasResult(_in_convention(a, convention), convention, check.injective,
                      solver.count, check)


def sphere_values(W):
    """Per row, ``min over facets F containing j`` of ``min <x, u_j>`` on ``cone(F) ∩ S^{n-1}``.

    Closed form: the smallest correlation ``<u_i, u_j>`` in F when all are
    >= 0, else ``-||proj_{cone F}(-u_j)||`` (non-negative least squares). Rows
    in no facet get ``+inf``.

    >>> import numpy as np
    >>> angles = 2 * np.pi * np.arange(5) / 5
    >>> values = sphere_values(np.c_[np.cos(angles), np.sin(angles)])
    >>> bool(np.allclose(values, np.cos(2 * np.pi / 5)))
    True
    """
    U = _unit_rows(_matrix(W))
    values = np.full(len(U), np.inf)
    for facet in frame_facets(U):
        cone = U[facet]
        for j in facet:
            correlations = cone @ U[j]
            if correlations.min() >= 0:
                value = correlations.min()
            else:
                value = -np.linalg.norm(cone.T @ nnls(cone.T, -U[j])[0])
            values[j] = min(values[j], value)
    return values


def ball_bias(W, radius=1.0, *, convention="threshold"):
    """Certified bias for the ball of ``radius`` around 0: ``||w_j|| min(r v_j, 0)``.

    ``v_j`` are the :func:`sphere_values`; rows in no facet keep ``-r ||w_j||``
    (never active on the ball).

    >>> import numpy as np
    >>> tetrahedron = np.array([[1.0, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]])
    >>> np.round(ball_bias(tetrahedron, 2.0).bias / np.sqrt(3), 6).tolist()
    [-1.154701, -1.154701, -1.154701, -1.154701]
    """
    if not radius > 0:
        raise PolyreluError(f"radius must be positive, got {radius}")
    W = _matrix(W)
    values = sphere_values(W)
    values[np.isinf(values)] = -1.0
    a = np.linalg.norm(W, axis=1) * np.minimum(radius * values, 0.0)
    return BiasResult(_in_convention(a, convention), convention, True)


def sampled_bias(W, points, *, convention="threshold"):
    """Most-correlated-bases estimate from sample points: **not certified**.

    For each point x (samples of the domain, e.g. of the sphere or of data),
    the n rows most correlated with x (largest ``<x, u_i>``) get
    ``a_j <= <x, w_j>``. Unseen pieces of the domain add no constraint, so the
    estimate lies above the certified bias and may break injectivity; rows
    never selected get the largest value seen. On a ball around 0 take
    ``min(bias, 0)``.
    """
    W = _matrix(W)
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    if points.shape[1] != W.shape[1] or len(points) == 0:
        raise PolyreluError(f"points must have shape (k, {W.shape[1]}), got {points.shape}")
    values = points @ W.T
    correlations = points @ _unit_rows(W).T
    chosen = np.argsort(-correlations, axis=1)[:, :W.shape[1]]
    a = np.full(len(W), np.inf)
    np.minimum.at(a, chosen.ravel(), np.take_along_axis(values, chosen, axis=1).ravel())
    unseen = np.isinf(a)
    a[unseen] = values.max(axis=0)[unseen]
    return BiasResult(_in_convention(a, convention), convention, False)


@dataclass(frozen=True)
class ShiftResult:
    """Bracket of the largest uniform shift (see :func:`largest_uniform_shift`).

    ``injective_at`` is a certified-injective t, ``fails_at`` a t with a
    verified witness (``witness``), ``fails_at - injective_at <= tol``.
    """

    injective_at: float
    fails_at: float
    witness: tuple
    checks: int


def largest_uniform_shift(W, bias, domain, direction=None, *, tol=1e-6, convention="threshold",
                          options=None):
    """Largest t such that the thresholds ``a + t d`` keep the layer injective on K.

    Bisection with the exact decision (:func:`is_injective`) between t = 0 (the
    given bias must be injective) and a t where every row is inactive on K;
    ``direction`` d (default all ones, threshold convention) must be positive.
    Returns a :class:`ShiftResult` bracket, both ends checked exactly.

    >>> from polyrelu import Domain
    >>> s = largest_uniform_shift([[1.0], [-1.0]], [-1.0, -1.0], Domain.box([-1], [1]), tol=1e-3)
    >>> round(s.injective_at, 2), s.fails_at - s.injective_at <= 1e-3
    (1.0, True)
    """
    W = _matrix(W)
    _check_domain(domain, W)
    a = thresholds(bias, convention)
    d = np.ones(len(W)) if direction is None else np.asarray(direction, dtype=np.float64)
    if d.shape != a.shape or not np.all(d > 0):
        raise PolyreluError("direction must have one positive entry per row")
    options = options or Options()
    if not is_injective(W, a, domain, options=options).injective:
        raise PolyreluError("the layer is not injective with the given bias: no shift to grow")
    solver = LPSolver(options)
    reach = np.array([solver.maximize(w, domain.A, domain.b).value for w in W])
    low, high = 0.0, float(np.max((reach - a) / d)) + tol
    witness = is_injective(W, a + high * d, domain, options=options).witness
    checks = 2
    while high - low > tol:
        middle = (low + high) / 2
        result = is_injective(W, a + middle * d, domain, options=options)
        checks += 1
        if result.injective:
            low = middle
        else:
            high, witness = middle, result.witness
    return ShiftResult(low, high, witness, checks)


def _unit_rows(W):
    return W / np.linalg.norm(W, axis=1)[:, None]


def _surrounds_origin(U):
    """0 in the interior of conv(U): max s with U^T c = 0, c >= s, sum c = 1 is > 0."""
    m, n = U.shape
    cost = np.zeros(m + 1)
    cost[m] = 1.0
    A_eq = np.vstack([np.hstack([U.T, np.zeros((n, 1))]), np.append(np.ones(m), 0.0)])
    b_eq = np.append(np.zeros(n), 1.0)
    A = np.hstack([-np.eye(m), np.ones((m, 1))])         # s - c_i <= 0
    result = LPSolver().maximize(cost, A, np.zeros(m), A_eq=A_eq, b_eq=b_eq)
    interior = result.status == "optimal" and result.value > 1e-12
    return interior and np.linalg.matrix_rank(U) == n


def _matrix(W):
    W = np.array(W, dtype=np.float64)
    if W.ndim != 2 or W.size == 0 or not np.all(np.isfinite(W)):
        raise InvalidNetworkError(f"W must be a finite, non-empty m x n matrix, got {W.shape}")
    if np.any(np.linalg.norm(W, axis=1) == 0):
        raise InvalidNetworkError("W has a zero row")
    return W


def _check_domain(domain, W):
    if not isinstance(domain, Domain) or domain.dim != W.shape[1]:
        raise PolyreluError(f"domain must be a polyrelu Domain of dimension {W.shape[1]}")


def _in_convention(a, convention):
    if convention not in CONVENTIONS:
        raise PolyreluError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return -a if convention == "pytorch" else a

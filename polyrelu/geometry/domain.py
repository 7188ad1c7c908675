"""`Domain`: the bounded, full-dimensional input polytope an analysis runs over."""

import numpy as np

from ..errors import InvalidDomainError
from .lp import LPSolver
from .polytope import HPolytope

__all__ = ["Domain", "check_input_dimension"]


class Domain:
    """A bounded, full-dimensional polytope ``{x : A x <= b}`` of input space.

    Build one with :meth:`Domain.box` or :meth:`Domain.polytope`. Both check the
    set is non-empty, full-dimensional and bounded, and raise
    :class:`InvalidDomainError` naming the problem otherwise. Rows are stored
    normalised to unit length; row ``f`` is *domain face f*.

    Attributes
    ----------
    A : ndarray, shape (k, d);  b : ndarray, shape (k,)
    lower, upper : ndarray, shape (d,)
        The tight bounding box.
    center : ndarray, shape (d,)
        Chebyshev centre (centre of the largest inscribed ball).
    radius : float
        Chebyshev radius.

    Examples
    --------
    >>> from polyrelu import Domain
    >>> square = Domain.box([-1, -1], [1, 1])
    >>> square.dim, square.radius, float(square.diameter)
    (2, 1.0, 2.8284271247461903)
    >>> Domain.box([0, 1], [1, 1])
    Traceback (most recent call last):
    ...
    polyrelu.errors.InvalidDomainError: empty or degenerate box: lower bound 1.0 is not below upper bound 1.0 in dimension 1
    """

    def __init__(self, A, b, *, lower, upper, center, radius, kind):
        self.A, self.b = A, b
        self.lower, self.upper = lower, upper
        self.center, self.radius = center, radius
        self.kind = kind
        for array in (A, b, lower, upper, center):
            array.setflags(write=False)

    @classmethod
    def box(cls, lower, upper):
        """The box ``lower <= x <= upper`` (each a sequence of length d)."""
        lower = _finite_vector(lower, "lower bound")
        upper = _finite_vector(upper, "upper bound")
        if lower.shape != upper.shape:
            raise InvalidDomainError(
                f"box bounds have different lengths: {lower.size} and {upper.size}"
            )
        for k in range(lower.size):
            if not lower[k] < upper[k]:
                raise InvalidDomainError(
                    f"empty or degenerate box: lower bound {lower[k]} is not below "
                    f"upper bound {upper[k]} in dimension {k}"
                )
        d = lower.size
        A = np.vstack([np.eye(d), -np.eye(d)])
        b = np.concatenate([upper, -lower])
        half = (upper - lower) / 2
        return cls(A, b, lower=lower, upper=upper, center=lower + half,
                   radius=float(half.min()), kind="box")

    @classmethod
    def polytope(cls, A, b, *, solver=None):
        """The polytope ``{x : A x <= b}``; checked bounded and full-dimensional with LPs."""
        A = np.asarray(A, dtype=np.float64)
        b = _finite_vector(b, "right-hand side b")
        if A.ndim != 2 or A.shape[0] != b.size or A.shape[1] == 0:
            raise InvalidDomainError(
                f"A must have shape (k, d) with k = len(b) = {b.size}, got {A.shape}"
            )
        if not np.all(np.isfinite(A)):
            raise InvalidDomainError("A has a non-finite entry")
        norms = np.linalg.norm(A, axis=1)
        if np.any(norms == 0):
            raise InvalidDomainError(f"row {int(np.argmin(norms))} of A is zero")
        A, b = A / norms[:, None], b / norms
        solver = solver or LPSolver()
        lower, upper = _bounding_box(A, b, solver)
        center, radius = solver.chebyshev_ball(A, b)
        scale = float(np.max(upper - lower))
        if radius <= 1e-12 * scale:
            raise InvalidDomainError(
                f"the polytope is not full-dimensional (inradius {radius:.3g})"
            )
        return cls(A, b, lower=lower, upper=upper, center=center, radius=radius,
                   kind="polytope")

    @property
    def dim(self):
        """Dimension d of the input space."""
        return self.A.shape[1]

    @property
    def diameter(self):
        """Diagonal length of the bounding box: the length scale of tolerances."""
        return float(np.linalg.norm(self.upper - self.lower))

    def as_polytope(self):
        """The domain as an :class:`HPolytope` whose sources are its faces (-1 - f)."""
        return HPolytope(self.A, self.b, -1 - np.arange(len(self.b)))

    def contains(self, points, tol=0.0):
        """Boolean array (n,): whether each point lies in the domain (up to ``tol``)."""
        return self.as_polytope().contains(points, tol)

    def sample(self, n, rng):
        """``n`` points drawn uniformly from the domain (rejection from the bounding box)."""
        rng = np.random.default_rng(rng)
        found = []
        while sum(len(f) for f in found) < n:
            batch = rng.uniform(self.lower, self.upper, size=(max(n, 1000), self.dim))
            found.append(batch[self.contains(batch)])
        return np.concatenate(found)[:n]

    def face_name(self, face):
        """Description of domain face ``face`` (``x_k <= u`` for boxes)."""
        if self.kind == "box":
            d = self.dim
            k = face % d
            return f"x_{k} <= {self.upper[k]}" if face < d else f"x_{k} >= {self.lower[k]}"
        return f"row {face} of A x <= b"

    def __repr__(self):
        if self.kind == "box":
            return f"Domain.box({self.lower.tolist()}, {self.upper.tolist()})"
        return f"Domain.polytope(<{len(self.b)} rows in dimension {self.dim}>)"


def check_input_dimension(network, domain):
    """Raise :class:`InvalidDomainError` unless ``domain`` lives in the network's input space."""
    if domain.dim != network.input_dim:
        raise InvalidDomainError(
            f"the domain has dimension {domain.dim} but the network takes "
            f"{network.input_dim} inputs")


def _finite_vector(values, name):
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise InvalidDomainError(f"{name} is empty")
    if not np.all(np.isfinite(array)):
        raise InvalidDomainError(f"{name} has a non-finite entry: {array.tolist()}")
    return array


def _bounding_box(A, b, solver):
    d = A.shape[1]
    lower, upper = np.empty(d), np.empty(d)
    for k in range(d):
        for sign, target in ((1.0, upper), (-1.0, lower)):
            result = solver.maximize(sign * np.eye(d)[k], A, b)
            if result.status == "infeasible":
                raise InvalidDomainError("the polytope {x : A x <= b} is empty")
            if result.status != "optimal":
                direction = "above" if sign > 0 else "below"
                raise InvalidDomainError(
                    f"the polytope is unbounded: x_{k} is not bounded {direction}"
                )
            target[k] = sign * result.value
    return lower, upper

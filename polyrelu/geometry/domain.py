"""`Domain`: the bounded, full-dimensional input polytope an analysis runs over, and
the checks that a network and a domain are within what float64 resolves."""

import numpy as np

from ..errors import InvalidDomainError, NumericalRangeError
from .interval import interval_bounds, output_bounds
from .lp import LPSolver
from .polytope import HPolytope

__all__ = ["Domain", "check_input_dimension", "check_numerics", "MIN_RADIUS",
           "MAX_MAGNITUDE", "MAX_RANGE_RATIO"]

#: Smallest Chebyshev radius of a domain, relative to ``max(1, largest |coordinate|)``.
#: The LP solver's feasibility tolerance (1e-9) is absolute, so inside a smaller domain
#: its errors are no longer small against the regions: at an inradius of 1e-9 the
#: splitting engine counts 80 to 95 regions of a 58-region network, and the walk
#: returned no region at all on the box [0, 1e-14]^2. 1e-7 keeps a factor 10 to 100
#: above the first failures measured (1e-8 to 1e-9).
MIN_RADIUS = 1e-7

#: Largest magnitude of a hidden pre-activation or output over the domain. Rows of the
#: LPs are normalised through sums of squares, which overflow near 1e154; beyond 1e150
#: (weights of 1e150 gave ``regions: 1``) the forward pass and the LPs are not exact.
MAX_MAGNITUDE = 1e150

#: Largest ratio between the widest interval range of any neuron over the domain and
#: the range of a neuron that varies. The engines call a neuron's pre-activation zero
#: below ``Options.zero_rel`` (1e-10) times its range, floored at 1e-3 of the widest
#: range, i.e. at 1e-13 of it: a neuron 1e13 times narrower than the widest is taken
#: as identically zero (1e12 and 1e-12 weights mixed gave 10 regions where a grid sees
#: 21). At 1e11 that floor is 1% of the neuron's own range. Interval ranges of deep
#: neurons are over-approximations: on the 45 ACAS Xu networks and their property
#: boxes the ratio reaches 1.4e9, so 1e11 leaves those a factor 70.
MAX_RANGE_RATIO = 1e11


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
    >>> Domain.box([0, 1], [1, 1])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    polyrelu.errors.InvalidDomainError: empty or degenerate box: lower bound 1.0 is not below ...
    """

    def __init__(self, A, b, *, lower, upper, center, radius, kind):
        A, b, lower, upper, center = (np.array(a, dtype=np.float64)
                                      for a in (A, b, lower, upper, center))
        _check_stored(A, b, lower, upper, center, radius)
        self.A, self.b = A, b
        self.lower, self.upper = lower, upper
        self.center, self.radius = center, radius
        self.kind = kind
        for array in (A, b, lower, upper, center):
            array.setflags(write=False)

    @classmethod
    def box(cls, lower, upper, *, allow_extreme_numerics=False):
        """The box ``lower <= x <= upper`` (each a sequence of length d).

        Raises :class:`NumericalRangeError` if its smallest half-width is below
        :data:`MIN_RADIUS` times ``max(1, largest |bound|)``, unless
        ``allow_extreme_numerics``.
        """
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
        domain = cls(A, b, lower=lower, upper=upper, center=lower + half,
                     radius=float(half.min()), kind="box")
        return domain if allow_extreme_numerics else domain._resolvable()

    @classmethod
    def ball(cls, center, radius, *, allow_extreme_numerics=False):
        """The l_inf ball ``|x - center|_inf <= radius``: the box ``center -+ radius``.

        >>> Domain.ball([1.0, 2.0], 0.5).lower.tolist()
        [0.5, 1.5]
        >>> Domain.ball([1.0], -1)
        Traceback (most recent call last):
        ...
        polyrelu.errors.InvalidDomainError: the ball's radius must be a positive number, got -1.0
        """
        center = _finite_vector(center, "centre")
        radius = float(radius)
        if not (np.isfinite(radius) and radius > 0):
            raise InvalidDomainError(f"the ball's radius must be a positive number, got {radius}")
        return cls.box(center - radius, center + radius,
                       allow_extreme_numerics=allow_extreme_numerics)

    @classmethod
    def polytope(cls, A, b, *, solver=None, allow_extreme_numerics=False):
        """The polytope ``{x : A x <= b}``; checked bounded and full-dimensional with LPs.

        Raises :class:`NumericalRangeError` if its Chebyshev radius is below
        :data:`MIN_RADIUS` times ``max(1, largest |coordinate|)``, unless
        ``allow_extreme_numerics``.
        """
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
        domain = cls(A, b, lower=lower, upper=upper, center=center, radius=radius,
                     kind="polytope")
        return domain if allow_extreme_numerics else domain._resolvable()

    def _resolvable(self):
        """``self``, or a :class:`NumericalRangeError` if it is below the resolvable scale."""
        scale = max(1.0, float(np.abs(self.lower).max()), float(np.abs(self.upper).max()))
        if self.radius < MIN_RADIUS * scale:
            raise NumericalRangeError(
                f"the domain's inradius {self.radius:.3g} is below the resolvable scale "
                f"{MIN_RADIUS:.0e} x {scale:.3g} of float64 LPs; rescale the inputs (x = c + "
                "s u in the first layer), or pass allow_extreme_numerics=True "
                "(--allow-extreme-numerics) to proceed anyway")
        return self

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
        """``n`` points drawn from the domain, in bounded time.

        A box is sampled uniformly. A polytope is sampled by rejection from its
        bounding box (uniform) for at most ``_REJECTION_ROUNDS`` batches; if too few
        points fall inside (a thin polytope), the rest come from hit-and-run chains
        started at the Chebyshev centre (asymptotically uniform: ``_MIXING_STEPS``
        plus 10 d steps each), which cannot loop forever.

        Parameters
        ----------
        n : int
        rng : int, numpy Generator or None

        Returns
        -------
        ndarray, shape (n, d)

        Examples
        --------
        >>> from polyrelu import Domain
        >>> thin = Domain.polytope([[-1, 0], [0, -1], [1, 1e6]], [0, 0, 1])
        >>> bool(thin.contains(thin.sample(50, 0), tol=1e-12).all())
        True
        """
        rng = np.random.default_rng(rng)
        if self.kind == "box":
            return rng.uniform(self.lower, self.upper, size=(n, self.dim))
        found, count = [], 0
        for _ in range(_REJECTION_ROUNDS):
            if count >= n:
                break
            batch = rng.uniform(self.lower, self.upper, size=(max(n, 1000), self.dim))
            found.append(batch[self.contains(batch)])
            count += len(found[-1])
        if count < n:
            found.append(self._hit_and_run(n - count, rng))
        return np.concatenate(found)[:n]

    def _hit_and_run(self, n, rng):
        """``n`` end points of independent hit-and-run chains from the Chebyshev centre."""
        x = np.repeat(self.center[None, :], n, axis=0)
        for _ in range(_MIXING_STEPS + 10 * self.dim):
            u = rng.normal(size=x.shape)
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            rate, slack = u @ self.A.T, np.maximum(self.b - x @ self.A.T, 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = slack / rate
            high = np.where(rate > 0, step, np.inf).min(axis=1)
            low = np.where(rate < 0, step, -np.inf).max(axis=1)
            x = x + rng.uniform(low, high)[:, None] * u
        return x

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
    """Raise :class:`InvalidDomainError` unless ``domain`` lives in the network's input
    space, and :class:`NumericalRangeError` if :func:`check_numerics` refuses the pair
    (skipped for a network built with ``allow_extreme_numerics=True``)."""
    if domain.dim != network.input_dim:
        raise InvalidDomainError(
            f"the domain has dimension {domain.dim} but the network takes "
            f"{network.input_dim} inputs")
    if not getattr(network, "allow_extreme_numerics", False):
        check_numerics(network, domain)


def check_numerics(network, domain):
    """Refuse a network and domain whose numbers float64 LPs do not resolve.

    From interval bounds over the domain's bounding box: every hidden
    pre-activation and output must stay below :data:`MAX_MAGNITUDE` in magnitude
    (else the forward pass overflows), and every neuron that varies must have a
    range at least ``1 / MAX_RANGE_RATIO`` times the widest neuron range (else the
    engines take it as identically zero).

    Raises
    ------
    NumericalRangeError
        Naming the neuron, the figures and the threshold.
    """
    low, high = interval_bounds(network, domain.lower, domain.upper)
    out = output_bounds(network, domain.lower, domain.upper)
    magnitude = max(float(np.abs(np.concatenate([low, high, *out])).max(initial=0.0)), 0.0)
    if not magnitude <= MAX_MAGNITUDE:
        raise NumericalRangeError(
            f"the forward pass reaches magnitude {magnitude:.3g} on the domain, beyond "
            f"{MAX_MAGNITUDE:.0e} (float64 overflows in the LPs); rescale the weights, or "
            "pass allow_extreme_numerics=True (--allow-extreme-numerics) to proceed anyway")
    span = high - low
    widest = float(span.max(initial=0.0))
    narrow = np.flatnonzero((span > 0) & (span * MAX_RANGE_RATIO < widest))
    if narrow.size:
        j = int(narrow[np.argmin(span[narrow])])
        raise NumericalRangeError(
            f"neuron {network.preactivation_name(j)} varies by {span[j]:.3g} on the domain, "
            f"more than {MAX_RANGE_RATIO:.0e} times less than the widest neuron range "
            f"{widest:.3g}: float64 LPs do not resolve it next to the others; rescale "
            "the layers, or pass allow_extreme_numerics=True (--allow-extreme-numerics) "
            "to proceed anyway")


_REJECTION_ROUNDS = 20
_MIXING_STEPS = 50


def _check_stored(A, b, lower, upper, center, radius):
    """Refuse domain arrays (e.g. read back from a file) that are not finite or consistent."""
    for name, array in (("A", A), ("b", b), ("lower", lower), ("upper", upper),
                        ("center", center), ("radius", np.asarray(radius, dtype=float))):
        if not np.all(np.isfinite(array)):
            raise InvalidDomainError(f"the domain's {name} has a non-finite entry")
    d = lower.shape[0] if lower.ndim == 1 else -1
    if (A.ndim != 2 or A.shape != (b.size, d) or b.ndim != 1 or upper.shape != (d,)
            or center.shape != (d,) or d == 0):
        raise InvalidDomainError("the domain's arrays have inconsistent shapes")
    if not (np.all(lower < upper) and radius > 0):
        raise InvalidDomainError("the domain is empty or degenerate (lower >= upper or "
                                 "radius <= 0)")


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

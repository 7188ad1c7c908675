"""Exact Lipschitz constants of piecewise-linear networks over polytopes, with certificates.

Over a convex domain, the Lipschitz constant of a piecewise-affine network in an
operator norm is the largest norm of its Jacobian over the full-dimensional
regions: ``max_R ||C W_eff(R)||`` (C: the output functional, identity by default).
:func:`lipschitz` enumerates the regions and returns that maximum, the
maximising region, a witness point, every region's value (the certificate,
re-checked by :func:`check_certificate`) and an exact re-check of the maximiser.
:func:`polyrelu.analysis.lipschitz_search.lipschitz_search` finds the same value by
branch and bound, without every region.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import InvalidDomainError, InvalidNetworkError, PolyreluError, TimeLimitError
from ..geometry.domain import Domain
from ..geometry.exact import exact_affine, exact_affine_maps, to_fractions
from ..network.layers import Layer
from ..regions.walk import enumerate_regions

__all__ = ["LipschitzResult", "lipschitz", "local_lipschitz", "operator_norms",
           "check_certificate", "exact_jacobian", "exact_pattern", "exact_value_bracket",
           "hidden_map"]

NORMS = {"1": 1, "2": 2, "inf": np.inf}


def parse_norm(norm):
    """1, 2 or inf (also accepted as strings); raises ValueError otherwise."""
    key = "inf" if norm in (np.inf, "inf", "Inf", "INF") else str(norm)
    if key not in NORMS:
        raise PolyreluError(f"norm must be 1, 2 or inf, got {norm!r}")
    return NORMS[key]


def operator_norms(J, norm):
    """Operator norms of a stack of matrices ``J`` (n, k, d) induced by the vector ``norm``.

    l1: largest column sum of |J|; l_inf: largest row sum; l2: largest singular value.
    """
    J = np.asarray(J, dtype=np.float64)
    if norm == 1:
        return np.abs(J).sum(axis=1).max(axis=1, initial=0.0)
    if norm == np.inf:
        return np.abs(J).sum(axis=2).max(axis=1, initial=0.0)
    return np.linalg.norm(J, ord=2, axis=(1, 2)) if J.size else np.zeros(len(J))


@dataclass(frozen=True)
class LipschitzResult:
    """The exact Lipschitz constant of a network over a domain.

    Attributes
    ----------
    value : float
        ``max`` over regions of ``||C W_eff||`` in the chosen operator norm.
    norm : {1, 2, inf}
    region : int
        Id of a maximising region in ``complex``.
    witness : ndarray, shape (d,)
        A point inside that region (its Chebyshev centre).
    per_region : ndarray, shape (regions,)
        Every region's Jacobian norm: the certificate.
    functional : ndarray, shape (k, m)
        The output functional C (identity when the whole output is measured).
    exact_lower, exact_upper : float
        A rigorous bracket of the maximiser's norm from the network's weights in
        exact rational arithmetic (equal for l1/l_inf up to one float rounding;
        for l2 the bracket of the largest singular value).
    witness_pattern_exact : bool
        Whether the witness has the region's pattern in exact arithmetic with all
        pre-activations non-zero (so the region really exists around it).
    complex : RegionComplex
    """

    value: float
    norm: float
    region: int
    witness: np.ndarray
    per_region: np.ndarray
    functional: np.ndarray
    exact_lower: float
    exact_upper: float
    witness_pattern_exact: bool
    complex: object


def lipschitz(network, domain, norm=2, *, output=None, functional=None, complex_=None,
              options=None, progress=False, deadline=None):
    """Exact Lipschitz constant of ``network`` over ``domain`` in an operator norm.

    Parameters
    ----------
    network : Network
    domain : Domain
    norm : 1, 2 or inf
        The same vector norm is used on inputs and outputs.
    output : int, optional
        Measure only this output component.
    functional : array_like, shape (k, m) or (m,), optional
        Measure ``functional @ f(x)`` (e.g. a logit difference ``e_i - e_j``).
    complex_ : RegionComplex, optional
        Regions already enumerated for this network and domain (reused; refused with
        :class:`InvalidNetworkError` / :class:`InvalidDomainError` if they are another's).
    options : Options, optional
    progress : bool
    deadline : Deadline, optional
        On expiry during the enumeration, :class:`TimeLimitError` is raised with
        ``partial`` a dict: ``lower`` (the largest norm over the regions found, a true
        lower bound), ``upper`` (the product of layer norms, a sound upper bound) and
        ``regions`` (how many were found).

    Returns
    -------
    LipschitzResult

    Examples
    --------
    >>> from polyrelu import Network, Domain
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> result = lipschitz(absolute, Domain.box([-1], [1]), norm=2)
    >>> result.value, len(result.per_region)
    (1.0, 2)
    """
    norm = parse_norm(norm)
    C = functional_matrix(network, output, functional)
    if complex_ is None:
        try:
            complex_ = enumerate_regions(network, domain, options=options, progress=progress,
                                         deadline=deadline)
        except TimeLimitError as err:
            raise TimeLimitError(str(err), _bracket(err.partial, network, C, norm)) from err
    else:
        complex_.check_matches(network, domain)
    if not len(complex_):
        raise no_region_error(domain)
    W = np.array([r.W_eff for r in complex_])
    values = operator_norms(C @ W, norm)
    best = int(np.argmax(values))
    region = complex_[best]
    lower, upper = exact_norm_bracket(network, region.pattern, C, norm)
    return LipschitzResult(
        float(values[best]), norm, best, region.interior_point.copy(), values, C,
        lower, upper, exact_pattern(network, region.interior_point, region.pattern), complex_)


def no_region_error(domain):
    """The error for a domain none of whose pieces is thick enough to be a region."""
    return InvalidDomainError(
        f"no region of {domain} is thick enough to be resolved (every piece's Chebyshev "
        "radius is below Options.min_radius_rel times the diameter): no Lipschitz "
        "constant can be certified; enlarge or rescale the domain")


def _bracket(partial, network, C, norm):
    """The best Lipschitz bracket from the regions found before a time limit."""
    from .lipschitz_bounds import norm_product

    found = [] if partial is None else list(partial)
    lower = float(operator_norms(C @ np.array([r.W_eff for r in found]), norm).max()) \
        if found else 0.0
    return {"lower": lower, "upper": norm_product(network, norm, C), "regions": len(found)}


def local_lipschitz(network, center, radius, norm=2, *, ball="inf", **kwargs):
    """Exact Lipschitz constant on an l_inf ball (a box) or l1 ball around ``center``.

    ``ball`` is the norm of the neighbourhood ("inf" or "1"); other keywords go
    to :func:`lipschitz`.
    """
    center = np.asarray(center, dtype=np.float64)
    d = center.size
    if parse_norm(ball) == np.inf:
        domain = Domain.box(center - radius, center + radius)
    elif parse_norm(ball) == 1:
        signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * d)).reshape(d, -1).T
        domain = Domain.polytope(signs, signs @ center + radius)
    else:
        raise PolyreluError(f"ball must be 'inf' or '1', got {ball!r}")
    return lipschitz(network, domain, norm, **kwargs)


def functional_matrix(network, output, functional):
    """The output functional C (k, m): row ``output`` of the identity, ``functional`` as a
    matrix, or the identity; bad values raise :class:`PolyreluError` in one line."""
    m = network.output_dim
    if output is not None and functional is not None:
        raise PolyreluError("give either output or functional, not both")
    if output is not None:
        if not 0 <= output < m:
            raise PolyreluError(f"output {output} is out of range: the network has {m} outputs")
        return np.eye(m)[[output]]
    if functional is None:
        return np.eye(m)
    C = np.atleast_2d(np.asarray(functional, dtype=np.float64))
    if C.shape[1] != m or not np.all(np.isfinite(C)):
        raise InvalidNetworkError(f"functional has shape {C.shape}, expected (k, {m}), finite")
    return C


def check_certificate(result, rtol=1e-12):
    """Re-check a :class:`LipschitzResult` without trusting the enumeration's maps.

    Recomputes every region's Jacobian from its pattern through the network
    (independently of the stored ``W_eff``), checks each region's interior point
    has that pattern, and that the claimed value is the maximum. Returns True or
    raises :class:`PolyreluError` naming the first disagreement.
    """
    complex_ = result.complex
    network, domain = complex_.network, complex_.domain
    centres = np.array([r.interior_point for r in complex_])
    patterns = [network.canonical_pattern(p, complex_.zero_tol, domain.lower, domain.upper)[0]
                for p in network.activation_pattern(centres)]
    for region, pattern in zip(complex_, patterns):
        if not np.array_equal(pattern, region.pattern):
            raise PolyreluError(f"region {region.id}: its interior point has another pattern")
    J = np.array([result.functional @ complex_.network.affine_maps(p).W_eff for p in patterns])
    values = operator_norms(J, result.norm)
    if not np.allclose(values, result.per_region, rtol=rtol, atol=0):
        bad = int(np.argmax(np.abs(values - result.per_region)))
        raise PolyreluError(f"region {bad}: recomputed norm {values[bad]} differs")
    if not math.isclose(values.max(), result.value, rel_tol=rtol):
        raise PolyreluError(f"claimed maximum {result.value} but regions give {values.max()}")
    return True


# -- exact rational re-checks ----------------------------------------------------
def exact_pattern(network, point, pattern):
    """Whether ``point`` has ``pattern`` exactly, strictly: every ReLU pre-activation non-zero
    with the slot's sign, every window's argmax entry larger than the window's others
    (or tied with a later position where both are inactive ReLU units, zero nearby).

    Computed in rational arithmetic (``fractions.Fraction``) from the float64 weights,
    layer by layer (:mod:`polyrelu.network.layers`); then the pattern holds on a
    neighbourhood of the point, so its region really exists there.
    """
    pattern = np.asarray(pattern, dtype=bool)
    values, start, offset = to_fractions(point), 0, 0
    maps = []  # the exact pre-activation maps, computed on the first exact tie only

    def same_map(first, second):
        """Whether two of this layer's units have the same exact map under ``pattern``."""
        if not maps:
            maps.extend(exact_affine_maps(network, pattern)[0])
        return maps[offset + first] == maps[offset + second]

    for layer in network.layers[:-1]:
        z = exact_affine(layer, values)
        slots = pattern[start:start + layer.num_slots]
        if not _exact_slots_hold(layer, z, slots, same_map):
            return False
        values = [z[s] if s >= 0 else Fraction(0) for s in layer.sources(slots)]
        start += layer.num_slots
        offset += layer.n_z
    return True


def _exact_slots_hold(layer, z, slots, same_map):
    """Whether exact pre-activations ``z`` give a layer's ``slots`` strictly; a window tie
    holds nearby when both entries are zero (inactive ReLU units) or the same map
    (``same_map(unit, unit)``), and the lower position is chosen."""
    relu = layer.relu_units
    for unit, on in zip(relu, slots[:relu.size]):
        if z[unit] == 0 or (z[unit] > 0) != bool(on):
            return False
    u = [max(v, Fraction(0)) if unit == 1 else v for v, unit in zip(z, layer.units)]
    off = [unit == 1 and v < 0 for v, unit in zip(z, layer.units)]
    onehot = slots[relu.size:].reshape(layer.windows.shape)
    for window, chosen in zip(layer.windows, onehot):
        position = int(np.argmax(chosen))
        best = window[position]
        for later, e in enumerate(window):
            if e < 0 or later == position or u[e] < u[best]:
                continue
            # a tie holds nearby only between entries equal there: lowest wins
            if u[e] > u[best] or later < position:
                return False
            if not (off[e] and off[best]) and (off[e] or off[best] or not same_map(e, best)):
                return False
    return True


def exact_jacobian(network, pattern, C):
    """``C W_eff`` for ``pattern`` as a list of rows of Fractions (exact from float64 weights).

    ``W_eff = W_L S_{L-1} W_{L-1} ... S_0 W_0``, ``S_l`` the 0/1 selection of layer ``l``'s
    outputs from its pre-activations (:meth:`Network.layer_sources`: a ReLU mask for a
    ReLU network); the product is taken from the left, ``k`` rows at a time.
    """
    rows = _exact_product(_fraction_rows(C), network.layers[-1].weight)
    for layer, source in zip(network.layers[-2::-1], network.layer_sources(pattern)[::-1]):
        selected = [[Fraction(0)] * layer.n_z for _ in rows]
        for j, s in enumerate(source):
            if s >= 0:
                for out, row in zip(selected, rows):
                    out[s] += row[j]
        rows = _exact_product(selected, layer.weight)
    return rows


def _fraction_rows(M):
    """A matrix as a list of rows of Fractions."""
    return [to_fractions(row) for row in np.atleast_2d(M)]


def _exact_product(rows, matrix):
    """``rows @ matrix`` with ``rows`` in Fractions and ``matrix`` float64 (exact)."""
    columns = [to_fractions(column) for column in np.asarray(matrix).T]
    return [[sum((r * m for r, m in zip(row, column) if r and m), Fraction(0))
             for column in columns] for row in rows]


def exact_norm_bracket(network, pattern, C, norm):
    """Rigorous (lower, upper) floats around the exact operator norm of ``C W_eff``."""
    J = exact_jacobian(network, pattern, C)
    if norm == 1:
        exact = max(sum(abs(row[c]) for row in J) for c in range(len(J[0])))
        return float_bracket(exact)
    if norm == np.inf:
        exact = max(sum(abs(v) for v in row) for row in J)
        return float_bracket(exact)
    return _spectral_bracket(J)


def exact_value_bracket(network, pattern, C, norm, direction=None):
    """Rigorous (lower, upper) floats around ``||C J||`` on ``pattern``'s region (J: its
    Jacobian, in rational arithmetic from the weights), or around ``||C J v||`` with a
    ``direction`` v.

    >>> from polyrelu import Network
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> low, high = exact_value_bracket(absolute, np.array([True, False]), np.eye(1), 2)
    >>> low <= 1.0 <= high
    True
    """
    if direction is None:
        return exact_norm_bracket(network, pattern, C, norm)
    v = to_fractions(direction)
    product = [sum((a * b for a, b in zip(row, v)), Fraction(0))
               for row in exact_jacobian(network, pattern, C)]
    if norm == 1:
        return float_bracket(sum(abs(x) for x in product))
    if norm == np.inf:
        return float_bracket(max(abs(x) for x in product))
    value = math.sqrt(float(sum(x * x for x in product)))
    return (math.nextafter(value * (1 - 2**-50), -math.inf),
            math.nextafter(value * (1 + 2**-50), math.inf))


def hidden_map(network, layer):
    """The network up to hidden layer ``layer``'s pre-activations (all of it for None).

    >>> from polyrelu import Network
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> hidden_map(net, 0).output_dim
    2
    """
    if layer is None:
        return network
    hidden = len(network.hidden_sizes)
    if not (isinstance(layer, (int, np.integer)) and 0 <= layer < hidden):
        raise PolyreluError(f"layer must be a hidden layer index 0..{hidden - 1}, got {layer}")
    last = network.layers[layer]
    return type(network).from_layers([*network.layers[:layer],
                                      Layer.affine(last.weight, last.bias)])


def float_bracket(exact):
    """The floats either side of ``float(exact)`` (a correctly rounded value, e.g. of a
    Fraction): a rigorous bracket of ``exact``."""
    value = float(exact)
    return math.nextafter(value, -math.inf), math.nextafter(value, math.inf)


def _spectral_bracket(J):
    """Bracket of the largest singular value of an exact rational matrix."""
    d = len(J[0])
    gram = [[sum((row[i] * row[j] for row in J), Fraction(0)) for j in range(d)]
            for i in range(d)]
    floats = np.array([[float(v) for v in row] for row in gram])
    eigenvalues, vectors = np.linalg.eigh(floats)
    v = [Fraction(float(x)) for x in vectors[:, -1]]
    norm_v = sum(x * x for x in v)
    if norm_v == 0 or eigenvalues[-1] <= 0:
        return 0.0, _upper_eigen_bound(gram, Fraction(0))
    rayleigh = sum(v[i] * gram[i][j] * v[j] for i in range(d) for j in range(d)) / norm_v
    lower = math.nextafter(math.sqrt(float(rayleigh)) * (1 - 2**-50), -math.inf)
    return lower, _upper_eigen_bound(gram, Fraction(float(eigenvalues[-1])))


def _upper_eigen_bound(gram, estimate):
    """A float ``u`` with ``mu I - gram`` positive definite for ``mu = u^2`` (exact LDL check)."""
    slack = max(abs(estimate) * Fraction(1, 10**12), Fraction(1, 10**300))
    while True:
        mu = estimate + slack
        if _positive_definite([[(mu if i == j else 0) - g for j, g in enumerate(row)]
                               for i, row in enumerate(gram)]):
            return math.nextafter(math.sqrt(float(mu)) * (1 + 2**-50), math.inf)
        slack *= 16


def _positive_definite(M):
    """Exact test by symmetric Gaussian elimination (all pivots > 0)."""
    M = [row[:] for row in M]
    n = len(M)
    for k in range(n):
        if M[k][k] <= 0:
            return False
        for i in range(k + 1, n):
            factor = M[i][k] / M[k][k]
            for j in range(k, n):
                M[i][j] -= factor * M[k][j]
    return True

"""Rigorous float64 arithmetic for the certificate checkers: every quantity comes with a
bound on its rounding error, so that a check that passes holds for the real numbers.

The rule used throughout (Higham, *Accuracy and Stability of Numerical Algorithms*,
Thm. 3.1/3.5): a float64 dot product of length ``n`` computed in any order, with or
without fused multiply-adds, differs from the exact one by at most
``gamma_n |a| . |b|`` with ``gamma_n = n u / (1 - n u)``, ``u = 2**-53``, plus at most
``n`` times the smallest subnormal for underflow. :func:`dot_error` returns
``2 (n + 2) u fl(|a| . |b|) + (n + 1) 2**-1074`` (0 when every product is 0: then the
sum is exact), which exceeds that bound including the rounding of the bound's own
computation (all its terms are non-negative). Nothing
here depends on a tolerance: a check passes only if it passes with the error bounds.
"""

from fractions import Fraction

import numpy as np

from ..errors import SolverError
from ..network.layers import LINEAR

__all__ = [
    "AffineMaps",
    "LPRows",
    "at_most",
    "box_from_multipliers",
    "dot_error",
    "dual_bounds",
    "empty_by_multipliers",
    "exact_dual_bound",
    "first_layer",
    "interval_product",
    "lp_box",
    "lp_proves_at_most",
    "narrowed",
    "next_layer",
    "norm_upper",
    "one_cut_bounds",
    "spectral_upper",
    "tail_bounds_batch",
    "times_slopes",
    "upper_over_box",
    "upward",
    "widened",
]

_U = np.finfo(np.float64).eps / 2
_TINY = np.finfo(np.float64).smallest_subnormal


def dot_error(abs_a, abs_b, n):
    """Bound on the rounding error of ``a @ b`` (inner length ``n``) from ``|a| @ |b|``."""
    products = abs_a @ abs_b
    return 2.0 * (n + 2) * _U * products + np.where(products > 0, (n + 1) * _TINY, 0.0)


def upward(values, n=1):
    """``values`` (non-negative float results of ``n``-term sums) raised past their rounding."""
    return values * (1.0 + 2.0 * (n + 2) * _U) + np.where(values > 0, (n + 1) * _TINY, 0.0)


class AffineMaps:
    """Float affine maps ``A x + c`` of one layer's pre-activations with error bounds.

    For every input ``x`` of the region they were composed for, the true (real-number)
    pre-activation ``z_j(x)`` satisfies ``|z_j(x) - (A_j x + c_j)| <= E_j . |x| + e_j``.
    """

    def __init__(self, A, c, E, e):
        self.A, self.c, self.E, self.e = A, c, E, e
        self.terms = None  # exact relations between the rows, set by the checker

    def slack(self, reach):
        """``E . reach + e`` rounded up: the error bound on a box ``|x| <= reach``."""
        return upward(self.E @ reach + self.e, self.E.shape[1] + 1)


def first_layer(network, free, fixed_values):
    """:class:`AffineMaps` of the first hidden layer on the free inputs (the fixed inputs,
    ``x[~free] = fixed_values``, folded into the bias with its rounding error)."""
    W, b = network.weights[0], network.biases[0]
    fixed = W[:, ~free]
    c = b + fixed @ fixed_values
    e = _sum_error(np.abs(fixed), np.abs(fixed_values), np.abs(b))
    return AffineMaps(W[:, free].copy(), c, np.zeros((len(b), int(free.sum()))), e)


def next_layer(network, layer, maps, sources):
    """:class:`AffineMaps` of layer ``layer + 1``'s pre-activations (or the output layer's),
    from layer ``layer``'s ``maps`` and its outputs' ``sources`` (from
    :meth:`polyrelu.network.model.Network.layer_sources`: output ``i`` equals
    pre-activation ``sources[i]``, or is 0 where it is -1: an inactive ReLU unit)."""
    W, b = network.weights[layer + 1], network.biases[layer + 1]
    keep, index = (sources >= 0)[:, None], np.maximum(sources, 0)
    A, c = maps.A[index] * keep, maps.c[index] * keep[:, 0]
    E, e = maps.E[index] * keep, maps.e[index] * keep[:, 0]
    absW, n = np.abs(W), W.shape[1] + 1
    new_E = upward(absW @ E, n) + dot_error(absW, np.abs(A), n)
    new_e = upward(absW @ e, n) + _sum_error(absW, np.abs(c), np.abs(b))
    return AffineMaps(W @ A, W @ c + b, new_E, new_e)


def _sum_error(abs_W, abs_x, abs_b):
    """Rounding error bound of ``W x + b`` (0 where every product ``W_ij x_j`` is 0: then
    the result is ``b`` exactly)."""
    products = abs_W @ abs_x
    n = abs_W.shape[1] + 1
    return np.where(products > 0, 2.0 * (n + 2) * _U * (products + abs_b) + (n + 1) * _TINY,
                    0.0)


def upper_over_box(r, lower, upper):
    """A rigorous upper bound of ``r . x`` over the box ``[lower, upper]`` (rows of ``r``
    at once if it is 2-D)."""
    top = np.maximum(r * upper, r * lower)
    n = np.shape(r)[-1]
    return top.sum(axis=-1) + dot_error(np.abs(r), np.maximum(np.abs(lower), np.abs(upper)), n)


class LPRows:
    """The LP form of ``{x in [lower, upper] : G x <= h}``: the box rows first, then the
    rows of ``G`` scaled to unit length (the same object serves every LP over one set,
    so that the solver keeps it loaded; a set with rows appended is warm-started)."""

    def __init__(self, G, h, lower, upper):
        d = len(lower)
        scale = np.linalg.norm(G, axis=1)
        self.scale = np.where(scale > 0, scale, 1.0)
        self.rows = np.vstack([np.eye(d), -np.eye(d), G / self.scale[:, None]])
        self.rhs = np.concatenate([upper, -lower, h / self.scale])


def lp_proves_at_most(solver, q, lp, G, h, lower, upper, target):
    """Whether ``q . x <= target`` on ``{x in [lower, upper] : G x <= h}``, proven by the
    dual multipliers of one LP over ``lp`` (an :class:`LPRows` of ``G x <= h`` in any box
    containing the set; the LP's own accuracy does not matter: for ``y >= 0`` and every
    such ``x``, ``q x = (q - y G) x + y G x <= max_box (q - y G) x + y h``), or by Farkas
    multipliers when the set is empty."""
    d = len(lower)
    rows, rhs, scale = lp.rows, lp.rhs, lp.scale
    result = solver.maximize_warm(q, rows, rhs)
    if result.status == "infeasible":
        try:
            _, _, y = solver.signed_inradius(rows, rhs)
        except SolverError:
            return False
        y = np.maximum(np.asarray(y)[2 * d:], 0.0) / scale
        return empty_by_multipliers(y, G, h, lower, upper)
    if result.status != "optimal":
        return False
    y = np.maximum(result.row_duals[2 * d:], 0.0) / scale
    return at_most(q, y, G, h, lower, upper, target)


def at_most(q, y, G, h, lower, upper, target):
    """Whether multipliers ``y >= 0`` prove ``q . x <= target`` on ``{x in box : G x <= h}``:
    ``max_box (q - y G) x + y h <= target``, by the rigorous float bound, and if that is
    not enough, in exact rational arithmetic."""
    if dual_bounds(q[None], y[None], G, h, lower, upper)[0] <= target:
        return True
    if not _finite(q, y, G, h, lower, upper, target):
        return False
    return exact_dual_bound(q, y, G, h, lower, upper) <= Fraction(float(target))


def _finite(*arrays):
    return all(np.all(np.isfinite(a)) for a in arrays)


def dual_bounds(Q, Y, G, h, lower, upper):
    """Rigorous float upper bounds of ``max_box (Q_i - Y_i G) x + Y_i h``, one per row of
    ``Q`` and ``Y`` (every rounding error bounded as in the module docstring)."""
    m = G.shape[0]
    R = Q - Y @ G
    reach = np.maximum(np.abs(lower), np.abs(upper))
    R_err = dot_error(np.abs(Y), np.abs(G), m + 1) + 4 * _U * np.abs(Q)
    box_top = upper_over_box(R, lower, upper) + upward(R_err @ reach, len(lower))
    rhs = Y @ h
    total = box_top + rhs + dot_error(np.abs(Y), np.abs(h), m)
    return total + 4 * _U * (np.abs(box_top) + np.abs(rhs) + np.abs(total)) + _TINY


def exact_dual_bound(q, y, G, h, lower, upper):
    """``max_box (q - y G) x + y h`` in exact rational arithmetic (a Fraction): every
    float is a rational, and only the non-zero multipliers enter (an LP's basic dual
    solution has at most about ``d`` of them), so this stays cheap."""
    used = np.flatnonzero(y)
    weights = [Fraction(float(y[i])) for i in used]
    r = [Fraction(float(v)) for v in q]
    total = Fraction(0)
    for weight, i in zip(weights, used):
        total += weight * Fraction(float(h[i]))
        for k in np.flatnonzero(G[i]):
            r[k] -= weight * Fraction(float(G[i, k]))
    for k, coefficient in enumerate(r):
        if coefficient:
            side = upper[k] if coefficient > 0 else lower[k]
            total += coefficient * Fraction(float(side))
    return total


def empty_by_multipliers(y, G, h, lower, upper):
    """Whether ``y >= 0`` proves ``{x in [lower, upper] : G x <= h}`` empty:
    ``max_box (-y G) x + y h < 0`` (rigorous float bound, then exact)."""
    q = np.zeros(G.shape[1])
    if dual_bounds(q[None], y[None], G, h, lower, upper)[0] < 0:
        return True
    if not _finite(y, G, h, lower, upper):
        return False
    return exact_dual_bound(q, y, G, h, lower, upper) < 0


def lp_box(solver, G, h, lower, upper):
    """A box containing ``{x in [lower, upper] : G x <= h}``: the dual multipliers of one
    LP per bound (``2 d`` LPs), evaluated by :func:`box_from_multipliers`."""
    d = len(lower)
    scale = np.linalg.norm(G, axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    rows = np.vstack([np.eye(d), -np.eye(d), G / scale[:, None]])
    rhs = np.concatenate([upper, -lower, h / scale])
    Y = np.zeros((2 * d, len(h)))
    directions = np.vstack([np.eye(d), -np.eye(d)])
    for k, direction in enumerate(directions):
        result = solver.maximize_warm(direction, rows, rhs)
        if result.status == "optimal":
            Y[k] = np.maximum(result.row_duals[2 * d:], 0.0) / scale
        else:  # no multipliers: this side keeps the box's bound
            Y[k] = 0.0
    return box_from_multipliers(Y, G, h, lower, upper)


def one_cut_bounds(Q, G, h, lower, upper):
    """Rigorous upper bounds of ``Q_i . x`` over ``{x in box : G x <= h}`` using one row of
    ``G`` at a time (no LP): ``min over rows r and lam >= 0`` of
    ``max_box (Q_i - lam G_r) x + lam h_r``, a convex piecewise-linear function of
    ``lam`` whose minimum is at 0 or at a breakpoint ``Q_ik / G_rk``; the best
    ``(r, lam)`` found in float64 is then evaluated by :func:`dual_bounds`."""
    P, d = Q.shape
    if not len(G) or not P:
        return upper_over_box(Q, lower, upper)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = Q[:, None, :] / G[None, :, :]                       # (P, R, d)
    lams = np.concatenate([np.zeros(ratios.shape[:2] + (1,)),
                           np.where(np.isfinite(ratios) & (ratios > 0), ratios, 0.0)], axis=2)
    R = Q[:, None, None, :] - lams[..., None] * G[None, :, None, :]  # (P, R, d + 1, d)
    values = np.maximum(R * upper, R * lower).sum(axis=3) + lams * h[None, :, None]
    flat = values.reshape(P, -1)
    best = np.argmin(np.where(np.isfinite(flat), flat, np.inf), axis=1)
    rows, which = np.divmod(best, d + 1)
    Y = np.zeros((P, len(G)))
    Y[np.arange(P), rows] = lams[np.arange(P), rows, which]
    return dual_bounds(Q, Y, G, h, lower, upper)


def box_from_multipliers(Y, G, h, lower, upper):
    """A box containing ``{x in [lower, upper] : G x <= h}`` from multipliers: row ``k`` of
    ``Y`` (shape (2d, m)) bounds ``x_k`` from above, row ``d + k`` ``-x_k`` (rigorous
    float bounds, intersected with the box)."""
    d = len(lower)
    Q = np.vstack([np.eye(d), -np.eye(d)])
    bounds = dual_bounds(Q, Y, G, h, lower, upper)
    return np.maximum(lower, -bounds[d:]), np.minimum(upper, bounds[:d])


def widened(value, slack):
    """``value + slack`` rounded up past the rounding of the sum (``slack >= 0``)."""
    return value + np.where(slack > 0, slack + 4 * _U * (np.abs(value) + slack) + _TINY, 0.0)


def narrowed(value, slack):
    """``value - slack`` rounded down past the rounding of the difference (``slack >= 0``)."""
    return value - np.where(slack > 0, slack + 4 * _U * (np.abs(value) + slack) + _TINY, 0.0)


def tail_bounds_batch(A, c, eps, layers, lower, upper, C):
    """Sound lower bounds of ``C_b g_b(x, delta)`` for a batch of *tail networks*: item
    ``b``'s first layer is ``z = A_b x + c_b + delta`` on the box ``[lower_b, upper_b]``
    with ``delta in [-eps_b, eps_b]`` (the rounding error of composed maps), with the units
    of ``layers[0]`` (its weights are not used), followed by the shared ``layers[1:]``
    (:class:`polyrelu.network.layers.Layer` s with ReLU and linear units, every unit kept
    in order, no windows; the last one affine).

    The same back-substitution as :func:`polyrelu.geometry.symbolic.linear_bounds`
    (CROWN-style relaxations of the ReLU units, linear units passed through, intermediate
    bounds layer by layer, the result widened by ``4 (depth + 2) (width + 2) eps`` times
    the magnitude of every term, which bounds the rounding of the float64 computation to
    first order), with a per-item first layer, so that many tails are bounded in one
    vectorised computation; equal, up to the order of summation, to ``linear_bounds`` of
    the network ``[[A_b, I], *weights], [c_b, *biases]`` over the box ``(x, delta)``.

    Shapes: ``A`` (B, n, d), ``c`` and ``eps`` (B, n), ``lower`` and ``upper`` (B, d),
    ``C`` (B, k, m) (one set of output rows per item). Returns (B, k).
    """
    B, n, d = A.shape
    weights = [layer.weight for layer in layers[1:]]
    first = np.concatenate([A, np.broadcast_to(np.eye(n), (B, n, n))], axis=2)
    Ws, bs = [first, *weights], [c, *(layer.bias for layer in layers[1:])]
    Ws_back = [("tail", A), *weights]  # the same layers for back-substitution
    center = np.concatenate([(upper + lower) / 2, np.zeros((B, n))], axis=1)
    radius = np.concatenate([(upper - lower) / 2, eps], axis=1)
    width = max([d + n] + [max(w.shape) for w in weights])  # every inner length
    slack = 4.0 * (len(Ws) + 2) * (width + 2) * np.finfo(np.float64).eps
    relaxations = []
    for k in range(len(Ws) - 1):
        W, b = Ws[k], bs[k]
        both = np.concatenate([W, -W], axis=-2)
        both_b = np.concatenate([b, -b], axis=-1)
        low = _tail_substitute(np.broadcast_to(both, (B,) + both.shape[-2:]),
                               np.broadcast_to(both_b, (B,) + both_b.shape[-1:]),
                               relaxations, Ws_back, bs, center, radius, slack)
        size = W.shape[-2]
        relaxations.append(_relaxation(layers[k], low[:, :size], -low[:, size:]))
    coef = _product(C, Ws[-1])
    const = C @ bs[-1]
    return _tail_substitute(coef, const, relaxations, Ws_back, bs, center, radius, slack)


def _relaxation(layer, lo, hi):
    """Per unit of ``layer``: lower slope, upper slope and upper intercept of its relaxation
    over the pre-activation bounds ``[lo, hi]`` (ReLU units as in
    :mod:`polyrelu.geometry.symbolic`, linear units the identity)."""
    active, unstable = lo >= 0, (lo < 0) & (hi > 0)
    linear = layer.units == LINEAR
    lower_slope = np.where(linear | active | (unstable & (hi >= -lo)), 1.0, 0.0)
    width = np.where(unstable, hi - lo, 1.0)
    upper_slope = np.where(linear | active, 1.0, np.where(unstable, hi / width, 0.0))
    intercept = np.where(unstable & ~linear, -hi * lo / width, 0.0)
    return lower_slope, upper_slope, intercept


def _product(stack, W):
    """``stack @ W`` for a stack (B, k, n) of matrices: one matrix product when ``W`` is
    shared (2-D); a per-item first layer ``W = [A_b, I]`` is given as ``("tail", A)``."""
    if isinstance(W, tuple):
        return np.concatenate([stack @ W[1], stack], axis=2)
    B, k, n = stack.shape
    return (np.ascontiguousarray(stack).reshape(B * k, n) @ W).reshape(B, k, W.shape[1])


def _times(matrix, vector):
    """``matrix @ vector`` per item: ``vector`` shared (1-D) or one per item (2-D)."""
    if vector.ndim == 1:
        return matrix @ vector
    return (matrix @ vector[:, :, None])[:, :, 0]


def _tail_substitute(coef, const, relaxations, Ws, bs, center, radius, slack):
    """Lower bounds of ``coef @ h_K + const`` (``h_K`` the outputs of tail layer
    K = len(relaxations) - 1) per item,
    substituting the layers down to the input (``Ws[0]``, ``bs[0]`` per item)."""
    magnitude, const_magnitude = np.abs(coef), np.abs(const)
    for k in range(len(relaxations) - 1, -1, -1):
        lower_slope, upper_slope, intercept = relaxations[k]
        shift = _times(np.minimum(coef, 0.0), intercept)
        const = const + shift
        const_magnitude = const_magnitude - shift
        coef = coef * np.where(coef < 0, upper_slope[:, None, :], lower_slope[:, None, :])
        magnitude = magnitude * np.maximum(lower_slope, upper_slope)[:, None, :]
        const = const + _times(coef, bs[k])
        const_magnitude = const_magnitude + _times(magnitude, np.abs(bs[k]))
        absW = ("tail", np.abs(Ws[k][1])) if isinstance(Ws[k], tuple) else np.abs(Ws[k])
        coef, magnitude = _product(coef, Ws[k]), _product(magnitude, absW)
    offsets = const + _times(coef, center)
    bound = offsets - _times(np.abs(coef), radius)
    error = slack * (const_magnitude + _times(magnitude, np.abs(center) + radius))
    return bound - error


# ------------------------------------------------------------------ interval matrices and norms

def _add_up(a, b):
    """``a + b`` (non-negative) rounded up."""
    return upward(a + b, 2)


def interval_product(T_mid, T_rad, A, E):
    """``[T_mid +- T_rad] @ [A +- E]`` as a midpoint and a rigorous radius (stacks or
    shared matrices)."""
    n = A.shape[-2]
    abs_A = np.abs(A)
    mid = T_mid @ A
    rad = T_rad @ _add_up(abs_A, E) + np.abs(T_mid) @ E + dot_error(np.abs(T_mid), abs_A, n)
    return mid, upward(rad, n + 2)


def times_slopes(mid, rad, s_lo, s_hi):
    """``[mid +- rad]`` times a diagonal of slopes in ``[s_lo, s_hi]`` (each 0 or 1, per
    item and column): exact where they agree, the interval hull with 0 where not."""
    s_lo, s_hi = s_lo[:, None, :], s_hi[:, None, :]
    stable = s_lo == s_hi
    lo, hi = narrowed(mid, rad), widened(mid, rad)
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    hull_mid = (lo + hi) / 2
    hull_rad = np.maximum(hi - hull_mid, hull_mid - lo)
    hull_rad = hull_rad + 4 * _U * (np.abs(hi) + np.abs(lo)) + _TINY
    return np.where(stable, mid * s_lo, hull_mid), np.where(stable, rad * s_lo, hull_rad)


def norm_upper(mid, rad, norm, direction):
    """Rigorous upper bounds of ``||M||`` (or ``||M v||``) over every ``M`` in the interval
    matrices ``[mid +- rad]`` (stacked (items, k, d))."""
    if direction is not None:
        v = np.abs(direction)
        vector = _add_up(np.abs(mid @ direction), upward(rad @ v + dot_error(np.abs(mid), v,
                                                                            len(v)), len(v) + 1))
        size = vector.shape[1]
        if norm == 1:
            return upward(vector.sum(1), size)
        if norm == np.inf:
            return vector.max(1, initial=0.0)
        return _sqrt_up(upward((vector * vector).sum(1), size + 1))
    magnitude = _add_up(np.abs(mid), rad)
    columns = upward(magnitude.sum(1), magnitude.shape[1]).max(1, initial=0.0)
    rows = upward(magnitude.sum(2), magnitude.shape[2]).max(1, initial=0.0)
    if norm == 1:
        return columns
    if norm == np.inf:
        return rows
    split = _add_up(spectral_upper(mid), spectral_upper(rad))
    return np.minimum(np.minimum(spectral_upper(magnitude), split),
                      _sqrt_up(upward(columns * rows)))


def _sqrt_up(x):
    """``sqrt(x)`` rounded up (``x >= 0``; the float square root is correctly rounded)."""
    return np.nextafter(np.sqrt(x), np.inf)


def _frobenius_up(M):
    """Upper bounds of the Frobenius norms of a stack of non-negative matrices."""
    size = M.shape[1] * M.shape[2]
    return _sqrt_up(upward((M * M).sum((1, 2)), size + 1))


def spectral_upper(M):
    """Rigorous upper bounds of the spectral norms of a stack of matrices (items, p, q).

    With ``S`` the symmetrised float Gram matrix and ``S V = V diag(w) + R`` from its
    float eigendecomposition: every eigenvalue of ``S`` is within ``||R|| / sqrt(1 - f)``
    of some ``w_i`` (Bauer-Fike on ``V^-1 S V``; ``f >= ||V^T V - I||``), and the exact
    Gram matrix differs from ``S`` by at most the bound ``D`` of its rounding (Weyl)."""
    if M.shape[1] < M.shape[2]:
        M = np.swapaxes(M, 1, 2)
    count, p, q = M.shape
    if not q or not count:
        return np.zeros(count)
    abs_M, abs_Mt = np.abs(M), np.abs(np.swapaxes(M, 1, 2))
    G = np.swapaxes(M, 1, 2) @ M
    S = (G + np.swapaxes(G, 1, 2)) / 2
    G_err = dot_error(abs_Mt, abs_M, p)
    D = upward(G_err + np.abs(G - S) + np.abs(G - np.swapaxes(G, 1, 2)) + 4 * _U * np.abs(S), 4)
    w, V = np.linalg.eigh(S)
    SV, Vw = S @ V, V * w[:, None, :]
    R = np.abs(SV - Vw) + dot_error(np.abs(S), np.abs(V), q) + 4 * _U * (np.abs(SV) + np.abs(Vw))
    VtV = np.swapaxes(V, 1, 2) @ V
    F = np.abs(VtV - np.eye(q)) + dot_error(np.abs(np.swapaxes(V, 1, 2)), np.abs(V), q) \
        + 4 * _U * (np.abs(VtV) + 1.0)
    f = _frobenius_up(F)
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.nextafter(np.sqrt(np.nextafter(1.0 - f, -np.inf)), -np.inf)
        spread = np.nextafter(_frobenius_up(R) / root, np.inf)
    top = np.nextafter(np.nextafter(w[:, -1] + spread, np.inf) + _frobenius_up(D), np.inf)
    return np.where(f < 0.5, _sqrt_up(np.maximum(top, 0.0)), np.inf)

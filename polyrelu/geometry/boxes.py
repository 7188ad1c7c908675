"""Bounds over boxes cut by halfspaces, vectorised over many boxes at once.

A piece of the domain is kept as a bounding box ``[low, high]`` plus the halfspaces
``H x <= beta`` the box does not imply. These functions bound a linear function over
such a piece without an LP (:func:`cut_bound`), shrink boxes by halfspaces
(:func:`contract`, :func:`tighten`; the results still contain the pieces) and pick the
halfspaces a box does not imply (:func:`needed_cuts`). :func:`lp_bound` bounds by the LP
over all the halfspaces at once (a dual simplex run on many pieces together).
"""

import numpy as np

__all__ = ["cut_bound", "contract", "tighten", "needed_cuts", "lp_bound"]

_INF = np.inf


def cut_bound(G, low, high, H, beta):
    """Upper bounds of ``G[k] @ x`` over the box ``[low, high]`` intersected with the
    halfspaces ``H x <= beta``: for each k the best of the exact bounds over the box and
    one halfspace at a time (Lagrangian duality: ``lam beta_i + max_box (G[k] - lam H_i)
    x`` bounds it for every ``lam >= 0`` and is least at a breakpoint ``lam = G[k, l] /
    H[i, l]``). Either one box and ``H`` of shape (m, d) for all rows of ``G``, or per
    row ``k`` its own box (k, d), ``H`` (k, m, d) and ``beta`` (k, m); all-zero rows of
    ``H`` (with ``beta`` 0) are ignored. Works through the rows in chunks of at most
    :data:`CHUNK_BYTES` of intermediate arrays (they grow as rows x halfspaces x d^2).

    >>> import numpy as np
    >>> float(cut_bound(np.array([[1.0, 1.0]]), np.zeros(2), np.ones(2),
    ...                 np.array([[1.0, 1.0]]), np.array([1.0]))[0])
    1.0
    """
    box_bound = np.maximum(G * low, G * high).sum(axis=-1)
    if not H.shape[-2] or not len(G):
        return box_bound
    per_row = H.ndim == 3
    d = G.shape[-1]
    step = max(1, CHUNK_BYTES // (8 * H.shape[-2] * d * d))
    parts = []
    for start in range(0, len(G), step):
        rows = slice(start, start + step)
        parts.append(_cut_bound_rows(G[rows], low[rows] if per_row else low,
                                     high[rows] if per_row else high,
                                     H[rows] if per_row else H,
                                     beta[rows] if per_row else beta))
    return np.minimum(box_bound, np.concatenate(parts))


#: Largest intermediate array :func:`cut_bound` builds at once (bytes).
CHUNK_BYTES = 64 * 2 ** 20


def _cut_bound_rows(G, low, high, H, beta):
    """The halfspace bounds of :func:`cut_bound` for a chunk of rows."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = G[..., None, :] / H
    lam = np.where((lam > 0) & (lam < _INF), lam, 0.0)  # also drops inf and nan
    coef = G[..., None, None, :] - lam[..., None] * H[..., None, :]  # (k, m, d, d)
    low, high = low[..., None, None, :], high[..., None, None, :]
    bounds = np.maximum(coef * low, coef * high).sum(axis=-1) + lam * beta[..., None]
    return bounds.reshape(len(G), -1).min(axis=1)


def contract(low, high, row, rhs):
    """Boxes ``[low[k], high[k]]`` shrunk by one constraint ``row[k] x <= rhs[k]`` each
    (each coordinate's bound given the others' box bounds): still bounding boxes of the
    cut pieces."""
    least = np.minimum(row * low, row * high)  # min of row_kl x_l over the box
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = (rhs[:, None] - least.sum(1)[:, None] + least) / row
    return np.where(row < 0, np.maximum(low, bound), low), \
        np.where(row > 0, np.minimum(high, bound), high)


def tighten(low, high, A, b):
    """Boxes ``[low[k], high[k]]`` shrunk by every row of ``A[k] x <= b[k]`` (one pass of
    bound propagation; rows with ``b = inf`` are ignored); still bounding boxes."""
    least = np.minimum(A * low[:, None, :], A * high[:, None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = (b[..., None] - least.sum(2)[..., None] + least) / A
    return (np.maximum(low, np.where(A < 0, bound, -_INF).max(1)),
            np.minimum(high, np.where(A > 0, bound, _INF).min(1)))


def needed_cuts(cuts, beta, low, high):
    """The rows of ``cuts x <= beta`` that the box ``[low, high]`` does not imply."""
    needed = np.maximum(cuts * low, cuts * high).sum(1) > beta
    return cuts[needed], beta[needed]


#: Relative allowance added to :func:`lp_bound`'s bounds for their rounding error.
_ROUNDING = 1e-12


def lp_bound(G, low, high, H, beta, below=None):
    """Upper bounds of ``G[k] @ x`` over the box ``[low[k], high[k]]`` intersected with the
    halfspaces ``H[k] x <= beta[k]`` (shapes (n, d), (n, d), (n, d), (n, m, d), (n, m);
    all-zero rows of ``H`` with ``beta`` 0 are ignored), each the LP's maximum up to
    rounding when the dual simplex behind it reaches the optimum.

    Every bound is Lagrangian, ``lam @ beta + max_box (G[k] - lam H[k]) x`` for some
    ``lam >= 0`` (valid for any such ``lam``; a relative allowance for rounding is added),
    so it is an upper bound however the multipliers were found (never a vertex's value).
    They come from a dual simplex run on all the problems at once: it starts at the box's
    corner that maximises ``G[k] @ x`` (dual feasible) and moves the most violated
    halfspace into the active set each step. A problem stops at its optimum, when its bound is below
    ``below[k]`` (the bound asked for is proven), or after ``2 (d + m)`` steps.

    >>> import numpy as np
    >>> H = np.array([[[1.0, 1.0], [1.0, -1.0]]])
    >>> bound = lp_bound(np.array([[1.0, 0.0]]), np.full((1, 2), -2.0), np.full((1, 2), 2.0),
    ...                  H, np.array([[1.0, 0.0]]))
    >>> round(float(bound[0]), 9)   # x1 <= 1/2 where x1 + x2 <= 1 and x1 - x2 <= 0
    0.5
    """
    n, m, d = H.shape
    rows = np.concatenate([np.broadcast_to(np.eye(d), (n, d, d)),
                           np.broadcast_to(-np.eye(d), (n, d, d)), H], axis=1)
    rhs = np.concatenate([high, -low, beta], axis=1)
    basis = np.where(G >= 0, np.arange(d), d + np.arange(d))  # the active rows, one per column
    y = np.abs(G)  # their multipliers: G = sum_j y_j rows[basis_j]
    best = np.maximum(G * low, G * high).sum(axis=1)
    below = np.full(n, -_INF) if below is None else below
    active = np.flatnonzero(best >= below)
    for _ in range(2 * (d + m)):
        if not active.size:
            break
        active, leaving, entering = _dual_simplex_step(rows, rhs, basis, y, active)
        basis[active, leaving] = entering
        best[active] = np.minimum(best[active], _lagrangian_bound(
            G[active], low[active], high[active], H[active], beta[active],
            basis[active] - 2 * d, y[active]))
        active = active[best[active] >= below[active]]
    return best


def _dual_simplex_step(rows, rhs, basis, y, active):
    """One dual simplex step on the problems ``active``: the most violated row of each
    enters the active set (``y`` is updated in place). Returns the problems that moved (not
    optimal already) and per moved problem the position in ``basis`` that leaves and the
    row that enters it. (At the optimum the last Lagrangian bound is the LP's maximum.)"""
    base = np.take_along_axis(rows[active], basis[active][..., None], axis=1)  # (a, d, d)
    x = np.linalg.solve(base, np.take_along_axis(rhs[active], basis[active], 1)[..., None])[..., 0]
    violation = np.einsum("nrd,nd->nr", rows[active], x) - rhs[active]
    entering = np.argmax(violation, axis=1)
    worst = violation[np.arange(len(active)), entering]
    optimal = worst <= _ROUNDING * (1.0 + np.abs(rhs[active]).max(axis=1))
    active, base, entering = active[~optimal], base[~optimal], entering[~optimal]
    # the entering row in terms of the active ones, then the dual ratio test
    w = np.linalg.solve(np.transpose(base, (0, 2, 1)),
                        rows[active, entering][..., None])[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(w > 1e-12, y[active] / w, _INF)
    leaving = np.argmin(ratio, axis=1)
    t = ratio[np.arange(len(active)), leaving]
    moved = np.isfinite(t)  # (else rounding made the LP look infeasible: stop there)
    active, w, t = active[moved], w[moved], t[moved]
    leaving, entering = leaving[moved], entering[moved]
    moved_y = np.maximum(y[active] - t[:, None] * w, 0.0)
    moved_y[np.arange(len(active)), leaving] = t
    y[active] = moved_y
    return active, leaving, entering


def _lagrangian_bound(G, low, high, H, beta, cut, y):
    """``lam @ beta + max_box (G - lam H) x`` plus its rounding allowance, where ``lam``
    holds the multipliers ``y`` of the active halfspaces (``cut`` their indices, negative
    for box rows)."""
    lam = np.zeros(beta.shape)
    which, position = np.nonzero(cut >= 0)
    lam[which, cut[which, position]] = y[which, position]
    g = G - np.einsum("nm,nmd->nd", lam, H)
    terms = np.maximum(g * low, g * high)
    weighted = lam * beta
    scale = np.abs(terms).sum(axis=1) + np.abs(weighted).sum(axis=1) + np.abs(G).sum(axis=1)
    return terms.sum(axis=1) + weighted.sum(axis=1) + _ROUNDING * scale

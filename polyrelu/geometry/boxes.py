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
    rounding when the dual simplex behind it reaches the optimum, and the optimal vertices
    (n, d), NaN where it did not (they satisfy the rows up to 1e-12, relative).

    Every bound is a dual one: for multipliers ``y >= 0`` of d rows ``B`` of the system
    (box rows or halfspaces, right-hand sides ``r``), ``G[k] @ x <= y @ r + max_box (G[k] -
    y B) x`` on the polytope, whatever ``y`` is (a relative allowance for rounding is
    added); never a vertex's value. The multipliers come from a dual simplex run on all
    the problems at once: it starts at the box's corner that maximises ``G[k] @ x`` (dual
    feasible) and moves the most violated row into ``B`` each step. A problem stops at
    its optimum, once its bound is below ``below[k]`` (the bound asked for is proven), or
    after ``2 (d + m)`` steps.

    >>> import numpy as np
    >>> H = np.array([[[1.0, 1.0], [1.0, -1.0]]])
    >>> bound, vertex = lp_bound(np.array([[1.0, 0.0]]), np.full((1, 2), -2.0),
    ...                          np.full((1, 2), 2.0), H, np.array([[1.0, 0.0]]))
    >>> round(float(bound[0]), 9), vertex.round(9).tolist()  # x1 + x2 <= 1, x1 - x2 <= 0
    (0.5, [[0.5, 0.5]])
    """
    n, m, d = H.shape
    best = np.maximum(G * low, G * high).sum(axis=1)
    below = np.full(n, -_INF) if below is None else below
    vertices = np.full(G.shape, np.nan)
    state = _DualSimplex(G, low, high, H, beta, np.flatnonzero(best >= below))
    for _ in range(2 * (d + m)):
        if not state.problems.size:
            break
        moved, optimal, x = state.step()
        vertices[state.problems[optimal]] = x[optimal]
        bound = state.bound()
        best[state.problems] = np.minimum(best[state.problems], bound)
        state.keep(moved & (best[state.problems] >= below[state.problems]))
    return best, vertices


class _DualSimplex:
    """The dual simplex state of :func:`lp_bound` for the problems still running (arrays
    over them: all rows ``rows`` (box rows, then halfspaces) and right-hand sides ``rhs``,
    the d rows ``base`` (right-hand sides ``base_rhs``) that define the vertex, and their
    multipliers ``y >= 0`` with ``y @ base = G``)."""

    def __init__(self, G, low, high, H, beta, problems):
        d = G.shape[1]
        self.problems, self.G, self.low, self.high = problems, G[problems], low[problems], \
            high[problems]
        count = len(problems)
        self.rows = np.concatenate([np.broadcast_to(np.eye(d), (count, d, d)),
                                    np.broadcast_to(-np.eye(d), (count, d, d)), H[problems]],
                                   axis=1)
        self.rhs = np.concatenate([self.high, -self.low, beta[problems]], axis=1)
        upper = self.G >= 0  # the corner maximising G: x_i <= high_i or -x_i <= -low_i
        self.base = np.where(upper[..., None], np.eye(d), -np.eye(d))
        self.base_rhs = np.where(upper, self.high, -self.low)
        self.y = np.abs(self.G)
        self.tol = _ROUNDING * (1.0 + np.abs(self.rhs).max(axis=1, initial=0.0))

    def step(self):
        """Move the most violated row of each problem into its base (the dual ratio test
        picks the row that leaves). Returns which problems moved, which are optimal (the
        others stopped by rounding) and the vertices the steps started from."""
        x = np.linalg.solve(self.base, self.base_rhs[..., None])[..., 0]
        violation = np.einsum("nrd,nd->nr", self.rows, x) - self.rhs
        entering = np.argmax(violation, axis=1)
        every = np.arange(len(x))
        row = self.rows[every, entering]
        w = np.linalg.solve(np.transpose(self.base, (0, 2, 1)), row[..., None])[..., 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(w > 1e-12, self.y / w, _INF)
        leaving = np.argmin(ratio, axis=1)
        t = ratio[every, leaving]
        optimal = violation[every, entering] <= self.tol
        moved = ~optimal & np.isfinite(t)
        every, leaving, entering, t = every[moved], leaving[moved], entering[moved], t[moved]
        y = np.maximum(self.y[every] - t[:, None] * w[moved], 0.0)
        y[np.arange(len(every)), leaving] = t
        self.y[every] = y
        self.base[every, leaving] = row[moved]
        self.base_rhs[every, leaving] = self.rhs[every, entering]
        return moved, optimal, x

    def bound(self):
        """The dual bound of each problem, its rounding allowance included."""
        residual = self.G - np.einsum("nj,njd->nd", self.y, self.base)
        box = np.maximum(residual * self.low, residual * self.high)
        weighted = self.y * self.base_rhs
        scale = np.abs(box).sum(axis=1) + np.abs(weighted).sum(axis=1) + \
            np.abs(self.G).sum(axis=1)
        return box.sum(axis=1) + weighted.sum(axis=1) + _ROUNDING * scale

    def keep(self, kept):
        """Go on with the problems ``kept`` (a mask) only."""
        if kept.all():
            return
        for name in ("problems", "G", "low", "high", "rows", "rhs", "base", "base_rhs", "y",
                     "tol"):
            setattr(self, name, getattr(self, name)[kept])

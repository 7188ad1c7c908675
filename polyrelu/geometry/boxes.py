"""Bounds over boxes cut by halfspaces, vectorised over many boxes at once.

A piece of the domain is kept as a bounding box ``[low, high]`` plus the halfspaces
``H x <= beta`` the box does not imply. These functions bound a linear function over
such a piece without an LP (:func:`cut_bound`), shrink boxes by halfspaces
(:func:`contract`, :func:`tighten`; the results still contain the pieces) and pick the
halfspaces a box does not imply (:func:`needed_cuts`).
"""

import numpy as np

__all__ = ["cut_bound", "contract", "tighten", "needed_cuts"]

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

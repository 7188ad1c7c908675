"""Moving witness points inside polytopes, vectorised over many polytopes at once.

Each polytope ``{x : A[p] x <= b[p]}`` (padding rows have ``b = inf``) has witness points
(its points known so far, with a validity mask). These functions look for a point where
a linear function ``sign (a x + c)`` is larger than at the witnesses: along a ray to the
boundary (:func:`ray`), then along the facets met (:func:`ray_and_climb`, projected
gradient steps), and pick a point on the way from the deepest witness towards the far
side of a hyperplane (:func:`toward`). The splitting engine uses them to find points on
both sides of a neuron's hyperplane without an LP.
"""

import numpy as np

__all__ = ["ray", "ray_and_climb", "toward"]

_INF = np.inf


def ray(A, b, points, valid, values, direction, sign):
    """For each piece ``{A[p] x <= b[p]}`` (padding rows ``b = inf``), the point reached
    from one of its witnesses ``points[p]`` (where ``valid``) along ``direction`` (a ray
    to the boundary) where ``sign (a x + c)`` is largest, and that largest value
    (``values`` = ``a x + c`` at the witnesses, ``direction = sign a``)."""
    rates = (A @ direction[..., None])[..., 0]
    slack = b[:, None, :] - points @ A.transpose(0, 2, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.where(rates[:, None, :] > 0, slack / rates[:, None, :], _INF).min(2)
    steps = np.where(valid & np.isfinite(steps), np.maximum(steps, 0.0), 0.0)
    gained = np.where(valid, sign * values + steps * (direction * direction).sum(1)[:, None],
                      -_INF)
    best = np.argmax(gained, 1)
    rows = np.arange(len(A))
    return points[rows, best] + steps[rows, best][:, None] * direction, gained[rows, best]


def ray_and_climb(A, b, points, valid, values, direction, sign, tol, steps=3):
    """For each piece, the best point reached from its witnesses along ``direction``
    (:func:`ray`, then projected gradient steps along the facets met when the ray falls
    short): ``(found, point)`` with ``found`` where ``sign (a x + c) > tol`` there."""
    point, gain = ray(A, b, points, valid, values, direction, sign)
    short = gain <= tol
    if short.any():
        point[short], gain[short] = _climb(A[short], b[short], point[short], direction[short],
                                           gain[short], steps)
    return gain > tol, point


def _climb(A, b, points, direction, gain, steps):
    """Projected gradient ascent along ``direction`` from boundary points of the pieces
    ``{A x <= b}``: each step projects the direction off the rows tight at the point
    and moves to the next row. Returns the points and the gains."""
    d = A.shape[2]
    tight_tol = 1e-12 * (1.0 + np.abs(np.where(np.isfinite(b), b, 0.0)).max())
    length = np.sqrt((direction * direction).sum(1))
    for _ in range(steps):
        slack = b - (A @ points[..., None])[..., 0]
        normals = A * (slack <= tight_tol)[..., None]
        gram = normals.transpose(0, 2, 1) @ normals
        projector = np.eye(d) - gram @ np.linalg.pinv(gram, hermitian=True)
        move = (projector @ direction[..., None])[..., 0]
        rates = (A @ move[..., None])[..., 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(rates > 1e-12 * length[:, None], np.maximum(slack, 0.0) / rates,
                            _INF).min(1)
        step = np.where(np.isfinite(step), step, 0.0)
        points = points + step[:, None] * move
        gain = gain + step * (move * move).sum(1)
    return points, gain


def toward(points, values, valid, sign):
    """Per piece, a point halfway from the hyperplane to the witness furthest on side
    ``sign``, on the segment from the deepest point ``points[:, 0]``."""
    rows = np.arange(len(points))
    far = np.argmax(np.where(valid, sign * values, -_INF), 1)
    first, last = values[:, 0], values[rows, far]
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.nan_to_num(first / (first - last))
    return points[:, 0] + ((1 + crossing) / 2)[:, None] * (points[rows, far] - points[:, 0])

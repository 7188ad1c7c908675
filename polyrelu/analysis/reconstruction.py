"""Inverting an injective ReLU layer: ``x`` from ``z = relu(W x - a)``.

On the active set ``I = {i : z_i > 0}`` the layer is linear, ``z_I = W_I x - a_I``.
When the layer is injective (e.g. with a certified bias, :mod:`polyrelu.analysis.bias`)
the rows ``W_I`` span, and the canonical dual frame gives
``x = pinv(W_I) (z_I + a_I)``. The lower frame bound ``A_I`` (smallest eigenvalue
of ``W_I^T W_I``) is the stability constant: noise e in the active outputs moves
the reconstruction by at most ``||e|| / sqrt(A_I)``. The iterative frame
algorithm ``x <- x + 2/(A+B) W_I^T (z_I + a_I - W_I x)`` reaches the same x
without a pseudo-inverse, for large layers.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import PolyreluError
from .injectivity import thresholds

__all__ = ["Reconstruction", "invert"]


@dataclass(frozen=True)
class Reconstruction:
    """The input recovered by :func:`invert`.

    Attributes
    ----------
    x : ndarray, shape (n,)
    active : ndarray of int
        Rows with ``z_i > 0``.
    lower_frame_bound : float
        ``A_I``: ``||W_I v||^2 >= A_I ||v||^2``; the error bound is ``||e|| / sqrt(A_I)``.
    iterations : int
        Iterations of the frame algorithm (0 for the dual frame).
    """

    x: np.ndarray
    active: np.ndarray
    lower_frame_bound: float
    iterations: int = 0


def invert(W, bias, z, *, convention="threshold", method="dual", tol=1e-14, max_iter=100000):
    """Recover x from ``z = relu(W x - a)`` through the active rows.

    Parameters
    ----------
    W : array_like, shape (m, n)
    bias : array_like, shape (m,)
        Threshold ``a`` or PyTorch bias ``b`` (``convention``).
    z : array_like, shape (m,)
        The layer's output.
    method : {"dual", "iterative"}
        Canonical dual frame (pseudo-inverse) or the frame algorithm, stopped
        when an update is below ``tol`` times ``||x||``.

    Raises
    ------
    PolyreluError
        If the active rows do not span R^n (x is not determined by z).

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, 0], [0, 1], [-1, -1]])
    >>> a = np.array([-1.0, -1, -1])
    >>> z = np.maximum(W @ [0.3, -0.2] - a, 0)
    >>> r = invert(W, a, z)
    >>> np.round(r.x, 12).tolist(), r.active.tolist(), round(r.lower_frame_bound, 12)
    ([0.3, -0.2], [0, 1, 2], 1.0)
    """
    W = np.asarray(W, dtype=np.float64)
    a = thresholds(bias, convention)
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    if W.ndim != 2 or a.shape != (W.shape[0],) or z.shape != a.shape:
        raise PolyreluError(
            f"W {W.shape}, bias {a.shape} and z {z.shape} do not fit one m x n layer")
    if method not in ("dual", "iterative"):
        raise PolyreluError(f"method must be 'dual' or 'iterative', got {method!r}")
    active = np.flatnonzero(z > 0)
    rows, target = W[active], z[active] + a[active]
    eigen = np.linalg.eigvalsh(rows.T @ rows) if len(active) else np.zeros(1)
    lower, upper = float(eigen[0]), float(eigen[-1])
    if lower <= 1e-12 * max(upper, 1.0):
        raise PolyreluError(
            f"the {len(active)} active rows do not span R^{W.shape[1]}: "
            "z does not determine x (the layer is not injective there)")
    if method == "dual":
        return Reconstruction(np.linalg.pinv(rows) @ target, active, lower)
    x, step = np.zeros(W.shape[1]), 2.0 / (lower + upper)
    for iteration in range(1, max_iter + 1):
        update = step * rows.T @ (target - rows @ x)
        x = x + update
        if np.linalg.norm(update) <= tol * max(np.linalg.norm(x), 1.0):
            return Reconstruction(x, active, lower, iteration)
    raise PolyreluError(f"the frame algorithm did not converge in {max_iter} iterations")

"""Exact partition of a 1-D path through input space into affine pieces.

A path is ``x(t) = origin + directions @ phi(t)`` for a small basis ``phi``:

- :class:`Segment` ``a + t (b - a)``, ``t`` in ``[0, 1]``, ``phi(t) = (t,)``;
- :class:`ClosedCurve` ``x0 + sum_j (U_j cos jt + V_j sin jt)``, ``t`` in ``[0, 2 pi)``,
  ``phi(t) = (cos t, ..., cos Kt, sin t, ..., sin Kt)``; ``K = 1`` is the ellipse
  ``x0 + u cos t + v sin t``.

:func:`path_pieces` follows the path layer by layer, on any network of
:mod:`polyrelu.network.layers`. On a piece, every pre-activation is ``c + p . phi(t)``;
the zeros of the ReLU units' inside the piece are found in closed form by the path (a
linear root; ``arctan2`` / ``arccos`` for ``a cos t + b sin t + c``; the eigenvalues of a
companion matrix, polished by Newton steps, for ``K > 1``), and, on each part, those of
the pairwise differences of every max window's entries (where its argmax can change).
The piece is cut there, and each sub-piece's pattern is read at its midpoint (ReLU
signs, window argmaxes with the lowest position winning ties). Sub-pieces with equal
patterns are merged again, so:

- a *tangential* root (the pre-activation touches 0 without changing sign) never
  splits a piece, whether or not rounding reports it;
- a root within ``1e-12`` of the period from a piece's end is ignored (the
  neighbouring piece already starts there);
- a unit whose pre-activation is identically zero along the piece (below
  ``Options.zero_rel`` times the size of the terms summed to get it) is inactive,
  polyrelu's convention (both states give the same network); two window entries whose
  difference is identically zero in that sense are tied, and the lower position wins.

On a closed curve the first and last pieces may carry the same pattern (the curve
wraps around at ``t = 0``); they are kept apart so pieces stay intervals of ``t``.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidDomainError
from ..network.layers import LINEAR
from ..network.model import LocalAffineMaps
from ..options import Options
from .atoms import select_rows

__all__ = ["Segment", "ClosedCurve", "PathPiece", "path_pieces"]


class _Path:
    """``x(t) = origin + directions @ phi(t)`` for ``t`` in ``[start, end]``."""

    start = 0.0

    def __init__(self, origin, directions):
        self.origin = _finite(origin, "path origin").ravel()
        self.directions = _finite(directions, "path directions").reshape(self.origin.size, -1)
        self.origin.setflags(write=False)
        self.directions.setflags(write=False)

    @property
    def dim(self):
        """Dimension of the input space the path lives in."""
        return self.origin.size

    @property
    def period(self):
        """Length ``end - start`` of the parameter interval (the Fourier period)."""
        return self.end - self.start

    def points(self, t):
        """The points ``x(t)``, array of shape (len(t), dim)."""
        return self.origin + self.phi(t) @ self.directions.T

    def pull_back(self, A, c):
        """An affine map ``A x + c`` along the path, as ``(c', P)`` with value ``c' + P phi(t)``."""
        return A @ self.origin + c, A @ self.directions


class Segment(_Path):
    """The segment ``x(t) = a + t (b - a)``, ``0 <= t <= 1``.

    Its Fourier series (:mod:`polyrelu.analysis.spectrum`) has period 1 in ``t``.

    Examples
    --------
    >>> Segment([0, 0], [2, 1]).points([0.5]).tolist()
    [[1.0, 0.5]]
    """

    end = 1.0
    omega = 2 * np.pi

    def __init__(self, a, b):
        a = _finite(a, "segment start").ravel()
        b = _finite(b, "segment end").ravel()
        if a.shape != b.shape:
            raise InvalidDomainError(f"segment ends have {a.size} and {b.size} coordinates")
        super().__init__(a, b - a)

    @staticmethod
    def phi(t):
        """Basis values, array (len(t), 1): ``phi(t) = t``."""
        return np.asarray(t, dtype=np.float64).reshape(-1, 1)

    @staticmethod
    def roots(c, P, t0, t1):
        """All zeros in ``(t0, t1)`` of the functions ``c[i] + P[i, 0] t`` (sorted, flat)."""
        slope = P[:, 0]
        moving = slope != 0
        return _inside(-c[moving] / slope[moving], t0, t1, 1.0)

    def fourier_integrals(self, t0, t1, k):
        """``int e^{-i k w t} dt`` and ``int phi_j(t) e^{-i k w t} dt`` over ``[t0, t1]``.

        Returns complex arrays of shapes (len(k),) and (len(k), 1), with ``w = 2 pi``.
        """
        lam = -1j * self.omega * np.asarray(k, dtype=np.float64)
        flat = _exp_integral(lam, t0, t1)
        safe = np.where(lam == 0, 1.0, lam)
        primitive = [np.exp(safe * t) * (t / safe - 1 / safe ** 2) for t in (t0, t1)]
        ramp = np.where(lam == 0, (t1 ** 2 - t0 ** 2) / 2, primitive[1] - primitive[0])
        return flat, ramp[:, None]


class ClosedCurve(_Path):
    """The closed curve ``x(t) = x0 + sum_j (U[:, j] cos jt + V[:, j] sin jt)``, one period.

    Parameters
    ----------
    x0 : array_like, shape (d,)
    U, V : array_like, shape (d,) or (d, K)
        Column ``j - 1`` multiplies ``cos jt`` (``sin jt``). With shape (d,), the
        ellipse ``x0 + U cos t + V sin t``.

    Examples
    --------
    >>> circle = ClosedCurve([0, 0], [1, 0], [0, 1])
    >>> np.round(circle.points([0, np.pi / 2]), 12).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """

    end = 2 * np.pi
    omega = 1.0

    def __init__(self, x0, U, V):
        x0 = _finite(x0, "curve centre").ravel()
        U = _finite(U, "curve cosine part").reshape(x0.size, -1)
        V = _finite(V, "curve sine part").reshape(x0.size, -1)
        if U.shape != V.shape:
            raise InvalidDomainError(f"curve parts U and V have shapes {U.shape} and {V.shape}")
        self.harmonics = U.shape[1]
        super().__init__(x0, np.hstack([U, V]))

    def phi(self, t):
        """Basis values, array (len(t), 2K): ``cos jt`` then ``sin jt``, ``j = 1..K``."""
        angles = np.outer(np.asarray(t, dtype=np.float64).ravel(),
                          np.arange(1, self.harmonics + 1))
        return np.hstack([np.cos(angles), np.sin(angles)])

    def roots(self, c, P, t0, t1):
        """All zeros in ``(t0, t1)`` of ``c[i] + P[i] . phi(t)`` (sorted, flat)."""
        if self.harmonics == 1:
            return _inside(_ellipse_roots(c, P[:, 0], P[:, 1]), t0, t1, self.period)
        found = [self._trig_roots(ci, Pi) for ci, Pi in zip(c, P)]
        return _inside(np.concatenate(found) if found else np.zeros(0), t0, t1, self.period)

    def _trig_roots(self, c, P):
        """Real zeros of a trigonometric polynomial: unit-circle roots of ``z^K p``, polished."""
        K = self.harmonics
        a, b = P[:K], P[K:]
        coefficients = np.zeros(2 * K + 1, dtype=complex)  # lowest degree first
        coefficients[K] = c
        coefficients[K + 1:] = (a - 1j * b) / 2
        coefficients[K - 1::-1] = (a + 1j * b) / 2
        z = np.roots(coefficients[::-1])
        t = np.mod(np.angle(z[np.abs(np.abs(z) - 1) < 1e-5]), 2 * np.pi)
        j = np.arange(1, K + 1)
        for _ in range(3):  # Newton steps on the real function
            value = c + np.cos(np.outer(t, j)) @ a + np.sin(np.outer(t, j)) @ b
            slope = np.sin(np.outer(t, j)) @ (-j * a) + np.cos(np.outer(t, j)) @ (j * b)
            t = t - np.where(slope != 0, value / np.where(slope != 0, slope, 1), 0)
        return np.mod(t, 2 * np.pi)

    def fourier_integrals(self, t0, t1, k):
        """``int e^{-i k t} dt`` and ``int phi_j(t) e^{-i k t} dt`` over ``[t0, t1]``.

        Returns complex arrays of shapes (len(k),) and (len(k), 2K).
        """
        k = np.asarray(k, dtype=np.float64)[:, None]
        j = np.arange(1, self.harmonics + 1)[None, :]
        up = _exp_integral(1j * (j - k), t0, t1)      # int e^{i (j - k) t}
        down = _exp_integral(-1j * (j + k), t0, t1)   # int e^{-i (j + k) t}
        return _exp_integral(-1j * k[:, 0], t0, t1), np.hstack([(up + down) / 2,
                                                                (up - down) / 2j])


@dataclass(frozen=True)
class PathPiece:
    """A maximal interval ``[t0, t1]`` of a path on which the activation pattern is fixed.

    Attributes
    ----------
    t0, t1 : float
    pattern : ndarray of bool, shape (N,)
        Pattern inside the piece: the network's slots, layer by layer (ReLU units'
        states, window argmax one-hots).
    maps : LocalAffineMaps
        The pattern's affine maps in input space: ``maps.W_eff @ x + maps.b_eff`` is the
        output, ``maps.pre_A @ x + maps.pre_c`` the hidden pre-activations.
    """

    t0: float
    t1: float
    pattern: np.ndarray
    maps: LocalAffineMaps

    @property
    def W_eff(self):
        """Output map ``x -> W_eff @ x + b_eff`` on the piece, shape (m, d)."""
        return self.maps.W_eff

    @property
    def b_eff(self):
        """Output offset on the piece, shape (m,)."""
        return self.maps.b_eff


def path_pieces(network, path, *, options=None):
    """The pieces of ``path`` on which ``network`` is affine, in order of ``t``.

    Parameters
    ----------
    network : Network
    path : Segment or ClosedCurve
    options : Options, optional
        ``zero_rel`` decides when a pre-activation is identically zero on a piece.

    Returns
    -------
    list of PathPiece
        Consecutive pieces (``pieces[i].t1 == pieces[i + 1].t0``) covering the path;
        ``len(pieces)`` is the number of activation regions the path crosses (a region
        crossed twice counts twice).

    Examples
    --------
    >>> from polyrelu import Network
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> pieces = path_pieces(absolute, Segment([-1.0], [3.0]))
    >>> [(p.t0, p.t1, p.W_eff.tolist()) for p in pieces]
    [(0.0, 0.25, [[-1.0]]), (0.25, 1.0, [[1.0]])]
    """
    options = options or Options()
    if path.dim != network.input_dim:
        raise InvalidDomainError(
            f"the path lives in dimension {path.dim} but the network has "
            f"{network.input_dim} inputs")
    pieces = [(path.start, path.end, path.origin, path.directions, [])]
    for layer in network.layers[:-1]:
        pieces = [split for piece in pieces
                  for split in _split_piece(path, piece, layer, options.zero_rel)]
    result = []
    for t0, t1, _, _, slots in pieces:
        pattern = np.concatenate(slots) if slots else np.zeros(0, dtype=bool)
        result.append(PathPiece(float(t0), float(t1), pattern, network.affine_maps(pattern)))
    return result


def _split_piece(path, piece, layer, zero_rel):
    """Cut one piece where the next layer's slots change; each part with the layer's output
    ``C' + P' phi(t)`` (the pre-activations its sources select)."""
    t0, t1, C, P, slots = piece
    zc, zP = layer.weight @ C + layer.bias, layer.weight @ P
    tol = zero_rel * (np.abs(layer.weight) @ (np.abs(C) + np.abs(P).sum(axis=1))
                      + np.abs(layer.bias))
    starts, ends, states = _relu_parts(path, layer, zc, zP, tol, t0, t1)
    if layer.windows.shape[0]:
        starts, ends, states = _window_parts(path, layer, zc, zP, tol, starts, ends, states)
    keep = np.ones(len(states), dtype=bool)
    keep[1:] = np.any(states[1:] != states[:-1], axis=1)  # merge equal neighbours
    first = np.flatnonzero(keep)
    last = np.append(first[1:], len(states)) - 1
    children = []
    for s, e in zip(first, last):
        source = layer.sources(states[s])
        children.append((starts[s], ends[e], select_rows(zc, source), select_rows(zP, source),
                         slots + [states[s]]))
    return children


def _relu_parts(path, layer, zc, zP, tol, t0, t1):
    """Intervals between the zeros of the ReLU units' pre-activations ``zc + zP phi(t)``,
    with the units' states (active: > ``tol``; identically zero: inactive)."""
    relu = layer.relu_units
    zero = np.abs(zc[relu]) + np.abs(zP[relu]).sum(axis=1) <= tol[relu]
    edges = np.concatenate([[t0], path.roots(zc[relu][~zero], zP[relu][~zero], t0, t1), [t1]])
    middles = (edges[:-1] + edges[1:]) / 2
    active = ((zc[relu] + path.phi(middles) @ zP[relu].T) > tol[relu]) & ~zero
    return edges[:-1], edges[1:], active


def _window_parts(path, layer, zc, zP, tol, starts, ends, states):
    """Every interval cut further where a max window's argmax changes; the window slots
    (one-hot argmax per window) appended to each part's states."""
    parts = ([], [], [])
    relu = layer.relu_units
    for t0, t1, relu_state in zip(starts, ends, states):
        on = layer.units == LINEAR
        on[relu] = relu_state
        edges, onehot = _argmax_along(path, layer.windows, zc * on, zP * on[:, None], tol,
                                      t0, t1)
        parts[0].extend(edges[:-1])
        parts[1].extend(edges[1:])
        parts[2].extend(np.hstack([np.tile(relu_state, (len(onehot), 1)), onehot]))
    return np.array(parts[0]), np.array(parts[1]), np.array(parts[2], dtype=bool)


def _argmax_along(path, windows, uc, uP, tol, t0, t1):
    """Breakpoints in ``[t0, t1]`` where a window's argmax changes (zeros of the entries'
    pairwise differences), and the one-hot argmaxes (intervals, windows * k) between them.

    Two entries whose difference is identically zero (below their ``tol``) are tied along
    the interval: the lower position wins.
    """
    n, k = windows.shape
    upper, lower = np.triu_indices(k, 1)
    a, b = np.maximum(windows[:, upper], 0), np.maximum(windows[:, lower], 0)
    valid = (windows[:, upper] >= 0) & (windows[:, lower] >= 0)
    dc, dP = uc[a] - uc[b], uP[a] - uP[b]
    tied = np.abs(dc) + np.abs(dP).sum(axis=2) <= np.maximum(tol[a], tol[b])
    moving = valid & ~tied
    edges = np.concatenate([[t0], path.roots(dc[moving], dP[moving], t0, t1), [t1]])
    middles = (edges[:-1] + edges[1:]) / 2
    entries = np.maximum(windows, 0)
    values = (uc[entries] + np.einsum("tj,wkj->twk", path.phi(middles), uP[entries]))
    values = np.where(windows >= 0, values, -np.inf)
    beats = np.ones((len(middles), n, k, k), dtype=bool)  # [t, w, p, q]: p beats q
    ahead = values[:, :, upper] >= values[:, :, lower]  # the lower position wins equal values
    beats[:, :, upper, lower] = tied | ahead
    beats[:, :, lower, upper] = ~tied & ~ahead
    winners = (beats.all(axis=3) & (windows >= 0)).argmax(axis=2)
    return edges, (winners[:, :, None] == np.arange(k)).reshape(len(middles), n * k)


def _ellipse_roots(c, a, b):
    """Zeros in ``[0, 2 pi)`` of ``c + a cos t + b sin t``, flat (each of up to two)."""
    radius = np.hypot(a, b)
    hit = (radius > 0) & (np.abs(c) <= radius)
    theta = np.arctan2(b[hit], a[hit])
    alpha = np.arccos(np.clip(-c[hit] / radius[hit], -1.0, 1.0))
    return np.mod(np.concatenate([theta - alpha, theta + alpha]), 2 * np.pi)


def _inside(roots, t0, t1, period):
    """Sorted distinct roots strictly inside ``(t0, t1)``, away from the ends by 1e-12 period."""
    gap = 1e-12 * period
    roots = np.sort(roots[(roots > t0 + gap) & (roots < t1 - gap)])
    if roots.size:
        roots = roots[np.concatenate([[True], np.diff(roots) > gap])]
    return roots


def _exp_integral(lam, t0, t1):
    """``int_{t0}^{t1} e^{lam t} dt`` for purely imaginary ``lam`` (array), exact at 0."""
    lam = np.asarray(lam, dtype=complex)
    safe = np.where(lam == 0, 1.0, lam)
    return np.where(lam == 0, t1 - t0, (np.exp(safe * t1) - np.exp(safe * t0)) / safe)


def _finite(values, name):
    array = np.array(values, dtype=np.float64)
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise InvalidDomainError(f"{name} must be finite numbers, got {values!r}")
    return array

"""Exact Fourier coefficients (DC and harmonics) of a network's features along a path.

Along a path (:mod:`polyrelu.analysis.paths`) every output and hidden feature is, piece by
piece, ``c + p . phi(t)``; each piece's contribution to ``(1/T) int g(t) e^{-i k w t} dt``
is a closed-form integral, so the DC and the first K harmonics are exact up to float
rounding, for any depth. Convention (period ``T``, ``w = 2 pi / T``)::

    g(t) = dc + sum_k (a_k cos(k w t) + b_k sin(k w t)),   amplitude_k = hypot(a_k, b_k).

For a :class:`~polyrelu.analysis.paths.ClosedCurve` ``T = 2 pi``; for a
:class:`~polyrelu.analysis.paths.Segment` ``T = 1``: the series of the segment's periodic extension.

:func:`taylor_relu_spectrum` is the truncated Taylor model of ReLU from Kechris et al.,
"DC is all you need" (2024), for comparison:
``ReLU(x) = (x + |x|) / 2``, ``|x| = sqrt(A) sqrt(1 + g)``, ``g = x^2 / A - 1``,
``A = (sum_i a_i)^2 / 2`` for ``x = sum_i a_i cos(f_i t)``, and
``sqrt(1 + g) ~ sum_{n < N} c_n g^n``, ``c_n = (-1)^n (2n)! / ((1 - 2n) (n!)^2 4^n)``.
"""

from dataclasses import dataclass
from math import comb

import numpy as np

from ..errors import PolyreluError
from .paths import path_pieces

__all__ = ["Spectrum", "path_spectrum", "taylor_relu_spectrum", "taylor_coefficients"]


@dataclass(frozen=True)
class Spectrum:
    """DC and Fourier coefficients of ``m`` real signals of period ``period``.

    Attributes
    ----------
    dc : ndarray, shape (m,)
    a, b : ndarray, shape (K, m)
        ``a[k - 1]`` multiplies ``cos(k w t)``, ``b[k - 1]`` multiplies ``sin(k w t)``.
    period : float
    """

    dc: np.ndarray
    a: np.ndarray
    b: np.ndarray
    period: float

    @property
    def amplitude(self):
        """``hypot(a_k, b_k)``, shape (K, m)."""
        return np.hypot(self.a, self.b)

    def evaluate(self, t):
        """The truncated Fourier series at times ``t``: array (len(t), m)."""
        k = np.arange(1, len(self.a) + 1)
        angles = np.outer(np.asarray(t, dtype=np.float64), k) * (2 * np.pi / self.period)
        return self.dc + np.cos(angles) @ self.a + np.sin(angles) @ self.b

    @classmethod
    def from_complex(cls, coefficients, period):
        """From ``c_k = (1/T) int g e^{-i k w t}``, ``k = 0..K`` (array (K + 1, m))."""
        return cls(coefficients[0].real.copy(), 2 * coefficients[1:].real,
                   -2 * coefficients[1:].imag, float(period))


def path_spectrum(network, path, harmonics, *, layer=None, pieces=None, options=None):
    """Exact DC and first ``harmonics`` Fourier coefficients along ``path``.

    Parameters
    ----------
    network : Network
    path : Segment or ClosedCurve
    harmonics : int
        Number K >= 0 of harmonics.
    layer : int, optional
        None for the network outputs; ``l`` for the features of hidden layer ``l`` (its
        outputs: post-ReLU units, kept linear units, window maxima; their DC is the
        global average pooling along the path).
    pieces : list of PathPiece, optional
        ``path_pieces(network, path)`` if already computed.

    Returns
    -------
    Spectrum

    Examples
    --------
    ``ReLU(cos t)``: DC ``1/pi``, then ``1/2`` and ``2/(3 pi)``:

    >>> from polyrelu import Network
    >>> from polyrelu.analysis.paths import ClosedCurve
    >>> relu = Network([[[1.0]], [[1.0]]], [[0.0], [0.0]])
    >>> s = path_spectrum(relu, ClosedCurve([0.0], [1.0], [0.0]), 2)
    >>> np.round([s.dc[0] * np.pi, s.a[0, 0], s.a[1, 0] * 3 * np.pi], 12).tolist()
    [1.0, 0.5, 2.0]
    """
    if not isinstance(harmonics, (int, np.integer)) or harmonics < 0:
        raise PolyreluError(f"harmonics must be a non-negative integer, got {harmonics!r}")
    if pieces is None:
        pieces = path_pieces(network, path, options=options)
    k = np.arange(harmonics + 1)
    total = 0
    for piece in pieces:
        c, P = path.pull_back(*network.feature_map(piece.pattern, layer))
        flat, basis = path.fourier_integrals(piece.t0, piece.t1, k)
        total = total + np.outer(flat, c) + basis @ P.T
    return Spectrum.from_complex(total / path.period, path.period)


def taylor_coefficients(terms):
    """The first ``terms`` coefficients ``c_n`` of ``sqrt(1 + g) = sum_n c_n g^n``.

    >>> taylor_coefficients(3).tolist()
    [1.0, 0.5, -0.125]
    """
    return np.array([(-1) ** n * comb(2 * n, n) / ((1 - 2 * n) * 4 ** n) for n in range(terms)])


def taylor_relu_spectrum(amplitudes, frequencies, terms, harmonics):
    """Spectrum of the ``terms``-term Taylor model of ``ReLU(sum_i a_i cos(f_i t))``.

    Parameters
    ----------
    amplitudes : array_like
        The tones' amplitudes ``a_i`` (their sum must not be 0).
    frequencies : array_like of int
        The tones' frequencies ``f_i`` as positive integer multiples of the base
        frequency (period ``2 pi``).
    terms : int
        Number N >= 1 of Taylor terms ``c_0 .. c_{N-1}``.
    harmonics : int
        Number K of harmonics returned.

    Returns
    -------
    Spectrum
        One signal (m = 1), period ``2 pi``; computed exactly from the model's
        trigonometric polynomial (products of coefficient arrays).

    Examples
    --------
    The zeroth-order DC of a unit tone is ``sqrt(2)/4``, 11% above the exact ``1/pi``:

    >>> round(float(taylor_relu_spectrum([1.0], [1], 1, 0).dc[0]), 6)
    0.353553
    """
    amplitudes = np.asarray(amplitudes, dtype=np.float64).ravel()
    frequencies = np.asarray(frequencies).ravel()
    if (amplitudes.shape != frequencies.shape or not np.all(frequencies > 0)
            or not np.all(frequencies == np.round(frequencies)) or amplitudes.sum() == 0):
        raise PolyreluError("tones need one positive integer frequency per amplitude "
                            "and amplitudes with a non-zero sum")
    if terms < 1:
        raise PolyreluError(f"the Taylor model needs at least one term, got {terms}")
    top = int(frequencies.max())
    x = np.zeros(2 * top + 1)  # e^{i f t} coefficients, f = -top..top
    for a, f in zip(amplitudes, frequencies.astype(int)):
        x[top + f] += a / 2
        x[top - f] += a / 2
    scale = amplitudes.sum() ** 2 / 2
    g = np.convolve(x, x) / scale
    g[2 * top] -= 1.0
    model, power = np.zeros(1), np.ones(1)
    for c_n in taylor_coefficients(terms):
        model = _centred_sum(model, c_n * power)
        power = np.convolve(power, g)
    model = _centred_sum(np.sqrt(scale) * model, x) / 2
    centre = len(model) // 2
    coefficients = np.zeros(harmonics + 1, dtype=complex)
    available = min(harmonics, centre)
    coefficients[:available + 1] = model[centre:centre + available + 1]
    return Spectrum.from_complex(coefficients[:, None], 2 * np.pi)


def _centred_sum(p, q):
    """Sum of two coefficient arrays centred on frequency 0 (odd lengths)."""
    if len(p) < len(q):
        p, q = q, p
    pad = (len(p) - len(q)) // 2
    out = p.copy()
    out[pad:pad + len(q)] += q
    return out

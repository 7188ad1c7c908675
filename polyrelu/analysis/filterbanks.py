"""Filter banks on 1-D signals of length M as exact dense layers, and networks built from them.

A filter ``g`` acts by circular convolution, ``(g * x)[m] = sum_j g[j] x[(m - j) mod M]``,
an M x M circulant matrix; a bank of filters stacks them. Its frame bounds come from the
DFT: ``A = min_k sum_g |g_hat(k)|^2``, ``B = max_k ...`` (so
``A ||x||^2 <= sum_g ||g * x||^2 <= B ||x||^2``). The modulus is
``|z| = ReLU(z) + ReLU(-z)``, so a feature extractor of Wiatowski, Grohs and Boelcskei
(filter banks and the modulus, or ReLU) is an ordinary polyrelu :class:`Network`.
"""

import copy

import numpy as np

from ..errors import InvalidNetworkError
from ..network.model import Network

__all__ = ["circulant", "bank_matrix", "frame_bounds", "haar_filters", "conv1d_matrix",
           "filter_bank_network"]


def circulant(g, length):
    """The ``length x length`` matrix of circular convolution with filter ``g``.

    >>> circulant([1.0, 2.0], 3).tolist()
    [[1.0, 0.0, 2.0], [2.0, 1.0, 0.0], [0.0, 2.0, 1.0]]
    """
    g = _filter(g, length)
    matrix = np.zeros((length, length))
    rows = np.repeat(np.arange(length), g.size)
    columns = (rows - np.tile(np.arange(g.size), length)) % length
    np.add.at(matrix, (rows, columns), np.tile(g, length))
    return matrix


def bank_matrix(filters, length):
    """The filters' circulant matrices stacked: shape (len(filters) * length, length)."""
    return np.vstack([circulant(g, length) for g in filters])


def frame_bounds(filters, length):
    """Frame bounds ``(A, B)`` of a filter bank on signals of length ``length``, from the DFT.

    >>> [round(bound, 12) for bound in frame_bounds(haar_filters(), 8)]
    [1.0, 1.0]
    """
    power = sum(np.abs(np.fft.fft(_filter(g, length), n=length)) ** 2 for g in filters)
    return float(power.min()), float(power.max())


def haar_filters():
    """The Haar pair, low pass ``[1/2, 1/2]`` and high pass ``[1/2, -1/2]``: a Parseval bank."""
    return [np.array([0.5, 0.5]), np.array([0.5, -0.5])]


def conv1d_matrix(conv, length):
    """A ``torch.nn.Conv1d`` on inputs of ``length`` samples as an exact dense layer ``(W, b)``.

    Inputs and outputs are flattened channel by channel (``x.reshape(-1)`` of a
    ``(channels, length)`` tensor). ``W`` is read off by applying the convolution, in
    float64 and without its bias, to the unit vectors: each entry is a single weight
    (or, with reflect or replicate padding, a sum of a few float32 weights, exact in
    float64), so it is exact. Any stride, padding (zeros, circular, reflect, ...),
    dilation and groups are honoured.
    """
    import torch

    if not isinstance(conv, torch.nn.Conv1d):
        raise InvalidNetworkError(f"expected a torch.nn.Conv1d, got {type(conv).__name__}")
    linear = copy.deepcopy(conv).double()
    linear.bias = None
    size = conv.in_channels * length
    with torch.no_grad():
        columns = linear(torch.eye(size, dtype=torch.float64).reshape(size, conv.in_channels,
                                                                      length))
    W = columns.reshape(size, -1).T.numpy().copy()
    out_length = columns.shape[-1]
    if conv.bias is None:
        b = np.zeros(W.shape[0])
    else:
        b = np.repeat(conv.bias.detach().double().numpy(), out_length)
    return W, b


def filter_bank_network(filters, length, depth, *, output_filter=None, nonlinearity="modulus"):
    """The feature extractor of depth ``depth`` as a :class:`Network`.

    Layer n convolves every propagated signal ``U_{n-1}`` (``U_0 = x``) with every filter
    of ``filters`` and applies the non-linearity, giving ``U_n`` (``len(filters)^n``
    signals). The network's output is ``[chi * U_0, ..., chi * U_{depth-1}, U_depth]``,
    where ``chi`` is ``output_filter`` (without one, the output is ``U_depth`` alone).
    Earlier outputs are carried to the end through ReLU pairs (``y = ReLU(y) - ReLU(-y)``).
    With the modulus and ``{chi} + filters`` a Parseval bank, ``||network(x)||^2 = ||x||^2``.

    Parameters
    ----------
    filters : sequence of array_like
        The propagating bank (each filter at most ``length`` long).
    length : int
        Signal length M.
    depth : int
        Number of non-linear layers, >= 1.
    output_filter : array_like, optional
    nonlinearity : {"modulus", "relu"}

    Examples
    --------
    >>> low, high = haar_filters()
    >>> net = filter_bank_network([high], 4, 2, output_filter=low)
    >>> x = np.array([1.0, -2.0, 0.5, 3.0])
    >>> bool(np.isclose((net.forward(x) ** 2).sum(), (x ** 2).sum()))
    True
    """
    if nonlinearity not in ("modulus", "relu"):
        raise InvalidNetworkError(f"nonlinearity must be 'modulus' or 'relu', got "
                                  f"{nonlinearity!r}")
    if not isinstance(depth, (int, np.integer)) or depth < 1:
        raise InvalidNetworkError(f"depth must be a positive integer, got {depth!r}")
    bank = bank_matrix(filters, length)
    chi = None if output_filter is None else circulant(output_filter, length)
    signs = 2 if nonlinearity == "modulus" else 1
    carried = np.zeros((0, length))   # reads the carried outputs S from the features
    propagated = np.eye(length)       # reads U from the features (the input, at first)
    weights = []
    for n in range(depth):
        copies = np.eye(len(filters) ** n)
        new_outputs = [] if chi is None else [np.kron(copies, chi) @ propagated]
        S = np.vstack([carried] + new_outputs)
        Z = np.kron(copies, bank) @ propagated
        weights.append(np.vstack([S, -S] + [Z, -Z][:signs]))
        s, z = len(S), len(Z)
        carried = np.hstack([np.eye(s), -np.eye(s), np.zeros((s, signs * z))])
        propagated = np.hstack([np.zeros((z, 2 * s))] + [np.eye(z)] * signs)
    weights.append(np.vstack([carried, propagated]))
    return Network(weights, [np.zeros(len(w)) for w in weights])


def _filter(g, length):
    g = np.asarray(g, dtype=np.float64).ravel()
    if g.size == 0 or g.size > length or not np.all(np.isfinite(g)):
        raise InvalidNetworkError(
            f"a filter must have 1 to {length} finite taps (the signal length), got {g.size}")
    return g

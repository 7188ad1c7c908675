"""Convolutions and pooling as index arithmetic: sparse matrices and index windows.

Pure numpy/scipy functions, the one implementation behind both importers
(:mod:`~polyrelu.network.onnx_import` and :mod:`~polyrelu.network.torch_import`). Tensors
are one sample without a batch axis, flattened in C order: a convolution's input has shape
``(C_in, *spatial)`` with any number of spatial axes; pooling reads the last
``len(kernel)`` axes and keeps the leading ones (batch, channels). Padding is given per
spatial axis as ``(begin, end)`` pairs (an int or a sequence of ints means the same on
both sides), so asymmetric ONNX pads fit as well as torch's symmetric ones, and
:func:`same_padding` gives ONNX's ``SAME_UPPER``/``SAME_LOWER`` and torch's ``"same"``.

torch and ONNX (as onnxruntime computes it) agree on the rest: with ``ceil_mode`` the
output length is rounded up but the last window must start inside the input or its
begin padding; an average's divisor counts the taps inside the padded input
(``count_include_pad``) or inside the input; the output padding of a transposed
convolution is less than the stride or the dilation. A ``max_entries`` bound is checked
before any array of that size is allocated.

Examples
--------
A 1-D convolution with kernel ``[1, -1]`` on three inputs:

>>> import numpy as np
>>> matrix, shape = conv_matrix(np.array([[[1.0, -1.0]]]), (1, 3))
>>> shape, matrix.toarray().tolist()
((1, 2), [[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]])

Max pooling windows of a 1 x 4 x 4 input with kernel 2 (flat input indices):

>>> windows, shape = pool_windows((1, 4, 4), (2, 2))
>>> shape, windows[0].tolist(), windows[3].tolist()
((1, 2, 2), [0, 1, 4, 5], [10, 11, 14, 15])
"""

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidNetworkError, SizeLimitError

__all__ = [
    "adaptive_windows",
    "avg_pool_matrix",
    "batch_norm_affine",
    "conv_matrix",
    "conv_transpose_matrix",
    "pad_pairs",
    "pool_windows",
    "reduction_windows",
    "same_padding",
    "window_matrix",
]


def pad_pairs(padding, ndim):
    """``padding`` (an int, ``ndim`` ints, or ``ndim`` (begin, end) pairs) as pairs.

    >>> pad_pairs(1, 2), pad_pairs([(0, 1), (2, 2)], 2)
    (((1, 1), (1, 1)), ((0, 1), (2, 2)))
    """
    if np.ndim(padding) == 0:
        padding = [padding] * ndim
    padding = list(padding)
    if len(padding) != ndim:
        raise InvalidNetworkError(f"padding {padding} for {ndim} spatial axes")
    pairs = tuple((int(p), int(p)) if np.ndim(p) == 0 else tuple(int(q) for q in p)
                  for p in padding)
    if any(len(p) != 2 or min(p) < 0 for p in pairs):
        raise InvalidNetworkError(f"padding {padding}: expected non-negative (begin, end) pairs")
    return pairs


def _per_axis(value, ndim, what):
    """An int or ``ndim`` ints as a tuple of ``ndim`` positive ints."""
    values = (int(value),) * ndim if np.ndim(value) == 0 else tuple(int(v) for v in value)
    if len(values) == 1 and ndim > 1:
        values = values * ndim
    if len(values) != ndim or min(values) < 1:
        raise InvalidNetworkError(f"{what} {value} for {ndim} spatial axes")
    return values


def same_padding(spatial, kernel, stride=1, dilation=1, *, lower=False):
    """``(begin, end)`` pads that give ``ceil(n / stride)`` outputs per axis: ONNX's
    ``auto_pad`` ``SAME_UPPER`` (the odd pixel at the end; ``lower=True``:
    ``SAME_LOWER``, at the beginning) and, with stride 1, torch's ``padding="same"``.

    >>> same_padding((5, 6), (3, 2), stride=(1, 2))
    ((1, 1), (0, 0))
    >>> same_padding((4,), (2,), lower=True)
    ((1, 0),)
    """
    nd = len(spatial)
    pairs = []
    for n, k, s, d in zip(spatial, _per_axis(kernel, nd, "kernel"),
                          _per_axis(stride, nd, "stride"), _per_axis(dilation, nd, "dilation")):
        total = max((-(-int(n) // s) - 1) * s + d * (k - 1) + 1 - int(n), 0)
        small = total // 2
        pairs.append((total - small, small) if lower else (small, total - small))
    return tuple(pairs)


def _out_length(size, kernel, stride, pad, dilation, ceil_mode):
    """Output length along one axis (with ``ceil_mode`` the last window starts inside
    the input or its begin padding: torch's and onnxruntime's rule)."""
    span = dilation * (kernel - 1) + 1
    room = size + pad[0] + pad[1] - span
    if room < 0:
        raise InvalidNetworkError(
            f"a window of span {span} does not fit an axis of {size} with padding {pad}")
    out = (room + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad[0]:
        out -= 1
    return out


class _Windows:
    """The sliding windows over the spatial axes: per axis the input length, kernel,
    stride, (begin, end) padding, dilation and output length. Tap ``k`` of output ``o``
    reads input position ``o * stride + k * dilation - begin``."""

    def __init__(self, spatial, kernel, stride, padding, dilation, ceil_mode=False,
                 out=None):
        nd = len(spatial)
        self.spatial = tuple(int(n) for n in spatial)
        self.kernel = _per_axis(kernel, nd, "kernel")
        self.stride = _per_axis(stride, nd, "stride")
        self.padding = pad_pairs(padding, nd)
        self.dilation = _per_axis(dilation, nd, "dilation")
        self.out = tuple(_out_length(*axis, ceil_mode) for axis in zip(
            self.spatial, self.kernel, self.stride, self.padding, self.dilation)) \
            if out is None else tuple(out)

    @property
    def taps(self):
        """Entries of the (n_out, n_kernel) index grid."""
        return int(np.prod(self.out + self.kernel, dtype=object))

    def positions(self):
        """Per axis the (n_out, kernel) input positions of the taps."""
        return [np.arange(o)[:, None] * s - p[0] + np.arange(k)[None, :] * d for k, s, p, d, o
                in zip(self.kernel, self.stride, self.padding, self.dilation, self.out)]

    def grid(self):
        """Flat spatial indices (n_out, n_kernel) of every tap, -1 outside the input."""
        return _flat(self.positions(), self.spatial)

    def padded_counts(self):
        """The number of taps of each window inside the padded input."""
        counts = np.ones(())
        for position, n, p in zip(self.positions(), self.spatial, self.padding):
            counts = np.multiply.outer(counts, (position < n + p[1]).sum(axis=1))
        return counts.reshape(-1)


def _flat(positions, spatial):
    """Flat indices (n_out, n_kernel) from per-axis (out, kernel) positions, -1 where a
    position lies outside ``[0, n)``."""
    nd = len(positions)
    out = tuple(p.shape[0] for p in positions)
    flat = np.zeros(out + tuple(p.shape[1] for p in positions), np.int64)
    inside = np.ones(flat.shape, bool)
    for axis, (position, n) in enumerate(zip(positions, spatial)):
        shape = [1] * (2 * nd)
        shape[axis], shape[nd + axis] = position.shape
        position = position.reshape(shape)
        flat = flat * n + position
        inside &= (position >= 0) & (position < n)
    return np.where(inside, flat, -1).reshape(int(np.prod(out, dtype=np.int64)), -1)


def _check_size(entries, what, max_entries):
    if max_entries is not None and entries > max_entries:
        raise SizeLimitError(f"{what} with {entries:,} entries, more than "
                             f"max_parameters={max_entries:,}")


def conv_matrix(weight, input_shape, stride=1, padding=0, dilation=1, groups=1, *,
                max_entries=None):
    """The convolution (cross-correlation, as torch and ONNX define it) as a sparse matrix.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in / groups, *kernel)
        Any number of spatial axes.
    input_shape : tuple of int
        ``(C_in, *spatial)``, one sample.
    stride, dilation : int or tuple of int
    padding : int, tuple of int or tuple of (begin, end) pairs
        Zero padding per spatial axis (see :func:`same_padding` for "same").
    groups : int
    max_entries : int, optional
        Raise :class:`SizeLimitError` before building a matrix with more entries.

    Returns
    -------
    matrix : scipy.sparse.csr_matrix, shape (prod(output_shape), prod(input_shape))
        Without the bias (add it per output channel).
    output_shape : tuple of int
        ``(C_out, *spatial_out)``.
    """
    return _conv(weight, input_shape, stride, padding, dilation, groups, max_entries)


def conv_transpose_matrix(weight, input_shape, stride=1, padding=0, output_padding=0,
                          dilation=1, groups=1, *, max_entries=None):
    """The transposed convolution (ONNX ConvTranspose, torch ConvTranspose) as a sparse
    matrix: the transpose of the convolution, with the same ``weight``, from its output
    back to its input.

    Parameters
    ----------
    weight : array_like, shape (C_in, C_out / groups, *kernel)
    input_shape : tuple of int
        ``(C_in, *spatial)``, one sample.
    stride, padding, dilation, groups, max_entries
        As in :func:`conv_matrix`; ``padding`` is removed from the output.
    output_padding : int or tuple of int
        Extra output entries at the end of each axis, less than the stride or the
        dilation.

    Returns
    -------
    matrix : scipy.sparse.csr_matrix, shape (prod(output_shape), prod(input_shape))
        Without the bias.
    output_shape : tuple of int
        ``(C_out, *spatial_out)``, ``spatial_out = (n - 1) * stride + output_padding +
        dilation * (kernel - 1) + 1 - begin - end``.

    >>> matrix, shape = conv_transpose_matrix(np.array([[[1.0, 2.0]]]), (1, 2), stride=2)
    >>> shape, matrix.toarray().tolist()
    ((1, 4), [[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    """
    weight = np.asarray(weight, dtype=np.float64)
    nd = weight.ndim - 2
    spatial = tuple(int(n) for n in input_shape[1:])
    if nd < 1 or len(spatial) != nd or groups < 1 or weight.shape[0] != int(input_shape[0]):
        raise InvalidNetworkError(
            f"a transposed convolution weight of shape {weight.shape} does not fit an input "
            f"of shape {tuple(input_shape)}")
    stride, dilation = _per_axis(stride, nd, "stride"), _per_axis(dilation, nd, "dilation")
    pads = pad_pairs(padding, nd)
    extra = tuple(int(e) for e in ((output_padding,) * nd if np.ndim(output_padding) == 0
                                   else output_padding))
    out = tuple((n - 1) * s + e + d * (k - 1) + 1 - p[0] - p[1] for n, k, s, d, e, p in
                zip(spatial, weight.shape[2:], stride, dilation, extra, pads))
    if len(extra) != nd or min(out) < 1 or any(not 0 <= e < max(s, d) for e, s, d in
                                                zip(extra, stride, dilation)):
        raise InvalidNetworkError(
            f"output_padding {extra} or padding {pads} give an empty or invalid output axis "
            f"(output_padding must be less than the stride or the dilation)")
    c_out = weight.shape[1] * groups
    matrix, _ = _conv(weight, (c_out,) + out, stride, pads, dilation, groups, max_entries,
                      spatial)
    return matrix.T.tocsr(), (c_out,) + out


def _conv(weight, input_shape, stride, padding, dilation, groups, max_entries, out=None):
    """:func:`conv_matrix`, ``out`` (if given) fixing the spatial output lengths."""
    weight = np.asarray(weight, dtype=np.float64)
    nd = weight.ndim - 2
    c_in, spatial = int(input_shape[0]), tuple(int(n) for n in input_shape[1:])
    c_out, c_group = weight.shape[:2]
    if nd < 1 or len(spatial) != nd or groups < 1 or c_in != c_group * groups \
            or c_out % groups:
        raise InvalidNetworkError(
            f"a convolution weight of shape {weight.shape} with groups={groups} does not fit "
            f"an input of shape {tuple(input_shape)}")
    windows = _Windows(spatial, weight.shape[2:], stride, padding, dilation, out=out)
    _check_size(c_out * c_group * windows.taps, "a convolution matrix", max_entries)
    flat = windows.grid()
    n_out, n_kernel = flat.shape
    n_spatial = int(np.prod(spatial, dtype=np.int64))
    out_channel = np.arange(c_out)[:, None, None, None]
    in_channel = (out_channel // (c_out // groups)) * c_group + np.arange(c_group)[:, None, None]
    rows = np.broadcast_to(out_channel * n_out + np.arange(n_out)[:, None], (c_out, c_group,
                                                                             n_out, n_kernel))
    columns = in_channel * n_spatial + flat
    values = np.broadcast_to(weight.reshape(c_out, c_group, 1, n_kernel), rows.shape)
    valid = np.broadcast_to(flat >= 0, rows.shape) & (values != 0)
    matrix = sp.csr_matrix((values[valid], (rows[valid], columns[valid])),
                           shape=(c_out * n_out, c_in * n_spatial))
    return matrix, (c_out,) + windows.out


def pool_windows(input_shape, kernel, stride=None, padding=0, dilation=1, ceil_mode=False,
                 *, max_entries=None):
    """Index windows of a max pooling: one row of flat input indices per output entry,
    -1 where the window reads padding (which never wins a maximum).

    Parameters
    ----------
    input_shape : tuple of int
        ``(*leading, *spatial)``; the last ``len(kernel)`` axes are pooled.
    kernel : int or tuple of int
        An int pools one axis (as MaxPool1d); give a tuple for more.
    stride : int or tuple of int, optional
        Default: the kernel.
    padding, dilation, ceil_mode
        As in torch's MaxPool and ONNX's MaxPool (padding as in :func:`conv_matrix`).
    max_entries : int, optional
        Raise :class:`SizeLimitError` before building more window entries.

    Returns
    -------
    windows : ndarray of int64, shape (prod(output_shape), width)
        In the kernel's order, with the -1 entries moved to the end of each row and the
        columns that are -1 in every row dropped.
    output_shape : tuple of int

    Raises
    ------
    InvalidNetworkError
        If a window lies entirely in the padding.
    """
    leading, windows = _pooling(input_shape, kernel, stride, padding, dilation, ceil_mode,
                                max_entries)
    flat = windows.grid()
    if len(flat) and (flat < 0).all(axis=1).any():
        raise InvalidNetworkError("a pooling window lies entirely in the padding")
    return _compact(_over_leading(flat, leading, windows.spatial)), leading + windows.out


def _pooling(input_shape, kernel, stride, padding, dilation, ceil_mode, max_entries):
    """The leading shape and the :class:`_Windows` of a pooling, its size checked."""
    kernel = (int(kernel),) if np.ndim(kernel) == 0 else tuple(int(k) for k in kernel)
    nd = len(kernel)
    leading, spatial = _split_shape(input_shape, nd)
    windows = _Windows(spatial, kernel, kernel if stride is None else stride, padding,
                       dilation, ceil_mode)
    _check_size(int(np.prod(leading, dtype=object)) * windows.taps, "a pooling", max_entries)
    return leading, windows


def avg_pool_matrix(input_shape, kernel, stride=None, padding=0, ceil_mode=False,
                    count_include_pad=True, divisor_override=None, dilation=1, *,
                    max_entries=None):
    """Average pooling as a sparse matrix. The divisor of a window is the number of its
    taps inside the padded input (``count_include_pad``; a window that ``ceil_mode``
    lets run past the end padding counts only up to it), or inside the input, or
    ``divisor_override``: torch's AvgPool and ONNX's AveragePool (whose default is
    ``count_include_pad=0``). Other arguments as :func:`pool_windows`.

    Returns the matrix (scipy.sparse, shape (prod(output_shape), prod(input_shape)))
    and the output shape.

    >>> matrix, shape = avg_pool_matrix((1, 3), 2, 1)
    >>> shape, matrix.toarray().tolist()
    ((1, 2), [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    """
    leading, windows = _pooling(input_shape, kernel, stride, padding, dilation, ceil_mode,
                                max_entries)
    flat = windows.grid()
    if divisor_override:
        divisor = np.full(flat.shape[0], float(divisor_override))
    elif count_include_pad:
        divisor = windows.padded_counts()
    else:
        divisor = (flat >= 0).sum(axis=1).astype(float)
    if (divisor == 0).any():
        raise InvalidNetworkError("a pooling window lies entirely in the padding")
    flat = _over_leading(flat, leading, windows.spatial)
    divisor = np.tile(divisor, int(np.prod(leading, dtype=np.int64)))
    n_in = int(np.prod(input_shape, dtype=np.int64))
    return _window_matrix(flat, 1.0 / divisor, n_in), leading + windows.out


def adaptive_windows(input_shape, output_size):
    """Windows of adaptive pooling (torch's rule: output ``i`` of ``n_out`` reads input
    ``floor(i n / n_out)`` to ``ceil((i + 1) n / n_out)``), padded with -1, and the output
    shape; an ``output_size`` entry of None keeps that axis.

    >>> adaptive_windows((1, 5), 2)[0].tolist()
    [[0, 1, 2], [2, 3, 4]]
    """
    output_size = ((output_size,) if np.ndim(output_size) == 0 and output_size is not None
                   else tuple(output_size))
    nd = len(output_size)
    leading, spatial = _split_shape(input_shape, nd)
    sizes = tuple(n if o is None else int(o) for n, o in zip(spatial, output_size))
    positions = []
    for n, o in zip(spatial, sizes):
        start, stop = (np.arange(o) * n) // o, -((-(np.arange(o) + 1) * n) // o)
        width = int((stop - start).max())
        position = start[:, None] + np.arange(width)[None, :]
        positions.append(np.where(position < stop[:, None], position, -1))
    flat = _flat(positions, spatial)
    return _compact(_over_leading(flat, leading, spatial)), leading + sizes


def reduction_windows(shape, axes, keepdims):
    """Windows (one row of flat indices per result entry) and the result shape of a
    reduction of a tensor of ``shape`` over ``axes`` (sorted, distinct).

    >>> rows, out = reduction_windows((2, 3), [1], keepdims=True)
    >>> rows.tolist(), out
    ([[0, 1, 2], [3, 4, 5]], (2, 1))
    """
    kept = [a for a in range(len(shape)) if a not in axes]
    index = np.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape)
    rows = index.transpose(kept + list(axes)).reshape(
        int(np.prod([shape[a] for a in kept], dtype=np.int64)), -1)
    out = (tuple(1 if a in axes else n for a, n in enumerate(shape)) if keepdims
           else tuple(shape[a] for a in kept))
    return rows, out


def batch_norm_affine(mean, var, eps, weight=None, bias=None):
    """BatchNorm in inference form as ``factor * x + offset`` per channel:
    ``factor = weight / sqrt(var + eps)``, ``offset = bias - mean * factor``.

    >>> factor, offset = batch_norm_affine(np.array([1.0]), np.array([4.0]), 0.0,
    ...                                    np.array([2.0]), np.array([0.5]))
    >>> factor.tolist(), offset.tolist()
    ([1.0], [-0.5])
    """
    factor = 1.0 / np.sqrt(np.asarray(var, dtype=np.float64) + float(eps))
    if weight is not None:
        factor = np.asarray(weight, dtype=np.float64) * factor
    offset = -np.asarray(mean, dtype=np.float64) * factor
    if bias is not None:
        offset = offset + np.asarray(bias, dtype=np.float64)
    return factor, offset


def window_matrix(windows, n_in, *, mean=True):
    """The mean (or sum) over each window (rows of indices into ``n_in`` entries, -1
    padding) as a sparse matrix.

    >>> window_matrix([[0, 1], [2, -1]], 3).toarray().tolist()
    [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    """
    windows = np.asarray(windows, dtype=np.int64)
    weights = 1.0 / (windows >= 0).sum(axis=1) if mean else np.ones(windows.shape[0])
    return _window_matrix(windows, weights, n_in)


def _window_matrix(windows, weights, n_in):
    """Sparse matrix with ``weights[i]`` at the indices of window ``i``."""
    rows, positions = np.nonzero(windows >= 0)
    return sp.csr_matrix((weights[rows], (rows, windows[rows, positions])),
                         shape=(windows.shape[0], n_in))


def _compact(windows):
    """Each row's entries in their order, then its -1 padding; the columns that are -1
    in every row dropped."""
    order = np.argsort(windows < 0, axis=1, kind="stable")
    windows = np.take_along_axis(windows, order, axis=1)
    return windows[:, :max(int((windows >= 0).sum(axis=1).max(initial=1)), 1)]


def _split_shape(input_shape, nd):
    shape = tuple(int(n) for n in input_shape)
    if len(shape) < nd:
        raise InvalidNetworkError(f"pooling {nd} axes of a tensor of shape {shape}")
    return shape[:len(shape) - nd], shape[len(shape) - nd:]


def _over_leading(flat, leading, spatial):
    """Spatial windows repeated for every leading (channel) index, as flat indices."""
    n_spatial = int(np.prod(spatial, dtype=np.int64))
    offsets = np.arange(int(np.prod(leading, dtype=np.int64)))[:, None, None] * n_spatial
    return np.where(flat >= 0, flat + offsets, -1).reshape(-1, flat.shape[1])

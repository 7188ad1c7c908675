"""Convolutions and pooling as index arithmetic: sparse matrices and index windows.

Pure numpy/scipy functions shared by the ONNX and torch importers. Tensors are one
sample without a batch axis, flattened in C order: a convolution's input has shape
``(C_in, *spatial)``; pooling reads the last ``len(kernel)`` axes and keeps the leading
ones (channels). Padding is given per spatial axis as ``(begin, end)`` pairs (an int or a
sequence of ints means the same on both sides), so asymmetric ONNX pads fit as well as
torch's symmetric ones.

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
    "conv_matrix",
    "pad_pairs",
    "pool_windows",
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


def _axis_positions(size, kernel, stride, pad, dilation, ceil_mode):
    """Input coordinates (out, kernel) along one axis, possibly outside ``[0, size)``,
    and the output length (torch's rule: with ``ceil_mode`` the last window starts
    inside the input or its left padding)."""
    span = dilation * (kernel - 1) + 1
    room = size + pad[0] + pad[1] - span
    if room < 0:
        raise InvalidNetworkError(
            f"a window of span {span} does not fit an axis of {size} with padding {pad}")
    out = (room + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad[0]:
        out -= 1
    return np.arange(out)[:, None] * stride - pad[0] + np.arange(kernel)[None, :] * dilation


def _grid(spatial, kernel, stride, padding, dilation, ceil_mode):
    """Flat spatial indices (n_out, n_kernel) of every window (-1 outside the input),
    the padded-extent mask and the spatial output shape."""
    nd = len(spatial)
    axes = [_axis_positions(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
            zip(spatial, kernel, stride, padding, dilation)]
    out_shape = tuple(a.shape[0] for a in axes)
    flat = np.zeros(out_shape + tuple(kernel), np.int64)
    inside = np.ones(flat.shape, bool)
    in_padding = np.ones(flat.shape, bool)
    for axis, (coords, n, p) in enumerate(zip(axes, spatial, padding)):
        shape = [1] * (2 * nd)
        shape[axis], shape[nd + axis] = coords.shape
        coords = coords.reshape(shape)
        flat = flat * n + coords
        inside &= (coords >= 0) & (coords < n)
        in_padding &= coords < n + p[1]
    count = int(np.prod(out_shape, dtype=np.int64))
    flat = np.where(inside, flat, -1).reshape(count, -1)
    return flat, in_padding.reshape(count, -1), out_shape


def conv_matrix(weight, input_shape, stride=1, padding=0, dilation=1, groups=1, *,
                max_entries=None):
    """The convolution (cross-correlation, as torch and ONNX define it) as a sparse matrix.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in / groups, *kernel)
    input_shape : tuple of int
        ``(C_in, *spatial)``, one sample.
    stride, dilation : int or tuple of int
    padding : int, tuple of int or tuple of (begin, end) pairs
        Zero padding per spatial axis.
    groups : int
    max_entries : int, optional
        Raise :class:`SizeLimitError` before building a matrix with more non-zeros.

    Returns
    -------
    matrix : scipy.sparse.csr_matrix, shape (prod(output_shape), prod(input_shape))
        Without the bias (add it per output channel).
    output_shape : tuple of int
        ``(C_out, *spatial_out)``.
    """
    weight = np.asarray(weight, dtype=np.float64)
    nd = weight.ndim - 2
    c_in, spatial = int(input_shape[0]), tuple(int(n) for n in input_shape[1:])
    c_out, c_group = weight.shape[:2]
    if nd < 1 or len(spatial) != nd or groups < 1 or c_in != c_group * groups \
            or c_out % groups:
        raise InvalidNetworkError(
            f"a convolution weight of shape {weight.shape} with groups={groups} does not fit "
            f"an input of shape {tuple(input_shape)}")
    flat, _, out_spatial = _grid(spatial, weight.shape[2:], _per_axis(stride, nd, "stride"),
                                 pad_pairs(padding, nd), _per_axis(dilation, nd, "dilation"),
                                 False)
    n_out, n_kernel = flat.shape
    if max_entries is not None and c_out * c_group * flat.size > max_entries:
        raise SizeLimitError(f"a convolution matrix with {c_out * c_group * flat.size:,} "
                             f"entries, more than max_parameters={max_entries:,}")
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
    return matrix, (c_out,) + out_spatial


def pool_windows(input_shape, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
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
        As in torch's MaxPool (padding as in :func:`conv_matrix`).

    Returns
    -------
    windows : ndarray of int64, shape (prod(output_shape), prod(kernel))
        In the kernel's order, with the -1 entries moved to the end of each row.
    output_shape : tuple of int
    """
    kernel = (int(kernel),) if np.ndim(kernel) == 0 else tuple(int(k) for k in kernel)
    nd = len(kernel)
    leading, spatial = _split_shape(input_shape, nd)
    flat, _, out_spatial = _grid(spatial, _per_axis(kernel, nd, "kernel"),
                                 _per_axis(kernel if stride is None else stride, nd, "stride"),
                                 pad_pairs(padding, nd), _per_axis(dilation, nd, "dilation"),
                                 ceil_mode)
    return _compact(_over_leading(flat, leading, spatial)), leading + out_spatial


def avg_pool_matrix(input_shape, kernel, stride=None, padding=0, ceil_mode=False,
                    count_include_pad=True, divisor_override=None):
    """Average pooling as a sparse matrix, with torch's divisors: the window's size
    within the padded input (``count_include_pad``), or within the input, or
    ``divisor_override``. Arguments as :func:`pool_windows`.

    Returns the matrix (scipy.sparse, shape (prod(output_shape), prod(input_shape)))
    and the output shape.

    >>> matrix, shape = avg_pool_matrix((1, 3), 2, 1)
    >>> shape, matrix.toarray().tolist()
    ((1, 2), [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    """
    kernel = (int(kernel),) if np.ndim(kernel) == 0 else tuple(int(k) for k in kernel)
    nd = len(kernel)
    leading, spatial = _split_shape(input_shape, nd)
    flat, in_padding, out_spatial = _grid(
        spatial, _per_axis(kernel, nd, "kernel"),
        _per_axis(kernel if stride is None else stride, nd, "stride"), pad_pairs(padding, nd),
        (1,) * nd, ceil_mode)
    if divisor_override:
        divisor = np.full(flat.shape[0], float(divisor_override))
    else:
        divisor = (in_padding if count_include_pad else flat >= 0).sum(axis=1).astype(float)
    windows = _over_leading(flat, leading, spatial)
    divisor = np.tile(divisor, int(np.prod(leading, dtype=np.int64)))
    n_in = int(np.prod(input_shape, dtype=np.int64))
    return _window_matrix(windows, 1.0 / divisor, n_in), leading + out_spatial


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
    axes = []
    for n, o in zip(spatial, sizes):
        start, stop = (np.arange(o) * n) // o, -((-(np.arange(o) + 1) * n) // o)
        width = int((stop - start).max())
        coords = start[:, None] + np.arange(width)[None, :]
        axes.append(np.where(coords < stop[:, None], coords, -1))
    flat = np.zeros(sizes + tuple(a.shape[1] for a in axes), np.int64)
    inside = np.ones(flat.shape, bool)
    for axis, (coords, n) in enumerate(zip(axes, spatial)):
        shape = [1] * (2 * nd)
        shape[axis], shape[nd + axis] = coords.shape
        coords = coords.reshape(shape)
        flat, inside = flat * n + coords, inside & (coords >= 0)
    flat = np.where(inside, flat, -1).reshape(int(np.prod(sizes, dtype=np.int64)), -1)
    return _compact(_over_leading(flat, leading, spatial)), leading + sizes


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
    """Each row's entries in their order, then its -1 padding."""
    order = np.argsort(windows < 0, axis=1, kind="stable")
    return np.take_along_axis(windows, order, axis=1)


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

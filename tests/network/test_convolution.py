"""network.convolution against loop-by-loop numpy oracles and, where installed, torch."""

import itertools

import numpy as np
import pytest

from polyrelu.errors import InvalidNetworkError, SizeLimitError
from polyrelu.network.convolution import (
    adaptive_windows,
    avg_pool_matrix,
    conv_matrix,
    conv_transpose_matrix,
    pad_pairs,
    pool_windows,
    same_padding,
    window_matrix,
)

RNG = np.random.default_rng(11)


def _conv_oracle(x, weight, stride, pads, dilation, groups):
    """Direct cross-correlation of one sample ``x`` (C_in, *spatial)."""
    nd = x.ndim - 1
    padded = np.pad(x, [(0, 0)] + list(pads))
    kernel = weight.shape[2:]
    c_out, c_group = weight.shape[:2]
    out_spatial = [(padded.shape[1 + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
                   for a in range(nd)]
    out = np.zeros([c_out] + out_spatial)
    for co in range(c_out):
        g = co // (c_out // groups)
        for o in itertools.product(*map(range, out_spatial)):
            total = 0.0
            for ci, k in itertools.product(range(c_group), itertools.product(*map(range,
                                                                                  kernel))):
                at = tuple(o[a] * stride[a] + k[a] * dilation[a] for a in range(nd))
                total += weight[(co, ci) + k] * padded[(g * c_group + ci,) + at]
            out[(co,) + o] = total
    return out


@pytest.mark.parametrize("shape,weight_shape,stride,padding,dilation,groups", [
    ((1, 5), (2, 1, 3), (1,), ((0, 0),), (1,), 1),
    ((2, 7), (4, 1, 2), (2,), ((1, 2),), (2,), 2),
    ((2, 5, 4), (3, 2, 3, 2), (1, 2), ((1, 1), (0, 1)), (1, 1), 1),
    ((4, 6, 5), (4, 2, 2, 3), (2, 1), ((2, 0), (1, 1)), (2, 1), 2),
    ((2, 4, 3, 5), (2, 1, 2, 2, 3), (1, 2, 1), ((1, 0), (0, 1), (1, 1)), (1, 1, 2), 2),
])
def test_conv_matrix_matches_direct_loops(shape, weight_shape, stride, padding, dilation,
                                          groups):
    weight = RNG.normal(size=weight_shape)
    matrix, out_shape = conv_matrix(weight, shape, stride, padding, dilation, groups)
    for _ in range(3):
        x = RNG.normal(size=shape)
        expected = _conv_oracle(x, weight, stride, padding, dilation, groups)
        assert out_shape == expected.shape
        np.testing.assert_allclose(matrix @ x.reshape(-1), expected.reshape(-1), atol=1e-12)


def test_conv_matrix_checks_shapes_and_size():
    with pytest.raises(InvalidNetworkError, match="does not fit"):
        conv_matrix(np.ones((2, 3, 3, 3)), (2, 5, 5))
    with pytest.raises(InvalidNetworkError, match="does not fit"):
        conv_matrix(np.ones((1, 1, 4, 4)), (1, 3, 3))
    with pytest.raises(SizeLimitError, match="max_parameters"):
        conv_matrix(np.ones((8, 1, 3, 3)), (1, 30, 30), max_entries=1000)


def test_pad_pairs_forms():
    assert pad_pairs(2, 1) == ((2, 2),)
    assert pad_pairs([1, 0], 2) == ((1, 1), (0, 0))
    with pytest.raises(InvalidNetworkError):
        pad_pairs([1], 2)
    with pytest.raises(InvalidNetworkError):
        pad_pairs([(-1, 0)], 1)


def test_pool_windows_pad_at_the_end():
    windows, shape = pool_windows((1, 3, 3), (2, 2), 2, 1)
    assert shape == (1, 2, 2)
    assert windows.tolist() == [[0, -1, -1, -1], [1, 2, -1, -1], [3, 6, -1, -1],
                                [4, 5, 7, 8]]


def test_adaptive_windows_cover_the_input():
    windows, shape = adaptive_windows((2, 7, 5), (3, 2))
    assert shape == (2, 3, 2)
    counts = np.bincount(windows[windows >= 0], minlength=70)
    assert counts.min() >= 1  # every input is read, the overlapping ones twice or more
    assert (np.diff((windows >= 0).astype(int), axis=1) <= 0).all()


def test_window_matrix_mean_and_sum():
    windows = np.array([[0, 2, -1], [1, 2, 3]])
    assert window_matrix(windows, 4).toarray().tolist() == [[0.5, 0, 0.5, 0],
                                                           [0, 1 / 3, 1 / 3, 1 / 3]]
    assert window_matrix(windows, 4, mean=False).sum() == 5


POOLS = [  # kernel, stride, padding, dilation, ceil_mode
    ((2, 2), None, 0, 1, False), ((3, 3), 2, 1, 1, True), ((3, 2), (2, 1), (1, 1), (2, 1),
                                                           True),
    ((3, 3), 2, 1, 1, False), ((2, 3), (3, 2), (1, 0), 1, True),
]


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode", POOLS)
def test_pools_match_torch(kernel, stride, padding, dilation, ceil_mode):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = torch.randn(4, 3, 7, 6, dtype=torch.float64)
    flat = x.reshape(4, -1).numpy()
    windows, shape = pool_windows((3, 7, 6), kernel, stride, padding, dilation, ceil_mode)
    values = np.where(windows >= 0, flat[:, np.maximum(windows, 0)], -np.inf).max(axis=2)
    expected = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    assert (4,) + shape == tuple(expected.shape)
    np.testing.assert_array_equal(values, expected.reshape(4, -1).numpy())
    if dilation != 1:
        return
    for include, divisor in ((True, None), (False, None), (True, 5)):
        matrix, shape = avg_pool_matrix((3, 7, 6), kernel, stride, padding, ceil_mode,
                                        include, divisor)
        expected = F.avg_pool2d(x, kernel, stride, padding, ceil_mode, include, divisor)
        assert (4,) + shape == tuple(expected.shape)
        np.testing.assert_allclose(flat @ matrix.T, expected.reshape(4, -1).numpy(),
                                   atol=1e-12)


def test_conv_matrix_matches_torch_same_padding():
    torch = pytest.importorskip("torch")
    conv = torch.nn.Conv2d(2, 3, (4, 3), padding="same", dilation=(1, 2)).double()
    matrix, shape = conv_matrix(conv.weight.detach().numpy(), (2, 6, 5),
                                padding=[(1, 2), (2, 2)], dilation=(1, 2))
    x = torch.randn(3, 2, 6, 5, dtype=torch.float64)
    expected = (conv(x) - conv.bias[:, None, None]).detach().numpy()
    assert (3,) + shape == expected.shape
    np.testing.assert_allclose(x.reshape(3, -1).numpy() @ matrix.T, expected.reshape(3, -1),
                               atol=1e-12)


def test_same_padding_upper_and_lower():
    assert same_padding((6, 5), (4, 3), 1, (1, 2)) == ((1, 2), (2, 2))  # torch's "same"
    assert same_padding((5, 6), (3, 3), 2) == ((1, 1), (0, 1))
    assert same_padding((5, 6), (3, 3), 2, lower=True) == ((1, 1), (1, 0))
    assert same_padding((4,), (1,), 3) == ((0, 0),)


@pytest.mark.parametrize("shape,weight_shape,stride,padding,extra,dilation,groups", [
    ((2, 5), (2, 3, 3), 2, 1, 1, 1, 1),
    ((4, 4, 3), (4, 1, 3, 2), (2, 1), ((1, 1), (0, 1)), (2, 0), (3, 1), 2),  # e >= stride
    ((2, 3, 2, 3), (2, 2, 2, 1, 2), (1, 2, 2), 0, (0, 1, 0), 1, 1),
])
def test_conv_transpose_matrix_matches_torch(shape, weight_shape, stride, padding, extra,
                                             dilation, groups):
    torch = pytest.importorskip("torch")
    nd = len(shape) - 1
    weight = RNG.normal(size=weight_shape)
    matrix, out_shape = conv_transpose_matrix(weight, shape, stride, padding, extra, dilation,
                                              groups)
    x = torch.randn((3,) + shape, dtype=torch.float64)
    # torch pads symmetrically: cut the (begin, end) pads and add output_padding by hand
    full = getattr(torch.nn.functional, f"conv_transpose{nd}d")(
        x, torch.from_numpy(weight), None, stride, 0, 0, groups, dilation)
    pads, extra = pad_pairs(padding, nd), np.broadcast_to(extra, nd)
    grown = torch.nn.functional.pad(full, [v for e in extra[::-1] for v in (0, int(e))])
    expected = grown[(slice(None),) * 2 + tuple(
        slice(p[0], n + e - p[1]) for p, n, e in zip(pads, full.shape[2:], extra))]
    assert (3,) + out_shape == tuple(expected.shape)
    np.testing.assert_allclose(x.reshape(3, -1).numpy() @ matrix.T,
                               expected.reshape(3, -1).numpy(), atol=1e-12)


def test_conv_transpose_matrix_checks_output_padding():
    with pytest.raises(InvalidNetworkError, match="output_padding"):
        conv_transpose_matrix(np.ones((1, 1, 3)), (1, 4), stride=2, output_padding=2)
    with pytest.raises(InvalidNetworkError, match="does not fit"):
        conv_transpose_matrix(np.ones((2, 1, 3)), (1, 4))


def test_average_pool_with_dilation_is_the_mean_of_the_max_windows():
    windows, shape = pool_windows((2, 9, 7), (3, 2), (2, 1), ((1, 0), (1, 1)), (2, 3), True)
    matrix, same_shape = avg_pool_matrix((2, 9, 7), (3, 2), (2, 1), ((1, 0), (1, 1)), True,
                                         False, dilation=(2, 3))
    assert shape == same_shape
    np.testing.assert_allclose(matrix.toarray(), window_matrix(windows, 126).toarray())


def test_pools_refuse_windows_in_the_padding_and_large_grids():
    with pytest.raises(InvalidNetworkError, match="entirely in the padding"):
        pool_windows((1, 4), 2, 2, [(2, 0)])
    with pytest.raises(InvalidNetworkError, match="entirely in the padding"):
        avg_pool_matrix((1, 4), 2, 2, [(2, 0)], count_include_pad=False)
    for pool in (pool_windows, avg_pool_matrix):  # 250 G taps: refused before allocating
        with pytest.raises(SizeLimitError, match="max_parameters"):
            pool((1, 1000, 1000), (500, 500), 1, max_entries=10 ** 6)

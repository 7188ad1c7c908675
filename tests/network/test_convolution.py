"""network.convolution against loop-by-loop numpy oracles and, where installed, torch."""

import itertools

import numpy as np
import pytest

from polyrelu.errors import InvalidNetworkError, SizeLimitError
from polyrelu.network.convolution import (
    adaptive_windows,
    avg_pool_matrix,
    conv_matrix,
    pad_pairs,
    pool_windows,
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

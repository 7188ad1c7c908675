"""Filter banks as dense layers: circulants vs FFT, frame bounds, torch Conv1d, the network."""

import numpy as np
import pytest

from polyrelu import InvalidNetworkError
from polyrelu.analysis.energy import propagation_energies
from polyrelu.analysis.filterbanks import (
    bank_matrix,
    circulant,
    conv1d_matrix,
    filter_bank_network,
    frame_bounds,
    haar_filters,
)


def test_circulant_is_circular_convolution_by_loops():
    rng = np.random.default_rng(0)
    g, x = rng.normal(size=3), rng.normal(size=7)
    by_loops = [sum(g[j] * x[(m - j) % 7] for j in range(3)) for m in range(7)]
    np.testing.assert_allclose(circulant(g, 7) @ x, by_loops, atol=1e-15)


def test_haar_bank_is_parseval():
    for length in (2, 5, 16):
        A, B = frame_bounds(haar_filters(), length)
        assert A == pytest.approx(1.0, abs=1e-15) and B == pytest.approx(1.0, abs=1e-15)
        G = bank_matrix(haar_filters(), length)
        np.testing.assert_allclose(G.T @ G, np.eye(length), atol=1e-15)   # sum_g ||g*x||^2


def test_frame_bounds_are_the_extreme_eigenvalues_of_the_frame_operator():
    rng = np.random.default_rng(1)
    filters = [rng.normal(size=4), rng.normal(size=3), rng.normal(size=2)]
    G = bank_matrix(filters, 9)
    eigenvalues = np.linalg.eigvalsh(G.T @ G)
    np.testing.assert_allclose(frame_bounds(filters, 9), [eigenvalues[0], eigenvalues[-1]],
                               rtol=1e-12)


@pytest.mark.parametrize("kwargs", [
    dict(in_channels=2, out_channels=3, kernel_size=3),
    dict(in_channels=1, out_channels=2, kernel_size=4, stride=2, padding=2, dilation=1),
    dict(in_channels=2, out_channels=4, kernel_size=3, padding=1, padding_mode="circular",
         groups=2, bias=False),
    dict(in_channels=1, out_channels=1, kernel_size=3, padding=2, dilation=2,
         padding_mode="reflect"),
])
def test_conv1d_as_an_exact_dense_layer(kwargs):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(**kwargs)
    W, b = conv1d_matrix(conv, 10)
    x = torch.randn(5, kwargs["in_channels"], 10)
    expected = conv.double()(x.double()).detach().reshape(5, -1).numpy()
    np.testing.assert_allclose(x.double().reshape(5, -1).numpy() @ W.T + b, expected,
                               atol=1e-13)
    if kwargs.get("padding_mode", "zeros") in ("zeros", "circular"):
        # every weight entry is one of the kernel's float32 weights, exactly
        assert set(np.unique(W)) <= set(conv.weight.detach().numpy().ravel().tolist()) | {0.0}


def test_filter_bank_network_energy_identity_with_modulus():
    low, high = haar_filters()
    rng = np.random.default_rng(2)
    for depth in (1, 3, 5):
        net = filter_bank_network([high], 16, depth, output_filter=low)
        x = rng.normal(size=(20, 16))
        out = net.forward(x)
        np.testing.assert_allclose((out ** 2).sum(axis=1), (x ** 2).sum(axis=1), rtol=1e-12)
        # the outputs are the FFT-computed layer energies
        for xi, oi in zip(x, out):
            report = propagation_energies([high], xi, depth, output_filter=low)
            per_layer = (oi[:16 * depth].reshape(depth, 16) ** 2).sum(axis=1)
            np.testing.assert_allclose(per_layer, report.outputs, atol=1e-12)
            assert (oi[16 * depth:] ** 2).sum() == pytest.approx(report.propagated[-1],
                                                                 abs=1e-12)


def test_filter_bank_network_with_relu_and_two_filters_matches_fft_propagation():
    rng = np.random.default_rng(3)
    filters = [rng.normal(size=3), rng.normal(size=2)]
    net = filter_bank_network(filters, 8, 2, nonlinearity="relu")
    x = rng.normal(size=8)
    report = propagation_energies(filters, x, 2, nonlinearity="relu")
    assert net.output_dim == 4 * 8
    assert (net.forward(x) ** 2).sum() == pytest.approx(report.propagated[-1], rel=1e-12)


@pytest.mark.parametrize("make,message", [
    (lambda: circulant([1.0, 2.0, 3.0], 2), "1 to 2 finite taps"),
    (lambda: circulant([np.nan], 4), "finite taps"),
    (lambda: filter_bank_network([[1.0]], 4, 0), "depth must be a positive integer"),
    (lambda: filter_bank_network([[1.0]], 4, 1, nonlinearity="tanh"), "'modulus' or 'relu'"),
    (lambda: conv1d_matrix("conv", 4), "expected a torch.nn.Conv1d"),
])
def test_bad_banks_raise_clear_errors(make, message):
    if "torch" in message:
        pytest.importorskip("torch", reason="conv1d_matrix needs torch (the torch extra)")
    with pytest.raises(InvalidNetworkError, match=message):
        make()

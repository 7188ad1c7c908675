"""Exact spectra along paths: closed forms, the Taylor model's partial sums, dense FFT."""

from math import comb

import numpy as np
import pytest

from oracles import random_network
from polyrelu import Network, PolyreluError
from polyrelu.analysis.paths import ClosedCurve, Segment
from polyrelu.analysis.spectrum import path_spectrum, taylor_relu_spectrum

RELU = Network([[[1.0]], [[1.0]]], [[0.0], [0.0]])
ABSOLUTE = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
UNIT_TONE = ClosedCurve([0.0], [1.0], [0.0])


def test_relu_of_cosine_closed_form():
    s = path_spectrum(RELU, UNIT_TONE, 12)
    assert s.dc[0] == pytest.approx(1 / np.pi, abs=1e-15)
    assert s.a[0, 0] == pytest.approx(0.5, abs=1e-15)
    assert s.a[1, 0] == pytest.approx(2 / (3 * np.pi), abs=1e-15)
    np.testing.assert_allclose(s.a[2::2, 0], 0, atol=1e-15)           # odd k >= 3
    k = np.arange(2, 13, 2)                                            # even k: half-wave series
    np.testing.assert_allclose(s.a[1::2, 0], 2 * (-1) ** (k // 2 + 1) / (np.pi * (k ** 2 - 1)),
                               atol=1e-15)
    np.testing.assert_allclose(s.b, 0, atol=1e-15)


@pytest.mark.parametrize("a,c", [(1.0, 0.5), (2.0, -0.7), (1.5, 0.0), (1.0, 1.3), (1.0, -1.3)])
def test_dc_of_relu_of_shifted_cosine(a, c):
    # the positive part is |t| < alpha with cos(alpha) = -c/a, so the mean is
    # (1/2pi) int_{-alpha}^{alpha} (a cos t + c) dt = (a sin(alpha) + c alpha) / pi
    alpha = np.arccos(np.clip(-c / a, -1, 1))
    expected = (a * np.sin(alpha) + c * alpha) / np.pi
    s = path_spectrum(RELU, ClosedCurve([c], [a], [0.0]), 0)
    assert s.dc[0] == pytest.approx(expected, abs=1e-15)
    # the same signal made by the network's bias instead of the path's centre
    shifted = Network([[[a]], [[1.0]]], [[c], [0.0]])
    assert path_spectrum(shifted, UNIT_TONE, 0).dc[0] == pytest.approx(expected, abs=1e-15)
    if (a, c) == (1.0, 0.5):
        assert s.dc[0] == pytest.approx(0.608998, abs=1e-6)      # the value in the docs


def test_dc_of_absolute_cosine_and_its_harmonics():
    s = path_spectrum(ABSOLUTE, UNIT_TONE, 6)
    assert s.dc[0] == pytest.approx(2 / np.pi, abs=1e-15)
    # |cos t| = 2/pi + (4/pi) sum_j (-1)^{j+1} cos(2jt) / (4j^2 - 1)
    j = np.arange(1, 4)
    np.testing.assert_allclose(s.a[1::2, 0], 4 / np.pi * (-1) ** (j + 1) / (4 * j ** 2 - 1),
                               atol=1e-15)
    np.testing.assert_allclose(s.a[0::2, 0], 0, atol=1e-15)


def test_taylor_partial_sums_for_a_unit_tone():
    # A = 1/2 and g = 2 cos^2 t - 1 = cos 2t, whose n-th power has mean C(n, n/2)/2^n (n even)
    means = [comb(n, n // 2) / 2 ** n if n % 2 == 0 else 0.0 for n in range(50)]
    c = [(-1) ** n * comb(2 * n, n) / ((1 - 2 * n) * 4 ** n) for n in range(50)]
    partial = np.sqrt(0.5) / 2 * np.cumsum(np.multiply(c, means))
    model = [taylor_relu_spectrum([1.0], [1], terms, 3).dc[0] for terms in range(1, 51)]
    np.testing.assert_allclose(model, partial, atol=1e-14)
    assert model[0] == pytest.approx(np.sqrt(2) / 4, abs=1e-15)
    assert model[-1] == pytest.approx(0.319123, abs=1e-6)
    exact = path_spectrum(RELU, UNIT_TONE, 0).dc[0]
    errors = np.abs(np.array(model) - exact)
    assert np.all(np.diff(errors[::2]) < 0)                       # converges, slowly
    # the model's first harmonic is exact at any order: x / 2 carries it, |x| has none
    assert taylor_relu_spectrum([1.0], [1], 7, 3).a[0, 0] == pytest.approx(0.5, abs=1e-15)


def test_taylor_model_is_the_pointwise_model_sampled():
    # sample (x + sqrt(A) sum c_n g^n) / 2 for two tones and take an FFT
    amplitudes, frequencies, terms = np.array([1.0, 0.5]), np.array([1, 3]), 6
    t = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    x = amplitudes @ np.cos(np.outer(frequencies, t))
    scale = amplitudes.sum() ** 2 / 2
    g = x ** 2 / scale - 1
    c = [(-1) ** n * comb(2 * n, n) / ((1 - 2 * n) * 4 ** n) for n in range(terms)]
    samples = (x + np.sqrt(scale) * sum(cn * g ** n for n, cn in enumerate(c))) / 2
    fft = np.fft.rfft(samples) / len(t)
    s = taylor_relu_spectrum(amplitudes, frequencies, terms, 40)
    assert s.dc[0] == pytest.approx(fft[0].real, abs=1e-12)
    np.testing.assert_allclose(s.a[:, 0] - 1j * s.b[:, 0], 2 * fft[1:41], atol=1e-12)


def _fft_error(net, path, spectrum, samples, layer=None):
    t = path.start + path.period * np.arange(samples) / samples
    if layer is None:
        values = net.forward(path.points(t))
    else:
        start = sum(net.hidden_sizes[:layer])
        values = np.maximum(net.preactivations(path.points(t)), 0)[
            :, start:start + net.hidden_sizes[layer]]
    fft = np.fft.rfft(values, axis=0) / samples
    K = len(spectrum.a)
    exact = np.vstack([spectrum.dc, (spectrum.a - 1j * spectrum.b) / 2])
    return np.abs(fft[:K + 1] - exact).max()


@pytest.mark.parametrize("layer", [None, 1])
def test_exact_spectrum_matches_dense_fft_on_a_closed_curve(layer):
    net = Network(*random_network((3, 10, 10, 2), np.random.default_rng(7)))
    curve = ClosedCurve([0.1, -0.2, 0.3], [1.2, 0.3, -0.4], [-0.2, 0.9, 0.5])
    spectrum = path_spectrum(net, curve, 8, layer=layer)
    errors = [_fft_error(net, curve, spectrum, n, layer) for n in (64, 256, 1024, 4096, 16384)]
    assert np.all(np.diff(errors) < 0), errors
    assert errors[-1] < 1e-6 and errors[-1] < errors[0] / 1000   # kinks: error ~ 1/n^2


def test_exact_spectrum_matches_dense_fft_on_a_segment():
    net = Network(*random_network((2, 8, 8, 1), np.random.default_rng(3)))
    segment = Segment([-1.0, 0.4], [1.0, -0.8])
    spectrum = path_spectrum(net, segment, 5)
    # the periodic extension jumps at t = 1: plain sampling converges like 1/n
    errors = [_fft_error(net, segment, spectrum, n) for n in (256, 2048, 16384, 131072)]
    assert np.all(np.diff(errors) < 0) and errors[-1] < 1e-4, errors
    # the mean by the trapezoid rule converges like 1/n^2
    t = np.linspace(0, 1, 200001)
    values = net.forward(segment.points(t))[:, 0]
    trapezoid = (values.sum() - (values[0] + values[-1]) / 2) / (len(t) - 1)
    assert spectrum.dc[0] == pytest.approx(trapezoid, abs=1e-8)


def test_hidden_layer_dc_is_the_average_pooling():
    net = Network(*random_network((2, 5, 4, 1), np.random.default_rng(11)))
    curve = ClosedCurve([0.0, 0.0], [1.0, 0.0], [0.0, 1.0])
    dc = path_spectrum(net, curve, 0, layer=0).dc
    t = np.arange(100000) * 2 * np.pi / 100000
    features = np.maximum(net.preactivations(curve.points(t))[:, :5], 0)
    np.testing.assert_allclose(dc, features.mean(axis=0), atol=1e-8)


def test_bad_arguments():
    with pytest.raises(PolyreluError, match="non-negative integer"):
        path_spectrum(RELU, UNIT_TONE, -1)
    with pytest.raises(PolyreluError, match="hidden layer index 0..0, got 3"):
        path_spectrum(RELU, UNIT_TONE, 2, layer=3)
    with pytest.raises(PolyreluError, match="non-zero sum"):
        taylor_relu_spectrum([1.0, -1.0], [1, 2], 3, 2)

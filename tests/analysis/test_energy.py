"""Energy propagation: known answers, the Parseval identity, extremes and the null-set check."""

import numpy as np
import pytest

from oracles import random_network
from polyrelu import Domain, Network, enumerate_regions
from polyrelu.analysis.energy import (
    energy_range,
    layer_energies,
    null_set_check,
    propagation_energies,
)
from polyrelu.analysis.filterbanks import filter_bank_network, haar_filters

LOW, HIGH = haar_filters()


def test_known_answers_constant_and_alternating_signals():
    constant = propagation_energies([HIGH], np.full(8, 3.0), 3, output_filter=LOW)
    assert constant.propagated[1] == 0.0 and constant.outputs[0] == pytest.approx(72.0)
    alternating = propagation_energies([HIGH], [1.0, -1.0] * 5, 3, output_filter=LOW)
    np.testing.assert_allclose(alternating.propagated, [10.0, 10.0, 0.0, 0.0], atol=1e-13)


@pytest.mark.parametrize("M,k,half", [(8, 1, True), (12, 3, True), (12, 4, False),
                                      (9, 2, False), (10, 5, True)])
def test_relu_of_a_sampled_cosine_keeps_half_when_the_period_is_even(M, k, half):
    x = np.cos(2 * np.pi * k * np.arange(M) / M)
    report = propagation_energies([[1.0]], x, 1, nonlinearity="relu")  # identity filter
    assert (report.propagated[1] == pytest.approx(report.propagated[0] / 2, abs=1e-13)) == half
    assert report.propagated[1] + report.discarded[0] == pytest.approx(report.propagated[0],
                                                                       abs=1e-13)


def test_energy_identity_with_parseval_bank_and_modulus():
    rng = np.random.default_rng(4)
    for x in rng.normal(size=(10, 32)):
        report = propagation_energies([HIGH], x, 6, output_filter=LOW)
        assert np.all(report.discarded == 0)
        for N in range(7):
            assert report.kept(N) + report.propagated[N] == pytest.approx(x @ x, rel=1e-12)


def test_layers_needed_is_the_first_layer_below_eps():
    x = np.random.default_rng(5).normal(size=64)
    report = propagation_energies([HIGH], x, 8, output_filter=LOW)
    assert np.all(np.diff(report.propagated) <= 1e-12)   # energy decays with depth
    for eps in (0.5, 0.1, 0.01):
        N = report.layers_needed(eps)
        assert report.propagated[N] <= eps * (x @ x) < report.propagated[N - 1]
        assert report.kept(N) >= (1 - eps) * (x @ x) - 1e-12
    assert report.layers_needed(0.0) is None


def test_layer_energies_of_any_network_by_loops():
    weights, biases = random_network((3, 5, 4, 2), np.random.default_rng(6))
    x = np.array([0.3, -0.8, 0.5])
    energies = layer_energies(Network(weights, biases), x)
    h = x
    for layer, (w, b) in enumerate(zip(weights[:-1], biases[:-1])):
        z = w @ h + b
        assert energies["kept"][layer] == pytest.approx(sum(v * v for v in z if v > 0))
        assert energies["discarded"][layer] == pytest.approx(sum(v * v for v in z if v < 0))
        assert energies["preactivation"][layer] == pytest.approx(z @ z)
        h = np.maximum(z, 0)


@pytest.mark.parametrize("layer", [None, 0])
def test_energy_range_against_dense_sampling(layer):
    net = Network(*random_network((2, 6, 5, 2), np.random.default_rng(8)))
    domain = Domain.box([-1, -1], [1, 1])
    regions = enumerate_regions(net, domain)
    exact = energy_range(net, domain, layer=layer, regions=regions)
    g = np.linspace(-1, 1, 801)
    grid = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    if layer is None:
        sampled = (net.forward(grid) ** 2).sum(axis=1)
        at = lambda x: float((net.forward(x) ** 2).sum())  # noqa: E731
    else:
        sampled = (np.maximum(net.preactivations(grid)[:, :6], 0) ** 2).sum(axis=1)
        at = lambda x: float((np.maximum(net.preactivations(x)[0, :6], 0) ** 2).sum())  # noqa
    assert exact.min <= sampled.min() + 1e-7 and exact.max >= sampled.max() - 1e-12
    assert sampled.min() - exact.min < 1e-3 and exact.max - sampled.max() < 1e-2
    assert at(exact.argmax) == pytest.approx(exact.max, rel=1e-9)
    assert at(exact.argmin) == pytest.approx(exact.min, abs=1e-7)
    assert np.all(domain.A @ exact.argmin <= domain.b + 1e-7)


def test_null_set_witness_on_a_network_built_to_have_one():
    # |x1 - x2| vanishes on the diagonal
    net = Network([[[1.0, -1.0], [-1.0, 1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    result = null_set_check(net, Domain.box([-1, -1], [2, 2]))
    assert not result.trivial
    assert np.abs(result.witness).max() > result.tol and result.residual < 1e-9
    assert abs(result.witness[0] - result.witness[1]) < 1e-9


def test_null_set_witness_where_the_network_is_dead():
    # ReLU(x - 1): every x <= 1 maps to 0; the domain does not even contain 0
    net = Network([[[1.0]], [[1.0]]], [[-1.0], [0.0]])
    result = null_set_check(net, Domain.box([0.25], [3.0]))
    assert not result.trivial and 0.25 <= result.witness[0] <= 1.0 and result.residual == 0


def test_null_set_certificate_for_a_parseval_modulus_network():
    # ||network(x)|| = ||x||, so only x = 0 maps to 0
    net = filter_bank_network([HIGH], 3, 2, output_filter=LOW)
    result = null_set_check(net, Domain.box([-1, -1, -1], [1, 1, 1]))
    assert result.trivial and result.witness is None and result.regions > 10
    x = np.random.default_rng(9).uniform(-1, 1, size=(2000, 3))
    np.testing.assert_allclose(np.linalg.norm(net.forward(x), axis=1),
                               np.linalg.norm(x, axis=1), rtol=1e-12)


def test_null_set_certificate_for_an_injective_piecewise_linear_map():
    # (x1 + ReLU(x2) / 2, x2) is injective (x2, then x1, is read back), so only 0 maps to 0;
    # as a network: (ReLU(x1) - ReLU(-x1) + ReLU(x2) / 2, ReLU(x2) - ReLU(-x2))
    W0 = [[1, 0], [-1, 0], [0, 1], [0, -1]]
    W1 = [[1, -1, 0.5, 0], [0, 0, 1, -1]]
    net = Network([W0, W1], [[0] * 4, [0, 0]])
    result = null_set_check(net, Domain.box([-1, -1], [1, 1]))
    assert result.trivial and result.regions == 4
    assert result.lps >= result.regions  # one LP at least per region
    # a non-injective variant, (x1 + ReLU(x2), x2 - ReLU(-x1)), sends (-1, 1) to 0
    W1 = [[1, -1, 1, 0], [0, -1, 1, -1]]
    result = null_set_check(Network([W0, W1], [[0] * 4, [0, 0]]), Domain.box([-1, -1], [1, 1]))
    assert not result.trivial and result.residual < 1e-12

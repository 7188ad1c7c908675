"""without_windows: the rewritten network computes the same real function with ReLU and
linear units only, adds only integer weights, and its regions refine the original's."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from polyrelu import Network
from polyrelu.geometry.exact import exact_layers
from polyrelu.network.layers import LINEAR, RELU, Layer
from polyrelu.network.loaders import load_network
from polyrelu.network.windowless import without_windows
from tests.networks import mixed_network, residual_pool_network

DIGITS_CNN = Path(__file__).parents[2] / "examples" / "digits_cnn" / "digits_cnn.onnx"


def _awkward_windows(seed=0):
    """Overlapping windows, a window entry that is also kept, a window of one entry, a
    window listing one entry twice, an unread unit, linear window entries."""
    rng = np.random.default_rng(seed)
    first = Layer.build(rng.normal(size=(6, 3)), rng.normal(size=6) * 0.3,
                        units=[RELU, RELU, LINEAR, RELU, RELU, RELU], keep=[4, 0],
                        windows=[[0, 1, 2, -1], [1, 2, 3, 4], [3, -1, -1, -1], [2, 2, 1, -1]])
    second = Layer.build(rng.normal(size=(4, 6)), rng.normal(size=4) * 0.3, keep=[0, 3],
                         windows=[[1, 2]])
    return Network.from_layers([first, second, Layer.affine(rng.normal(size=(2, 3)),
                                                            rng.normal(size=2))])


NETWORKS = {
    "mixed": lambda: mixed_network(seed=3),
    "residual_pool": lambda: residual_pool_network(seed=1),
    "awkward": _awkward_windows,
}


def _networks():
    cases = [pytest.param(make, id=name) for name, make in NETWORKS.items()]
    cases.append(pytest.param(lambda: load_network(DIGITS_CNN), id="digits_cnn"))
    return cases


@pytest.mark.parametrize("make", _networks())
def test_forward_equals_the_original(make):
    network = make()
    flat = without_windows(network)
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(10_000, network.input_dim))
    expected = network.forward(x)
    scale = 1.0 + np.abs(expected).max()
    assert np.abs(flat.forward(x) - expected).max() <= 1e-12 * scale


@pytest.mark.parametrize("make", [pytest.param(m, id=n) for n, m in NETWORKS.items()])
def test_the_real_function_is_the_same(make):
    """Exact rational forward passes agree at random and tied points."""
    network = make()
    flat = without_windows(network)
    rng = np.random.default_rng(1)
    points = list(rng.uniform(-2, 2, size=(20, network.input_dim)))
    points += [np.zeros(network.input_dim), np.full(network.input_dim, 0.5)]
    for x in points:
        assert exact_layers(flat, x)[-1] == exact_layers(network, x)[-1]


@pytest.mark.parametrize("make", _networks())
def test_only_relu_and_linear_units_every_unit_kept(make):
    flat = without_windows(make())
    for layer in flat.layers:
        assert layer.windows.shape[0] == 0
        assert np.array_equal(layer.keep, np.arange(layer.n_z))
        assert set(np.unique(layer.units)) <= {RELU, LINEAR}


@pytest.mark.parametrize("make", [pytest.param(m, id=n) for n, m in NETWORKS.items()])
def test_no_weight_is_rounded(make):
    """Every weight of the rewritten network is an original weight (a copied row or
    column entry), zero, or a small integer of a tree level."""
    network = make()
    flat = without_windows(network)
    original = {float(v) for layer in network.layers for v in layer.weight.ravel()}
    original |= {float(v) for layer in network.layers for v in layer.bias.ravel()}
    for layer in flat.layers:
        values = set(layer.weight.ravel().tolist()) | set(layer.bias.ravel().tolist())
        assert values <= original | {0.0, 1.0, -1.0, 2.0, -2.0}


@pytest.mark.parametrize("make", [pytest.param(m, id=n) for n, m in NETWORKS.items()])
def test_regions_refine_the_original(make):
    """Points with the same rewritten pattern have the same original pattern (on the slots
    of the units the network reads: a unit that is neither kept nor in a window is left
    out)."""
    network = make()
    flat = without_windows(network)
    rng = np.random.default_rng(2)
    x = rng.uniform(-2, 2, size=(20_000, network.input_dim))
    read = _read_slots(network)
    seen = {}
    for fine, coarse in zip(flat.activation_pattern(x), network.activation_pattern(x)[:, read]):
        assert seen.setdefault(fine.tobytes(), coarse.tobytes()) == coarse.tobytes()


def _read_slots(network):
    masks = []
    for layer in network.layers[:-1]:
        read = np.zeros(layer.n_z, dtype=bool)
        read[layer.keep] = True
        read[layer.windows[layer.windows >= 0]] = True
        masks += [read[layer.relu_units], np.ones(layer.windows.size, dtype=bool)]
    return np.concatenate(masks)


def test_a_max_of_three_is_exact_at_ties():
    pool = Network.from_layers([Layer.build(np.eye(3), np.zeros(3), keep=[],
                                            windows=[[0, 1, 2]]),
                                Layer.affine([[1.0]], [0.0])])
    flat = without_windows(pool)
    for x in ([1, 1, 1], [0, 2, 2], [-1, -3, -2], [0.1, 0.3, 0.2]):
        assert exact_layers(flat, x)[-1] == [max(Fraction(v) for v in x if v > 0)
                                             if max(x) > 0 else Fraction(0)]


def test_a_relu_network_is_returned_as_it_is():
    network = Network([np.ones((2, 1)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    assert without_windows(network) is network

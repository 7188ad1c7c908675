"""The general network model (layers with ReLU and linear units and max windows): local
affine maps, region rows and canonical patterns against forward passes."""

import numpy as np
import pytest

from polyrelu.errors import UnsupportedNetworkError
from polyrelu.network.lowering import GraphBuilder
from tests.networks import mixed_network

POINTS = np.random.default_rng(5).uniform(-1, 1, size=(400, 3))


def test_local_maps_reproduce_the_forward_pass():
    net = mixed_network()
    patterns = net.activation_pattern(POINTS)
    z = net.preactivations(POINTS)
    for x, pattern, zx in zip(POINTS, patterns, z):
        maps = net.affine_maps(pattern)
        np.testing.assert_allclose(maps.W_eff @ x + maps.b_eff, net.forward(x)[0], atol=1e-12)
        np.testing.assert_allclose(maps.pre_A @ x + maps.pre_c, zx, atol=1e-12)
        G, g, kinks = net.kink_rows(pattern, maps)
        assert (G @ x + g >= -1e-12).all()
        assert kinks.size == G.shape[0]


def test_rows_describe_the_region():
    """A point satisfies a pattern's rows (strictly) exactly when it has that pattern."""
    net = mixed_network(1)
    patterns = net.activation_pattern(POINTS)
    pattern = patterns[0]
    G, g, _ = net.kink_rows(pattern, net.affine_maps(pattern))
    inside = (POINTS @ G.T + g > 1e-12).all(axis=1)
    same = (patterns == pattern).all(axis=1)
    assert (inside <= same).all()
    assert same.sum() >= inside.sum() and inside[0]


def test_cross_moves_one_kink():
    net = mixed_network()
    pattern = net.activation_pattern(POINTS[:1])[0]
    G, g, kinks = net.kink_rows(pattern, net.affine_maps(pattern))
    for kink in kinks:
        across = net.cross(pattern, kink)
        assert np.count_nonzero(across != pattern) == (1 if kink < net.num_hidden else 2)
        assert isinstance(net.kink_name(kink), str)


def test_ties_of_identical_window_entries_take_the_lowest_position():
    builder = GraphBuilder((2,))
    x = builder.input
    t = builder.linear(x, [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], [-5.0, -5.0, 0.0])
    net = builder.network(builder.max_windows(builder.relu(t), [[0, 1, 2]], (1,)))
    lower, upper = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    tol = np.full(net.num_hidden, 1e-9)
    raw = net.activation_pattern([[0.5, -0.5]])[0]  # all three u are 0: argmax 0 already
    canonical, _, _ = net.canonical_pattern(raw, tol, lower, upper)
    np.testing.assert_array_equal(canonical, raw)
    forced = raw.copy()
    forced[3:] = [False, True, False]  # argmax 1: ties with 0 (both ReLUs dead on the box)
    canonical, maps, zero = net.canonical_pattern(forced, tol, lower, upper)
    assert canonical[3:].tolist() == [True, False, False]
    assert not zero.any()  # the ReLUs are dead on the box, not zero maps


def test_relu_only_tools_refuse_general_networks():
    with pytest.raises(UnsupportedNetworkError, match="max windows"):
        mixed_network().layer_masks(np.zeros(mixed_network().num_hidden, bool))


def test_npz_round_trip_and_fingerprint_cover_the_layer_structure(tmp_path):
    from polyrelu.network.loaders import from_npz, save_npz
    from polyrelu.network.model import Network, network_fingerprint

    net = mixed_network(2)
    save_npz(net, tmp_path / "net.npz")
    back = from_npz(tmp_path / "net.npz")
    assert network_fingerprint(back) == network_fingerprint(net)
    np.testing.assert_array_equal(back.forward(POINTS), net.forward(POINTS))
    # the same weights with one unit's code changed: another network, another fingerprint
    layers = list(net.layers)
    first = layers[0]
    codes = first.units.copy()
    codes[0] = 1 - codes[0]
    changed = type(first).build(first.weight, first.bias, units=codes, keep=first.keep,
                                windows=first.windows)
    assert network_fingerprint(Network.from_layers([changed] + layers[1:])) != \
        network_fingerprint(net)

"""Exact rational evaluation of general networks against float forward passes."""

from fractions import Fraction

import numpy as np

from polyrelu.geometry.exact import exact_affine_maps, exact_layers, exact_pattern
from tests.networks import mixed_network
from tests.oracles import general_forward


def test_exact_values_patterns_and_maps_match_float_evaluation():
    net = mixed_network(6)
    points = np.random.default_rng(2).uniform(-1, 1, size=(25, 3))
    for x in points:
        output, pattern = general_forward(net, x)
        layers = exact_layers(net, x)
        np.testing.assert_allclose([float(v) for v in layers[-1]], output, atol=1e-12)
        np.testing.assert_allclose([float(v) for layer in layers[:-1] for v in layer],
                                   net.preactivations(x)[0], atol=1e-12)
        assert exact_pattern(net, x) == pattern.tolist()
        hidden, out = exact_affine_maps(net, pattern)
        exact_x = [Fraction(float(v)) for v in x]
        values = [sum((a * v for a, v in zip(row, exact_x)), c) for row, c in out]
        assert values == layers[-1]  # the region's exact map is the exact forward pass
        assert len(hidden) == net.num_preactivations

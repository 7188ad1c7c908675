"""Linear bounds (geometry.symbolic) on general networks: sound at sampled points, and
unchanged on ReLU networks."""

import numpy as np
import pytest
from networks import mixed_network, residual_pool_network

from oracles import random_network
from polyrelu import Network
from polyrelu.geometry.interval import interval_bounds
from polyrelu.geometry.symbolic import linear_bounds, linear_bounds_batch
from polyrelu.network.lowering import GraphBuilder


def pool_network(seed):
    """Dense, ReLU, max windows of four (one fixed by a large offset), a linear carry."""
    rng = np.random.default_rng(seed)
    builder = GraphBuilder((4,))
    x = builder.input
    t = builder.relu(builder.linear(x, rng.normal(size=(8, 4)),
                                    np.r_[rng.normal(size=7) * 0.3, 5.0]))
    p = builder.max_windows(t, [[0, 1, 2, 3], [4, 5, 6, 7]], (2,))
    s = builder.leaky_relu(builder.linear(builder.stack([p, x]), rng.normal(size=(3, 6))), 0.2)
    return builder.network(builder.linear(builder.add(s, builder.take(x, [0, 1, 2])),
                                          rng.normal(size=(2, 3))))


NETWORKS = {"mixed": (lambda seed: mixed_network(seed, 3), 3),
            "residual_pool": (residual_pool_network, 2), "pool": (pool_network, 4)}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_linear_bounds_hold_at_sampled_points(name, seed):
    build, d = NETWORKS[name]
    network = build(seed)
    rng = np.random.default_rng(seed)
    lower = rng.uniform(-1.0, 0.0, d)
    upper = lower + rng.uniform(0.2, 1.5, d)
    C = rng.normal(size=(3, network.output_dim))
    bounds = linear_bounds(network, lower, upper, C)
    x = rng.uniform(lower, upper, size=(10_000, d))
    z = network.preactivations(x)
    assert np.all(z >= np.concatenate(bounds.pre_lower) - 1e-12)
    assert np.all(z <= np.concatenate(bounds.pre_upper) + 1e-12)
    values = network.forward(x) @ C.T
    linear = x @ bounds.coefficients.T + bounds.offsets
    assert np.all(values >= linear - 1e-12)
    assert np.all(linear >= bounds.lower - 1e-9)
    low, high = interval_bounds(network, lower, upper)  # never looser than intervals' first layer
    first = network.layers[0].n_z
    assert np.allclose(bounds.pre_lower[0], low[:first], atol=1e-9)
    assert np.allclose(bounds.pre_upper[0], high[:first], atol=1e-9)


def test_batches_equal_single_boxes_on_a_general_network():
    network = mixed_network(0, 3)
    lower = np.array([[-1.0, -1.0, -1.0], [0.0, -0.5, 0.2]])
    upper = lower + 0.7
    batch = linear_bounds_batch(network, lower, upper, np.eye(2))
    for i in range(2):
        single = linear_bounds(network, lower[i], upper[i], np.eye(2))
        assert np.allclose(batch[i].lower, single.lower)


def test_relu_bounds_hold_on_a_box_away_from_the_origin():
    """``coefficients @ x + offsets`` is a lower bound at x itself (not at x - centre)."""
    weights, biases = random_network([3, 8, 8, 2], np.random.default_rng(5))
    network = Network(weights, biases)
    lower, upper = np.array([1.0, 2.0, -3.0]), np.array([1.5, 2.5, -2.0])
    bounds = linear_bounds(network, lower, upper, np.eye(2))
    x = np.random.default_rng(6).uniform(lower, upper, size=(10_000, 3))
    assert np.all(network.forward(x) >= x @ bounds.coefficients.T + bounds.offsets - 1e-12)

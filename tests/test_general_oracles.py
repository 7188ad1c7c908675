"""The general-network oracles agree with each other and with the ReLU brute force."""

import numpy as np

from polyrelu import Network
from tests.networks import residual_pool_network
from tests.oracles import (
    brute_force_regions,
    general_brute_force,
    planar_cells,
    random_network,
)

BOX = np.array([-1.0, -1.0]), np.array([1.0, 1.0])


def test_general_brute_force_equals_relu_brute_force_on_relu_networks():
    weights, biases = random_network([2, 5, 4, 1], np.random.default_rng(0))
    relu = brute_force_regions(weights, biases, *BOX, 1e-7)
    general = general_brute_force(Network(weights, biases), *BOX, 1e-7)
    assert set(relu) == set(general) and len(relu) > 10


def test_planar_cells_equal_brute_force_and_tile_the_box():
    for seed in range(2):
        net = residual_pool_network(seed)
        cells = planar_cells(net, *BOX)
        keys = [np.packbits(p).tobytes() for _, p in cells]
        assert len(set(keys)) == len(keys)
        assert set(keys) == set(general_brute_force(net, *BOX, 1e-7))
        assert abs(sum(polygon.area for polygon, _ in cells) - 4.0) < 1e-9

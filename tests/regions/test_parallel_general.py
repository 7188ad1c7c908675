"""Parallel counts and checkpoints of general networks."""

import numpy as np
import pytest
from networks import residual_pool_network

from polyrelu import Domain, Network
from polyrelu.errors import InvalidFileError
from polyrelu.network.layers import Layer
from polyrelu.options import Options
from polyrelu.regions.checkpoint import Checkpoint
from polyrelu.regions.parallel import count_parallel
from polyrelu.regions.splitting import count_regions


def test_parallel_count_of_a_residual_pool_network():
    network = residual_pool_network(2, width=9)
    domain = Domain.box([-1.0, -1.0], [1.0, 1.0])
    count, stats = count_parallel(network, domain, jobs=2)
    assert count == count_regions(network, domain)[0]
    assert stats["units"] >= 1


def test_a_checkpoint_tells_networks_apart_by_their_units(tmp_path):
    """Same weights, one ReLU unit made linear: another network, another checkpoint."""
    weight, bias, out = np.eye(2), np.zeros(2), Layer.affine([[1.0, 1.0]], [0.0])
    relu = Network.from_layers([Layer.build(weight, bias), out])
    mixed = Network.from_layers([Layer.build(weight, bias, units=[1, 0]), out])
    domain, options = Domain.box([-1.0, -1.0], [1.0, 1.0]), Options()
    Checkpoint(tmp_path / "run", relu, domain, options)
    with pytest.raises(InvalidFileError):
        Checkpoint(tmp_path / "run", mixed, domain, options)

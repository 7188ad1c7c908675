"""``LipschitzResult.witness_pattern_exact`` is False for a valid witness when a max
window reads two identical units (the team's ``duplicate_net``: a max over two units with
the same weights and bias, or pooling over duplicated channels).

Cause: polyrelu/analysis/lipschitz.py ``_exact_slots_hold`` rejects every exact tie of the
chosen position with a later one unless both are inactive ReLU units. Two entries with
identical affine maps are tied on a whole neighbourhood, where the lowest position wins,
so the pattern does hold there (it is the engine's own canonical pattern and the one
``Network.activation_pattern`` gives).

Minimal reproduction: ``z = [x0 + x1/2 + 1/4] * 2`` (two identical linear units),
one window ``[[0, 1]]``, output ``2 * max``; on [-1, 1]^2 there is one region, pattern
``[True, False]`` everywhere, yet ``lipschitz(...).witness_pattern_exact`` is False and
``exact_pattern(net, centre, pattern)`` is False. (With identical ReLU units, the region
where both are active reports False as well.)
"""

import numpy as np

from polyrelu import Domain, Network
from polyrelu.analysis.lipschitz import exact_pattern, lipschitz
from polyrelu.network.layers import Layer


def _network(units):
    W = np.array([[1.0, 0.5], [1.0, 0.5]])
    b = np.array([0.25, 0.25])
    return Network.from_layers([Layer.build(W, b, units=units, keep=[], windows=[[0, 1]]),
                                Layer.affine([[2.0]], [0.0])])


def test_identical_linear_entries_witness_is_exact():
    net = _network([0, 0])
    result = lipschitz(net, Domain.box(-np.ones(2), np.ones(2)))
    assert len(result.complex) == 1
    region = result.complex[0]
    assert net.activation_pattern(region.interior_point)[0].tolist() == region.pattern.tolist()
    assert exact_pattern(net, region.interior_point, region.pattern)
    assert result.witness_pattern_exact


def test_identical_active_relu_entries_witness_is_exact():
    net = _network([1, 1])
    result = lipschitz(net, Domain.box(-np.ones(2), np.ones(2)))
    for region in result.complex:
        assert exact_pattern(net, region.interior_point, region.pattern), region.pattern

"""Test-oracle bug (tests/oracles.py, not production code): ``general_brute_force`` misses
regions -- here all of them -- when a max window lists the same unit twice.

``_rows_before`` counts ``count_nonzero(window >= 0) - 1`` rows per window, but
``general_rows`` skips every entry equal to the winner's unit (``entry != best``), so for
a window ``[0, 0]`` it emits one row fewer. ``general_rows_prefix`` then keeps rows that
belong to later slots (in their default False state) and the depth-first search prunes
feasible branches. ``GraphBuilder.max_windows`` and ``Layer.build`` both accept such
windows, and the random nets of a fuzz run hit them (windows ``[[2, 3], [2, 2]]``), so a
test comparing against this oracle can fail on a correct engine, or pass for the wrong
reason.

Minimal reproduction (seed 1 below): layer 0 = 2 ReLU units, kept, plus the window
``[[0, 0]]``; layer 1 = 3 ReLU units; on [-1, 1]^2 the walk finds 5 regions (volumes add
up to 4, each interior point has its region's pattern by the oracle's own
``general_forward``), ``general_brute_force`` returns 0.
"""

import numpy as np

from oracles import general_brute_force, general_forward
from polyrelu import Domain, Network, Options, enumerate_regions
from polyrelu.network.layers import Layer


def test_brute_force_finds_the_regions_of_a_window_with_a_repeated_entry():
    rng = np.random.default_rng(1)
    net = Network.from_layers([
        Layer.build(rng.normal(size=(2, 2)), rng.normal(size=2) * 0.3, units=[1, 1],
                    keep=[0, 1], windows=[[0, 0]]),
        Layer.build(rng.normal(size=(3, 3)), rng.normal(size=3) * 0.3),
        Layer.affine(rng.normal(size=(1, 3)), [0.0])])
    domain = Domain.box(-np.ones(2), np.ones(2))
    walked = enumerate_regions(net, domain)
    assert sum(r.volume() for r in walked) == np.float64(4.0) or abs(
        sum(r.volume() for r in walked) - 4.0) < 1e-9
    for region in walked:
        assert np.array_equal(general_forward(net, region.interior_point)[1], region.pattern)
    truth = general_brute_force(net, domain.lower, domain.upper,
                                Options().min_radius_rel * domain.diameter)
    assert set(truth) == {r.key for r in walked}  # truth is empty today

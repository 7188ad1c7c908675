"""``polyrelu.analysis.lipschitz.check_certificate`` rejects a correct result when a max
window's entries are tied within the engine's tolerance but not exactly.

The regions carry *canonical* patterns (``Network.canonical_pattern``: entries equal within
``zero_tol`` on the domain are a tie won by the lowest position), but
``check_certificate`` (analysis/lipschitz.py, the ``activation_pattern(centres)``
comparison) compares them with the raw forward-pass argmax, which picks the entry that is
larger by 1e-12. ``RegionComplex.locate`` canonicalises before comparing
(regions/region.py ``_locate_pattern``); the checker does not.

Minimal reproduction: two linear units ``x0 + 0.3 x1 + 0.1`` and the same ``+ 1e-12``, one
window over them, a ReLU unit kept beside it. The walk, the splitting enumerator and the
planar slices all give the canonical patterns ``[*, 1, 0]``; the forward pass gives
``[*, 0, 1]``; ``check_certificate(lipschitz(net, box))`` raises
"region 0: its interior point has another pattern". (The same happens on a ReLU network
for a unit identically zero within tolerance but positive.)
"""

import numpy as np

from polyrelu import Domain, Network
from polyrelu.analysis.lipschitz import check_certificate, lipschitz
from polyrelu.network.layers import Layer


def test_check_certificate_accepts_a_near_tied_window():
    W = np.array([[1.0, 0.3], [1.0, 0.3], [0.2, -1.0]])
    b = np.array([0.1, 0.1 + 1e-12, 0.0])
    net = Network.from_layers([Layer.build(W, b, units=[0, 0, 1], keep=[2], windows=[[0, 1]]),
                               Layer.affine([[1.0, 1.0]], [0.0])])
    result = lipschitz(net, Domain.box(-np.ones(2), np.ones(2)))
    assert abs(result.value - np.linalg.norm([1.2, -0.7])) < 1e-12  # a correct result
    assert check_certificate(result)

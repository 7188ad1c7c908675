"""GraphBuilder lowering of degenerate activation units (polyrelu/network/lowering.py).

1. Per-entry PReLU slope 1. The module docstring promises "a degenerate unit (LeakyReLU
   with slope 1, Clip with min == max) makes no kink", and ``leaky_relu`` does drop the
   kink for a scalar slope 1 -- but only when *every* slope is 1
   (``if np.all(slope == 1.0): return tensor``). A PReLU with slopes ``[1.0, 0.5]`` keeps a
   ReLU unit for entry 0 whose output factor ``1 - slope`` is 0: a kink where the function
   is linear. Reproduction: ``leaky_relu(x, [1.0, 0.5])`` on [-1, 1]^2 gives 2 ReLU slots
   and 4 regions; the network is ``(x0, prelu_0.5(x1))`` with 2 regions (the same count
   as ``leaky_relu`` of x1 alone). Region counts then depend on whether a channel slope
   that happens to be 1 was given per channel or as a scalar.

2. An infinite Clip/HardTanh bound (``nn.Hardtanh(-inf, 1)``, ``torch.clamp(x, -inf, 1)``)
   is "no bound" but the builder puts it into a bias: ``clip(x, -inf, 1.0)`` raises
   InvalidNetworkError "bias has a non-finite entry inf" instead of lowering ``min(x, 1)``
   (the ONNX importer maps |bound| > float32 max to None, the builder and the torch importer
   do not).
"""

import numpy as np

from polyrelu import Domain, enumerate_regions
from polyrelu.network.lowering import GraphBuilder


def _box(d):
    return Domain.box(-np.ones(d), np.ones(d))


def test_prelu_slope_one_entry_makes_no_kink():
    builder = GraphBuilder((2,))
    net = builder.network(builder.leaky_relu(builder.input, [1.0, 0.5]))
    reference = GraphBuilder((2,))
    x = reference.input
    # the same function: entry 0 passes through, entry 1 is a LeakyReLU of slope 0.5
    same = reference.network(reference.stack([reference.take(x, [0]),
                                              reference.leaky_relu(reference.take(x, [1]), 0.5)]))
    points = np.random.default_rng(0).uniform(-1, 1, size=(200, 2))
    np.testing.assert_allclose(net.forward(points), same.forward(points))
    assert len(enumerate_regions(same, _box(2))) == 2
    assert len(enumerate_regions(net, _box(2))) == 2  # got 4: a kink along x0 = 0


def test_clip_with_an_infinite_bound_is_the_one_sided_clip():
    builder = GraphBuilder((1,))
    net = builder.network(builder.clip(builder.input, -np.inf, 1.0))  # raises today
    np.testing.assert_allclose(net.forward([[3.0], [-5.0]]), [[1.0], [-5.0]])

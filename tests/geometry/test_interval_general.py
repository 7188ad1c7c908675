"""Interval bounds and slot status on general networks, against sampled forward passes."""

import numpy as np

from polyrelu import Domain
from polyrelu.geometry.interval import interval_bounds, neuron_status, output_bounds
from polyrelu.options import Options
from tests.networks import mixed_network


def test_bounds_contain_sampled_values():
    net = mixed_network(3)
    lower, upper = np.full(3, -1.0), np.full(3, 1.0)
    x = np.random.default_rng(0).uniform(lower, upper, size=(5000, 3))
    lo, hi = interval_bounds(net, lower, upper)
    z = net.preactivations(x)
    assert (z >= lo - 1e-12).all() and (z <= hi + 1e-12).all()
    out_lo, out_hi = output_bounds(net, lower, upper)
    y = net.forward(x)
    assert (y >= out_lo - 1e-12).all() and (y <= out_hi + 1e-12).all()


def test_status_is_sound_for_relu_and_window_slots():
    net = mixed_network(4)
    domain = Domain.box([-0.3] * 3, [0.3] * 3)
    status = neuron_status(net, domain, Options())
    x = np.random.default_rng(1).uniform(-0.3, 0.3, size=(5000, 3))
    pattern = net.activation_pattern(x)
    stable = np.ones(net.num_hidden, bool)
    stable[status.unstable] = False
    # a slot that is not unstable keeps the state the status gives it at every sample
    expected = np.broadcast_to(status.always_active, pattern.shape)
    assert (pattern[:, stable] == expected[:, stable]).all()
    assert net.window_slots().any()

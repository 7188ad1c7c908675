"""GraphBuilder against direct numpy evaluation of the same operations (the oracle)."""

import numpy as np
import pytest

from polyrelu.errors import SizeLimitError
from polyrelu.network.lowering import GraphBuilder

RNG = np.random.default_rng(7)
POINTS = RNG.uniform(-2, 2, size=(500, 4))


def _dense(builder, x, n_out, rng):
    """A random dense layer on tensor ``x`` and its numpy twin."""
    W, b = rng.normal(size=(n_out, x.size)), rng.normal(size=n_out)
    return builder.linear(x, W, b), (lambda v: v @ W.T + b)


def test_activations_match_numpy():
    rng = np.random.default_rng(1)
    builder = GraphBuilder((4,))
    t, f = _dense(builder, builder.input, 5, rng)
    slope = rng.uniform(0, 0.5, size=5)
    parts = [builder.relu(t), builder.leaky_relu(t, 0.1), builder.leaky_relu(t, slope),
             builder.abs(t), builder.clip(t, -0.5, 0.7), builder.clip(t, low=0.2),
             builder.clip(t, high=-0.1)]
    out, g = _dense(builder, builder.stack(parts), 3, rng)
    net = builder.network(out)
    z = f(POINTS)
    expected = np.concatenate([np.maximum(z, 0), np.where(z > 0, z, 0.1 * z),
                               np.where(z > 0, z, slope * z), np.abs(z), np.clip(z, -0.5, 0.7),
                               np.maximum(z, 0.2), np.minimum(z, -0.1)], axis=1)
    np.testing.assert_allclose(net.forward(POINTS), g(expected), rtol=1e-12, atol=1e-12)
    # kinks: ReLU 5, LeakyReLU 5 + 5, Abs 5, Clip two-sided 10, one-sided 5 + 5
    assert net.num_hidden == 40


def test_degenerate_units_make_no_kink():
    builder = GraphBuilder((4,))
    x = builder.input
    y = builder.add(builder.leaky_relu(x, 1.0), builder.clip(x, 0.3, 0.3))
    net = builder.network(y)
    assert net.num_hidden == 0
    np.testing.assert_allclose(net.forward(POINTS), POINTS + 0.3)


def test_residual_carries_values_across_layers():
    rng = np.random.default_rng(2)
    builder = GraphBuilder((4,))
    x = builder.input
    a, fa = _dense(builder, x, 4, rng)
    h1 = builder.relu(a)
    b, fb = _dense(builder, h1, 4, rng)
    h2 = builder.relu(b)
    y = builder.add(x, h2)  # skips two layers
    net = builder.network(y)
    expected = POINTS + np.maximum(fb(np.maximum(fa(POINTS), 0)), 0)
    np.testing.assert_allclose(net.forward(POINTS), expected, rtol=1e-12, atol=1e-12)
    assert net.num_hidden == 8  # only the ReLUs are kinks; the carried x are linear units


@pytest.mark.parametrize("after_relu", [True, False])
def test_max_windows(after_relu):
    rng = np.random.default_rng(3)
    builder = GraphBuilder((4,))
    t, f = _dense(builder, builder.input, 6, rng)
    source = builder.relu(t) if after_relu else t
    windows = [[0, 1, 2], [3, 4, -1], [5, -1, -1]]
    pooled = builder.max_windows(source, windows, (3,))
    y = builder.add(pooled, builder.scale(builder.take(pooled, [2, 0, 1]), 0.5))
    net = builder.network(y)
    z = f(POINTS)
    u = np.maximum(z, 0) if after_relu else z
    m = np.stack([u[:, :3].max(1), u[:, 3:5].max(1), u[:, 5]], axis=1)
    np.testing.assert_allclose(net.forward(POINTS), m + 0.5 * m[:, [2, 0, 1]], atol=1e-12)
    # windows after a ReLU read its units in the same layer; else they get their own
    assert len(net.layers) == 2
    assert net.layers[0].relu_units.size == (6 if after_relu else 0)
    pattern = net.activation_pattern(POINTS)
    position = net.layers[0].windows.shape[1]
    onehot = pattern[:, -3 * position:].reshape(-1, 3, position)
    assert (onehot.sum(axis=2) == 1).all()


def test_take_pads_and_permutes():
    builder = GraphBuilder((2, 2))
    index = np.pad(np.arange(4).reshape(2, 2).T, 1, constant_values=-1)
    y = builder.take(builder.input, index)
    net = builder.network(y)
    x = RNG.normal(size=(3, 4))
    expected = np.pad(x.reshape(3, 2, 2).transpose(0, 2, 1), ((0, 0), (1, 1), (1, 1)))
    np.testing.assert_allclose(net.forward(x), expected.reshape(3, -1))


def test_size_limit_before_allocating():
    builder = GraphBuilder((1000,), max_parameters=10_000)
    with pytest.raises(SizeLimitError, match="max_parameters"):
        builder.network(builder.relu(builder.input))

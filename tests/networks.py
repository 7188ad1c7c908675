"""Networks the tests share: closed-form constructions and hypothesis strategies."""

import numpy as np
from hypothesis import strategies as st

from polyrelu import Network
from polyrelu.network.lowering import GraphBuilder


def tent_network(k):
    """h(x) = 2 relu(x) - 4 relu(x - 1/2), composed k times."""
    weights = [np.array([[1.0], [1.0]])] + [np.array([[2.0, -4.0], [2.0, -4.0]])] * (k - 1)
    weights.append(np.array([[2.0, -4.0]]))
    biases = [np.array([0.0, -0.5])] * k + [np.zeros(1)]
    return Network(weights, biases)


@st.composite
def degenerate_networks(draw):
    """Small networks with integer-ish weights (coincident hyperplanes, degenerate vertices),
    duplicated neurons, zero rows and dead neurons."""
    d = draw(st.integers(1, 4))
    widths = draw(st.lists(st.integers(1, 8), min_size=1, max_size=3))
    sizes = [d, *widths, 1]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    integer = draw(st.booleans())
    weights, biases = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        if integer:
            W = rng.integers(-2, 3, size=(n_out, n_in)).astype(float)
            b = rng.integers(-2, 3, size=n_out) / 2.0
        else:
            W = rng.normal(size=(n_out, n_in))
            b = rng.normal(size=n_out) * 0.5
        if n_out > 1 and draw(st.booleans()):  # a duplicated (positively rescaled) neuron
            i, j = rng.choice(n_out, 2, replace=False)
            scale = draw(st.sampled_from([1.0, 2.0, 0.5]))
            W[j], b[j] = W[i] * scale, b[i] * scale
        if draw(st.booleans()):  # a zero row
            k = rng.integers(n_out)
            W[k], b[k] = 0.0, 0.0
        if draw(st.booleans()):  # a dead neuron
            k = rng.integers(n_out)
            b[k] = -100.0
        weights.append(W)
        biases.append(b)
    return Network(weights, biases)


def mixed_network(seed=0, d=3):
    """Dense, LeakyReLU, Clip, Abs, max windows after a ReLU and a residual addition."""
    rng = np.random.default_rng(seed)
    builder = GraphBuilder((d,))
    x = builder.input
    t = builder.linear(x, rng.normal(size=(6, d)), rng.normal(size=6) * 0.3)
    pooled = builder.max_windows(builder.relu(t), [[0, 1, 2], [3, 4, 5]], (2,))
    mixed = builder.stack([builder.leaky_relu(pooled, 0.2), builder.clip(t, -0.3, 0.4),
                           builder.abs(builder.take(t, [0, 2]))])
    s = builder.linear(mixed, rng.normal(size=(d, 10)), rng.normal(size=d) * 0.3)
    y = builder.linear(builder.add(x, builder.relu(s)), rng.normal(size=(2, d)))
    return builder.network(y)


def residual_pool_network(seed=0, width=6):
    """Two inputs: dense, ReLU, max windows of three, LeakyReLU and Clip units, and a
    residual addition of the input: every kind of kink on a plane."""
    rng = np.random.default_rng(seed)
    builder = GraphBuilder((2,))
    x = builder.input
    t = builder.linear(x, rng.normal(size=(width, 2)), rng.normal(size=width) * 0.5)
    pooled = builder.max_windows(builder.relu(t), np.arange(width).reshape(-1, 3),
                                 (width // 3,))
    s = builder.linear(builder.stack([pooled, builder.leaky_relu(t, 0.1)]),
                       rng.normal(size=(2, width // 3 + width)), rng.normal(size=2) * 0.3)
    y = builder.add(x, builder.clip(s, -0.5, 0.5))
    return builder.network(builder.linear(y, rng.normal(size=(1, 2))))

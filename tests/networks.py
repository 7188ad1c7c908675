"""Networks the tests share: closed-form constructions and hypothesis strategies."""

import numpy as np
from hypothesis import strategies as st

from polyrelu import Network


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

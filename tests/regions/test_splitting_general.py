"""The splitting enumerator on general networks (convolutions, max pooling, LeakyReLU,
Clip, Abs, residual additions) against the brute-force and planar oracles."""

import numpy as np
import pytest
from networks import mixed_network, residual_pool_network

from oracles import general_brute_force, general_forward, planar_cells
from polyrelu import Domain
from polyrelu.network.lowering import GraphBuilder
from polyrelu.options import Options
from polyrelu.regions.parallel import count_parallel
from polyrelu.regions.splitting import count_regions, enumerate_by_splitting


def conv_matrix(in_shape, kernels, padding):
    """The dense matrix of a 2-D convolution (stride 1) of a (C, H, W) input with kernels
    (O, C, kh, kw) and zero padding, built with loops: output (O, H', W') flattened."""
    channels, height, width = in_shape
    out_channels, _, kh, kw = kernels.shape
    out_h, out_w = height + 2 * padding - kh + 1, width + 2 * padding - kw + 1
    matrix = np.zeros((out_channels * out_h * out_w, channels * height * width))
    for o in range(out_channels):
        for i in range(out_h):
            for j in range(out_w):
                row = (o * out_h + i) * out_w + j
                for c in range(channels):
                    for a in range(kh):
                        for b in range(kw):
                            y, x = i + a - padding, j + b - padding
                            if 0 <= y < height and 0 <= x < width:
                                matrix[row, (c * height + y) * width + x] += kernels[o, c, a, b]
    return matrix, (out_channels, out_h, out_w)


def pool_windows(shape, size):
    """Windows of a size x size max pooling with stride 1 over (C, H, W), row by row."""
    channels, height, width = shape
    windows = []
    for c in range(channels):
        for i in range(height - size + 1):
            for j in range(width - size + 1):
                windows.append([(c * height + i + a) * width + j + b
                                for a in range(size) for b in range(size)])
    return np.array(windows), (channels, height - size + 1, width - size + 1)


def image_shape(d):
    """The input as a (1, H, W) image: 1x2, 1x3 or 2x2."""
    return {2: (1, 1, 2), 3: (1, 1, 3), 4: (1, 2, 2)}[d]


def conv_pool_network(seed, d, channels=1):
    """Convolution (2x2 kernels, padding 1), ReLU, 2x2 max pooling, a dense output."""
    rng = np.random.default_rng(seed)
    builder = GraphBuilder((d,))
    shape = image_shape(d)
    matrix, out_shape = conv_matrix(shape, rng.normal(size=(channels, 1, 2, 2)), 1)
    bias = np.repeat(rng.normal(size=channels) * 0.3, out_shape[1] * out_shape[2])
    t = builder.relu(builder.linear(builder.input, matrix, bias))
    windows, pooled = pool_windows(out_shape, 2)
    p = builder.max_windows(t, windows, (len(windows),))
    return builder.network(builder.linear(p, rng.normal(size=(1, len(windows)))))


def activation_network(kind, seed, d):
    """Dense, one kind of unit (leaky, clip, abs or a residual ReLU block), dense, ReLU."""
    rng = np.random.default_rng(seed)
    builder = GraphBuilder((d,))
    x = builder.input
    t = builder.linear(x, rng.normal(size=(3, d)), rng.normal(size=3) * 0.3)
    if kind == "leaky":
        h = builder.leaky_relu(t, 0.1)
    elif kind == "clip":
        h = builder.clip(t, -0.3, 0.4)
    elif kind == "abs":
        h = builder.abs(t)
    else:  # residual: x + relu(W x + b), then a second block
        h = builder.add(x, builder.relu(builder.linear(x, rng.normal(size=(d, d)),
                                                       rng.normal(size=d) * 0.3)))
    s = builder.relu(builder.linear(h, rng.normal(size=(2, h.size)), rng.normal(size=2) * 0.3))
    return builder.network(builder.linear(s, rng.normal(size=(1, 2))))


KINDS = ["conv", "leaky", "clip", "abs", "residual", "mixed"]


def make_network(kind, seed, d):
    """The test network of a kind (``mixed``: every kind at once; residual_pool_network on
    two inputs, mixed_network on more)."""
    if kind == "conv":
        return conv_pool_network(seed, d)
    if kind == "mixed":
        return residual_pool_network(seed) if d == 2 else mixed_network(seed, d)
    return activation_network(kind, seed, d)


def box(d):
    """The box [-1, 1]^d as a domain."""
    return Domain.box(-np.ones(d), np.ones(d))


def _min_radius(domain):
    return Options().min_radius_rel * domain.diameter


@pytest.mark.parametrize("kind, d", [
    pytest.param(kind, d, marks=[pytest.mark.slow] if (kind, d) == ("conv", 4) else [])
    for d in (2, 3, 4) for kind in KINDS if kind != "mixed"])
def test_splitting_finds_the_brute_force_regions(kind, d):
    _check_against_brute_force(make_network(kind, d, d), d)


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_splitting_finds_the_brute_force_regions_of_mixed_networks(seed):
    _check_against_brute_force(mixed_network(seed, 2), 2)
    _check_against_brute_force(residual_pool_network(seed), 2)


def _check_against_brute_force(network, d):
    """enumerate_by_splitting and count_regions against general_brute_force on [-1, 1]^d:
    the same patterns, maps agreeing with the forward pass, volumes summing to the box."""
    domain = box(d)
    complex_ = enumerate_by_splitting(network, domain)
    expected = general_brute_force(network, domain.lower, domain.upper, _min_radius(domain))
    assert {region.key for region in complex_} == set(expected)
    assert len(complex_) == len(expected)
    volume = 0.0
    for region in complex_:
        x = region.interior_point
        output, pattern = general_forward(network, x)
        assert np.array_equal(pattern, region.pattern)
        assert np.allclose(region.W_eff @ x + region.b_eff, output, atol=1e-9)
        assert np.all(region.polytope.A @ x <= region.polytope.b + 1e-12)
        volume += region.volume()
    assert volume == pytest.approx(2.0 ** d, rel=1e-6)
    count, _ = count_regions(network, domain)
    assert count == len(expected)


@pytest.mark.parametrize("kind", KINDS)
def test_planar_networks_match_the_planar_cells(kind):
    network = make_network(kind, 7, 2)
    domain = box(2)
    cells = planar_cells(network, domain.lower, domain.upper)
    complex_ = enumerate_by_splitting(network, domain)
    assert {region.key for region in complex_} == {np.packbits(p).tobytes() for _, p in cells}
    areas = {np.packbits(p).tobytes(): poly.area for poly, p in cells}
    for region in complex_:
        assert region.volume() == pytest.approx(areas[region.key],
                                                                     rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("kind", ["conv", "residual", "mixed"])
def test_parallel_count_is_the_single_process_count(kind):
    network = make_network(kind, 3, 3)
    domain = box(3)
    assert count_parallel(network, domain, jobs=2)[0] == count_regions(network, domain)[0]


def test_leaves_are_canonical_patterns():
    """Dead ReLU units read by one window tie: the lowest position wins, as for the walk."""
    builder = GraphBuilder((2,))
    x = builder.input
    t = builder.relu(builder.linear(x, [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [-1.0, 1.0]],
                                    [0.0, -1.0, -2.0, 0.0]))
    y = builder.max_windows(t, [[1, 2, 0, 3]], (1,))
    network = builder.network(builder.linear(y, [[1.0]]))
    domain = box(2)
    status_tol = np.full(network.num_hidden, 1e-9)
    complex_ = enumerate_by_splitting(network, domain)
    for region in complex_:
        canonical, _, _ = network.canonical_pattern(region.pattern, status_tol, domain.lower,
                                                    domain.upper)
        assert np.array_equal(canonical, region.pattern)
    expected = general_brute_force(network, domain.lower, domain.upper, _min_radius(domain))
    assert {region.key for region in complex_} == set(expected)

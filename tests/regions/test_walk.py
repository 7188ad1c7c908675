"""The graph walk against independent oracles: brute force, sampling, volumes, closed forms."""

import math

import networkx as nx
import numpy as np
import pytest
from networks import tent_network

from oracles import brute_force_regions, random_network, shared_facet_radius
from polyrelu import Domain, Network, Options, enumerate_regions

TINY = [
    ((1, 3, 2, 1), 0), ((1, 4, 3, 1), 1), ((2, 4, 1), 2), ((2, 3, 3, 1), 3),
    ((2, 5, 4, 2), 4), ((3, 4, 3, 1), 5), ((3, 6, 1), 6), ((4, 5, 3, 1), 7),
    ((2, 2, 2, 2, 1), 8), ((3, 3, 3, 2, 1), 9), ((8, 6, 4, 1), 10), ((9, 5, 3, 2), 11),
]


def _walk(weights, biases, lo, hi, **options):
    return enumerate_regions(Network(weights, biases), Domain.box(lo, hi),
                             options=Options(**options))


@pytest.mark.parametrize("facet_method", ["auto", "lp"])
@pytest.mark.parametrize("sizes,seed", TINY)
def test_same_regions_as_brute_force(sizes, seed, facet_method):
    weights, biases = random_network(sizes, np.random.default_rng(seed))
    d = sizes[0]
    lo, hi = -np.ones(d), np.ones(d)
    walked = _walk(weights, biases, lo, hi, facet_method=facet_method)
    truth = brute_force_regions(weights, biases, lo, hi, min_radius=1e-9 * 2 * math.sqrt(d))
    assert {r.key for r in walked} == set(truth)
    for region in walked:
        _, radius, W, c = truth[region.key]
        assert region.radius == pytest.approx(radius, rel=1e-6, abs=1e-9)
        np.testing.assert_allclose(region.W_eff, W, atol=1e-12)
        np.testing.assert_allclose(region.b_eff, c, atol=1e-12)


@pytest.mark.parametrize("sizes,seed", [
    ((2, 8, 8, 3), 11), ((3, 10, 10, 2), 12),
    pytest.param((4, 10, 8, 1), 13, marks=pytest.mark.slow),
    pytest.param((5, 8, 8, 1), 14, marks=pytest.mark.slow)])
def test_sampled_points_fall_in_exactly_one_region(sizes, seed):
    rng = np.random.default_rng(seed)
    weights, biases = random_network(sizes, rng)
    network = Network(weights, biases)
    d = sizes[0]
    complex_ = enumerate_regions(network, Domain.box(-np.ones(d), np.ones(d)))
    points = rng.uniform(-1, 1, size=(10_000, d))
    A = np.concatenate([r.polytope.A for r in complex_])
    b = np.concatenate([r.polytope.b for r in complex_])
    owner = np.repeat(np.arange(len(complex_)), [len(r.polytope.b) for r in complex_])
    violated = (points @ A.T - b) > 1e-12  # (n, total facets)
    inside = ~np.logical_or.reduceat(violated, np.r_[0, np.cumsum(
        [len(r.polytope.b) for r in complex_])[:-1]], axis=1)
    assert owner.size and np.all(inside.sum(axis=1) == 1)
    located = complex_.locate(points)
    np.testing.assert_array_equal(located, inside.argmax(axis=1))
    W = np.stack([complex_[i].W_eff for i in located])
    c = np.stack([complex_[i].b_eff for i in located])
    mapped = np.einsum("nmd,nd->nm", W, points) + c
    np.testing.assert_allclose(mapped, network.forward(points), rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_areas_sum_to_domain_area(seed):
    rng = np.random.default_rng(100 + seed)
    weights, biases = random_network((2, 12, 12, 12, 2), rng)
    lo, hi = np.array([-1.0, -0.5]), np.array([2.0, 1.5])
    complex_ = _walk(weights, biases, lo, hi)
    total = sum(region.volume() for region in complex_)
    assert total == pytest.approx(np.prod(hi - lo), rel=1e-9)


@pytest.mark.parametrize("k", range(1, 9))
def test_tent_map_has_two_to_the_k_regions(k):
    complex_ = enumerate_regions(tent_network(k), Domain.box([0.0], [1.0]))
    assert len(complex_) == 2**k
    assert len(complex_.affine_pieces()) == 2**k
    slopes = {abs(float(r.W_eff[0, 0])) for r in complex_}
    assert slopes == {2.0**k}
    lengths = sorted(region.volume() for region in complex_)
    assert lengths == pytest.approx([2.0**-k] * 2**k, rel=1e-12)


@pytest.mark.parametrize("n,N,seed", [(2, 8, 0), (2, 12, 1), (3, 7, 2), (3, 9, 3), (4, 7, 4)])
def test_one_hidden_layer_matches_zaslavsky(n, N, seed):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(N, n))
    b = rng.normal(size=N)
    corners = []
    for rows in __import__("itertools").combinations(range(N), n):
        corners.append(np.linalg.solve(W[list(rows)], -b[list(rows)]))
    reach = np.abs(corners).max() * 1.5 + 1
    complex_ = _walk([W, np.ones((1, N))], [b, np.zeros(1)], -reach * np.ones(n),
                     reach * np.ones(n))
    assert len(complex_) == sum(math.comb(N, k) for k in range(n + 1))


@pytest.mark.parametrize("sizes,seed", [
    ((2, 6, 6, 1), 21), pytest.param((3, 5, 4, 1), 22, marks=pytest.mark.slow)])
def test_edges_are_exactly_the_shared_facets(sizes, seed):
    weights, biases = random_network(sizes, np.random.default_rng(seed))
    d = sizes[0]
    complex_ = _walk(weights, biases, -np.ones(d), np.ones(d))
    graph = complex_.graph
    assert nx.is_connected(graph)
    assert complex_.stats["one_sided_edges"] == 0
    for u in range(len(complex_)):
        for v in range(u + 1, len(complex_)):
            if np.count_nonzero(complex_[u].pattern != complex_[v].pattern) > 3:
                continue
            share = shared_facet_radius(complex_[u], complex_[v]) > 1e-7
            assert share == graph.has_edge(u, v), (u, v)
    for u, v, neuron in graph.edges(data="kink"):
        assert complex_[u].pattern[neuron] != complex_[v].pattern[neuron]


def test_edge_neuron_is_the_facet_between_regions():
    weights, biases = random_network((2, 5, 5, 1), np.random.default_rng(5))
    complex_ = _walk(weights, biases, -np.ones(2), np.ones(2))
    for u, v, neuron in complex_.graph.edges(data="kink"):
        assert neuron in complex_[u].polytope.sources
        assert neuron in complex_[v].polytope.sources


def test_duplicate_dead_and_zero_neurons():
    # neuron 1 duplicates neuron 0, neuron 2 is dead on the box, neuron 3 is the zero map;
    # layer 2 neuron 0 is relu(z0) exactly, so it bends along neuron 0's line.
    W0 = np.array([[1.0, 1.0], [2.0, 2.0], [0.0, 1.0], [0.0, 0.0]])
    b0 = np.array([0.1, 0.2, -5.0, 0.0])
    W1 = np.array([[1.0, 0.0, 0.0, 0.0], [0.5, -1.0, 0.0, 3.0]])
    b1 = np.array([0.0, 0.3])
    W2 = np.array([[1.0, -2.0]])
    lo, hi = -np.ones(2), np.ones(2)
    walked = _walk([W0, W1, W2], [b0, b1, np.zeros(1)], lo, hi)
    truth = brute_force_regions([W0, W1, W2], [b0, b1, np.zeros(1)], lo, hi, 1e-9)
    assert {r.key for r in walked} == set(truth)
    assert sum(r.volume() for r in walked) == pytest.approx(4.0, rel=1e-12)


def test_general_polytope_domain_matches_box_restriction():
    weights, biases = random_network((2, 6, 6, 1), np.random.default_rng(30))
    triangle = Domain.polytope([[-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]], [1.0, 1.0, 1.0])
    complex_ = enumerate_regions(Network(weights, biases), triangle)
    assert sum(r.volume() for r in complex_) == pytest.approx(4.5, rel=1e-9)  # 3 x 3 / 2
    points = triangle.sample(2000, 1)
    assert np.all(complex_.locate(points) >= 0)


def test_step_across_a_facet_stays_strictly_inside_the_domain():
    """Regression: in [0.5, 3] with a kink at 1, the step from the facet x = 1 into the
    left region (half the right region's radius) used to land exactly on x = 0.5."""
    net = Network([[[1.0]], [[1.0]]], [[-1.0], [0.0]])
    complex_ = enumerate_regions(net, Domain.box([0.5], [3.0]))
    lengths = sorted(region.polytope.volume(region.interior_point) for region in complex_)
    assert lengths == pytest.approx([0.5, 2.0], abs=1e-12)


def test_coarse_radius_tolerance_keeps_every_centre_inside_its_region():
    """Regression: with min_radius_rel=1e-3, facets left out as thin made the Chebyshev LP
    unbounded (SolverError). Every centre must still have its region's pattern."""
    weights, biases = random_network([2, 16, 16, 1], np.random.default_rng(9))
    net = Network(weights, biases)
    complex_ = enumerate_regions(net, Domain.box([-1, -1], [1, 1]),
                                 options=Options(min_radius_rel=1e-3))
    centres = np.array([region.interior_point for region in complex_])
    patterns = net.activation_pattern(centres)
    for region, pattern in zip(complex_, patterns):
        assert np.array_equal(region.pattern, pattern)


def test_batched_affine_maps_match_the_loop_oracle():
    """KinkSet.affine_maps (all patterns of a batch at once) against oracles.layer_maps (a
    loop over neurons) on the patterns of sampled points."""
    from oracles import layer_maps
    from polyrelu.geometry.interval import neuron_status
    from polyrelu.regions.walk import KinkSet

    weights, biases = random_network((3, 5, 4, 2), np.random.default_rng(3))
    network, domain = Network(weights, biases), Domain.box(-np.ones(3), np.ones(3))
    kinks = KinkSet(network, neuron_status(network, domain, Options()))
    points = np.random.default_rng(4).uniform(-1, 1, size=(20, 3))
    patterns = network.activation_pattern(points)
    for pattern, maps in zip(patterns, kinks.affine_maps(patterns)):
        neurons, (W, c) = layer_maps(weights, biases, pattern)
        np.testing.assert_allclose(maps.pre_A, [a for a, _ in neurons], atol=1e-12)
        np.testing.assert_allclose(maps.pre_c, [k for _, k in neurons], atol=1e-12)
        np.testing.assert_allclose(maps.W_eff, W, atol=1e-12)
        np.testing.assert_allclose(maps.b_eff, c, atol=1e-12)


def test_a_pattern_said_canonical_is_its_canonical_form():
    """KinkSet.surely_canonical against Network.canonical_pattern: a unit whose map is zero
    on the domain up to a tiny positive bias is active in raw patterns but canonically
    inactive, so those patterns must not be taken as canonical."""
    from polyrelu.geometry.interval import neuron_status
    from polyrelu.regions.walk import KinkSet

    weights, biases = random_network((2, 4, 3, 1), np.random.default_rng(5))
    weights[1][1], biases[1][1] = 0.0, 1e-15  # identically (almost) zero on the domain
    network, domain = Network(weights, biases), Domain.box(-np.ones(2), np.ones(2))
    status = neuron_status(network, domain, Options())
    kinks = KinkSet(network, status)
    points = np.random.default_rng(6).uniform(-1, 1, size=(200, 2))
    z = network.preactivations(points)
    raw = kinks.patterns(z)
    surely = kinks.surely_canonical(z, raw)
    assert raw[:, 5].all() and not surely.any()
    weights[1][1], biases[1][1] = 1.0, 0.0  # no zero unit: most patterns are canonical
    network = Network(weights, biases)
    status = neuron_status(network, domain, Options())
    kinks = KinkSet(network, status)
    z = network.preactivations(points)
    raw = kinks.patterns(z)
    surely = kinks.surely_canonical(z, raw)
    assert surely.mean() > 0.9
    for pattern, sure in zip(raw, surely):
        canonical, _, _ = network.canonical_pattern(pattern, status.zero_tol, domain.lower,
                                                    domain.upper)
        assert not sure or np.array_equal(canonical, pattern)

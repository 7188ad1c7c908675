"""Exact 2-D slices, checked against the graph-walk engine, brute force and forward passes."""

import time

import numpy as np
import pytest
import shapely

from oracles import brute_force_regions, random_network
from polyrelu import Domain, InvalidDomainError, Network, Options, enumerate_regions
from polyrelu.analysis.paths import Segment, path_pieces
from polyrelu.planar import decision_boundary, slice_regions, slice_through
from polyrelu.regions.region import pattern_key
from polyrelu.regions.splitting import iter_leaves

BOX = ([-1.0, -1.0], [1.0, 1.0])


def by_pattern(plane):
    return {pattern_key(piece.pattern): piece for piece in plane}


def assert_same_as_engine(plane, complex_):
    """Same patterns, areas to 1e-9 relative, same affine maps, same adjacency."""
    pieces = by_pattern(plane)
    assert set(pieces) == {region.key for region in complex_}
    for region in complex_:
        piece = pieces[region.key]
        assert piece.polygon.area == pytest.approx(region.volume(), rel=1e-9)
        np.testing.assert_allclose(piece.W_eff, region.W_eff, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(piece.b_eff, region.b_eff, rtol=1e-9, atol=1e-12)
    walked = {(frozenset((complex_[u].key, complex_[v].key)), n)
              for u, v, n in complex_.graph.edges(data="kink")}
    sliced = {(frozenset((pattern_key(plane[u].pattern), pattern_key(plane[v].pattern))), n)
              for u, v, n in plane.graph.edges(data="kink")}
    assert sliced == walked


def assert_matches_forward_pass(plane, n=2000, seed=0):
    """Random slice points: the polygon holding each one has its pattern and its map."""
    x0, y0, x1, y1 = plane.domain.bounds
    t = np.random.default_rng(seed).uniform([x0, y0], [x1, y1], size=(n, 2))
    t = t[shapely.contains_xy(plane.domain, t[:, 0], t[:, 1])]
    tree = shapely.STRtree([piece.polygon for piece in plane])
    points, holders = tree.query(shapely.points(t), predicate="within")
    assert np.array_equal(np.sort(points), np.arange(len(t)))  # each point in exactly one piece
    x = plane.to_input(t[points])
    outputs = plane.network.forward(x)
    patterns = plane.network.activation_pattern(x)
    for row, (p, h) in enumerate(zip(points, holders)):
        piece = plane[h]
        np.testing.assert_allclose(piece.apply(t[p])[0], outputs[row], rtol=1e-9, atol=1e-9)
        assert np.array_equal(piece.pattern, patterns[row])


@pytest.mark.parametrize("sizes,seed", [((2, 8, 6, 1), 0), ((2, 12, 10, 3), 1),
                                        ((2, 6, 6, 6, 2), 2), ((2, 30, 2), 3)])
def test_two_input_slice_equals_full_enumeration(sizes, seed):
    net = Network(*random_network(sizes, np.random.default_rng(seed)))
    plane = slice_regions(net, [0, 0], np.eye(2), BOX)
    assert_same_as_engine(plane, enumerate_regions(net, Domain.box(*BOX)))
    assert plane.area() == pytest.approx(4.0, rel=1e-12)
    assert_matches_forward_pass(plane)


def test_bundled_moons_network_over_its_box():
    from polyrelu import load_network

    net = load_network("examples/nets/moons_2_16_16_2.npz")
    box = ([-2.0, -1.5], [3.0, 2.0])
    plane = slice_regions(net, [0, 0], np.eye(2), box)
    assert_same_as_engine(plane, enumerate_regions(net, Domain.box(*box)))


def test_tiny_network_equals_brute_force_over_all_patterns():
    weights, biases = random_network((2, 4, 3, 1), np.random.default_rng(7))
    plane = slice_regions(Network(weights, biases), [0, 0], np.eye(2), BOX)
    found = brute_force_regions(weights, biases, *BOX, min_radius=1e-9)
    assert set(by_pattern(plane)) == set(found)


def test_polygon_slice_equals_enumeration_over_the_polytope():
    net = Network(*random_network((2, 10, 8, 2), np.random.default_rng(4)))
    triangle = shapely.Polygon([(-1, -1), (1.5, -0.5), (0, 1.2)])
    plane = slice_regions(net, [0, 0], np.eye(2), triangle)
    corners = np.asarray(triangle.exterior.coords)[:-1]
    normals = np.roll(corners, -1, axis=0) - corners
    A = np.column_stack([normals[:, 1], -normals[:, 0]])  # outward: the triangle is clockwise
    A = A * np.sign(np.einsum("ij,ij->i", A, corners - corners.mean(axis=0)))[:, None]
    domain = Domain.polytope(A, np.einsum("ij,ij->i", A, corners))
    assert_same_as_engine(plane, enumerate_regions(net, domain))
    assert plane.area() == pytest.approx(triangle.area, rel=1e-12)


@pytest.mark.parametrize("d,seed", [(5, 0), (16, 1)])
def test_slice_of_a_higher_dimensional_network(d, seed):
    """Oracle: the engine on the network composed by hand with t -> x0 + U t."""
    rng = np.random.default_rng(seed)
    weights, biases = random_network((d, 12, 12, 4), rng)
    x0, U = rng.normal(size=d), rng.normal(size=(d, 2))
    plane = slice_regions(Network(weights, biases), x0, U, BOX)
    composed = Network([weights[0] @ U, *weights[1:]],
                       [weights[0] @ x0 + biases[0], *biases[1:]])
    assert_same_as_engine(plane, enumerate_regions(composed, Domain.box(*BOX)))
    assert_matches_forward_pass(plane)


def test_coincident_neurons_leave_a_sliver_that_both_methods_skip():
    # neurons 0 and 1 cut along x = 0 and x = 1e-13: the strip between them is a sliver
    net = Network([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [[1.0, -1.0, 1.0]]],
                  [[0.0, -1e-13, 0.0], [0.0]])
    plane = slice_regions(net, [0, 0], np.eye(2), BOX)
    complex_ = enumerate_regions(net, Domain.box(*BOX))
    assert plane.stats["thin_pieces"] >= 1
    assert len(plane) == len(complex_) == 4
    assert set(by_pattern(plane)) == {r.key for r in complex_}
    assert plane.area() + plane.stats["thin_area"] == pytest.approx(4.0, rel=1e-12)


def test_coarser_tolerance_drops_the_same_thin_regions_as_the_splitting_enumerator():
    net = Network(*random_network((2, 10, 10, 1), np.random.default_rng(1)))
    options = Options(min_radius_rel=5e-3)
    plane = slice_regions(net, [0, 0], np.eye(2), BOX, options=options)
    leaves = iter_leaves(net, Domain.box(*BOX), options=options)
    assert plane.stats["thin_pieces"] > 10
    assert set(by_pattern(plane)) == {pattern_key(leaf.pattern) for leaf in leaves}
    assert plane.area() + plane.stats["thin_area"] == pytest.approx(4.0, rel=1e-12)


def test_slice_of_a_2_64_64_10_network_takes_under_5_seconds():
    """The issue's performance target (benchmarks/bench_slice.py compares with the engine)."""
    rng = np.random.default_rng(0)
    sizes = (2, 64, 64, 10)
    weights = [rng.uniform(-1, 1, size=(o, i)) / np.sqrt(i) for i, o in zip(sizes, sizes[1:])]
    biases = [rng.uniform(-1, 1, size=o) / np.sqrt(i) for i, o in zip(sizes, sizes[1:])]
    start = time.perf_counter()
    plane = slice_regions(Network(weights, biases), [0, 0], np.eye(2), BOX)
    assert time.perf_counter() - start < 5.0
    assert len(plane) > 1000
    assert plane.area() == pytest.approx(4.0, rel=1e-12)


def classifier_slice(seed=5, d=8, classes=4):
    rng = np.random.default_rng(seed)
    net = Network(*random_network((d, 16, 16, classes), rng, bias_scale=0.1))
    return slice_through(net, rng.normal(size=(3, d)), margin=0.5)


def test_decision_boundary_segments_are_where_the_top_two_logits_tie():
    plane = classifier_slice()
    boundary = decision_boundary(plane)
    assert len(boundary) > 5
    weights = np.random.default_rng(0).uniform(size=(len(boundary), 5))
    for segment, (i, k), piece, mix in zip(boundary.segments, boundary.classes,
                                           boundary.pieces, weights):
        t = segment[0] + mix[:, None] * (segment[1] - segment[0])
        logits = plane.network.forward(plane.to_input(t))
        scale = np.abs(logits).max()
        np.testing.assert_allclose(logits[:, i], logits[:, k], atol=1e-9 * scale)
        top_two = np.sort(logits, axis=1)[:, -2:]
        np.testing.assert_allclose(logits[:, i], top_two[:, 1], atol=1e-9 * scale)
        assert np.all(plane[piece].polygon.buffer(1e-9).contains(shapely.points(t)))


def test_decision_boundary_is_complete_along_sampled_lines():
    """Wherever the predicted class changes between close samples, a segment is near."""
    plane = classifier_slice()
    lines = shapely.MultiLineString([s for s in decision_boundary(plane).segments])
    x0, y0, x1, y1 = plane.domain.bounds
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(40):
        a, b = rng.uniform([x0, y0], [x1, y1], size=(2, 2))
        t = a + np.linspace(0, 1, 2001)[:, None] * (b - a)
        winner = np.argmax(plane.network.forward(plane.to_input(t)), axis=1)
        step = np.linalg.norm(b - a) / 2000
        for j in np.flatnonzero(winner[1:] != winner[:-1]):
            assert lines.distance(shapely.Point((t[j] + t[j + 1]) / 2)) <= step
            checked += 1
    assert checked > 10


def test_single_logit_boundary_is_the_zero_level_set():
    net = Network(*random_network((2, 10, 1), np.random.default_rng(3)))
    plane = slice_regions(net, [0, 0], np.eye(2), BOX)
    boundary = decision_boundary(plane)
    assert len(boundary) > 0
    middles = boundary.segments.mean(axis=1)
    np.testing.assert_allclose(net.forward(middles)[:, 0], 0.0, atol=1e-12)


def test_slice_through_three_points():
    rng = np.random.default_rng(2)
    net = Network(*random_network((6, 8, 3), rng))
    points = rng.normal(size=(3, 6))
    plane = slice_through(net, points, margin=0.1)
    t = plane.coordinates(points)
    np.testing.assert_allclose(plane.to_input(t), points, atol=1e-12)
    np.testing.assert_allclose(plane.directions.T @ plane.directions, np.eye(2), atol=1e-12)
    assert np.all(shapely.contains_xy(plane.domain.buffer(-0.05), t[:, 0], t[:, 1]))
    assert abs(plane.area() - plane.domain.area) <= plane.stats["thin_area"] + 1e-12


def test_pieces_crossed_by_a_segment_match_dense_sampling():
    plane = classifier_slice()
    x0, y0, x1, y1 = plane.domain.bounds
    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = rng.uniform([x0, y0], [x1, y1], size=(2, 2))
        t = a + np.linspace(0, 1, 20001)[:, None] * (b - a)
        patterns = plane.network.activation_pattern(plane.to_input(t))
        runs = 1 + int(np.sum(np.any(patterns[1:] != patterns[:-1], axis=1)))
        crossed = plane.crossed_pieces(a, b)
        assert len(crossed) == runs
        keys = [pattern_key(p) for p in patterns]
        first_seen = [k for j, k in enumerate(keys) if j == 0 or k != keys[j - 1]]
        assert [pattern_key(plane[i].pattern) for i in crossed] == first_seen


def test_exact_1d_segment_counts_agree_with_the_2d_slice_containing_it():
    """The 1-D partition (polyrelu.analysis.paths, breakpoints solved per layer) and the 2-D slice
    (shapely polygons) are computed independently; along any segment of the plane they
    must cross the same regions in the same order."""
    rng = np.random.default_rng(11)
    weights, biases = random_network([5, 12, 12, 3], rng)
    net = Network(weights, biases)
    origin = rng.normal(size=5) * 0.2
    directions = np.linalg.qr(rng.normal(size=(5, 2)))[0]
    plane = slice_regions(net, origin, directions, ([-1, -1], [1, 1]))
    for _ in range(8):
        a, b = rng.uniform(-1, 1, size=(2, 2))
        pieces = path_pieces(net, Segment(plane.to_input(a[None])[0], plane.to_input(b[None])[0]))
        crossed = plane.crossed_pieces(a, b)
        assert [pattern_key(p.pattern) for p in pieces] == \
            [pattern_key(plane[i].pattern) for i in crossed]


@pytest.mark.parametrize("origin,directions,bounds,message", [
    ([0, 0, 0], np.eye(2), BOX, "origin has 3 values"),
    ([0, 0], np.eye(3), BOX, "directions must have shape (2, 2)"),
    ([0, 0], [[1, 2], [2, 4]], BOX, "linearly dependent"),
    ([0, 0], np.eye(2), ([0, 0], [1, 0]), "not below upper bound"),
    ([0, 0], np.eye(2), ([0, 0, 0], [1, 1, 1]), "must be 2-vectors"),
    ([0, 0], np.eye(2), shapely.Polygon([(0, 0), (2, 0), (1, 0.2), (1, 2)]), "convex"),
    ([0, 0], np.eye(2), "box", "(lower, upper) pair"),
])
def test_bad_slices_give_clear_errors(origin, directions, bounds, message):
    net = Network(*random_network((2, 3, 1), np.random.default_rng(0)))
    with pytest.raises(InvalidDomainError, match=message.replace("(", r"\(").replace(")", r"\)")):
        slice_regions(net, origin, directions, bounds)


def test_collinear_points_are_refused():
    net = Network(*random_network((3, 3, 1), np.random.default_rng(0)))
    with pytest.raises(InvalidDomainError, match="collinear"):
        slice_through(net, [[0, 0, 0], [1, 1, 1], [2, 2, 2]])

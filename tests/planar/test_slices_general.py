"""Exact 2-D slices of general networks (ReLU and linear units, max windows, residual
carries) against independent oracles: the shapely planar oracle, an LP brute force with
qhull areas, and forward passes."""

import numpy as np
import pytest
from networks import mixed_network, residual_pool_network
from scipy.spatial import ConvexHull, HalfspaceIntersection

from oracles import general_brute_force, general_forward, general_rows, planar_cells
from polyrelu import Network
from polyrelu.network.layers import Layer
from polyrelu.network.lowering import GraphBuilder
from polyrelu.planar.boundary import decision_boundary
from polyrelu.planar.slices import plane_network, plane_through, slice_regions, slice_through
from polyrelu.regions.region import pattern_key

BOX = (np.array([-2.0, -2.0]), np.array([2.0, 2.0]))


def mixed_on(builder, x, seed, d):
    """:func:`networks.mixed_network`'s layers (same random draws) applied to ``x``."""
    rng = np.random.default_rng(seed)
    t = builder.linear(x, rng.normal(size=(6, d)), rng.normal(size=6) * 0.3)
    pooled = builder.max_windows(builder.relu(t), [[0, 1, 2], [3, 4, 5]], (2,))
    mixed = builder.stack([builder.leaky_relu(pooled, 0.2), builder.clip(t, -0.3, 0.4),
                           builder.abs(builder.take(t, [0, 2]))])
    s = builder.linear(mixed, rng.normal(size=(d, 10)), rng.normal(size=d) * 0.3)
    return builder.network(builder.linear(builder.add(x, builder.relu(s)),
                                          rng.normal(size=(2, d))))


def composed_plane(seed, d, origin, directions):
    """The mixed network on the plane, built by GraphBuilder from a 2-input graph (the
    plane's parametrisation as its first linear map), not by :func:`plane_network`."""
    builder = GraphBuilder((2,))
    return mixed_on(builder, builder.linear(builder.input, directions, origin), seed, d)


def by_pattern(plane):
    return {pattern_key(piece.pattern): piece for piece in plane}


def assert_equals_cells(plane, cells, box_area):
    """Same patterns, one piece each, same areas as the shapely oracle's cells."""
    assert sum(polygon.area for polygon, _ in cells) == pytest.approx(box_area, rel=1e-9), \
        "the oracle's cells do not tile the box: the oracle is wrong on this case"
    pieces = by_pattern(plane)
    assert len(pieces) == len(plane) == len(cells)
    for polygon, pattern in cells:
        piece = pieces[pattern_key(pattern)]
        assert piece.polygon.area == pytest.approx(polygon.area, rel=1e-6, abs=1e-8)
        assert piece.polygon.symmetric_difference(polygon).area < 1e-7


def lp_regions(network, lower, upper):
    """Patterns and areas of every region by the LP brute force, areas by qhull."""
    found = {}
    for key, (centre, _) in general_brute_force(network, lower, upper, 1e-7).items():
        pattern = np.unpackbits(np.frombuffer(key, np.uint8), count=network.num_hidden)
        rows, rhs, _ = general_rows(network, pattern.astype(bool))
        A = np.vstack([np.reshape(rows, (-1, 2)), np.eye(2), -np.eye(2)])
        b = np.concatenate([rhs, upper, -lower])
        keep = np.linalg.norm(A, axis=1) > 1e-12
        hull = HalfspaceIntersection(np.column_stack([A[keep], -b[keep]]), centre)
        found[key] = ConvexHull(hull.intersections).volume
    return found


def assert_equals_lp_regions(plane, found):
    pieces = by_pattern(plane)
    assert len(pieces) == len(plane)
    assert set(pieces) == set(found)
    for key, area in found.items():
        assert pieces[key].polygon.area == pytest.approx(area, rel=1e-9, abs=1e-12)


def assert_matches_forward_pass(plane, per_piece=4, seed=0):
    """Points inside every piece (convex combinations of its vertices): the forward pass
    of the network on its own input space has the piece's pattern and map."""
    rng = np.random.default_rng(seed)
    for piece in plane:
        weights = rng.dirichlet(np.ones(len(piece.vertices)), size=per_piece)
        t = weights @ piece.vertices
        for point, x in zip(t, plane.to_input(t)):
            output, pattern = general_forward(plane.network, x)
            np.testing.assert_array_equal(pattern, piece.pattern)
            np.testing.assert_allclose(output, piece.apply(point)[0], rtol=1e-9, atol=1e-9)


def assert_tiles(plane, area):
    assert plane.area() + plane.stats["thin_area"] == pytest.approx(area, rel=1e-12)
    assert plane.stats["thin_area"] < 1e-12 * area


# -- a 2-input network's own plane ---------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 3, 4])
def test_own_plane_equals_planar_cells(seed):
    network = residual_pool_network(seed)
    plane = slice_regions(network, [0.0, 0.0], np.eye(2), BOX)
    assert_equals_cells(plane, planar_cells(network, *BOX), 16.0)
    assert_tiles(plane, 16.0)
    assert_matches_forward_pass(plane)


@pytest.mark.parametrize("seed", [1, 2])
def test_own_plane_equals_lp_brute_force(seed):
    """Seeds where the shapely oracle's cells overlap (identical kink lines: a LeakyReLU
    reuses its ReLU's pre-activation); the LP brute force is exact there."""
    network = residual_pool_network(seed)
    plane = slice_regions(network, [0.0, 0.0], np.eye(2), BOX)
    assert_equals_lp_regions(plane, lp_regions(network, *BOX))
    assert_tiles(plane, 16.0)


# -- slices through three points of 3- and 4-input networks -----------------------------------

@pytest.mark.parametrize("d, seed", [(3, 2), (4, 3)])
def test_slice_through_points_equals_composed_planar_cells(d, seed):
    network = mixed_network(seed, d)
    points = np.random.default_rng(seed + 10).normal(size=(3, d))
    origin, directions, (lower, upper) = plane_through(points)
    plane = slice_regions(network, origin, directions, (lower, upper))
    composed = composed_plane(seed, d, origin, directions)
    assert composed.slot_sizes == plane.plane.slot_sizes
    assert_equals_cells(plane, planar_cells(composed, lower, upper),
                        float(np.prod(upper - lower)))
    assert_matches_forward_pass(plane)


@pytest.mark.parametrize("d, seed", [(3, 0), (4, 1)])
def test_slice_through_points_equals_composed_lp_regions(d, seed):
    network = mixed_network(seed, d)
    points = np.random.default_rng(seed + 10).normal(size=(3, d)) * 0.3
    origin, directions, box = plane_through(points, margin=0.0)
    plane = slice_regions(network, origin, directions, box)
    assert_equals_lp_regions(plane, lp_regions(composed_plane(seed, d, origin, directions),
                                               *box))
    assert_matches_forward_pass(plane)


@pytest.mark.parametrize("seed", range(3))
def test_slices_tile_and_match_forward_passes(seed):
    network = mixed_network(seed, 4)
    plane = slice_through(network, np.random.default_rng(seed).normal(size=(3, 4)))
    x0, y0, x1, y1 = plane.domain.bounds
    assert_tiles(plane, (x1 - x0) * (y1 - y0))
    assert_matches_forward_pass(plane, per_piece=2, seed=seed)
    centres = np.array([piece.polygon.representative_point().coords[0] for piece in plane])
    np.testing.assert_array_equal(plane.locate(centres), np.arange(len(plane)))


def test_plane_network_keeps_the_layer_structure():
    network = mixed_network(0, 3)
    origin, directions = np.array([0.1, -0.2, 0.3]), np.linalg.qr(np.ones((3, 2)) + np.eye(3, 2))[0]
    plane = plane_network(network, origin, directions)
    assert plane.slot_sizes == network.slot_sizes and not plane.is_relu_mlp
    for mine, theirs in zip(plane.layers, network.layers):
        np.testing.assert_array_equal(mine.units, theirs.units)
        np.testing.assert_array_equal(mine.windows, theirs.windows)
    t = np.random.default_rng(1).normal(size=(20, 2))
    np.testing.assert_allclose(plane.forward(t), network.forward(origin + t @ directions.T),
                               rtol=1e-12, atol=1e-12)


def test_adjacency_edges_name_the_kink_that_changes():
    """Across an edge on kink k, the two patterns differ at k's slots: a ReLU slot, or
    the two positions of a window tie."""
    network = residual_pool_network(0)
    plane = slice_regions(network, [0.0, 0.0], np.eye(2), BOX)
    N, ties = network.num_hidden, 0
    assert plane.graph.number_of_edges() > len(plane) - 1
    for u, v, kink in plane.graph.edges(data="kink"):
        a, b = plane[u].pattern, plane[v].pattern
        slots = [kink] if kink < N else list(network.window_pairs[kink - N])
        ties += kink >= N
        assert np.any(a[slots] != b[slots])
    assert ties > 0


def test_window_ties_go_to_the_lowest_position():
    """Two identical window entries: one cell, the first position's."""
    layer = Layer.build([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0.0, 0.0, 0.0],
                        units=[0, 0, 0], keep=[], windows=[[0, 1, 2]])
    network = Network.from_layers([layer, Layer.affine([[1.0]], [0.0])])
    plane = slice_regions(network, [0.0, 0.0], np.eye(2), BOX)
    assert sorted(piece.pattern.tolist() for piece in plane) == [
        [False, False, True], [True, False, False]]
    assert plane.area() == pytest.approx(16.0)
    assert plane.graph.number_of_edges() == 1


def test_decision_boundary_of_a_general_network():
    network = mixed_network(1, 3)
    plane = slice_through(network, np.random.default_rng(4).normal(size=(3, 3)))
    boundary = decision_boundary(plane)
    assert len(boundary) > 0
    middles = plane.to_input(boundary.segments.mean(axis=1))
    logits = network.forward(middles)
    np.testing.assert_allclose(logits[:, 0], logits[:, 1], atol=1e-9)


def test_picture_of_a_general_slice(tmp_path):
    pytest.importorskip("matplotlib")
    from polyrelu.planar.pictures import slice_picture

    network = residual_pool_network(0)
    plane = slice_regions(network, [0.0, 0.0], np.eye(2), BOX)
    last = network.num_preactivations - 1  # a linear unit of the last hidden layer
    path = slice_picture(plane, tmp_path / "general.png", color="neuron", neuron=last,
                         boundary=True, graph=True)
    assert path.stat().st_size > 1000

"""polyrelu.topology against closed forms (hand-built networks) and against an independent
computation: connected components and holes of the same set on a fine grid
(scipy.ndimage), on random 2-D networks, at levels where the grid's answer does not
change nearby."""

import numpy as np
import pytest
from scipy import ndimage

from oracles import random_network
from polyrelu import Domain, Network, enumerate_regions
from polyrelu.network.lowering import GraphBuilder
from polyrelu.topology import barcode, betti_numbers, critical_points


def _l1_distance(builder, x, centre):
    shifted = builder.linear(x, np.eye(2), -np.asarray(centre, dtype=float))
    return builder.linear(builder.abs(shifted), np.ones((1, 2)))


def _min(builder, p, q):
    """min(p, q) = p - relu(p - q)."""
    gap = builder.relu(builder.linear(builder.stack([p, q]), np.array([[1.0, -1.0]])))
    return builder.linear(builder.stack([p, gap]), np.array([[1.0, -1.0]]))


def ring_network():
    """| |x|_1 - 2 |."""
    builder = GraphBuilder((2,))
    norm = _l1_distance(builder, builder.input, [0.0, 0.0])
    return builder.network(builder.abs(builder.linear(norm, np.eye(1), [-2.0])))


def two_disks_network(a=(-3.0, 0.0), b=(3.0, 0.0)):
    """min(|x - a|_1, |x - b|_1)."""
    builder = GraphBuilder((2,))
    x = builder.input
    return builder.network(_min(builder, _l1_distance(builder, x, a),
                                _l1_distance(builder, x, b)))


def two_holes_network():
    """Outputs (0.5, 1 - min(|x - a|_1, |x - b|_1)): output 0 wins outside two diamonds."""
    builder = GraphBuilder((2,))
    x = builder.input
    near = _min(builder, _l1_distance(builder, x, (-3.0, 0.0)),
                _l1_distance(builder, x, (3.0, 0.0)))
    return builder.network(builder.linear(near, np.array([[0.0], [-1.0]]), [0.5, 1.0]))


BOX = Domain.box([-6.0, -6.0], [6.0, 6.0])


def test_the_ring_has_one_hole():
    regions = enumerate_regions(ring_network(), BOX)
    assert betti_numbers(regions, level=1.0) == (1, 1)
    assert betti_numbers(regions, level=0.0) == (1, 1)  # the diamond |x|_1 = 2 itself
    assert betti_numbers(regions, level=3.0) == (1, 0)  # the disk |x|_1 <= 5
    # |x|_1 <= 0.5, and the box outside |x|_1 < 3.5 (a ring around the first)
    assert betti_numbers(regions, superlevel=1.5) == (2, 1)


def test_two_far_disks():
    regions = enumerate_regions(two_disks_network(), BOX)
    assert betti_numbers(regions, level=1.0) == (2, 0)
    assert betti_numbers(regions, level=3.0) == (1, 0)  # the disks touch at the origin
    assert betti_numbers(regions, superlevel=1.0) == (1, 2)


def test_a_decision_region_with_two_holes():
    regions = enumerate_regions(two_holes_network(), BOX)
    assert betti_numbers(regions, winner=0) == (1, 2)
    assert betti_numbers(regions, winner=1) == (2, 0)


def test_one_dimensional_sets():
    # | |x| - 1 | on [-2, 2]
    net = Network([[[1.0], [-1.0]], [[1.0, 1.0], [-1.0, -1.0]], [[1.0, 1.0]]],
                  [[0.0, 0.0], [-1.0, 1.0], [0.0]])
    regions = enumerate_regions(net, Domain.box([-2.0], [2.0]))
    assert betti_numbers(regions, level=0.0) == (2,)
    assert betti_numbers(regions, level=1.0) == (1,)
    assert betti_numbers(regions, superlevel=0.75) == (3,)
    assert betti_numbers(regions, superlevel=1.5) == (0,)


# ------------------------------------------------------------------ the grid oracle

GRID = 500


def _grid_values(network, lower, upper, output=None):
    axes = [np.linspace(lo, hi, GRID) for lo, hi in zip(lower, upper)]
    xx, yy = np.meshgrid(*axes, indexing="ij")
    values = network.forward(np.column_stack([xx.ravel(), yy.ravel()]))
    return values if output is None else values[:, output].reshape(GRID, GRID)


def _grid_betti(inside):
    """(components, holes) of a set of grid cells: 8-connected set, 4-connected complement,
    holes are complement components away from the border."""
    _, b0 = ndimage.label(inside, structure=np.ones((3, 3)))
    outside, count = ndimage.label(~inside)
    border = np.unique(np.concatenate([outside[0], outside[-1], outside[:, 0],
                                       outside[:, -1]]))
    return b0, count - np.count_nonzero(border > 0)


def _stable_levels(values, count=3, ends=()):
    """Levels where the grid's Betti numbers are the same a little below and above, and
    (the grid cannot see a component thinner than its spacing) no bar of the barcode
    ``ends`` within that distance."""
    spread = values.max() - values.min()
    ends = np.array([e for e in ends if np.isfinite(e)])
    levels = []
    for c in np.quantile(values, np.linspace(0.1, 0.9, 9)):
        if len(ends) and np.abs(ends - c).min() < 0.02 * spread:
            continue
        answers = {_grid_betti(values <= c + t * spread) for t in (-0.02, 0.0, 0.02)}
        if len(answers) == 1:
            levels.append(float(c))
    return levels[:count]


def _ends(bars, sign=1.0):
    return [sign * end for bar in bars for end in (bar.birth, bar.death)]


@pytest.mark.parametrize("seed", range(20))
def test_sublevel_sets_equal_the_grid_on_random_networks(seed):
    rng = np.random.default_rng(seed)
    weights, biases = random_network((2, 8, 8, 1), rng)
    network = Network(weights, biases)
    lower, upper = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    regions = enumerate_regions(network, Domain.box(lower, upper))
    values = _grid_values(network, lower, upper, output=0)
    bars = barcode(regions)
    levels = _stable_levels(values, ends=_ends(bars))
    assert levels, "no level away from a critical one on this net"
    for c in levels:
        ours = betti_numbers(regions, level=c)
        assert ours == _grid_betti(values <= c)
        from_bars = tuple(sum(1 for b in bars if b.dim == k and b.birth <= c < b.death)
                          for k in range(2))
        assert from_bars == ours


def bump_network(rng, count=5):
    """A sum of random tents ``h_i relu(r_i - |x - p_i|_1)`` plus a random MLP's output: local
    maxima inside the box, so sublevel sets with holes."""
    builder = GraphBuilder((2,))
    x = builder.input
    tents = [builder.relu(builder.linear(_l1_distance(builder, x, rng.uniform(-0.7, 0.7, 2)),
                                         -np.eye(1), [rng.uniform(0.2, 0.5)]))
             for _ in range(count)]
    weights, biases = random_network((2, 6, 1), rng)
    hidden = builder.relu(builder.linear(x, weights[0], biases[0]))
    mlp = builder.linear(hidden, 0.1 * weights[1], 0.1 * biases[1])
    heights = np.concatenate([rng.uniform(0.5, 2.0, count), [1.0]])
    return builder.network(builder.linear(builder.stack(tents + [mlp]), heights[None, :]))


@pytest.mark.parametrize("seed", range(10))
def test_sublevel_sets_with_holes_equal_the_grid(seed):
    rng = np.random.default_rng(300 + seed)
    network = bump_network(rng)
    lower, upper = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    regions = enumerate_regions(network, Domain.box(lower, upper))
    values = _grid_values(network, lower, upper, output=0)
    tested = 0
    for sign, key in ((1.0, "level"), (-1.0, "superlevel")):
        ends = _ends(barcode(regions, superlevel=sign < 0), sign)
        for c in _stable_levels(sign * values, ends=ends):
            assert betti_numbers(regions, **{key: sign * c}) == _grid_betti(sign * values <= c)
            tested += 1
    assert tested


@pytest.mark.parametrize("seed", range(5))
def test_decision_regions_equal_the_grid(seed):
    rng = np.random.default_rng(100 + seed)
    weights, biases = random_network((2, 10, 10, 3), rng)
    network = Network(weights, biases)
    lower, upper = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    regions = enumerate_regions(network, Domain.box(lower, upper))
    scores = _grid_values(network, lower, upper)
    for k in range(3):
        others = np.delete(scores, k, axis=1).max(axis=1)
        margin = (scores[:, k] - others).reshape(GRID, GRID)
        spread = np.abs(margin).max()
        answers = {_grid_betti(margin >= t * spread) for t in (-0.01, 0.0, 0.01)}
        if len(answers) == 1:  # the class's region is not about to merge or split
            assert betti_numbers(regions, winner=k) == answers.pop()


@pytest.mark.parametrize("seed", range(6))
def test_critical_points_satisfy_morse_and_end_the_bars(seed):
    """Morse's relation on the box (Euler characteristic 1), and every finite bar is born
    and dies at critical values."""
    rng = np.random.default_rng(200 + seed)
    weights, biases = random_network((2, 7, 7, 1), rng)
    network = Network(weights, biases)
    regions = enumerate_regions(network, Domain.box([-1, -1], [1, 1]))
    points = critical_points(regions)
    assert sum((-1) ** p.index * p.multiplicity for p in points) == 1
    values = np.array([p.value for p in points])
    for bar in barcode(regions):
        for end in (bar.birth, bar.death):
            if np.isfinite(end):
                assert np.isclose(values, end, rtol=0, atol=1e-12).any()
    minimum = min(p.value for p in points if p.index == 0)
    sampled = network.forward(rng.uniform(-1, 1, size=(20_000, 2)))[:, 0]
    assert minimum <= sampled.min() + 1e-12  # the global minimum is a critical point
    assert min(b.birth for b in barcode(regions)) == minimum


def test_bad_requests_are_one_clear_error():
    from polyrelu.errors import PolyreluError

    regions = enumerate_regions(ring_network(), Domain.box([-3, -3], [3, 3]))
    with pytest.raises(PolyreluError, match="exactly one"):
        betti_numbers(regions, level=1.0, winner=0)
    with pytest.raises(PolyreluError, match="out of range"):
        betti_numbers(regions, level=1.0, output=3)


def test_a_spherical_shell_in_three_dimensions():
    """| |x|_1 - 2 | <= 1 in R^3 is a shell (b2 = 1); the superlevel set at 1.5 is a ball
    and the box outside an octahedron (which encloses it: b2 = 1)."""
    builder = GraphBuilder((3,))
    norm = builder.linear(builder.abs(builder.input), np.ones((1, 3)))
    network = builder.network(builder.abs(builder.linear(norm, np.eye(1), [-2.0])))
    regions = enumerate_regions(network, Domain.box([-4.0] * 3, [4.0] * 3))
    assert betti_numbers(regions, level=1.0) == (1, 0, 1)
    assert betti_numbers(regions, superlevel=1.5) == (2, 0, 1)
    assert [(b.dim, b.death) for b in barcode(regions)] == [(0, np.inf), (2, 2.0)]
    assert sum((-1) ** p.index * p.multiplicity for p in critical_points(regions)) == 1

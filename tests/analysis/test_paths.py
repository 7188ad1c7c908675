"""Path pieces against brute force: dense sampling of the pattern and bisection of breakpoints."""

import numpy as np
import pytest

from oracles import random_network
from polyrelu import InvalidDomainError, Network
from polyrelu.analysis.paths import ClosedCurve, Segment, path_pieces


def _bisect_breakpoints(net, path, t):
    """Every change of the sampled activation pattern, located by bisection to 1e-13."""
    patterns = net.activation_pattern(path.points(t))
    found = []
    for i in np.flatnonzero(np.any(patterns[1:] != patterns[:-1], axis=1)):
        lo, hi = t[i], t[i + 1]
        left = patterns[i]
        while hi - lo > 1e-13:
            mid = (lo + hi) / 2
            if np.array_equal(net.activation_pattern(path.points([mid]))[0], left):
                lo = mid
            else:
                hi = mid
        found.append((lo + hi) / 2)
    return np.array(found)


PATHS = [
    Segment([-1.0, -0.7], [0.9, 1.1]),
    ClosedCurve([0.1, -0.2], [0.9, 0.3], [-0.2, 0.8]),
    ClosedCurve([0.0, 0.1], [[0.7, 0.2, 0.1], [0.1, 0.0, 0.2]],
                [[0.0, 0.3, 0.0], [0.8, -0.2, 0.1]]),
]


@pytest.mark.parametrize("path", PATHS, ids=["segment", "ellipse", "curve_K3"])
@pytest.mark.parametrize("sizes,seed", [((2, 8, 8, 2), 1), ((2, 6, 6, 6, 1), 2)])
def test_pieces_match_sampling_and_bisection(path, sizes, seed):
    net = Network(*random_network(sizes, np.random.default_rng(seed)))
    pieces = path_pieces(net, path)
    assert pieces[0].t0 == path.start and pieces[-1].t1 == path.end
    assert all(p.t1 == q.t0 for p, q in zip(pieces, pieces[1:]))
    t = np.linspace(path.start, path.end, 20001)
    breaks = np.array([p.t1 for p in pieces[:-1]])
    oracle = _bisect_breakpoints(net, path, t)
    assert len(breaks) > 3
    # every change seen by sampling is a breakpoint; breakpoints the grid missed (two
    # crossings inside one grid cell) must still be true pattern changes
    nearest = np.abs(oracle[:, None] - breaks[None]).min(axis=1)
    np.testing.assert_array_less(nearest, 1e-10)
    missed = breaks[np.abs(breaks[:, None] - oracle[None]).min(axis=1) > 1e-10]
    assert len(missed) <= len(breaks) // 5
    for t_break in missed:
        left, right = net.activation_pattern(path.points([t_break - 1e-10, t_break + 1e-10]))
        assert not np.array_equal(left, right)
    middles = [(p.t0 + p.t1) / 2 for p in pieces]
    midpoint_patterns = net.activation_pattern(path.points(middles))
    assert all(np.array_equal(m, p.pattern) for m, p in zip(midpoint_patterns, pieces))
    # each sample's pattern and forward pass are the piece's
    x = path.points(t)
    which = np.searchsorted(breaks, t)
    away = np.min(np.abs(t[:, None] - np.r_[breaks, path.start, path.end][None]), axis=1) > 1e-9
    sampled = net.activation_pattern(x)
    for i in np.flatnonzero(away):
        assert np.array_equal(sampled[i], pieces[which[i]].pattern)
    outputs = np.stack([pieces[j].W_eff @ xi + pieces[j].b_eff for j, xi in zip(which, x)])
    np.testing.assert_allclose(outputs, net.forward(x), atol=1e-12)


def test_absolute_value_segment_and_root_at_the_end():
    absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    pieces = path_pieces(absolute, Segment([-2.0], [2.0]))
    assert [(p.t0, p.t1) for p in pieces] == [(0.0, 0.5), (0.5, 1.0)]
    # the segment starts on the kink: one piece, the kink is not a breakpoint inside
    pieces = path_pieces(absolute, Segment([0.0], [1.0]))
    assert len(pieces) == 1 and pieces[0].pattern.tolist() == [True, False]


def test_tangential_root_does_not_split():
    # neuron x2 - 1 touches 0 at t = pi/2 on the unit circle without changing sign
    net = Network([[[0.0, 1.0]], [[1.0]]], [[-1.0], [0.0]])
    pieces = path_pieces(net, ClosedCurve([0.0, 0.0], [1.0, 0.0], [0.0, 1.0]))
    assert len(pieces) == 1 and not pieces[0].pattern.any()


def test_neuron_identically_zero_along_the_path_is_inactive():
    # neuron 0 is x2, which is 0 all along a segment of the x1 axis; neuron 1 is x1
    net = Network([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    pieces = path_pieces(net, Segment([-1.0, 0.0], [1.0, 0.0]))
    assert [p.pattern.tolist() for p in pieces] == [[False, False], [False, True]]
    assert pieces[0].t1 == 0.5


def test_closed_curve_roots_of_a_trigonometric_polynomial():
    # ReLU(cos t + cos 3t) = ReLU(2 cos t cos 2t): sign changes at odd multiples of pi/4, pi/2
    relu = Network([[[1.0]], [[1.0]]], [[0.0], [0.0]])
    pieces = path_pieces(relu, ClosedCurve([0.0], [[1.0, 0.0, 1.0]], [[0.0, 0.0, 0.0]]))
    expected = np.sort(np.r_[np.pi / 2, 3 * np.pi / 2, np.pi / 4 * np.array([1, 3, 5, 7])])
    np.testing.assert_allclose([p.t1 for p in pieces[:-1]], expected, atol=1e-13)


@pytest.mark.parametrize("make,message", [
    (lambda: path_pieces(Network([[[1.0, 1.0]], [[1.0]]], [[0.0], [0.0]]),
                         Segment([0.0], [1.0])), "dimension 1 but the network has 2 inputs"),
    (lambda: Segment([0.0, np.nan], [1.0, 1.0]), "segment start must be finite"),
    (lambda: Segment([0.0], [1.0, 2.0]), "segment ends have 1 and 2 coordinates"),
    (lambda: ClosedCurve([0.0], [[1.0, 0.0]], [1.0]), "shapes (1, 2) and (1, 1)"),
])
def test_bad_paths_raise_clear_errors(make, message):
    with pytest.raises(InvalidDomainError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()

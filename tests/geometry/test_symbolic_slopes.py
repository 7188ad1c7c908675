"""Optimised relaxation slopes (geometry.symbolic.optimized_bounds_batch): sound against
sampled forward passes and never above the exact minimum (one LP per activation region,
oracles.brute_force_regions); never looser than the default slopes; reproduced by
linear_bounds with the slopes returned; a closed form (|x|) reached."""

import numpy as np
import pytest
from scipy.optimize import linprog

from oracles import brute_force_regions, random_network
from polyrelu import Network
from polyrelu.geometry.symbolic import linear_bounds, linear_bounds_batch, optimized_bounds_batch


def exact_minima(weights, biases, C, lower, upper):
    """min of ``C_r . f(x)`` over the box for every row r: an LP on every activation
    region (scipy)."""
    best = np.full(len(C), np.inf)
    for center, _, W, b in brute_force_regions(weights, biases, lower, upper, 1e-9).values():
        rows_A, rows_b = [], []  # the region: each pre-activation keeps its sign at the centre
        A, offset = np.eye(len(lower)), np.zeros(len(lower))
        for w, bias in zip(weights[:-1], biases[:-1]):
            A, offset = w @ A, w @ offset + bias
            active = A @ center + offset > 0
            rows_A.append(np.where(active[:, None], -A, A))
            rows_b.append(np.where(active, offset, -offset))
            A, offset = A * active[:, None], offset * active
        for r, c in enumerate(C):
            res = linprog(c @ W, A_ub=np.vstack(rows_A), b_ub=np.concatenate(rows_b),
                          bounds=list(zip(lower, upper)), method="highs")
            best[r] = min(best[r], res.fun + c @ b)
    return best


@pytest.mark.parametrize("seed", range(3))
def test_optimised_bounds_are_sound_and_below_the_exact_minimum(seed):
    rng = np.random.default_rng(seed)
    d = 2 + seed % 2
    weights, biases = random_network([d, 5, 4, 3], rng)
    net = Network(weights, biases)
    C = rng.normal(size=(3, 3))
    boxes = [(-np.ones(d), np.ones(d)), (rng.uniform(-1, 0, d), rng.uniform(0.1, 1, d))]
    lower, upper = np.array([b[0] for b in boxes]), np.array([b[1] for b in boxes])
    optimised, slopes = optimized_bounds_batch(net, lower, upper, C, steps=30)
    default = linear_bounds_batch(net, lower, upper, C)
    again = linear_bounds_batch(net, lower, upper, C, slopes=slopes)
    for i, (lo, hi) in enumerate(boxes):
        assert np.all(optimised[i].lower >= default[i].lower)
        assert np.array_equal(again[i].lower, optimised[i].lower)
        y = net.forward(rng.uniform(lo, hi, size=(5000, d))) @ C.T
        assert np.all(y.min(axis=0) >= optimised[i].lower)
        assert np.all(optimised[i].lower <= exact_minima(weights, biases, C, lo, hi) + 1e-9)


def test_absolute_value_reaches_its_minimum():
    # |x| = relu(x) + relu(-x) on [-1, 2]: the default slopes (1 and 0) bound it by -1;
    # equal slopes give the true minimum 0
    net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    plain = linear_bounds(net, [-1.0], [2.0], [[1.0]]).lower[0]
    (best,), slopes = optimized_bounds_batch(net, [[-1.0]], [[2.0]], [[1.0]], steps=40)
    assert plain == pytest.approx(-1.0)
    assert -1e-6 <= best.lower[0] <= 0.0
    assert 0.0 <= slopes[0].min() and slopes[0].max() <= 1.0


def test_slopes_out_of_range_are_refused_and_nan_means_the_default():
    rng = np.random.default_rng(5)
    net = Network(*random_network([2, 5, 4, 2], rng))
    lower, upper, C = -np.ones(2), np.ones(2), np.eye(2)
    default = linear_bounds(net, lower, upper, C).lower
    nan = [np.full((2, 5), np.nan), np.full((2, 4), np.nan)]
    assert np.array_equal(linear_bounds(net, lower, upper, C, slopes=nan).lower, default)
    for bad in (1.5, -0.1):
        wrong = [np.full((2, 5), bad), np.full((2, 4), 0.5)]
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            linear_bounds(net, lower, upper, C, slopes=wrong)


def test_warm_start_never_loses():
    rng = np.random.default_rng(9)
    net = Network(*random_network([3, 8, 8, 2], rng))
    lower, upper, C = -np.ones((1, 3)), np.ones((1, 3)), np.array([[1.0, -1.0]])
    (first,), slopes = optimized_bounds_batch(net, lower, upper, C, steps=5)
    (second,), _ = optimized_bounds_batch(net, lower, upper, C, steps=5, slopes=slopes)
    assert second.lower[0] >= first.lower[0]

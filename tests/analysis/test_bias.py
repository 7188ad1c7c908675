"""Bias maximisation and reconstruction: known answers, exact re-checks, round trips."""

import cvxpy as cp
import numpy as np
import pytest

from polyrelu import Domain, PolyreluError
from polyrelu.analysis.bias import (
    ball_bias,
    frame_facets,
    largest_uniform_shift,
    polytope_bias,
    sampled_bias,
    sphere_values,
)
from polyrelu.analysis.injectivity import is_injective
from polyrelu.analysis.reconstruction import invert


def polygon(m):
    angles = 2 * np.pi * np.arange(m) / m
    return np.c_[np.cos(angles), np.sin(angles)]


def surrounding_frame(rng, m, n):
    while True:
        W = rng.normal(size=(m, n)) * rng.uniform(0.5, 2.0, size=(m, 1))
        try:
            frame_facets(W)
            return W
        except PolyreluError:
            continue


def inscribed_polytopes(n, radius):
    """A box and a cross-polytope inside the ball of ``radius`` (for checking ball biases)."""
    half = radius / np.sqrt(n)
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * n)).reshape(n, -1).T
    return [Domain.box(-np.full(n, half), np.full(n, half)),
            Domain.polytope(signs, np.full(len(signs), radius))]


@pytest.mark.parametrize("m", [3, 4, 5, 6, 9])
def test_regular_polygon_sphere_and_ball_values(m):
    W = polygon(m) * np.arange(1, m + 1)[:, None]      # row norms must not matter
    np.testing.assert_allclose(sphere_values(W), np.cos(2 * np.pi / m), atol=1e-12)
    expected = 0.7 * min(np.cos(2 * np.pi / m), 0) * np.arange(1, m + 1)
    np.testing.assert_allclose(ball_bias(W, 0.7).bias, expected, atol=1e-12)


def test_regular_tetrahedron():
    W = np.array([[1.0, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]])
    np.testing.assert_allclose(sphere_values(W), -1 / np.sqrt(3), atol=1e-12)
    np.testing.assert_allclose(ball_bias(W, convention="pytorch").bias, 1.0, atol=1e-12)


def test_sphere_values_match_a_cone_program():
    # independent oracle: min <x, u_j> over cone(F) intersected with the ball, by cvxpy
    rng = np.random.default_rng(5)
    W = surrounding_frame(rng, 7, 3)
    U = W / np.linalg.norm(W, axis=1)[:, None]
    expected = np.full(len(W), np.inf)
    for facet in frame_facets(W):
        for j in facet:
            c = cp.Variable(len(facet), nonneg=True)
            x = U[facet].T @ c
            problem = cp.Problem(cp.Minimize(U[j] @ x), [cp.norm(x) <= 1])
            problem.solve()
            # on the sphere the minimum is attained at |x| = 1 unless it is >= 0
            value = problem.value if problem.value < -1e-7 else (U[facet] @ U[j]).min()
            expected[j] = min(expected[j], value)
    np.testing.assert_allclose(sphere_values(W), expected, atol=1e-6)


def test_polytope_bias_is_certified_by_the_exact_decision():
    rng = np.random.default_rng(2)
    for trial in range(12):
        n = 2 + trial % 3
        W = surrounding_frame(rng, int(rng.integers(n + 1, 3 * n + 1)), n)
        lo = rng.uniform(-1.0, 0.5, n)
        domain = Domain.box(lo, lo + rng.uniform(0.2, 1.5, n))
        result = polytope_bias(W, domain)
        assert result.certified and result.check.injective
        assert is_injective(W, result.bias, domain).injective
        # the same bias in PyTorch's convention
        flipped = polytope_bias(W, domain, convention="pytorch").bias
        np.testing.assert_allclose(flipped, -result.bias)


def test_ball_bias_passes_the_exact_decision_on_inscribed_polytopes():
    rng = np.random.default_rng(4)
    for n in (2, 3, 4):
        W = surrounding_frame(rng, 3 * n, n)
        bias = ball_bias(W, 2.0).bias
        for polytope in inscribed_polytopes(n, 2.0):
            assert is_injective(W, bias, polytope).injective


def test_sampled_estimate_is_not_a_certificate():
    rng = np.random.default_rng(0)
    failures = 0
    for _ in range(6):
        W = surrounding_frame(rng, 6, 2)
        box = Domain.box([-1, -1], [1, 1])
        estimate = sampled_bias(W, box.sample(8, rng))
        assert not estimate.certified
        r = is_injective(W, estimate.bias, box)
        if not r.injective:
            failures += 1
            x, y = r.witness
            np.testing.assert_allclose(np.maximum(W @ x - estimate.bias, 0),
                                       np.maximum(W @ y - estimate.bias, 0), atol=1e-9)
        # the certified bias on the same box passes
        assert polytope_bias(W, box).check.injective
    assert failures >= 1


def test_largest_uniform_shift_of_the_square_frame():
    # rows +-e1, +-e2 on a box around 0: injective exactly while the threshold is <= 0
    W = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
    box = Domain.box([-1, -1], [1, 1])
    shift = largest_uniform_shift(W, np.full(4, -0.5), box, tol=1e-4)
    assert shift.injective_at == pytest.approx(0.5, abs=1e-4)
    assert shift.fails_at - shift.injective_at <= 1e-4
    x, y = shift.witness
    a = np.full(4, -0.5 + shift.fails_at)
    np.testing.assert_allclose(np.maximum(W @ x - a, 0), np.maximum(W @ y - a, 0), atol=1e-9)
    with pytest.raises(PolyreluError, match="not injective"):
        largest_uniform_shift(W, np.full(4, 0.5), box)


def test_bias_bad_input():
    with pytest.raises(PolyreluError, match="surround"):
        ball_bias(np.array([[1.0, 0], [0, 1], [1, 1]]))
    with pytest.raises(PolyreluError, match="radius"):
        ball_bias(polygon(3), 0.0)
    with pytest.raises(PolyreluError, match="zero row"):
        sphere_values(np.array([[1.0, 0], [0, 0]]))
    with pytest.raises(PolyreluError, match="points"):
        sampled_bias(polygon(3), np.ones((4, 3)))


@pytest.mark.parametrize("method", ["dual", "iterative"])
def test_reconstruction_round_trip_on_certified_layers(method):
    rng = np.random.default_rng(9)
    for n in (2, 3, 5):
        W = surrounding_frame(rng, 4 * n, n)
        a = ball_bias(W, 1.0).bias
        points = rng.normal(size=(50, n))
        points *= rng.uniform(0, 1, size=(50, 1)) / np.linalg.norm(points, axis=1)[:, None]
        for x in points:
            r = invert(W, a, np.maximum(W @ x - a, 0), method=method)
            assert np.linalg.norm(r.x - x) <= 1e-12 * max(1.0, np.linalg.norm(x))


def test_reconstruction_stability_bound():
    rng = np.random.default_rng(1)
    W = surrounding_frame(rng, 12, 3)
    a = ball_bias(W, 1.0).bias
    x = np.array([0.2, -0.1, 0.3])
    z = np.maximum(W @ x - a, 0)
    r = invert(W, a, z)
    noise = np.zeros_like(z)
    noise[r.active] = 1e-4 * rng.normal(size=len(r.active))
    noisy = invert(W, a, z + noise)
    assert noisy.active.tolist() == r.active.tolist()
    error = np.linalg.norm(noisy.x - x)
    assert 0 < error <= np.linalg.norm(noise) / np.sqrt(r.lower_frame_bound) * (1 + 1e-9)
    # the bound is the smallest singular value of the active rows
    smallest = np.linalg.svd(W[r.active], compute_uv=False).min()
    assert r.lower_frame_bound == pytest.approx(smallest ** 2, rel=1e-9)


def test_reconstruction_refuses_undetermined_inputs():
    with pytest.raises(PolyreluError, match="do not span"):
        invert(np.eye(2), np.zeros(2), np.array([1.0, 0.0]))

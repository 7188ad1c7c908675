"""Facets by rays, bounds and LPs (minimal_representation without qhull), and by qhull's
polar hull, against an LP oracle.

The oracle (tests/oracles.py, scipy's linprog): row i is a facet iff it repeats no earlier
row, ``max a_i x`` over the other rows (and row i relaxed by 1) exceeds ``b_i``, and the
in-plane Chebyshev ball of its face has radius above ``min_radius``.
"""

import numpy as np
import pytest

from oracles import facets_by_linprog, repeats_earlier
from polyrelu.geometry.lp import LPSolver
from polyrelu.geometry.polytope import minimal_representation


def check_against_oracle(A, b, center, min_radius, use_qhull=False):
    """Facets (rows, points, radii) agree with the oracle; returns the LPs used."""
    solver = LPSolver()
    facets = minimal_representation(A, b, center, min_radius=min_radius, solver=solver,
                                    use_qhull=use_qhull)
    rows, radii = facets_by_linprog(A, b, min_radius)
    assert facets.rows.tolist() == rows.tolist()
    assert np.all(facets.inner_radius > min_radius)
    assert np.all(facets.inner_radius <= radii * (1 + 1e-7) + 1e-12)
    repeat = repeats_earlier(A, b)
    for row, point, radius in zip(facets.rows, facets.points, facets.inner_radius):
        assert abs(A[row] @ point - b[row]) <= 1e-9 * (1 + abs(b[row]))
        same = np.flatnonzero(np.all(np.isclose(A, A[row], atol=1e-12), axis=1)
                              & np.isclose(b, b[row], atol=1e-12))
        others = np.setdiff1d(np.flatnonzero(~repeat), same)
        slack = b[others] - A[others] @ point
        assert np.all(slack > 0)
        in_plane = np.linalg.norm(A[others] - np.outer(A[others] @ A[row], A[row]), axis=1)
        assert np.all(slack >= radius * in_plane * (1 - 1e-9))  # the in-plane ball is inside
    return solver.count


def unit(rows):
    rows = np.asarray(rows, dtype=float)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def random_cut_box(d, k, rng):
    """The cube [-1, 1]^d cut by k random hyperplanes at random distances from 0: many
    cuts miss the cube or lie behind others (redundant)."""
    A = np.vstack([unit(rng.normal(size=(k, d))), np.eye(d), -np.eye(d)])
    b = np.concatenate([0.05 + np.abs(rng.normal(size=k)) * 0.5 * np.sqrt(d) ** 0.5,
                        np.ones(2 * d)])
    return A, b


@pytest.mark.parametrize("d, seed", [
    pytest.param(d, seed, marks=[pytest.mark.slow] if d == 64 else [])
    for seed in (0, 1) for d in (2, 3, 5, 8, 12, 16, 32, 64)])
def test_random_cut_boxes(d, seed):
    rng = np.random.default_rng(seed + 100 * d)
    A, b = random_cut_box(d, 3 * d, rng)
    check_against_oracle(A, b, np.zeros(d), 1e-9)


@pytest.mark.parametrize("d, seed", [
    pytest.param(d, seed, marks=[pytest.mark.slow] if d == 9 and seed else [])
    for seed in (0, 1, 2) for d in (2, 3, 5, 7, 9)])
def test_polar_hull_from_a_seed_near_the_boundary(d, seed):
    """A seed close to one facet (as the walk's seeds are) and, behind that facet, more
    rows tilted slightly from it than the polar hull starts from (8 d): they are the
    nearest to the seed, so the hull must grow by the rows that cut it."""
    rng = np.random.default_rng(seed + 10 * d)
    A, b = random_cut_box(d, 3 * d, rng)
    near = np.argmin(b[:3 * d])
    tilted = unit(A[near] + 0.05 * rng.normal(size=(10 * d, d)))
    A = np.vstack([A, tilted])
    b = np.concatenate([b, b[near] * (1.001 + 0.05 * rng.uniform(size=10 * d))])
    check_against_oracle(A, b, 0.999 * b[near] * A[near], 1e-9, use_qhull=True)


@pytest.mark.parametrize("d", [2, 3, 5, 8, 12])
def test_random_rows_without_a_box(d):
    rng = np.random.default_rng(d)
    A = unit(rng.normal(size=(12 * d, d)))
    b = rng.uniform(0.5, 2.0, size=12 * d)
    check_against_oracle(A, b, np.zeros(d), 1e-9)


def test_most_facets_need_no_lp_in_64_dimensions():
    rng = np.random.default_rng(7)
    A, b = random_cut_box(64, 48, rng)
    lps = check_against_oracle(A, b, np.zeros(64), 1e-9)
    assert lps < len(b) / 4, lps


def square_with(rows, offsets, d=2):
    A = np.vstack([np.eye(d), -np.eye(d), unit(rows)])
    return A, np.concatenate([np.ones(2 * d), offsets])


def test_duplicated_rows_keep_the_first():
    A, b = square_with([[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]], [1.0, 1.2, 1.2])
    check_against_oracle(A, b, np.zeros(2), 1e-9)
    assert facets_by_linprog(A, b, 1e-9)[0].tolist() == [0, 1, 2, 3, 5]


def test_parallel_rows():
    A, b = square_with([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], [2.0, 0.5, 0.999])
    check_against_oracle(A, b, np.zeros(2), 1e-9)
    assert facets_by_linprog(A, b, 1e-9)[0].tolist() == [0, 3, 5, 6]


@pytest.mark.parametrize("d", [2, 3, 8])
def test_a_row_touching_at_a_vertex_is_not_a_facet(d):
    A, b = square_with(np.ones((1, d)), [np.sqrt(d)], d)
    check_against_oracle(A, b, np.zeros(d), 1e-9)
    assert len(facets_by_linprog(A, b, 1e-9)[0]) == 2 * d


@pytest.mark.parametrize("min_radius,facets", [(1e-3, 4), (1e-9, 5)])
def test_a_thin_facet_below_min_radius_is_dropped(min_radius, facets):
    A, b = square_with([[1.0, 1.0]], [(2 - 1e-4) / np.sqrt(2)])  # cuts a corner 1e-4 deep
    check_against_oracle(A, b, np.zeros(2), min_radius)
    assert len(facets_by_linprog(A, b, min_radius)[0]) == facets


@pytest.mark.parametrize("d", [3, 5, 12])
def test_nearly_degenerate_simplex(d):
    """x >= 0, x_1 + ... + x_{d-1} + 1e4 x_d <= 1 (its last vertex at 1e-4 e_d), plus a
    redundant row."""
    A = unit(np.vstack([-np.eye(d), np.r_[np.ones(d - 1), 1e4], np.r_[np.ones(d - 1), 0.0]]))
    b = np.concatenate([np.zeros(d), [A[d] @ np.r_[np.zeros(d - 1), 1e-4]],
                        [1.5 / np.sqrt(d - 1)]])
    center = np.r_[np.full(d - 1, 1.0), 1e-4] / (d + 1)
    check_against_oracle(A, b, center, 1e-12)
    assert len(facets_by_linprog(A, b, 1e-12)[0]) == d + 1

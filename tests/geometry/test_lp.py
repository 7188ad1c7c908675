"""The LP layer against scipy's linprog, including warm-started sequences."""

import numpy as np
import pytest
from scipy.optimize import linprog

from polyrelu.geometry.lp import LPSolver


def test_warm_started_maximisations_match_cold_ones():
    rng = np.random.default_rng(0)
    solver = LPSolver()
    polytopes = []
    for _ in range(5):
        A = rng.normal(size=(30, 4))
        polytopes.append((A, np.abs(rng.normal(size=30)) + 0.1))
    for step in range(60):
        A, b = polytopes[(step // 3) % 2 if step < 40 else rng.integers(5)]  # runs of one A
        cost = rng.normal(size=4)
        warm = solver.maximize_warm(cost, A, b)
        reference = linprog(-cost, A_ub=A, b_ub=b, bounds=[(None, None)] * 4, method="highs")
        assert warm.status == "optimal" and reference.status == 0
        assert np.isclose(warm.value, -reference.fun, rtol=1e-9, atol=1e-9)
        if step % 7 == 0:  # another LP in between must not leave a stale model behind
            solver.chebyshev_ball(*polytopes[4])
    assert solver.count == 60 + len(range(0, 60, 7))


def test_constant_rows_in_the_signed_inradius_and_chebyshev_lps():
    """A zero row 0 <= b: dropped when b is a rounding-size negative, and a Farkas proof of
    emptiness on its own when b is clearly negative (closed forms on the unit square)."""
    square = np.vstack([np.eye(2), -np.eye(2)]), np.ones(4)
    A = np.vstack([square[0], np.zeros((1, 2))])
    solver = LPSolver()
    x, r, y = solver.signed_inradius(A, np.append(square[1], -1e-15))
    assert r == pytest.approx(1.0) and y[-1] == 0.0
    assert solver.chebyshev_ball(A, np.append(square[1], -1e-15))[1] == pytest.approx(1.0)
    x, r, y = solver.signed_inradius(A, np.append(square[1], -0.5))
    assert r == -np.inf and y.tolist() == [0, 0, 0, 0, 1]
    assert solver.chebyshev_ball(A, np.append(square[1], -0.5)) == (None, None)


def test_a_status_highs_cannot_finish_is_retried_with_other_algorithms():
    """With the simplex iteration limit at 0, HiGHS stops at once ("Iteration limit
    reached", a status polyrelu cannot interpret); the retries end with the interior-point
    method, whose answer must be scipy's."""
    rng = np.random.default_rng(7)
    A = np.vstack([rng.normal(size=(12, 3)), np.eye(3), -np.eye(3)])
    b = np.concatenate([rng.uniform(0.5, 1.5, 12), np.ones(6)])
    cost = rng.normal(size=3)
    solver = LPSolver()
    solver._highs.setOptionValue("simplex_iteration_limit", 0)
    result = solver.maximize(cost, A, b)
    reference = linprog(-cost, A_ub=A, b_ub=b, bounds=[(None, None)] * 3, method="highs")
    assert result.status == "optimal" and solver.retries == 1
    assert result.value == pytest.approx(-reference.fun, rel=1e-7)


def test_an_lp_no_algorithm_solves_is_a_solver_error():
    from polyrelu import SolverError

    solver = LPSolver()
    for name in ("simplex_iteration_limit", "ipm_iteration_limit"):
        solver._highs.setOptionValue(name, 0)
    A = np.vstack([np.eye(2), -np.eye(2), [[1.0, 1.0]]])
    with pytest.raises(SolverError, match="after retrying"):
        solver.maximize(np.ones(2), A, np.array([1.0, 1.0, 1.0, 1.0, 1.5]))


@pytest.mark.parametrize("count", [1, 2, 16, 17, 40])
def test_chebyshev_balls_solved_together_match_linprog_one_by_one(count):
    """The block-diagonal LP of chebyshev_balls (groups of 16) against scipy's linprog per
    polytope (interior-point method, another algorithm); an empty polytope (a violated zero
    row) in a group sends that group ball by ball."""
    rng = np.random.default_rng(count)
    systems = []
    for k in range(count):
        d = 3
        A = rng.normal(size=(8 + k % 5, d))
        b = np.abs(rng.normal(size=len(A))) + 0.1
        A = np.vstack([A, np.eye(d), -np.eye(d)])  # bounded
        b = np.concatenate([b, np.full(2 * d, 2.0)])
        systems.append((A, b))
    if count > 16:
        systems[16] = (np.vstack([systems[16][0], np.zeros(3)]), np.append(systems[16][1], -1.0))
    solver = LPSolver()
    balls = solver.chebyshev_balls(systems)
    assert solver.count == count - (count > 16)  # the empty one needs no LP
    for k, ((A, b), (center, radius)) in enumerate(zip(systems, balls)):
        if k == 16:
            assert center is None and radius is None
            continue
        norms = np.linalg.norm(A, axis=1)
        reference = linprog(np.r_[np.zeros(3), -1.0], A_ub=np.column_stack([A, norms]),
                            b_ub=b, bounds=[(None, None)] * 3 + [(0, None)],
                            method="highs-ipm")
        assert reference.status == 0
        assert radius == pytest.approx(-reference.fun, rel=1e-7, abs=1e-9)
        assert np.all(A @ center + radius * norms <= b + 1e-9)  # the ball is inside

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

"""The LP layer against scipy's linprog, including warm-started sequences."""

import numpy as np
from scipy.optimize import linprog

from polyrelu.lp import LPSolver


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

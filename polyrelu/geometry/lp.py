"""The LP layer: HiGHS (through highspy) with an explicit LP counter.

All LPs polyrelu solves go through :class:`LPSolver`, which keeps one HiGHS
instance (so its buffers and settings are reused) and counts every solve.
Polytopes are always ``{x : A x <= b}``.
"""

import functools
import os
import sys
from dataclasses import dataclass

import highspy
import numpy as np

from ..errors import SolverError
from ..options import Options

__all__ = ["LPSolver", "LPResult"]

_INF = highspy.kHighsInf
_ROWWISE = int(highspy.MatrixFormat.kRowwise)
_MAXIMIZE = int(highspy.ObjSense.kMaximize)
_STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnbounded: "unbounded",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "unbounded_or_infeasible",
}


@dataclass(frozen=True)
class LPResult:
    """Outcome of one LP.

    Attributes
    ----------
    status : str
        ``"optimal"``, ``"infeasible"``, ``"unbounded"`` or ``"unbounded_or_infeasible"``.
    x : ndarray or None
        Optimal point (None unless optimal).
    value : float or None
        Optimal objective value (None unless optimal).
    row_duals : ndarray or None
        Dual multipliers of the inequality rows (>= 0 for the active ``<=`` rows
        of a maximisation, in HiGHS' sign convention; None unless optimal).
    """

    status: str
    x: np.ndarray = None
    value: float = None
    row_duals: np.ndarray = None


class LPSolver:
    """A reusable HiGHS instance that solves small dense LPs and counts them.

    Parameters
    ----------
    options : Options, optional

    Examples
    --------
    >>> import numpy as np
    >>> from polyrelu.geometry.lp import LPSolver
    >>> solver = LPSolver()
    >>> box = np.vstack([np.eye(2), -np.eye(2)]), np.ones(4)
    >>> center, radius = solver.chebyshev_ball(*box)
    >>> round(radius, 12), solver.count
    (1.0, 1)
    """

    def __init__(self, options=None):
        self.options = options or Options()
        self.count = 0
        self.retries = 0  # LPs solved only after a retry (see _retry)
        self._warm = None  # (A, b) of the model loaded by maximize_warm, if any
        self._highs = _new_highs()
        self._defaults = {
            "output_flag": False,
            "presolve": "off",
            "solver": "simplex",
            "run_crossover": "on",
            # polyrelu's rows have unit norm: scaling costs time and buys nothing
            "simplex_scale_strategy": 0,
            "simplex_strategy": 4,  # primal simplex: measured fastest on region LPs
            "primal_feasibility_tolerance": self.options.lp_feasibility_tol,
            "dual_feasibility_tolerance": self.options.lp_feasibility_tol,
        }
        for name, value in self._defaults.items():
            self._highs.setOptionValue(name, value)

    def maximize(self, cost, A, b, *, A_eq=None, b_eq=None, lower=None, upper=None):
        """Maximise ``cost @ x`` subject to ``A x <= b``, ``A_eq x = b_eq``, bounds.

        Parameters
        ----------
        cost : ndarray, shape (n,)
        A : ndarray, shape (k, n);  b : ndarray, shape (k,)
        A_eq, b_eq : optional equality rows
        lower, upper : optional variable bounds (default free)

        Returns
        -------
        LPResult
        """
        A = np.asarray(A, dtype=np.float64)
        rows_lo = np.full(A.shape[0], -_INF)
        rows_hi = np.asarray(b, dtype=np.float64)
        if A_eq is not None and len(A_eq):
            A = np.vstack([A, A_eq])
            rows_lo = np.concatenate([rows_lo, b_eq])
            rows_hi = np.concatenate([rows_hi, b_eq])
        self._warm = None
        self._pass_model(cost, A, rows_lo, rows_hi, lower, upper)
        return self._run()

    def _pass_model(self, cost, A, rows_lo, rows_hi, lower=None, upper=None):
        """Load the LP  max cost @ x  s.t. rows_lo <= A x <= rows_hi, lower <= x <= upper."""
        m, n = A.shape
        status = self._highs.passModel(
            n, m, A.size, _ROWWISE, _MAXIMIZE, 0.0, np.asarray(cost, dtype=np.float64),
            np.full(n, -_INF) if lower is None else np.asarray(lower, dtype=np.float64),
            np.full(n, _INF) if upper is None else np.asarray(upper, dtype=np.float64),
            rows_lo, np.asarray(rows_hi, dtype=np.float64), *_dense_rowwise(A),
            np.zeros(n, dtype=np.int32))  # all columns continuous
        if status == highspy.HighsStatus.kError:
            raise SolverError(f"HiGHS refused an LP with {m} rows and {n} columns "
                              "(non-finite coefficients?)")

    def maximize_warm(self, cost, A, b):
        """Maximise ``cost @ x`` over ``{x : A x <= b}``, warm-started.

        The model of the previous ``maximize_warm`` call stays loaded when ``A x <= b``
        is that model with rows appended (e.g. a piece cut from a parent polytope):
        only the new rows are added and HiGHS starts from the previous basis.
        Otherwise, or after any other LP, the model is reloaded. (Deleting rows and
        re-solving was measured slower than a fresh load of these small LPs.)
        """
        A = np.asarray(A, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        self._load_rows(A, b)
        columns = np.arange(A.shape[1], dtype=np.int32)
        self._highs.changeColsCost(len(columns), columns, np.asarray(cost, dtype=np.float64))
        return self._run()

    def _load_rows(self, A, b):
        """Make ``{x : A x <= b}`` (free variables) the loaded model: rows appended to
        the previous call's model are added to it, anything else is loaded afresh."""
        loaded = self._warm
        if loaded is not None and loaded[0] is A and loaded[1] is b:
            return
        if loaded is None or not _extends(A, b, *loaded):
            self._pass_model(np.zeros(A.shape[1]), A, np.full(A.shape[0], -_INF), b)
            self._warm = (A, b)
            return
        new = A[len(loaded[0]):]
        self._highs.addRows(len(new), np.full(len(new), -_INF), b[len(loaded[0]):], new.size,
                            *_dense_rowwise(new))
        self._warm = (A, b)

    def chebyshev_ball(self, A, b):
        """Centre and radius of the largest ball inside ``{x : A x <= b}``.

        Returns ``(None, None)`` when the polytope is empty; raises
        :class:`SolverError` when the radius is unbounded. A radius near 0 means
        the polytope is not full-dimensional.
        """
        result, _, violated = self._ball_lp(A, b, signed=False)
        if violated is not None or result.status == "infeasible":
            return None, None
        if result.status == "optimal":
            return result.x[:-1], float(result.x[-1])
        raise SolverError(f"Chebyshev-ball LP is {result.status}: the polytope is unbounded")

    def chebyshev_balls(self, systems):
        """:meth:`chebyshev_ball` of each polytope ``{x : A x <= b}`` of ``systems`` (a
        list of ``(A, b)``, all of one dimension): a list of ``(centre, radius)``.

        The LPs are independent, and solved :data:`BALLS_PER_SOLVE` at a time as the
        blocks of one block-diagonal LP (one HiGHS call: measured 165 -> 93 us per ball
        on ACAS Xu regions); the counter counts each ball's LP. A group whose joint LP is
        not optimal (an empty or unbounded polytope in it) is solved ball by ball.

        Examples
        --------
        >>> import numpy as np
        >>> box = np.vstack([np.eye(2), -np.eye(2)])
        >>> balls = LPSolver().chebyshev_balls([(box, np.ones(4)), (box, np.full(4, 2.0))])
        >>> [round(radius, 12) for _, radius in balls]
        [1.0, 2.0]
        """
        balls = []
        for start in range(0, len(systems), BALLS_PER_SOLVE):
            group = systems[start:start + BALLS_PER_SOLVE]
            solved = self._joint_balls(group) if len(group) > 1 else None
            balls.extend(solved or [self.chebyshev_ball(A, b) for A, b in group])
        return balls

    def _joint_balls(self, group):
        """The balls of ``group`` from one block-diagonal LP (block k: ``max r_k`` s.t.
        ``A_k x_k + ||A_k,i|| r_k <= b_k``, ``r_k >= 0``); None if that LP is not optimal
        or a polytope has a violated constant row (the caller then solves them one by one)."""
        blocks, offsets = [], []
        for A, b in group:
            A, b = np.asarray(A, dtype=np.float64), np.asarray(b, dtype=np.float64)
            norms = np.linalg.norm(A, axis=1)
            keep, violated = _constant_rows(norms, b)
            if violated is not None:
                return None
            blocks.append(np.column_stack([A[keep], norms[keep]]))
            offsets.append(b[keep])
        width = blocks[0].shape[1]
        rows = np.array([len(block) for block in blocks])
        columns = np.repeat(np.arange(len(blocks)) * width, rows)[:, None] + np.arange(width)
        n = width * len(blocks)
        cost = np.zeros(n)
        cost[width - 1::width] = 1.0
        lower = np.full(n, -_INF)
        lower[width - 1::width] = 0.0
        m = int(rows.sum())
        self._warm = None
        status = self._highs.passModel(
            n, m, m * width, _ROWWISE, _MAXIMIZE, 0.0, cost, lower, np.full(n, _INF),
            np.full(m, -_INF), np.concatenate(offsets),
            np.arange(0, m * width, width, dtype=np.int32), columns.astype(np.int32).ravel(),
            np.concatenate(blocks).ravel(), np.zeros(n, dtype=np.int32))
        if status == highspy.HighsStatus.kError:
            return None
        self._highs.run()
        if self._highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        self.count += len(group)
        x = np.array(self._highs.getSolution().col_value).reshape(len(group), width)
        return [(point[:-1], float(point[-1])) for point in x]

    def signed_inradius(self, A, b):
        """The largest ``r`` (of any sign) such that some ``x`` has ``A x + ||A_i|| r <= b``.

        ``r > 0`` is the Chebyshev radius of a full-dimensional polytope, ``r = 0``
        means a non-empty polytope with empty interior, ``r < 0`` an empty one.
        Returns ``(x, r, y)`` where ``y >= 0`` are the LP dual multipliers:
        ``y @ A = 0``, ``y @ ||A_i|| = 1`` and ``y @ b = r``, so that for ``r < 0``
        they are a Farkas certificate of emptiness. The polytope must be bounded.
        Zero rows ``0 <= b_i`` are dropped when they hold up to 1e-9 (relative); one that
        fails gives ``r = -inf`` and ``y`` = that row's unit vector.

        Examples
        --------
        >>> import numpy as np
        >>> A, b = np.array([[1.0], [-1.0]]), np.array([0.0, -1.0])  # x <= 0 and x >= 1
        >>> x, r, y = LPSolver().signed_inradius(A, b)
        >>> round(r, 12), np.round(y, 12).tolist()
        (-0.5, [0.5, 0.5])
        """
        result, keep, violated = self._ball_lp(A, b, signed=True)
        y = np.zeros(len(keep))
        if violated is not None:  # a row 0 <= b < 0: empty, and that row alone proves it
            y[violated] = 1.0
            return np.zeros(np.shape(A)[1]), -np.inf, y
        if result.status != "optimal":
            raise SolverError(f"signed-inradius LP is {result.status}: the polytope is unbounded")
        y[keep] = np.maximum(result.row_duals, 0.0)
        return result.x[:-1], float(result.x[-1]), y

    def _ball_lp(self, A, b, signed):
        """Maximise r subject to ``A x + ||A_i|| r <= b`` (r >= 0 unless ``signed``) over the
        non-constant rows. Returns ``(LPResult, kept rows, None)``, or ``(None, kept rows,
        index)`` when the constant row ``index`` is violated (see :func:`_constant_rows`)."""
        A, b = np.asarray(A, dtype=np.float64), np.asarray(b, dtype=np.float64)
        d = A.shape[1]
        norms = np.linalg.norm(A, axis=1)
        keep, violated = _constant_rows(norms, b)
        if violated is not None:
            return None, keep, violated
        cost = np.zeros(d + 1)
        cost[d] = 1.0
        lower = np.full(d + 1, -_INF)
        if not signed:
            lower[d] = 0.0
        result = self.maximize(cost, np.hstack([A[keep], norms[keep, None]]), b[keep],
                               lower=lower)
        return result, keep, None

    def _run(self):
        highs = self._highs
        highs.run()
        self.count += 1
        status = _STATUS.get(highs.getModelStatus())
        if status is None:
            status = self._retry()
        if status != "optimal":
            return LPResult(status)
        solution = highs.getSolution()
        return LPResult(
            status,
            np.array(solution.col_value),
            highs.getObjectiveValue(),
            np.array(solution.row_dual),
        )


    def _retry(self):
        """Solve the loaded model again after HiGHS gave a status other than optimal,
        infeasible or unbounded (e.g. "Unknown" on badly scaled rows): from scratch, then
        with the dual simplex and scaling, then with the interior-point method and
        crossover. Returns the first status it can interpret; raises
        :class:`SolverError` naming the statuses if none."""
        highs, seen = self._highs, []
        for settings in _RETRIES:
            seen.append(highs.modelStatusToString(highs.getModelStatus()))
            for name, value in settings.items():
                highs.setOptionValue(name, value)
            highs.clearSolver()
            highs.run()
            self.count += 1
            for name in settings:
                highs.setOptionValue(name, self._defaults[name])
            status = _STATUS.get(highs.getModelStatus())
            if status is not None:
                self.retries += 1
                return status
        seen.append(highs.modelStatusToString(highs.getModelStatus()))
        raise SolverError(f"HiGHS could not solve an LP (statuses {', '.join(seen)}, "
                          "after retrying with other algorithms)")


#: Chebyshev balls solved in one block-diagonal LP by :meth:`LPSolver.chebyshev_balls`
#: (measured on ACAS Xu regions: 16 per solve 93 us per ball, 64: 102, 256: 172).
BALLS_PER_SOLVE = 16

# Settings tried, in order, when HiGHS returns a status polyrelu cannot interpret.
_RETRIES = (
    {},
    {"simplex_strategy": 1, "simplex_scale_strategy": 1},
    {"solver": "ipm", "run_crossover": "on", "simplex_scale_strategy": 1},
)


def _dense_rowwise(A):
    """Row starts, column indices and values of the dense matrix ``A`` (row-wise)."""
    return (*_dense_indices(*A.shape), np.ascontiguousarray(A).ravel())


@functools.lru_cache(maxsize=256)
def _dense_indices(m, n):
    starts = np.arange(0, m * n, n, dtype=np.int32)
    columns = np.tile(np.arange(n, dtype=np.int32), m)
    starts.flags.writeable = columns.flags.writeable = False
    return starts, columns


def _extends(A, b, old_A, old_b):
    """Whether ``A x <= b`` is ``old_A x <= old_b`` with rows added at the end (the
    identical model is recognised by the caller, by identity)."""
    n = len(old_A)
    return (A.shape[1] == old_A.shape[1] and len(A) > n and np.array_equal(A[:n], old_A)
            and np.array_equal(b[:n], old_b))


def _constant_rows(norms, b):
    """Rows to keep, and a violated constant row (or None).

    A zero row ``0 <= b_i`` is dropped when ``b_i >= -1e-9 (1 + max |b|)`` (it holds up
    to the rounding of a pre-activation that is constant on the polytope) and makes the
    polytope empty otherwise.
    """
    constant = norms == 0
    tolerance = 1e-9 * (1.0 + np.max(np.abs(b), initial=0.0))
    violated = np.flatnonzero(constant & (b < -tolerance))
    return ~constant, (int(violated[0]) if violated.size else None)


def _new_highs():
    """A HiGHS instance, created with stdout silenced (HiGHS prints a banner once)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            return highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)

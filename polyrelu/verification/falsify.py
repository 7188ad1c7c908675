"""Counterexamples first: a short attack on one case of a property before it is proved.

Two phases, both on the network :func:`polyrelu.verification.certificate.verification_network`
gives (ReLU and linear units, every unit kept):

1. **Projected gradient descent** on the violation margin of each unsafe polytope
   ``{y : C y <= d}``: the margin of ``x`` is ``max_r (C_r f(x) - d_r)`` (``<= 0``: ``x``
   is a counterexample). Its gradient at ``x`` is exact: the row of ``C`` that attains
   the maximum, through the affine map of ``x``'s activation region (one batched
   backward pass over all starts). Sign steps of geometrically shrinking size, projected
   onto the box, from the centre, random corners and random points.
2. **A walk along the regions** from the best points of the attack: on the point's
   region the margin is affine, and one LP minimises it over the region's polytope
   (``min t`` with ``C_r (W x + b) - d_r <= t`` on the region). If the optimum is not a
   counterexample, it lies on the facet that blocks further descent (the region
   constraint with the largest dual); the walk steps just across it into the
   neighbouring region and repeats while the margin improves.

The attack only proposes points (:func:`attack`): the caller re-checks every one exactly
(:func:`polyrelu.verification.counterexample.check_counterexample_exact`), so a wrong
gradient or a rounded LP point can cost time, never an answer.
"""

import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..deadline import Deadline
from ..network.layers import LINEAR
from .certificate import region_constraints

__all__ = ["AttackSettings", "Candidate", "attack", "inner_box", "margins", "input_gradients"]


@dataclass(frozen=True)
class AttackSettings:
    """How much one attack tries (per unsafe polytope of a case).

    Attributes
    ----------
    starts : int
        Starting points of the gradient phase (the centre, random corners, random points)
        in round 0; each later round doubles them, up to ``max_starts``.
    steps : int
        Gradient steps per start; the step shrinks from ``first_step`` to ``last_step``
        times the box's width, geometrically.
    walks : int
        Best distinct points of the gradient phase the region walk starts from.
    walk_steps : int
        Regions one walk visits at most.
    seed : int
        Of the random starts of round 0 (round ``r`` uses ``seed + r``: an attack is
        reproducible).

    The defaults were measured on the ACAS Xu instances whose counterexamples the proof
    search found late (benchmarks/bench_verify.py): 32 starts and 40 steps found none of
    8; 1024 starts and 60 steps 5 of 8 in 0.6 s each, 4096 starts 6 of 8 in 1-3 s. On
    all 45 ACAS Xu instances nnenum calls violated, rounds from 256 starts found 44 in
    52 s in all (rounds from 64 starts: 43 in 85 s; the proof search alone: 39 in 250 s,
    timeouts counted at 30 s); round 0 costs about 0.1 s on an instance that holds.
    """

    starts: int = 256
    max_starts: int = 2048
    steps: int = 60
    first_step: float = 0.25
    last_step: float = 1e-4
    walks: int = 16
    walk_steps: int = 25
    seed: int = 0


@dataclass(frozen=True)
class Candidate:
    """A point the attack found (in float64) inside unsafe polytope ``disjunct``; for a
    point of the region walk (an LP's optimum, perhaps a rounded vertex), the activation
    pattern of its region (for an exact vertex nearby)."""

    x: np.ndarray
    disjunct: int
    pattern: np.ndarray = None


def attack(network, case, solver, deadline, settings=AttackSettings(), round=0):
    """Points of ``case``'s box that ``network`` maps into an unsafe polytope, best first.

    Parameters
    ----------
    network : Network
        ReLU and linear units only, every unit kept (a verification network).
    case : Case
        From :func:`polyrelu.verification.vnnlib.read_vnnlib`.
    solver : LPSolver
        For the region walk (its LPs are counted there).
    deadline : Deadline
        The attack's own budget: checked between gradient steps and between LPs.
    settings : AttackSettings
    round : int
        Round ``r`` starts from ``min(settings.starts * 2**r, settings.max_starts)``
        points drawn with seed ``settings.seed + r``.

    Yields
    ------
    Candidate
        Float64 points whose float64 output satisfies the polytope's rows (to be
        re-checked exactly by the caller); the gradient phase's first, then the walks'.

    Examples
    --------
    ``y = relu(x - 0.999)`` on [0, 1] exceeds 0.0005 only near 1:

    >>> from polyrelu import Network
    >>> from polyrelu.deadline import Deadline
    >>> from polyrelu.geometry.lp import LPSolver
    >>> from polyrelu.verification.vnnlib import read_vnnlib
    >>> net = Network([[[1.0]], [[1.0]]], [[-0.999], [0.0]])
    >>> prop = read_vnnlib("(declare-const X_0 Real) (declare-const Y_0 Real) "
    ...                    "(assert (>= X_0 0)) (assert (<= X_0 1)) (assert (>= Y_0 0.0005))")
    >>> first = next(attack(net, prop.cases[0], LPSolver(), Deadline(1.0)))
    >>> first.disjunct, bool(net.forward(first.x)[0, 0] >= 0.0005)
    (0, True)
    """
    rng = np.random.default_rng(settings.seed + round)
    starts = min(settings.starts << min(round, 30), settings.max_starts)
    box = inner_box(case)
    best = []
    for k, unsafe in enumerate(case.unsafe):  # each polytope gets its share of the time
        share = Deadline(deadline.remaining() / (len(case.unsafe) - k))
        points, margin = _descend(network, box, unsafe, rng, share, settings, starts)
        for i in np.argsort(margin):
            if margin[i] > 0:
                break
            yield Candidate(points[i], k)
        best.extend((margin[i], k, points[i]) for i in _distinct_best(points, margin,
                                                                      settings.walks))
    for _, k, x in sorted(best, key=lambda item: item[0]):
        if deadline.expired():
            return
        found = _walk(network, box, case.unsafe[k], k, x, solver, deadline,
                      settings.walk_steps)
        if found is not None:
            yield found


def inner_box(case):
    """The float64 box ``(lower, upper)`` of the points inside ``case``'s exact box: its
    float bounds, each moved one float inwards where rounding put it outside (``0.1``
    rounds up, so a point at ``float(0.1)`` is not in ``[0, 0.1]``).

    >>> from polyrelu.verification.vnnlib import read_vnnlib
    >>> prop = read_vnnlib("(declare-const X_0 Real) (declare-const Y_0 Real) "
    ...                    "(assert (>= X_0 0)) (assert (<= X_0 0.1)) (assert (>= Y_0 0))")
    >>> _, upper = inner_box(prop.cases[0])
    >>> bool(upper[0] < 0.1), float(np.nextafter(upper[0], 1.0)) == 0.1
    (True, True)
    """
    lower = np.array([v if Fraction(v) >= e else np.nextafter(v, np.inf)
                      for v, e in zip(case.lower, case.lower_exact)])
    upper = np.array([v if Fraction(v) <= e else np.nextafter(v, -np.inf)
                      for v, e in zip(case.upper, case.upper_exact)])
    return lower, np.maximum(upper, lower)


def margins(unsafe, outputs):
    """The violation margin ``max_r (C_r y - d_r)`` of each output row ``y`` (``<= 0``:
    inside the unsafe polytope), and the row attaining it."""
    gaps = outputs @ unsafe.C.T - unsafe.d
    row = np.argmax(gaps, axis=1)
    return gaps[np.arange(len(gaps)), row], row


def input_gradients(network, points, directions):
    """The gradient at each point of ``directions[i] @ f(x)``: exact on the point's
    activation region (a ReLU unit at exactly zero counts as inactive, as in
    :meth:`Network.activation_pattern`). ``network`` keeps every unit (a verification
    network).

    >>> from polyrelu import Network
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])  # |x|
    >>> input_gradients(net, np.array([[-2.0], [3.0]]), np.ones((2, 1))).ravel().tolist()
    [-1.0, 1.0]
    """
    slopes, h = [], points
    for layer in network.layers[:-1]:
        z = h @ layer.weight.T + layer.bias
        slopes.append((z > 0) | (layer.units == LINEAR))
        h = layer.output(z)
    gradient = directions @ network.layers[-1].weight
    for layer, slope in zip(reversed(network.layers[:-1]), reversed(slopes)):
        gradient = (gradient * slope) @ layer.weight
    return gradient


def _starts(box, rng, count):
    """The box's centre, then random corners and random points in random order (``count``
    in all; any prefix is a fair mix)."""
    lower, upper = box
    corners = np.where(rng.random((count // 2, len(lower))) < 0.5, lower, upper)
    inside = lower + rng.random((count - 1 - len(corners), len(lower))) * (upper - lower)
    mixed = np.vstack([corners, inside])
    return np.vstack([(lower + upper) / 2, mixed[rng.permutation(len(mixed))]])


def _descend(network, box, unsafe, rng, deadline, settings, starts):
    """Projected sign-gradient descent on the margin from ``starts`` points: the best
    point of each and its margin. If the first step shows that all steps for all starts
    would outlast ``deadline``, only as many starts as fit go on (at least 4)."""
    x = np.clip(_starts(box, rng, starts), *box)
    width = box[1] - box[0]
    best_x, best = x.copy(), np.full(len(x), np.inf)
    sizes = np.geomspace(settings.first_step, settings.last_step, settings.steps)
    began = time.monotonic()
    for step, size in enumerate(sizes):
        margin, row = margins(unsafe, network.forward(x))
        better = margin < best
        best_x[better], best[better] = x[better], margin[better]
        if best.min() <= 0 or deadline.expired():
            break
        gradient = input_gradients(network, x, unsafe.C[row])
        x = np.clip(x - size * width * np.sign(gradient), *box)
        if step == 0:
            fit = int(len(x) * deadline.remaining() / ((time.monotonic() - began) * len(sizes)))
            if fit < len(x):
                keep = max(fit, 4)
                x, row, best_x, best = x[:keep], row[:keep], best_x[:keep], best[:keep]
    else:
        margin, _ = margins(unsafe, network.forward(x))
        better = margin < best
        best_x[better], best[better] = x[better], margin[better]
    return best_x, best


def _distinct_best(points, margin, count):
    """Indices of the ``count`` best points, no two at the same position."""
    chosen = []
    for i in np.argsort(margin):
        if len(chosen) == count:
            break
        if all(not np.array_equal(points[i], points[j]) for j in chosen):
            chosen.append(int(i))
    return chosen


def _walk(network, box, unsafe, k, x, solver, deadline, steps, tries=4):
    """Minimise the margin of ``unsafe`` (polytope ``k``) region by region from ``x``: a
    Candidate at the first region whose minimum is a counterexample, or None.

    From each region's minimiser the walk tries the neighbours across the facets it lies
    on (the most promising first, see :func:`_neighbours`; at most ``tries``) until one's
    minimum is lower; it stops where none is, or after ``steps`` regions. A neighbour is
    the pattern with the facet's unit flipped: its closed region (perhaps empty) is where
    the network is that pattern's affine map, so its LP minimum is a true margin."""
    d = len(x)
    rows = (np.vstack([np.eye(d), -np.eye(d)]), np.concatenate([box[1], -box[0]]))

    def minimum(pattern):
        A, b, _ = region_constraints(network, pattern, rows)
        W, c = network.feature_map(pattern)  # the margin's rows unscaled: comparable
        return (A[2 * d:], b[2 * d:],        # between regions
                *_region_minimum(solver, A, b, unsafe.C @ W, unsafe.d - unsafe.C @ c, box))

    pattern = network.activation_pattern(x)[0]
    seen = {pattern.tobytes()}
    A, b, x, value = minimum(pattern)
    for _ in range(steps):
        if x is None or deadline.expired():
            return None
        if value <= 0:
            return Candidate(x, k, pattern)
        for flipped in _neighbours(network, unsafe, x, pattern, A, b)[:tries]:
            if flipped.tobytes() in seen:
                continue
            seen.add(flipped.tobytes())
            found = minimum(flipped)
            if found[2] is not None and found[3] < value:
                pattern, (A, b, x, value) = flipped, found
                break
        else:
            return None
    return None


def _neighbours(network, unsafe, x, pattern, A, b):
    """The patterns across the region facets ``A_j x <= b_j`` (one unit row per slot,
    outward) that ``x`` lies on, slot ``j`` flipped, the most promising first: where the
    neighbour's margin falls fastest going on across the facet."""
    on = np.flatnonzero(b - A @ x <= 1e-9 * (1.0 + np.abs(b)))
    _, (row,) = margins(unsafe, network.forward(x))
    flips, slopes = [], []
    for j in on:
        flipped = pattern.copy()
        flipped[j] = not flipped[j]
        gradient = unsafe.C[row] @ network.affine_maps(flipped).W_eff
        flips.append(flipped)
        slopes.append(gradient @ A[j])
    return [flips[i] for i in np.argsort(slopes)]


def _region_minimum(solver, A, b, rows, rhs, box):
    """``min t`` subject to ``A x <= b`` and ``rows x - rhs <= t``: the minimiser and the
    minimum (None, inf if the LP fails)."""
    n = A.shape[1]
    system = np.block([[A, np.zeros((len(A), 1))], [rows, -np.ones((len(rows), 1))]])
    cost = np.zeros(n + 1)
    cost[-1] = -1.0
    result = solver.maximize(cost, system, np.concatenate([b, rhs]),
                             lower=np.append(box[0], -np.inf), upper=np.append(box[1], np.inf))
    if result.status != "optimal":
        return None, np.inf
    return np.clip(result.x[:n], *box), -result.value

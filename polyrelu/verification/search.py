"""Exact verification of VNN-LIB properties: counterexamples and checkable certificates.

A property (see :mod:`polyrelu.verification.vnnlib`) lists input boxes and, for each, a union
of unsafe output polytopes ``{y : C y <= d}``. :func:`verify` decides whether some
input of a box is mapped into an unsafe polytope:

1. Branch and bound over the input box. On each sub-box, sound linear bounds
   (:func:`polyrelu.geometry.symbolic.linear_bounds`) try to refute every unsafe polytope
   (one row ``C_r f(x) > d_r`` on the whole sub-box, or a non-negative
   combination of its rows found by an LP over their linear bounds). Where those bounds
   fall short but not by much, the relaxation slopes of the unstable units are optimised
   (:func:`polyrelu.geometry.symbolic.optimized_bounds_batch`, alpha-CROWN style, warm
   started from the parent's slopes) and the refutation is tried again; the slopes go
   into the certificate, and the checker recomputes the bound with them. Refuted
   sub-boxes are closed. A few cheap points (the centre, the minimisers of the bounds) are
   tried as counterexamples.
2. A sub-box whose bounds leave at most ``exact_threshold`` neurons unstable, or
   that is ``exact_depth`` bisections deep, is decided exactly, splitting it layer
   by layer into star sets (:func:`polyrelu.regions.splitting.split_batches`): a partial
   piece, on which the earlier layers are affine, is closed whole when the bounds
   of the remaining layers over its bounding box refute every unsafe polytope;
   each full activation region gets one LP per unsafe polytope: an empty
   intersection comes with LP dual multipliers (a Farkas certificate), a
   non-empty one gives a counterexample.
3. Otherwise the sub-box is bisected: every input is tried (one batched bound
   computation) and the bisection that improves the bounds most is kept, counting the
   units its halves leave unstable against it (see ``UNSTABLE_COST``).

Why input bisection and optimised slopes, not neuron branching (measured on ACAS Xu, where
the open instances were): the instances polyrelu left open were lost to the choice of the
bisection (thin inputs split again and again because a half's default bounds can be looser
than its parent's), not to the bounds; with the parent's bound as a floor and the unstable
count in the score, 4_9, 3_6, 4_1, 1_3, 2_1 and 4_2 with prop_3 go from 28-30 s (or a
timeout) to 0.1-3 s. Optimised slopes gain 3-10 % of the gap per box and help where boxes
are many (1_1 prop_5). Neuron branching is not built: on these 5-input networks the exact
phase already splits on neurons once few are unstable.

Every "violated" answer carries a counterexample re-checked in exact rational
arithmetic on the network's float64 weights (:func:`check_counterexample_exact`)
and, for ONNX files, with onnxruntime (:func:`check_counterexample_onnx`). Every
"holds" answer carries a :class:`Certificate`, which
:func:`polyrelu.verification.checker.check_certificate` re-validates without trusting
the search (every constraint re-derived, coverage by a rebuilt splitting tree, see
docs/certificate-format.md); :func:`polyrelu.verification.checked.verify` (the public
``polyrelu.verify``) turns a "holds" it rejects into "unknown".

Tolerances: the regions are those of the engine (pieces thinner than
``Options.min_radius_rel`` times the domain diameter are not regions, see
:mod:`polyrelu.regions.splitting`); Farkas certificates must prove emptiness with a
margin of 1e-10 relative to the magnitude of their terms (:func:`farkas_gap`),
far above the float64 rounding of the rebuilt constraints; the search closes a box
by bounds only with a margin of 1e-9 relative (the checker then only needs the
bound to be positive). A region that neither misses an unsafe set by the margin
nor yields an exact counterexample makes the answer "unknown": polyrelu does not
guess at distances below its resolution (about 1e-9 relative).
"""

import time
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..deadline import Deadline, hard_limit
from ..errors import InvalidNetworkError, PolyreluError, SolverError, TimeLimitError
from ..geometry.domain import Domain
from ..geometry.exact import exact_affine_maps, solve_exact, to_fractions
from ..geometry.lp import LPSolver
from ..geometry.symbolic import linear_bounds, linear_bounds_batch, optimized_bounds_batch
from ..options import Options
from ..regions.parallel import process_pool
from ..regions.splitting import Splitter, split_batches
from .certificate import (
    BOUND_MARGIN,
    BoundPiece,
    BoxHint,
    Certificate,
    RegionPiece,
    StarPiece,
    box_from_path,
    farkas_gap,
    free_inputs,
    network_fingerprint,
    piece_counts,
    region_constraints,
    rigorous_bounding_box,
    star_box_hint,
    tail_network,
    verification_network,
)
from .counterexample import Counterexample, check_counterexample_exact
from .falsify import attack

__all__ = ["verify", "VerificationResult", "result_file_text", "timeout_result"]


@dataclass
class VerificationResult:
    """Outcome of :func:`verify`.

    Attributes
    ----------
    status : str
        ``"holds"``, ``"violated"``, ``"timeout"`` or ``"unknown"`` (a region
        touches an unsafe set within float64 rounding and no exact
        counterexample was found there).
    counterexample : Counterexample or None
    certificate : Certificate or None (only for "holds")
    stats : dict
        boxes, lps, seconds, bound_pieces, region_pieces.
    """

    status: str
    counterexample: Counterexample = None
    certificate: Certificate = None
    stats: dict = field(default_factory=dict)


class _Timeout(Exception):
    pass


class _Undecided(Exception):
    pass


class _Cancelled(Exception):
    pass


class _Found(Exception):
    """An attack round between sub-boxes found a counterexample."""

    def __init__(self, counterexample):
        super().__init__()
        self.counterexample = counterexample


def verify(network, prop, *, timeout=None, options=None, exact_threshold=10, exact_depth=12,
           jobs=1, progress=None, deadline=None):
    """Decide whether ``network`` satisfies the VNN-LIB property ``prop``.

    Parameters
    ----------
    network : Network
    prop : Property
        From :func:`polyrelu.verification.vnnlib.read_vnnlib`.
    timeout : float, optional
        Seconds; the answer is "timeout" when exceeded.
    deadline : Deadline, optional
        Instead of ``timeout``: a :class:`polyrelu.deadline.Deadline` (e.g. shared with
        the caller's other work). Worker processes still running at the deadline are
        killed.
    options : Options, optional
    exact_threshold : int
        Sub-boxes with at most this many unstable neurons are decided exactly.
    exact_depth : int
        Sub-boxes this many bisections deep are decided exactly whatever their bounds
        (where bisection stalls, the exact phase's layer-wise pruning does better).
    jobs : int
        Worker processes. With ``jobs > 1`` the first bisections are made here and
        the open sub-boxes are searched in parallel; the answer is the same.
    progress : callable, optional
        Called with the number of boxes processed so far, every 64 boxes (in this
        process only).

    Returns
    -------
    VerificationResult

    Examples
    --------
    ``y = relu(x) - relu(-x) = x`` on [-1, 1] never exceeds 1 but reaches it:

    >>> from polyrelu import Network
    >>> from polyrelu.verification.vnnlib import read_vnnlib
    >>> net = Network([[[1.0], [-1.0]], [[1.0, -1.0]]], [[0.0, 0.0], [0.0]])
    >>> text = "(declare-const X_0 Real) (declare-const Y_0 Real) " \\
    ...        "(assert (>= X_0 -1)) (assert (<= X_0 1)) (assert (>= Y_0 {}))"
    >>> verify(net, read_vnnlib(text.format("1.5"))).status
    'holds'
    >>> result = verify(net, read_vnnlib(text.format("1")))
    >>> result.status, result.counterexample.x.tolist(), result.counterexample.exact
    ('violated', [1.0], True)
    """
    _check_dimensions(network, prop)
    if jobs < 1:
        raise PolyreluError(f"jobs must be at least 1, got {jobs}")
    searched = verification_network(network, prop)
    settings = _Settings(options or Options(), exact_threshold, exact_depth,
                         deadline or Deadline(timeout),
                         searched if prop.input_rows else network, prop.output_dim)
    start = time.monotonic()
    total = _Outcome()
    remaining = settings.deadline.remaining()
    try:  # a search step that outlives the deadline is stopped (main thread only)
        with hard_limit(None if remaining == float("inf") else remaining + _WORKER_GRACE,
                        "verify"):
            _search_all(searched, prop, settings, jobs, total, progress)
    except TimeLimitError:
        total.status, total.counterexample = "timeout", None
    certificate = None
    if total.status == "holds":
        certificate = Certificate(network_fingerprint(network), total.pieces,
                                  hints=total.hints)
    stats = {"boxes": total.boxes, "lps": total.lps, "seconds": time.monotonic() - start,
             "falsify_seconds": total.falsify_seconds, **piece_counts(total.pieces)}
    return VerificationResult(total.status, total.counterexample, certificate, stats)


#: The attacks (:mod:`polyrelu.verification.falsify`): round 0 before the proof, then
#: another, with twice the starts, whenever the rounds so far have taken less than
#: ``FALSIFY_SHARE`` of the time spent; one round takes at most that share of the time
#: left and at most ``FALSIFY_CAP`` seconds (also without a limit).
FALSIFY_SHARE = 0.1
FALSIFY_CAP = 2.0

#: Inputs tried for a bisection when there are more (see _CaseSearch._best_split).
SPLIT_CANDIDATES = 16

#: What a bisection's score (see _CaseSearch._best_split) loses per unit its halves leave
#: unstable, relative to the best margin sum: a bisection that fixes many units' signs pays
#: later even when the bounds gain little now (bounds are not monotone under bisection;
#: ACAS Xu 4_2 prop_3: 30 s timeout without, 1.2-2.4 s for costs 0.003-0.03).
UNSTABLE_COST = 0.01

#: Gradient steps on the relaxation slopes of a sub-box the default bounds leave open
#: (0: none), tried only where some row's bound misses by at most SLOPE_REACH of its
#: distance to the row's value at the centre (see _CaseSearch._optimized_refutations).
#: Measured on ACAS Xu (loaded 2-core machine): ten steps cost about as much as the bounds
#: of a bisection's ten halves; without the reach test they slowed the easy instances
#: (1_1 prop_1: 1.75 s -> 2.5 s, the same 65 boxes); with reach 0.5 that cost is gone
#: and 1_1 prop_5 (timeout without slopes) is decided in 17-25 s.
SLOPE_STEPS = 10
SLOPE_REACH = 0.5


def _search_all(network, prop, settings, jobs, total, progress):
    """Attack every case of ``prop``, then search them (in ``jobs`` processes; attacks go
    on in this process only), merging into ``total``."""
    attacks = _Attacks(settings)
    found = attacks.first_round(network, prop)
    if found is not None:
        total.status, total.counterexample = "violated", found
    frontier = 4 * jobs if jobs > 1 else None
    for index in range(len(prop.cases)):
        if total.status != "holds":
            break
        total.add(_search(network, prop, index, (), settings, frontier, progress, attacks))
    if total.status == "holds" and total.open_tasks:
        _search_in_parallel(network, prop, settings, jobs, total)
    total.lps += attacks.solver.count
    total.falsify_seconds = attacks.spent


class _Attacks:
    """The attack rounds of one :func:`verify` call and the time they took."""

    def __init__(self, settings):
        self.settings, self.start = settings, time.monotonic()
        self.solver = LPSolver(settings.options)
        self.spent, self.round = 0.0, 0
        self.root_bounds = {}  # case index -> the bounds over its whole box (for the search)

    def first_round(self, network, prop):
        """Round 0 on every case within one budget (but those whose box the bounds refute
        at once): a confirmed Counterexample or None."""
        began, budget = time.monotonic(), self._budget()
        try:
            for index, case in enumerate(prop.cases):
                search = _CaseSearch(network, case, index, self.settings, self.solver, None)
                refuted, self.root_bounds[index] = search.refuted_at_once()
                if refuted:
                    continue
                found = search.falsify(budget, 0)
                if found is not None or budget.expired():
                    return found
            return None
        finally:
            self.spent += time.monotonic() - began
            self.round = 1

    def due(self):
        """Whether the rounds so far took less than FALSIFY_SHARE of the time spent."""
        return self.spent < FALSIFY_SHARE * (time.monotonic() - self.start)

    def next_round(self, search):
        """One more round on the case of ``search`` (a _CaseSearch): a Counterexample or
        None."""
        began = time.monotonic()
        try:
            return search.falsify(self._budget(), self.round)
        finally:
            self.spent += time.monotonic() - began
            self.round += 1

    def _budget(self):
        remaining = self.settings.deadline.remaining()
        return Deadline(min(FALSIFY_CAP, FALSIFY_SHARE * remaining))


@dataclass(frozen=True)
class _Settings:
    options: Options
    exact_threshold: int
    exact_depth: int
    deadline: Deadline
    # the network given (with its inputs appended for a property with input rows, see
    # vnnlib.Property): counterexamples are checked and evaluated on it
    original: object
    outputs: int  # the given network's outputs (a counterexample's output)


@dataclass
class _Outcome:
    """What one search (or several, merged) found."""

    status: str = "holds"
    counterexample: Counterexample = None
    pieces: list = field(default_factory=list)
    hints: list = field(default_factory=list)
    open_tasks: list = field(default_factory=list)
    boxes: int = 0
    lps: int = 0
    falsify_seconds: float = 0.0  # merged by the caller, not by add

    def add(self, other):
        if self.status == "holds":
            self.status, self.counterexample = other.status, other.counterexample
        self.pieces.extend(other.pieces)
        self.hints.extend(other.hints)
        self.open_tasks.extend(other.open_tasks)
        self.boxes += other.boxes
        self.lps += other.lps


_STOP = None  # set in worker processes: another worker has decided the property


def _search(network, prop, index, path, settings, frontier=None, progress=None,
            attacks=None):
    """Search case ``index`` below ``path``; with ``frontier``, stop once that many
    sub-boxes are open and return them in ``open_tasks``. With ``attacks`` (an
    _Attacks), attack rounds run between sub-boxes when due."""
    solver = LPSolver(settings.options)
    search = _CaseSearch(network, prop.cases[index], index, settings, solver, progress,
                         attacks)
    outcome = _Outcome()
    try:
        root = attacks.root_bounds.get(index) if attacks is not None and not path else None
        outcome.counterexample, open_paths = search.run(outcome.pieces, path, frontier, root)
        outcome.open_tasks = [(index, p) for p in open_paths]
        if outcome.counterexample is not None:
            outcome.status = "violated"
    except _Found as found:
        outcome.status, outcome.counterexample = "violated", found.counterexample
    except (_Timeout, TimeLimitError):
        outcome.status = "timeout"
    except _Undecided:
        outcome.status = "unknown"
    except _Cancelled:
        outcome.status = "cancelled"
    outcome.boxes, outcome.lps = search.boxes, solver.count
    outcome.hints = search.hints
    return outcome


def _search_in_parallel(network, prop, settings, jobs, total):
    """Search ``total.open_tasks`` in ``jobs`` processes, merging into ``total``; the
    first answer other than "holds" stops the other workers."""
    import multiprocessing

    tasks, total.open_tasks = total.open_tasks, []
    context = multiprocessing.get_context()
    stop = context.Event()
    remaining = settings.deadline.remaining()
    try:
        with process_pool(jobs, mp_context=context, initializer=_set_stop,
                          initargs=(stop,)) as executor:
            futures = [executor.submit(_search, network, prop, index, path, settings)
                       for index, path in tasks]
            # workers check the deadline themselves; one stuck in a long step is killed
            for future in as_completed(futures, timeout=None if remaining == float("inf")
                                       else remaining + _WORKER_GRACE):
                if future.cancelled():  # cancelled below after another worker's answer
                    continue
                outcome = future.result()
                if outcome.status == "cancelled":
                    continue
                total.add(outcome)
                if total.status != "holds":
                    stop.set()
                    for other in futures:
                        other.cancel()
    except FuturesTimeout:
        total.add(_Outcome(status="timeout"))


_WORKER_GRACE = 1.0  # seconds a worker may overrun the deadline before it is killed


def timeout_result(seconds, note=""):
    """The :class:`VerificationResult` of a search stopped by its time limit from outside
    (no answer; ``note`` says where it stopped)."""
    return VerificationResult("timeout", stats={"boxes": 0, "lps": 0, "seconds": seconds or 0.0,
                                                "note": note})


def _set_stop(event):
    global _STOP
    _STOP = event


def result_file_text(result):
    """The VNN-COMP result file for a :class:`VerificationResult`: ``unsat`` (holds),
    ``sat`` with the counterexample's inputs ``X_i`` and outputs ``Y_j``, ``timeout``
    or ``unknown``."""
    status = {"holds": "unsat", "violated": "sat"}.get(result.status, result.status)
    if status != "sat":
        return status + "\n"
    cex = result.counterexample
    values = [f"(X_{i} {float(v)!r})" for i, v in enumerate(cex.x)]
    values += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(cex.output)]
    return "sat\n(" + "\n ".join(values) + ")\n"


def _check_dimensions(network, prop):
    if network.input_dim != prop.input_dim:
        raise InvalidNetworkError(f"the property {prop.source} has {prop.input_dim} inputs but "
                                  f"the network has {network.input_dim}")
    if network.output_dim != prop.output_dim:
        raise InvalidNetworkError(f"the property {prop.source} has {prop.output_dim} outputs "
                                  f"but the network has {network.output_dim}")


class _CaseSearch:
    """Branch and bound over one input box of a property."""

    def __init__(self, network, case, index, settings, solver, progress, attacks=None):
        self.network, self.case, self.index = network, case, index
        self.attacks = attacks
        self.options, self.solver = settings.options, solver
        self.exact_threshold, self.deadline = settings.exact_threshold, settings.deadline
        self.exact_depth, self.original = settings.exact_depth, settings.original
        self.outputs = settings.outputs
        self.progress = progress
        self.boxes = 0
        self.hints = []  # BoxHints of the open pieces at each layer (for the checker)
        self.width = np.where(case.upper > case.lower, case.upper - case.lower, 1.0)
        self.free, self.free_network = free_inputs(network, case)
        self.rows = np.vstack([u.C for u in case.unsafe])
        self.rhs = np.concatenate([u.d for u in case.unsafe])
        sizes = [len(u.d) for u in case.unsafe]
        self.row_ranges = [range(s, s + n) for s, n in zip(np.cumsum([0] + sizes), sizes)]

    def run(self, pieces, path=(), frontier=None, bounds=None):
        """Search below ``path`` (whose box's bounds are ``bounds``, if known), appending the
        closing pieces to ``pieces``.

        Returns ``(counterexample or None, open paths)``; paths stay open only when
        the search stopped because ``frontier`` sub-boxes were waiting.
        """
        stack = [(path, bounds, None)]
        while stack:
            if frontier is not None and len(stack) >= frontier:
                return None, [path for path, _, _ in stack]
            path, bounds, warm = stack.pop()
            self._tick()
            lower, upper = box_from_path(self.case, path)
            if bounds is None:
                bounds = linear_bounds(self.network, lower, upper, self.rows)
            refuted = [self._refutation(bounds, k, lower, upper)
                       for k in range(len(self.row_ranges))]
            if all(lam is not None for lam in refuted):
                pieces.append(BoundPiece(self.index, path, tuple(refuted)))
                continue
            closed, slopes, warm = self._optimized_refutations(lower, upper, bounds, refuted,
                                                               warm)
            if all(lam is not None for lam in closed):
                pieces.append(BoundPiece(self.index, path, tuple(closed), tuple(slopes)))
                continue
            found = self._try_points(lower, upper, bounds, refuted)
            if found is not None:
                return found, []
            if len(path) >= self.exact_depth or bounds.unstable_count() <= self.exact_threshold:
                found = self._decide_exactly(path, lower, upper, pieces)
                if found is not None:
                    return found, []
                continue
            halves = self._best_split(path, lower, upper, refuted, bounds)
            stack.extend(reversed([(child, half, warm) for child, half in halves]))
        return None, []

    def _optimized_refutations(self, lower, upper, bounds, refuted, warm):
        """Refute the unsafe sets that ``refuted`` leaves open with optimised relaxation
        slopes (:func:`polyrelu.geometry.symbolic.optimized_bounds_batch`, warm-started from
        ``warm``, the parent's slopes of every row), if they may: when for every open set
        some row's default bound (``bounds``) misses its right-hand side by at most
        ``SLOPE_REACH`` of the distance from the bound to the row's value at the box's
        centre (which no bound can pass). Returns ``(multipliers, slopes,
        row slopes)``: per unsafe set its multipliers or None and its slopes (None where
        the default slopes refute it; else the slopes of every hidden unit, layer after
        layer, for the row ``lam @ C_k``), and the optimised slopes of every row (for the
        children)."""
        if not SLOPE_STEPS or not self._within_reach(lower, upper, bounds, refuted):
            return refuted, [None] * len(refuted), warm
        (optimized,), row_slopes = optimized_bounds_batch(
            self.network, lower[None], upper[None], self.rows, steps=SLOPE_STEPS,
            slopes=warm)
        if row_slopes is None:
            return refuted, [None] * len(refuted), None
        row_slopes = [a[0] for a in row_slopes]
        closed, slopes = list(refuted), [None] * len(refuted)
        for k, lam in enumerate(refuted):
            if lam is None:
                closed[k], slopes[k] = self._optimized_refutation(k, lower, upper, optimized,
                                                                  row_slopes)
        return closed, slopes, [a[None] for a in row_slopes]

    def _within_reach(self, lower, upper, bounds, refuted):
        """Whether optimised slopes may refute every open unsafe set (see
        :meth:`_optimized_refutations`)."""
        value = self.rows @ self.network.forward(((lower + upper) / 2)[None])[0]
        short = (self.rhs - bounds.lower) / np.maximum(value - bounds.lower, 1e-300)
        return all(min((short[r] for r in self.row_ranges[k]), default=np.inf) <= SLOPE_REACH
                   for k, lam in enumerate(refuted) if lam is None)

    def _optimized_refutation(self, k, lower, upper, optimized, row_slopes):
        """``(lam, slopes)`` refuting unsafe set k with optimised slopes, or ``(None, None)``:
        one row whose optimised bound exceeds its right-hand side, else the combination of
        the LP over the optimised linear bounds, its slopes optimised once more."""
        rows = list(self.row_ranges[k])
        lam = self._combination(optimized, k, lower, upper)
        if lam is None:
            return None, None
        if np.count_nonzero(lam) == 1:
            r = rows[int(np.argmax(lam))]
            return lam, np.concatenate([a[r] for a in row_slopes])
        start = [np.tensordot(lam / lam.sum(), a[rows], axes=1)[None, None] for a in row_slopes]
        (combined,), slopes = optimized_bounds_batch(
            self.network, lower[None], upper[None], [lam @ self.rows[rows]],
            steps=SLOPE_STEPS, slopes=start)
        rhs = lam @ self.rhs[rows]
        if combined.lower[0] > rhs + BOUND_MARGIN * (1 + abs(rhs)):
            return lam, np.concatenate([a[0, 0] for a in slopes])
        return None, None

    def refuted_at_once(self):
        """``(refuted, bounds)``: whether the bounds over the whole box refute every unsafe
        polytope (the first step of :meth:`run`; then an attack is pointless), and those
        bounds (:meth:`run` starts from them)."""
        lower, upper = box_from_path(self.case, ())
        bounds = linear_bounds(self.network, lower, upper, self.rows)
        return all(self._refutation(bounds, k, lower, upper) is not None
                   for k in range(len(self.row_ranges))), bounds

    def falsify(self, budget, round):
        """The first candidate of round ``round`` of
        :func:`polyrelu.verification.falsify.attack` (within the Deadline ``budget``) that
        the exact re-check confirms, as a Counterexample, or None."""
        for candidate in attack(self.network, self.case, self.solver, budget, round=round):
            found = self._counterexample(candidate.x, candidate.disjunct, candidate.pattern)
            if found is not None:
                return found
        return None

    def _best_split(self, path, lower, upper, refuted, bounds):
        """The two halves (path, bounds) of the bisection that improves the bounds most:
        each candidate input is tried; the score is the sum over the open unsafe sets of
        the best single-row margin in each half, less ``UNSTABLE_COST`` times the best
        such sum's size per unit the halves leave unstable. The candidates are all inputs,
        or, past ``SPLIT_CANDIDATES`` of them, the ones whose width weighs most in the open rows'
        linear bounds (``bounds``, of this box): trying all 784 inputs of an MNIST net
        is one bound computation over 1568 boxes, longer than the time limit."""
        open_sets = [k for k, lam in enumerate(refuted) if lam is None]
        width = (upper - lower) / self.width
        dims = np.arange(len(lower))
        if len(dims) > SPLIT_CANDIDATES:
            rows = [r for k in open_sets for r in self.row_ranges[k]]
            weight = np.abs(bounds.coefficients[rows]).sum(axis=0) * (upper - lower)
            dims = np.sort(np.argsort(-weight, kind="stable")[:SPLIT_CANDIDATES])
        children = [path + ((int(dim), side),) for dim in dims for side in (0, 1)]
        boxes = [box_from_path(self.case, child) for child in children]
        halves = linear_bounds_batch(self.network, np.array([b[0] for b in boxes]),
                                     np.array([b[1] for b in boxes]), self.rows)
        scores = np.array([sum(self._margin(halves[i], k, bounds, boxes[i])
                               for i in (2 * j, 2 * j + 1) for k in open_sets)
                           for j in range(len(dims))])
        unstable = np.array([halves[i].unstable_count() + halves[i + 1].unstable_count()
                             for i in range(0, len(halves), 2)])
        best = scores.max()
        if np.isfinite(best):
            scores = scores - UNSTABLE_COST * abs(best) * unstable
        scores[width[dims] <= 1e-12] = -np.inf
        # among (nearly) equally good splits, halve the relatively widest input
        ties = scores >= scores.max() - 1e-9 * (1.0 + abs(scores.max()))
        j = int(np.argmax(np.where(ties, width[dims], -np.inf)))
        return list(zip(children[2 * j:2 * j + 2], halves[2 * j:2 * j + 2]))

    def _margin(self, bounds, k, parent, box):
        """The best single-row margin of unsafe set k on a half ``box``: the half's own
        bound or, where it is looser (the relaxation's slopes are chosen per box, so a
        half's bound can be worse than its parent's), the parent's linear bound
        minimised over the half."""
        rows = list(self.row_ranges[k])
        if not rows:
            return -np.inf
        coefficients = parent.coefficients[rows]
        inherited = parent.offsets[rows] + np.minimum(coefficients * box[0],
                                                      coefficients * box[1]).sum(axis=1)
        return float(np.max(np.maximum(bounds.lower[rows], inherited) - self.rhs[rows]))

    def _tick(self):
        self.boxes += 1
        if self.deadline.expired():
            raise _Timeout
        if _STOP is not None and _STOP.is_set():
            raise _Cancelled
        if self.progress is not None and self.boxes % 64 == 0:
            self.progress(self.boxes)
        if self.attacks is not None and self.attacks.due():
            found = self.attacks.next_round(self)
            if found is not None:
                raise _Found(found)

    def _refutation(self, bounds, k, lower, upper, network=None):
        """Multipliers on polytope k's rows proving the box misses it, or None.

        One row whose lower bound exceeds its right-hand side is tried first; then
        an LP over the rows' linear lower bounds ``g_r x + h_r <= d_r`` on the box:
        if that set is empty, its Farkas multipliers combine the rows (and the combined
        row's own bound must refute it)."""
        network = self.network if network is None else network
        rows = list(self.row_ranges[k])
        lam = self._combination(bounds, k, lower, upper)
        if lam is None or np.count_nonzero(lam) == 1:
            return lam
        combined = linear_bounds(network, lower, upper, [lam @ self.rows[rows]])
        rhs = lam @ self.rhs[rows]
        return lam if combined.lower[0] > rhs + BOUND_MARGIN * (1 + abs(rhs)) else None

    def _combination(self, bounds, k, lower, upper):
        """Multipliers on polytope k's rows that may refute it: a unit vector on a row whose
        bound already exceeds its right-hand side (proven), or the Farkas multipliers of
        the LP over the rows' linear bounds (to be proven by the combined row's bound)."""
        rows = list(self.row_ranges[k])
        margins = bounds.lower[rows] - self.rhs[rows] - BOUND_MARGIN * (1 + np.abs(self.rhs[rows]))
        lam = np.zeros(len(rows))
        if len(rows) and margins.max() > 0:
            lam[int(np.argmax(margins))] = 1.0
            return lam
        if len(rows) < 2:
            return None
        d = len(lower)
        A = np.vstack([bounds.coefficients[rows], np.eye(d), -np.eye(d)])
        b = np.concatenate([self.rhs[rows] - bounds.offsets[rows], upper, -lower])
        _, radius, y = self.solver.signed_inradius(A, b)
        if radius >= 0 or not np.any(y[:len(rows)] > 0):
            return None
        lam = y[:len(rows)] / y[:len(rows)].max()
        return None if np.count_nonzero(lam) == 1 else lam

    def _try_points(self, lower, upper, bounds, refuted):
        points = [(lower + upper) / 2]
        for k, rows in enumerate(self.row_ranges):
            if refuted[k] is None:
                for coefficients in [bounds.coefficients[r] for r in rows] + \
                        [bounds.coefficients[list(rows)].sum(axis=0)]:
                    points.append(np.where(coefficients > 0, lower, upper))
        outputs = self.network.forward(np.array(points))
        for x, y in zip(points, outputs):
            for k, unsafe in enumerate(self.case.unsafe):
                if refuted[k] is None and unsafe.contains(y):
                    found = self._counterexample(x, k)
                    if found is not None:
                        return found
        return None

    def _counterexample(self, x, disjunct, pattern=None):
        """A Counterexample at ``x`` if the exact re-check confirms it, else None. With the
        activation ``pattern`` of a region around ``x``, a nearby vertex of the region's
        intersection with the unsafe set is tried too (solved exactly)."""
        x = np.clip(x, self.case.lower, self.case.upper)
        candidates = [lambda: to_fractions(x)]  # the vertex (exact, slow) only if x fails
        if pattern is not None:
            candidates.append(lambda: self._vertex_near(x, pattern, disjunct))
        for candidate in candidates:
            point = candidate()
            if point is not None and check_counterexample_exact(self.original, self.case,
                                                                disjunct, point):
                x = np.array([float(v) for v in point])
                return Counterexample(x, self.original.forward(x[None])[0][:self.outputs],
                                      self.index, disjunct, tuple(point))
        return None

    def _vertex_near(self, x, pattern, disjunct):
        """The exact vertex defined by the constraints nearly active at ``x`` (the input
        box, the ReLU units' hyperplanes, the unsafe rows), or None if they do not fix one."""
        hidden, output = exact_affine_maps(self.network, pattern)
        hidden = [hidden[unit] for unit in self.network.slot_units()]
        d = len(x)
        equations = [([Fraction(int(i == j)) for j in range(d)], bound)
                     for i in range(d)
                     for bound in (self.case.lower_exact[i], self.case.upper_exact[i])]
        equations += [(a, -c) for a, c in hidden]
        unsafe = self.case.unsafe[disjunct]
        for row, rhs in zip(unsafe.C, unsafe.d_exact):
            coefficients = to_fractions(row)
            equations.append(([sum((w * a[k] for w, (a, _) in zip(coefficients, output) if w),
                                   Fraction(0)) for k in range(d)],
                              rhs - sum((w * c for w, (_, c) in zip(coefficients, output) if w),
                                        Fraction(0))))
        floats = np.array([[float(v) for v in a] for a, _ in equations])
        rhs = np.array([float(r) for _, r in equations])
        norms = np.linalg.norm(floats, axis=1)
        gaps = np.abs(floats @ x - rhs) / np.where(norms > 0, norms, np.inf)
        chosen = []
        for i in np.argsort(gaps):
            if gaps[i] > 1e-6 * (1 + np.abs(x).max()) or len(chosen) == d:
                break
            if np.linalg.matrix_rank(floats[chosen + [i]]) == len(chosen) + 1:
                chosen.append(int(i))
        if len(chosen) < d:
            return None
        return solve_exact([equations[i][0] for i in chosen], [equations[i][1] for i in chosen])

    def _decide_exactly(self, path, lower, upper, pieces):
        """Decide a sub-box on its activation regions, split layer by layer (star sets);
        a partial piece whose remaining layers' bounds refute every unsafe set over the
        piece's bounding box is closed whole (a :class:`StarPiece`)."""
        free = self.free
        lower, upper = lower[free], upper[free]
        domain = Domain.box(lower, upper)
        splitter = Splitter(self.free_network, domain, self.options, self.solver, track=True)
        reach = np.maximum(np.abs(lower), np.abs(upper))

        def close_stars(batch, layer, map_A, map_c):
            keep = self._close_stars(path, batch, layer, lower, upper, pieces)
            batch.keep(keep)
            return batch, map_A[keep], map_c[keep]

        for batch in split_batches(splitter, between=close_stars, deadline=self.deadline):
            wide = splitter.finish(batch)
            for p in range(batch.count):  # a region, or a sliver thinner than the tolerance
                self._tick()
                found = self._decide_region(path, batch.pattern[p], domain, reach, pieces,
                                            thin=not wide[p])
                if found is not None:
                    return found
        return None

    def _close_stars(self, path, batch, layer, lower, upper, pieces):
        """Close the partial pieces of ``batch`` (split up to hidden layer ``layer``) that
        the remaining layers' bounds over their rigorous bounding boxes refute, as
        StarPieces (with the box LPs' duals as the checker's hint); tighten the others'
        boxes (their duals recorded as BoxHints). Returns the mask of the open pieces."""
        keep = np.ones(batch.count, dtype=bool)
        for p in range(batch.count):
            self._tick()
            A, b, sources = batch.constraints(p)
            try:
                *box, duals = rigorous_bounding_box(self.solver, A, b, lower, upper,
                                                    duals=True)
            except SolverError:  # an (in float64) empty sliver: left out, as thin pieces
                keep[p] = False  # are; the checker then needs its own proof
                continue
            tail = tail_network(self.free_network, batch.pattern[p], layer)
            bounds = linear_bounds(tail, *box, self.rows)
            refuted = [self._refutation(bounds, k, *box, tail) for k in range(len(self.row_ranges))]
            if all(lam is not None for lam in refuted):
                pieces.append(StarPiece(self.index, path, layer, np.packbits(batch.pattern[p]),
                                        tuple(refuted), *star_box_hint(duals, sources, len(lower))))
                keep[p] = False
                continue
            self.hints.append(BoxHint(self.index, path, layer, np.packbits(batch.pattern[p]),
                                      *star_box_hint(duals, sources, len(lower))))
            batch.low[p] = np.maximum(batch.low[p], box[0])
            batch.high[p] = np.minimum(batch.high[p], box[1])
        return keep

    def _decide_region(self, path, pattern, domain, reach, pieces, thin=False):
        """One LP per unsafe set on the region ``pattern``: Farkas multipliers (recorded as
        a RegionPiece), or a counterexample. A ``thin`` piece (below the radius
        tolerance) is closed the same way when it can be; if not it is left out (as
        empty), and the checker, which then needs a proof that it is empty, decides."""
        _, _, systems = region_constraints(self.free_network, pattern, (domain.A, domain.b),
                                           self.case.unsafe)
        multipliers = []
        for k, (A_k, b_k) in enumerate(systems):
            x, _, y = self.solver.signed_inradius(A_k, b_k)
            if farkas_gap(A_k, b_k, y, reach) < 0:
                multipliers.append(y)
                continue
            full = self.case.lower.copy()
            full[self.free] = x
            found = self._counterexample(full, k, pattern)
            if found is not None:
                return found
            if thin:
                return None
            raise _Undecided
        pieces.append(RegionPiece(self.index, path, np.packbits(pattern), tuple(multipliers)))
        return None


# ---------------------------------------------------------------------------- checks



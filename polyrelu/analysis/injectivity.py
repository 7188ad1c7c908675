"""Exact injectivity of ReLU layers on polytopes, and the frame condition.

A layer computes ``C(x) = relu(W x - a)`` (the *threshold* convention, ``a``
subtracted); PyTorch's ``relu(W x + b)`` is the same layer with ``a = -b``.
Every function here takes the bias with one keyword, ``convention="threshold"``
or ``convention="pytorch"`` (see :func:`thresholds`).

What is decided, and why it is exact
------------------------------------
Let ``I(x) = {i : <w_i, x> > a_i}`` be the strictly active set at x and
``S_I = {x in K : I(x) = I}``. The sets ``S_I`` partition K and each is convex
(strict inequalities for the rows in I, non-strict for the others, and K).

*Lemma.* ``C(x) = C(y)`` iff ``I(x) = I(y) =: I`` and ``W_I (x - y) = 0``.
Proof: row i is active at x iff ``C(x)_i > 0``, so equal outputs have equal
active sets; on I the outputs are ``W_I x - a_I``, off I both are 0. The
converse reads the same equalities backwards.

So C is injective on K iff no ``S_I`` holds two distinct points whose
difference lies in ``ker W_I``. Two points in *different* sets ``S_I`` never
collide, so nothing else needs checking; sets with ``rank W_I = n`` are safe.

*Search.* A node of a binary tree fixes some rows as strictly active (J) and
some as inactive (L); its set ``S_{J,L} = {x in K : J strict, L <= a}`` is the
union of the ``S_I`` with ``J ⊆ I``, ``L ∩ I = ∅``. For ``I ⊇ J``,
``ker W_I ⊆ ker W_J``; hence if ``S_{J,L}`` holds no two distinct points with
difference in ``ker W_J``, no set below the node holds a collision, and the
subtree is pruned. At a leaf (every row fixed) ``S_{J,L} = S_J`` exactly, and a
pair found there is a collision. The pair test is one LP per basis vector g of
``ker W_J`` (within the span of possible differences):
maximise ``s`` subject to ``x, y`` in ``S_{J,L}`` with margin ``t`` on the
strict rows, ``W_J (x - y) = 0``, ``s <= t`` and ``s <= <g, x - y>``. Then
``s* > 0`` iff some ``t > 0`` and pair with ``<g, x - y> > 0`` exist, i.e. iff
the open set has such a pair; the difference set is symmetric, so one sign of
g suffices when x and y range over the same set. A node whose LP pair already
has equal outputs ends the search with that witness; otherwise the tree
branches on the free row whose outputs at the pair differ most. ``s* <= tol``
(``Options.min_radius_rel`` times the scale) counts as no pair: sets thinner
than the rounding error of float64 LPs are treated like the engine's thin
regions.

*Frame condition* (sufficient, not necessary): ``rank W_{I(x)} = n`` at every
x in K. The same tree decides it: prune a node once ``rank W_J = n`` or its set
is empty (max margin ``t* <= tol``); a non-empty leaf of lower rank is a point
where it fails. ``relu(x), relu(-x)`` with zero bias is injective although the
condition fails at 0.

Whole networks: the first k layers are injective on K iff layer 0 is injective
on K and layer l is injective on the image ``h_l(K)`` of the layers before it.
``h_l(K)`` is the union of the exact images ``M_R R + c_R`` of the regions R of
the first l layers (from :func:`polyrelu.enumerate_regions`); a collision of
layer l is a pair of points ``u = M_R x + c_R``, ``u' = M_S y + c_S`` with
``u != u'``. The tree above runs on every pair of regions (R, S), written in
input coordinates x and y, so witnesses are points of K.
"""

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..errors import (
    InvalidNetworkError,
    NumericalAmbiguityError,
    PolyreluError,
    SolverError,
    TimeLimitError,
)
from ..geometry.domain import Domain, check_input_dimension
from ..geometry.lp import LPSolver
from ..geometry.polytope import HPolytope
from ..network.model import Network
from ..options import Options
from ..regions.walk import enumerate_regions

__all__ = [
    "CONVENTIONS",
    "InjectivityResult",
    "thresholds",
    "layer_output",
    "is_injective",
    "network_injectivity",
]

CONVENTIONS = ("threshold", "pytorch")

# Output differences below this fraction of ||x - y|| count as equal outputs.
_COLLISION_REL = 1e-7
_RANK_TOL = 1e-10


def thresholds(bias, convention="threshold"):
    """The threshold vector ``a`` of ``relu(W x - a)`` from a bias in either convention.

    ``convention="threshold"``: ``bias`` is ``a`` itself (the frame-theory
    papers' convention). ``convention="pytorch"``: ``bias`` is ``b`` of
    ``relu(W x + b)``, so ``a = -b``.

    >>> thresholds([1.0, -2.0], "pytorch").tolist()
    [-1.0, 2.0]
    """
    if convention not in CONVENTIONS:
        raise PolyreluError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    a = np.array(bias, dtype=np.float64).reshape(-1)
    return -a if convention == "pytorch" else a


def layer_output(W, a, points):
    """``relu(W x - a)`` (threshold convention) at points of shape (k, n): array (k, m)."""
    return np.maximum(np.atleast_2d(points) @ np.asarray(W).T - a, 0.0)


@dataclass(frozen=True)
class InjectivityResult:
    """The exact answer of :func:`is_injective` or :func:`network_injectivity`.

    Attributes
    ----------
    injective : bool or None
        None when no collision was found but some sets could not be decided because the
        LP solver failed on them even after its retries (see ``undecided``).
    frame_condition : bool or None
        Whether the strictly active rows span the input at every point (None
        when not computed, e.g. for later layers of a network).
    sets_checked : int
        Nodes of the strictly-active-set search tree examined (see the module
        docstring); ``lps`` counts the LPs solved.
    lps : int
    witness : tuple of two ndarray or None
        Two distinct points of K with equal outputs (verified by a forward pass).
    witness_exact : bool or None
        Whether a rational pair near the witness was confirmed in exact
        ``Fraction`` arithmetic (single layers only).
    frame_point : ndarray or None
        A point where the active rows do not span (the frame condition fails).
    layer : int or None
        For networks: the first layer that is not injective or undecided (None if all
        are injective).
    undecided : tuple of str
        The solver's reasons, one per set of the search it could not decide.
    """

    injective: bool
    frame_condition: object
    sets_checked: int
    lps: int
    witness: object = None
    witness_exact: object = None
    frame_point: object = None
    layer: object = None
    undecided: tuple = ()


def is_injective(W, bias, domain, *, convention="threshold", frame_condition=True,
                 options=None, deadline=None):
    """Decide exactly whether ``x -> relu(W x - a)`` is injective on a polytope.

    Parameters
    ----------
    W : array_like, shape (m, n)
    bias : array_like, shape (m,)
        Threshold ``a`` or PyTorch bias ``b``, as ``convention`` says.
    domain : Domain
        The polytope K (dimension n).
    convention : {"threshold", "pytorch"}
    frame_condition : bool
        Also decide the frame condition (a second search, often the costlier
        one when the layer is injective); None in the result when False.
    options : Options, optional
        ``min_radius_rel`` sets the thinness tolerance.
    deadline : Deadline, optional
        Checked at every node of the search (:class:`TimeLimitError` on expiry).

    Returns
    -------
    InjectivityResult
        With the frame condition, the search-tree size, and a verified witness
        pair when not injective.

    Examples
    --------
    ``relu(x), relu(-x)`` is injective on [-1, 1] although no row is active at 0:

    >>> from polyrelu import Domain
    >>> r = is_injective([[1.0], [-1.0]], [0.0, 0.0], Domain.box([-1], [1]))
    >>> r.injective, r.frame_condition
    (True, False)
    >>> r = is_injective([[1.0], [-1.0]], [0.5, 0.5], Domain.box([-1], [1]))
    >>> r.injective, bool(abs(r.witness[0] - r.witness[1])[0] > 0)
    (False, True)
    """
    W, a = _layer(W, bias, convention)
    if not isinstance(domain, Domain):
        raise PolyreluError(f"domain must be a polyrelu Domain, got {type(domain).__name__}")
    if domain.dim != W.shape[1]:
        raise PolyreluError(
            f"the domain has dimension {domain.dim} but W has {W.shape[1]} columns")
    options = options or Options()
    layer = _Layer(W, a)
    piece = _Piece(domain.A, domain.b, np.eye(domain.dim), np.zeros(domain.dim))
    search = _Search(layer, LPSolver(options), options.min_radius_rel * domain.diameter,
                     domain.diameter, deadline=deadline)
    pair = search.collision(piece, piece)
    # a collision is itself a point where the active rows do not span
    if pair is not None:
        frame_point = pair[0]
    else:
        frame_point = search.frame_failure(piece) if frame_condition else None
    exact = None if pair is None else _exact_witness(W, a, domain, *pair)
    holds = (frame_point is None) if frame_condition or pair is not None else None
    if holds and search.undecided:  # no failure found, but not every set was decided
        holds = None
    return InjectivityResult(
        injective=search.verdict(pair), frame_condition=holds,
        sets_checked=search.nodes, lps=search.solver.count, witness=pair,
        witness_exact=exact, frame_point=frame_point, undecided=tuple(search.undecided))


def network_injectivity(network, domain, *, layers=None, options=None, deadline=None):
    """Certify a network's ReLU layers one by one on the exact image of the domain.

    Parameters
    ----------
    network : Network
    domain : Domain
    layers : iterable of int, optional
        Hidden layers to check (default: all, in order); the check stops at the
        first layer that is not injective on the image of the layers before it.
    options : Options, optional
    deadline : Deadline, optional
        On expiry, :class:`TimeLimitError` with ``partial`` a dict: the layers proven
        injective so far and the layer being checked.

    Returns
    -------
    InjectivityResult
        ``layer`` is the first failing layer (None when all checked layers are
        injective); the witness is a pair of input points x != y whose images
        after that layer coincide while the images before it differ.
        ``frame_condition`` is reported for layer 0 only.

    Examples
    --------
    >>> from polyrelu import Network, Domain
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]], [[1.0]]], [[0, 0], [0], [0]])
    >>> r = network_injectivity(net, Domain.box([-1], [1]))
    >>> r.injective, r.layer            # |x| folds the interval: layer 1 is not injective
    (False, 1)
    """
    network.require_relu_mlp("network injectivity (layer-by-layer ReLU frame conditions)")
    check_input_dimension(network, domain)
    options = options or Options()
    hidden = len(network.hidden_sizes)
    layers = list(range(hidden)) if layers is None else sorted(set(layers))
    if not layers:
        raise PolyreluError("the network has no hidden (ReLU) layer to check")
    for layer in layers:
        if not 0 <= layer < hidden:
            raise PolyreluError(f"layer {layer} is not a hidden layer (0..{hidden - 1})")
    done = []
    try:
        return _network_injectivity(network, domain, layers, options, deadline, done)
    except TimeLimitError as err:
        raise TimeLimitError(str(err), {"layers_injective": done or "none",
                                        "undecided_layer": layers[len(done)]}) from err


def _network_injectivity(network, domain, layers, options, deadline, done):
    nodes = lps = 0
    frame = None
    for layer in layers:
        if layer == 0:
            first = is_injective(network.weights[0], network.biases[0], domain,
                                 convention="pytorch", options=options, deadline=deadline)
            nodes, lps, frame = nodes + first.sets_checked, lps + first.lps, first.frame_condition
            if first.injective is not True:
                return InjectivityResult(first.injective, frame, nodes, lps, first.witness,
                                         first.witness_exact, first.frame_point, 0,
                                         first.undecided)
            done.append(0)
            continue
        pieces = [_Piece(r.polytope.A, r.polytope.b, r.W_eff, r.b_eff)
                  for r in enumerate_regions(_prefix(network, layer), domain, options=options,
                                             deadline=deadline)]
        pair, search = _layer_on_pieces(network, layer, pieces, domain, options, deadline)
        nodes, lps = nodes + search.nodes, lps + search.solver.count
        if pair is not None or search.undecided:
            return InjectivityResult(search.verdict(pair), frame, nodes, lps, pair, None, None,
                                     layer, tuple(search.undecided))
        done.append(layer)
    return InjectivityResult(True, frame, nodes, lps)


# -- the search ------------------------------------------------------------------
@dataclass(frozen=True)
class _Layer:
    """A layer with unit rows (zero rows dropped: their outputs are constant)."""

    W: np.ndarray
    a: np.ndarray

    def __init__(self, W, a):
        norms = np.linalg.norm(W, axis=1)
        keep = norms > 0
        object.__setattr__(self, "W", W[keep] / norms[keep, None])
        object.__setattr__(self, "a", a[keep] / norms[keep])


@dataclass(frozen=True)
class _Piece:
    """A polytope ``{x : A x <= b}`` of input space and the affine map ``u = M x + c``."""

    A: np.ndarray
    b: np.ndarray
    M: np.ndarray
    c: np.ndarray

    def apply(self, x):
        return self.M @ x + self.c


@dataclass
class _Search:
    layer: _Layer
    solver: LPSolver
    tol: float
    scale: float
    nodes: int = field(default=0)
    deadline: object = None
    undecided: list = field(default_factory=list)  # the solver's reasons, per set

    def verdict(self, pair):
        """Injective (True), not (False: ``pair`` collides) or undecided (None)."""
        if pair is not None:
            return False
        return None if self.undecided else True

    def _tick(self):
        self.nodes += 1
        if self.deadline is not None:
            self.deadline.check(f"injectivity search ({self.nodes} sets checked)")

    def collision(self, p, q):
        """Points x in p, y in q with distinct, colliding layer inputs; or None."""
        W, a = self.layer.W, self.layer.a
        span = _orth(np.hstack([p.M, q.M, (p.c - q.c)[:, None]]))
        stack = [((), ())]
        while stack:
            strict, weak = stack.pop()
            self._tick()
            try:
                pair = self._pair(p, q, strict, weak, span)
            except SolverError as err:  # this set stays undecided; the others go on
                self.undecided.append(str(err))
                continue
            if pair is None:
                continue
            u, v = p.apply(pair[0]), q.apply(pair[1])
            gap = np.abs(np.maximum(W @ u - a, 0) - np.maximum(W @ v - a, 0))
            if gap.max(initial=0) <= _COLLISION_REL * np.linalg.norm(u - v):
                return self._polished(p, q, pair, span)
            free = np.setdiff1d(np.arange(len(a)), strict + weak)
            if free.size == 0:
                raise NumericalAmbiguityError(
                    f"an LP found two points with equal active sets whose outputs differ by "
                    f"{gap.max():.3g}; the layer is within the rounding error of "
                    f"non-injective (raise Options.min_radius_rel to treat it as injective)")
            row = int(free[np.argmax(gap[free])])
            stack.append((strict, weak + (row,)))
            stack.append((strict + (row,), weak))
        return None

    def frame_failure(self, p):
        """A point of p where the strictly active rows do not span the image; or None."""
        W, a = self.layer.W, self.layer.a
        target = np.linalg.matrix_rank(p.M, tol=_RANK_TOL)
        stack = [((), ())]
        while stack:
            strict, weak = stack.pop()
            self._tick()
            if _rank(W[list(strict)] @ p.M) == target:
                continue
            try:
                x = self._interior(p, strict, weak)
            except SolverError as err:
                self.undecided.append(str(err))
                continue
            if x is None:
                continue
            free = np.setdiff1d(np.arange(len(a)), strict + weak)
            values = W[free] @ p.apply(x) - a[free]
            if np.all(np.abs(values) > self.tol):
                active = list(strict) + free[values > 0].tolist()
                if _rank(W[active] @ p.M) < target:
                    return x
            if free.size == 0:
                return x
            row = int(free[np.argmin(np.abs(values))])
            stack.append((strict, weak + (row,)))
            stack.append((strict + (row,), weak))
        return None

    def _rows(self, piece, strict, weak):
        """Inequalities on (x, t): piece, margin t on strict rows, weak rows <= a."""
        W, a = self.layer.W, self.layer.a
        Ws, Ww = W[list(strict)] @ piece.M, W[list(weak)] @ piece.M
        A = np.vstack([
            np.hstack([piece.A, np.zeros((len(piece.b), 1))]),
            np.hstack([-Ws, np.ones((len(strict), 1))]),
            np.hstack([Ww, np.zeros((len(weak), 1))]),
        ])
        b = np.concatenate([piece.b,
                            W[list(strict)] @ piece.c - a[list(strict)],
                            a[list(weak)] - W[list(weak)] @ piece.c])
        return A, b

    def _interior(self, p, strict, weak):
        A, b = self._rows(p, strict, weak)
        d = A.shape[1] - 1
        cost = np.zeros(d + 1)
        cost[d] = 1.0
        upper = np.full(d + 1, np.inf)
        upper[d] = self.scale
        result = self.solver.maximize(cost, A, b, upper=upper)
        if result.status != "optimal" or (strict and result.value <= self.tol):
            return None
        return result.x[:d]

    def _polished(self, p, q, pair, span):
        """The witness moved off every non-strict hyperplane and face when it can be.

        Re-solves the pair LP for the witness's own active set with the margin
        also required on the domain faces and inactive rows; keeps the original
        pair when that set has no interior pair (it is lower-dimensional).
        """
        W, a = self.layer.W, self.layer.a
        middle = (p.apply(pair[0]) + q.apply(pair[1])) / 2
        active = W @ middle - a > self.tol
        inner = self._pair(p, q, tuple(np.flatnonzero(active)), tuple(np.flatnonzero(~active)),
                           span, interior=True)
        return pair if inner is None else inner

    def _pair(self, p, q, strict, weak, span, interior=False):
        """An LP pair (x, y) with distinct, equal-on-J inputs, or None (module docstring).

        With ``interior``, the margin s is also kept from the domain faces and
        the inactive rows.
        """
        Wj = self.layer.W[list(strict)]
        directions = span @ _null(Wj @ span)
        signs = (1.0,) if p is q else (1.0, -1.0)
        Ap, bp = self._rows(p, strict, weak)
        Aq, bq = self._rows(q, strict, weak)
        dp, dq = p.M.shape[1], q.M.shape[1]
        # variables: x (dp), y (dq), t, s
        n_var = dp + dq + 2
        blocks = [
            _place(Ap[:, :dp], 0, n_var), _place(Aq[:, :dq], dp, n_var),
        ]
        A = np.vstack(blocks)
        A[:, dp + dq] = np.concatenate([Ap[:, dp], Aq[:, dq]])
        b = np.concatenate([bp, bq])
        if interior:
            strict_rows = np.concatenate([np.arange(len(p.b), len(p.b) + len(strict)),
                                          len(bp) + np.arange(len(q.b), len(q.b) + len(strict))])
            A[:, -1] = 1.0
            A[strict_rows, -1] = 0.0
        s_le_t = np.zeros(n_var)
        s_le_t[[dp + dq, dp + dq + 1]] = [-1.0, 1.0]
        A_eq = np.hstack([Wj @ p.M, -Wj @ q.M, np.zeros((len(strict), 2))])
        b_eq = Wj @ (q.c - p.c)
        cost = np.zeros(n_var)
        cost[-1] = 1.0
        upper = np.full(n_var, np.inf)
        upper[dp + dq] = self.scale
        for g in directions.T:
            for sign in signs:
                gap_row = np.concatenate([-sign * g @ p.M, sign * g @ q.M, [0.0, 1.0]])
                result = self.solver.maximize(
                    cost, np.vstack([A, s_le_t, gap_row]),
                    np.concatenate([b, [0.0, sign * g @ (p.c - q.c)]]),
                    A_eq=A_eq, b_eq=b_eq, upper=upper)
                if result.status == "infeasible":
                    return None
                if result.status == "optimal" and result.value > self.tol:
                    return result.x[:dp], result.x[dp:dp + dq]
        return None


def _layer_on_pieces(network, layer, pieces, domain, options, deadline=None):
    """Search every pair of pieces for a collision of ``layer``; (pair or None, the search)."""
    W, a = network.weights[layer], -network.biases[layer]
    spread = max(np.linalg.norm(piece.M, 2) for piece in pieces)
    scale = domain.diameter * max(spread, 1.0)
    search = _Search(_Layer(W, a), LPSolver(options), options.min_radius_rel * scale, scale,
                     deadline=deadline)
    ranges = [_output_box(search.layer, piece) for piece in pieces]
    for i, p in enumerate(pieces):
        for j in range(i, len(pieces)):
            if np.any(ranges[i][0] > ranges[j][1]) or np.any(ranges[j][0] > ranges[i][1]):
                continue  # output boxes disjoint: no collision between these pieces
            pair = search.collision(p, pieces[j])
            if pair is not None:
                return pair, search
    return None, search


def _output_box(layer, piece):
    """Exact bounding box of the layer's outputs over a piece (relu of an affine range)."""
    poly = HPolytope(piece.A, piece.b, np.zeros(len(piece.b), dtype=np.int64))
    x0 = None if poly.dim == 1 else LPSolver().chebyshev_ball(piece.A, piece.b)[0]
    vertices = poly.vertices(x0)
    pre = (vertices @ piece.M.T + piece.c) @ layer.W.T - layer.a
    return np.maximum(pre.min(axis=0), 0), np.maximum(pre.max(axis=0), 0)


def _prefix(network, layer):
    """The network's first ``layer`` hidden layers, outputting their ReLU outputs."""
    width = network.hidden_sizes[layer - 1]
    return Network(list(network.weights[:layer]) + [np.eye(width)],
                   list(network.biases[:layer]) + [np.zeros(width)])


def _layer(W, bias, convention):
    W = np.array(W, dtype=np.float64)
    a = thresholds(bias, convention)
    if W.ndim != 2 or W.shape[0] == 0 or W.shape[1] == 0:
        raise InvalidNetworkError(f"W must be a non-empty matrix (m x n), got shape {W.shape}")
    if a.shape != (W.shape[0],):
        raise InvalidNetworkError(f"bias has shape {a.shape}, W has {W.shape[0]} rows")
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(a))):
        raise InvalidNetworkError("W or the bias has a non-finite entry")
    return W, a


def _place(block, start, width):
    out = np.zeros((block.shape[0], width))
    out[:, start:start + block.shape[1]] = block
    return out


def _rank(M):
    return 0 if M.size == 0 else int(np.linalg.matrix_rank(M, tol=_RANK_TOL))


def _null(M):
    """Orthonormal basis (columns) of ker M."""
    n = M.shape[1]
    if M.shape[0] == 0:
        return np.eye(n)
    _, sv, vt = np.linalg.svd(M)
    rank = int(np.sum(sv > _RANK_TOL * max(1.0, sv[0])))
    return vt[rank:].T


def _orth(M):
    """Orthonormal basis (columns) of the column span of M."""
    u, sv, _ = np.linalg.svd(M, full_matrices=False)
    return u[:, sv > _RANK_TOL * max(1.0, sv.max(initial=0))]


# -- exact confirmation of a witness ----------------------------------------------
def _exact_witness(W, a, domain, x, y):
    """Confirm a collision in exact rational arithmetic near the float pair (x, y).

    The pair is moved to rationals ``m +- v/2`` where m is the midpoint and v
    the float difference projected onto the exact rational kernel of the rows
    active at m; then both points are checked in K and their outputs compared
    exactly, as Fractions of the float64 data.
    """
    middle = (x + y) / 2
    active = np.flatnonzero(W @ middle - a > 0)
    Wq = [[Fraction(v) for v in row] for row in W[active]]
    basis = _rational_null(Wq, W.shape[1])
    if not basis:
        return False
    B = np.array([[float(v) for v in col] for col in basis]).T
    coeffs = [Fraction(c) for c in np.linalg.lstsq(B, x - y, rcond=None)[0]]
    v = [sum(c * col[k] for c, col in zip(coeffs, basis)) for k in range(W.shape[1])]
    mid = [Fraction(t) for t in middle]
    xq = [m + vk / 2 for m, vk in zip(mid, v)]
    yq = [m - vk / 2 for m, vk in zip(mid, v)]
    if xq == yq or not (_inside(domain, xq) and _inside(domain, yq)):
        return False
    return _exact_output(W, a, xq) == _exact_output(W, a, yq)


def _inside(domain, point):
    return all(sum(Fraction(c) * p for c, p in zip(row, point)) <= Fraction(rhs)
               for row, rhs in zip(domain.A, domain.b))


def _exact_output(W, a, point):
    out = []
    for row, threshold in zip(W, a):
        value = sum(Fraction(c) * p for c, p in zip(row, point)) - Fraction(threshold)
        out.append(max(value, Fraction(0)))
    return out


def _rational_null(rows, n):
    """Basis of the kernel of a rational matrix (list of rows), by exact elimination."""
    rows = [list(r) for r in rows]
    pivots, r = [], 0
    for col in range(n):
        pivot = next((i for i in range(r, len(rows)) if rows[i][col] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][col]
        rows[r] = [v / lead for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][col] != 0:
                factor = rows[i][col]
                rows[i] = [vi - factor * vr for vi, vr in zip(rows[i], rows[r])]
        pivots.append(col)
        r += 1
    basis = []
    for free in (c for c in range(n) if c not in pivots):
        vector = [Fraction(0)] * n
        vector[free] = Fraction(1)
        for i, col in enumerate(pivots):
            vector[col] = -rows[i][free]
        basis.append(vector)
    return basis

"""Exact Lipschitz constants (and other maxima of the Jacobian) by branch and bound.

The Lipschitz constant of a piecewise-linear network over a convex domain is the
largest operator norm of ``C J`` over its regions (J: the region's Jacobian, C: the
output functional). :func:`lipschitz_search` finds it without enumerating every region:
a best-first branch and bound (:func:`polyrelu.regions.branching.best_first`) over the
layer-wise splitting's pieces, each a partial activation pattern (the layers before
``k`` fixed) on a polytope.

Upper bound of a piece awaiting layer ``k`` (sound over every completion of its pattern):

- the pre-activations of layers ``k, k+1, ...`` are bounded over the piece's box:
  layer ``k`` exactly from the piece's own affine map, the later ones by
  back-substitution (:func:`polyrelu.geometry.symbolic.linear_bounds_batch`) through the
  tail network whose first map is the piece's, batched over the pieces;
- each ReLU unit's derivative is then 1 (stable active), 0 (stable inactive) or in
  [0, 1]; linear units have derivative 1;
- the interval matrix product from the output back to layer ``k``'s units gives an
  interval ``T`` for the tail's Jacobian; times the piece's exact pre-activation map
  ``P`` of layer ``k`` (the fixed prefix) it gives an interval ``[mid - rad, mid + rad]``
  holding every completion's ``C J``; a piece part way through layer ``k`` has the
  units it was cut by fixed (their rows say on which side it lies);
- its norm is bounded from the entrywise magnitude ``|mid| + rad`` (l1: column sums,
  l_inf: row sums, l2: the least of its spectral norm, ``||mid||_2 + ||rad||_2`` and
  ``sqrt(l1 l_inf)``), and by ``bound(T) ||P||``; the smaller is kept, widened by
  ``1e-9`` relative for the float rounding of these products.

Lower bound (the incumbent): the exact Jacobian norm of every region reached, and,
before the search, of the regions of a few hundred sampled points that lie deeper than
the radius tolerance inside their regions. The answer is the value of a region, with a
witness point, its pattern and polytope, and the rational re-check of
:mod:`polyrelu.analysis.lipschitz` (:func:`exact_norm_bracket`, :func:`exact_pattern`).

Networks with max windows are searched as :func:`polyrelu.network.windowless.without_windows`
rewrites them (the same function, ReLU and linear units only, so the same constant); the
region reported is the original network's region around the witness (the rewrite's
maximising region lies inside it, with the same Jacobian).

The same search maximises other quantities of the Jacobian: one output's gradient norm
(``output``), any functional ``C`` (``functional``), a directional derivative
``||C J v||`` (``direction``) and a hidden layer's map (``layer``: the Jacobian of that
layer's pre-activations, e.g. its largest singular value with ``norm=2``).
:func:`output_maximum` maximises a linear functional of the outputs itself (the upper
bound of a piece: the tail's back-substitution bound; a region's value: one LP).
"""

from dataclasses import dataclass

import numpy as np

from ..deadline import Deadline
from ..errors import PolyreluError, TimeLimitError
from ..geometry.boxes import tighten
from ..geometry.domain import check_input_dimension
from ..geometry.lp import LPSolver
from ..geometry.polytope import HPolytope
from ..geometry.symbolic import linear_bounds_batch
from ..network.layers import RELU
from ..network.model import network_fingerprint
from ..network.windowless import without_windows
from ..options import Options
from ..regions.branching import best_first
from ..regions.splitting import Splitter
from .lipschitz import (
    exact_pattern,
    exact_value_bracket,
    functional_matrix,
    hidden_map,
    no_region_error,
    operator_norms,
    parse_norm,
)
from .lipschitz_certificate import BOUND, REGION, LipschitzCertificate

__all__ = ["lipschitz_search", "LipschitzSearchResult", "jacobian_bound", "output_maximum",
           "OutputMaximum"]

#: Relative widening of every upper bound, for the float rounding of its products.
BOUND_SLACK = 1e-9
#: Sampled points whose regions give the first incumbent.
SAMPLES = 256


@dataclass(frozen=True)
class LipschitzSearchResult:
    """The maximum of ``||C J||`` over the regions, found by branch and bound.

    Attributes
    ----------
    value : float
        The maximum: the norm of ``C J`` on ``pattern``'s region (a time limit raises
        :class:`TimeLimitError` with the bracket instead).
    norm : {1, 2, inf}
    pattern : ndarray of bool
        The activation pattern of a maximising region of ``network``.
    polytope : HPolytope
        That region: its kink rows and the domain's rows (not minimal).
    witness : ndarray
        A point inside it (more than the radius tolerance from its boundary).
    functional : ndarray
        The output functional C (rows over the outputs of ``network``).
    direction : ndarray or None
        ``v`` when the maximum is of ``||C J v||``.
    exact_lower, exact_upper : float
        A rigorous bracket of the maximiser's value from the weights in rational
        arithmetic.
    witness_pattern_exact : bool
        Whether the witness has ``pattern`` in exact arithmetic, every ReLU
        pre-activation non-zero.
    network : Network
        The network measured (the input, or its part up to ``layer``).
    stats : dict
        ``lps``, ``steps`` (splitting steps), ``bounded`` (pieces bounded), ``pruned``
        (closed by their bound), ``regions`` (reached), ``sampled`` (points whose region
        counted), ``seconds``.
    tree : SearchTree
        The explored tree: every closed piece with the bound or value that closed it.
    certificate : LipschitzCertificate or None
        The tree as a certificate of ``[exact_lower, exact_upper]`` (None unless the
        domain is a box), for
        :func:`polyrelu.analysis.lipschitz_checker.check_lipschitz_certificate`.
    """

    value: float
    norm: float
    pattern: np.ndarray
    polytope: HPolytope
    witness: np.ndarray
    functional: np.ndarray
    direction: object
    exact_lower: float
    exact_upper: float
    witness_pattern_exact: bool
    network: object
    stats: dict
    tree: object
    certificate: object = None


def lipschitz_search(network, domain, norm=2, *, output=None, functional=None, direction=None,
                     layer=None, options=None, deadline=None, seed=0, group=32, chunk=64):
    """Exact Lipschitz constant of ``network`` over ``domain`` by branch and bound.

    The same value as :func:`polyrelu.lipschitz` (which enumerates every region),
    usually from far fewer regions. Parameters as there, and:

    Parameters
    ----------
    direction : array_like, shape (d,), optional
        Maximise the directional derivative's norm ``||C J v||`` instead.
    layer : int, optional
        Maximise over hidden layer ``layer``'s map instead: the Jacobian of its
        pre-activations (``output`` then picks one of its units).
    deadline : Deadline, optional
        On expiry raises :class:`TimeLimitError` whose ``partial`` holds ``lower`` (the
        best region's value), ``upper`` (a sound bound), ``regions`` (reached) and
        ``certificate`` (of ``[best region's value, upper]``; None if no region was
        found or the domain is not a box).
    seed : int
        Seeds the sampled points of the first incumbent (the answer does not depend
        on it).
    group, chunk : int
        Pieces per queued node, and most pieces a batch is split into before its parts
        are bounded and queued again (see :func:`polyrelu.regions.branching.best_first`).

    Returns
    -------
    LipschitzSearchResult

    Examples
    --------
    >>> from polyrelu import Network, Domain
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> result = lipschitz_search(absolute, Domain.box([-1], [1]), norm=2)
    >>> result.value, result.witness_pattern_exact
    (1.0, True)
    """
    norm = parse_norm(norm)
    check_input_dimension(network, domain)
    given, original = network, hidden_map(network, layer)
    network = without_windows(original)
    C = functional_matrix(network, output, functional)
    objective = _Objective(norm, C, _direction(direction, network.input_dim))
    options = options or Options()
    deadline = deadline or Deadline(None)
    splitter = Splitter(network, domain, options, LPSolver(options), track=True)
    best = _sampled_best(network, domain, objective, splitter.min_radius, seed)
    tail = _Tail(network, objective)

    def reach(pieces, map_A, map_c, wide):
        values = np.where(wide, objective.exact(tail.last @ map_A), -np.inf)
        p = int(np.argmax(values))
        if values[p] > best.value:
            best.update(values[p], pieces.center[p], pieces.pattern[p])
        return values

    outcome = best_first(splitter, tail.bound, reach, incumbent=best.value,
                         deadline=deadline, group=group, chunk=chunk, inherit=False)
    stats = {**outcome.counts(), "sampled": best.sampled}
    claim = _Claim(given, domain, objective, layer, best, outcome.tree)
    if outcome.status == "deadline":
        raise TimeLimitError(f"lipschitz search: time limit of {deadline.seconds:g} s reached",
                             {"lower": max(best.value, 0.0), "upper": outcome.upper,
                              "certificate": claim.certificate(network, outcome.upper),
                              **stats})
    if best.pattern is None:
        raise no_region_error(domain)
    lower, upper = objective.exact_bracket(network, best.pattern)
    pattern = best.pattern if network is original else \
        original.activation_pattern(best.witness[None])[0]
    return LipschitzSearchResult(
        float(best.value), norm, pattern,
        _region_polytope(original, domain, pattern), best.witness, C, objective.direction,
        lower, upper, exact_pattern(original, best.witness, pattern), original, stats,
        outcome.tree, claim.certificate(network, max(upper, best.value)))


def jacobian_bound(network, objective_norm, C, map_A, map_c, low, high, layer):
    """Sound upper bounds of ``||C J||`` over every completion of partial patterns.

    For pieces (boxes ``[low[p], high[p]]``) on which hidden layer ``layer``'s input is
    ``map_A[p] x + map_c[p]``, whatever the patterns of the later layers. ``network``
    has ReLU and linear units only (no windows). Returns an array (pieces,).

    Examples
    --------
    >>> import numpy as np
    >>> from polyrelu import Network
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> bound = jacobian_bound(absolute, 2, np.eye(1), np.eye(1)[None], np.zeros((1, 1)),
    ...                        np.array([[-1.0]]), np.array([[1.0]]), 0)
    >>> bool(1.0 <= bound[0] <= 2.0 * (1 + 1e-6))
    True
    """
    tail = _Tail(network, _Objective(parse_norm(objective_norm), np.atleast_2d(C), None))
    return tail.bounds(layer, *tail.pre_maps(layer, map_A, map_c), low, high)


@dataclass(frozen=True)
class OutputMaximum:
    """The maximum of ``c @ f(x)`` over a domain, by branch and bound.

    ``value`` is ``c @ f(witness)`` (the best found; the maximum when ``exact``, up to the
    LP tolerance of each region's maximiser), ``upper`` a sound upper bound (``value``
    when exact); ``stats`` as for :class:`LipschitzSearchResult`."""

    value: float
    upper: float
    exact: bool
    witness: np.ndarray
    stats: dict


def output_maximum(network, domain, functional, *, options=None, deadline=None, chunk=64):
    """The largest value of ``functional @ f(x)`` over ``domain``, by branch and bound.

    Pieces are bounded by the back-substitution bound of their tail network, regions
    are maximised by one LP each; sampled points give the first incumbent. With
    ``deadline`` the search may stop early (``exact`` False: ``[value, upper]`` brackets
    the maximum).

    Examples
    --------
    >>> from polyrelu import Network, Domain
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> best = output_maximum(absolute, Domain.box([-1], [2]), [1.0])
    >>> best.value, best.exact, best.witness.tolist()
    (2.0, True, [2.0])
    """
    check_input_dimension(network, domain)
    network = without_windows(network)
    c = functional_matrix(network, None, functional)
    if len(c) != 1:
        raise PolyreluError(f"functional must be one row, got {len(c)}")
    options = options or Options()
    splitter = Splitter(network, domain, options, LPSolver(options))
    points = np.vstack([domain.center[None], domain.sample(SAMPLES, 0)])
    values = network.forward(points) @ c[0]
    best = _Best()
    best.update(values.max(), points[int(np.argmax(values))])
    tail = _Tail(network, _Objective(np.inf, c, None))
    weight = c @ network.layers[-1].weight

    def bound(batch):
        pieces = batch.pieces
        pieces.low, pieces.high = tighten(pieces.low, pieces.high, pieces.A, pieces.b)
        pre_A, pre_c = tail.pre_maps_of(batch)
        lower = linear_bounds_batch(tail.tail_from(batch.layer), pieces.low, pieces.high, -c,
                                    first=(pre_A, pre_c))
        return -np.array([b.lower[0] for b in lower])

    def reach(pieces, map_A, map_c, wide):
        values = np.full(pieces.count, -np.inf)
        for p in np.flatnonzero(wide):
            rows = pieces.rows[p]
            result = splitter.solver.maximize_warm((weight @ map_A[p])[0], pieces.A[p, :rows],
                                                   pieces.b[p, :rows])
            if result.status == "optimal":
                values[p] = network.forward(result.x[None])[0] @ c[0]
                if values[p] > best.value:
                    best.update(values[p], result.x)
        return values

    outcome = best_first(splitter, bound, reach, incumbent=best.value, deadline=deadline,
                         chunk=chunk)
    return OutputMaximum(best.value, max(outcome.upper, best.value),
                         outcome.status == "exact", best.witness, outcome.counts())


class _Claim:
    """What a search found, made into a :class:`LipschitzCertificate` on request: the
    network given (for its fingerprint), the box, the objective, ``layer``, the best
    region and the search's tree."""

    def __init__(self, given, domain, objective, layer, best, tree):
        self.given, self.domain, self.objective, self.layer = given, domain, objective, layer
        self.best, self.tree = best, tree

    def certificate(self, network, upper):
        """The certificate that the maximum over ``network`` (the searched one, without
        windows) lies in ``[exact lower end of the best region, upper]``; None when there
        is no best region or the domain is not a box."""
        best, tree = self.best, self.tree
        if best.pattern is None or self.domain.kind != "box":
            return None
        lower = self.objective.exact_bracket(network, best.pattern)[0]
        kinds = [REGION if kind in ("region", "sliver") else BOUND for kind in tree.kinds]
        width = (network.num_hidden + 7) // 8
        patterns = np.array(tree.patterns, dtype=np.uint8).reshape(len(tree), width)
        return LipschitzCertificate(
            network_fingerprint(self.given), self.domain.lower.copy(), self.domain.upper.copy(),
            self.objective.norm, self.objective.C, self.objective.direction, self.layer,
            float(lower), float(upper), best.witness.copy(), np.packbits(best.pattern),
            np.array(kinds, dtype=np.int8), np.array(tree.layers, dtype=np.int64),
            np.array(tree.units, dtype=np.int64), patterns,
            np.array(tree.boxes, dtype=np.float64).reshape(len(tree), 2, network.input_dim),
            np.array(tree.values, dtype=np.float64))


class _Tail:
    """The bounds of the layers after a piece's fixed prefix (see the module docstring)."""

    def __init__(self, network, objective):
        self.network, self.layers, self.objective = network, network.layers, objective
        self.tails = {}
        self.last = objective.C @ network.layers[-1].weight
        self.relu = [layer.units == RELU for layer in network.layers[:-1]]
        self.slot_starts = np.cumsum((0,) + network.slot_sizes)

    def bound(self, batch):
        """The search's bound hook (see :func:`best_first`): tighten the boxes, then
        :meth:`bounds`, with the signs of the units of the batch's layer already cut."""
        pieces, layer = batch.pieces, batch.layer
        pieces.low, pieces.high = tighten(pieces.low, pieces.high, pieces.A, pieces.b)
        pre_A, pre_c = self.pre_maps_of(batch)
        fixed = None if batch.unit is None else self._cut_slopes(pieces, layer, pre_A)
        return self.bounds(layer, pre_A, pre_c, pieces.low, pieces.high, fixed)

    def pre_maps_of(self, batch):
        """The pre-activation maps of the batch's layer on each of its pieces (part way
        through the layer, the batch holds them)."""
        if batch.unit is None:
            return self.pre_maps(batch.layer, batch.map_A, batch.map_c)
        return batch.map_A[batch.pieces.maps], batch.map_c[batch.pieces.maps]

    def pre_maps(self, layer, map_A, map_c):
        """Hidden layer ``layer``'s pre-activation maps from its input maps."""
        weight, bias = self.layers[layer].weight, self.layers[layer].bias
        return weight @ map_A, map_c @ weight.T + bias

    def tail_from(self, layer):
        """The network of the layers from hidden layer ``layer`` on."""
        if layer not in self.tails:
            self.tails[layer] = type(self.network).from_layers(self.layers[layer:])
        return self.tails[layer]

    def _cut_slopes(self, pieces, layer, pre_A):
        """Per piece and unit of ``layer``: its derivative (1 or 0) where the piece has the
        unit's cut among its rows (``sources``), else NaN."""
        start = self.slot_starts[layer]
        relu = self.layers[layer].relu_units
        sources = pieces.sources
        rows = np.arange(sources.shape[1]) < pieces.rows[:, None]
        p, r = np.nonzero(rows & (sources >= start) & (sources < start + relu.size))
        unit = relu[sources[p, r] - start]
        fixed = np.full(pre_A.shape[:2], np.nan)
        # the row is -sign a x <= sign c (a: the unit's gradient, sign +1 on its active side)
        fixed[p, unit] = np.einsum("kd,kd->k", pieces.A[p, r], pre_A[p, unit]) < 0
        return fixed

    def bounds(self, layer, pre_A, pre_c, low, high, fixed=None):
        """Upper bounds over boxes on which hidden layer ``layer``'s pre-activations are
        ``pre_A[p] x + pre_c[p]`` (``fixed``: known derivatives of its units, NaN where
        not known)."""
        slopes = self._slopes(layer, pre_A, pre_c, low, high)
        if fixed is not None:
            known = ~np.isnan(fixed)
            slopes[0] = tuple(np.where(known, fixed, s) for s in slopes[0])
        T_mid = np.broadcast_to(self.last, (len(low),) + self.last.shape)
        T_rad = np.zeros_like(T_mid)
        for k in range(len(self.layers) - 2, layer - 1, -1):
            if k < len(self.layers) - 2:
                weight = self.layers[k + 1].weight
                T_mid, T_rad = T_mid @ weight, T_rad @ np.abs(weight)
            s_lo, s_hi = slopes[k - layer]
            lo, hi = T_mid - T_rad, T_mid + T_rad
            lo, hi = (np.minimum(lo * s_lo[:, None], lo * s_hi[:, None]),
                      np.maximum(hi * s_lo[:, None], hi * s_hi[:, None]))
            T_mid, T_rad = (lo + hi) / 2, (hi - lo) / 2
        J_mid, J_rad = T_mid @ pre_A, T_rad @ np.abs(pre_A)
        bound = np.minimum(self.objective.bound(J_mid, J_rad),
                           self.objective.chained(T_mid, T_rad, pre_A))
        return bound * (1 + BOUND_SLACK)

    def _slopes(self, layer, pre_A, pre_c, low, high):
        """Per hidden layer from ``layer`` on, the interval ``[s_lo, s_hi]`` of each unit's
        derivative over the boxes (pre-activation bounds: see the module docstring)."""
        slopes = []
        for k, (lo, hi) in enumerate(self._pre_bounds(layer, pre_A, pre_c, low, high), layer):
            relu = self.relu[k]
            slopes.append((np.where(relu, lo > 0, 1.0), np.where(relu, hi > 0, 1.0)))
        return slopes

    def _pre_bounds(self, layer, pre_A, pre_c, low, high):
        """Bounds ``(lo, hi)`` (pieces, units) of the pre-activations of every hidden layer
        from ``layer`` on over the boxes: layer ``layer``'s from the pieces' maps, the
        later ones by back-substitution through the tail network."""
        first = (pre_A, pre_c)
        if layer + 2 == len(self.layers):
            centre, radius = (high + low) / 2, (high - low) / 2
            z_mid = np.einsum("pnd,pd->pn", first[0], centre) + first[1]
            z_rad = np.einsum("pnd,pd->pn", np.abs(first[0]), radius)
            z_rad = z_rad + BOUND_SLACK * (np.abs(z_mid) + z_rad)
            return [(z_mid - z_rad, z_mid + z_rad)]
        bounds = linear_bounds_batch(self.tail_from(layer), low, high, first=first)
        return [(np.array([b.pre_lower[k] for b in bounds]),
                 np.array([b.pre_upper[k] for b in bounds]))
                for k in range(len(self.layers) - 1 - layer)]


class _Objective:
    """``||C J||`` in an operator norm, or ``||C J v||`` with a direction ``v``."""

    def __init__(self, norm, C, direction):
        self.norm, self.C, self.direction = norm, C, direction

    def exact(self, J):
        """Values for a stack of exact matrices ``C J`` (n, k, d)."""
        if self.direction is None:
            return operator_norms(J, self.norm)
        return np.linalg.norm(J @ self.direction, ord=self.norm, axis=1)

    def bound(self, mid, rad):
        """Upper bounds over interval matrices ``[mid - rad, mid + rad]``."""
        if self.direction is None:
            return _operator_bound(mid, rad, self.norm)
        v = self.direction
        return np.linalg.norm(np.abs(mid @ v) + rad @ np.abs(v), ord=self.norm, axis=1)

    def chained(self, T_mid, T_rad, M):
        """Upper bounds of the value of ``T M`` for ``T`` in an interval matrix:
        ``bound(T) ||M||`` (or ``||M v||``)."""
        tail = _operator_bound(T_mid, T_rad, self.norm)
        if self.direction is None:
            return tail * operator_norms(M, self.norm)
        return tail * np.linalg.norm(M @ self.direction, ord=self.norm, axis=1)

    def exact_bracket(self, network, pattern):
        """Rigorous (lower, upper) of the value on ``pattern`` from rational arithmetic."""
        return exact_value_bracket(network, pattern, self.C, self.norm, self.direction)


def _operator_bound(mid, rad, norm):
    """Upper bounds of the operator norms of every matrix in ``[mid - rad, mid + rad]``
    (stacked (n, k, d)), from the entrywise magnitude bound."""
    magnitude = np.abs(mid) + rad
    columns = magnitude.sum(1).max(1, initial=0.0)
    rows = magnitude.sum(2).max(1, initial=0.0)
    if norm == 1:
        return columns
    if norm == np.inf:
        return rows
    if not magnitude.size:
        return np.zeros(len(magnitude))
    spectral = np.linalg.norm(magnitude, ord=2, axis=(1, 2))
    split = np.linalg.norm(mid, ord=2, axis=(1, 2)) + np.linalg.norm(rad, ord=2, axis=(1, 2))
    return np.minimum(np.minimum(spectral, split), np.sqrt(columns * rows))


class _Best:
    """The best value found: the value, its witness point and (for a region) its
    activation pattern."""

    def __init__(self):
        self.value, self.pattern, self.witness, self.sampled = -np.inf, None, None, 0

    def update(self, value, witness, pattern=None):
        self.value = float(value)
        self.witness = np.array(witness, dtype=float)
        self.pattern = None if pattern is None else np.array(pattern, dtype=bool)


def _sampled_best(network, domain, objective, min_radius, seed):
    """The best of the regions of sampled points (and the domain's centre) that lie
    deeper than ``min_radius`` inside their regions: a first incumbent."""
    best = _Best()
    points = np.vstack([domain.center[None], domain.sample(SAMPLES, seed)])
    norms = np.linalg.norm(domain.A, axis=1)
    depth = ((domain.b - points @ domain.A.T) / norms).min(1)
    A = np.broadcast_to(np.eye(domain.dim), (len(points), domain.dim, domain.dim))
    h = points
    for layer in network.layers[:-1]:
        z, grad = h @ layer.weight.T + layer.bias, layer.weight @ A
        relu = layer.units == RELU
        size = np.linalg.norm(grad, axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            distance = np.where(size > 0, np.abs(z) / size, np.inf)
        depth = np.minimum(depth, np.where(relu, distance, np.inf).min(1, initial=np.inf))
        slope = np.where(relu, z > 0, 1.0)
        h, A = z * slope, grad * slope[..., None]
    values = np.where(depth > min_radius, objective.exact(objective.C @ network.layers[-1].weight
                                                          @ A), -np.inf)
    best.sampled = int((depth > min_radius).sum())
    if best.sampled:
        p = int(np.argmax(values))
        best.update(values[p], points[p], network.activation_pattern(points[p:p + 1])[0])
    return best


def _region_polytope(network, domain, pattern):
    """The region of ``pattern`` as rows ``A x <= b``: its kinks' and the domain's."""
    G, g, kinks = network.kink_rows(pattern, network.affine_maps(pattern))
    return HPolytope(np.vstack([-G, domain.A]), np.concatenate([g, domain.b]),
                     np.concatenate([kinks, -1 - np.arange(len(domain.b))]))


def _direction(direction, d):
    """The direction as a finite float vector of the input dimension (or None)."""
    if direction is None:
        return None
    v = np.asarray(direction, dtype=np.float64).reshape(-1)
    if v.shape != (d,) or not np.all(np.isfinite(v)):
        raise PolyreluError(f"direction must be {d} finite numbers, got shape {v.shape}")
    return v

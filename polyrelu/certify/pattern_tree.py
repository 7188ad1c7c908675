"""The splitting tree of a box rebuilt from a flat list of pieces, with proven coverage.

A *piece* is a partial activation pattern: the box cut by the sign rows of the units it
fixes (every unit of the hidden layers before the layer where it stops; all units for a
full region). :class:`PatternTree` rebuilds, depth first, the tree the layer-wise
splitting would have made of those pieces: at each node it splits on the first open unit
on which the pieces disagree, and every unit on which they all agree is proven to keep
that sign on the whole node, in rigorous arithmetic (interval bounds over the node's box,
one-cut bounds, LP duals re-evaluated with rounding-error bounds: nothing an LP says is
trusted). So the pieces cover the box: any point of it lies in some piece. Each leaf (a
piece that stops at the start of a layer, or a full region) is handed to a leaf check
given by the caller, with the node's rigorous pre-activation maps and bounding box.

Verification's certificate checker and the Lipschitz certificate's checker both use it;
it imports no search code.

Example (``network``, ``pieces`` and ``leaf`` given)::

    tree = PatternTree(network, lower, upper, upper > lower, LazySolver(Options()), "box")
    tree.check(pieces, lambda piece: (piece.layer, 0), leaf)
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import CertificateError
from ..geometry.lp import LPSolver
from .rigorous import (
    LPRows,
    box_from_multipliers,
    first_layer,
    lp_box,
    lp_proves_at_most,
    narrowed,
    next_layer,
    one_cut_bounds,
    upper_over_box,
    widened,
)

__all__ = ["LazySolver", "PatternNode", "PatternTree"]

@dataclass
class PatternNode:
    """A node of a :class:`PatternTree`: the box cut by the
    sign rows ``G x <= h`` of the neurons ``decided`` so far (all neurons of earlier
    layers, some of layer ``layer``), which have activation ``pattern``; ``maps[l]`` are
    layer l's pre-activation maps there; ``box`` bounds the node (``tight``: by LPs)."""

    pieces: list
    layer: int
    maps: list
    pattern: np.ndarray
    decided: np.ndarray
    G: np.ndarray
    h: np.ndarray
    box: tuple
    tight: bool = False
    hinted: int = -1  # the box was intersected with the box of the hint of the node at
    # the start of layer ``hinted``
    whole: bool = False  # ... evaluated with all the hint's rows
    lp: LPRows = None  # the LP form of the node's rows, made when first needed
    cut: tuple = ()  # the neurons of layer ``layer`` decided by a split (not a proof)


class PatternTree:
    """The coverage proof of the pieces of one box, and the leaf check of each piece.

    ``lower`` and ``upper`` bound the box (all inputs); ``free`` marks the inputs that
    vary (the others are fixed at ``lower`` and folded into the first layer's bias);
    ``solver`` answers the LPs whose duals are re-evaluated rigorously; ``where`` names
    the box in error messages; ``hints`` maps ``(layer, packed pattern bytes)`` of a node
    at the start of a layer to proposed bounding-box multipliers ``(rows, weights)`` (see
    :meth:`hint_box`), only ever evaluated, never trusted.

    Raises :class:`polyrelu.errors.CertificateError` (from :meth:`check`) when a unit
    every piece of a node fixes the same way cannot be proven stable there (a piece is
    missing), or when pieces overlap.
    """

    def __init__(self, network, lower, upper, free, solver, where, hints=None):
        self.network, self.solver, self.where = network, solver, where
        self.hints = hints or {}
        self.free = free
        self.lower, self.upper = lower[self.free], upper[self.free]
        self.fixed = lower[~self.free]
        self.reach = np.maximum(np.abs(self.lower), np.abs(self.upper))
        self.offsets = np.cumsum((0,) + tuple(network.slot_sizes))
        self.layers, self.num_hidden = len(self.offsets) - 1, int(self.offsets[-1])
        self.relu_units = [layer.relu_units for layer in network.layers[:-1]]
        self.terms = _exact_terms(network)
        self.bits, self.stops = {}, {}

    def check(self, pieces, stop, leaf):
        """Rebuild the splitting tree of ``pieces`` (depth first) and check every leaf.

        ``pieces`` have a packed ``pattern``; ``stop(piece)`` is ``(layer, units)``: the
        piece fixes every unit of the hidden layers before ``layer`` and the first
        ``units`` units of ``layer`` (``(number of hidden layers, 0)`` for a full region;
        the pattern's other bits are 0). ``leaf(node, piece)`` checks a leaf (a
        :class:`PatternNode` and its one piece) and raises if it is not closed.
        """
        n, d = self.num_hidden, len(self.lower)
        for piece in pieces:
            self.bits[id(piece)] = np.unpackbits(piece.pattern, count=n).astype(bool)
            self.stops[id(piece)] = stop(piece)
        first = first_layer(self.network, self.free, self.fixed)
        if self.terms.used and self.layers:
            first.terms = self.terms.layer_terms(0)
        root = PatternNode(list(pieces), 0, [first],
                           np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), np.zeros((0, d)),
                           np.zeros(0), (self.lower, self.upper))
        stack = [root]
        while stack:
            stack.extend(self._visit(stack.pop(), leaf))

    def _visit(self, node, leaf):
        """Check a leaf, or return the node's children (one node: itself with more units
        decided, or a layer later)."""
        start, stop = self.offsets[node.layer], self.offsets[node.layer + 1] \
            if node.layer < self.layers else self.offsets[-1]
        here = [units for layer, units in map(self.stops.get, map(id, node.pieces))
                if layer == node.layer]
        if self._leaf(node, leaf, start, here):
            return []
        limit = start + min(here) if here else stop  # every piece fixes the units below
        open_ = np.flatnonzero(~node.decided[start:limit]) + start
        bits = np.array([self.bits[id(piece)][open_] for piece in node.pieces])
        split = np.flatnonzero(bits.any(axis=0) & ~bits.all(axis=0))
        if len(split):
            j = open_[split[0]]
            return [self._child(node, j, side, [p for p in node.pieces
                                                if self.bits[id(p)][j] == side])
                    for side in (False, True)]
        self._prove_stable(node, open_, bits[0])
        return [self._next_layer(node) if limit == stop else node]

    def _leaf(self, node, leaf, start, here):
        """A piece whose units are all decided on the node (``here``: how many units of
        the node's layer each piece that stops in it fixes), or (after the last layer) a
        region, must be the node's only piece; returns whether the node is a leaf."""
        if node.layer == self.layers or any(
                units == 0 or node.decided[start:start + units].all() for units in here):
            if len(node.pieces) != 1:
                raise CertificateError(f"{self.where}: {len(node.pieces)} pieces overlap at "
                                       f"layer {node.layer} (duplicates or nested pieces)")
            leaf(node, node.pieces[0])
            return True
        return False

    def _child(self, node, j, active, pieces):
        """``node`` cut by neuron j's sign row (``active``: ``z_j >= 0``)."""
        row, rhs, _ = self.sign_rows(node.layer, node.maps[-1], [j - self.offsets[node.layer]],
                                      [active])
        pattern, decided = node.pattern.copy(), node.decided.copy()
        pattern[j], decided[j] = active, True
        return PatternNode(pieces, node.layer, node.maps, pattern, decided,
                           np.vstack([node.G, row]), np.concatenate([node.h, rhs]), node.box,
                           False, cut=node.cut + (int(j),))

    def sign_rows(self, layer, maps, slots, active):
        """``(G, outer, inner)`` for the ReLU slots ``slots`` (local indices) of hidden layer
        ``layer`` (pre-activation ``maps``) with signs ``active``: ``s z_j(x) <= 0``
        (``s = -1`` if active) implies ``G_j x <= outer_j`` on the sub-box, and
        ``G_j x <= inner_j`` on a set implies ``s z_j <= 0`` there (the maps' rounding
        error between them)."""
        rows = self.relu_units[layer][np.asarray(slots, dtype=int)]
        sign = np.where(np.asarray(active, dtype=bool), -1.0, 1.0)
        slack = self._slack(maps)[rows]
        value = -sign * maps.c[rows]
        return (sign[:, None] * maps.A[rows], widened(value, slack), narrowed(value, slack))

    def _slack(self, maps):
        """``maps.slack`` on the sub-box, computed once per map."""
        cached = getattr(maps, "box_slack", None)
        if cached is None:
            cached = maps.box_slack = maps.slack(self.reach)
        return cached

    def _prove_stable(self, node, neurons, active):
        """Every neuron in ``neurons`` keeps the sign ``active`` on the whole node: interval
        bounds over the node's box (LP-tightened when many remain), then the box with one
        of the node's rows at a time, then one LP each."""
        start = self.offsets[node.layer]
        G, outer, inner = self.sign_rows(node.layer, node.maps[-1], neurons - start, active)
        # the other side {s z_j > 0} has no point in the node if max_node G_j x <= inner_j
        if node.hinted != node.layer + 1:
            self._apply_hint(node, neurons, active)
        pending = upper_over_box(G, *node.box) > inner
        if pending.sum() > 2 * len(self.lower) and not node.tight \
                and node.hinted != node.layer + 1:
            self.tighten(node)
            pending &= upper_over_box(G, *node.box) > inner
        if self.is_empty(node):
            pending[:] = False
        if pending.any() and self.terms.used:
            rows = self.relu_units[node.layer][neurons[pending] - start]
            pending[pending] = ~self.terms.known(node.maps[-1].terms[rows], node,
                                                 active[pending])
        if pending.any():
            pending[pending] = one_cut_bounds(G[pending], node.G, node.h, *node.box) \
                > inner[pending]
        if pending.any() and node.lp is None:
            node.lp = LPRows(node.G, node.h, self.lower, self.upper)
        for i in np.flatnonzero(pending):
            if not lp_proves_at_most(self.solver, G[i], node.lp, node.G, node.h, *node.box,
                                     inner[i]):
                raise CertificateError(
                    f"{self.where}: neuron {self.network.neuron_name(neurons[i])} is "
                    f"{'active' if active[i] else 'inactive'} in every piece of a node but not "
                    "provably so on the node (a piece is missing)")
        node.pattern[neurons] = active
        node.decided[neurons] = True
        node.G, node.h = np.vstack([node.G, G]), np.concatenate([node.h, outer])
        node.lp = None

    def _apply_hint(self, node, neurons, active):
        """Intersect the node's box with the box of the hint for the node it becomes once
        ``neurons`` are decided as ``active`` (the hint's rows of undecided neurons left
        out: only rows the node already has are used)."""
        stop = self.offsets[node.layer + 1]
        pattern = node.pattern[:stop].copy()
        pattern[neurons] = active
        hint = self.hints.get(self._key(node.layer + 1, pattern))
        if hint is not None:
            *box, node.whole = self.hint_box(node, *hint)
            node.box, node.hinted = tuple(box), node.layer + 1

    def _key(self, layer, prefix):
        """The hint table's key of the node at the start of ``layer`` with pattern
        ``prefix`` (the bits of the earlier layers)."""
        bits = np.zeros(self.num_hidden, dtype=bool)
        bits[:len(prefix)] = prefix
        return (layer, bytes(np.packbits(bits)))

    def tighten(self, node):
        """Replace the node's box by its rigorous LP bounding box."""
        node.box, node.tight = lp_box(self.solver, node.G, node.h, *node.box), True

    @staticmethod
    def is_empty(node):
        """Whether the node's rigorous box proves it empty (it then needs no proof)."""
        return bool(np.any(node.box[0] > node.box[1]))

    def _next_layer(self, node):
        """``node`` with every neuron of its layer decided, moved to the next layer."""
        start, stop = self.offsets[node.layer], self.offsets[node.layer + 1]
        sources = self.network.layers[node.layer].sources(node.pattern[start:stop])
        maps = next_layer(self.network, node.layer, node.maps[-1], sources)
        if self.terms.used and node.layer + 1 < self.layers:
            maps.terms = self.terms.layer_terms(node.layer + 1, sources, node.maps[-1].terms)
        return PatternNode(node.pieces, node.layer + 1, node.maps + [maps], node.pattern,
                           node.decided, node.G, node.h, node.box, node.tight, node.hinted,
                           node.whole)

    def hint_box(self, node, rows, weights):
        """The node's box intersected with the box that hint multipliers prove: weight
        ``weights[i]`` on the unit-normalised row ``rows[i, 1]`` (sub-box faces, then
        neuron sign rows, rebuilt here from the node's pattern) bounding direction
        ``rows[i, 0]``; entries on neurons the node has not decided are left out.
        Returns ``(low, high, whether every entry was used)``."""
        d = len(self.lower)
        neuron = rows[:, 1] - 2 * d
        usable = (weights > 0) & ((neuron < 0) | node.decided[np.maximum(neuron, 0)])
        whole = bool(usable.all())
        rows, weights, neuron = rows[usable], weights[usable], neuron[usable]
        used = np.unique(neuron[neuron >= 0])
        parts_G, parts_h = [np.eye(d), -np.eye(d)], [self.upper, -self.lower]
        layer_of = np.searchsorted(self.offsets, used, side="right") - 1
        for layer in np.unique(layer_of):
            js = used[layer_of == layer]
            G, outer, _ = self.sign_rows(layer, node.maps[layer], js - self.offsets[layer],
                                          node.pattern[js])
            parts_G.append(G)
            parts_h.append(outer)
        G, h = np.vstack(parts_G), np.concatenate(parts_h)
        column = np.where(neuron < 0, rows[:, 1], 2 * d + np.searchsorted(used, neuron))
        norms = np.linalg.norm(G, axis=1)
        Y = np.zeros((2 * d, len(h)))
        np.add.at(Y, (rows[:, 0], column), weights / np.where(norms > 0, norms, 1.0)[column])
        low, high = box_from_multipliers(Y, G, h, self.lower, self.upper)
        return np.maximum(low, node.box[0]), np.minimum(high, node.box[1]), whole

    def neuron_rows(self, node, layers=None):
        """Outer sign rows of every neuron of the first ``layers`` hidden layers (default:
        all), in neuron order."""
        layers = self.layers if layers is None else layers
        parts = [self.sign_rows(layer, maps, np.arange(len(self.relu_units[layer])),
                                 node.pattern[self.offsets[layer]:self.offsets[layer + 1]])
                 for layer, maps in enumerate(node.maps[:layers])]
        d = len(self.lower)
        return (np.vstack([np.zeros((0, d))] + [G for G, _, _ in parts]),
                np.concatenate([np.zeros(0)] + [outer for _, outer, _ in parts]))



class _ExactTerms:
    """Hidden pre-activations as exact integer combinations of earlier ones, for the sign
    proofs that rounding-error bounds cannot give: a unit whose weight row and bias equal
    an earlier unit's of its layer (the ReLU of ``relu(t)`` and of ``abs(t)``) has its
    pre-activation; a unit with integer weights and no bias (the max trees of
    :func:`polyrelu.network.windowless.without_windows`) is, on a node, the integer
    combination of the pre-activations its active inputs equal, e.g. ``y - x = y``
    where ``x`` is an inactive ReLU. When that combination is ``k z_a`` for one unit
    ``a`` of known sign on the node, or 0, the unit's sign is known there exactly
    (its sign row lies on ``a``'s, and no float bound proves one from the other).

    Terms are rows over the global pre-activation indices (the *anchors*)."""

    def __init__(self, network):
        self.layers = network.layers[:-1]
        sizes = [layer.n_z for layer in self.layers]
        self.offsets = np.cumsum([0] + sizes)
        self.slot_z = network.slot_units()
        self.first, self.integer = [], []
        for index, layer in enumerate(self.layers):
            rows = np.column_stack([layer.weight, layer.bias])
            _, first, group = np.unique(rows, axis=0, return_index=True, return_inverse=True)
            self.first.append(first[group.reshape(-1)])
            whole = np.all((layer.weight == np.round(layer.weight))
                           & (np.abs(layer.weight) <= 2.0 ** 20), axis=1)
            self.integer.append(whole & (layer.bias == 0) & (index > 0))
        self.used = any(np.any(f != np.arange(len(f))) or i.any()
                        for f, i in zip(self.first, self.integer))

    def layer_terms(self, layer, sources=None, previous=None):
        """Terms of hidden layer ``layer``'s pre-activations, from the ``sources`` of the
        layer before on the node and that layer's terms ``previous``."""
        n = self.layers[layer].n_z
        terms = np.zeros((n, int(self.offsets[-1])))
        terms[np.arange(n), self.offsets[layer] + self.first[layer]] = 1.0
        rows = np.flatnonzero(self.integer[layer])
        if rows.size:
            inputs = np.flatnonzero(sources >= 0)
            weight = self.layers[layer].weight[np.ix_(rows, inputs)]
            terms[rows] = weight @ previous[sources[inputs]]  # exact: small integers
        return terms

    def known(self, terms, node, active):
        """Which rows of ``terms`` have the sign ``active`` on the node for certain."""
        sign = np.zeros(int(self.offsets[-1]), dtype=np.int8)
        decided = np.flatnonzero(node.decided)
        sign[self.slot_z[decided]] = np.where(node.pattern[decided], 1, -1)
        count = np.count_nonzero(terms, axis=1)
        anchor = np.argmax(terms != 0, axis=1)
        coefficient = terms[np.arange(len(terms)), anchor]
        implied = np.sign(coefficient) * sign[anchor]
        return (count == 0) | ((count == 1) & (implied == np.where(active, 1, -1)))


@lru_cache(maxsize=8)
def _exact_terms(network):
    """The :class:`_ExactTerms` of a network (made once per network)."""
    return _ExactTerms(network)


class LazySolver:
    """An :class:`LPSolver` made on first use (most certificates need no LP at all)."""

    def __init__(self, options):
        self.options, self.solver = options, None

    def __getattr__(self, name):
        if self.solver is None:
            self.solver = LPSolver(self.options)
        return getattr(self.solver, name)

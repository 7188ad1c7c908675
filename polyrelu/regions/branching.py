"""Best-first branch and bound over the layer-wise splitting's pieces.

The nodes of the tree are the pieces of :mod:`polyrelu.regions.splitting`: a piece that
awaits hidden layer ``k`` has the activation pattern of the layers before ``k`` fixed
(a *partial pattern*) on a polytope, and the exact affine map of layer ``k``'s input on
it. :func:`best_first` maximises an objective over the regions (the final pieces):

1. the open batches wait in a priority queue keyed by an upper bound of the objective
   over their pieces (the caller's ``bound``, one call per batch, arrays in and out);
2. the best is popped and taken one splitting step on (:func:`split_step`: cut by the
   next kinks of its layer, or to the end of the layer);
3. the pieces it became (at the next layer, or part way through this one when the
   batch outgrew ``chunk``) get their own bounds; those that cannot beat the incumbent
   (``bound <= incumbent``) are closed, the others are grouped by bound and queued;
4. final pieces (full regions) go to the caller's ``reach``, which returns their
   objective values (the incumbent becomes the largest).

It stops when the best open bound is at most the incumbent (the answer is exact: the
incumbent), when the incumbent reaches ``target`` (the caller's "stop"), or at the
deadline (the answer is the bracket ``[incumbent, best open bound]``). Before the
best-first order, a dive follows the best child of each step down to the first regions,
so the incumbent is a real value early. Every closed piece (by its bound, as a region,
as a sliver thinner than the radius tolerance) is recorded in a :class:`SearchTree`
with its layer, its partial pattern and the bound or value that closed it.

Nothing here knows the objective. Two uses:

- **Maxima over regions** (:mod:`polyrelu.analysis.lipschitz_search`): ``bound`` is a
  sound upper bound of the Jacobian's norm over all completions of a partial pattern,
  ``reach`` the exact norm of each region.
- **Verification** (a property ``margin(x) > 0`` on the domain): maximise the violation
  ``-margin``. ``bound`` returns minus a sound lower bound of the margin over each piece
  (from the tail network's bounds), ``reach`` decides each region by an LP and returns
  ``+inf`` on a counterexample (else minus its margin), ``target=0`` stops at the first
  violation and ``incumbent=-margin_tolerance`` (e.g. ``-BOUND_MARGIN``) closes every piece
  whose margin is proved positive with that margin. An "exact" outcome with an incumbent
  below ``target`` then means the property holds, and the tree is the certificate's
  list of closed pieces.
"""

import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from ..deadline import Deadline
from .splitting import ACTIVE_STATE, split_step

__all__ = ["best_first", "BranchOutcome", "SearchTree"]


@dataclass
class SearchTree:
    """The closed pieces of a search, in the order they were closed.

    Entry i: ``kinds[i]`` ("bound": closed by its upper bound; "region": a final piece
    wider than the radius tolerance; "sliver": a final piece that is not; "open": still
    queued when the search stopped), ``layers[i]`` (the hidden layer the piece awaited;
    the number of hidden layers for final pieces), ``units[i]`` (how many ReLU units of
    that layer the piece has fixed: 0 unless it was closed part way through the layer),
    ``patterns[i]`` (its partial pattern: the slots of the layers before ``layers[i]``
    and the first ``units[i]`` slots of that layer, packed with ``np.packbits``; None
    when the splitter does not track patterns), ``boxes[i]`` (the piece's bounding box
    ``(low, high)`` when it was closed: for a bound, the box it was bounded over) and
    ``values[i]`` (the bound that closed it, or the region's value).
    """

    kinds: list = field(default_factory=list)
    layers: list = field(default_factory=list)
    units: list = field(default_factory=list)
    patterns: list = field(default_factory=list)
    boxes: list = field(default_factory=list)
    values: list = field(default_factory=list)

    def add(self, kind, batch, index, values, start=0):
        """Record the pieces ``index`` of ``batch`` as ``kind`` with ``values`` (``start``:
        the first pattern slot of the batch's layer)."""
        pieces, units = batch.pieces, batch.unit or 0
        tracked = getattr(pieces, "pattern", None)
        for p, value in zip(index, values):
            self.kinds.append(kind)
            self.layers.append(int(batch.layer))
            self.units.append(units)
            if tracked is None:
                self.patterns.append(None)
            else:
                pattern = tracked[p].copy()
                pattern[start:start + units] = pieces.state[p, :units] == ACTIVE_STATE
                self.patterns.append(np.packbits(pattern))
            self.boxes.append((pieces.low[p].copy(), pieces.high[p].copy()))
            self.values.append(float(value))

    def __len__(self):
        return len(self.kinds)

    def count(self, kind):
        """How many entries are of ``kind``."""
        return self.kinds.count(kind)


@dataclass
class BranchOutcome:
    """The result of :func:`best_first`.

    ``status`` is "exact" (no open piece can beat ``incumbent``: it is the maximum),
    "target" (the incumbent reached the target) or "deadline"; ``upper`` is a sound upper
    bound of the maximum (``incumbent`` when exact); ``steps`` splitting steps were
    taken, ``bounded`` pieces bounded, ``pruned`` closed by their bounds, ``regions``
    reached; ``lps`` counts the splitter's LPs."""

    status: str
    incumbent: float
    upper: float
    steps: int
    bounded: int
    pruned: int
    regions: int
    lps: int
    seconds: float
    tree: SearchTree

    def counts(self):
        """``lps``, ``steps``, ``bounded``, ``pruned``, ``regions`` and ``seconds`` as a dict."""
        return {"lps": self.lps, "steps": self.steps, "bounded": self.bounded,
                "pruned": self.pruned, "regions": self.regions, "seconds": self.seconds}


def best_first(splitter, bound, reach, *, incumbent=-np.inf, target=np.inf, deadline=None,
               chunk=256, group=32, dive=True, inherit=True):
    """Maximise an objective over the regions of ``splitter``'s network and domain.

    Parameters
    ----------
    splitter : Splitter
        The splitting of the domain (with ``track=True`` the tree records patterns).
    bound : callable
        ``bound(batch)`` -> array (batch.pieces.count,) of upper bounds of the objective
        over each piece of a :class:`Batch`: awaiting hidden layer ``batch.layer``
        (``batch.unit`` None; its input on piece p is ``map_A[p] x + map_c[p]``) or part
        way through it (its kinks before ``batch.unit`` cut, see :class:`Batch`; the
        bound of the piece's parent is a valid answer). It must be sound: a piece is
        closed when its bound is ``<= incumbent`` (the smaller of it and the parent's
        bound is used).
    reach : callable
        ``reach(pieces, map_A, map_c, wide)`` -> array (pieces.count,) of the objective's
        values on final pieces (``map_A[p] x + map_c[p]`` is the output layer's input):
        those where ``wide`` is True are the regions; thin pieces (``~wide``) are passed
        too, for callers that must close them, and should get ``-inf`` unless they count.
    incumbent : float
        The value to beat at the start (a known lower bound, or a threshold).
    target : float
        Stop as soon as the incumbent is ``>= target``.
    deadline : Deadline, optional
    chunk : int
        Most pieces in a batch while it is split (see :func:`split_step`).
    group : int
        Most pieces in one queued node: smaller is closer to best-first, larger
        batches the bound calls better.
    dive : bool
        Follow the best child down to the first regions before the best-first order.
    inherit : bool
        A piece's bound is the smaller of its own and its parent's (False: its own, so
        that every bound in the tree is one ``bound`` computed over that piece's box, as
        a certificate checker recomputes it).

    Returns
    -------
    BranchOutcome

    Examples
    --------
    The largest output of ``|x|`` over [-1, 2], with interval bounds of the output:

    >>> import numpy as np
    >>> from polyrelu import Network, Domain, Options
    >>> from polyrelu.geometry.lp import LPSolver
    >>> from polyrelu.regions.splitting import Splitter
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> splitter = Splitter(net, Domain.box([-1], [2]), Options(), LPSolver(Options()))
    >>> def bound(batch):
    ...     return np.abs(batch.pieces.low).max(1) + np.abs(batch.pieces.high).max(1)
    >>> def reach(pieces, A, c, wide):
    ...     out = np.einsum("pij,pj->pi", A, pieces.high) + c   # the output layer's input
    ...     return np.where(wide, out.sum(1), -np.inf)
    >>> outcome = best_first(splitter, bound, reach)
    >>> outcome.status, outcome.incumbent
    ('exact', 2.0)
    """
    search = _Search(splitter, bound, reach, incumbent, target, deadline or Deadline(None),
                     chunk, group, inherit)
    return search.run(dive)


class _Search:
    """The state of one :func:`best_first` run."""

    def __init__(self, splitter, bound, reach, incumbent, target, deadline, chunk, group,
                 inherit):
        self.splitter, self.bound_fn, self.reach_fn = splitter, bound, reach
        self.incumbent, self.target, self.deadline = float(incumbent), target, deadline
        self.chunk, self.group, self.inherit = chunk, group, inherit
        self.final = len(splitter.network.hidden_sizes)
        self.open, self.sequence = [], 0
        self.tree = SearchTree()
        self.steps = self.bounded = self.pruned = self.regions = 0

    def run(self, dive):
        start = time.perf_counter()
        self._arrived(self.splitter.root_batch(), np.inf)
        diving = dive
        while self.open and self.incumbent < self.target and not self.deadline.expired():
            if -self.open[0][0] <= self.incumbent:
                break
            key, batch = self._pop_deepest() if diving else self._pop_best()
            if key <= self.incumbent:
                self._close(batch, key)
                continue
            diving = diving and not self.regions
            self.steps += 1
            stack = [batch]
            split_step(self.splitter, stack, chunk=self.chunk)
            for child in stack:
                self._arrived(child, key)
        return self._outcome(time.perf_counter() - start)

    def _arrived(self, batch, key):
        """Queue, close or reach a batch a step produced (``key``: its parent's bound)."""
        pieces = batch.pieces
        if not pieces.count:
            return
        if batch.layer == self.final:
            wide = self.splitter.finish(pieces)
            values = np.asarray(self.reach_fn(pieces, batch.map_A, batch.map_c, wide),
                                dtype=float)
            self.incumbent = max(self.incumbent, float(values.max(initial=-np.inf)))
            self.regions += int(wide.sum())
            self.tree.add("region", batch, np.flatnonzero(wide), values[wide])
            self.tree.add("sliver", batch, np.flatnonzero(~wide), values[~wide])
            return
        bounds = np.asarray(self.bound_fn(batch), dtype=float)
        if self.inherit:
            bounds = np.minimum(bounds, key)
        self.bounded += pieces.count
        closed = bounds <= self.incumbent
        self._record("bound", batch, np.flatnonzero(closed), bounds[closed])
        self.pruned += int(closed.sum())
        order = np.flatnonzero(~closed)
        order = order[np.argsort(-bounds[order], kind="stable")]
        for first in range(0, len(order), self.group):
            part = order[first:first + self.group]
            self._push(float(bounds[part[0]]), batch.take(part))

    def _push(self, key, batch):
        self.sequence += 1
        heapq.heappush(self.open, (-key, self.sequence, batch))

    def _pop_best(self):
        key, _, batch = heapq.heappop(self.open)
        return -key, batch

    def _pop_deepest(self):
        """The deepest open batch (furthest layer and kink; the best bound among those)."""
        def depth(entry):
            batch = entry[2]
            return batch.layer, -1 if batch.unit is None else batch.unit, -entry[0], entry[1]
        position = max(range(len(self.open)), key=lambda i: depth(self.open[i]))
        key, _, batch = self.open[position]
        self.open[position] = self.open[-1]
        self.open.pop()
        heapq.heapify(self.open)
        return -key, batch

    def _close(self, batch, key):
        pieces = batch.pieces
        self._record("bound", batch, range(pieces.count), [key] * pieces.count)
        self.pruned += pieces.count

    def _record(self, kind, batch, index, values):
        """Add pieces of ``batch`` to the tree (with the units it fixed part way through its
        layer)."""
        start = self.splitter.bounds[batch.layer] if batch.unit else 0
        self.tree.add(kind, batch, index, values, start)

    def _outcome(self, seconds):
        upper = max([self.incumbent] + [-entry[0] for entry in self.open])
        if self.incumbent >= self.target:
            status = "target"
        elif upper <= self.incumbent:
            status, upper = "exact", self.incumbent
            for key, _, batch in self.open:
                self._close(batch, -key)
            self.open = []
        else:
            status = "deadline"
        for key, _, batch in self.open:
            self._record("open", batch, range(batch.pieces.count), [-key] * batch.pieces.count)
        return BranchOutcome(status, self.incumbent, upper, self.steps, self.bounded,
                             self.pruned, self.regions, self.splitter.solver.count, seconds,
                             self.tree)


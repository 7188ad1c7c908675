"""Betti numbers, persistence barcodes and PL critical points of a network's outputs.

All three work on a :class:`polyrelu.RegionComplex` (from
:func:`polyrelu.enumerate_regions`) and the nerves of :mod:`polyrelu.topology.nerve`;
the homology over GF(2) is gudhi's (``SimplexTree``). The sets are closed:
``{x in D : f_k(x) <= c}`` (sublevel), ``{f_k >= c}`` (superlevel) and
``{x : f_k(x) >= f_j(x) for every j}`` (the decision region of output k).

Resolution: vertices of different regions within ``MERGE_REL`` times the domain's
diameter are one vertex, and a vertex is in ``{f <= c}`` (or "output k wins" there) up
to ``1e-9`` times the outputs' magnitude (float64 vertices put a set's boundary a few
units in the last place off); below that, sets that touch are taken to touch.
"""

from dataclasses import dataclass

import gudhi
import numpy as np

from ..errors import PolyreluError
from ..geometry.lp import LPSolver
from .incidence import vertex_incidence
from .nerve import lower_link, sublevel_nerve, winner_nerve

__all__ = ["Bar", "CriticalPoint", "barcode", "betti_numbers", "critical_points"]

_RESOLUTION_REL = 1e-9


@dataclass(frozen=True)
class Bar:
    """One bar of a barcode: a class of dimension ``dim`` alive on ``[birth, death)`` of the
    filtration's levels (``death = inf`` for a class that never dies)."""

    dim: int
    birth: float
    death: float


@dataclass(frozen=True)
class CriticalPoint:
    """A vertex where the sublevel sets of an output change: the reduced homology of its
    lower link has rank ``multiplicity`` in degree ``index - 1`` (index 0: a local minimum,
    whose lower link is empty)."""

    point: np.ndarray
    value: float
    index: int
    multiplicity: int


def betti_numbers(complex_, *, output=0, level=None, superlevel=None, winner=None,
                  incidence=None):
    """Betti numbers ``(b_0, ..., b_{d-1})`` over GF(2) of one closed set of the domain.

    Give exactly one of ``level`` (``{f_output <= level}``), ``superlevel``
    (``{f_output >= superlevel}``) or ``winner`` (``{f_winner >= f_j for all j}``).
    ``incidence``: the complex's :func:`vertex_incidence`, to reuse it across calls.

    Examples
    --------
    ``| |x| - 1 |`` on ``[-2, 2]``: the sublevel set at 0.5 is two intervals.

    >>> from polyrelu import Domain, Network, enumerate_regions
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0], [-1.0, -1.0]], [[1.0, 1.0]]],
    ...               [[0.0, 0.0], [-1.0, 1.0], [0.0]])
    >>> regions = enumerate_regions(net, Domain.box([-2.0], [2.0]))
    >>> betti_numbers(regions, level=0.5), betti_numbers(regions, superlevel=0.5)
    ((2,), (3,))
    """
    if sum(x is not None for x in (level, superlevel, winner)) != 1:
        raise PolyreluError("give exactly one of level, superlevel and winner")
    d = complex_.domain.dim
    k = _output(complex_, output if winner is None else winner)
    incidence = vertex_incidence(complex_) if incidence is None else incidence
    outputs = incidence.outputs
    if winner is not None:
        margins = outputs[:, [k]] - np.delete(outputs, k, axis=1)  # f_k - f_j, j != k
        simplices = winner_nerve(incidence, margins, LPSolver(), _resolution(outputs))
        return _betti(_tree({s: 0.0 for s in simplices}), d)
    sign, cut = (1.0, level) if level is not None else (-1.0, -superlevel)
    nerve = sublevel_nerve(incidence, sign * outputs[:, k], d)
    cut += _resolution(outputs[:, k])
    return _betti(_tree({s: v for s, v in nerve.items() if v <= cut}), d)


def barcode(complex_, *, output=0, superlevel=False, incidence=None):
    """The persistence barcode of the sublevel filtration ``{f_output <= c}`` (or, with
    ``superlevel``, of ``{f_output >= c}`` for decreasing ``c``: births then lie above
    deaths), as a list of :class:`Bar` in degrees ``0 .. d-1``, longest first in each.

    The Betti numbers at any level ``c`` count the bars with ``birth <= c < death``
    (``birth >= c > death`` for superlevel bars). Bars shorter than the resolution
    (``1e-9`` times the output's magnitude: the float64 noise of tied vertex values) are
    left out. ``incidence`` as for :func:`betti_numbers`.

    >>> from polyrelu import Domain, Network, enumerate_regions
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0], [-1.0, -1.0]], [[1.0, 1.0]]],
    ...               [[0.0, 0.0], [-1.0, 1.0], [0.0]])
    >>> [(b.dim, b.birth, b.death) for b in barcode(enumerate_regions(
    ...     net, Domain.box([-2.0], [2.0])))]
    [(0, 0.0, inf), (0, 0.0, 1.0)]
    """
    d = complex_.domain.dim
    k = _output(complex_, output)
    incidence = vertex_incidence(complex_) if incidence is None else incidence
    sign = -1.0 if superlevel else 1.0
    values = sign * incidence.outputs[:, k]
    tree = _tree(sublevel_nerve(incidence, values, d))
    tree.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    shortest = _resolution(values)
    bars = []
    for k in range(d):
        intervals = sorted((tuple(i) for i in tree.persistence_intervals_in_dimension(k)),
                           key=lambda i: (i[0] - i[1], i[0]))
        bars += [Bar(k, float(sign * birth), float(sign * death)) for birth, death in intervals
                 if death - birth > shortest]
    return bars


def critical_points(complex_, *, output=0, incidence=None):
    """The PL critical points of output ``output`` on the complex: the vertices whose lower
    link (the directions in which the output decreases, within the domain) is not
    acyclic, with their index. Ties between vertex values are broken by vertex order.

    Morse's relation holds: the sum of ``(-1)^index * multiplicity`` is the Euler
    characteristic of the domain (1 for a box). ``incidence`` as for :func:`betti_numbers`.

    >>> from polyrelu import Domain, Network, enumerate_regions
    >>> net = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> [(p.point.tolist(), p.index) for p in critical_points(enumerate_regions(
    ...     net, Domain.box([-1.0], [1.0])))]
    [([0.0], 0)]
    """
    d = complex_.domain.dim
    k = _output(complex_, output)
    incidence = vertex_incidence(complex_) if incidence is None else incidence
    values = incidence.outputs[:, k]
    order = np.lexsort((np.arange(len(values)), values))
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values))
    found = []
    for v in range(len(values)):
        link = lower_link(incidence, v, rank < rank[v], d)
        reduced = _reduced_betti(link, d)
        found += [CriticalPoint(incidence.points[v], float(values[v]), k, int(m))
                  for k, m in enumerate(reduced) if m]
    return sorted(found, key=lambda p: (p.value, p.index))


def _reduced_betti(simplices, d):
    """Reduced Betti numbers in degrees -1 .. d-1 of a simplicial complex (the empty one
    has one class in degree -1)."""
    if not simplices:
        return [1] + [0] * d
    betti = list(_betti(_tree({s: 0.0 for s in simplices}), d))
    return [0, betti[0] - 1] + betti[1:]


def _tree(filtration):
    tree = gudhi.SimplexTree()
    for simplex, value in filtration.items():
        tree.insert(list(simplex), value)
    tree.make_filtration_non_decreasing()
    return tree


def _betti(tree, d):
    """Betti numbers in degrees ``0 .. d-1`` (the tree holds simplices up to dimension d)."""
    if tree.num_simplices() == 0:
        return (0,) * d
    tree.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    betti = tree.betti_numbers()
    return tuple(int(betti[k]) if k < len(betti) else 0 for k in range(d))


def _output(complex_, output):
    m = complex_.network.output_dim
    if not 0 <= int(output) < m:
        raise PolyreluError(f"output index {output} is out of range: the network has {m} "
                            "outputs")
    return int(output)


def _resolution(values):
    """How far a vertex value may lie beyond a level (or a margin below 0) and still count:
    ``1e-9`` times the values' magnitude (float64 vertices are a few ulps off)."""
    return _RESOLUTION_REL * (1.0 + float(np.abs(values).max(initial=0.0)))

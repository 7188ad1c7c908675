"""Nerves of covers by convex pieces of the regions, with their filtration values.

A closed set that is a union of convex polytopes, one per region (the region cut by
``f_k <= c``, or by "output k wins"), has the homotopy type of the nerve of those
pieces (the nerve theorem; its persistent form for the sublevel filtration). A set of
pieces has a common point when the regions' common face (the convex hull of their
common vertices, see :mod:`polyrelu.topology.incidence`) meets the cut: for ``f_k <= c``
when ``min f_k`` over those vertices is at most ``c``; for "output k wins" when a convex
combination of them has ``f_k >= f_j`` for every ``j`` (an LP, unless a vertex has it).

Only simplices of dimension at most ``d`` are built: they decide the homology in the
degrees ``0 .. d - 1`` that a set in ``R^d`` can have.
"""

from itertools import combinations
from math import comb

import numpy as np

from ..errors import SizeLimitError

__all__ = ["MAX_SIMPLICES", "lower_link", "sublevel_nerve", "winner_nerve"]

#: Largest nerve built (simplices); beyond, the region complex is too large for topology.
MAX_SIMPLICES = 5_000_000


def sublevel_nerve(incidence, values, dim):
    """The nerve with the filtration of a sublevel set: ``{simplex: min of values over the
    regions' common vertices}``, simplices (sorted tuples of region ids) of dimension at most
    ``dim``.

    >>> from polyrelu.topology.incidence import VertexIncidence
    >>> two = VertexIncidence(None, [(0,), (0, 1), (1,)], None, None)
    >>> sorted(sublevel_nerve(two, [3.0, 1.0, 0.0], 1).items())
    [((0,), 1.0), ((0, 1), 1.0), ((1,), 0.0)]
    """
    _check_size(incidence, dim)
    filtration = {}
    for members, value in zip(incidence.regions, values):
        value = float(value)
        for simplex in _faces(members, dim):
            if filtration.get(simplex, np.inf) > value:
                filtration[simplex] = value
    return filtration


def winner_nerve(incidence, margins, solver, tol):
    """The simplices (dimension at most d) of the nerve of the regions' pieces where one
    output wins: ``margins[v, j] = f_k - f_j`` at vertex ``v`` (one column per other
    output); a simplex is in when some convex combination of its common vertices has
    every margin ``>= -tol``."""
    dim = incidence.points.shape[1]
    _check_size(incidence, dim)
    wins = (margins >= -tol).all(axis=1)
    common = _common_vertices(incidence, dim)
    return [simplex for simplex, vertices in common.items()
            if wins[vertices].any() or _mixture_wins(margins[vertices], solver, tol)]


def lower_link(incidence, v, lower, dim):
    """Simplices of the nerve of the lower link of vertex ``v``: sets of regions at ``v``
    whose common face has a vertex ``w`` with ``lower[w]`` (``f(w) < f(v)``, ties broken
    by vertex id). Its reduced homology is that of the lower link."""
    members = incidence.regions[v]
    below = {r: {int(w) for w in incidence.vertices[r] if lower[w]} for r in members}
    return [simplex for simplex in _faces(members, dim)
            if set.intersection(*(below[r] for r in simplex))]


def _faces(members, dim):
    for size in range(1, min(len(members), dim + 1) + 1):
        yield from combinations(members, size)


def _common_vertices(incidence, dim):
    common = {}
    for v, members in enumerate(incidence.regions):
        for simplex in _faces(members, dim):
            common.setdefault(simplex, []).append(v)
    return {simplex: np.array(vertices) for simplex, vertices in common.items()}


def _mixture_wins(margins, solver, tol):
    """Whether weights ``l >= 0``, ``sum l = 1`` have ``l @ margins >= -tol`` in every
    column (an LP over the face's vertices)."""
    n = len(margins)
    result = solver.maximize(np.zeros(n), -margins.T, np.full(margins.shape[1], tol),
                             A_eq=np.ones((1, n)), b_eq=np.ones(1), lower=np.zeros(n))
    return result.status == "optimal"


def _check_size(incidence, dim):
    total = sum(comb(len(m), k) for m in incidence.regions
                for k in range(1, min(len(m), dim + 1) + 1))
    if total > MAX_SIMPLICES:
        raise SizeLimitError(
            f"the nerve of this region complex would have about {total:,} simplices "
            f"(limit {MAX_SIMPLICES:,}): topology is for low input dimension")

"""`VertexIncidence`: the vertices of a region complex and the regions that meet at each.

The activation regions of a piecewise-linear network form a polyhedral complex: two
closed regions meet in a common face, and a nonempty face of a bounded polytope has a
vertex. So a set of regions has a common point exactly when it has a common vertex,
and everything the topology needs (which regions meet, where an affine function is
smallest on their common face) is read off the vertices. Each region's vertices are
computed from its facets (qhull's halfspace intersection; the two ends for d = 1);
vertices of different regions closer than ``tol`` are one vertex.
"""

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = ["MERGE_REL", "VertexIncidence", "vertex_incidence"]

#: Vertices of different regions closer than this times the domain's diameter are one
#: vertex: 100 times the engine's thinnest region (``Options.min_radius_rel``), so that
#: regions separated only by a sliver the engine does not count still meet.
MERGE_REL = 1e-7


@dataclass(frozen=True)
class VertexIncidence:
    """Vertices of a region complex and, for each, the regions that contain it.

    Attributes
    ----------
    points : ndarray, shape (V, d)
    regions : list of tuple of int
        ``regions[v]``: the sorted ids of the regions that have vertex ``v``.
    vertices : list of ndarray of int
        ``vertices[r]``: the vertex ids of region ``r``.
    outputs : ndarray, shape (V, m)
        The network's outputs at every vertex (by the affine map of one region that holds
        it: the maps agree there).
    """

    points: np.ndarray
    regions: list
    vertices: list
    outputs: np.ndarray


def vertex_incidence(complex_, tol=None):
    """The :class:`VertexIncidence` of a :class:`polyrelu.RegionComplex`.

    Parameters
    ----------
    complex_ : RegionComplex
    tol : float, optional
        Merge distance (default ``MERGE_REL`` times the domain's diameter).

    Examples
    --------
    >>> from polyrelu import Domain, Network, enumerate_regions
    >>> net = Network([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> incidence = vertex_incidence(enumerate_regions(net, Domain.box([-1, -1], [1, 1])))
    >>> len(incidence.points), max(len(r) for r in incidence.regions)
    (9, 4)
    """
    if tol is None:
        tol = MERGE_REL * float(complex_.domain.diameter)
    per_region = [region.polytope.vertices(region.interior_point) for region in complex_.regions]
    points = np.vstack(per_region)
    owner = np.repeat(np.arange(len(per_region)), [len(p) for p in per_region])
    label = _merged(points, tol)
    count = int(label.max()) + 1
    merged = np.zeros((count, points.shape[1]))
    np.add.at(merged, label, points)
    merged /= np.bincount(label, minlength=count)[:, None]
    regions = [set() for _ in range(count)]
    for v, r in zip(label.tolist(), owner.tolist()):
        regions[v].add(r)
    offsets = np.cumsum([0] + [len(p) for p in per_region])
    vertices = [np.unique(label[a:b]) for a, b in pairwise(offsets)]
    regions = [tuple(sorted(r)) for r in regions]
    return VertexIncidence(merged, regions, vertices, _outputs(complex_, merged, regions))


def _outputs(complex_, points, regions):
    first = np.array([members[0] for members in regions])
    outputs = np.empty((len(points), complex_.network.output_dim))
    for r in np.unique(first):
        at = first == r
        outputs[at] = complex_.regions[r].apply(points[at])
    return outputs


def _merged(points, tol):
    """A label per point: points joined by chains of distances <= ``tol`` share one."""
    pairs = cKDTree(points).query_pairs(tol, output_type="ndarray")
    n = len(points)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]

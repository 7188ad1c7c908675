"""Cross-check the graph walk against the layer-wise splitting enumerator.

:func:`compare_complexes` compares any two complexes of one network and domain region by
region (patterns, facets, radii, affine maps), whatever the network's units and windows.
"""

from dataclasses import dataclass, field

import numpy as np

from .splitting import enumerate_by_splitting
from .walk import enumerate_regions

__all__ = ["CrossCheckReport", "cross_check", "compare_complexes"]


@dataclass(frozen=True)
class CrossCheckReport:
    """Region-by-region comparison of two enumerations of one network and domain.

    Attributes
    ----------
    agree : bool
        Same patterns, and on each the same facets, radius and affine map.
    first_count, second_count : int
        Number of regions found by each enumerator.
    only_in_first, only_in_second : list of ndarray
        Interior points of regions that the other enumerator missed.
    mismatched : list of (int, str)
        (region id in the first complex, what differs) for regions found by both.
    """

    agree: bool
    first_count: int
    second_count: int
    only_in_first: list = field(default_factory=list)
    only_in_second: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)


def cross_check(network, domain, *, options=None, walked=None, progress=False):
    """Run both enumerators (or reuse ``walked``) and compare them region by region.

    Returns a :class:`CrossCheckReport`; ``first`` is the graph walk, ``second``
    the splitting enumerator. Both work on every network of the model (ReLU and linear
    units, max windows).
    """
    walked = walked or enumerate_regions(network, domain, options=options, progress=progress)
    split = enumerate_by_splitting(network, domain, progress=progress)
    return compare_complexes(walked, split)


def compare_complexes(first, second, *, rtol=1e-7):
    """Compare two :class:`RegionComplex` objects of the same network and domain."""
    index = {region.key: region for region in second}
    only_first = [r.interior_point for r in first if r.key not in index]
    keys = {r.key for r in first}
    only_second = [r.interior_point for r in second if r.key not in keys]
    scale = first.domain.diameter
    mismatched = []
    for region in first:
        other = index.get(region.key)
        if other is not None:
            why = _difference(region, other, rtol, scale)
            if why:
                mismatched.append((region.id, why))
    return CrossCheckReport(not (only_first or only_second or mismatched), len(first),
                            len(second), only_first, only_second, mismatched)


def _difference(r, s, rtol, scale):
    if not np.allclose(r.W_eff, s.W_eff, rtol=rtol, atol=rtol) or \
            not np.allclose(r.b_eff, s.b_eff, rtol=rtol, atol=rtol):
        return "affine maps differ"
    if len(r.polytope.b) != len(s.polytope.b):
        return f"{len(r.polytope.b)} facets against {len(s.polytope.b)}"
    rows_r = np.hstack([r.polytope.A, r.polytope.b[:, None] / scale])
    rows_s = np.hstack([s.polytope.A, s.polytope.b[:, None] / scale])
    distance = np.abs(rows_r[:, None, :] - rows_s[None, :, :]).max(axis=2)
    if distance.min(axis=1).max() > rtol:
        return "facets differ"
    if not np.isclose(r.radius, s.radius, rtol=1e-6, atol=rtol * scale):
        return f"Chebyshev radius {r.radius} against {s.radius}"
    return None

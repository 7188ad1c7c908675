"""The linear regions of a network over a domain: Region and RegionComplex, the graph walk,
the layer-wise splitting engine, parallel runs, checkpoints and the cross-check."""

from .crosscheck import cross_check
from .region import Region, RegionComplex
from .splitting import count_regions, enumerate_by_splitting
from .walk import enumerate_regions

__all__ = ["Region", "RegionComplex", "enumerate_regions", "enumerate_by_splitting",
           "count_regions", "cross_check"]

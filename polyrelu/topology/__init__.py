"""Topology of what a network computes, exact from its regions: Betti numbers of sublevel
sets and decision regions, persistence barcodes, PL critical points."""

from .homology import Bar, CriticalPoint, barcode, betti_numbers, critical_points
from .incidence import VertexIncidence, vertex_incidence

__all__ = [
    "Bar",
    "CriticalPoint",
    "VertexIncidence",
    "barcode",
    "betti_numbers",
    "critical_points",
    "vertex_incidence",
]

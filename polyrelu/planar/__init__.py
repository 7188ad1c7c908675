"""Exact 2-D slices of input space as shapely polygons (with their adjacency and decision
boundary), and pictures of them (matplotlib, imported only when drawing)."""

from .boundary import DecisionBoundary, decision_boundary
from .slices import PlanarSlice, slice_regions, slice_through

__all__ = ["PlanarSlice", "DecisionBoundary", "decision_boundary", "slice_regions",
           "slice_through"]

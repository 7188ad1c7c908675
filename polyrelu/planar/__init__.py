"""Exact 2-D slices of input space as shapely polygons (with their adjacency and decision
boundary), and pictures of them (matplotlib, imported only when drawing)."""

from .slices import PlanarSlice, decision_boundary, slice_regions, slice_through

__all__ = ["PlanarSlice", "decision_boundary", "slice_regions", "slice_through"]

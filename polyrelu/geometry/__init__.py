"""Geometry of input space: domains, H-polytopes and their facets, the LP layer (HiGHS),
interval and symbolic (back-substitution) bounds, and exact rational arithmetic."""

from .domain import Domain
from .lp import LPSolver
from .polytope import HPolytope

__all__ = ["Domain", "HPolytope", "LPSolver"]

"""Certificate checking shared by verification and the analyses: rigorous (rounding-error
bounded) float arithmetic and the splitting tree of a box rebuilt from its pieces."""

from .pattern_tree import LazySolver, PatternNode, PatternTree

__all__ = ["PatternTree", "PatternNode", "LazySolver"]

"""Numerical tolerances and solver settings, in one frozen object passed down.

Nothing in polyrelu reads a global setting: every function that decides something
numerically takes an :class:`Options` (defaulting to ``Options()``).
"""

from dataclasses import dataclass

__all__ = ["Options"]


@dataclass(frozen=True)
class Options:
    """Tolerance policy and solver settings of an enumeration.

    Parameters
    ----------
    min_radius_rel : float
        A region (or facet) counts only if its Chebyshev radius (its inradius
        within its own hyperplane, for a facet) exceeds ``min_radius_rel`` times
        the domain's diameter. Pieces thinner than that are inside the rounding
        error of float64 LPs and are reported as skipped, never silently kept.
    zero_rel : float
        A pre-activation is treated as zero when its magnitude is below
        ``zero_rel`` times the neuron's range over the domain (from interval
        bounds). A neuron whose pre-activation map is identically zero on a
        region (below this tolerance) is canonically inactive there.
    facet_method : {"auto", "qhull", "lp"}
        How non-redundant constraints are found: ``"qhull"`` takes the vertices
        of the polar's convex hull (fast in low dimension), ``"lp"`` shoots rays
        and bounds rows, with a warm LP for each row they leave undecided.
        ``"auto"`` uses qhull for input dimension 2 to ``qhull_max_dim``.
    qhull_max_dim : int
        Largest input dimension for which ``"auto"`` picks qhull (measured on region
        walks: qhull the faster up to 9 inputs, the rays from 10).
    lp_feasibility_tol : float
        Primal and dual feasibility tolerance given to HiGHS.
    seed : int
        Seed of the deterministic nudges applied to points that lie on a
        hyperplane (start point, facet crossings).
    """

    min_radius_rel: float = 1e-9
    zero_rel: float = 1e-10
    facet_method: str = "auto"
    qhull_max_dim: int = 9
    lp_feasibility_tol: float = 1e-9
    seed: int = 0

    def __post_init__(self):
        if self.facet_method not in ("auto", "qhull", "lp"):
            raise ValueError(
                f"facet_method must be 'auto', 'qhull' or 'lp', got {self.facet_method!r}"
            )
        for name in ("min_radius_rel", "zero_rel", "lp_feasibility_tol"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must lie in (0, 1), got {value!r}")

    def use_qhull(self, dim):
        """Whether facets in ``dim`` input dimensions are found with qhull."""
        if self.facet_method == "auto":
            return 2 <= dim <= self.qhull_max_dim
        return self.facet_method == "qhull" and dim >= 2

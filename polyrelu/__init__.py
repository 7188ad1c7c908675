"""polyrelu: an exact polyhedral geometry engine for ReLU networks.

The main entry points:

- :class:`Network` (and the loaders in :mod:`polyrelu.loaders`),
- :class:`Domain` (a box or a bounded polytope of input space),
- :func:`enumerate_regions`, which returns a :class:`RegionComplex`,
- :func:`slice_regions` and :func:`slice_through`: exact 2-D slices (a
  :class:`PlanarSlice`), drawn by :mod:`polyrelu.pictures`.
"""

from .domain import Domain
from .errors import (
    InvalidDomainError,
    InvalidFileError,
    InvalidNetworkError,
    NumericalAmbiguityError,
    PolyreluError,
    SolverError,
    UnsupportedLayerError,
)
from .network import LocalAffineMaps, Network
from .options import Options
from .polytope import HPolytope
from .region import Region, RegionComplex
from .loaders import load_network
from .slices import PlanarSlice, decision_boundary, slice_regions, slice_through
from .walk import enumerate_regions
from .paths import ClosedCurve, PathPiece, Segment, path_pieces
from .spectrum import Spectrum, path_spectrum
from .injectivity import is_injective, network_injectivity
from .bias import ball_bias, polytope_bias
from .reconstruction import invert

__version__ = "0.1.0"

__all__ = [
    "Domain",
    "HPolytope",
    "InvalidDomainError",
    "InvalidFileError",
    "InvalidNetworkError",
    "LocalAffineMaps",
    "Network",
    "ClosedCurve",
    "PathPiece",
    "Segment",
    "Spectrum",
    "path_pieces",
    "path_spectrum",
    "NumericalAmbiguityError",
    "Options",
    "PlanarSlice",
    "PolyreluError",
    "Region",
    "RegionComplex",
    "SolverError",
    "UnsupportedLayerError",
    "ball_bias",
    "decision_boundary",
    "enumerate_regions",
    "invert",
    "is_injective",
    "network_injectivity",
    "polytope_bias",
    "load_network",
    "slice_regions",
    "slice_through",
]

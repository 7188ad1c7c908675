"""polyrelu: an exact polyhedral geometry engine for ReLU networks.

The package reads as the data flow: :mod:`polyrelu.network` (the model and its
loaders) and :mod:`polyrelu.geometry` (domains, polytopes, LPs, bounds) feed
:mod:`polyrelu.regions` (the region complex, the walk and the splitting engine);
:mod:`polyrelu.analysis` and :mod:`polyrelu.planar` work on the regions;
:mod:`polyrelu.verification` stands beside them; :mod:`polyrelu.cli` is the
command line. The main entry points are re-exported here:

- :class:`Network` and :func:`load_network`, :class:`Domain`,
- :func:`enumerate_regions` (a :class:`RegionComplex`), :func:`count_regions`,
  :func:`enumerate_by_splitting`, :func:`cross_check`,
- :func:`slice_regions` and :func:`slice_through`: exact 2-D slices (a
  :class:`PlanarSlice`), drawn by :mod:`polyrelu.planar.pictures`,
- the analyses (:func:`lipschitz`, :func:`lipschitz_search` with
  :func:`check_lipschitz_certificate`, :func:`network_injectivity`, ...) and
  :func:`verify` with :func:`read_vnnlib` and :func:`check_certificate`.
"""

from .analysis.bias import ball_bias, polytope_bias
from .analysis.energy import energy_range, null_set_check
from .analysis.injectivity import is_injective, network_injectivity
from .analysis.lipschitz import lipschitz, local_lipschitz
from .analysis.lipschitz_certificate import load_lipschitz_certificate, save_lipschitz_certificate
from .analysis.lipschitz_checker import check_lipschitz_certificate
from .analysis.lipschitz_search import lipschitz_search
from .analysis.paths import ClosedCurve, PathPiece, Segment, path_pieces
from .analysis.reconstruction import invert
from .analysis.spectrum import Spectrum, path_spectrum
from .errors import (
    InvalidDomainError,
    InvalidFileError,
    InvalidNetworkError,
    NumericalAmbiguityError,
    NumericalRangeError,
    PolyreluError,
    SizeLimitError,
    SolverError,
    TimeLimitError,
    UnsafeFileError,
    UnsupportedLayerError,
    UnsupportedNetworkError,
)
from .geometry.domain import Domain
from .geometry.polytope import HPolytope
from .network.loaders import load_network
from .network.model import LocalAffineMaps, Network
from .options import Options
from .planar.boundary import decision_boundary
from .planar.slices import PlanarSlice, slice_regions, slice_through
from .regions.crosscheck import cross_check
from .regions.region import Region, RegionComplex
from .regions.splitting import count_regions, enumerate_by_splitting
from .regions.walk import enumerate_regions
from .verification.checked import verify
from .verification.checker import check_certificate
from .verification.search import VerificationResult
from .verification.vnnlib import read_vnnlib

__version__ = "0.1.0"

__all__ = [
    "ClosedCurve",
    "Domain",
    "HPolytope",
    "InvalidDomainError",
    "InvalidFileError",
    "InvalidNetworkError",
    "LocalAffineMaps",
    "Network",
    "NumericalAmbiguityError",
    "NumericalRangeError",
    "Options",
    "PathPiece",
    "PlanarSlice",
    "PolyreluError",
    "Region",
    "RegionComplex",
    "Segment",
    "SizeLimitError",
    "SolverError",
    "Spectrum",
    "TimeLimitError",
    "UnsafeFileError",
    "UnsupportedLayerError",
    "UnsupportedNetworkError",
    "VerificationResult",
    "ball_bias",
    "check_certificate",
    "count_regions",
    "cross_check",
    "decision_boundary",
    "energy_range",
    "enumerate_by_splitting",
    "enumerate_regions",
    "invert",
    "is_injective",
    "lipschitz",
    "lipschitz_search",
    "check_lipschitz_certificate",
    "save_lipschitz_certificate",
    "load_lipschitz_certificate",
    "load_network",
    "local_lipschitz",
    "network_injectivity",
    "null_set_check",
    "path_pieces",
    "path_spectrum",
    "polytope_bias",
    "read_vnnlib",
    "slice_regions",
    "slice_through",
    "verify",
]

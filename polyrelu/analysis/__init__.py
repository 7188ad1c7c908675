"""Analyses built on the regions: Lipschitz constants and their baselines, injectivity and
bias, reconstruction, energy and filter banks, exact pieces and spectra along paths."""

from .bias import ball_bias, polytope_bias
from .energy import energy_range, null_set_check
from .injectivity import is_injective, network_injectivity
from .lipschitz import lipschitz, local_lipschitz
from .paths import ClosedCurve, PathPiece, Segment, path_pieces
from .reconstruction import invert
from .spectrum import Spectrum, path_spectrum

__all__ = ["lipschitz", "local_lipschitz", "is_injective", "network_injectivity", "ball_bias",
           "polytope_bias", "invert", "energy_range", "null_set_check", "ClosedCurve",
           "PathPiece", "Segment", "path_pieces", "Spectrum", "path_spectrum"]

"""Exact verification of VNN-LIB properties: the reader, the search, certificates and their
independent checker, counterexample re-checks, and the benchmark instance runner."""

from .certificate import Certificate
from .checked import verify
from .checker import check_certificate
from .counterexample import Counterexample
from .search import VerificationResult
from .vnnlib import read_vnnlib

__all__ = ["read_vnnlib", "verify", "VerificationResult", "Certificate", "Counterexample",
           "check_certificate"]

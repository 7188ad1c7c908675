"""The exception tree of polyrelu.

Every error raised on purpose by polyrelu derives from :class:`PolyreluError`, so
``except polyrelu.PolyreluError`` catches all of them and nothing else.
"""

__all__ = [
    "PolyreluError",
    "InvalidNetworkError",
    "UnsupportedLayerError",
    "InvalidDomainError",
    "NumericalAmbiguityError",
    "SolverError",
    "InvalidFileError",
    "TimeLimitError",
]


class PolyreluError(Exception):
    """Base class of all polyrelu errors."""


class InvalidNetworkError(PolyreluError, ValueError):
    """A network's weights are malformed: wrong shapes, NaN or infinite entries."""


class UnsupportedLayerError(InvalidNetworkError):
    """A model contains an operator or layer polyrelu cannot represent exactly."""


class InvalidDomainError(PolyreluError, ValueError):
    """An input domain is empty, unbounded, degenerate or of the wrong dimension."""


class NumericalAmbiguityError(PolyreluError, ArithmeticError):
    """A decision fell inside the rounding error; polyrelu refuses to guess.

    The message says which quantity was ambiguous and what to change
    (usually a tolerance in :class:`polyrelu.Options` or the domain).
    """


class SolverError(PolyreluError, RuntimeError):
    """The LP solver returned a status that polyrelu cannot interpret."""


class InvalidFileError(PolyreluError, ValueError):
    """A file is not a valid polyrelu, VNN-LIB or model file."""


class TimeLimitError(PolyreluError, TimeoutError):
    """A time limit expired before the work finished.

    ``partial`` holds what was found so far (or None), for callers that report it
    labelled as partial.
    """

    def __init__(self, message, partial=None):
        super().__init__(message)
        self.partial = partial

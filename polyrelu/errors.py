"""The exception tree of polyrelu.

Every error raised on purpose by polyrelu derives from :class:`PolyreluError`, so
``except polyrelu.PolyreluError`` catches all of them and nothing else.
"""

__all__ = [
    "PolyreluError",
    "InvalidNetworkError",
    "UnsupportedLayerError",
    "UnsupportedNetworkError",
    "InvalidDomainError",
    "NumericalAmbiguityError",
    "NumericalRangeError",
    "SolverError",
    "InvalidFileError",
    "UnsafeFileError",
    "SizeLimitError",
    "TimeLimitError",
    "CertificateError",
    "clip",
    "brief",
]


class PolyreluError(Exception):
    """Base class of all polyrelu errors."""


class InvalidNetworkError(PolyreluError, ValueError):
    """A network's weights are malformed: wrong shapes, NaN or infinite entries."""


class UnsupportedLayerError(InvalidNetworkError):
    """A model contains an operator or layer polyrelu cannot represent exactly."""


class UnsupportedNetworkError(InvalidNetworkError):
    """A computation that does not apply to this kind of network (e.g. one that needs a
    Linear + ReLU network, given one with max windows)."""


class InvalidDomainError(PolyreluError, ValueError):
    """An input domain is empty, unbounded, degenerate or of the wrong dimension."""


class NumericalAmbiguityError(PolyreluError, ArithmeticError):
    """A decision fell inside the rounding error; polyrelu refuses to guess.

    The message says which quantity was ambiguous and what to change
    (usually a tolerance in :class:`polyrelu.Options` or the domain).
    """


class NumericalRangeError(NumericalAmbiguityError):
    """Numbers beyond what float64 and its LPs resolve: denormal weights, a forward pass
    that overflows, neurons too small next to others, a domain below the resolvable
    scale. polyrelu refuses rather than return a wrong answer; the message names the
    threshold and the option (``allow_extreme_numerics``) that proceeds anyway.
    """


class SolverError(PolyreluError, RuntimeError):
    """The LP solver returned a status that polyrelu cannot interpret."""


class InvalidFileError(PolyreluError, ValueError):
    """A file is not a valid polyrelu, VNN-LIB or model file."""


class UnsafeFileError(InvalidFileError):
    """Loading the file would run code from it (a pickle); refused unless trusted.

    The message names the safe formats to use instead.
    """


class SizeLimitError(InvalidFileError):
    """A file declares more parameters (or implies larger matrices) than the limit
    ``max_parameters``; refused before anything of that size is allocated."""


class TimeLimitError(PolyreluError, TimeoutError):
    """A time limit expired before the work finished.

    ``partial`` holds what was found so far (or None), for callers that report it
    labelled as partial.
    """

    def __init__(self, message, partial=None):
        super().__init__(message)
        self.partial = partial


class CertificateError(PolyreluError, ValueError):
    """A certificate does not prove its claim (the message names the first flaw)."""


def clip(value, limit=80):
    """``str(value)`` on one line (whitespace runs made one space), at most ``limit``
    characters: for quoting untrusted input in an error message.

    >>> clip("a  very   long " + "x" * 100, 20)
    'a very long xxxxx...'
    """
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def brief(error):
    """``Type: message`` of an exception, clipped to one short line."""
    return clip(f"{type(error).__name__}: {error}")

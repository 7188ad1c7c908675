"""Certificates of the Lipschitz search: the explored tree with what closed each branch.

A :class:`LipschitzCertificate` claims that the maximum of ``||C J||`` (or of
``||C J v||``) over the regions of a network in a box lies in ``[lower_value,
upper_value]``. Its evidence is the search's tree flattened to leaves, each a partial
activation pattern: a *bound* leaf (a piece the search closed by an upper bound over
every completion of its pattern, or left open at a time limit) with that bound, and a
*region* leaf (a full pattern) with its value; and a witness point whose region attains
the lower end. :func:`polyrelu.analysis.lipschitz_checker.check_lipschitz_certificate`
re-validates it without the search (docs/certificate-format.md, *Lipschitz
certificates*).

The file is one ``.npz`` (no pickle) read only through
:func:`polyrelu.arrayfiles.read_npz`: every array's type and size is checked before it is
used.
"""

from dataclasses import dataclass

import numpy as np

from ..arrayfiles import read_npz
from ..errors import InvalidFileError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "BOUND", "REGION", "LipschitzCertificate",
           "save_lipschitz_certificate", "load_lipschitz_certificate"]

FORMAT_NAME = "polyrelu-lipschitz-certificate"
FORMAT_VERSION = 1
BOUND, REGION = 0, 1  # leaf kinds
_MAX_ENTRIES = 10 ** 9  # refuse files declaring more entries (counted from the headers)


@dataclass(frozen=True)
class LipschitzCertificate:
    """The claim of a Lipschitz search and the tree that proves it.

    Attributes
    ----------
    fingerprint : str
        :func:`polyrelu.network.model.network_fingerprint` of the network searched.
    lower, upper : ndarray (d,)
        The domain box.
    norm : float
        1, 2 or inf.
    functional : ndarray (k, m)
        ``C``, rows over the outputs of the measured network.
    direction : ndarray (d,) or None
        ``v`` when the claim is about ``||C J v||``.
    layer : int or None
        The hidden layer whose pre-activations are measured (None: the outputs).
    lower_value, upper_value : float
        The claimed bracket of the maximum (the search's rigorous bracket of its value;
        after a time limit, of the best region found and the largest open bound).
    witness : ndarray (d,)
        A point of a region attaining ``lower_value``.
    pattern : ndarray of uint8
        That region's pattern (packed, of the network without max windows).
    kinds, layers, units : ndarray of int
        Per leaf: :data:`BOUND` or :data:`REGION`; the hidden layer the piece awaited
        and how many ReLU units of it the piece had fixed (a region: the number of hidden
        layers and 0).
    patterns : ndarray of uint8 (leaves, bytes)
        Per leaf, its partial pattern, packed (bits beyond the units it fixes are 0).
    boxes : ndarray (leaves, 2, d)
        Per leaf, the box ``(low, high)`` the search bounded it over (a hint: the checker
        uses it only once it has proven that the leaf's piece lies inside it).
    values : ndarray of float
        Per leaf, the bound that closed it (a region: its value, not trusted).
    """

    fingerprint: str
    lower: np.ndarray
    upper: np.ndarray
    norm: float
    functional: np.ndarray
    direction: object
    layer: object
    lower_value: float
    upper_value: float
    witness: np.ndarray
    pattern: np.ndarray
    kinds: np.ndarray
    layers: np.ndarray
    units: np.ndarray
    patterns: np.ndarray
    boxes: np.ndarray
    values: np.ndarray
    version: int = FORMAT_VERSION

    def counts(self):
        """``{"bound_leaves": ..., "region_leaves": ...}``."""
        kinds = np.asarray(self.kinds)
        return {"bound_leaves": int(np.sum(kinds == BOUND)),
                "region_leaves": int(np.sum(kinds == REGION))}


def save_lipschitz_certificate(certificate, path):
    """Write ``certificate`` to ``path`` (``.npz``).

    Examples
    --------
    >>> import os, tempfile
    >>> from polyrelu import Network, Domain, lipschitz_search
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> result = lipschitz_search(absolute, Domain.box([-1], [1]))
    >>> path = os.path.join(tempfile.mkdtemp(), "lipschitz.npz")
    >>> save_lipschitz_certificate(result.certificate, path)
    >>> load_lipschitz_certificate(path).counts() == result.certificate.counts()
    True
    """
    c = certificate
    direction = np.zeros(0) if c.direction is None else np.asarray(c.direction, np.float64)
    np.savez_compressed(
        path, format=np.array(FORMAT_NAME), version=np.array(c.version, dtype=np.int64),
        fingerprint=np.array(c.fingerprint),
        lower=np.asarray(c.lower, np.float64), upper=np.asarray(c.upper, np.float64),
        norm=np.array(float(c.norm)), functional=np.asarray(c.functional, np.float64),
        direction=direction, layer=np.array(-1 if c.layer is None else c.layer, np.int64),
        claim=np.array([c.lower_value, c.upper_value], np.float64),
        witness=np.asarray(c.witness, np.float64), pattern=np.asarray(c.pattern, np.uint8),
        kinds=np.asarray(c.kinds, np.int8), layers=np.asarray(c.layers, np.int64),
        units=np.asarray(c.units, np.int64), patterns=np.asarray(c.patterns, np.uint8),
        boxes=np.asarray(c.boxes, np.float64), values=np.asarray(c.values, np.float64))


#: name: (dtype kind, number of dimensions) of every array of the file.
_SCHEMA = {
    "lower": ("f", 1), "upper": ("f", 1), "norm": ("f", 0), "functional": ("f", 2),
    "direction": ("f", 1), "layer": ("i", 0), "claim": ("f", 1), "witness": ("f", 1),
    "pattern": ("u", 1), "kinds": ("i", 1), "layers": ("i", 1), "units": ("i", 1),
    "patterns": ("u", 2), "boxes": ("f", 3), "values": ("f", 1),
}


def load_lipschitz_certificate(path):
    """Read a certificate written by :func:`save_lipschitz_certificate`.

    Only the file's structure is checked here (format, version, array types and matching
    lengths); what the arrays claim is the checker's business.

    Raises
    ------
    InvalidFileError
        If the file is not a readable Lipschitz certificate of this format version.
    """
    data = read_npz(path, "Lipschitz certificate", max_entries=_MAX_ENTRIES,
                    text=("format", "fingerprint"))
    for name in ("format", "version", "fingerprint"):
        if name not in data:
            raise InvalidFileError(f"{path}: not a polyrelu Lipschitz certificate "
                                   f"(no '{name}' entry)")
    name = _scalar(data, "format", "U", path)
    if name != FORMAT_NAME:
        raise InvalidFileError(f"{path}: not a polyrelu Lipschitz certificate "
                               f"(format {name[:80]!r})")
    version = _scalar(data, "version", "i", path)
    if version != FORMAT_VERSION:
        raise InvalidFileError(f"{path}: Lipschitz certificate format version {version} is "
                               f"not supported (this polyrelu reads version {FORMAT_VERSION})")
    for key, (kind, ndim) in _SCHEMA.items():
        if key not in data:
            raise InvalidFileError(f"{path}: Lipschitz certificate has no '{key}' array")
        if data[key].dtype.kind != kind or data[key].ndim != ndim:
            raise InvalidFileError(f"{path}: Lipschitz certificate array '{key}' has type "
                                   f"{data[key].dtype} and shape {data[key].shape}")
    leaves = len(data["kinds"])
    if any(len(data[key]) != leaves for key in ("layers", "units", "patterns", "boxes",
                                                 "values")) \
            or data["claim"].shape != (2,):
        raise InvalidFileError(f"{path}: Lipschitz certificate arrays of different lengths")
    layer = int(data["layer"])
    return LipschitzCertificate(
        _scalar(data, "fingerprint", "U", path), data["lower"], data["upper"],
        float(data["norm"]), data["functional"],
        data["direction"] if len(data["direction"]) else None, None if layer < 0 else layer,
        float(data["claim"][0]), float(data["claim"][1]), data["witness"], data["pattern"],
        data["kinds"], data["layers"], data["units"], data["patterns"], data["boxes"],
        data["values"], version)


def _scalar(data, key, kind, path):
    value = data[key]
    if value.shape != () or value.dtype.kind != kind:
        raise InvalidFileError(f"{path}: Lipschitz certificate entry '{key}' is not a single "
                               "value")
    return value.item()

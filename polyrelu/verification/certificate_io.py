"""Saving and loading verification certificates (one ``.npz`` file, no pickle).

A :class:`polyrelu.verification.search.Certificate` is a list of pieces of three kinds; the file
stores them as flat arrays with offsets, so it can be read back by
:func:`load_certificate` (or by any numpy user) and re-checked later with
:func:`polyrelu.verification.search.check_certificate` or ``polyrelu check-certificate``.
"""

import numpy as np

from ..errors import InvalidFileError
from .certificate import BoundPiece, Certificate, RegionPiece, StarPiece

__all__ = ["save_certificate", "load_certificate"]

_KINDS = (BoundPiece, StarPiece, RegionPiece)
_FORMAT = "polyrelu-certificate-1"


def save_certificate(certificate, path):
    """Write ``certificate`` to ``path`` (``.npz``).

    Examples
    --------
    >>> import os, tempfile
    >>> from polyrelu import Network
    >>> from polyrelu.verification.search import verify
    >>> from polyrelu.verification.vnnlib import read_vnnlib
    >>> net = Network([[[1.0], [-1.0]], [[1.0, -1.0]]], [[0.0, 0.0], [0.0]])
    >>> prop = read_vnnlib("(declare-const X_0 Real) (declare-const Y_0 Real) "
    ...                    "(assert (>= X_0 -1)) (assert (<= X_0 1)) (assert (>= Y_0 2))")
    >>> certificate = verify(net, prop).certificate
    >>> path = os.path.join(tempfile.mkdtemp(), "cert.npz")
    >>> save_certificate(certificate, path)
    >>> load_certificate(path).counts() == certificate.counts()
    True
    """
    pieces = certificate.pieces
    paths = [np.array(piece.path, dtype=np.int64).reshape(-1, 2) for piece in pieces]
    width = max((len(getattr(p, "pattern", ())) for p in pieces), default=0)
    patterns = np.zeros((len(pieces), width), dtype=np.uint8)
    for i, piece in enumerate(pieces):
        if not isinstance(piece, BoundPiece):
            patterns[i, :len(piece.pattern)] = piece.pattern
    sources = [np.asarray(getattr(p, "sources", ()), dtype=np.int64) for p in pieces]
    multipliers = [np.asarray(y, dtype=np.float64) for p in pieces for y in p.multipliers]
    np.savez_compressed(
        path, format=np.array(_FORMAT), fingerprint=np.array(certificate.fingerprint),
        kind=np.array([_KINDS.index(type(p)) for p in pieces], dtype=np.int8),
        case=np.array([p.case for p in pieces], dtype=np.int64),
        layer=np.array([getattr(p, "layer", -1) for p in pieces], dtype=np.int64),
        path_offsets=_offsets(paths), path_steps=_concat(paths, (0, 2), np.int64),
        patterns=patterns,
        source_offsets=_offsets(sources), sources=_concat(sources, (0,), np.int64),
        multiplier_counts=np.array([len(p.multipliers) for p in pieces], dtype=np.int64),
        multiplier_offsets=_offsets(multipliers),
        multipliers=_concat(multipliers, (0,), np.float64))


def load_certificate(path):
    """Read a certificate written by :func:`save_certificate`."""
    try:
        data = np.load(path, allow_pickle=False)
        if str(data["format"]) != _FORMAT:
            raise InvalidFileError(f"{path}: not a polyrelu certificate ({data['format']})")
        return _rebuild(data)
    except (OSError, KeyError, ValueError) as err:
        raise InvalidFileError(f"{path}: cannot read a certificate ({err})") from err


def _rebuild(data):
    steps, offsets = data["path_steps"], data["path_offsets"]
    sources, source_offsets = data["sources"], data["source_offsets"]
    values, value_offsets = data["multipliers"], data["multiplier_offsets"]
    first = np.concatenate([[0], np.cumsum(data["multiplier_counts"])])
    pieces = []
    for i, kind in enumerate(data["kind"]):
        path = tuple((int(d), int(s)) for d, s in steps[offsets[i]:offsets[i + 1]])
        lams = tuple(values[value_offsets[j]:value_offsets[j + 1]]
                     for j in range(first[i], first[i + 1]))
        case = int(data["case"][i])
        if _KINDS[kind] is BoundPiece:
            pieces.append(BoundPiece(case, path, lams))
        elif _KINDS[kind] is StarPiece:
            pieces.append(StarPiece(case, path, int(data["layer"][i]), data["patterns"][i],
                                    sources[source_offsets[i]:source_offsets[i + 1]], lams))
        else:
            pieces.append(RegionPiece(case, path, data["patterns"][i], lams))
    return Certificate(str(data["fingerprint"]), pieces)


def _offsets(arrays):
    return np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)


def _concat(arrays, empty_shape, dtype):
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(empty_shape, dtype)

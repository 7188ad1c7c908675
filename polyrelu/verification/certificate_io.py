"""Saving and loading verification certificates (one ``.npz`` file, no pickle).

The file layout is specified in docs/certificate-format.md: a format name and version,
the network fingerprint, and the pieces as flat arrays with offsets. Reading checks
every array's dtype, shape and offsets before using it, and turns any corrupt,
truncated or foreign file into one :class:`polyrelu.errors.InvalidFileError`; the
pieces read back are then re-checked by :func:`polyrelu.verification.checker.check_certificate`.
"""

import numpy as np

from ..arrayfiles import read_npz
from ..errors import InvalidFileError
from .certificate import (
    FORMAT_NAME,
    FORMAT_VERSION,
    READABLE_VERSIONS,
    BoundPiece,
    BoxHint,
    Certificate,
    RegionPiece,
    StarPiece,
)

__all__ = ["save_certificate", "load_certificate"]

_KINDS = (BoundPiece, StarPiece, RegionPiece)  # kind codes 0, 1, 2
_MAX_ENTRIES = 10 ** 9  # refuse files declaring more entries (counted from the headers)


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
    width = max((len(p.pattern) for p in pieces if not isinstance(p, BoundPiece)), default=0)
    patterns = np.zeros((len(pieces), width), dtype=np.uint8)
    for i, piece in enumerate(pieces):
        if not isinstance(piece, BoundPiece):
            patterns[i, :len(piece.pattern)] = piece.pattern
    multipliers = [np.asarray(y, dtype=np.float64) for p in pieces for y in p.multipliers]
    hint_rows = [np.asarray(getattr(p, "box_rows", np.zeros((0, 2))), dtype=np.int64)
                 .reshape(-1, 2) for p in pieces]
    hint_weights = [np.asarray(getattr(p, "box_weights", ()), dtype=np.float64) for p in pieces]
    np.savez_compressed(
        path, format=np.array(FORMAT_NAME), version=np.array(FORMAT_VERSION, dtype=np.int64),
        fingerprint=np.array(certificate.fingerprint),
        kind=np.array([_KINDS.index(type(p)) for p in pieces], dtype=np.int8),
        case=np.array([p.case for p in pieces], dtype=np.int64),
        layer=np.array([getattr(p, "layer", -1) for p in pieces], dtype=np.int64),
        path_offsets=_offsets(paths), path_steps=_concat(paths, (0, 2), np.int64),
        patterns=patterns,
        multiplier_counts=np.array([len(p.multipliers) for p in pieces], dtype=np.int64),
        multiplier_offsets=_offsets(multipliers),
        multipliers=_concat(multipliers, (0,), np.float64),
        hint_offsets=_offsets(hint_rows), hint_rows=_concat(hint_rows, (0, 2), np.int64),
        hint_weights=_concat(hint_weights, (0,), np.float64),
        **_slope_arrays(pieces),
        **_box_hint_arrays(getattr(certificate, "hints", None) or [], width))


def _slope_arrays(pieces):
    """The optional ``slope_offsets`` and ``slopes`` arrays: one (possibly empty: the
    default slopes) run of slopes per multiplier vector, in the order of ``multipliers``."""
    runs = []
    for piece in pieces:
        slopes = getattr(piece, "slopes", ())
        for k in range(len(piece.multipliers)):
            run = slopes[k] if k < len(slopes) and slopes[k] is not None else ()
            runs.append(np.asarray(run, dtype=np.float64).ravel())
    if not any(len(run) for run in runs):
        return {}
    return dict(slope_offsets=_offsets(runs), slopes=_concat(runs, (0,), np.float64))


def _box_hint_arrays(hints, width):
    """The optional ``box_hint_*`` arrays of a certificate's :class:`BoxHint` s."""
    paths = [np.array(h.path, dtype=np.int64).reshape(-1, 2) for h in hints]
    width = max([width] + [len(h.pattern) for h in hints])
    patterns = np.zeros((len(hints), width), dtype=np.uint8)
    for i, hint in enumerate(hints):
        patterns[i, :len(hint.pattern)] = hint.pattern
    rows = [np.asarray(h.box_rows, dtype=np.int64).reshape(-1, 2) for h in hints]
    return dict(
        box_hint_case=np.array([h.case for h in hints], dtype=np.int64),
        box_hint_layer=np.array([h.layer for h in hints], dtype=np.int64),
        box_hint_path_offsets=_offsets(paths),
        box_hint_path_steps=_concat(paths, (0, 2), np.int64),
        box_hint_patterns=patterns, box_hint_offsets=_offsets(rows),
        box_hint_rows=_concat(rows, (0, 2), np.int64),
        box_hint_weights=_concat([np.asarray(h.box_weights, dtype=np.float64) for h in hints],
                                 (0,), np.float64))


def load_certificate(path):
    """Read a certificate written by :func:`save_certificate`.

    Raises
    ------
    InvalidFileError
        If the file is not a readable certificate of a readable format version (corrupt,
        truncated, another format or version, arrays of the wrong type or size).
    """
    data = read_npz(path, "certificate", max_entries=_MAX_ENTRIES,
                    text=("format", "fingerprint"))
    arrays = _read_arrays(data, path)
    return _rebuild(arrays, path)


_SCHEMA = {  # name: (dtype kind, number of dimensions)
    "kind": ("i", 1), "case": ("i", 1), "layer": ("i", 1), "path_offsets": ("i", 1),
    "path_steps": ("i", 2), "patterns": ("u", 2), "multiplier_counts": ("i", 1),
    "multiplier_offsets": ("i", 1), "multipliers": ("f", 1), "hint_offsets": ("i", 1),
    "hint_rows": ("i", 2), "hint_weights": ("f", 1),
}
_SLOPES = {"slope_offsets": ("i", 1), "slopes": ("f", 1)}  # optional (version 4)
_BOX_HINTS = {  # optional (files without them have no BoxHints): name: (kind, ndim)
    "box_hint_case": ("i", 1), "box_hint_layer": ("i", 1), "box_hint_path_offsets": ("i", 1),
    "box_hint_path_steps": ("i", 2), "box_hint_patterns": ("u", 2),
    "box_hint_offsets": ("i", 1), "box_hint_rows": ("i", 2), "box_hint_weights": ("f", 1),
}


def _read_arrays(data, path):
    """The file's arrays after the format, version and per-array type checks."""
    for name in ("format", "version", "fingerprint"):
        if name not in data:
            raise InvalidFileError(f"{path}: not a polyrelu certificate (no '{name}' entry)")
    name, version = _scalar(data, "format", "U", path), _scalar(data, "version", "i", path)
    if name != FORMAT_NAME:
        raise InvalidFileError(f"{path}: not a polyrelu certificate (format {name[:80]!r})")
    if version not in READABLE_VERSIONS:
        raise InvalidFileError(f"{path}: certificate format version {version} is not supported "
                               f"(this polyrelu reads versions "
                               f"{', '.join(map(str, READABLE_VERSIONS))}; re-run "
                               "'polyrelu verify --certificate' to make a new one)")
    arrays = {"fingerprint": _scalar(data, "fingerprint", "U", path), "version": version}
    for key in _SCHEMA:
        if key not in data:
            raise InvalidFileError(f"{path}: certificate has no '{key}' array")
    optional = {}
    for group, name in ((_BOX_HINTS, "'box_hint_*'"), (_SLOPES, "slope")):
        present = [key for key in group if key in data]
        if present and len(present) != len(group):
            raise InvalidFileError(f"{path}: certificate has some {name} arrays but not all")
        optional.update((key, group[key]) for key in present)
    for key, (kind, ndim) in [*_SCHEMA.items(), *optional.items()]:
        array = data[key]
        if array.dtype.kind != kind or array.ndim != ndim:
            raise InvalidFileError(f"{path}: certificate array '{key}' has type {array.dtype} "
                                   f"and shape {array.shape}")
        arrays[key] = array
    return arrays


def _scalar(data, key, kind, path):
    value = data[key]
    if value.shape != () or value.dtype.kind != kind:
        raise InvalidFileError(f"{path}: certificate entry '{key}' is not a single value")
    return value.item()


def _rebuild(arrays, path):
    """Pieces from the checked arrays; every offset is validated before it is used."""
    n = len(arrays["kind"])
    for key in ("case", "layer", "multiplier_counts"):
        _expect(len(arrays[key]) == n, path, f"'{key}' has {len(arrays[key])} entries, not {n}")
    _expect(len(arrays["patterns"]) == n, path, "'patterns' has the wrong number of rows")
    for key in ("path_steps", "hint_rows"):
        _expect(arrays[key].shape[1:] == (2,), path, f"'{key}' must have 2 columns")
    _expect(len(arrays["hint_weights"]) == len(arrays["hint_rows"]), path,
            "'hint_weights' and 'hint_rows' differ in length")
    hints = _checked_offsets(arrays["hint_offsets"], n, len(arrays["hint_rows"]),
                             "hint_offsets", path)
    path_offsets = _checked_offsets(arrays["path_offsets"], n, len(arrays["path_steps"]),
                                    "path_offsets", path)
    counts = arrays["multiplier_counts"]
    _expect(np.all(counts >= 0) and counts.sum() <= _MAX_ENTRIES, path,
            "'multiplier_counts' must be non-negative")
    first = np.concatenate([[0], np.cumsum(counts)])
    offsets = _checked_offsets(arrays["multiplier_offsets"], int(first[-1]),
                               len(arrays["multipliers"]), "multiplier_offsets", path)
    slopes = _rebuild_slopes(arrays, int(first[-1]), path)
    pieces, shared = [], {}  # equal paths as one tuple (the checker checks each once)
    for i, kind in enumerate(arrays["kind"]):
        _expect(0 <= kind < len(_KINDS), path, f"piece {i} has unknown kind {kind}")
        steps = arrays["path_steps"][path_offsets[i]:path_offsets[i + 1]]
        steps = shared.setdefault(steps.tobytes(), tuple((int(a), int(b)) for a, b in steps))
        lams = tuple(arrays["multipliers"][offsets[j]:offsets[j + 1]].copy()
                     for j in range(first[i], first[i + 1]))
        hint = (arrays["hint_rows"][hints[i]:hints[i + 1]].astype(np.int64),
                arrays["hint_weights"][hints[i]:hints[i + 1]].astype(np.float64))
        pieces.append(_piece(_KINDS[kind], int(arrays["case"][i]),
                             steps,
                             int(arrays["layer"][i]), arrays["patterns"][i], lams, hint,
                             tuple(slopes[first[i]:first[i + 1]])))
    return Certificate(arrays["fingerprint"], pieces, int(arrays["version"]),
                       _rebuild_box_hints(arrays, path, shared))


def _rebuild_box_hints(arrays, path, shared):
    """The BoxHints of the optional ``box_hint_*`` arrays (offsets checked first)."""
    if "box_hint_case" not in arrays:
        return []
    n = len(arrays["box_hint_case"])
    _expect(len(arrays["box_hint_layer"]) == n and len(arrays["box_hint_patterns"]) == n,
            path, "the 'box_hint_*' arrays differ in length")
    for key in ("box_hint_path_steps", "box_hint_rows"):
        _expect(arrays[key].shape[1:] == (2,), path, f"'{key}' must have 2 columns")
    _expect(len(arrays["box_hint_weights"]) == len(arrays["box_hint_rows"]), path,
            "'box_hint_weights' and 'box_hint_rows' differ in length")
    paths = _checked_offsets(arrays["box_hint_path_offsets"], n,
                             len(arrays["box_hint_path_steps"]), "box_hint_path_offsets", path)
    rows = _checked_offsets(arrays["box_hint_offsets"], n, len(arrays["box_hint_rows"]),
                            "box_hint_offsets", path)
    hints = []
    for i in range(n):
        steps = arrays["box_hint_path_steps"][paths[i]:paths[i + 1]]
        steps = shared.setdefault(steps.tobytes(), tuple((int(a), int(b)) for a, b in steps))
        pattern = np.ascontiguousarray(arrays["box_hint_patterns"][i], dtype=np.uint8)
        hints.append(BoxHint(int(arrays["box_hint_case"][i]), steps,
                             int(arrays["box_hint_layer"][i]), pattern,
                             arrays["box_hint_rows"][rows[i]:rows[i + 1]].astype(np.int64),
                             arrays["box_hint_weights"][rows[i]:rows[i + 1]].astype(np.float64)))
    return hints


def _rebuild_slopes(arrays, count, path):
    """One entry per multiplier vector: its slopes, or None (an empty run, or a file
    without slopes)."""
    if "slopes" not in arrays:
        return [None] * count
    offsets = _checked_offsets(arrays["slope_offsets"], count, len(arrays["slopes"]),
                               "slope_offsets", path)
    return [arrays["slopes"][offsets[j]:offsets[j + 1]].copy()
            if offsets[j + 1] > offsets[j] else None for j in range(count)]


def _piece(kind, case, path, layer, pattern, multipliers, hint, slopes):
    pattern = np.ascontiguousarray(pattern, dtype=np.uint8)
    if kind is BoundPiece:
        return BoundPiece(case, path, multipliers,
                          slopes if any(s is not None for s in slopes) else ())
    if kind is StarPiece:
        return StarPiece(case, path, layer, pattern, multipliers, *hint)
    return RegionPiece(case, path, pattern, multipliers)


def _checked_offsets(offsets, count, total, name, path):
    _expect(len(offsets) == count + 1 and (count + 1 == 0 or offsets[0] == 0), path,
            f"'{name}' has the wrong length")
    _expect(np.all(np.diff(offsets) >= 0) and offsets[-1] == total, path,
            f"'{name}' is not an increasing list of offsets ending at {total}")
    return offsets


def _expect(condition, path, message):
    if not condition:
        raise InvalidFileError(f"{path}: corrupt certificate: {message}")


def _offsets(arrays):
    return np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)


def _concat(arrays, empty_shape, dtype):
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(empty_shape, dtype)

"""Checks of region files read back from disk (saved complexes, checkpoint chunks).

Nothing read from a file is trusted: every file carries a content hash (SHA-256 over
its arrays' names, dtypes, shapes and bytes) and the fingerprint of the network it was
computed on, its arrays are checked for shape, dtype, range and consistency, and every
region is re-derived from the network (cheaply: one forward pass at its interior point
gives its pattern; the pattern's affine maps give its map and its facets' rows). Any
mismatch raises :class:`polyrelu.InvalidFileError` naming it.
"""

import hashlib
import json
from importlib import metadata

import numpy as np

from ..errors import InvalidFileError

__all__ = ["content_hash", "check_region_arrays", "check_regions",
           "check_facet_points", "read_meta", "polyrelu_version"]

# relative tolerance of re-derived quantities (affine maps, facet rows) against the stored
# ones: float64 rounding of the same computation, on another machine, stays far below it
_RTOL = 1e-8


def polyrelu_version():
    """The installed polyrelu's version (provenance of the files it writes)."""
    try:
        return metadata.version("polyrelu")
    except metadata.PackageNotFoundError:
        return "unknown"


def content_hash(arrays, skip=("meta",)):
    """SHA-256 (hex) over the arrays of a file (names, dtypes, shapes, bytes), in name
    order, leaving out the names in ``skip``.

    Parameters
    ----------
    arrays : dict of str to ndarray
    skip : tuple of str

    Returns
    -------
    str
    """
    digest = hashlib.sha256(b"polyrelu-arrays-v1")
    for key in sorted(k for k in arrays if k not in skip):
        array = np.ascontiguousarray(arrays[key])
        digest.update(repr((key, array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def read_meta(arrays, expected_format, version):
    """The JSON metadata of a file's arrays, checked: its format tag, version and content
    hash.

    Parameters
    ----------
    arrays : dict of str to ndarray
        All arrays of the file; ``arrays["meta"]`` is JSON: a 0-d string array, or its
        UTF-8 bytes as a 1-d uint8 array (for files read by
        :func:`polyrelu.arrayfiles.read_npz`, which takes only numbers).
    expected_format : str
    version : int or tuple of int
        The version the file must have (or one of them).

    Returns
    -------
    dict

    Raises
    ------
    InvalidFileError
    """
    name = expected_format.replace("polyrelu-", "polyrelu ", 1)
    if "meta" not in arrays:
        raise InvalidFileError(f"not a {name} file (no metadata)")
    meta_array = arrays["meta"]
    if meta_array.dtype.kind == "U" and meta_array.shape == ():
        text = str(meta_array)
    elif meta_array.dtype == np.uint8 and meta_array.ndim == 1:
        text = meta_array.tobytes().decode("utf-8", errors="replace")
    else:
        raise InvalidFileError("the metadata is not one JSON string")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidFileError(f"the metadata is not valid JSON ({err.msg})") from err
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        raise InvalidFileError(f"not a {name} file (format tag missing)")
    versions = version if isinstance(version, tuple) else (version,)
    found = meta.get("version")
    if not isinstance(found, int) or isinstance(found, bool) or found not in versions:
        readable = " and ".join(map(str, versions))
        raise InvalidFileError(
            f"format version {found!r}, this polyrelu reads version{'s' * (len(versions) > 1)} "
            f"{readable} (files without a content hash are refused: compute it again)")
    if meta.get("content_sha256") != content_hash(arrays):
        raise InvalidFileError("content hash mismatch: the file was edited or corrupted")
    return meta


_FLOAT, _INT, _BYTE = "f", "i", "u"


def _array(data, key, kind, ndim):
    if key not in data:
        raise InvalidFileError(f"array {key!r} is missing")
    array = data[key]
    if array.dtype.kind != kind or array.ndim != ndim:
        raise InvalidFileError(f"array {key!r} has dtype {array.dtype} and {array.ndim} "
                               f"dimensions, expected kind {kind!r} with {ndim}")
    if kind == _FLOAT and not np.all(np.isfinite(array)):
        raise InvalidFileError(f"array {key!r} holds NaN or infinite values")
    return array


def _shape(array, key, shape):
    if array.shape != shape:
        raise InvalidFileError(f"array {key!r} has shape {array.shape}, expected {shape}")


def check_region_arrays(data, d, m, num_hidden, faces):
    """Check the arrays written by :func:`polyrelu.regions.region.regions_to_arrays`:
    dtypes, shapes, offsets, facet sources not below the domain's faces, positive radii."""
    ids = _array(data, "ids", _INT, 1)
    n = len(ids)
    _shape(_array(data, "patterns", _BYTE, 2), "patterns", (n, (num_hidden + 7) // 8))
    offsets = _array(data, "facet_offsets", _INT, 1)
    _shape(offsets, "facet_offsets", (n + 1,))
    rows = len(_array(data, "facet_b", _FLOAT, 1))
    if offsets[0] != 0 or offsets[-1] != rows or np.any(np.diff(offsets) < 1):
        raise InvalidFileError("facet offsets are not increasing from 0 to the facet count")
    _shape(_array(data, "facet_A", _FLOAT, 2), "facet_A", (rows, d))
    sources = _array(data, "facet_sources", _INT, 1)
    _shape(sources, "facet_sources", (rows,))
    if np.any(sources < -faces):  # kinks past the network's: see check_regions
        raise InvalidFileError("a facet source names no kink and no domain face")
    _shape(_array(data, "interior_points", _FLOAT, 2), "interior_points", (n, d))
    radii = _array(data, "radii", _FLOAT, 1)
    _shape(radii, "radii", (n,))
    if np.any(radii <= 0):
        raise InvalidFileError("a region has a non-positive radius")
    _shape(_array(data, "W_eff", _FLOAT, 3), "W_eff", (n, m, d))
    _shape(_array(data, "b_eff", _FLOAT, 2), "b_eff", (n, m))


def check_regions(regions, network, domain, zero_tol, first_id=0):
    """Re-derive every region from the network and compare with the stored one.

    Checks: ids run from ``first_id``; facet sources name kinks of the network (or domain
    faces); patterns are distinct, their padding bits zero, and equal to the canonical
    pattern of a forward pass at the region's interior point; the affine map is the
    pattern's; every facet row is the unit-norm row of its source (the kink's row of
    :meth:`polyrelu.Network.kink_rows` under the pattern, or the domain face); the
    Chebyshev ball lies inside the facets and the domain.

    Parameters
    ----------
    regions : list of Region
    network : Network
    domain : Domain
    zero_tol : ndarray, shape (N,)
        The per-neuron zero tolerances (canonical patterns).
    first_id : int
        The id the first region must have.

    Raises
    ------
    InvalidFileError
        Naming the first region that does not match and how.
    """
    if [r.id for r in regions] != list(range(first_id, first_id + len(regions))):
        raise InvalidFileError("region ids are not consecutive")
    keys = [r.key for r in regions]
    if len(set(keys)) != len(keys):
        raise InvalidFileError("two regions have the same activation pattern")
    if not regions:
        return
    kinks = network.num_hidden + len(network.window_pairs)
    if any(np.any(r.polytope.sources >= kinks) for r in regions):
        raise InvalidFileError("a facet source names no kink and no domain face")
    centres = np.array([r.interior_point for r in regions])
    raw = network.activation_pattern(centres)
    for region, pattern in zip(regions, raw):
        _check_region(region, pattern, network, domain, zero_tol)


def _check_region(region, raw, network, domain, zero_tol):
    canonical, maps, zero = network.canonical_pattern(raw, zero_tol, domain.lower, domain.upper)
    if np.packbits(canonical).tobytes() != region.key:
        raise InvalidFileError(f"region {region.id}: its pattern is not the network's "
                               "pattern at its interior point")
    if np.any(zero & raw):  # the maps were those of the raw pattern
        maps = network.affine_maps(canonical)
    scale = 1.0 + np.abs(maps.W_eff).max(initial=0) + np.abs(maps.b_eff).max(initial=0)
    if not (_close(region.W_eff, maps.W_eff, _RTOL * scale)
            and _close(region.b_eff, maps.b_eff, _RTOL * scale)):
        raise InvalidFileError(f"region {region.id}: its affine map is not the network's")
    _check_facets(region, canonical, maps, network, domain)


def _close(a, b, tol):
    return a.shape == b.shape and np.abs(a - b).max(initial=0) <= tol


def _check_facets(region, pattern, maps, network, domain):
    polytope = region.polytope
    sources = polytope.sources
    A, b = np.empty_like(polytope.A), np.empty_like(polytope.b)
    tagged = sources >= 0
    G, g, kinks = network.kink_rows(pattern, maps)
    row_of = np.full(network.num_hidden + len(network.window_pairs), -1)
    row_of[kinks] = np.arange(len(kinks))
    index = row_of[sources[tagged]]
    if np.any(index < 0):
        raise InvalidFileError(f"region {region.id}: a facet lies on a kink that does not "
                               "bound its region")
    rows, offsets = -G[index], g[index]
    norms = np.linalg.norm(rows, axis=1)
    if np.any(norms == 0):
        raise InvalidFileError(f"region {region.id}: a facet lies on a kink that is "
                               "constant on it")
    A[tagged], b[tagged] = rows / norms[:, None], offsets / norms
    faces = -1 - sources[~tagged]
    A[~tagged], b[~tagged] = domain.A[faces], domain.b[faces]
    scale = 1.0 + np.abs(b).max(initial=0)
    if not (_close(polytope.A, A, _RTOL) and _close(polytope.b, b, _RTOL * scale)):
        raise InvalidFileError(f"region {region.id}: a facet row is not the row of its "
                               "kink or domain face")
    slack = min(np.min(b - A @ region.interior_point),
                np.min(domain.b - domain.A @ region.interior_point))
    if slack < region.radius * (1 - 1e-6) - _RTOL * scale:
        raise InvalidFileError(f"region {region.id}: its Chebyshev ball sticks out of its "
                               "facets")


def check_facet_points(region, points):
    """Each stored facet point must lie on its facet's hyperplane and in the region."""
    polytope = region.polytope
    if points.shape != polytope.A.shape:
        raise InvalidFileError(f"region {region.id}: {len(points)} facet points for "
                               f"{len(polytope.b)} facets")
    scale = 1.0 + np.abs(polytope.b).max(initial=0) + np.abs(points).max(initial=0)
    values = points @ polytope.A.T - polytope.b  # (facet point, row)
    own = np.diagonal(values)
    if np.any(np.abs(own) > 1e-6 * scale) or np.any(values > 1e-6 * scale):
        raise InvalidFileError(f"region {region.id}: a facet point is not on its facet")

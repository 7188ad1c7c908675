"""Streaming a walk's regions to disk, so that an interrupted run resumes without loss.

A checkpoint is a directory: ``meta.json`` (format version, polyrelu version, the
options, and a fingerprint of the network, the domain and the options) and
``chunk_NNNNNN.npz`` files, each holding a batch of regions with their facets'
relative-interior points and its own metadata (format version, the run's fingerprint,
its chunk number, first region id and a SHA-256 of its arrays), written atomically (to
a temporary name, then renamed). A run that is killed loses at most the regions since
the last chunk; resuming validates every chunk (hash, fingerprint, numbering, and each
region re-derived from the network: see :mod:`polyrelu.regions.validation`), recomputes
the facet crossings of the stored regions (forward passes, no LP) to rebuild the
frontier, and walks on. The final regions are exactly those of an uninterrupted run.
A directory with chunks but no ``meta.json``, or with a foreign, edited or truncated
chunk, is refused (:class:`polyrelu.InvalidFileError`).

A walk that keeps no regions in memory (``keep=False``) streams them to a checkpoint
only, and returns a :class:`StreamedComplex`: the checkpoint and the edges (24 bytes
each). Its ``save`` merges the chunks (each checked again: hash, run, sequence, shapes)
into the region complex file, so the walk's memory is bounded by its frontier and the
merge's by the regions' arrays. ``polyrelu regions -o FILE`` without ``--checkpoint``
spills to a hidden checkpoint beside FILE (:func:`spill_checkpoint`), removed once FILE
is written or the run fails (a killed run leaves it behind: ``.FILE.spill-*``).
"""

import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path

import numpy as np

from ..errors import InvalidFileError
from ..network.model import network_fingerprint
from . import validation
from .region import (
    affine_piece_labels,
    read_arrays,
    regions_from_arrays,
    regions_to_arrays,
    write_complex,
)
from .splitting import Batch, Pieces

__all__ = ["Checkpoint", "CountCheckpoint", "StreamedComplex", "spill_checkpoint"]

FORMAT = "polyrelu-checkpoint"
CHUNK_FORMAT = "polyrelu-checkpoint-chunk"
VERSION = 2
_CHUNK_NAME = re.compile(r"chunk_(\d{6})\.npz")
_REGION_KEYS = ("ids", "patterns", "facet_offsets", "facet_A", "facet_b", "facet_sources",
                "interior_points", "radii", "W_eff", "b_eff")


class Checkpoint:
    """A directory where a walk streams its regions.

    Parameters
    ----------
    directory : str or Path
        Created if missing. If it holds a checkpoint of another network,
        domain or options, chunks without metadata, or is a file,
        :class:`InvalidFileError` is raised.
    network, domain, options
        What the walk runs on (their fingerprint guards the directory).
    flush_regions : int
        Write a chunk after this many new regions ...
    flush_seconds : float
        ... or after this many seconds, whichever comes first.
    """

    def __init__(self, directory, network, domain, options, *, flush_regions=500,
                 flush_seconds=5.0):
        self.directory = Path(directory)
        self.network, self.domain = network, domain
        self.flush_regions, self.flush_seconds = flush_regions, flush_seconds
        self.dims = (network.input_dim, network.output_dim, network.num_hidden)
        self._pending, self._last_flush = [], time.monotonic()
        _make_directory(self.directory)
        self.fingerprint = _fingerprint(network, domain, options)
        self._open_meta(options)
        self._chunks = len(self._chunk_files())

    def _open_meta(self, options):
        """Check the directory's ``meta.json`` against this run, or write it."""
        meta_path = self.directory / "meta.json"
        if not meta_path.exists():
            if self._chunk_files():
                raise InvalidFileError(f"{self.directory} holds checkpoint chunks but no "
                                       "meta.json: refusing to resume from them")
            _write_atomically(meta_path, json.dumps({
                "format": FORMAT, "version": VERSION, "fingerprint": self.fingerprint,
                "network_sha256": network_fingerprint(self.network),
                "polyrelu_version": validation.polyrelu_version(),
                "options": repr(options)}).encode())
            return
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as err:
            raise InvalidFileError(f"{meta_path}: unreadable checkpoint metadata ({err})") \
                from err
        if not isinstance(meta, dict) or meta.get("format") != FORMAT \
                or meta.get("version") != VERSION:
            raise InvalidFileError(f"{meta_path}: not a checkpoint of this polyrelu version")
        if meta.get("fingerprint") != self.fingerprint:
            raise InvalidFileError(
                f"{self.directory} holds a checkpoint of another network, domain or "
                "options; use a new directory")

    def stored(self, zero_tol):
        """The stored regions, validated, as ``(Region, facet_points)`` in id order, read
        one chunk at a time. ``zero_tol`` is the walk's per-neuron zero tolerance (for
        the patterns)."""
        first_id = 0
        for number, path in self._numbered_chunks():
            try:
                items = self._load_chunk(path, number, first_id, zero_tol)
            except InvalidFileError as err:
                raise InvalidFileError(f"{path}: {err}") from err
            first_id += len(items)
            yield from items

    def _numbered_chunks(self):
        """(number, path) of the chunk files, which must be numbered 0, 1, ..."""
        files = self._chunk_files()
        for number, path in enumerate(files):
            if _CHUNK_NAME.fullmatch(path.name) is None or int(path.name[6:12]) != number:
                raise InvalidFileError(f"{self.directory}: chunk files are not numbered "
                                       f"0, 1, ... (found {path.name})")
        return list(enumerate(files))

    def _chunk_arrays(self, path, number, first_id):
        """A chunk's arrays, checked: hash, run, sequence, shapes and dtypes."""
        d, m, num_hidden = self.dims
        arrays = read_arrays(path, "checkpoint chunk")
        meta = validation.read_meta(arrays, CHUNK_FORMAT, VERSION)
        if meta.get("fingerprint") != self.fingerprint:
            raise InvalidFileError("a chunk of another run (fingerprint differs)")
        if meta.get("chunk") != number or meta.get("first_id") != first_id:
            raise InvalidFileError("a chunk out of sequence (renamed or copied)")
        validation.check_region_arrays(arrays, d, m, num_hidden, len(self.domain.b))
        if not np.array_equal(arrays["ids"], np.arange(first_id, first_id + len(arrays["ids"]))):
            raise InvalidFileError("region ids are not consecutive")
        return arrays

    def region_arrays(self):
        """The arrays of all stored regions, as :func:`regions_to_arrays` gives them (no
        facet points), each chunk checked (hash, run, sequence, shapes: not re-derived from
        the network, which :meth:`stored` does)."""
        parts, first_id = {}, 0
        for number, path in self._numbered_chunks():
            try:
                arrays = self._chunk_arrays(path, number, first_id)
            except InvalidFileError as err:
                raise InvalidFileError(f"{path}: {err}") from err
            arrays["facet_offsets"] = arrays["facet_offsets"][1:] + (
                parts["facet_offsets"][-1][-1] if parts else 0)
            for key in _REGION_KEYS:
                parts.setdefault(key, []).append(arrays[key])
            first_id += len(arrays["ids"])
        if not parts:
            return regions_to_arrays([], *self.dims)
        joined = {}
        for key in _REGION_KEYS:
            joined[key] = np.concatenate(parts.pop(key))
        joined["facet_offsets"] = np.concatenate([[0], joined["facet_offsets"]])
        return joined

    def remove(self):
        """Delete the checkpoint's files and its directory (a spill, once merged)."""
        for path in self._chunk_files() + list(self.directory.glob(".chunk_*.tmp.npz")):
            path.unlink()
        (self.directory / "meta.json").unlink(missing_ok=True)
        self.directory.rmdir()

    def _load_chunk(self, path, number, first_id, zero_tol):
        num_hidden = self.dims[2]
        arrays = self._chunk_arrays(path, number, first_id)
        points = arrays.get("facet_points")
        if points is None or points.dtype.kind != "f" or points.shape != arrays["facet_A"].shape \
                or not np.all(np.isfinite(points)):
            raise InvalidFileError("the facet points are missing or malformed")
        regions = regions_from_arrays(arrays, num_hidden)
        validation.check_regions(regions, self.network, self.domain, zero_tol, first_id)
        offsets = arrays["facet_offsets"]
        items = [(region, points[offsets[i]:offsets[i + 1]]) for i, region in enumerate(regions)]
        for region, facet_points in items:
            validation.check_facet_points(region, facet_points)
        return items

    def add(self, region, facet_points):
        """Queue a region for the next chunk; write the chunk when one is due."""
        self._pending.append((region, facet_points))
        if (len(self._pending) >= self.flush_regions
                or time.monotonic() - self._last_flush >= self.flush_seconds):
            self.flush()

    def flush(self):
        """Write the queued regions as one chunk (atomically)."""
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        d = self.dims[0]
        regions = [r for r, _ in self._pending]
        arrays = regions_to_arrays(regions, *self.dims)
        arrays["facet_points"] = np.concatenate([p for _, p in self._pending]).reshape(-1, d)
        arrays["meta"] = np.array(json.dumps({
            "format": CHUNK_FORMAT, "version": VERSION, "fingerprint": self.fingerprint,
            "chunk": self._chunks, "first_id": int(regions[0].id),
            "content_sha256": validation.content_hash(arrays)}))
        _save_atomically(self.directory / f"chunk_{self._chunks:06d}.npz", arrays)
        self._chunks += 1
        self._pending = []

    def _chunk_files(self):
        return sorted(self.directory.glob("chunk_*.npz"))


def spill_checkpoint(output, network, domain, options, **kwargs):
    """A new checkpoint in a hidden directory beside ``output`` (unique to this process), to
    spill a walk's regions to until they are merged into ``output``; ``kwargs`` as for
    :class:`Checkpoint` (a spill is written every 5000 regions unless told otherwise: it
    is not resumed from, so its chunks need not be small). The caller removes it
    (:meth:`Checkpoint.remove`)."""
    kwargs.setdefault("flush_regions", 5000)
    output = Path(output)
    directory = output.with_name(f".{output.name}.spill-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    return Checkpoint(directory, network, domain, options, **kwargs)


class StreamedComplex:
    """A region complex whose regions are on disk (in a checkpoint), not in memory: what a
    walk that keeps no regions returns (``keep=False`` of
    :func:`polyrelu.enumerate_regions`).

    Attributes
    ----------
    checkpoint : Checkpoint
        Where the regions are.
    edges : ndarray of int, shape (E, 3)
        The adjacency graph's edges: two region ids (smaller first) and the kink of their
        shared facet.
    stats : dict
        As :attr:`RegionComplex.stats`.
    zero_tol : ndarray
    """

    def __init__(self, checkpoint, edges, stats, zero_tol):
        self.checkpoint, self.edges = checkpoint, edges
        self.stats, self.zero_tol = stats, zero_tol
        self._arrays = None

    def region_arrays(self):
        """The regions' arrays (:meth:`Checkpoint.region_arrays`), read on first use and
        kept (the file's size in memory, not the regions' objects)."""
        if self._arrays is None:
            self._arrays = self.checkpoint.region_arrays()
        return self._arrays

    def __len__(self):
        return self.stats["regions"]

    def save(self, path):
        """Write the complex to one ``.npz`` file, as :meth:`RegionComplex.save` does (the
        same file: :meth:`RegionComplex.load` reads it back)."""
        order = np.lexsort((self.edges[:, 1], self.edges[:, 0]))
        write_complex(path, self.checkpoint.network, self.checkpoint.domain,
                      self.region_arrays(), self.edges[order, :2],
                      self.edges[order, 2], self.zero_tol, self.stats)

    def affine_piece_count(self, rtol=1e-9):
        """Number of maximal affine pieces (see :meth:`RegionComplex.affine_pieces`)."""
        arrays = self.region_arrays()
        labels = affine_piece_labels(arrays["W_eff"], arrays["b_eff"], self.edges[:, :2], rtol)
        return int(labels.max(initial=-1)) + 1


def _make_directory(directory):
    """Create the checkpoint ``directory`` if missing (InvalidFileError if it cannot be
    made or is a file)."""
    if directory.exists() and not directory.is_dir():
        raise InvalidFileError(f"checkpoint {directory} is an existing file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InvalidFileError(f"cannot create checkpoint directory {directory}: "
                               f"{err.strerror or err}") from err


def _save_atomically(path, arrays):
    """``numpy.savez`` to ``.NAME.tmp.npz`` beside ``path``, then renamed to ``path``: a
    reader never sees half a file."""
    temporary = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(temporary, **arrays)
    os.replace(temporary, path)


def _write_atomically(path, data):
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _fingerprint(network, domain, options):
    """SHA-256 of the network (its fingerprint covers unit kinds, kept entries and
    windows), the domain and the options."""
    digest = hashlib.sha256(network_fingerprint(network).encode())
    for array in (domain.A, domain.b):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr(options).encode())
    return digest.hexdigest()


# The count's checkpoint (``polyrelu regions --count-only --checkpoint DIR``): one file.

COUNT_FORMAT = "polyrelu-count-checkpoint"
COUNT_VERSION = 1
COUNT_FILE = "count.npz"
_BATCH_FIELDS = Pieces.BASE + ("map_A", "map_c")


class CountCheckpoint:
    """A directory holding a count's state: the regions counted so far and the open
    batches (:class:`polyrelu.regions.splitting.Batch`) still to split, in
    ``count.npz`` (replaced atomically at each :meth:`save`). Counting the open batches
    and adding the stored count gives the total of an uninterrupted run.

    The file carries a format version, the run's fingerprint (network, domain,
    options) and a SHA-256 of its arrays; on :meth:`load` every array's size is checked
    from its header before it is read, and every batch's shapes, index ranges and
    values against the network. A file of another run, edited, truncated or of absurd
    size is refused (:class:`polyrelu.InvalidFileError`). The hash detects damage, not
    forgery: a file rewritten with a matching hash and consistent arrays is believed.

    Examples
    --------
    >>> import tempfile
    >>> from polyrelu import Network, Domain, Options
    >>> absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    >>> box = Domain.box([-1], [1])
    >>> store = CountCheckpoint(tempfile.mkdtemp(), absolute, box, Options())
    >>> store.save(2, 0, [])
    >>> store.load()
    (2, 0, [])
    """

    def __init__(self, directory, network, domain, options):
        self.directory = Path(directory)
        self.network = network
        self.path = self.directory / COUNT_FILE
        if (self.directory / "meta.json").exists():
            raise InvalidFileError(f"{self.directory} holds a checkpoint of a walk, not of a "
                                   "count; use a new directory")
        _make_directory(self.directory)
        self.fingerprint = _fingerprint(network, domain, options)

    def save(self, count, lps, batches):
        """Write ``count`` regions (found with ``lps`` LPs) and the open ``batches``."""
        arrays = {}
        for k, batch in enumerate(batches):
            for name in _BATCH_FIELDS:
                source = batch if name.startswith("map_") else batch.pieces
                arrays[f"b{k}_{name}"] = getattr(source, name)
        arrays["meta"] = _meta_bytes({
            "format": COUNT_FORMAT, "version": COUNT_VERSION, "fingerprint": self.fingerprint,
            "count": int(count), "lps": int(lps),
            "batches": [[b.layer, b.unit] for b in batches],
            "content_sha256": validation.content_hash(arrays)})
        _save_atomically(self.path, arrays)

    def load(self):
        """``(count, lps, batches)`` of the stored state, validated; None when there is
        none yet."""
        if not self.path.exists():
            return None
        arrays = read_arrays(self.path, "count checkpoint")
        try:
            meta = _count_meta(arrays, self.fingerprint)
            batches = [_batch_from_arrays(arrays, k, layer, unit, self.network)
                       for k, (layer, unit) in enumerate(meta["batches"])]
        except InvalidFileError as err:
            raise InvalidFileError(f"{self.path}: {err}") from err
        return meta["count"], meta["lps"], batches


def _meta_bytes(meta):
    return np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)


def _count_meta(arrays, fingerprint):
    """The checked metadata of a count checkpoint's arrays."""
    meta = validation.read_meta(arrays, COUNT_FORMAT, COUNT_VERSION)
    if meta.get("fingerprint") != fingerprint:
        raise InvalidFileError("a checkpoint of another network, domain or options; use a "
                               "new directory")
    batches = meta.get("batches")
    numbers = [meta.get("count"), meta.get("lps")]
    if not all(type(n) is int and n >= 0 for n in numbers) or not isinstance(batches, list) \
            or len(arrays) != 1 + len(_BATCH_FIELDS) * len(batches):
        raise InvalidFileError("malformed metadata")
    return meta


def _batch_from_arrays(arrays, k, layer, unit, network):
    """Open batch ``k`` of a count checkpoint, its shapes and values checked against
    ``network`` (so that splitting it cannot index out of range)."""
    fields = {}
    for name in _BATCH_FIELDS:
        fields[name] = arrays.get(f"b{k}_{name}")
        if fields[name] is None:
            raise InvalidFileError(f"batch {k}: array {name} missing")
    hidden = len(network.hidden_sizes)
    if type(layer) is not int or not 0 <= layer <= hidden:
        raise InvalidFileError(f"batch {k}: layer {layer!r} out of range")
    spec = network.layers[layer]
    relu_units = len(spec.relu_units) if layer < hidden else 0
    kinks = relu_units + len(spec.windows) if layer < hidden else 0
    if unit is not None and (type(unit) is not int or not 0 <= unit < kinks):
        raise InvalidFileError(f"batch {k}: unit {unit!r} out of range")
    states = None if unit is None else relu_units if unit < relu_units else kinks
    _check_batch_arrays(fields, network, layer, unit, states, f"batch {k}")
    pieces = Pieces(Pieces.BASE, **{name: fields[name] for name in Pieces.BASE})
    return Batch(pieces, fields["map_A"], fields["map_c"], layer, unit)


def _check_batch_arrays(f, network, layer, unit, states, where):
    """Raise InvalidFileError unless the arrays ``f`` of a batch are consistent."""
    d = network.input_dim
    m, width = f["b"].shape if f["b"].ndim == 2 else (-1, -1)
    weight = network.layers[layer].weight
    maps = weight.shape[1] if unit is None else weight.shape[0]
    count = len(f["map_A"]) if unit is not None else m
    shapes = {"A": (m, width, d), "b": (m, width), "rows": (m,), "low": (m, d),
              "high": (m, d), "maps": (m,), "map_A": (count, maps, d), "map_c": (count, maps)}
    if unit is not None:
        shapes["state"] = (m, states)
    witnesses = f["points"].shape[1] if f["points"].ndim == 3 else -1
    shapes.update(points=(m, witnesses, d), valid=(m, witnesses))
    for name, shape in shapes.items():
        if f[name].shape != shape or m < 1 or witnesses < 1:
            raise InvalidFileError(f"{where}: array {name} has shape {f[name].shape}")
    kinds = {"rows": "i", "maps": "i", "state": "i", "valid": "b"}
    for name, array in f.items():
        if array.dtype.kind != kinds.get(name, "f"):
            raise InvalidFileError(f"{where}: array {name} has dtype {array.dtype}")
        if kinds.get(name, "f") == "f" and name != "b" and not np.isfinite(array).all():
            raise InvalidFileError(f"{where}: array {name} has non-finite values")
    padding = np.arange(width) >= f["rows"][:, None]
    maps_used = unit is None or ((f["maps"] >= 0) & (f["maps"] < count)).all()
    if not ((f["rows"] >= 0) & (f["rows"] <= width)).all() \
            or not (np.isfinite(f["b"]) | padding).all() or not maps_used \
            or not ((f["state"] >= -1) & (f["state"] <= 5)).all():
        raise InvalidFileError(f"{where}: row counts, map indices or states out of range")

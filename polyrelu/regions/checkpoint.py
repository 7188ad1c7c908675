"""Streaming a walk's regions to disk, so that an interrupted run resumes without loss.

A checkpoint is a directory: ``meta.json`` (a fingerprint of the network, the
domain and the options) and ``chunk_NNNNNN.npz`` files, each holding a batch of
regions with their facets' relative-interior points, written atomically (to a
temporary name, then renamed). A run that is killed loses at most the regions
since the last chunk; resuming reloads the chunks, recomputes the facet
crossings of the stored regions (forward passes, no LP) to rebuild the frontier,
and walks on. The final regions are exactly those of an uninterrupted run.
"""

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from ..errors import InvalidFileError
from .region import regions_from_arrays, regions_to_arrays

__all__ = ["Checkpoint"]

FORMAT = "polyrelu-checkpoint"


class Checkpoint:
    """A directory where a walk streams its regions.

    Parameters
    ----------
    directory : str or Path
        Created if missing. If it holds a checkpoint of another network,
        domain or options, :class:`InvalidFileError` is raised.
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
        self.flush_regions, self.flush_seconds = flush_regions, flush_seconds
        self.dims = (network.input_dim, network.output_dim, network.num_hidden)
        self._pending, self._last_flush = [], time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        fingerprint = _fingerprint(network, domain, options)
        meta_path = self.directory / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != FORMAT or meta.get("fingerprint") != fingerprint:
                raise InvalidFileError(
                    f"{self.directory} holds a checkpoint of another network, domain or "
                    "options; use a new directory")
        else:
            meta_path.write_text(json.dumps({"format": FORMAT, "fingerprint": fingerprint}))
        self._chunks = len(self._chunk_files())

    def load(self):
        """The stored regions, as a list of ``(Region, facet_points)`` in id order."""
        d, _, num_hidden = self.dims
        stored = []
        for path in self._chunk_files():
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            regions = regions_from_arrays(arrays, num_hidden)
            offsets = arrays["facet_offsets"]
            for i, region in enumerate(regions):
                stored.append((region, arrays["facet_points"][offsets[i]:offsets[i + 1]]))
        stored.sort(key=lambda item: item[0].id)
        if [r.id for r, _ in stored] != list(range(len(stored))):
            raise InvalidFileError(f"{self.directory}: the stored region ids are not contiguous")
        return stored

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
        d, m, _ = self.dims
        arrays = regions_to_arrays([r for r, _ in self._pending], d, m)
        arrays["facet_points"] = np.concatenate([p for _, p in self._pending]).reshape(-1, d)
        final = self.directory / f"chunk_{self._chunks:06d}.npz"
        temporary = self.directory / f".chunk_{self._chunks:06d}.tmp.npz"
        np.savez(temporary, **arrays)
        os.replace(temporary, final)
        self._chunks += 1
        self._pending = []

    def _chunk_files(self):
        return sorted(self.directory.glob("chunk_*.npz"))


def _fingerprint(network, domain, options):
    digest = hashlib.sha256()
    for array in (*network.weights, *network.biases, domain.A, domain.b):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr(options).encode())
    return digest.hexdigest()

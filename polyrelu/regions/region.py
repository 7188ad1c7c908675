"""`Region` and `RegionComplex`: the exact result of an enumeration.

A *region* is a full-dimensional activation region: the closure of a maximal set of
domain points on which every kinked unit stays on one linear piece (a ReLU unit
active, pre-activation > 0, or inactive; a LeakyReLU, PReLU or Abs unit on one side of
its kink; a Clip unit below, between or above its two kinks) and every max window keeps
its argmax (the lowest position on ties). Such a set has one activation pattern
(see :class:`polyrelu.Network`); it is kept only if its Chebyshev radius exceeds the
tolerance of :class:`polyrelu.Options`. The network is affine on it. Several adjacent
regions may carry the same affine map; merging them gives the *maximal affine pieces*,
the other common definition of "linear region" (:meth:`RegionComplex.affine_pieces`).

Facets and graph edges are tagged with the *kink* that makes them (see
:meth:`polyrelu.Network.kink_name`): a ReLU slot ``k < num_hidden`` or the tie
``num_hidden + p`` of the window positions ``window_pairs[p]``; domain faces are
``-1 - f``. For a ReLU network the kinks are the hidden neurons.

File format (:meth:`RegionComplex.save`, version 3): one ``.npz`` of numeric arrays and
one JSON string ``meta``. The network is stored as its layers in the layout of
:mod:`polyrelu.network.arrays` (``W{l}``, ``b{l}``, and ``units{l}``, ``keep{l}``,
``windows{l}`` for layers that are not plain ReLU layers; their names in ``meta``), so
any network round-trips; the edges' kinks are ``edge_kinks``. Version-2 files (ReLU
networks, weights and biases only, ``edge_neurons``) are still read.
"""

import dataclasses
import json
import os
from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..arrayfiles import read_npz
from ..errors import (
    InvalidDomainError,
    InvalidFileError,
    InvalidNetworkError,
    PolyreluError,
    SizeLimitError,
)
from ..geometry.domain import Domain
from ..geometry.interval import neuron_status
from ..geometry.lp import LPSolver
from ..geometry.polytope import HPolytope
from ..network.arrays import network_arrays, network_from_arrays
from ..network.model import Network, network_fingerprint
from ..options import Options
from .validation import (
    check_region_arrays,
    check_regions,
    content_hash,
    polyrelu_version,
    read_meta,
)

__all__ = ["Region", "RegionComplex", "affine_piece_labels", "pattern_key", "write_complex"]

FILE_FORMAT = "polyrelu-region-complex"
FILE_VERSION = 3
#: Older versions :meth:`RegionComplex.load` still reads: 2 (ReLU networks only).
READ_VERSIONS = (2, FILE_VERSION)


def pattern_key(pattern):
    """Hashable key (bytes) of a boolean activation pattern (packed bits)."""
    return np.packbits(np.asarray(pattern, dtype=bool)).tobytes()


@dataclass(frozen=True, eq=False)
class Region:
    """One activation region with the affine map the network computes on it.

    Attributes
    ----------
    id : int
        Index in its :class:`RegionComplex` (and node of its graph).
    pattern_bits : ndarray of uint8
        The activation pattern, packed (``numpy.packbits``) over the network's N pattern
        slots (one per ReLU unit, one per window position; the hidden neurons of a ReLU
        network).
    num_hidden : int
    polytope : HPolytope
        Minimal H-representation: only facets, unit-norm rows, each tagged with
        the kink (``>= 0``, see :meth:`polyrelu.Network.kink_name`) or domain face
        (``-1 - f``) that creates it.
    interior_point : ndarray, shape (d,)
        The Chebyshev centre.
    radius : float
        The Chebyshev radius (distance from ``interior_point`` to the boundary).
    W_eff : ndarray, shape (m, d);  b_eff : ndarray, shape (m,)
        On the region, the network computes ``W_eff @ x + b_eff``.
    """

    id: int
    pattern_bits: np.ndarray
    num_hidden: int
    polytope: HPolytope
    interior_point: np.ndarray
    radius: float
    W_eff: np.ndarray
    b_eff: np.ndarray

    @property
    def pattern(self):
        """Boolean activation pattern, shape (N,)."""
        return np.unpackbits(self.pattern_bits, count=self.num_hidden).astype(bool)

    @property
    def key(self):
        """The packed pattern as bytes (hashable)."""
        return self.pattern_bits.tobytes()

    def contains(self, points, tol=0.0):
        """Boolean array (n,): whether points satisfy the region's facets up to ``tol``."""
        return self.polytope.contains(points, tol)

    def volume(self):
        """d-dimensional volume of the region (from its vertices; small d only)."""
        return self.polytope.volume(self.interior_point)

    def apply(self, points):
        """The region's affine map at points of shape (n, d): array (n, m)."""
        return np.atleast_2d(points) @ self.W_eff.T + self.b_eff


class RegionComplex:
    """All regions of a network over a domain, with their adjacency graph.

    Attributes
    ----------
    network : Network
    domain : Domain
    regions : list of Region
        ``regions[i].id == i``.
    graph : networkx.Graph
        Nodes are region ids; an edge joins two regions that share a facet of
        positive (d-1)-volume, with attribute ``kink`` (the kink whose hyperplane holds
        that facet: a ReLU slot, or ``num_hidden + p`` for the tie of window pair ``p``;
        for a ReLU network the global index of the hidden neuron). A complex made from
        an edge array (as the walk makes it) builds the graph on first use: until then
        an edge takes 24 bytes instead of networkx's ~250.
    stats : dict
        How the result was obtained: ``lps`` (LPs solved), ``seconds``,
        ``thin_regions`` (patterns seen but below the radius tolerance), ...
    zero_tol : ndarray, shape (N,)
        Per-slot magnitude below which a pre-activation map counts as
        identically zero (such ReLU slots are canonically inactive; window values this
        close tie, the lowest position wins).
    """

    def __init__(self, network, domain, regions, graph, stats, zero_tol):
        """``graph``: a networkx graph, or an int array (E, 3) of edges ``(u, v, kink)``."""
        self.network, self.domain = network, domain
        self.regions = list(regions)
        self.stats, self.zero_tol = dict(stats), zero_tol
        self._index = {region.key: region.id for region in self.regions}
        if isinstance(graph, nx.Graph):
            self._graph, self._edges = graph, None
        else:
            self._graph, self._edges = None, np.asarray(graph, dtype=np.int64).reshape(-1, 3)

    @property
    def graph(self):
        """The adjacency graph (see the class's attributes)."""
        if self._graph is None:
            graph = nx.Graph()
            graph.add_nodes_from(range(len(self.regions)))
            graph.add_edges_from((u, v, {"kink": kink}) for u, v, kink in self._edges.tolist())
            self._graph, self._edges = graph, None
        return self._graph

    def _edge_list(self):
        """The edges (E, 2), smaller id first, and their kinks (E,), without building the
        graph if it is not built yet."""
        if self._graph is None:
            return np.sort(self._edges[:, :2], axis=1), self._edges[:, 2]
        return _edge_arrays(self._graph)

    def __len__(self):
        return len(self.regions)

    def __iter__(self):
        return iter(self.regions)

    def __getitem__(self, index):
        return self.regions[index]

    def __repr__(self):
        return f"<RegionComplex: {len(self)} regions of {self.network} over {self.domain}>"

    def check_matches(self, network, domain=None):
        """Raise unless the complex was computed on ``network`` (same fingerprint: shapes
        and weight bytes, units, kept entries and windows) and, if given, on ``domain`` (same rows).

        Raises
        ------
        InvalidNetworkError, InvalidDomainError
        """
        if network_fingerprint(network) != network_fingerprint(self.network):
            raise InvalidNetworkError("the region complex holds the regions of another "
                                      "network (fingerprints differ)")
        if domain is not None and not (
                np.array_equal(domain.A, self.domain.A)
                and np.array_equal(domain.b, self.domain.b)):
            raise InvalidDomainError("the region complex was computed over another domain")

    def region_id(self, pattern):
        """Id of the region with this (canonical) activation pattern, or None."""
        return self._index.get(pattern_key(pattern))

    def locate(self, points):
        """Region id of each point (n, d), by its activation pattern; -1 if none.

        A point on a region boundary gets the pattern of one side (or of no
        full-dimensional region, then -1); interior points always get theirs.
        """
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        return np.array([self._locate_pattern(p) for p in self.network.activation_pattern(points)],
                        dtype=np.int64)

    def _locate_pattern(self, pattern):
        found = self._index.get(pattern_key(pattern))
        if found is None:
            canonical, _, _ = self.network.canonical_pattern(
                pattern, self.zero_tol, self.domain.lower, self.domain.upper)
            found = self._index.get(pattern_key(canonical), -1)
        return found

    def affine_pieces(self, rtol=1e-9):
        """Maximal affine pieces: connected groups of adjacent regions with one affine map.

        Two adjacent regions are merged when their ``(W_eff, b_eff)`` agree to
        ``rtol`` relative to the map's magnitude. Returns a list of sorted lists
        of region ids.
        """
        W = np.array([r.W_eff for r in self.regions]).reshape(
            len(self), self.network.output_dim, self.network.input_dim)
        b = np.array([r.b_eff for r in self.regions]).reshape(len(self), self.network.output_dim)
        labels = affine_piece_labels(W, b, self._edge_list()[0], rtol)
        order = np.argsort(labels, kind="stable")
        starts = np.flatnonzero(np.diff(labels[order], prepend=-1))
        return sorted(part.tolist() for part in np.split(order, starts[1:]) if part.size)

    def affine_piece_count(self, rtol=1e-9):
        """Number of maximal affine pieces (see :meth:`affine_pieces`)."""
        return len(self.affine_pieces(rtol))

    def save(self, path):
        """Write the complex (network, domain, regions, graph, stats) to one ``.npz`` file.

        The file holds only numeric arrays and one JSON string (``meta``: format
        version, polyrelu version, the options, the network's fingerprint and a SHA-256
        of all the other arrays); it loads with ``numpy.load(path, allow_pickle=False)``.
        It is written to a temporary name and renamed, so ``path`` is never half-written.
        """
        edges, kinks = self._edge_list()
        write_complex(path, self.network, self.domain,
                      regions_to_arrays(self.regions, self.network.input_dim,
                                        self.network.output_dim, self.network.num_hidden),
                      edges, kinks, self.zero_tol, self.stats)

    @classmethod
    def load(cls, path, network=None):
        """Read a complex written by :meth:`save`, validating everything in it.

        Parameters
        ----------
        path : str or Path
        network : Network, optional
            The network the caller means: the file must hold exactly this one.

        Returns
        -------
        RegionComplex

        Raises
        ------
        InvalidFileError
            If the file cannot be read, is not a region-complex file, its content hash
            does not match, an array has the wrong shape or dtype, or a region, facet,
            affine map or edge is not what the network gives (each re-derived), or the
            file's network is not ``network``.
        """
        data = read_arrays(path, "region-complex")
        try:
            return _from_arrays(data, network)
        except InvalidFileError as err:
            raise InvalidFileError(f"{path}: {err}") from err
        except PolyreluError as err:
            raise InvalidFileError(f"{path}: invalid content ({err})") from err


def read_arrays(path, what):
    """All arrays of a region-complex or checkpoint ``.npz`` file (no pickle; numbers, the
    ``meta`` text, at most :data:`MAX_FILE_ENTRIES` entries counted from the headers before
    anything is read), or :class:`InvalidFileError` naming why it cannot be read."""
    try:
        return read_npz(path, f"polyrelu {what}", max_entries=MAX_FILE_ENTRIES, text=("meta",))
    except SizeLimitError as err:  # its message names --max-parameters, a network option
        raise SizeLimitError(f"{path}: its arrays declare more than {MAX_FILE_ENTRIES} entries "
                             f"(counted from their headers): not a polyrelu {what} file that "
                             "can be read") from err


def affine_piece_labels(W, b, edges, rtol=1e-9, batch=100_000):
    """Affine piece of each region: connected components of the edges whose two regions'
    maps agree (see :meth:`RegionComplex.affine_pieces`).

    Parameters
    ----------
    W : ndarray, shape (n, m, d);  b : ndarray, shape (n, m)
        The regions' affine maps.
    edges : ndarray of int, shape (E, 2)
        Adjacent regions; the map of ``edges[:, 0]`` sets the scale of ``rtol``.
    rtol : float
    batch : int
        Edges compared at once (bounds the memory of the comparison).

    Returns
    -------
    ndarray of int, shape (n,)
        Labels 0, 1, ...: equal for regions of one piece.

    Examples
    --------
    >>> W = np.array([[[1.0]], [[1.0]], [[2.0]]]); b = np.zeros((3, 1))
    >>> affine_piece_labels(W, b, np.array([[0, 1], [1, 2]])).tolist()
    [0, 0, 1]
    """
    same = np.zeros(len(edges), dtype=bool)
    for start in range(0, len(edges), batch):
        u, v = edges[start:start + batch].T
        scale = 1.0 + np.maximum(np.abs(W[u]).max(axis=(1, 2), initial=0),
                                 np.abs(b[u]).max(axis=1, initial=0))
        same[start:start + batch] = (
            (np.abs(W[u] - W[v]).max(axis=(1, 2), initial=0) <= rtol * scale)
            & (np.abs(b[u] - b[v]).max(axis=1, initial=0) <= rtol * scale))
    joined = edges[same]
    adjacency = coo_matrix((np.ones(len(joined)), (joined[:, 0], joined[:, 1])),
                           shape=(len(W), len(W)))
    return connected_components(adjacency, directed=False)[1]


def _edge_arrays(graph):
    """The graph's edges (E, 2), smaller id first, and their kinks (E,)."""
    edges = np.array(list(graph.edges), dtype=np.int64).reshape(-1, 2)
    kinks = np.array([graph.edges[e]["kink"] for e in map(tuple, edges)], dtype=np.int64)
    return np.sort(edges, axis=1), kinks


def write_complex(path, network, domain, region_arrays, edges, kinks, zero_tol, stats):
    """Write a region complex file from its arrays (``region_arrays`` as
    :func:`regions_to_arrays` gives them; ``edges`` (E, 2) and their ``kinks`` (E,)),
    atomically: to a temporary name beside ``path``, then renamed. As
    ``numpy.savez``, ``.npz`` is appended to a path without it."""
    path = os.fspath(path)
    path = path if path.endswith(".npz") else path + ".npz"
    arrays = {
        **region_arrays,
        **network_arrays(network),
        "edges": edges,
        "edge_kinks": kinks,
        "zero_tol": zero_tol,
        "domain_A": domain.A, "domain_b": domain.b,
        "domain_lower": domain.lower, "domain_upper": domain.upper,
        "domain_center": domain.center, "domain_radius": np.array(domain.radius),
    }
    arrays["meta"] = np.array(json.dumps({
        "format": FILE_FORMAT, "version": FILE_VERSION, "polyrelu_version": polyrelu_version(),
        "num_hidden": network.num_hidden, "layers": len(network.layers),
        "domain_kind": domain.kind,
        "layer_names": [[list(map(list, layer.names)), list(map(list, layer.window_names))]
                        for layer in network.layers],
        "options": stats.get("options") or dataclasses.asdict(Options()),
        "stats": stats,
        "network_sha256": network_fingerprint(network), "content_sha256": content_hash(arrays),
    }))
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as file:
            np.savez_compressed(file, **arrays)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


#: The most array entries a region-complex or checkpoint file may declare (2^31: 16 GB of
#: float64), checked from the headers before anything is allocated.
MAX_FILE_ENTRIES = 2 ** 31

_LAYOUT = ("units", "keep", "windows")


def regions_to_arrays(regions, d, m, num_hidden):
    """Plain arrays holding a list of regions (see :func:`regions_from_arrays`) of a network
    with ``d`` inputs, ``m`` outputs and ``num_hidden`` pattern slots."""
    facet_counts = [len(r.polytope.b) for r in regions]
    return {
        "ids": np.array([r.id for r in regions], dtype=np.int64),
        "patterns": np.array([r.pattern_bits for r in regions], dtype=np.uint8).reshape(
            len(regions), (num_hidden + 7) // 8),
        "facet_offsets": np.concatenate([[0], np.cumsum(facet_counts)]).astype(np.int64),
        "facet_A": _stack([r.polytope.A for r in regions], (0, d)),
        "facet_b": _stack([r.polytope.b for r in regions], (0,)),
        "facet_sources": _stack([r.polytope.sources for r in regions], (0,)).astype(np.int64),
        "interior_points": np.array([r.interior_point for r in regions]).reshape(-1, d),
        "radii": np.array([r.radius for r in regions], dtype=np.float64),
        "W_eff": np.array([r.W_eff for r in regions]).reshape(-1, m, d),
        "b_eff": np.array([r.b_eff for r in regions]).reshape(-1, m),
    }


def regions_from_arrays(data, num_hidden):
    """The list of :class:`Region` stored by :func:`regions_to_arrays`."""
    offsets = data["facet_offsets"]
    regions = []
    for i, region_id in enumerate(data["ids"]):
        rows = slice(offsets[i], offsets[i + 1])
        regions.append(Region(
            int(region_id), data["patterns"][i], num_hidden,
            HPolytope(data["facet_A"][rows], data["facet_b"][rows], data["facet_sources"][rows]),
            data["interior_points"][i], float(data["radii"][i]),
            data["W_eff"][i], data["b_eff"][i],
        ))
    return regions


def _stack(parts, empty_shape):
    return np.concatenate(parts) if parts else np.zeros(empty_shape)


def _from_arrays(data, expected_network):
    meta = read_meta(data, FILE_FORMAT, READ_VERSIONS)
    network = _network_from_arrays(data, meta, expected_network)
    domain = _domain_from_arrays(data, meta, network.input_dim)
    d, m, num_hidden = network.input_dim, network.output_dim, network.num_hidden
    check_region_arrays(data, d, m, num_hidden, len(domain.b))
    zero_tol = _zero_tol(data, meta, network, domain)
    regions = regions_from_arrays(data, num_hidden)
    check_regions(regions, network, domain, zero_tol)
    graph = _graph_from_arrays(data, regions, "edge_kinks" if meta["version"] >= 3
                               else "edge_neurons")
    stats = meta.get("stats")
    if not isinstance(stats, dict):
        raise InvalidFileError("the metadata holds no stats")
    return RegionComplex(network, domain, regions, graph, stats, zero_tol)


def _zero_tol(data, meta, network, domain):
    """The stored per-neuron zero tolerances, which must be those the options give."""
    zero_tol = data.get("zero_tol")
    if zero_tol is None or zero_tol.dtype.kind != "f" or zero_tol.shape != (network.num_hidden,):
        raise InvalidFileError("array 'zero_tol' is missing or malformed")
    try:
        options = Options(**meta["options"])
    except (KeyError, TypeError, ValueError, PolyreluError) as err:
        raise InvalidFileError(f"the metadata's options are missing or invalid ({err})") \
            from err
    expected = neuron_status(network, domain, options).zero_tol
    if not np.allclose(zero_tol, expected, rtol=1e-12, atol=0):
        raise InvalidFileError("the zero tolerances are not those of the network, domain and "
                               "options")
    return zero_tol


def _network_from_arrays(data, meta, expected):
    """The file's network, checked: its layers (version 2: weights and biases only), its
    fingerprint, the caller's network if given, the metadata's layer and slot counts."""
    layout = [k for k in data if k.rstrip("0123456789") in _LAYOUT and k[-1:].isdigit()]
    if meta["version"] < 3 and layout:
        raise InvalidFileError(f"the network's layers are inconsistent (a version 2 file "
                               f"has arrays W, b per layer, not {sorted(layout)[0]})")
    if any(not np.isin(data[k], (0, 1)).all() for k in layout if k.startswith("units")):
        raise InvalidFileError("a unit code is neither 0 (linear) nor 1 (ReLU)")
    network = _named(network_from_arrays(data, what="the network's layers"), meta)
    if meta.get("layers") != len(network.layers):
        raise InvalidFileError("the network's layers are missing or inconsistent")
    fingerprint = network_fingerprint(network)
    if meta.get("network_sha256") != fingerprint:
        raise InvalidFileError("the network's fingerprint does not match its weights")
    if expected is not None and network_fingerprint(expected) != fingerprint:
        raise InvalidFileError("the file holds the regions of another network than the given "
                               "one (fingerprints differ)")
    if meta.get("num_hidden") != network.num_hidden:
        raise InvalidFileError("the metadata's neuron count is not the network's")
    return network


def _named(network, meta):
    """``network`` with the provenance names of its layers from the metadata (version 3),
    for kink names; malformed names are refused."""
    if meta["version"] < 3:
        return network
    entries = meta.get("layer_names")
    if not isinstance(entries, list) or len(entries) != len(network.layers):
        raise InvalidFileError("the layers' names in the metadata are missing or malformed")
    layers = [dataclasses.replace(layer, names=names, window_names=window_names)
              for layer, (names, window_names) in zip(network.layers, map(_names_of, entries))]
    return Network.from_layers(layers)


def _names_of(entry):
    """Two tuples of ``(start, stop, text)`` from the JSON lists of one layer's names."""
    parts = entry if isinstance(entry, list) and len(entry) == 2 else None
    if parts is None or not all(isinstance(part, list) for part in parts) or not all(
            isinstance(n, list) and len(n) == 3 and isinstance(n[2], str) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in n[:2])
            for part in parts for n in part):
        raise InvalidFileError("the layers' names in the metadata are malformed (two lists "
                               "of [start, stop, text] per layer)")
    return tuple(tuple(tuple(n) for n in part) for part in parts)


def _domain_from_arrays(data, meta, dim):
    keys = ("domain_A", "domain_b", "domain_lower", "domain_upper", "domain_center",
            "domain_radius")
    if any(k not in data or data[k].dtype.kind != "f" for k in keys):
        raise InvalidFileError("the domain's arrays are missing or not floats")
    A, b = data["domain_A"], data["domain_b"]
    if A.ndim != 2 or A.shape[1] != dim or b.shape != (len(A),):
        raise InvalidFileError("the domain's constraint arrays have inconsistent shapes")
    if meta.get("domain_kind") == "box":
        domain = Domain.box(data["domain_lower"], data["domain_upper"])
        if not (np.array_equal(domain.A, A) and np.array_equal(domain.b, b)):
            raise InvalidFileError("the domain's rows are not those of its box")
        return domain
    return Domain(A, b, lower=data["domain_lower"], upper=data["domain_upper"],
                  center=data["domain_center"], radius=float(data["domain_radius"]),
                  kind=str(meta.get("domain_kind")))


def _graph_from_arrays(data, regions, kinks_key):
    """The adjacency graph, checked: edges between distinct existing regions, each once,
    each tagged with a kink across which the two regions are adjacent (see
    :func:`_shared_facet`: one LP per edge). ``kinks_key`` names the edges' kink array
    (``edge_neurons`` in version 2: for ReLU networks the kinks are the neurons)."""
    edges, kinks = data.get("edges"), data.get(kinks_key)
    if edges is None or kinks is None or edges.dtype.kind != "i" \
            or kinks.dtype.kind != "i" or edges.ndim != 2 or edges.shape[1:] != (2,) \
            or kinks.shape != (len(edges),):
        raise InvalidFileError("the edge arrays are missing or malformed")
    if len(edges) and (edges.min() < 0 or edges.max() >= len(regions)
                       or np.any(edges[:, 0] == edges[:, 1])):
        raise InvalidFileError("an edge joins no two distinct regions")
    graph = nx.Graph()
    graph.add_nodes_from(range(len(regions)))
    solver = LPSolver()
    for (u, v), kink in zip(edges.tolist(), kinks.tolist()):
        if graph.has_edge(u, v):
            raise InvalidFileError(f"edge {u}-{v} is listed twice")
        if not _shared_facet(regions[u], regions[v], kink, solver):
            raise InvalidFileError(f"edge {u}-{v}: the regions share no facet on kink {kink}")
        graph.add_edge(u, v, kink=kink)
    return graph


def _shared_facet(r, s, kink, solver):
    """Whether regions r and s are adjacent across ``kink``: a facet of r tagged
    ``kink`` is a facet of s seen from the other side (the same hyperplane; s may tag
    it with a coincident kink), and the two facets overlap in a (d-1)-dimensional set
    (one LP: the largest slack of both regions' other facets on that hyperplane must be
    positive; regions touching in a lower-dimensional set are not adjacent)."""
    P, Q = r.polytope, s.polytope
    scale = 1e-8 * (1.0 + max(np.abs(P.b).max(initial=0), np.abs(Q.b).max(initial=0)))
    for i in np.flatnonzero(P.sources == kink):
        for k in np.flatnonzero(Q.sources >= 0):
            if np.abs(P.A[i] + Q.A[k]).max() <= 1e-8 and abs(P.b[i] + Q.b[k]) <= scale:
                A = np.vstack([np.delete(P.A, i, 0), np.delete(Q.A, k, 0)])
                b = np.concatenate([np.delete(P.b, i), np.delete(Q.b, k)])
                result = solver.maximize(
                    np.eye(A.shape[1] + 1)[-1], np.column_stack([A, np.ones(len(b))]), b,
                    A_eq=np.append(P.A[i], 0.0)[None], b_eq=P.b[i:i + 1], upper=np.append(
                        np.full(A.shape[1], np.inf), 1.0))
                return result.status == "optimal" and result.value > 1e-4 * scale
    return False

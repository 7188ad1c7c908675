"""`Region` and `RegionComplex`: the exact result of an enumeration.

A *region* is a full-dimensional activation region: the closure of the set of
domain points whose activation pattern (neuron j active when its
pre-activation is > 0) is one fixed pattern, kept only if its Chebyshev radius
exceeds the tolerance of :class:`polyrelu.Options`. The network is affine on
it. Several adjacent regions may carry the same affine map; merging them gives
the *maximal affine pieces*, the other common definition of "linear region"
(:meth:`RegionComplex.affine_pieces`).
"""

import json
from dataclasses import dataclass

import networkx as nx
import numpy as np

from ..errors import InvalidFileError
from ..geometry.domain import Domain
from ..geometry.polytope import HPolytope
from ..network.model import Network

__all__ = ["Region", "RegionComplex", "pattern_key"]

FILE_FORMAT = "polyrelu-region-complex"
FILE_VERSION = 1


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
        The activation pattern, packed (``numpy.packbits``) over the N hidden neurons.
    num_hidden : int
    polytope : HPolytope
        Minimal H-representation: only facets, unit-norm rows, each tagged with
        the neuron (``>= 0``) or domain face (``-1 - f``) that creates it.
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
        positive (d-1)-volume, with attribute ``neuron`` (the global index of
        the hidden neuron whose hyperplane holds that facet).
    stats : dict
        How the result was obtained: ``lps`` (LPs solved), ``seconds``,
        ``thin_regions`` (patterns seen but below the radius tolerance), ...
    zero_tol : ndarray, shape (N,)
        Per-neuron magnitude below which a pre-activation map counts as
        identically zero (such neurons are canonically inactive).
    """

    def __init__(self, network, domain, regions, graph, stats, zero_tol):
        self.network, self.domain = network, domain
        self.regions, self.graph = list(regions), graph
        self.stats, self.zero_tol = dict(stats), zero_tol
        self._index = {region.key: region.id for region in self.regions}

    def __len__(self):
        return len(self.regions)

    def __iter__(self):
        return iter(self.regions)

    def __getitem__(self, index):
        return self.regions[index]

    def __repr__(self):
        return f"<RegionComplex: {len(self)} regions of {self.network} over {self.domain}>"

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
        same = nx.Graph()
        same.add_nodes_from(self.graph.nodes)
        for u, v in self.graph.edges:
            if _same_map(self.regions[u], self.regions[v], rtol):
                same.add_edge(u, v)
        return sorted(sorted(c) for c in nx.connected_components(same))

    def save(self, path):
        """Write the complex (network, domain, regions, graph, stats) to one ``.npz`` file.

        The file holds only numeric arrays and one JSON string; it loads with
        ``numpy.load(path, allow_pickle=False)``.
        """
        np.savez_compressed(path, **_to_arrays(self))

    @classmethod
    def load(cls, path):
        """Read a complex written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return _from_arrays({k: data[k] for k in data.files})
        except (OSError, ValueError, KeyError) as err:
            raise InvalidFileError(f"{path}: not a polyrelu region-complex file ({err})") from err


def _same_map(r, s, rtol):
    scale = 1.0 + max(np.abs(r.W_eff).max(initial=0), np.abs(r.b_eff).max(initial=0))
    return (
        np.abs(r.W_eff - s.W_eff).max(initial=0) <= rtol * scale
        and np.abs(r.b_eff - s.b_eff).max(initial=0) <= rtol * scale
    )


def _to_arrays(complex_):
    net, dom = complex_.network, complex_.domain
    edges = np.array(list(complex_.graph.edges), dtype=np.int64).reshape(-1, 2)
    neurons = np.array([complex_.graph.edges[e]["neuron"] for e in map(tuple, edges)],
                       dtype=np.int64)
    arrays = {
        "meta": np.array(json.dumps({
            "format": FILE_FORMAT, "version": FILE_VERSION, "num_hidden": net.num_hidden,
            "domain_kind": dom.kind, "stats": complex_.stats,
        })),
        **regions_to_arrays(complex_.regions, net.input_dim, net.output_dim),
        "edges": edges,
        "edge_neurons": neurons,
        "zero_tol": complex_.zero_tol,
        "domain_A": dom.A, "domain_b": dom.b,
        "domain_lower": dom.lower, "domain_upper": dom.upper,
        "domain_center": dom.center, "domain_radius": np.array(dom.radius),
    }
    for layer, (w, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"W{layer}"], arrays[f"b{layer}"] = w, b
    return arrays


def regions_to_arrays(regions, d, m):
    """Plain arrays holding a list of regions (see :func:`regions_from_arrays`)."""
    facet_counts = [len(r.polytope.b) for r in regions]
    return {
        "ids": np.array([r.id for r in regions], dtype=np.int64),
        "patterns": np.array([r.pattern_bits for r in regions], dtype=np.uint8).reshape(
            len(regions), -1),
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


def _from_arrays(data):
    meta = json.loads(str(data["meta"]))
    if meta.get("format") != FILE_FORMAT:
        raise KeyError("missing format tag")
    layers = sum(1 for k in data if k.startswith("W") and k[1:].isdigit())
    network = Network([data[f"W{i}"] for i in range(layers)],
                      [data[f"b{i}"] for i in range(layers)])
    domain = Domain(data["domain_A"], data["domain_b"], lower=data["domain_lower"],
                    upper=data["domain_upper"], center=data["domain_center"],
                    radius=float(data["domain_radius"]), kind=meta["domain_kind"])
    regions = regions_from_arrays(data, meta["num_hidden"])
    graph = nx.Graph()
    graph.add_nodes_from(range(len(regions)))
    for (u, v), neuron in zip(data["edges"], data["edge_neurons"]):
        graph.add_edge(int(u), int(v), neuron=int(neuron))
    return RegionComplex(network, domain, regions, graph, meta["stats"], data["zero_tol"])

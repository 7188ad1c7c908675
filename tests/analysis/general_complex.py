"""A RegionComplex of a general network from the LP brute force (tests/oracles.py): the
regions' rows from the oracle's loops, independent of the enumeration engines."""

import networkx as nx
import numpy as np

from oracles import general_brute_force, general_rows
from polyrelu.geometry.interval import neuron_status
from polyrelu.geometry.polytope import HPolytope
from polyrelu.options import Options
from polyrelu.regions.region import Region, RegionComplex


def brute_complex(network, domain):
    """A RegionComplex of the LP brute force's regions (rows from the oracle's loops, maps
    from the network): independent of the engines."""
    found = general_brute_force(network, domain.lower, domain.upper, 1e-7)
    regions = []
    for key, (centre, radius) in found.items():
        pattern = np.unpackbits(np.frombuffer(key, np.uint8), count=network.num_hidden)
        rows, rhs, _ = general_rows(network, pattern.astype(bool))
        A = np.vstack([np.reshape(rows, (-1, network.input_dim)), domain.A])
        b = np.concatenate([rhs, domain.b])
        norms = np.linalg.norm(A, axis=1)
        keep = norms > 1e-12
        polytope = HPolytope(A[keep] / norms[keep, None], b[keep] / norms[keep],
                             np.full(int(keep.sum()), -1))
        maps = network.affine_maps(pattern.astype(bool))
        regions.append(Region(len(regions), np.frombuffer(key, np.uint8).copy(),
                              network.num_hidden, polytope, centre, radius, maps.W_eff,
                              maps.b_eff))
    graph = nx.Graph()
    graph.add_nodes_from(range(len(regions)))
    zero_tol = neuron_status(network, domain, Options()).zero_tol
    return RegionComplex(network, domain, regions, graph, {}, zero_tol)

"""Parallel and distributed enumeration: shard the domain, walk each shard, merge by pattern.

The domain is cut into slabs along its widest coordinate. Each shard is walked
independently (worker processes, or a Dask cluster). A region that meets a cut
appears in several shards: the pieces are merged by activation pattern and the
region is rebuilt over the whole domain (facets, Chebyshev ball, and the facet
crossings that give its edges). Regions inside one shard are kept as found. The
result has exactly the regions, facets and edges of a single-process walk.
"""

import dataclasses
import time
from concurrent.futures import ProcessPoolExecutor

import networkx as nx
import numpy as np

from .domain import Domain
from .errors import PolyreluError
from .options import Options
from .region import RegionComplex, pattern_key
from .walk import _Walk, enumerate_regions

__all__ = ["enumerate_parallel", "split_domain"]


def split_domain(domain, count):
    """``count`` slabs of ``domain`` along its widest coordinate, as Domains.

    Each shard's rows are the domain's rows followed by its cut rows, so shard
    face ``f`` is domain face ``f`` for ``f < len(domain.b)`` and a cut otherwise.
    """
    axis = int(np.argmax(domain.upper - domain.lower))
    cuts = np.linspace(domain.lower[axis], domain.upper[axis], count + 1)
    unit = np.eye(domain.dim)[axis]
    shards = []
    for k in range(count):
        rows, rhs = [domain.A], [domain.b]
        if k > 0:
            rows.append(-unit[None])
            rhs.append([-cuts[k]])
        if k < count - 1:
            rows.append(unit[None])
            rhs.append([cuts[k + 1]])
        shards.append(Domain.polytope(np.vstack(rows), np.concatenate(rhs)))
    return shards


def enumerate_parallel(network, domain, *, jobs=2, shards=None, scheduler=None, options=None):
    """Enumerate regions with ``jobs`` worker processes (or on a Dask cluster).

    Parameters
    ----------
    network, domain, options
        As for :func:`polyrelu.enumerate_regions`.
    jobs : int
        Worker processes (ignored with ``scheduler``).
    shards : int, optional
        Number of slabs (default: ``jobs``, or twice the cluster's workers).
    scheduler : str or dask.distributed.Client, optional
        Address of a Dask scheduler (``"tcp://host:8786"``) or a client.

    Returns
    -------
    RegionComplex
        The same regions, facets and edges as the single-process walk; regions
        are numbered in order of their packed pattern.
    """
    options = options or Options()
    start = time.perf_counter()
    if scheduler is not None:
        results = _run_on_dask(network, domain, options, scheduler, shards)
    else:
        if jobs < 1:
            raise PolyreluError(f"jobs must be at least 1, got {jobs}")
        parts = split_domain(domain, shards or jobs)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_walk_shard, [network] * len(parts), parts,
                                    [options] * len(parts)))
    merged = _merge(network, domain, options, results)
    merged.stats["seconds"] = time.perf_counter() - start
    return merged


def _walk_shard(network, shard, options):
    return enumerate_regions(network, shard, options=options)


def _run_on_dask(network, domain, options, scheduler, shards):
    from dask.distributed import Client

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        workers = max(len(client.scheduler_info()["workers"]), 1)
        parts = split_domain(domain, shards or 2 * workers)
        futures = client.map(_walk_shard, [network] * len(parts), parts,
                             [options] * len(parts), pure=False)
        return client.gather(futures)
    finally:
        if client is not scheduler:
            client.close()


def _merge(network, domain, options, shard_complexes):
    walk = _Walk(network, domain, options)
    faces = len(domain.b)
    found, edges = {}, set()
    for shard in shard_complexes:
        keys = []
        for region in shard:
            pattern, maps, _ = network.canonical_pattern(
                region.pattern, walk.zero_tol, domain.lower, domain.upper)
            key = pattern_key(pattern)
            keys.append(key)
            meets_cut = bool(np.any(region.polytope.sources < -faces))
            if key not in found:
                found[key] = (region, meets_cut, pattern, maps)
        edges.update((keys[u], keys[v], n) for u, v, n in shard.graph.edges(data="neuron"))
    regions = {}
    for key, (region, meets_cut, pattern, maps) in found.items():
        if not meets_cut:
            regions[key] = region
            continue
        built = walk._region(0, pattern, maps, region.interior_point)
        if built is None:
            continue
        regions[key], facet_points = built
        near = walk.min_radius * np.linalg.norm(maps.pre_A, axis=1)
        for neuron, point, raw in walk._crossing_points(regions[key], facet_points, near):
            other, _, _ = network.canonical_pattern(raw, walk.zero_tol, domain.lower,
                                                    domain.upper)
            edges.add((key, pattern_key(other), neuron))
    order = sorted(regions)
    ids = {key: i for i, key in enumerate(order)}
    final = [dataclasses.replace(regions[key], id=ids[key]) for key in order]
    graph = nx.Graph()
    graph.add_nodes_from(range(len(final)))
    for u, v, neuron in edges:
        if u in ids and v in ids:
            graph.add_edge(ids[u], ids[v], neuron=int(neuron))
    lps = sum(shard.stats["lps"] for shard in shard_complexes) + walk.solver.count
    stats = {"lps": lps, "regions": len(final), "edges": graph.number_of_edges(),
             "shards": len(shard_complexes), "rebuilt_at_cuts":
             sum(1 for _, meets_cut, _, _ in found.values() if meets_cut),
             "thin_regions": walk.stats["thin_regions"]}
    return RegionComplex(network, domain, final, graph, stats, walk.zero_tol)

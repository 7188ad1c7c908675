"""Sharded runs (worker processes, Dask) give exactly the single-process result."""

import numpy as np
import pytest

from oracles import random_network
from polyrelu import Domain, Network, enumerate_regions
from polyrelu.crosscheck import compare_complexes
from polyrelu.parallel import enumerate_parallel, split_domain


def _edge_keys(complex_):
    return {(frozenset((complex_[u].key, complex_[v].key)), n)
            for u, v, n in complex_.graph.edges(data="neuron")}


def _assert_same(single, sharded):
    report = compare_complexes(single, sharded)
    assert report.agree, report
    assert _edge_keys(single) == _edge_keys(sharded)


@pytest.fixture(scope="module")
def case():
    weights, biases = random_network((3, 10, 8, 2), np.random.default_rng(60))
    network = Network(weights, biases)
    domain = Domain.box([-1.0, -2.0, -1.0], [1.0, 2.0, 0.5])
    return network, domain, enumerate_regions(network, domain)


@pytest.mark.parametrize("jobs,shards", [(1, 1), (2, 2), (2, 5)])
def test_worker_processes_give_the_single_process_result(case, jobs, shards):
    network, domain, single = case
    _assert_same(single, enumerate_parallel(network, domain, jobs=jobs, shards=shards))


def test_a_neuron_hyperplane_on_a_cut_is_handled():
    # the tent map's breakpoints 0.25, 0.5, 0.75 fall exactly on the slab cuts
    from test_walk import tent_network

    network, domain = tent_network(3), Domain.box([0.0], [1.0])
    _assert_same(enumerate_regions(network, domain),
                 enumerate_parallel(network, domain, jobs=2, shards=4))


def test_slabs_tile_the_domain():
    domain = Domain.polytope([[-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]], [1.0, 1.0, 1.0])
    shards = split_domain(domain, 3)
    points = domain.sample(3000, 0)
    assert np.all(np.array([shard.contains(points) for shard in shards]).sum(axis=0) >= 1)
    areas = [shard.as_polytope().volume(shard.center) for shard in shards]
    assert sum(areas) == pytest.approx(4.5, rel=1e-12)


def test_dask_local_cluster_gives_the_single_process_result(case):
    distributed = pytest.importorskip("dask.distributed")
    network, domain, single = case
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        _assert_same(single, enumerate_parallel(network, domain, scheduler=client))

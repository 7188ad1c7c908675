"""Parallel runs (worker processes, Dask) give exactly the single-process result."""

import numpy as np
import pytest

from oracles import random_network
from polyrelu import Domain, Network, enumerate_regions
from polyrelu.crosscheck import compare_complexes
from polyrelu.parallel import enumerate_parallel


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


@pytest.mark.parametrize("jobs", [1, 2])
def test_worker_processes_give_the_single_process_result(case, jobs):
    network, domain, single = case
    _assert_same(single, enumerate_parallel(network, domain, jobs=jobs))


def test_parallel_tent_map_and_checkpoint(tmp_path):
    from test_walk import tent_network

    network, domain = tent_network(5), Domain.box([0.0], [1.0])
    first = enumerate_parallel(network, domain, jobs=2, checkpoint=tmp_path / "c")
    _assert_same(enumerate_regions(network, domain), first)
    again = enumerate_parallel(network, domain, jobs=2, checkpoint=tmp_path / "c")
    assert again.stats["resumed_regions"] == 32 and again.stats["lps"] == 0


def test_dask_local_cluster_gives_the_single_process_result(case):
    distributed = pytest.importorskip("dask.distributed")
    network, domain, single = case
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        _assert_same(single, enumerate_parallel(network, domain, scheduler=client))

"""Parallel runs (worker processes, Dask) give exactly the single-process result; the walk
is the oracle of the parallel count."""

import numpy as np
import pytest

from oracles import assert_same_complex, random_network
from polyrelu import Domain, Network, enumerate_regions
from polyrelu.regions.parallel import count_parallel, enumerate_parallel


@pytest.fixture(scope="module")
def case():
    weights, biases = random_network((3, 10, 8, 2), np.random.default_rng(60))
    network = Network(weights, biases)
    domain = Domain.box([-1.0, -2.0, -1.0], [1.0, 2.0, 0.5])
    return network, domain, enumerate_regions(network, domain)


@pytest.mark.parametrize("jobs", [1, 2])
def test_worker_processes_give_the_single_process_result(case, jobs):
    network, domain, single = case
    assert_same_complex(single, enumerate_parallel(network, domain, jobs=jobs))


def test_parallel_tent_map_and_checkpoint(tmp_path):
    from networks import tent_network

    network, domain = tent_network(5), Domain.box([0.0], [1.0])
    first = enumerate_parallel(network, domain, jobs=2, checkpoint=tmp_path / "c")
    assert_same_complex(enumerate_regions(network, domain), first)
    again = enumerate_parallel(network, domain, jobs=2, checkpoint=tmp_path / "c")
    assert again.stats["resumed_regions"] == 32 and again.stats["lps"] == 0


def test_dask_local_cluster_gives_the_single_process_result(case):
    distributed = pytest.importorskip("dask.distributed")
    network, domain, single = case
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert_same_complex(single, enumerate_parallel(network, domain, scheduler=client))
        count, stats = count_parallel(network, domain, scheduler=client)
        assert count == len(single) and stats["units"] >= 2


@pytest.mark.parametrize("sizes,seed",
                         [((3, 10, 8, 2), 61), ((2, 6, 6, 6, 1), 62), ((4, 12, 1), 63)])
def test_parallel_count_equals_the_walk(sizes, seed):
    network = Network(*random_network(sizes, np.random.default_rng(seed)))
    domain = Domain.box(-np.ones(sizes[0]), np.ones(sizes[0]))
    walked = len(enumerate_regions(network, domain))
    count, stats = count_parallel(network, domain, jobs=2)
    assert count == walked > 10 and stats["units"] >= 2

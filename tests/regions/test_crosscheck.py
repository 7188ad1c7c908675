"""The two enumerators agree region for region, on random and degenerate networks."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from networks import degenerate_networks

from oracles import random_network
from polyrelu import Domain, Network, enumerate_regions
from polyrelu.regions.crosscheck import compare_complexes, cross_check
from polyrelu.regions.splitting import count_regions, enumerate_by_splitting


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(degenerate_networks())
def test_walk_and_splitting_find_identical_regions(network):
    domain = Domain.box(-np.ones(network.input_dim), np.ones(network.input_dim))
    report = cross_check(network, domain)
    assert report.agree, report
    count, _ = count_regions(network, domain)
    assert count == report.first_count


@pytest.mark.parametrize("sizes,seed", [((2, 8, 8, 2), 0), ((3, 6, 6, 6, 1), 1),
                                        ((4, 8, 6, 1), 2), ((1, 8, 8, 8, 1), 3)])
def test_random_networks_agree(sizes, seed):
    weights, biases = random_network(sizes, np.random.default_rng(seed))
    network = Network(weights, biases)
    domain = Domain.box(-np.ones(sizes[0]), np.ones(sizes[0]))
    report = cross_check(network, domain)
    assert report.agree and report.first_count == report.second_count > 1


def test_acasxu_sub_box_agrees(acasxu_dir):
    from polyrelu.network.loaders import load_network

    network = load_network(acasxu_dir / "ACASXU_run2a_1_1_batch_2000.onnx")
    domain = Domain.box([0.6, -0.1, -0.1, 0.45, -0.5], [0.62, 0.1, 0.0, 0.47, -0.49])
    report = cross_check(network, domain)
    assert report.agree and report.first_count > 20


def test_a_missing_region_is_reported():
    weights, biases = random_network((2, 5, 4, 1), np.random.default_rng(5))
    network = Network(weights, biases)
    domain = Domain.box(-np.ones(2), np.ones(2))
    walked = enumerate_regions(network, domain)
    split = enumerate_by_splitting(network, domain)
    removed = split.regions.pop(3)
    report = compare_complexes(walked, split)
    assert not report.agree and len(report.only_in_first) == 1
    assert walked.locate(report.only_in_first)[0] == walked.region_id(removed.pattern)

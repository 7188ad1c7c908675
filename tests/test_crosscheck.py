"""The two enumerators agree region for region, on random and degenerate networks."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracles import random_network
from polyrelu import Domain, Network, enumerate_regions
from polyrelu.crosscheck import compare_complexes, cross_check
from polyrelu.splitting import count_regions, enumerate_by_splitting


@st.composite
def degenerate_networks(draw):
    """Small networks with integer-ish weights (coincident hyperplanes, degenerate vertices),
    duplicated neurons, zero rows and dead neurons."""
    d = draw(st.integers(1, 4))
    widths = draw(st.lists(st.integers(1, 8), min_size=1, max_size=3))
    sizes = [d, *widths, 1]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    integer = draw(st.booleans())
    weights, biases = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        if integer:
            W = rng.integers(-2, 3, size=(n_out, n_in)).astype(float)
            b = rng.integers(-2, 3, size=n_out) / 2.0
        else:
            W = rng.normal(size=(n_out, n_in))
            b = rng.normal(size=n_out) * 0.5
        if n_out > 1 and draw(st.booleans()):  # a duplicated (positively rescaled) neuron
            i, j = rng.choice(n_out, 2, replace=False)
            scale = draw(st.sampled_from([1.0, 2.0, 0.5]))
            W[j], b[j] = W[i] * scale, b[i] * scale
        if draw(st.booleans()):  # a zero row
            k = rng.integers(n_out)
            W[k], b[k] = 0.0, 0.0
        if draw(st.booleans()):  # a dead neuron
            k = rng.integers(n_out)
            b[k] = -100.0
        weights.append(W)
        biases.append(b)
    return Network(weights, biases)


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
    from polyrelu.loaders import load_network

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

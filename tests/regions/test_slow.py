"""Exhaustive checks, excluded from CI's default run: ``python3 -m pytest -m slow``."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from networks import degenerate_networks

from oracles import brute_force_regions, random_network
from polyrelu import Domain, Network, enumerate_regions
from polyrelu.regions.crosscheck import cross_check

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("sizes,seed", [((2, 7, 7, 1), 0), ((3, 6, 6, 2), 1), ((4, 7, 6, 1), 2),
                                        ((2, 5, 4, 4, 1), 3)])
def test_bigger_networks_against_brute_force(sizes, seed):
    weights, biases = random_network(sizes, np.random.default_rng(1000 + seed))
    d = sizes[0]
    lo, hi = -np.ones(d), np.ones(d)
    walked = enumerate_regions(Network(weights, biases), Domain.box(lo, hi))
    truth = brute_force_regions(weights, biases, lo, hi, min_radius=1e-9 * 2 * math.sqrt(d))
    assert {r.key for r in walked} == set(truth)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(degenerate_networks())
def test_many_degenerate_networks_cross_check(network):
    domain = Domain.box(-np.ones(network.input_dim), np.ones(network.input_dim))
    assert cross_check(network, domain).agree

"""The walk beyond qhull's dimensions (8 to 64 inputs): the same complex as the splitting
enumerator, and every region's facets those of an LP oracle (scipy's linprog on the rows
of the region's pattern, built by plain loops)."""

import numpy as np
import pytest

from oracles import facets_by_linprog, pattern_polytope, random_network
from polyrelu import Domain, Network, Options, enumerate_regions
from polyrelu.regions.crosscheck import cross_check
from polyrelu.regions.splitting import count_regions


def problem(sizes, half):
    weights, biases = random_network(sizes, np.random.default_rng(sizes[0]))
    d = sizes[0]
    return weights, biases, Domain.box(-half * np.ones(d), half * np.ones(d))


def assert_facets_match_oracle(weights, biases, domain, walked, sample):
    """The facets (unit rows) of every region, or of ``sample`` regions spread over the
    complex, are the oracle's facets of its pattern's rows."""
    min_radius = walked.stats["options"]["min_radius_rel"] * domain.diameter
    step = 1 if sample is None else max(1, len(walked) // sample)
    for region in list(walked)[::step]:
        A, b, _ = pattern_polytope(weights, biases, region.pattern, domain.lower, domain.upper)
        norms = np.linalg.norm(A, axis=1)
        A, b = A / norms[:, None], b / norms
        rows, _ = facets_by_linprog(A, b, min_radius)
        expected = np.hstack([A[rows], b[rows, None]])
        found = np.hstack([region.polytope.A, region.polytope.b[:, None]])
        assert len(found) == len(expected), region.id
        distance = np.abs(found[:, None, :] - expected[None, :, :]).max(axis=2)
        assert distance.min(axis=1).max() < 1e-7, region.id


def check(sizes, half, options=None, sample=None):
    weights, biases, domain = problem(sizes, half)
    network = Network(weights, biases)
    walked = enumerate_regions(network, domain, options=options)
    report = cross_check(network, domain, walked=walked)
    assert report.agree, report
    assert count_regions(network, domain)[0] == len(walked) > 10
    assert walked.stats["one_sided_edges"] == 0
    assert_facets_match_oracle(weights, biases, domain, walked, sample)
    return walked


@pytest.mark.parametrize("sizes,half", [((8, 10, 6, 2), 0.1), ((12, 8, 6, 2), 0.1),
                                        ((16, 8, 6, 2), 0.1), ((64, 8, 6, 2), 0.02)])
def test_walk_agrees_with_splitting_and_the_lp_oracle(sizes, half):
    check(sizes, half, sample=4 if sizes[0] == 64 else 8)


def test_rays_in_eight_dimensions_where_auto_takes_qhull():
    qhull = check((8, 10, 6, 2), 0.1, sample=8)
    rays = check((8, 10, 6, 2), 0.1, Options(facet_method="lp"), sample=8)
    assert qhull.stats["lps"] < rays.stats["lps"]  # qhull needs only the ball LPs


@pytest.mark.slow
@pytest.mark.parametrize("sizes,half", [((8, 10, 6, 2), 0.2), ((12, 8, 6, 2), 0.2),
                                        ((16, 8, 6, 2), 0.2), ((64, 8, 6, 2), 0.1)])
def test_larger_walks_agree(sizes, half):
    check(sizes, half, Options(facet_method="lp"), sample=40)

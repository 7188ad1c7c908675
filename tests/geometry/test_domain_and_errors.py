"""Bad input gets a clear error naming the problem, never a deep traceback."""

import numpy as np
import pytest

from polyrelu import Domain, InvalidDomainError, Network, enumerate_regions


@pytest.mark.parametrize("A,b,message", [
    ([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], [1.0, -2.0, 1.0, 1.0], "empty"),
    ([[1.0, 0.0], [0.0, 1.0]], [1.0, 1.0], "unbounded"),
    ([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], [1.0, -1.0, 1.0, 1.0],
     "not full-dimensional"),
    ([[1.0, 0.0], [0.0, 0.0]], [1.0, 1.0], "row 1 of A is zero"),
    ([[1.0, 0.0]], [1.0, 2.0], "shape"),
    ([[np.inf, 0.0]], [1.0], "non-finite"),
])
def test_bad_polytope_domains_are_refused(A, b, message):
    with pytest.raises(InvalidDomainError, match=message):
        Domain.polytope(A, b)


@pytest.mark.parametrize("lo,hi,message", [
    ([0.0, 1.0], [1.0, 1.0], "dimension 1"),
    ([0.0], [1.0, 2.0], "different lengths"),
    ([np.nan], [1.0], "non-finite"),
    ([], [], "empty"),
])
def test_bad_boxes_are_refused(lo, hi, message):
    with pytest.raises(InvalidDomainError, match=message):
        Domain.box(lo, hi)


def test_polytope_domain_bounding_box_and_centre():
    triangle = Domain.polytope([[-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(triangle.lower, [0, 0], atol=1e-12)
    np.testing.assert_allclose(triangle.upper, [1, 1], atol=1e-12)
    assert triangle.radius == pytest.approx(1 / (2 + np.sqrt(2)), rel=1e-9)


def test_domain_dimension_mismatch_is_refused():
    network = Network([np.ones((3, 2)), np.ones((1, 3))], [np.zeros(3), np.zeros(1)])
    with pytest.raises(InvalidDomainError, match="dimension 3 but the network takes 2"):
        enumerate_regions(network, Domain.box([0, 0, 0], [1, 1, 1]))

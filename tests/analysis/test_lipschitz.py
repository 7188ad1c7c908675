"""Exact Lipschitz constants against closed forms, sampling and sound upper bounds."""

import numpy as np
import pytest
from networks import tent_network

from oracles import random_network
from polyrelu import Domain, Network, PolyreluError
from polyrelu.analysis.atoms import layer_stability, region_atoms
from polyrelu.analysis.lipschitz import check_certificate, lipschitz, local_lipschitz
from polyrelu.analysis.lipschitz_bounds import (
    lipsdp,
    norm_product,
    pattern_aware_product,
    sampled_lower_bound,
)

NORMS = [1, 2, np.inf]


def _fd_jacobian(network, x, h=1e-6):
    """Central finite differences of the forward pass (independent of the region maps)."""
    d = x.size
    steps = np.eye(d) * h
    return ((network.forward(x + steps) - network.forward(x - steps)) / (2 * h)).T


def _norm(J, norm):
    if norm == 2:
        return np.linalg.norm(J, 2)
    return np.linalg.norm(J, 1 if norm == 1 else np.inf)


@pytest.mark.parametrize("norm", NORMS)
def test_absolute_value(norm):
    absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    result = lipschitz(absolute, Domain.box([-1], [1]), norm)
    assert result.value == 1.0
    assert norm_product(absolute, norm, np.eye(1)) == pytest.approx(2.0, rel=1e-15)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_tent_map(k):
    result = lipschitz(tent_network(k), Domain.box([0.0], [1.0]), 2)
    assert result.value == 2.0**k
    assert result.exact_lower <= 2.0**k <= result.exact_upper


@pytest.mark.parametrize("norm", NORMS)
def test_linear_networks(norm):
    rng = np.random.default_rng(1)
    W0, W1 = rng.normal(size=(4, 3)), rng.normal(size=(2, 4))
    # no hidden layer, and a hidden layer that is active on the whole box
    direct = lipschitz(Network([W1 @ W0], [np.zeros(2)]), Domain.box(-np.ones(3), np.ones(3)),
                       norm)
    active = Network([W0, W1], [np.full(4, 100.0), np.zeros(2)])
    through_relu = lipschitz(active, Domain.box(-np.ones(3), np.ones(3)), norm)
    expected = _norm(W1 @ W0, norm)
    assert direct.value == pytest.approx(expected, rel=1e-12)
    assert through_relu.value == pytest.approx(expected, rel=1e-12)
    assert len(through_relu.complex) == 1


@pytest.mark.parametrize("seed", range(4))
def test_one_dimensional_exact_equals_densest_sampling(seed):
    weights, biases = random_network((1, 8, 8, 1), np.random.default_rng(seed))
    network = Network(weights, biases)
    result = lipschitz(network, Domain.box([-2.0], [2.0]), 2)
    # breakpoints located independently: pattern changes on a fine grid, then bisection
    grid = np.linspace(-2, 2, 200_001)
    patterns = network.activation_pattern(grid[:, None])
    change = np.flatnonzero(np.any(patterns[1:] != patterns[:-1], axis=1))
    breaks = []
    for i in change:
        lo, hi = grid[i], grid[i + 1]
        for _ in range(60):
            mid = (lo + hi) / 2
            same = np.array_equal(network.activation_pattern([[mid]])[0], patterns[i])
            lo, hi = (mid, hi) if same else (lo, mid)
        breaks.append(lo)
    knots = np.array([-2.0] + breaks + [2.0])
    values = network.forward(knots[:, None])[:, 0]
    slopes = np.abs(np.diff(values) / np.diff(knots))
    wide = np.diff(knots) > 1e-6  # slopes over tiny gaps carry rounding error
    assert result.value == pytest.approx(slopes[wide].max(), rel=1e-9, abs=0)
    assert np.all(slopes[wide] <= result.value * (1 + 1e-9))


@pytest.mark.parametrize("d", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("norm", NORMS)
def test_exact_exceeds_every_sampled_jacobian(d, norm):
    rng = np.random.default_rng(10 + d)
    weights, biases = random_network((d, 8, 6, 2), rng)
    network = Network(weights, biases)
    domain = Domain.box(-np.ones(d), np.ones(d))
    result = lipschitz(network, domain, norm)
    check_certificate(result)
    points = domain.sample(300, rng)
    sampled = max(_norm(_fd_jacobian(network, x), norm) for x in points)
    assert sampled <= result.value * (1 + 1e-6)
    witness_radius = result.complex[result.region].radius
    witness_norm = _norm(_fd_jacobian(network, result.witness, h=1e-6 * witness_radius), norm)
    assert witness_norm == pytest.approx(result.value, rel=1e-5)
    assert result.witness_pattern_exact
    assert result.exact_lower <= result.value * (1 + 1e-15)
    assert result.value <= result.exact_upper * (1 + 1e-15)


@pytest.mark.parametrize("seed", range(20))
def test_upper_bounds_are_above_and_lower_bounds_below(seed):
    rng = np.random.default_rng(200 + seed)
    d = int(rng.integers(1, 4))
    sizes = (d, *rng.integers(2, 7, size=int(rng.integers(1, 3))), int(rng.integers(1, 3)))
    weights, biases = random_network(sizes, rng)
    network = Network(weights, biases)
    domain = Domain.box(-np.ones(d), np.ones(d))
    C = np.eye(network.output_dim)
    for norm in NORMS:
        result = lipschitz(network, domain, norm)
        exact, complex_ = result.value, result.complex
        assert norm_product(network, norm, C) >= exact * (1 - 1e-12)
        assert pattern_aware_product(complex_, norm, C) >= exact * (1 - 1e-12)
        assert sampled_lower_bound(network, domain, norm, C, samples=200, steps=20)[0] <= \
            exact * (1 + 1e-12)
    exact2 = lipschitz(network, domain, 2).value
    assert lipsdp(network, C) >= exact2 * (1 - 1e-5), "LipSDP below the exact value"


def test_output_component_and_functional():
    weights, biases = random_network((2, 6, 5, 3), np.random.default_rng(3))
    network = Network(weights, biases)
    domain = Domain.box(-np.ones(2), np.ones(2))
    by_index = lipschitz(network, domain, 2, output=1)
    by_functional = lipschitz(network, domain, 2, functional=[0.0, 1.0, 0.0],
                              complex_=by_index.complex)
    assert by_index.value == by_functional.value
    rows = np.array([r.W_eff[1] for r in by_index.complex])
    assert by_index.value == pytest.approx(np.linalg.norm(rows, axis=1).max(), rel=1e-14)
    with pytest.raises(PolyreluError, match="out of range"):
        lipschitz(network, domain, 2, output=3)
    with pytest.raises(PolyreluError, match="norm must be"):
        lipschitz(network, domain, 3)


def test_local_lipschitz_on_a_box_and_an_l1_ball():
    weights, biases = random_network((2, 6, 5, 1), np.random.default_rng(4))
    network = Network(weights, biases)
    centre = np.array([0.2, -0.1])
    box = local_lipschitz(network, centre, 0.3, 2, ball="inf")
    direct = lipschitz(network, Domain.box(centre - 0.3, centre + 0.3), 2)
    assert box.value == direct.value
    diamond = local_lipschitz(network, centre, 0.3, 2, ball="1")
    assert sum(r.volume() for r in diamond.complex) == pytest.approx(2 * 0.3**2, rel=1e-9)
    assert diamond.value <= box.value * (1 + 1e-12)


def test_corrupted_certificate_is_rejected():
    weights, biases = random_network((2, 5, 1), np.random.default_rng(5))
    result = lipschitz(Network(weights, biases), Domain.box(-np.ones(2), np.ones(2)), 2)
    result.per_region[0] += 0.01
    with pytest.raises(PolyreluError, match="region 0"):
        check_certificate(result)


def test_region_atoms_bias_parts_and_layer_norms():
    weights, biases = random_network((3, 5, 4, 2), np.random.default_rng(6))
    network = Network(weights, biases)
    pattern = network.activation_pattern(np.array([[0.1, -0.2, 0.3]]))[0]
    atoms = region_atoms(network, pattern)
    maps = network.affine_maps(pattern)
    np.testing.assert_allclose(atoms.W_eff, maps.W_eff, atol=1e-14)
    np.testing.assert_allclose(atoms.bias_parts.sum(axis=0), maps.b_eff, atol=1e-14)
    for layer in range(3):  # beta_m = b_eff of the network with only layer m's bias kept
        only = [b if i == layer else np.zeros_like(b) for i, b in enumerate(biases)]
        np.testing.assert_allclose(atoms.bias_parts[layer],
                                   Network(weights, only).affine_maps(pattern).b_eff, atol=1e-14)
    np.testing.assert_allclose(atoms.singular_values,
                               np.linalg.svd(maps.W_eff, compute_uv=False), atol=1e-14)
    mask = pattern[:5].astype(float)
    assert atoms.layer_norms[0] == pytest.approx(np.linalg.norm(np.diag(mask) @ weights[0], 2))


def test_layer_stability_finds_the_worst_layer():
    weights, biases = random_network((2, 6, 6, 1), np.random.default_rng(7))
    scaled = [w / (1.01 * np.linalg.norm(w, 2)) for w in weights]
    from polyrelu import enumerate_regions
    complex_ = enumerate_regions(Network(scaled, biases), Domain.box(-np.ones(2), np.ones(2)))
    report = layer_stability(complex_)
    assert report.stable and report.worst_value <= 1 / 1.01 + 1e-12
    scaled[1] = scaled[1] * 3
    complex_ = enumerate_regions(Network(scaled, biases), Domain.box(-np.ones(2), np.ones(2)))
    report = layer_stability(complex_)
    assert not report.stable and report.worst_layer == 1
    assert report.worst_value == pytest.approx(report.norms.max())

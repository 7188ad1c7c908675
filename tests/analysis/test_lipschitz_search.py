"""The branch-and-bound Lipschitz constant against full enumeration, brute force over
patterns, finite differences and closed forms."""

import numpy as np
import pytest
from deadlines import ChecksDeadline
from networks import mixed_network, residual_pool_network, tent_network
from scipy.optimize import linprog

from oracles import brute_force_regions, general_brute_force, random_network
from polyrelu import Domain, Network, PolyreluError, TimeLimitError, enumerate_regions
from polyrelu.analysis.lipschitz import lipschitz, operator_norms
from polyrelu.analysis.lipschitz_search import jacobian_bound, lipschitz_search, output_maximum
from polyrelu.geometry.symbolic import linear_bounds_batch
from polyrelu.network.lowering import GraphBuilder

NORMS = [1, 2, np.inf]


def fd_jacobian(network, x, h):
    """Central finite differences of the forward pass."""
    steps = np.eye(x.size) * h
    return ((network.forward(x + steps) - network.forward(x - steps)) / (2 * h)).T


def enumerated_values(network, domain, norms=NORMS):
    """The largest ``||W_eff||`` over the walk's regions, per norm."""
    W = np.array([region.W_eff for region in enumerate_regions(network, domain)])
    return {norm: float(operator_norms(W, norm).max()) for norm in norms}


def random_case(seed):
    rng = np.random.default_rng(1000 + seed)
    d = int(rng.integers(1, 7))
    hidden = rng.integers(2, 7 if d < 5 else 5, size=int(rng.integers(1, 4)))
    network = Network(*random_network((d, *hidden, int(rng.integers(1, 3))), rng))
    return network, Domain.box(-np.ones(d), np.ones(d))


@pytest.mark.parametrize("seed", [pytest.param(s, marks=pytest.mark.slow) if s >= 8 else s
                                  for s in range(30)])
def test_equals_full_enumeration_on_random_networks(seed):
    network, domain = random_case(seed)
    expected = enumerated_values(network, domain)
    for norm in NORMS:
        result = lipschitz_search(network, domain, norm)
        assert result.value == pytest.approx(expected[norm], rel=1e-12)
        assert result.exact_lower <= result.value * (1 + 1e-15)
        assert result.value <= result.exact_upper * (1 + 1e-15)
        assert result.witness_pattern_exact
        assert result.polytope.contains(result.witness[None], tol=0.0).all()


@pytest.mark.parametrize("seed", range(3))
def test_equals_the_brute_force_over_all_patterns(seed):
    weights, biases = random_network((2, 5, 4, 2), np.random.default_rng(50 + seed))
    domain = Domain.box(-np.ones(2), np.ones(2))
    found = brute_force_regions(weights, biases, domain.lower, domain.upper, 1e-7)
    W = np.array([W_eff for _, _, W_eff, _ in found.values()])
    for norm in NORMS:
        value = lipschitz_search(Network(weights, biases), domain, norm).value
        assert value == pytest.approx(operator_norms(W, norm).max(), rel=1e-12)


@pytest.mark.parametrize("norm", NORMS)
def test_the_existing_closed_forms(norm):
    absolute = Network([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    assert lipschitz_search(absolute, Domain.box([-1], [1]), norm).value == 1.0
    for k in (1, 3, 6):
        assert lipschitz_search(tent_network(k), Domain.box([0.0], [1.0]), norm).value == 2.0**k
    rng = np.random.default_rng(1)
    W0, W1 = rng.normal(size=(4, 3)), rng.normal(size=(2, 4))
    active = Network([W0, W1], [np.full(4, 100.0), np.zeros(2)])
    expected = float(operator_norms((W1 @ W0)[None], norm)[0])
    box = Domain.box(-np.ones(3), np.ones(3))
    assert lipschitz_search(active, box, norm).value == pytest.approx(expected, rel=1e-12)
    assert lipschitz_search(Network([W1 @ W0], [np.zeros(2)]), box, norm).value == \
        pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("d", [2, 4])
def test_equals_lipschitz_on_its_test_networks(d):
    """The nets of test_lipschitz.py's sampled-Jacobian test, against polyrelu.lipschitz."""
    rng = np.random.default_rng(10 + d)
    network = Network(*random_network((d, 8, 6, 2), rng))
    domain = Domain.box(-np.ones(d), np.ones(d))
    for norm in NORMS:
        expected = lipschitz(network, domain, norm)
        found = lipschitz_search(network, domain, norm)
        assert found.value == pytest.approx(expected.value, rel=1e-12)
        radius = max(1e-9, found.stats["regions"] and 1e-7)
        J = fd_jacobian(network, found.witness, radius)
        assert float(operator_norms(J[None], norm)[0]) == pytest.approx(found.value, rel=1e-5)


def general_values(network, domain):
    """Largest Jacobian norms over the LP brute force's regions, by finite differences at
    their centres (a step well inside each region)."""
    found = general_brute_force(network, domain.lower, domain.upper, 1e-7)
    J = np.array([fd_jacobian(network, centre, radius / 10)
                  for centre, radius in found.values()])
    return {norm: float(operator_norms(J, norm).max()) for norm in NORMS}


@pytest.mark.parametrize("build", [lambda: residual_pool_network(0),
                                   lambda: residual_pool_network(3),
                                   pytest.param(lambda: mixed_network(1, d=2),
                                                marks=pytest.mark.slow)])
def test_general_networks_leaky_abs_clip_pool_residual(build):
    network = build()
    domain = Domain.box(-np.ones(network.input_dim), np.ones(network.input_dim))
    expected = general_values(network, domain)
    for norm in NORMS:
        result = lipschitz_search(network, domain, norm)
        assert result.value == pytest.approx(expected[norm], rel=1e-6)
        at_witness = operator_norms(fd_jacobian(network, result.witness, 1e-9)[None], norm)
        assert at_witness[0] == pytest.approx(result.value, rel=1e-5)


def ramp(builder, x, start, width, slope):
    """``slope (relu(x - start) - relu(x - start - width))``: rises on [start, start+width]."""
    pair = builder.relu(builder.linear(x, [[1.0], [1.0]], [-start, -start - width]))
    return builder.linear(pair, [[slope, -slope]])


def test_finds_a_maximising_region_of_radius_1e6():
    """Slope 10 in x and in y on two strips of width 2e-6: only their crossing, a square
    of radius 1e-6, has gradient (10, 10); the rest has norms <= 10 + 0.5."""
    builder = GraphBuilder((2,))
    x = builder.input
    parts = [ramp(builder, builder.take(x, [axis]), 0.3 - axis * 0.5, 2e-6, 10.0)
             for axis in (0, 1)]
    base = builder.linear(x, [[0.5, -0.5]])
    network = builder.network(builder.add(parts[0], parts[1], base))
    domain = Domain.box([-1.0, -1.0], [1.0, 1.0])
    result = lipschitz_search(network, domain, 2)
    assert result.value == pytest.approx(np.hypot(10.5, 9.5), rel=1e-12)
    assert np.all(np.abs(result.witness - [0.3 + 1e-6, -0.2 + 1e-6]) <= 1e-6)
    sampled = domain.sample(20000, 0)
    J = np.array([fd_jacobian(network, p, 1e-9) for p in sampled[:2000]])
    assert operator_norms(J, 2).max() < result.value * 0.9  # sampling misses it


@pytest.mark.parametrize("checks", [0, 3, 10])
def test_a_timeout_gives_a_bracket_containing_the_value(checks):
    network = Network(*random_network((3, 10, 10, 10, 1), np.random.default_rng(9)))
    domain = Domain.box(-np.ones(3), np.ones(3))
    exact = enumerated_values(network, domain, [2])[2]
    with pytest.raises(TimeLimitError) as stopped:
        lipschitz_search(network, domain, 2, deadline=ChecksDeadline(checks), group=1)
    bracket = stopped.value.partial
    assert 0 <= bracket["lower"] <= exact <= bracket["upper"]


def test_other_maxima_output_functional_direction_layer():
    network = Network(*random_network((3, 6, 5, 3), np.random.default_rng(3)))
    domain = Domain.box(-np.ones(3), np.ones(3))
    regions = enumerate_regions(network, domain)
    W = np.array([region.W_eff for region in regions])
    one = lipschitz_search(network, domain, 2, output=1).value
    assert one == pytest.approx(np.linalg.norm(W[:, 1], axis=1).max(), rel=1e-12)
    C = np.array([[1.0, -1.0, 0.0]])
    difference = lipschitz_search(network, domain, 1, functional=C).value
    assert difference == pytest.approx(operator_norms(C @ W, 1).max(), rel=1e-12)
    v = np.array([0.3, -1.0, 0.5])
    for norm in NORMS:
        directional = lipschitz_search(network, domain, norm, direction=v)
        expected = np.linalg.norm(W @ v, ord=norm, axis=1).max()
        assert directional.value == pytest.approx(expected, rel=1e-12)
        assert directional.exact_lower <= directional.value * (1 + 1e-12)
    rows = slice(6, 11)  # hidden layer 1's pre-activations
    layer_maps = np.array([network.affine_maps(region.pattern).pre_A[rows]
                           for region in regions])
    hidden = lipschitz_search(network, domain, 2, layer=1)
    assert hidden.value == pytest.approx(operator_norms(layer_maps, 2).max(), rel=1e-12)


def test_bad_arguments_are_one_line_errors():
    network = Network(*random_network((2, 4, 1), np.random.default_rng(0)))
    domain = Domain.box(-np.ones(2), np.ones(2))
    with pytest.raises(PolyreluError, match="direction must be 2"):
        lipschitz_search(network, domain, direction=[1.0, 2.0, 3.0])
    with pytest.raises(PolyreluError, match="layer must be"):
        lipschitz_search(network, domain, layer=1)
    with pytest.raises(PolyreluError, match="norm must be"):
        lipschitz_search(network, domain, 3)


def test_bounds_hold_over_sampled_points_of_a_piece():
    """The root's bound is above every sampled Jacobian norm, and the per-box first map
    of the symbolic bounds contains sampled pre-activations."""
    rng = np.random.default_rng(7)
    network = Network(*random_network((3, 8, 8, 2), rng))
    low, high = -np.ones(3), np.ones(3)
    points = rng.uniform(low, high, (500, 3))
    J = np.array([fd_jacobian(network, p, 1e-7) for p in points])
    for norm in NORMS:
        bound = jacobian_bound(network, norm, np.eye(2), np.eye(3)[None], np.zeros((1, 3)),
                               low[None], high[None], 0)
        assert operator_norms(J, norm).max() <= bound[0]
    M, c = rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 3))
    weight, bias = network.layers[0].weight, network.layers[0].bias
    bounds = linear_bounds_batch(network, np.stack([low, low]), np.stack([high, high]),
                                 first=(weight @ M, c @ weight.T + bias))
    for box in range(2):
        composed = Network([network.weights[0] @ M[box], *network.weights[1:]],
                           [network.weights[0] @ c[box] + network.biases[0],
                            *network.biases[1:]])
        inner = composed.preactivations(points)
        assert np.all(inner[:, :8] >= bounds[box].pre_lower[0] - 1e-12)
        assert np.all(inner[:, 8:] <= bounds[box].pre_upper[1] + 1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_output_maximum_equals_the_largest_region_lp(seed):
    """Against scipy's linprog on every region of the walk (c W_eff x + c b_eff)."""
    rng = np.random.default_rng(70 + seed)
    d = int(rng.integers(1, 4))
    network = Network(*random_network((d, 6, 5, 2), rng))
    domain = Domain.box(-np.ones(d), np.ones(d))
    c = np.array([1.0, -0.5])
    expected = -np.inf
    for region in enumerate_regions(network, domain):
        cost = c @ region.W_eff
        found = linprog(-cost, A_ub=region.polytope.A, b_ub=region.polytope.b,
                        bounds=[(None, None)] * d, method="highs")
        expected = max(expected, -found.fun + c @ region.b_eff)
    best = output_maximum(network, domain, c)
    assert best.exact and best.value == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert network.forward(best.witness[None])[0] @ c == pytest.approx(best.value, rel=1e-12)
    stopped = output_maximum(network, domain, c, deadline=ChecksDeadline(0))
    assert stopped.value <= expected * (1 + 1e-9) + 1e-12 and stopped.upper >= expected

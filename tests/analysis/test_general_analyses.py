"""The analyses on general networks (ReLU and linear units, max windows, residual carries):
Lipschitz constants and their brackets, paths and spectra, energies, atoms, and the
analyses that need Linear + ReLU networks refusing the others."""

import numpy as np
import pytest
from general_complex import brute_complex
from networks import mixed_network, residual_pool_network

from oracles import general_forward
from polyrelu import Domain, Network
from polyrelu.analysis.atoms import layer_stability, region_atoms
from polyrelu.analysis.energy import energy_range, layer_energies, null_set_check
from polyrelu.analysis.injectivity import network_injectivity
from polyrelu.analysis.lipschitz import check_certificate, exact_jacobian, exact_pattern, lipschitz
from polyrelu.analysis.lipschitz_bounds import (
    compare_bounds,
    lipsdp,
    norm_product,
    pattern_aware_product,
    read_multiplicity,
    sampled_lower_bound,
)
from polyrelu.analysis.paths import ClosedCurve, Segment, path_pieces
from polyrelu.analysis.spectrum import path_spectrum
from polyrelu.errors import UnsupportedNetworkError
from polyrelu.network.layers import Layer
from polyrelu.network.lowering import GraphBuilder

NORMS = {1: 1, 2: 2, np.inf: np.inf}


def small_general(seed):
    """Three inputs: dense, ReLU, overlapping max windows, LeakyReLU, Clip, Abs, a residual."""
    rng = np.random.default_rng(seed)
    builder = GraphBuilder((3,))
    x = builder.input
    t = builder.linear(x, rng.normal(size=(4, 3)), rng.normal(size=4) * 0.3)
    pooled = builder.max_windows(builder.relu(t), [[0, 1, 2], [1, 2, 3]], (2,))
    mixed = builder.stack([builder.leaky_relu(pooled, 0.1), builder.clip(builder.take(t, [3]),
                                                                         -0.2, 0.3),
                           builder.abs(builder.take(t, [0]))])
    s = builder.linear(mixed, rng.normal(size=(3, 4)), rng.normal(size=3) * 0.2)
    return builder.network(builder.linear(builder.add(x, s), rng.normal(size=(2, 3))))


def finite_difference_jacobian(network, x, step):
    """Central differences of the loop forward pass (exact on an affine piece)."""
    f = lambda point: general_forward(network, point)[0]  # noqa: E731
    columns = [(f(x + step * e) - f(x - step * e)) / (2 * step) for e in np.eye(len(x))]
    return np.column_stack(columns)


CASES = {
    "residual_pool": (lambda: residual_pool_network(0), Domain.box([-1, -1], [1, 1])),
    "small_general": (lambda: small_general(1), Domain.box([-0.6] * 3, [0.6] * 3)),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    make, domain = CASES[request.param]
    network = make()
    return network, domain, brute_complex(network, domain)


# -- Lipschitz -------------------------------------------------------------------------------

@pytest.mark.parametrize("norm", [1, 2, np.inf])
def test_lipschitz_equals_the_brute_force_maximum_of_jacobian_norms(case, norm):
    network, domain, complex_ = case
    assert not network.is_relu_mlp and len(complex_) > 5
    expected = max(np.linalg.norm(finite_difference_jacobian(network, r.interior_point,
                                                             r.radius / 4), NORMS[norm])
                   for r in complex_)
    result = lipschitz(network, domain, norm, complex_=complex_)
    assert result.value == pytest.approx(expected, rel=1e-7)
    assert result.exact_lower <= result.value * (1 + 1e-12)
    assert result.value <= result.exact_upper * (1 + 1e-12)
    assert result.witness_pattern_exact
    assert check_certificate(result)


@pytest.mark.parametrize("norm", [1, 2, np.inf])
def test_brackets_contain_the_exact_value(case, norm):
    network, domain, complex_ = case
    result = lipschitz(network, domain, norm, complex_=complex_)
    C = result.functional
    upper, aware = norm_product(network, norm, C), pattern_aware_product(complex_, norm, C)
    lower = sampled_lower_bound(network, domain, norm, C, samples=300, steps=30)[0]
    assert lower <= result.value * (1 + 1e-12)
    assert result.value <= aware * (1 + 1e-12)
    assert aware <= upper * (1 + 1e-12)
    rows = compare_bounds(result, domain, sdp=norm == 2, samples=200)
    if norm == 2:
        sdp = next(row for row in rows if row.method == "LipSDP-neuron")
        assert "Linear + ReLU" in sdp.note


def test_exact_jacobian_follows_the_layers(case):
    """Exact Jacobians equal the float maps; exact patterns hold at centres where no ReLU
    pre-activation is 0 (a unit zero on the whole region, e.g. a LeakyReLU of a window of
    inactive ReLUs, is inactive by convention but not strictly)."""
    network, _, complex_ = case
    relu = network.slot_units()[~network.window_slots()]
    checked = 0
    for region in complex_:
        rows = exact_jacobian(network, region.pattern, np.eye(network.output_dim))
        exact = np.array([[float(v) for v in row] for row in rows])
        np.testing.assert_allclose(exact, region.W_eff, rtol=1e-12, atol=1e-14)
        if np.all(network.preactivations(region.interior_point)[0][relu] != 0):
            checked += 1
            assert exact_pattern(network, region.interior_point, region.pattern)
        pairs = region.pattern[network.window_pairs]
        moved = network.num_hidden + int(np.argmax(pairs[:, 0] ^ pairs[:, 1]))
        for kink in (0, moved):
            other = network.cross(region.pattern, kink)  # a ReLU flipped; a window argmax moved
            assert not exact_pattern(network, region.interior_point, other)
    assert checked >= len(complex_) // 2


def duplicating(keep, windows):
    """x -> (copies of x): one linear unit read by ``keep`` and ``windows``."""
    layer = Layer.build([[1.0]], [0.0], units=[0], keep=keep, windows=windows or None)
    n = len(keep) + len(windows)
    return Network.from_layers([layer, Layer.affine(np.eye(n), np.zeros(n))])


@pytest.mark.parametrize("keep, windows, copies", [([0], [[0]], 2), ([], [[0], [0], [0]], 3),
                                                   ([0, 0], [], 2)])
def test_norm_product_counts_entries_read_twice(keep, windows, copies):
    """``x -> (x, x)``: l2 constant sqrt(2), above ``||W||_2 = 1``; the bound scales the
    read row by sqrt(multiplicity) and stays sound (and tight)."""
    network = duplicating(keep, windows)
    assert read_multiplicity(network.layers[0]).tolist() == [copies]
    domain = Domain.box([-1.0], [1.0])
    for norm, value in ((2, np.sqrt(copies)), (1, copies), (np.inf, 1.0)):
        exact = lipschitz(network, domain, norm, complex_=brute_complex(network, domain)).value
        assert exact == pytest.approx(value)
        assert norm_product(network, norm, np.eye(copies)) == pytest.approx(value)


def overlapping_pool_network(seed):
    """Dense, ReLU, max windows of three with stride one (each entry in up to three)."""
    rng = np.random.default_rng(seed)
    builder = GraphBuilder((3,))
    t = builder.relu(builder.linear(builder.input, rng.normal(size=(8, 3)), rng.normal(size=8)))
    pooled = builder.max_windows(t, [[i, i + 1, i + 2] for i in range(6)], (6,))
    return builder.network(builder.linear(pooled, rng.normal(size=(2, 6))))


@pytest.mark.parametrize("seed", range(3))
def test_norm_product_bounds_sampled_difference_quotients(seed):
    network = overlapping_pool_network(seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(4000, 3))
    y = x + rng.normal(size=x.shape) * rng.choice([1e-3, 0.1, 1.0], size=(len(x), 1))
    dx, dy = y - x, network.forward(y) - network.forward(x)
    for norm in (1, 2, np.inf):
        quotients = np.linalg.norm(dy, norm, axis=1) / np.linalg.norm(dx, norm, axis=1)
        assert quotients.max() <= norm_product(network, norm, np.eye(2)) * (1 + 1e-12)


def test_lipsdp_refuses_general_networks():
    with pytest.raises(UnsupportedNetworkError, match="LipSDP.*Linear \\+ ReLU"):
        lipsdp(mixed_network(0), np.eye(2))


# -- paths and spectra -------------------------------------------------------------------

def pattern_changes(network, a, b, samples=3000):
    """Where the forward pass's pattern changes along the segment, by bisection."""
    point = lambda t: a + t * (b - a)  # noqa: E731
    pattern = lambda t: general_forward(network, point(t))[1]  # noqa: E731
    grid = np.linspace(0.0, 1.0, samples + 1)
    patterns = [pattern(t) for t in grid]
    found = []
    for i in range(samples):
        if np.array_equal(patterns[i], patterns[i + 1]):
            continue
        low, high = grid[i], grid[i + 1]
        for _ in range(55):
            middle = (low + high) / 2
            low, high = (middle, high) if np.array_equal(pattern(middle), patterns[i]) \
                else (low, middle)
        found.append(low)
    return np.array(found)


@pytest.mark.parametrize("seed", range(4))
def test_segment_pieces_break_where_the_forward_pattern_changes(seed):
    network = mixed_network(seed, 3)
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, 3)) * 2
    pieces = path_pieces(network, Segment(a, b))
    breaks = np.array([piece.t0 for piece in pieces[1:]])
    changes = pattern_changes(network, a, b)
    assert len(breaks) == len(changes) and len(breaks) >= 3
    np.testing.assert_allclose(breaks, changes, atol=1e-9)
    for piece in pieces:
        for t in np.linspace(piece.t0, piece.t1, 5)[1:-1]:
            x = a + t * (b - a)
            output, pattern = general_forward(network, x)
            np.testing.assert_array_equal(pattern, piece.pattern)
            np.testing.assert_allclose(output, piece.W_eff @ x + piece.b_eff, atol=1e-9)


def test_closed_curve_pieces_match_forward_passes():
    network = residual_pool_network(2)
    curve = ClosedCurve([0.1, -0.2], [[1.5, 0.2], [0.0, 0.3]], [[0.0, -0.3], [1.2, 0.1]])
    pieces = path_pieces(network, curve)
    assert len(pieces) > 6
    assert pieces[0].t0 == 0.0 and pieces[-1].t1 == pytest.approx(2 * np.pi)
    for piece in pieces:
        t = np.linspace(piece.t0, piece.t1, 6)[1:-1]
        x = curve.points(t)
        for point in x:
            output, pattern = general_forward(network, point)
            np.testing.assert_array_equal(pattern, piece.pattern)
            np.testing.assert_allclose(output, piece.W_eff @ point + piece.b_eff, atol=1e-9)


@pytest.mark.parametrize("layer", [None, 0, 1])
def test_spectrum_of_a_general_network_matches_quadrature(layer):
    network = residual_pool_network(3)
    curve = ClosedCurve([0.2, 0.1], [1.3, 0.0], [0.0, 1.1])
    spectrum = path_spectrum(network, curve, 3, layer=layer)
    t = np.linspace(0.0, 2 * np.pi, 200001)[:-1]
    if layer is None:
        values = network.forward(curve.points(t))
    else:
        values = np.array([feature for feature in _features(network, curve.points(t), layer)])
    dc = values.mean(axis=0)
    a1 = 2 * (values * np.cos(t)[:, None]).mean(axis=0)
    b2 = 2 * (values * np.sin(2 * t)[:, None]).mean(axis=0)
    np.testing.assert_allclose(spectrum.dc, dc, atol=1e-6)
    np.testing.assert_allclose(spectrum.a[0], a1, atol=1e-6)
    np.testing.assert_allclose(spectrum.b[1], b2, atol=1e-6)


def _features(network, points, layer):
    """Hidden layer ``layer``'s outputs at the points, by the layers' own evaluation."""
    h = points
    for index, spec in enumerate(network.layers[:-1]):
        h = spec.output(h @ spec.weight.T + spec.bias)
        if index == layer:
            return h
    raise AssertionError("no such layer")


# -- energies, atoms --------------------------------------------------------------------------

def test_layer_energies_of_a_general_network_by_loops():
    network = mixed_network(2, 3)
    x = np.array([0.4, -0.7, 0.2])
    energies = layer_energies(network, x)
    h = x
    for index, layer in enumerate(network.layers[:-1]):
        z = layer.weight @ h + layer.bias
        u = np.array([max(v, 0.0) if unit == 1 else v for v, unit in zip(z, layer.units)])
        h = layer.output(z[None])[0]
        assert energies["preactivation"][index] == pytest.approx(z @ z)
        assert energies["kept"][index] == pytest.approx(u @ u)
        assert energies["discarded"][index] == pytest.approx(
            sum(v * v for v, unit in zip(z, layer.units) if unit == 1 and v < 0))
        assert energies["output"][index] == pytest.approx(h @ h)


def test_energy_range_and_null_set_on_a_general_network(case):
    network, domain, complex_ = case
    extremes = energy_range(network, domain, regions=complex_)
    samples = network.forward(domain.sample(3000, np.random.default_rng(0)))
    energies = (samples ** 2).sum(axis=1)
    assert extremes.min <= energies.min() + 1e-7 and energies.max() <= extremes.max + 1e-9
    assert (network.forward(extremes.argmax) ** 2).sum() == pytest.approx(extremes.max)
    result = null_set_check(network, domain, regions=complex_)
    if not result.trivial:
        assert result.residual < 1e-7


def test_region_atoms_and_stability_on_a_general_network(case):
    network, _, complex_ = case
    for region in complex_:
        atoms = region_atoms(network, region.pattern)
        np.testing.assert_allclose(atoms.W_eff, region.W_eff, atol=1e-12)
        np.testing.assert_allclose(atoms.bias_parts.sum(axis=0), region.b_eff, atol=1e-12)
        assert atoms.singular_values[0] <= np.prod(atoms.layer_norms) * (1 + 1e-12)
    report = layer_stability(complex_)
    assert report.norms.shape == (len(complex_), len(network.weights))


def test_network_injectivity_refuses_general_networks():
    with pytest.raises(UnsupportedNetworkError, match="network injectivity"):
        network_injectivity(mixed_network(0), Domain.box([-1] * 3, [1] * 3))

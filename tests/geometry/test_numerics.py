"""Numbers float64 LPs cannot resolve are refused, not guessed; domains sample in bounded
time (issue 15)."""

import time

import numpy as np
import pytest

from polyrelu import Domain, InvalidDomainError, Network, enumerate_regions
from polyrelu.errors import NumericalRangeError, PolyreluError
from polyrelu.geometry.domain import MIN_RADIUS, check_numerics
from polyrelu.regions.splitting import count_regions

SQUARE = Domain.box([-1, -1], [1, 1])


def _layer(scale, rng=0):
    rng = np.random.default_rng(rng)
    return rng.normal(size=(6, 2)) * scale[:, None], rng.normal(size=6) * 0.3 * scale


def _mixed_network():
    """Three neurons with weights ~1e12 and three with ~1e-12 (10 regions were found
    where a grid sees 21)."""
    W, b = _layer(np.array([1e12] * 3 + [1e-12] * 3))
    return Network([W, np.ones((1, 6))], [b, [0.0]])


def _huge_network():
    """Weights of 1e150: the outputs overflow to inf (``regions: 1``)."""
    W, b = _layer(np.full(6, 1e150))
    return Network([W, np.full((6, 6), 1e150), np.ones((1, 6))], [b, np.zeros(6), [0.0]])


@pytest.mark.parametrize("engine", [enumerate_regions, count_regions])
@pytest.mark.parametrize("network, message", [
    (_mixed_network, "varies by .* than the widest neuron range"),
    (_huge_network, "forward pass reaches magnitude"),
])
def test_unresolvable_networks_are_refused_by_every_engine(engine, network, message):
    with pytest.raises(NumericalRangeError, match=message) as info:
        engine(network(), SQUARE)
    assert "allow_extreme_numerics" in str(info.value)


def test_the_option_proceeds_anyway():
    W, b = _layer(np.array([1e12] * 3 + [1e-12] * 3))
    network = Network([W, np.ones((1, 6))], [b, [0.0]], allow_extreme_numerics=True)
    assert len(enumerate_regions(network, SQUARE).regions) > 0


def test_denormal_weights_are_refused_at_construction():
    W, b = _layer(np.ones(6))
    W[2, 1] = 1e-310
    with pytest.raises(NumericalRangeError, match="layer 0: weight has a denormal entry"):
        Network([W, np.ones((1, 6))], [b, [0.0]])
    network = Network([W, np.ones((1, 6))], [b, [0.0]], allow_extreme_numerics=True)
    assert network.allow_extreme_numerics


@pytest.mark.parametrize("lower, upper", [([0, 0], [1e-14, 1e-14]),
                                          ([1e3, 0], [1e3 + 1e-5, 1])])
def test_domains_below_the_resolvable_scale_are_refused(lower, upper):
    with pytest.raises(NumericalRangeError, match="below the resolvable scale"):
        Domain.box(lower, upper)
    assert Domain.box(lower, upper, allow_extreme_numerics=True).radius < MIN_RADIUS * 1e3


def test_thin_polytope_domain_is_refused():
    with pytest.raises(NumericalRangeError, match="resolvable scale"):
        Domain.polytope([[-1, 0], [0, -1], [1, 1e7]], [0, 0, 1])


def test_ordinary_networks_pass(acasxu_dir):
    from polyrelu.network.onnx_import import from_onnx
    from polyrelu.verification.vnnlib import input_box

    network = from_onnx(acasxu_dir / "ACASXU_run2a_1_1_batch_2000.onnx")
    for number in (1, 2, 5, 7, 8, 9, 10):  # 3 and 4 fix an input (lower = upper)
        check_numerics(network, Domain.box(*input_box(acasxu_dir / f"prop_{number}.vnnlib")))


def test_refusals_are_polyrelu_errors_for_the_cli():
    assert issubclass(NumericalRangeError, PolyreluError)


# -- the domain itself ----------------------------------------------------------------

@pytest.mark.parametrize("field", ["b", "lower", "center"])
def test_a_stored_domain_with_nan_is_refused_at_construction(field):
    box = Domain.box([0, 0], [1, 1])
    arrays = {"A": box.A, "b": box.b, "lower": box.lower, "upper": box.upper,
              "center": box.center}
    arrays[field] = arrays[field].copy()
    arrays[field][0] = np.nan
    A, b = arrays.pop("A"), arrays.pop("b")
    with pytest.raises(InvalidDomainError, match=f"{field} has a non-finite entry"):
        Domain(A, b, **arrays, radius=0.5, kind="box")


def test_a_stored_domain_with_inconsistent_shapes_is_refused():
    box = Domain.box([0, 0], [1, 1])
    with pytest.raises(InvalidDomainError, match="shapes"):
        Domain(box.A[:3], box.b, lower=box.lower, upper=box.upper, center=box.center,
               radius=0.5, kind="box")


def test_sampling_a_thin_simplex_ends_inside():
    """The 12-dimensional simplex is 1 / 12! (2e-9) of its bounding box: rejection
    sampling from the box would take billions of draws."""
    d = 12
    simplex = Domain.polytope(np.vstack([-np.eye(d), np.ones((1, d))]), [0.0] * d + [1.0])
    start = time.perf_counter()
    points = simplex.sample(200, 0)
    assert time.perf_counter() - start < 5.0
    assert points.shape == (200, d)
    assert simplex.contains(points, tol=1e-12).all()
    assert len(np.unique(points.round(6), axis=0)) == 200
    np.testing.assert_allclose(points.mean(axis=0), np.full(d, 1 / (d + 1)), atol=0.03)


def test_box_sampling_is_uniform_inside():
    box = Domain.box([0, -1], [2, 1])
    points = box.sample(20_000, 1)
    assert box.contains(points).all()
    np.testing.assert_allclose(points.mean(axis=0), [1, 0], atol=0.02)


def test_sampling_a_fat_polytope_is_by_rejection():
    triangle = Domain.polytope([[-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]], [0.0, 0.0, 1.0])
    points = triangle.sample(5000, 2)
    assert triangle.contains(points).all()
    np.testing.assert_allclose(points.mean(axis=0), [1 / 3, 1 / 3], atol=0.02)

"""RegionComplex: saving and loading, affine pieces, invariances."""

import numpy as np
import pytest

from oracles import random_network
from polyrelu import Domain, InvalidFileError, Network, RegionComplex, enumerate_regions


@pytest.fixture(scope="module")
def complex_():
    weights, biases = random_network((3, 6, 5, 2), np.random.default_rng(40))
    return enumerate_regions(Network(weights, biases), Domain.box(-np.ones(3), np.ones(3)))


def test_save_and_load_round_trip(complex_, tmp_path):
    path = tmp_path / "complex.npz"
    complex_.save(path)
    with np.load(path, allow_pickle=False) as data:  # no pickle anywhere in the file
        assert "patterns" in data.files
    loaded = RegionComplex.load(path)
    assert len(loaded) == len(complex_)
    for a, b in zip(complex_, loaded):
        assert a.key == b.key
        np.testing.assert_array_equal(a.polytope.A, b.polytope.A)
        np.testing.assert_array_equal(a.polytope.sources, b.polytope.sources)
        np.testing.assert_array_equal(a.W_eff, b.W_eff)
        assert a.radius == b.radius
    assert sorted(loaded.graph.edges(data="kink")) == sorted(complex_.graph.edges(data="kink"))
    points = complex_.domain.sample(200, 0)
    np.testing.assert_array_equal(loaded.locate(points), complex_.locate(points))
    np.testing.assert_allclose(loaded.network.forward(points), complex_.network.forward(points))


def test_loading_a_foreign_file_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(InvalidFileError, match="not a polyrelu region-complex file"):
        RegionComplex.load(path)


def test_affine_pieces_merge_regions_with_one_map():
    # relu(x) + relu(-x) - relu(x - 1) ... plus a neuron whose flip does not change the map:
    # relu(x - 0.5) with outgoing weight 0 splits a region without changing the affine map.
    W0 = np.array([[1.0], [-1.0], [1.0]])
    b0 = np.array([0.0, 0.0, -0.5])
    W1 = np.array([[1.0, 1.0, 0.0]])
    complex_ = enumerate_regions(Network([W0, W1], [b0, np.zeros(1)]), Domain.box([-1], [1]))
    assert len(complex_) == 3
    pieces = complex_.affine_pieces()
    assert len(pieces) == 2
    for piece in pieces:
        slopes = {float(complex_[i].W_eff[0, 0]) for i in piece}
        assert len(slopes) == 1


def test_regions_invariant_under_neuron_permutation_and_positive_rescaling():
    rng = np.random.default_rng(41)
    weights, biases = random_network((2, 6, 5, 1), rng)
    base = enumerate_regions(Network(weights, biases), Domain.box(-np.ones(2), np.ones(2)))
    perm = rng.permutation(6)
    scale = rng.uniform(0.2, 5.0, size=6)
    w0 = weights[0][perm] * scale[:, None]
    b0 = biases[0][perm] * scale
    w1 = weights[1][:, perm] / scale[None, :]
    other = enumerate_regions(Network([w0, w1, weights[2]], [b0, biases[1], biases[2]]),
                              Domain.box(-np.ones(2), np.ones(2)))
    assert len(other) == len(base)
    centres = np.array([r.interior_point for r in base])
    located = other.locate(centres)
    assert sorted(located.tolist()) == list(range(len(other)))
    for region, match in zip(base, located):
        np.testing.assert_allclose(other[match].W_eff, region.W_eff, atol=1e-9)
        assert other[match].volume() == pytest.approx(region.volume(), rel=1e-9)

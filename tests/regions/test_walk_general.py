"""The graph walk and the region complex on general networks (convolution, max pooling,
LeakyReLU/PReLU, Clip, Abs, residual additions), against the independent oracles of
tests/oracles.py: the depth-first brute force, the planar shapely cells, finite
differences and plain-loop forward passes, volumes."""

import json
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from networks import residual_pool_network

from oracles import (
    assert_same_complex,
    general_brute_force,
    general_forward,
    planar_cells,
    random_network,
)
from polyrelu import (
    Domain,
    InvalidFileError,
    InvalidNetworkError,
    Network,
    Options,
    RegionComplex,
    enumerate_regions,
)
from polyrelu.network.arrays import network_from_arrays
from polyrelu.network.layers import Layer
from polyrelu.network.lowering import GraphBuilder
from polyrelu.network.model import network_fingerprint
from polyrelu.regions.crosscheck import compare_complexes, cross_check
from polyrelu.regions.validation import content_hash

DATA = Path(__file__).resolve().parent / "data"


# -- tiny networks, built with GraphBuilder ---------------------------------------------------

def _dense(builder, x, n_out, rng, bias=0.4):
    return builder.linear(x, rng.normal(size=(n_out, x.size)) / math.sqrt(x.size),
                          rng.normal(size=n_out) * bias)


def _conv_matrix(kernels, d):
    """A 1-D convolution (valid padding, stride 1) of ``d`` inputs as a dense matrix, by loops."""
    channels, width = kernels.shape
    positions = d - width + 1
    matrix = np.zeros((channels * positions, d))
    for c in range(channels):
        for p in range(positions):
            for k in range(width):
                matrix[c * positions + p, p + k] = kernels[c, k]
    return matrix


def conv_net(d, rng):
    """Conv1d (3 channels, kernel 2), ReLU, then dense."""
    builder = GraphBuilder((d,))
    conv = _conv_matrix(rng.normal(size=(3, 2)), d)
    t = builder.relu(builder.linear(builder.input, conv, rng.normal(size=conv.shape[0]) * 0.3))
    return builder.network(_dense(builder, t, 1, rng))


def pool_net(d, rng):
    """Dense, ReLU, max pooling over two windows of three, then max over linear units."""
    builder = GraphBuilder((d,))
    t = builder.relu(_dense(builder, builder.input, 6, rng))
    pooled = builder.max_windows(t, [[0, 1, 2], [3, 4, 5]], (2,))
    s = _dense(builder, builder.stack([pooled, builder.input]), 2, rng)
    top = builder.max_windows(s, [[0, 1]], (1,))
    return builder.network(builder.linear(top, [[1.5]]))


def leaky_net(d, rng):
    """LeakyReLU, then PReLU (a slope per unit)."""
    builder = GraphBuilder((d,))
    t = builder.leaky_relu(_dense(builder, builder.input, 4, rng), 0.1)
    s = builder.leaky_relu(_dense(builder, t, 3, rng), rng.uniform(0, 0.5, size=3))
    return builder.network(_dense(builder, s, 1, rng))


def clip_net(d, rng):
    """HardTanh between two dense layers (two kinks per unit)."""
    builder = GraphBuilder((d,))
    t = builder.clip(_dense(builder, builder.input, 4, rng), -0.3, 0.4)
    return builder.network(_dense(builder, t, 2, rng))


def abs_net(d, rng):
    """Abs, then ReLU."""
    builder = GraphBuilder((d,))
    t = builder.abs(_dense(builder, builder.input, 3, rng))
    s = builder.relu(_dense(builder, t, 3, rng))
    return builder.network(_dense(builder, s, 1, rng))


def residual_net(d, rng):
    """x + relu(W x + b), then a ReLU layer: the skip carried by linear units."""
    builder = GraphBuilder((d,))
    x = builder.input
    y = builder.add(x, builder.relu(_dense(builder, x, d, rng)))
    s = builder.relu(_dense(builder, y, 3, rng))
    return builder.network(_dense(builder, s, 1, rng))


def duplicate_net(d, rng):
    """A max window over two identical units (tied everywhere: the lower one wins) and a
    ReLU unit whose twin is dead."""
    builder = GraphBuilder((d,))
    W = rng.normal(size=(3, d))
    W[1] = W[0]
    t = builder.relu(builder.linear(builder.input, W, [0.1, 0.1, -0.2]))
    pooled = builder.max_windows(t, [[0, 1, 2]], (1,))
    return builder.network(builder.linear(builder.stack([pooled, builder.input]),
                                          rng.normal(size=(1, d + 1))))


NETS = {"conv": conv_net, "pool": pool_net, "leaky": leaky_net, "clip": clip_net,
        "abs": abs_net, "residual": residual_net, "duplicate": duplicate_net}


def _box(d):
    return -np.ones(d), np.ones(d)


def _walk(network, **options):
    return enumerate_regions(network, Domain.box(*_box(network.input_dim)),
                             options=Options(**options))


def _min_radius(d):
    return Options().min_radius_rel * 2 * math.sqrt(d)


# -- the regions ------------------------------------------------------------------------------

@pytest.mark.parametrize("d", [2, 3, 4])
@pytest.mark.parametrize("kind", sorted(NETS))
def test_same_regions_as_general_brute_force(kind, d):
    network = NETS[kind](d, np.random.default_rng(10 * d + len(kind)))
    # Conv + ReLU is a ReLU network; so is Clip (two ReLU units) between dense layers
    assert network.is_relu_mlp == (kind in ("clip", "conv"))
    walked = _walk(network)
    truth = general_brute_force(network, *_box(d), _min_radius(d))
    assert {r.key for r in walked} == set(truth)
    for region in walked:
        centre, radius = truth[region.key]
        assert region.radius == pytest.approx(radius, rel=1e-6, abs=1e-9)
        W, b = _finite_difference_map(network, centre, radius)
        np.testing.assert_allclose(region.W_eff, W, atol=1e-7)
        np.testing.assert_allclose(region.b_eff, b, atol=1e-7)
    _check_samples(walked, np.random.default_rng(d))
    volume = sum(region.volume() for region in walked)
    assert volume == pytest.approx(2.0 ** d, rel=1e-8)


def _finite_difference_map(network, centre, radius):
    """The affine map at a point ``radius`` inside its region, by central differences of
    the plain-loop forward pass (exact for an affine map up to rounding)."""
    h = radius / 2
    columns = [(general_forward(network, centre + h * e)[0]
                - general_forward(network, centre - h * e)[0]) / (2 * h)
               for e in np.eye(len(centre))]
    W = np.stack(columns, axis=1)
    return W, general_forward(network, centre)[0] - W @ centre


def _check_samples(complex_, rng, n=400):
    """Every sampled point lies in exactly one region, whose map is the forward pass there."""
    d = complex_.network.input_dim
    points = rng.uniform(-1, 1, size=(n, d))
    inside = np.array([region.contains(points, tol=1e-12) for region in complex_]).T
    assert np.all(inside.sum(axis=1) == 1)
    owner = inside.argmax(axis=1)
    for point, region_id in zip(points, owner):
        expected = general_forward(complex_.network, point)[0]
        np.testing.assert_allclose(complex_[region_id].apply(point)[0], expected,
                                   rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(complex_.locate(points), owner)


@pytest.mark.parametrize("seed", [0, 1, 3])  # seed 2: planar_cells overlaps (see below)
@pytest.mark.parametrize("kind", ["residual_pool", "pool", "clip", "abs"])
def test_planar_nets_match_the_shapely_cells(kind, seed):
    network = (residual_pool_network(seed) if kind == "residual_pool"
               else NETS[kind](2, np.random.default_rng(seed)))
    walked = _walk(network)
    cells = {np.packbits(p).tobytes(): polygon for polygon, p in planar_cells(network, *_box(2))}
    assert sum(polygon.area for polygon in cells.values()) == pytest.approx(4.0, rel=1e-9)
    assert len(walked) == len(cells)
    for region in walked:
        assert region.volume() == pytest.approx(cells[region.key].area, rel=1e-7, abs=1e-12)


# -- the graph --------------------------------------------------------------------------------

def _check_edges(complex_):
    network = complex_.network
    graph = complex_.graph
    assert nx.is_connected(graph) and complex_.stats["one_sided_edges"] == 0
    kinds = set()
    for u, v, kink in graph.edges(data="kink"):
        differ = complex_[u].pattern != complex_[v].pattern
        if kink < network.num_hidden:
            assert differ[kink], network.kink_name(kink)
        else:
            assert differ[network.window_pairs[kink - network.num_hidden]].all(), \
                network.kink_name(kink)
        assert kink in complex_[u].polytope.sources and kink in complex_[v].polytope.sources
        kinds.add(kink >= network.num_hidden)
    return kinds


@pytest.mark.parametrize("kind", sorted(NETS))
def test_edge_kinks_name_what_differs_between_the_two_regions(kind):
    complex_ = _walk(NETS[kind](3, np.random.default_rng(5)))
    kinds = _check_edges(complex_)
    if kind in ("pool", "duplicate"):
        assert kinds == {False, True}  # ReLU facets and window ties


def test_planar_oracle_disagreement_on_seed_2_is_the_oracles():
    """On residual_pool_network(2) tests.oracles.planar_cells returns 69 cells covering
    an area of 4.18 of the box's 4 (cells whose pattern is not the forward pass's at their
    points); the walk and the brute force agree on 62 regions that tile the box."""
    network = residual_pool_network(2)
    walked = _walk(network)
    assert {r.key for r in walked} == set(general_brute_force(network, *_box(2),
                                                              _min_radius(2)))
    assert sum(r.volume() for r in walked) == pytest.approx(4.0, rel=1e-9)


def test_residual_pool_edges_and_kink_names():
    complex_ = _walk(residual_pool_network(3))
    assert _check_edges(complex_) == {False, True}
    names = {complex_.network.kink_name(k) for _, _, k in complex_.graph.edges(data="kink")}
    assert any("tied with position" in name for name in names)


def test_relu_network_regions_and_edges_are_those_of_the_version_2_code():
    """The version-2 file was written by the walk before this change (the ``neuron``
    edges); the new walk gives the same regions and edges (``kink`` = neuron)."""
    old = RegionComplex.load(DATA / "relu_complex_v2.npz")
    assert old.network.is_relu_mlp and len(old) == 11
    new = enumerate_regions(old.network, old.domain)
    assert_same_complex(old, new)
    assert new.stats["kinks"] == new.network.num_hidden - new.stats["stable_neurons"]


# -- files ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def general(tmp_path_factory):
    complex_ = _walk(residual_pool_network(1))
    path = tmp_path_factory.mktemp("general") / "complex.npz"
    complex_.save(path)
    return complex_, path


def _arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k].copy() for k in data.files}


def _rewrite(arrays, path, **meta_changes):
    """Write ``arrays`` with the metadata changed and the content hash recomputed, as a
    deliberate forger would."""
    meta = json.loads(str(arrays["meta"]))
    meta.update(meta_changes)
    arrays = {k: v for k, v in arrays.items() if k != "meta"}
    meta["content_sha256"] = content_hash(arrays)
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def test_general_complex_round_trip(general):
    complex_, path = general
    arrays = _arrays(path)
    assert json.loads(str(arrays["meta"]))["version"] == 3
    assert {"units0", "keep0", "windows0", "edge_kinks"} <= set(arrays)
    loaded = RegionComplex.load(path, network=complex_.network)
    assert_same_complex(complex_, loaded)
    network = loaded.network
    for a, b in zip(network.layers, complex_.network.layers):
        assert a.names == b.names and a.window_names == b.window_names
    kinks = [k for _, _, k in complex_.graph.edges(data="kink")]
    assert [network.kink_name(k) for k in kinks] == [complex_.network.kink_name(k)
                                                    for k in kinks]
    points = complex_.domain.sample(300, 1)
    np.testing.assert_array_equal(loaded.locate(points), complex_.locate(points))


def test_a_network_differing_only_in_its_units_is_refused(general, tmp_path):
    complex_, path = general
    layers = list(complex_.network.layers)
    first = layers[0]
    units = first.units.copy()
    units[np.flatnonzero(units == 0)[0]] = 1
    layers[0] = Layer.build(first.weight, first.bias, units=units, keep=first.keep,
                            windows=first.windows)
    other = Network.from_layers(layers)
    with pytest.raises(InvalidFileError, match="another network"):
        RegionComplex.load(path, network=other)
    with pytest.raises(InvalidNetworkError, match="another network"):
        complex_.check_matches(other)


def _flip_unit(arrays):
    arrays["units0"][np.flatnonzero(arrays["units0"] == 0)[0]] = 1


def _move_window(arrays):
    windows = arrays["windows0"]
    windows[0, [0, 1]] = windows[0, [1, 0]]


def _bad_code(arrays):
    arrays["units0"][0] = 7


def _drop_keep(arrays):
    del arrays["keep1"]


def _window_kink(arrays):
    sources = arrays["facet_sources"]
    sources[np.flatnonzero(sources >= 0)[0]] = 10 ** 6


@pytest.mark.parametrize("edit, message", [
    (_flip_unit, "zero tolerances|pattern is not|neuron count|affine map"),
    (_move_window, "zero tolerances|pattern is not|affine map|facet row"),
    (_bad_code, "unit code"), (_drop_keep, "only some of units, keep and windows"),
    (_window_kink, "names no kink"),
])
def test_a_forged_general_file_is_refused(general, tmp_path, edit, message):
    """Edited (content hash not updated), rehashed, and rehashed with the network's
    fingerprint recomputed too: each refused, the last by re-deriving the regions."""
    arrays = _arrays(general[1])
    edit(arrays)
    forged = {}
    try:
        forged["network_sha256"] = network_fingerprint(network_from_arrays(arrays))
        if forged["network_sha256"] != network_fingerprint(general[0].network):
            with pytest.raises(InvalidFileError, match="fingerprint"):
                RegionComplex.load(_rewrite(arrays, tmp_path / "rehashed.npz"))
    except InvalidFileError:
        pass  # the layers themselves do not load
    with pytest.raises(InvalidFileError, match=message):
        RegionComplex.load(_rewrite(arrays, tmp_path / "forged.npz", **forged))
    with pytest.raises(InvalidFileError, match="content hash"):  # not rehashed
        np.savez(tmp_path / "edited.npz", **arrays)
        RegionComplex.load(tmp_path / "edited.npz")


def test_version_labels_are_never_misread(general, tmp_path):
    arrays = _arrays(general[1])
    with pytest.raises(InvalidFileError, match="format version 99, this polyrelu reads "
                                               "versions 2 and 3"):
        RegionComplex.load(_rewrite(arrays, tmp_path / "v99.npz", version=99))
    with pytest.raises(InvalidFileError, match="version 2 file has arrays W, b per layer, "
                                               "not keep0"):
        RegionComplex.load(_rewrite(arrays, tmp_path / "v2.npz", version=2))
    old = _arrays(DATA / "relu_complex_v2.npz")
    with pytest.raises(InvalidFileError, match="names in the metadata"):
        RegionComplex.load(_rewrite(old, tmp_path / "v3.npz", version=3))


def test_a_version_2_file_of_the_new_writer_loads(tmp_path):
    """A ReLU complex written as version 3 (a ReLU network's layers are its weights and
    biases, as in version 2), turned into the version-2 layout by hand."""
    weights, biases = random_network((2, 5, 3, 1), np.random.default_rng(8))
    complex_ = _walk(Network(weights, biases))
    complex_.save(tmp_path / "v3.npz")
    arrays = _arrays(tmp_path / "v3.npz")
    assert not [k for k in arrays if k.rstrip("0123456789") in ("units", "keep", "windows")]
    arrays["edge_neurons"] = arrays.pop("edge_kinks")
    loaded = RegionComplex.load(_rewrite(arrays, tmp_path / "v2.npz", version=2))
    assert_same_complex(complex_, loaded)


# -- checkpoints, workers, the cross-check ----------------------------------------------------

def test_checkpoint_resume_and_worker_processes_on_a_general_network(tmp_path):
    from polyrelu.regions.checkpoint import Checkpoint
    from polyrelu.regions.parallel import enumerate_parallel

    network = residual_pool_network(2)
    domain, options = Domain.box(*_box(2)), Options()
    reference = enumerate_regions(network, domain)
    checkpoint = Checkpoint(tmp_path / "c", network, domain, options, flush_regions=10)
    assert_same_complex(reference, enumerate_regions(network, domain, checkpoint=checkpoint))
    resumed = enumerate_regions(network, domain, checkpoint=tmp_path / "c")
    assert resumed.stats["resumed_regions"] == len(reference)
    assert_same_complex(reference, resumed)
    assert_same_complex(reference, enumerate_parallel(network, domain, jobs=2))


@pytest.mark.parametrize("seed", [0, 2])
def test_the_walk_and_the_splitting_enumerator_agree_on_general_networks(seed):
    network = residual_pool_network(seed)
    domain = Domain.box(*_box(2))
    walked = enumerate_regions(network, domain)
    assert compare_complexes(walked, _walk(network, facet_method="lp")).agree
    report = cross_check(network, domain, walked=walked)
    assert report.agree, report

"""The walk that keeps no regions in memory (``keep=False``) streams them to disk and gives
exactly the complex of the in-memory walk and of the splitting enumerator."""

import numpy as np
import pytest
from networks import mixed_network, residual_pool_network, tent_network

from oracles import assert_same_complex, edge_keys, random_network, shared_facet_radius
from polyrelu import Domain, InvalidFileError, Network, RegionComplex, enumerate_regions
from polyrelu.cli.main import main
from polyrelu.deadline import Deadline
from polyrelu.errors import PolyreluError, TimeLimitError
from polyrelu.options import Options
from polyrelu.regions.checkpoint import Checkpoint, StreamedComplex
from polyrelu.regions.crosscheck import compare_complexes
from polyrelu.regions.parallel import enumerate_parallel
from polyrelu.regions.region import affine_piece_labels
from polyrelu.regions.splitting import enumerate_by_splitting


def _box(network):
    return Domain.box(-np.ones(network.input_dim), np.ones(network.input_dim))


def _random(sizes, seed):
    return Network(*random_network(sizes, np.random.default_rng(seed)))


CASES = {
    "tent": lambda: tent_network(3),
    "relu-3d": lambda: _random((3, 8, 6, 1), 40),
    "relu-2d-deep": lambda: _random((2, 6, 6, 6, 2), 41),
    "mixed": lambda: mixed_network(seed=1),
    "residual-pool": lambda: residual_pool_network(seed=2),
}


def _streamed(network, directory, **kwargs):
    """A walk keeping no regions, saved and read back."""
    checkpoint = Checkpoint(directory / "run", network, _box(network), Options(),
                            flush_regions=7)
    streamed = enumerate_regions(network, _box(network), checkpoint=checkpoint, keep=False,
                                 **kwargs)
    assert isinstance(streamed, StreamedComplex)
    streamed.save(directory / "out.npz")
    return streamed, RegionComplex.load(directory / "out.npz", network)


def _brute_force_edges(complex_):
    """Pairs of packed patterns whose regions share a facet (an LP per pair)."""
    return {frozenset((complex_[u].key, complex_[v].key))
            for u in range(len(complex_)) for v in range(u + 1, len(complex_))
            if shared_facet_radius(complex_[u], complex_[v]) > 1e-7}


@pytest.mark.parametrize("name", sorted(CASES))
def test_streamed_walk_equals_in_memory_walk_and_splitting(name, tmp_path):
    network = CASES[name]()
    in_memory = enumerate_regions(network, _box(network))
    streamed, loaded = _streamed(network, tmp_path)
    assert len(streamed) == len(loaded) == len(in_memory) > 1
    assert_same_complex(in_memory, loaded)
    report = compare_complexes(loaded, enumerate_by_splitting(network, _box(network)))
    assert report.agree, report
    assert streamed.affine_piece_count() == len(in_memory.affine_pieces())
    assert streamed.stats["one_sided_edges"] == in_memory.stats["one_sided_edges"]
    assert not list((tmp_path / "run").glob(".chunk_*"))


@pytest.mark.parametrize("sizes,seed", [
    ((2, 6, 5, 1), 42), pytest.param((3, 5, 4, 1), 43, marks=pytest.mark.slow)])
def test_streamed_edges_are_exactly_the_shared_facets(sizes, seed, tmp_path):
    network = _random(sizes, seed)
    _, loaded = _streamed(network, tmp_path)
    split = enumerate_by_splitting(network, _box(network))
    assert {pair for pair, _ in edge_keys(loaded)} == _brute_force_edges(split)
    for u, v, kink in loaded.graph.edges(data="kink"):
        assert loaded[u].pattern[kink] != loaded[v].pattern[kink]


def test_streamed_walk_with_two_jobs(tmp_path):
    network = CASES["relu-3d"]()
    domain = _box(network)
    in_memory = enumerate_regions(network, domain)
    checkpoint = Checkpoint(tmp_path / "run", network, domain, Options(), flush_regions=5)
    streamed = enumerate_parallel(network, domain, jobs=2, checkpoint=checkpoint, keep=False)
    streamed.save(tmp_path / "out.npz")
    assert_same_complex(in_memory, RegionComplex.load(tmp_path / "out.npz"))
    kept = enumerate_parallel(network, domain, jobs=2)
    assert_same_complex(in_memory, kept)


class _ExpiresAfter(Deadline):
    """A deadline that expires at its ``checks``-th check (a deterministic interruption)."""

    def __init__(self, checks):
        super().__init__(3600)
        self.checks = checks

    def expired(self):
        self.checks -= 1
        return self.checks < 0


@pytest.mark.parametrize("jobs", [1, 2])
def test_interrupted_streamed_walk_resumes_to_the_same_complex(jobs, tmp_path):
    network = CASES["mixed"]()
    domain = _box(network)
    in_memory = enumerate_regions(network, domain)
    run = {"jobs": jobs} if jobs > 1 else {}
    walk = enumerate_parallel if jobs > 1 else enumerate_regions

    def checkpoint():
        return Checkpoint(tmp_path / "run", network, domain, Options(), flush_regions=3)

    with pytest.raises(TimeLimitError) as stopped:
        walk(network, domain, checkpoint=checkpoint(), keep=False, deadline=_ExpiresAfter(8),
             **run)
    partial = stopped.value.partial
    assert partial["partial"] and 0 < partial["regions"] < len(in_memory)
    streamed = walk(network, domain, checkpoint=checkpoint(), keep=False, **run)
    assert streamed.stats["resumed_regions"] > 0
    streamed.save(tmp_path / "out.npz")
    assert_same_complex(in_memory, RegionComplex.load(tmp_path / "out.npz"))


def test_kept_walk_resumed_from_a_streamed_checkpoint(tmp_path):
    network = CASES["tent"]()
    domain = _box(network)
    checkpoint = Checkpoint(tmp_path / "run", network, domain, Options(), flush_regions=2)
    with pytest.raises(TimeLimitError):
        enumerate_regions(network, domain, checkpoint=checkpoint, keep=False,
                          deadline=_ExpiresAfter(4))
    resumed = enumerate_regions(network, domain, checkpoint=tmp_path / "run")
    assert_same_complex(enumerate_regions(network, domain), resumed)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_corrupt_spill_chunk_is_refused_when_merged(damage, tmp_path):
    network = CASES["relu-3d"]()
    checkpoint = Checkpoint(tmp_path / "run", network, _box(network), Options(),
                            flush_regions=5)
    streamed = enumerate_regions(network, _box(network), checkpoint=checkpoint, keep=False)
    chunk = sorted((tmp_path / "run").glob("chunk_*.npz"))[1]
    data = bytearray(chunk.read_bytes())
    if damage == "truncate":
        del data[len(data) // 2:]
    else:
        data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(InvalidFileError) as refused:
        streamed.save(tmp_path / "out.npz")
    assert "\n" not in str(refused.value) and "chunk_000001" in str(refused.value)
    assert not (tmp_path / "out.npz").exists()


def test_cli_output_streams_through_a_spill_that_is_removed(tmp_path, capsys):
    network = CASES["relu-3d"]()
    weights = {f"W{i}": layer.weight for i, layer in enumerate(network.layers)}
    biases = {f"b{i}": layer.bias for i, layer in enumerate(network.layers)}
    np.savez(tmp_path / "net.npz", **weights, **biases)
    out = tmp_path / "out.npz"
    assert main(["regions", str(tmp_path / "net.npz"), "--box", "-1", "1", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz", "out.npz"]
    in_memory = enumerate_regions(network, _box(network))
    assert_same_complex(in_memory, RegionComplex.load(out))
    assert f"affine_pieces: {len(in_memory.affine_pieces())}" in printed
    assert main(["regions", str(tmp_path / "net.npz"), "--box", "-1", "1", "-o",
                 str(tmp_path / "late.npz"), "--timeout", "0.01"]) != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz", "out.npz"]


def test_a_walk_keeping_nothing_needs_a_checkpoint():
    network = CASES["tent"]()
    with pytest.raises(PolyreluError, match="needs a checkpoint"):
        enumerate_regions(network, _box(network), keep=False)


def test_affine_pieces_against_a_closed_form(tmp_path):
    """Three lines through the origin (x = 0, y = 0, x + y = 0) cut the square into 6
    regions; the output relu(x) + relu(y) ignores the third, so its pieces are the 4
    quadrants (maps x + y, x, y, 0)."""
    network = Network([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[1.0, 1.0, 0.0]]],
                      [[0.0, 0.0, 0.0], [0.0]])
    kept = enumerate_regions(network, _box(network))
    streamed, _ = _streamed(network, tmp_path)
    assert len(kept) == len(streamed) == 6
    assert len(kept.affine_pieces()) == streamed.affine_piece_count() == 4
    quadrants = {tuple(np.sign(region.interior_point)) for region in kept}
    pieces = {frozenset(tuple(np.sign(kept[i].interior_point)) for i in piece)
              for piece in kept.affine_pieces()}
    assert len(quadrants) == 4 and all(len(piece) == 1 for piece in pieces)


def test_affine_piece_labels_on_a_chain():
    """Regions 0-1-2-3 in a row: the maps of 1 and 2 agree to rtol, 0 and 3 differ."""
    W = np.array([[[1.0]], [[2.0]], [[2.0 + 1e-12]], [[3.0]]])
    labels = affine_piece_labels(W, np.zeros((4, 1)), np.array([[0, 1], [1, 2], [2, 3]]))
    assert labels[1] == labels[2] and len(set(labels.tolist())) == 3


def test_a_walk_without_regions_is_streamed_and_saved(tmp_path):
    """A box below the resolvable scale holds no region: the file holds none either."""
    path = tmp_path / "net.npz"
    np.savez(path, W0=np.array([[1.0, -1.0], [0.5, 2.0]]), b0=np.array([0.0, 1e-15]),
             W1=np.ones((1, 2)), b1=np.zeros(1))
    out = tmp_path / "out.npz"
    assert main(["regions", str(path), "--box", "0", "1e-14", "--allow-extreme-numerics",
                 "-o", str(out)]) == 0
    with np.load(out) as data:  # (loading refuses the tiny box itself)
        assert data["ids"].shape == (0,) and data["patterns"].shape == (0, 1)
        assert data["edges"].shape == (0, 2) and data["facet_offsets"].tolist() == [0]

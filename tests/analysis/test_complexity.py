"""Region counts over training: the counter's splitting counts equal fresh walks of the
saved checkpoints (box and balls) and the splitting count of the slice's plane network."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from oracles import random_network
from polyrelu import Domain, Network, enumerate_regions
from polyrelu.analysis.complexity import RegionCounter, count_checkpoints
from polyrelu.errors import PolyreluError
from polyrelu.network.loaders import load_network, save_npz
from polyrelu.planar.slices import slice_through
from polyrelu.regions.splitting import count_regions

EXAMPLE = Path(__file__).parents[2] / "examples" / "training_regions"
BOX = ([-1.0, -1.0], [1.0, 1.0])


def _walk_counts(network, counter):
    """The same counts, from the walk (and the slice's plane network counted by splitting
    over its box)."""
    record = {"box": len(enumerate_regions(network, counter.box))}
    for i, points in enumerate(counter.slices):
        plane = slice_through(network, points)
        low, high = np.array(plane.domain.bounds).reshape(2, 2)
        record[f"slice_{i}"] = count_regions(plane.plane, Domain.box(low, high))[0]
    record["balls"] = [len(enumerate_regions(network, Domain.ball(c, counter.radius)))
                       for c in counter.centres]
    return record


def _check_history(history, paths, counter):
    assert len(history) == len(paths)
    for record, path in zip(history, paths):
        expected = _walk_counts(load_network(path), counter)
        assert {k: record[k] for k in expected} == expected
        assert record["ball_mean"] == pytest.approx(np.mean(expected["balls"]))


def test_counts_of_saved_checkpoints_equal_fresh_walks(tmp_path):
    rng = np.random.default_rng(5)
    paths = []
    for epoch in range(3):
        weights, biases = random_network((2, 6 + 2 * epoch, 5, 2), rng)
        paths.append(tmp_path / f"epoch_{epoch}.npz")
        save_npz(Network(weights, biases), paths[-1])
    counter = RegionCounter(box=BOX, slices=[[[0, 0], [0.5, 0], [0, 0.5]]],
                            centres=[[0.1, 0.2], [-0.5, 0.3]], radius=0.2)
    history = count_checkpoints(paths, counter)
    _check_history(history, paths, counter)
    assert [r["epoch"] for r in history] == [0, 1, 2]
    table = counter.frame()
    assert list(table["box"]) == [r["box"] for r in history]


def test_curves_are_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    counter = RegionCounter(box=BOX)
    for seed in range(2):
        counter(Network(*random_network((2, 5, 1), np.random.default_rng(seed))))
    counter.plot(tmp_path / "counts.png")
    assert (tmp_path / "counts.png").stat().st_size > 1000


def test_a_counter_needs_something_to_count():
    with pytest.raises(PolyreluError, match="needs a box"):
        RegionCounter()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_the_training_example_records_the_checkpoints_counts(tmp_path):
    pytest.importorskip("sklearn")
    sys.path.insert(0, str(EXAMPLE))
    try:
        import train
    finally:
        sys.path.remove(str(EXAMPLE))
    counter, paths = train.train(tmp_path, epochs=3)
    _check_history(counter.history, paths, counter)


def test_the_sweep_example_counts_exactly(monkeypatch):
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import region_sweep
    finally:
        sys.path.remove(str(EXAMPLE.parent))
    monkeypatch.setattr(region_sweep, "WIDTHS", (3, 6))
    monkeypatch.setattr(region_sweep, "DEPTHS", (1, 2))
    monkeypatch.setattr(region_sweep, "SEEDS", 2)
    for depth, width, neurons, count in region_sweep.sweep():
        walks = [len(enumerate_regions(region_sweep.initialised(
            (width,) * depth, np.random.default_rng(s)), region_sweep.BOX)) for s in range(2)]
        assert neurons == depth * width and count == np.mean(walks)

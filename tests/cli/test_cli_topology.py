"""``polyrelu topology``: the Betti numbers of hand-built networks with known answers, the
barcode lines, JSON, and one clear line for requests that make no sense."""

import json

import numpy as np
import pytest

from polyrelu.cli import main
from polyrelu.network.loaders import save_npz
from tests.topology.test_topology import ring_network, two_holes_network


@pytest.fixture
def ring_file(tmp_path):
    path = tmp_path / "ring.npz"
    save_npz(ring_network(), path)
    return str(path)


def test_the_ring_prints_one_component_and_one_hole(ring_file, capsys):
    assert main(["topology", ring_file, "--box", "-6", "6", "--level", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "betti_0: 1" in lines and "betti_1: 1" in lines


def test_barcode_lines_and_json(ring_file, capsys):
    assert main(["topology", ring_file, "--box", "-6", "6", "--level", "1", "--barcode",
                 "--critical"]) == 0
    lines = capsys.readouterr().out.splitlines()
    bars = [line.split() for line in lines if line.startswith("bar_")]
    # one component from the diamond |x|_1 = 2 (f = 0), its hole filled at f = 2
    assert [(bar[0], float(bar[1]), float(bar[2])) for bar in bars] == \
        [("bar_0:", pytest.approx(0.0, abs=1e-12), np.inf),
         ("bar_1:", pytest.approx(0.0, abs=1e-12), pytest.approx(2.0))]
    assert any(line.startswith("critical_0: ") for line in lines)
    assert main(["topology", ring_file, "--box", "-6", "6", "--level", "1", "--barcode",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["betti_0"], result["betti_1"]) == (1, 1)
    assert [bar["death"] for bar in result["bars"]] == [None, pytest.approx(2.0)]


def test_decision_region_with_two_holes(tmp_path, capsys):
    path = tmp_path / "holes.npz"
    save_npz(two_holes_network(), path)
    assert main(["topology", str(path), "--box", "-6", "6", "--class", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["betti_0"], result["betti_1"]) == (1, 2)


@pytest.mark.parametrize("extra, message", [
    (["--class", "0", "--barcode"], "need --level or --superlevel"),
    (["--level", "1", "--output-index", "4"], "out of range"),
])
def test_bad_requests_are_one_line(ring_file, capsys, extra, message):
    assert main(["topology", ring_file, "--box", "-6", "6", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_one_of_the_three_sets_is_required(ring_file, capsys):
    assert main(["topology", ring_file, "--box", "-6", "6"]) == 2
    assert "one of the arguments --level --superlevel --class is required" in \
        capsys.readouterr().err

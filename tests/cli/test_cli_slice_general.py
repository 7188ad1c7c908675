"""``polyrelu slice`` on general networks saved as .npz (units, kept entries, windows)."""

import numpy as np
from networks import mixed_network, residual_pool_network

from oracles import planar_cells
from polyrelu.cli import main
from polyrelu.network.loaders import save_npz
from polyrelu.planar.slices import slice_through


def printed(capsys):
    return dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())


def test_box_slice_of_a_general_two_input_network(tmp_path, capsys):
    network = residual_pool_network(0)
    path = tmp_path / "general.npz"
    save_npz(network, path)
    picture = tmp_path / "general.png"
    assert main(["slice", str(path), "--box", "-2,-2", "2,2", "--boundary", "--graph",
                 "-o", str(picture)]) == 0
    lines = printed(capsys)
    assert int(lines["regions"]) == len(planar_cells(network, [-2, -2], [2, 2]))
    assert "max windows" in lines["network"]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_through_points_of_a_general_network_like_the_api(tmp_path, capsys):
    network = mixed_network(1, 4)
    path = tmp_path / "mixed.npz"
    save_npz(network, path)
    points = np.random.default_rng(3).normal(size=(3, 4))
    text = [",".join(map(repr, p.tolist())) for p in points]
    last = network.num_preactivations - 1
    assert main(["slice", str(path), "--through", *text, "--color", "neuron", "--neuron",
                 str(last), "-o", str(tmp_path / "n.svg")]) == 0
    lines = printed(capsys)
    plane = slice_through(network, points)
    assert int(lines["regions"]) == len(plane)
    assert int(lines["edges"]) == plane.graph.number_of_edges()

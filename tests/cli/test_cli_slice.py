"""The ``polyrelu slice`` command: counts checked against the engine, pictures, clear errors."""

import numpy as np
import pytest

from oracles import random_network
from polyrelu import Domain, Network, enumerate_regions
from polyrelu.cli import main


def save_net(path, weights, biases):
    np.savez(path, **{f"W{i}": w for i, w in enumerate(weights)},
             **{f"b{i}": b for i, b in enumerate(biases)})
    return str(path)


def printed(capsys):
    return dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())


def test_box_slice_of_a_two_input_network_counts_like_the_engine(tmp_path, capsys):
    weights, biases = random_network((2, 8, 8, 3), np.random.default_rng(11))
    net = save_net(tmp_path / "net.npz", weights, biases)
    picture = tmp_path / "regions.png"
    assert main(["slice", net, "--box", "-1", "1,2", "-o", str(picture), "--boundary"]) == 0
    lines = printed(capsys)
    complex_ = enumerate_regions(Network(weights, biases), Domain.box([-1, -1], [1, 2]))
    assert int(lines["regions"]) == len(complex_)
    assert int(lines["edges"]) == complex_.graph.number_of_edges()
    assert int(lines["boundary_segments"]) > 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plane_slice_counts_like_the_engine_on_the_composed_network(tmp_path, capsys):
    rng = np.random.default_rng(12)
    weights, biases = random_network((5, 10, 6, 2), rng)
    net = save_net(tmp_path / "net.npz", weights, biases)
    x0, u, v = rng.normal(size=(3, 5))
    as_text = [",".join(map(repr, p.tolist())) for p in (x0, u, v)]
    assert main(["slice", net, "--plane", *as_text, "--tbox", "-1,-0.5", "2,1",
                 "--color", "gradient", "-o", str(tmp_path / "g.svg")]) == 0
    composed = Network([weights[0] @ np.column_stack([u, v]), *weights[1:]],
                       [weights[0] @ x0 + biases[0], *biases[1:]])
    complex_ = enumerate_regions(composed, Domain.box([-1, -0.5], [2, 1]))
    assert int(printed(capsys)["regions"]) == len(complex_)
    assert (tmp_path / "g.svg").read_text().lstrip().startswith("<?xml")


def test_through_points_from_npy_files_and_from_text_agree(tmp_path, capsys):
    rng = np.random.default_rng(13)
    net = save_net(tmp_path / "net.npz", *random_network((6, 8, 8, 4), rng))
    points = rng.normal(size=(3, 6))
    files = []
    for i, p in enumerate(points):
        np.save(tmp_path / f"x{i}.npy", p.reshape(2, 3))  # any shape with d numbers
        files.append(str(tmp_path / f"x{i}.npy"))
    assert main(["slice", net, "--through", *files, "--color", "neuron", "--neuron", "9",
                 "-o", str(tmp_path / "n.png")]) == 0
    from_files = printed(capsys)
    text = [",".join(map(repr, p.tolist())) for p in points]
    assert main(["slice", net, "--through", *text, "--graph", "-o", str(tmp_path / "p.png")]) == 0
    from_text = printed(capsys)
    assert from_files["regions"] == from_text["regions"] and int(from_text["regions"]) > 1
    assert from_files["slice_box"] == from_text["slice_box"]


@pytest.mark.parametrize("extra,message", [
    (["--box", "-1", "1"], "--box slices the input plane of a 2-input network"),
    (["--through", "1,2,3", "0,0,0", "1,1,1"], "has 3 values but the network has 4 inputs"),
    (["--through", "0,0,0,0", "1,1,1,1", "2,2,2,2"], "collinear"),
    (["--through", "0,0,0,0", "1,0,0,0", "nope.npy"], "not a readable point (.npy) file"),
    (["--plane", "0,0,0,0", "1,0,0,0", "0,1,0,0", "--tbox", "0", "x"], "--tbox HI must be"),
    (["--plane", "0,0,0,0", "1,0,0,0", "0,1,0,0", "-o", "pic.jpg"],
     "must end in .png, .svg or .html"),
    (["--plane", "0,0,0,0", "1,0,0,0", "0,1,0,0", "-o", "p.png", "--color", "neuron"],
     "needs a neuron index"),
])
def test_bad_slice_arguments_give_clear_errors(tmp_path, capsys, extra, message):
    net = save_net(tmp_path / "net.npz", *random_network((4, 3, 2), np.random.default_rng(0)))
    assert main(["slice", net, *extra]) == 2
    assert message in capsys.readouterr().err

"""Domains users mean: --center/--radius (an l_inf ball) and --polytope (A, b in an .npz),
on every command that takes a domain; untrusted point and polytope files are checked
before anything is loaded."""

import json

import numpy as np
import pytest

from oracles import random_network
from polyrelu import Domain, enumerate_regions
from polyrelu.cli import main
from polyrelu.network.loaders import load_network


@pytest.fixture
def net_file(tmp_path):
    weights, biases = random_network((2, 6, 5, 1), np.random.default_rng(8))
    path = tmp_path / "net.npz"
    np.savez(path, **{f"W{i}": w for i, w in enumerate(weights)},
             **{f"b{i}": b for i, b in enumerate(biases)})
    return path


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_ball_is_the_box_around_the_centre(net_file, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.array([0.25, -0.5]))
    assert main(["regions", str(net_file), "--center", str(tmp_path / "x.npy"),
                 "--radius", "0.75", "--json"]) == 0
    ball = _json(capsys)
    box = enumerate_regions(load_network(net_file), Domain.box([-0.5, -1.25], [1.0, 0.25]))
    assert ball["regions"] == len(box) > 3
    assert main(["regions", str(net_file), "--center", "0.25,-0.5", "--radius", "0.75",
                 "--json"]) == 0
    assert _json(capsys)["regions"] == len(box)


def test_polytope_regions_tile_the_triangle(net_file, tmp_path, capsys):
    # the triangle x >= -1, y >= -1, x + y <= 1: legs of length 3, area 4.5
    A = np.array([[-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]])
    b = np.array([1.0, 1.0, 1.0])
    np.savez(tmp_path / "tri.npz", A=A, b=b)
    out = tmp_path / "c.npz"
    assert main(["regions", str(net_file), "--polytope", str(tmp_path / "tri.npz"),
                 "-o", str(out), "--json"]) == 0
    from polyrelu import RegionComplex

    complex_ = RegionComplex.load(out)
    assert len(complex_) == _json(capsys)["regions"] > 1
    assert sum(r.volume() for r in complex_) == pytest.approx(4.5, rel=1e-9)


def one_line(capsys, status, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    for fragment in fragments:
        assert fragment in err[0], err
    return err[0]


@pytest.mark.parametrize("extra,fragment", [
    (["--center", "0,0"], "--center and --radius go together"),
    (["--center", "0,0", "--radius", "-1"], "radius must be a positive number"),
    (["--center", "0,0,0", "--radius", "1"], "has 3 values"),
    (["--center", "0,nan", "--radius", "1"], "non-finite"),
    (["--box", "-1", "1", "--radius", "1"], "go together"),
])
def test_bad_balls(net_file, capsys, extra, fragment):
    one_line(capsys, main(["regions", str(net_file), *extra]), fragment)


def test_hostile_point_and_polytope_files(net_file, tmp_path, capsys):
    huge = tmp_path / "huge.npy"
    with open(huge, "wb") as handle:  # a header declaring 10^12 entries, no data
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 12,)})
    one_line(capsys, main(["regions", str(net_file), "--center", str(huge), "--radius", "1"]),
             "max_parameters = 2")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    one_line(capsys, main(["regions", str(net_file), "--center", str(tmp_path / "obj.npy"),
                           "--radius", "1"]), "expected numbers")
    np.savez(tmp_path / "noB.npz", A=np.eye(2))
    one_line(capsys, main(["regions", str(net_file), "--polytope", str(tmp_path / "noB.npz")]),
             "needs arrays A and b")
    np.savez(tmp_path / "open.npz", A=np.array([[1.0, 0.0]]), b=np.array([1.0]))
    one_line(capsys, main(["regions", str(net_file), "--polytope", str(tmp_path / "open.npz")]))
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not a zip")
    one_line(capsys, main(["regions", str(net_file), "--polytope", str(tmp_path / "junk.npz")]),
             "not a readable")

"""`polyrelu regions`, `slice`, `lipschitz` and `verify` on an ONNX file with max pooling,
LeakyReLU, Clip and a residual addition, against the shapely planar oracle and
finite differences of plain forward passes."""

import json

import numpy as np
import pytest

from polyrelu.cli import main
from polyrelu.network.loaders import load_network
from tests.oracles import general_forward, planar_cells

onnx = pytest.importorskip("onnx")


def _onnx_net(path, seed=3):
    """2 inputs: Gemm 6, Relu, MaxPool 1-D (kernel 2), LeakyRelu, Clip of a Gemm, and the
    input added back (residual), then Gemm 1."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    consts = {"W1": rng.normal(size=(2, 6)), "b1": rng.normal(size=6) * 0.4,
              "shape": np.array([1, 1, 6]), "flat": np.array([1, 3]),
              "W2": rng.normal(size=(3, 2)), "b2": rng.normal(size=2) * 0.3,
              "W3": rng.normal(size=(2, 1)), "b3": np.zeros(1)}
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["g1"], name="dense"),
             helper.make_node("Relu", ["g1"], ["r1"], name="relu"),
             helper.make_node("Reshape", ["r1", "shape"], ["r3"]),
             helper.make_node("MaxPool", ["r3"], ["p"], kernel_shape=[2], strides=[2],
                              name="pool"),
             helper.make_node("Reshape", ["p", "flat"], ["pf"]),
             helper.make_node("LeakyRelu", ["pf"], ["l"], alpha=0.2, name="leaky"),
             helper.make_node("Gemm", ["l", "W2", "b2"], ["g2"]),
             helper.make_node("Clip", ["g2", "lo", "hi"], ["c"], name="clip"),
             helper.make_node("Add", ["x", "c"], ["s"], name="residual"),
             helper.make_node("Gemm", ["s", "W3", "b3"], ["y"])]
    inits = [numpy_helper.from_array(v.astype(np.int64 if v.dtype.kind == "i" else np.float64),
                                     k) for k, v in consts.items()]
    inits += [numpy_helper.from_array(np.array(-0.5), "lo"),
              numpy_helper.from_array(np.array(0.6), "hi")]
    graph = helper.make_graph(nodes, "pl", [helper.make_tensor_value_info(
        "x", TensorProto.DOUBLE, [1, 2])], [helper.make_tensor_value_info(
            "y", TensorProto.DOUBLE, [1, 1])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture
def net_file(tmp_path):
    return str(_onnx_net(tmp_path / "pl.onnx"))


def _cells(net_file):
    network = load_network(net_file)
    assert not network.is_relu_mlp and network.window_pairs.size
    return network, planar_cells(network, np.array([-1.0, -1.0]), np.array([1.0, 1.0]))


def test_regions_and_slice_equal_the_planar_oracle(net_file, tmp_path, capsys):
    _, cells = _cells(net_file)
    assert main(["regions", net_file, "--box", "-1", "1", "--json", "--cross-check"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["regions"] == len(cells) > 5 and result["cross_check"] == "agree"
    assert main(["regions", net_file, "--box", "-1", "1", "--json", "--count-only"]) == 0
    assert json.loads(capsys.readouterr().out)["regions"] == len(cells)
    assert main(["slice", net_file, "--box", "-1", "1", "--json", "--boundary",
                 "-o", str(tmp_path / "s.png")]) == 0
    assert json.loads(capsys.readouterr().out)["regions"] == len(cells)


def test_lipschitz_equals_the_largest_finite_difference_gradient(net_file, capsys):
    network, cells = _cells(net_file)
    step, best = 1e-6, 0.0
    for polygon, _ in cells:  # the gradient on each cell, from plain forward passes
        x = np.array(polygon.representative_point().coords[0])
        f0 = general_forward(network, x)[0][0]
        gradient = [(general_forward(network, x + step * e)[0][0] - f0) / step
                    for e in np.eye(2)]
        best = max(best, float(np.linalg.norm(gradient)))
    assert main(["lipschitz", net_file, "--box", "-1", "1", "--norm", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lipschitz"] == pytest.approx(best, rel=1e-5)


def test_verify_refuses_in_one_line(net_file, tmp_path, capsys):
    prop = tmp_path / "p.vnnlib"
    prop.write_text("(declare-const X_0 Real) (declare-const X_1 Real) (declare-const Y_0 Real)"
                    " (assert (>= X_0 -1)) (assert (<= X_0 1)) (assert (>= X_1 -1))"
                    " (assert (<= X_1 1)) (assert (>= Y_0 100))")
    assert main(["verify", net_file, str(prop)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Linear + ReLU" in err[0], err

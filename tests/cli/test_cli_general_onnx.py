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


def _onnx_conv_net(path, seed=0):
    """A 2x2 image: Conv (2 channels, 2x2 kernels, padding 1), Relu, MaxPool 2x2 (stride 1),
    LeakyRelu, Flatten, Gemm 4, the flattened input added back (residual), Gemm 1."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    consts = {"K": rng.normal(size=(2, 1, 2, 2)), "kb": rng.normal(size=2) * 0.3,
              "W1": rng.normal(size=(8, 4)) * 0.5, "b1": rng.normal(size=4) * 0.3,
              "flat": np.array([1, 4]), "W2": rng.normal(size=(4, 1)), "b2": np.zeros(1)}
    nodes = [helper.make_node("Conv", ["x", "K", "kb"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[1, 1]),
             helper.make_node("LeakyRelu", ["p"], ["l"], alpha=0.1),
             helper.make_node("Flatten", ["l"], ["f"]),
             helper.make_node("Gemm", ["f", "W1", "b1"], ["g"]),
             helper.make_node("Reshape", ["x", "flat"], ["xf"]),
             helper.make_node("Add", ["g", "xf"], ["s"], name="residual"),
             helper.make_node("Gemm", ["s", "W2", "b2"], ["y"])]
    inits = [numpy_helper.from_array(v.astype(np.int64 if v.dtype.kind == "i" else np.float32),
                                     k) for k, v in consts.items()]
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 1, 2, 2])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 1])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _onnxruntime_outputs(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    entry = session.get_inputs()[0]
    shape = [dim if isinstance(dim, int) else 1 for dim in entry.shape]
    dtype = np.float64 if entry.type == "tensor(double)" else np.float32
    return np.array([session.run(None, {entry.name: np.asarray(p, dtype).reshape(shape)})[0]
                     .ravel() for p in x])


def _threshold_property(path, d, t):
    lines = [f"(declare-const X_{i} Real)" for i in range(d)] + ["(declare-const Y_0 Real)"]
    lines += [f"(assert (>= X_{i} -1)) (assert (<= X_{i} 1))" for i in range(d)]
    path.write_text("\n".join(lines + [f"(assert (>= Y_0 {float(t)!r}))"]))
    return str(path)


def _parse(text):
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


@pytest.mark.parametrize("which", ["pool", "conv"])
def test_verify_and_check_certificate_on_general_onnx(which, tmp_path, capsys):
    """``verify`` on ONNX files with Conv, MaxPool, LeakyRelu, Clip and residual Add: a
    threshold below a sampled onnxruntime output is violated (the counterexample reaches
    it under onnxruntime); one far above the sampled maximum holds with a certificate
    that ``check-certificate`` accepts, and that is refused for another network."""
    onnxruntime = pytest.importorskip("onnxruntime")
    del onnxruntime
    d = 2 if which == "pool" else 4
    net = str(_onnx_net(tmp_path / "n.onnx") if which == "pool"
              else _onnx_conv_net(tmp_path / "n.onnx"))
    assert not load_network(net).is_relu_mlp and load_network(net).window_pairs.size
    y = _onnxruntime_outputs(net, np.random.default_rng(0).uniform(-1, 1, (3000, d)))[:, 0]
    low = _threshold_property(tmp_path / "low.vnnlib", d, np.quantile(y, 0.9))
    assert main(["verify", net, low, "--result", str(tmp_path / "r.txt")]) == 0
    out = _parse(capsys.readouterr().out)
    assert out["result"] == "violated" and out["onnxruntime_check"].startswith("passed")
    x = np.array(json.loads(out["counterexample"]))
    assert np.all(np.abs(x) <= 1)
    assert _onnxruntime_outputs(net, [x])[0, 0] >= np.quantile(y, 0.9) - 1e-4
    high = _threshold_property(tmp_path / "high.vnnlib", d, y.max() + (y.max() - y.min()))
    cert = str(tmp_path / "c.npz")
    assert main(["verify", net, high, "--exact-threshold", "1000", "--certificate", cert]) == 0
    out = _parse(capsys.readouterr().out)
    assert out["result"] == "holds" and out["certificate"] == "checked"
    assert main(["check-certificate", net, high, cert]) == 0
    assert _parse(capsys.readouterr().out)["certificate"] == "valid"
    other = str(_onnx_net(tmp_path / "o.onnx", seed=4) if which == "pool"
                else _onnx_conv_net(tmp_path / "o.onnx", seed=4))
    assert main(["check-certificate", other, high, cert]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fingerprint" in err[0], err


def test_verify_bad_input_is_one_line(net_file, tmp_path, capsys):
    prop = _threshold_property(tmp_path / "p.vnnlib", 3, 1.0)  # 3 inputs; the net has 2
    assert main(["verify", net_file, prop]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "3 inputs but the network has 2" in err[0], err

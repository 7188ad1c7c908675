"""Loaders against independent forward passes: onnxruntime, torch, scikit-learn."""

from pathlib import Path

import numpy as np
import pytest

from oracles import random_network
from polyrelu import InvalidFileError, InvalidNetworkError, Network, UnsupportedLayerError
from polyrelu.network.loaders import from_sklearn, from_torch, load_network
from polyrelu.network.onnx_import import from_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _as_double(model):
    """A copy of an ONNX model whose tensors and input/output are float64."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for tensor in model.graph.initializer:
        tensor.CopyFrom(numpy_helper.from_array(
            numpy_helper.to_array(tensor).astype(np.float64), tensor.name))
    for value in list(model.graph.input) + list(model.graph.output):
        value.type.tensor_type.elem_type = TensorProto.DOUBLE
    return model


def test_all_acasxu_networks_agree_with_onnxruntime(acasxu_dir):
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.5, 0.7, size=(64, 5))
    files = sorted(acasxu_dir.glob("*.onnx"))
    assert len(files) == 45
    for path in files:
        network = from_onnx(path)
        assert network.hidden_sizes == (50,) * 6
        ours = network.forward(points)
        model = onnx.load(str(path))
        session = ort.InferenceSession(_as_double(model).SerializeToString())
        name = session.get_inputs()[0].name
        exact = np.vstack([session.run(None, {name: p.reshape(1, 1, 1, 5)})[0].ravel()
                           for p in points])
        np.testing.assert_allclose(ours, exact, rtol=0, atol=1e-9)
        session32 = ort.InferenceSession(str(path))
        single = np.vstack([session32.run(None, {name: p.astype(np.float32).reshape(1, 1, 1, 5)})[0]
                            .ravel() for p in points[:8]])
        np.testing.assert_allclose(ours[:8], single, rtol=1e-5, atol=1e-6)


def _gemm_model(weights, biases, extra_nodes=()):
    nodes, inits = [], []
    nodes.append(helper.make_node("Flatten", ["x"], ["h0"], axis=1))
    nodes.append(helper.make_node("Sub", ["h0", "mean"], ["h0s"]))
    nodes.append(helper.make_node("Div", ["h0s", "std"], ["g0"]))
    d = weights[0].shape[1]
    inits += [numpy_helper.from_array(np.full(d, 0.5), "mean"),
              numpy_helper.from_array(np.full(d, 2.0), "std")]
    current = "g0"
    for i, (w, b) in enumerate(zip(weights, biases)):
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"B{i}"], [f"z{i}"], transB=1))
        current = f"z{i}"
        if i < len(weights) - 1:
            nodes.append(helper.make_node("Relu", [current], [f"r{i}"]))
            current = f"r{i}"
    nodes += list(extra_nodes)
    out = extra_nodes[-1].output[0] if extra_nodes else current
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", d])],
        [helper.make_tensor_value_info(out, TensorProto.DOUBLE, ["N", weights[-1].shape[0]])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_gemm_model_with_normalisation_agrees_with_onnxruntime():
    weights, biases = random_network((3, 7, 5, 2), np.random.default_rng(1))
    model = _gemm_model(weights, biases)
    network = from_onnx(model)
    points = np.random.default_rng(2).normal(size=(100, 3))
    session = ort.InferenceSession(model.SerializeToString())
    np.testing.assert_allclose(network.forward(points), session.run(None, {"x": points})[0],
                               rtol=0, atol=1e-12)


def test_unsupported_onnx_operator_is_named():
    weights, biases = random_network((2, 3, 1), np.random.default_rng(3))
    sigmoid = helper.make_node("Sigmoid", ["z1"], ["s"], name="squash")
    with pytest.raises(UnsupportedLayerError, match="Sigmoid.*squash"):
        from_onnx(_gemm_model(weights, biases, [sigmoid]))


def test_npz_round_trip(tmp_path):
    weights, biases = random_network((3, 4, 2), np.random.default_rng(4))
    path = tmp_path / "net.npz"
    np.savez(path, W0=weights[0], b0=biases[0], W1=weights[1], b1=biases[1])
    network = load_network(path)
    x = np.random.default_rng(5).normal(size=(10, 3))
    expected = np.maximum(x @ weights[0].T + biases[0], 0) @ weights[1].T + biases[1]
    np.testing.assert_allclose(network.forward(x), expected, atol=1e-14)


def test_npz_with_missing_key_is_refused(tmp_path):
    path = tmp_path / "net.npz"
    np.savez(path, W0=np.eye(2), b0=np.zeros(2), W1=np.eye(2))
    with pytest.raises(InvalidFileError, match="b1"):
        load_network(path)


def test_unknown_extension_is_refused(tmp_path):
    path = tmp_path / "net.h5"
    path.write_text("x")
    with pytest.raises(InvalidFileError, match=".h5"):
        load_network(path)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_mlp_agrees_with_its_predictions(kind):
    sklearn = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(6)
    X = rng.normal(size=(200, 3))
    if kind == "classifier":
        y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)
        model = sklearn.MLPClassifier(hidden_layer_sizes=(8, 6), max_iter=300,
                                      random_state=0).fit(X, y)
        logits = from_sklearn(model).forward(X)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        np.testing.assert_allclose(probs / probs.sum(axis=1, keepdims=True),
                                   model.predict_proba(X), atol=1e-12)
    else:
        model = sklearn.MLPRegressor(hidden_layer_sizes=(8,), max_iter=300,
                                     random_state=0).fit(X, X[:, 0] ** 2)
        np.testing.assert_allclose(from_sklearn(model).forward(X).ravel(), model.predict(X),
                                   atol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_other_activation_is_refused():
    sklearn = pytest.importorskip("sklearn.neural_network")
    model = sklearn.MLPRegressor(hidden_layer_sizes=(4,), activation="tanh", max_iter=20).fit(
        np.random.default_rng(0).normal(size=(20, 2)), np.zeros(20))
    with pytest.raises(UnsupportedLayerError, match="tanh"):
        from_sklearn(model)


def test_torch_sequential_agrees_with_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 6), torch.nn.ReLU(),
                                torch.nn.Linear(6, 6), torch.nn.Linear(6, 3), torch.nn.ReLU())
    model = model.double()
    x = torch.randn(50, 4, dtype=torch.float64)
    network = from_torch(model)
    assert network.hidden_sizes == (6, 3)
    np.testing.assert_allclose(network.forward(x.numpy()), model(x).detach().numpy(), atol=1e-12)
    with pytest.raises(UnsupportedLayerError, match="Tanh"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh()))


@pytest.mark.parametrize("weights,biases,message", [
    ([[[1.0, np.nan]]], [[0.0]], "non-finite"),
    ([[[1.0, 2.0]], [[1.0], [2.0]]], [[0.0], [0.0, np.inf]], "non-finite"),
    ([[[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0, 3.0]]], [[0.0, 0.0], [0.0]], "layer 1.*2 outputs"),
    ([[[1.0, 2.0]]], [[0.0, 1.0]], "layer 0: bias"),
    ([], [], "at least one layer"),
])
def test_bad_weights_are_refused_with_a_clear_message(weights, biases, message):
    with pytest.raises(InvalidNetworkError, match=message):
        Network(weights, biases)


def test_missing_file_is_refused():
    with pytest.raises(InvalidFileError, match="no such file"):
        load_network(Path("/nonexistent/net.onnx"))

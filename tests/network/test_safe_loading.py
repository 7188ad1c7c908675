"""Untrusted model files: no code runs, sizes are checked before allocation, damaged
files give one named error (issue 15)."""

import os
import pickle
import time
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

from oracles import random_network
from polyrelu.errors import (
    InvalidFileError,
    InvalidNetworkError,
    SizeLimitError,
    UnsafeFileError,
)
from polyrelu.network.loaders import from_sklearn, load_network
from polyrelu.network.onnx_import import from_onnx

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


class _Payload:
    """Unpickling this creates the file ``marker``: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("suffix, route", [(".pkl", "skops"), (".joblib", "skl2onnx"),
                                           (".pt", "ONNX"), (".pth", "weights_only=True")])
def test_pickles_are_refused_and_never_run(tmp_path, suffix, route):
    marker = tmp_path / "ran"
    path = tmp_path / f"net{suffix}"
    path.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(UnsafeFileError, match=route) as info:
        load_network(path)
    assert "--trust-pickle" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_trusted_joblib_loads_with_a_warning(tmp_path):
    joblib = pytest.importorskip("joblib")
    model = _mlp("regressor")
    joblib.dump(model, tmp_path / "net.joblib")
    with pytest.warns(UserWarning, match="runs code"):
        network = load_network(tmp_path / "net.joblib", trust=True)
    x = np.random.default_rng(1).normal(size=(20, 3))
    np.testing.assert_allclose(network.forward(x).ravel(), model.predict(x), atol=1e-12)


def _mlp(kind):
    sklearn = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "classifier":
            return sklearn.MLPClassifier(hidden_layer_sizes=(5,), max_iter=30,
                                         random_state=0).fit(X, (X[:, 0] > 0).astype(int))
        return sklearn.MLPRegressor(hidden_layer_sizes=(5, 4), max_iter=30,
                                    random_state=0).fit(X, X[:, 1])


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_skops_mlp_loads_safely(tmp_path, kind):
    sio = pytest.importorskip("skops.io")
    model = _mlp(kind)
    sio.dump(model, tmp_path / "net.skops")
    network = load_network(tmp_path / "net.skops")
    x = np.random.default_rng(2).normal(size=(20, 3))
    np.testing.assert_array_equal(network.forward(x), from_sklearn(model).forward(x))


def test_skops_file_naming_another_type_is_refused(tmp_path):
    sio = pytest.importorskip("skops.io")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.random.default_rng(0).normal(size=(20, 2)),
                                     np.arange(20) % 2)
    sio.dump(model, tmp_path / "net.skops")
    with pytest.raises(UnsafeFileError, match="LogisticRegression"):
        load_network(tmp_path / "net.skops")


def _bounded(load, path, megabytes=20, seconds=2.0):
    """Run ``load(path)``; assert it allocated under ``megabytes`` and took under
    ``seconds``; return the exception it raised."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        load(path)
    except Exception as err:  # noqa: BLE001 - returned to the caller, which checks it
        raised = err
    else:
        raised = None
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < megabytes * 2 ** 20, f"peak memory {peak / 2 ** 20:.0f} MB"
    assert time.perf_counter() - start < seconds
    return raised


def test_a_huge_compressed_npz_layer_is_refused_before_loading(tmp_path):
    path = tmp_path / "big.npz"
    np.savez_compressed(path, W0=np.zeros((10_000, 10_000), dtype=np.float32),
                        b0=np.zeros(10_000), W1=np.zeros((1, 10_000)), b1=np.zeros(1))
    assert path.stat().st_size < 2_000_000
    error = _bounded(load_network, path)
    assert isinstance(error, SizeLimitError) and "max_parameters" in str(error)


def test_max_parameters_is_counted_on_the_files_tensors(tmp_path):
    weights, biases = random_network((3, 40, 2), np.random.default_rng(0))
    path = tmp_path / "net.npz"
    np.savez(path, W0=weights[0], b0=biases[0], W1=weights[1], b1=biases[1])
    total = sum(a.size for a in weights + biases)
    assert load_network(path, max_parameters=total).num_parameters == total
    with pytest.raises(SizeLimitError, match=f"max_parameters = {total - 1}"):
        load_network(path, max_parameters=total - 1)


def test_object_arrays_in_npz_are_refused(tmp_path):
    path = tmp_path / "net.npz"
    np.savez(path, W0=np.array([[1.0, None]], dtype=object), b0=np.zeros(1))
    with pytest.raises(InvalidFileError, match="dtype object"):
        load_network(path)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_damaged_npz_is_an_invalid_file(tmp_path, damage):
    weights, biases = random_network((3, 8, 2), np.random.default_rng(0))
    path = tmp_path / "net.npz"
    np.savez_compressed(path, W0=weights[0], b0=biases[0], W1=weights[1], b1=biases[1])
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "flip":
        for i in range(60, len(data) - 200, 37):
            data[i] ^= 0xFF
    else:
        data = bytearray(b"PK\x03\x04" + os.urandom(300))
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidFileError) as info:
        load_network(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 250


def test_npz_member_with_a_lying_header_is_an_invalid_file(tmp_path):
    path = tmp_path / "net.npz"
    np.savez(path, W0=np.eye(2), b0=np.zeros(2))
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["W0.npy"] = members["W0.npy"].replace(b"(2, 2)", b"(9, 9)")
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(InvalidFileError, match="declares 648 bytes of data but holds at most"):
        load_network(path)


def _graph(nodes, inputs, output, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info(output, TensorProto.DOUBLE, None)],
                              list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _input(shape):
    return [helper.make_tensor_value_info("x", TensorProto.DOUBLE, shape)]


def test_relu_on_a_wide_declared_input_is_refused_small(tmp_path):
    path = tmp_path / "wide.onnx"
    onnx.save(_graph([helper.make_node("Relu", ["x"], ["y"])], _input([1, 30_000]), "y"), path)
    assert path.stat().st_size < 120
    error = _bounded(load_network, path)
    assert isinstance(error, SizeLimitError) and "30000" in str(error)


def test_onnx_initializer_declared_huge_is_refused_before_conversion():
    tensor = TensorProto(name="W", data_type=TensorProto.DOUBLE, dims=[100_000, 100_000],
                         raw_data=bytes(16))
    model = _graph([helper.make_node("MatMul", ["x", "W"], ["y"])], _input([1, 2]), "y",
                   [tensor])
    error = _bounded(from_onnx, model)
    assert isinstance(error, SizeLimitError) and "declared dims" in str(error)


def test_constant_broadcast_blow_up_is_refused():
    row = numpy_helper.from_array(np.zeros((1, 20_000)), "r")
    column = numpy_helper.from_array(np.zeros((20_000, 1)), "c")
    nodes = [helper.make_node("Add", ["r", "c"], ["big"]),
             helper.make_node("Add", ["x", "big"], ["y"])]
    error = _bounded(from_onnx, _graph(nodes, _input([1, 2]), "y", [row, column]))
    assert isinstance(error, SizeLimitError)


def test_external_tensor_data_is_not_read():
    tensor = numpy_helper.from_array(np.eye(2), "W")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    model = _graph([helper.make_node("MatMul", ["x", "W"], ["y"])], _input([1, 2]), "y",
                   [tensor])
    with pytest.raises(InvalidFileError, match="external file"):
        from_onnx(model)


@pytest.mark.parametrize("nodes, message", [
    ([helper.make_node("Relu", ["nowhere"], ["y"])], "'nowhere' is not defined"),
    ([helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
      helper.make_node("Identity", ["b"], ["y"])], "'b' is not defined"),
    ([helper.make_node("Reshape", ["x", "target"], ["y"])], "bad target shape"),
    ([helper.make_node("Constant", [], ["k"], value_float=1.0),
      helper.make_node("Add", ["x", "k"], ["y"])], "Constant"),
    ([helper.make_node("MatMul", ["x"], ["y"])], "malformed"),
    ([helper.make_node("Identity", ["x"], ["z"])], "not computed by any node"),
])
def test_malformed_onnx_graphs_are_named(nodes, message):
    target = numpy_helper.from_array(np.array([0, 0, 0, 5], dtype=np.int64), "target")
    with pytest.raises(InvalidNetworkError, match=message) as info:
        from_onnx(_graph(nodes, _input([1, 3]), "y", [target]))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_onnx_is_an_invalid_file(tmp_path, acasxu_dir, damage):
    data = (acasxu_dir / "ACASXU_run2a_1_1_batch_2000.onnx").read_bytes()
    path = tmp_path / "net.onnx"
    path.write_bytes(data[:len(data) // 3] if damage == "truncate" else os.urandom(500))
    with pytest.raises((InvalidFileError, InvalidNetworkError)) as info:
        load_network(path)
    assert "\n" not in str(info.value)


def test_acasxu_within_the_default_limit_but_not_a_tiny_one(acasxu_dir):
    path = acasxu_dir / "ACASXU_run2a_1_1_batch_2000.onnx"
    assert load_network(path).num_parameters == 13_305
    with pytest.raises(SizeLimitError):
        load_network(path, max_parameters=1000)


def test_torch_state_dict_loads_with_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    from polyrelu.network.loaders import from_torch_state

    def architecture():
        return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                                   torch.nn.Linear(4, 2)).double()

    trained = architecture()
    torch.save(trained.state_dict(), tmp_path / "state.pt")
    network = from_torch_state(architecture(), tmp_path / "state.pt")
    x = torch.randn(10, 3, dtype=torch.float64)
    np.testing.assert_allclose(network.forward(x.numpy()), trained(x).detach().numpy(),
                               atol=1e-12)
    torch.save(_Payload(str(tmp_path / "ran")), tmp_path / "evil.pt")
    with pytest.raises(InvalidFileError, match="not a state dict"):
        from_torch_state(architecture(), tmp_path / "evil.pt")
    assert not (tmp_path / "ran").exists()

"""Fuzzing the model loaders with mutated npz and ONNX bytes and random ONNX graphs: no
exception other than a PolyreluError escapes, nothing hangs, memory stays bounded."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fuzzing import MUTATIONS, bounded, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracles import random_network
from polyrelu.network.loaders import load_network

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ACAS_NET = ROOT.parent / "shared" / "data" / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx"
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _npz_bytes(compressed):
    weights, biases = random_network((3, 6, 2), np.random.default_rng(0))
    buffer = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buffer, W0=weights[0], b0=biases[0], W1=weights[1], b1=biases[1])
    return buffer.getvalue()


SEEDS_NPZ = [_npz_bytes(False), _npz_bytes(True),
             (ROOT / "examples" / "nets" / "moons_2_16_16_2.npz").read_bytes()]


def _load_bytes(tmp_path, data, suffix):
    path = tmp_path / f"fuzzed{suffix}"
    path.write_bytes(data)
    with bounded():
        load_network(path)


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS_NPZ))), mutations=MUTATIONS)
def test_mutated_npz_bytes(tmp_path, seed, mutations):
    _load_bytes(tmp_path, mutate(SEEDS_NPZ[seed], mutations), ".npz")


_HEADER_SHAPE = st.lists(st.integers(0, 10 ** 12), max_size=3).map(tuple)


@FUZZ
@given(shapes=st.lists(_HEADER_SHAPE, min_size=1, max_size=4),
       dtype=st.sampled_from(["<f8", "<f4", "|b1", "<i8", "<c16", "|O", "<U3", "|V8"]))
def test_npz_with_lying_headers(tmp_path, shapes, dtype):
    """Members whose headers declare any shape and dtype, whatever data follows."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, shape in enumerate(shapes):
            header = {"descr": dtype, "fortran_order": False, "shape": shape}
            stream = io.BytesIO()
            np.lib.format.write_array_header_1_0(stream, header)
            archive.writestr(f"{'Wb'[i % 2]}{i // 2}.npy", stream.getvalue() + bytes(64))
    _load_bytes(tmp_path, buffer.getvalue(), ".npz")


def _small_onnx_bytes():
    weights, biases = random_network((3, 5, 2), np.random.default_rng(1))
    nodes, inits, current = [], [], "x"
    for i, (w, b) in enumerate(zip(weights, biases)):
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"B{i}"], [f"z{i}"], transB=1))
        current = f"z{i}"
        if i == 0:
            nodes.append(helper.make_node("Relu", [current], ["r0"]))
            current = "r0"
    graph = helper.make_graph(nodes, "mlp",
                              [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 3])],
                              [helper.make_tensor_value_info(current, TensorProto.DOUBLE, [1, 2])],
                              inits)
    return helper.make_model(graph).SerializeToString()


SEEDS_ONNX = [_small_onnx_bytes()] + ([ACAS_NET.read_bytes()] if ACAS_NET.is_file() else [])


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS_ONNX))), mutations=MUTATIONS)
def test_mutated_onnx_bytes(tmp_path, seed, mutations):
    _load_bytes(tmp_path, mutate(SEEDS_ONNX[seed], mutations), ".onnx")


_OPS = ["Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Neg", "Relu", "Flatten", "Reshape",
        "Squeeze", "Unsqueeze", "Identity", "Dropout", "Constant", "Sigmoid"]
_DIMS = st.lists(st.integers(-2, 5000), max_size=3)


@st.composite
def _graphs(draw):
    """Random graphs over the supported operators: random wiring (also to undefined or
    later names), random constants, attributes and declared shapes."""
    names = ["x"]
    inits = []
    for i in range(draw(st.integers(0, 3))):
        shape = draw(st.lists(st.integers(0, 6), max_size=3))
        inits.append(numpy_helper.from_array(
            np.random.default_rng(i).normal(size=shape), f"c{i}"))
        names.append(f"c{i}")
    nodes = []
    for i in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(_OPS))
        pool = names + [f"n{i + 1}", "missing", ""]
        inputs = draw(st.lists(st.sampled_from(pool), max_size=3))
        attrs = draw(st.dictionaries(st.sampled_from(["axis", "transB", "axes", "alpha"]),
                                     st.one_of(st.integers(-3, 3),
                                               st.lists(st.integers(-3, 3), min_size=1,
                                                        max_size=2)),
                                     max_size=2))
        nodes.append(helper.make_node(op, inputs, [f"n{i}"], **attrs))
        names.append(f"n{i}")
    dims = draw(_DIMS)
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, dims)],
        [helper.make_tensor_value_info(draw(st.sampled_from(names)), TensorProto.DOUBLE, None)],
        inits)
    return helper.make_model(graph).SerializeToString()


@FUZZ
@given(data=_graphs())
def test_random_onnx_graphs(tmp_path, data):
    _load_bytes(tmp_path, data, ".onnx")

"""Files for the peer nnenum (benchmarks/peer_nnenum.py): a ReLU MLP as ONNX and an input box
as VNN-LIB. Shared by the benchmark scripts that run nnenum on their own random nets."""

from pathlib import Path

import numpy as np


def mlp_onnx(weights, biases, path):
    """Save the ReLU MLP ``weights[l]`` (out x in), ``biases[l]`` as float32 ONNX (Gemm and
    Relu nodes, IR version 8: what nnenum's onnxruntime 1.19 reads)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, last = [], [], "x"
    for i, (w, b) in enumerate(zip(weights, biases)):
        inits += [numpy_helper.from_array(np.asarray(w, np.float32), f"W{i}"),
                  numpy_helper.from_array(np.asarray(b, np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [last, f"W{i}", f"b{i}"], [f"z{i}"], transB=1))
        last = f"z{i}"
        if i < len(weights) - 1:
            nodes.append(helper.make_node("Relu", [last], [f"h{i}"]))
            last = f"h{i}"
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                     [1, np.shape(weights[0])[1]])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, [1, len(biases[-1])])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, path)


def box_vnnlib(path, low, high, outputs):
    """A VNN-LIB file of the box [low, high] and one output constraint that never holds
    (nnenum's loader wants one; nothing is pruned by it)."""
    lines = [f"(declare-const X_{i} Real)" for i in range(len(low))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(outputs)]
    for i, (lo, hi) in enumerate(zip(low, high)):
        lines += [f"(assert (>= X_{i} {float(lo)!r}))", f"(assert (<= X_{i} {float(hi)!r}))"]
    lines.append("(assert (>= Y_0 1e9))")
    Path(path).write_text("\n".join(lines) + "\n")

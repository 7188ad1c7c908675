"""Wall time of ``from_onnx`` on a small convolutional net for 1x28x28 inputs.

Conv 8 3x3, ReLU, MaxPool 2, Conv 16 3x3, ReLU, MaxPool 2, Flatten, Gemm 10 (random
weights, float64). Prints the best and median of ``--repeats`` loads and the network's
layer sizes. Usage: ``python benchmarks/bench_onnx_load.py [--repeats 5]``.
"""

import argparse
import statistics
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from polyrelu.network.onnx_import import from_onnx


def conv_net(seed=0):
    """The benchmark's ONNX model."""
    rng = np.random.default_rng(seed)
    weights = {"W1": rng.normal(size=(8, 1, 3, 3)), "B1": rng.normal(size=8),
               "W2": rng.normal(size=(16, 8, 3, 3)) / 5, "B2": rng.normal(size=16),
               "W3": rng.normal(size=(10, 400)) / 20, "B3": rng.normal(size=10)}
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "W2", "B2"], ["c2"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p2"], ["f"]),
             helper.make_node("Gemm", ["f", "W3", "B3"], ["y"], transB=1)]
    graph = helper.make_graph(
        nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 10])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def main():
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = conv_net()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        network = from_onnx(model)
        times.append(time.perf_counter() - start)
    print(f"from_onnx, 1x28x28 conv net: best {min(times):.3f} s, median "
          f"{statistics.median(times):.3f} s over {args.repeats} loads; hidden sizes "
          f"{network.hidden_sizes}, {network.num_hidden} kinks")


if __name__ == "__main__":
    main()

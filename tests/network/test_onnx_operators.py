"""ONNX operators: ``from_onnx(model).forward`` against onnxruntime on 10^4 random points.

Every case is a small float64 model built here. Where onnxruntime's CPU provider has no
double kernel (Conv, ConvTranspose, AveragePool, GlobalAveragePool, GlobalMaxPool,
HardSigmoid, Mean, Clip in its opset-6 form, in onnxruntime 1.32), the case brings an
independent float64 numpy reference (direct loops over windows) and is also checked against
onnxruntime on the float32 copy of the model, to float32 accuracy.
"""

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from polyrelu.errors import (
    InvalidNetworkError,
    PolyreluError,
    SizeLimitError,
    UnsupportedLayerError,
)
from polyrelu.network.onnx_import import from_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper

N_POINTS = 10_000
ROOT = Path(__file__).resolve().parents[2]
ACAS_1_1 = ROOT.parent / "shared" / "data" / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx"
R = np.random.default_rng(0)


def node(op, inputs, output="y", **attrs):
    """A node named after its output."""
    return helper.make_node(op, inputs, [output] if isinstance(output, str) else output,
                            name=f"{op.lower()}_{output}", **attrs)


@dataclass
class Case:
    """A one-input model: nodes, the input shape without the batch axis, initializers,
    the opset, and a numpy reference ``reference(x, inits)`` (float64) for ops without
    double kernels."""

    nodes: list
    shape: tuple
    inits: dict = field(default_factory=dict)
    opset: int = 17
    reference: object = None

    def model(self, dtype=np.float64):
        """The model with float tensors of ``dtype`` and a symbolic batch axis."""
        elem = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
        tensors = [numpy_helper.from_array(v.astype(dtype) if v.dtype.kind == "f" else v, k)
                   for k, v in self.inits.items()]
        graph = helper.make_graph(
            self.nodes, "g", [helper.make_tensor_value_info("x", elem, ["N", *self.shape])],
            [helper.make_tensor_value_info(self.nodes[-1].output[0], elem, None)], tensors)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])


def _session(model):
    """An onnxruntime session, or None if it has no kernel for the model's types."""
    try:
        return ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
    except Exception as err:
        if "NOT_IMPLEMENTED" in str(err):
            return None
        raise


def check(case):
    """Compare on 10^4 points; return "double" or "float" (what onnxruntime could run)."""
    x = R.uniform(-2, 2, size=(N_POINTS,) + case.shape)
    network = from_onnx(case.model())
    ours = network.forward(x.reshape(N_POINTS, -1))
    session = _session(case.model())
    if session is not None:
        expected = session.run(None, {"x": x})[0].reshape(N_POINTS, -1)
        np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-9)
        return "double"
    assert case.reference is not None, "onnxruntime has no double kernel: give a reference"
    reference = case.reference(x, case.inits).reshape(N_POINTS, -1)
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-9)
    single = _session(case.model(np.float32)).run(None, {"x": x.astype(np.float32)})[0]
    scale = max(1.0, float(np.abs(single).max()))
    np.testing.assert_allclose(ours, single.reshape(N_POINTS, -1), rtol=1e-4, atol=1e-5 * scale)
    return "float"


# -- float64 numpy references (loops over output positions) ----------------------------
def _defaults(dims, strides, pads, dilations):
    return (strides or [1] * dims, pads or [0] * (2 * dims), dilations or [1] * dims)


def np_conv(x, w, b=None, strides=None, pads=None, dilations=None, group=1):
    """Direct grouped N-d convolution."""
    dims = w.ndim - 2
    strides, pads, dilations = _defaults(dims, strides, pads, dilations)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[a], pads[a + dims]) for a in range(dims)])
    extent = [(k - 1) * d + 1 for k, d in zip(w.shape[2:], dilations)]
    out = [(n - e) // s + 1 for n, e, s in zip(xp.shape[2:], extent, strides)]
    (m, cg), mg, axes = w.shape[:2], w.shape[0] // group, list(range(1, dims + 2))
    y = np.zeros((x.shape[0], m, *out))
    for o in itertools.product(*map(range, out)):
        window = tuple(slice(i * s, i * s + e, d)
                       for i, s, e, d in zip(o, strides, extent, dilations))
        for g in range(group):
            patch = xp[(slice(None), slice(g * cg, (g + 1) * cg)) + window]
            y[(slice(None), slice(g * mg, (g + 1) * mg)) + o] = np.tensordot(
                patch, w[g * mg:(g + 1) * mg], axes=(axes, axes))
    return y if b is None else y + b.reshape((1, m) + (1,) * dims)


def np_conv_transpose(x, w, b=None, strides=None, pads=None, dilations=None, group=1,
                      output_padding=None):
    """Direct transposed convolution: scatter every input entry, then crop the pads."""
    dims = w.ndim - 2
    strides, pads, dilations = _defaults(dims, strides, pads, dilations)
    extra = output_padding or [0] * dims
    mg, cg = w.shape[1], w.shape[0] // group
    extent = [(k - 1) * d + 1 for k, d in zip(w.shape[2:], dilations)]
    full = [(n - 1) * s + e + p for n, s, e, p in zip(x.shape[2:], strides, extent, extra)]
    y = np.zeros((x.shape[0], mg * group, *full))
    for i in itertools.product(*map(range, x.shape[2:])):
        window = tuple(slice(j * s, j * s + e, d)
                       for j, s, e, d in zip(i, strides, extent, dilations))
        for g in range(group):
            part = np.tensordot(x[(slice(None), slice(g * cg, (g + 1) * cg)) + i],
                                w[g * cg:(g + 1) * cg], axes=(1, 0))
            y[(slice(None), slice(g * mg, (g + 1) * mg)) + window] += part
    y = y[(slice(None), slice(None)) + tuple(slice(pads[a], full[a] - pads[a + dims])
                                             for a in range(dims))]
    return y if b is None else y + b.reshape((1, -1) + (1,) * dims)


def np_pool(x, kernel, strides=None, pads=None, dilations=None, ceil=False, mode="max",
            count_include_pad=False):
    """Direct max or average pooling; padding never wins a max."""
    dims = len(kernel)
    strides, pads, dilations = _defaults(dims, strides, pads, dilations)
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    out = []
    for a, (n, e, s) in enumerate(zip(x.shape[2:], extent, strides)):
        span = n + pads[a] + pads[a + dims] - e
        count = (-(-span // s) if ceil else span // s) + 1
        out.append(count - 1 if ceil and (count - 1) * s >= n + pads[a] else count)
    size = [max((o - 1) * s + e, n + p) for o, s, e, n, p in
            zip(out, strides, extent, x.shape[2:], pads)]
    value, valid, inside = (np.zeros(x.shape[:2] + tuple(size)) for _ in range(3))
    place = (slice(None), slice(None)) + tuple(slice(p, p + n) for p, n in zip(pads, x.shape[2:]))
    value[place], valid[place] = x, 1.0
    inside[(slice(None), slice(None)) + tuple(
        slice(0, n + pads[a] + pads[a + dims]) for a, n in enumerate(x.shape[2:]))] = 1.0
    y = np.zeros(x.shape[:2] + tuple(out))
    spatial = tuple(range(2, 2 + dims))
    for o in itertools.product(*map(range, out)):
        window = (slice(None), slice(None)) + tuple(
            slice(i * s, i * s + e, d) for i, s, e, d in zip(o, strides, extent, dilations))
        v, ok = value[window], valid[window]
        if mode == "max":
            y[(slice(None), slice(None)) + o] = np.where(ok > 0, v, -np.inf).max(axis=spatial)
        else:
            count = (inside if count_include_pad else valid)[window].sum(axis=spatial)
            y[(slice(None), slice(None)) + o] = (v * ok).sum(axis=spatial) / count
    return y


# -- the cases ---------------------------------------------------------------------------
def conv(shape, w_shape, bias=True, reference_pads=None, **attrs):
    """A Conv case; ``reference_pads`` gives the explicit pads auto_pad implies."""
    inits = {"W": R.normal(size=w_shape)}
    if bias:
        inits["B"] = R.normal(size=w_shape[0])
    group = attrs.get("group", 1)

    def reference(x, t):
        return np_conv(x, t["W"], t.get("B"), attrs.get("strides"),
                       reference_pads or attrs.get("pads"), attrs.get("dilations"), group)

    return Case([node("Conv", ["x", "W"] + (["B"] if bias else []), **attrs)], shape, inits,
                reference=reference)


def conv_transpose(shape, w_shape, **attrs):
    inits = {"W": R.normal(size=w_shape), "B": R.normal(size=w_shape[1] * attrs.get("group", 1))}

    def reference(x, t):
        return np_conv_transpose(x, t["W"], t["B"], attrs.get("strides"), attrs.get("pads"),
                                 attrs.get("dilations"), attrs.get("group", 1),
                                 attrs.get("output_padding"))

    return Case([node("ConvTranspose", ["x", "W", "B"], **attrs)], shape, inits,
                reference=reference)


def pool(op, shape, reference_pads=None, **attrs):
    mode = "max" if op == "MaxPool" else "average"

    def reference(x, t):
        return np_pool(x, attrs["kernel_shape"], attrs.get("strides"),
                       reference_pads or attrs.get("pads"), attrs.get("dilations"),
                       attrs.get("ceil_mode", 0), mode, attrs.get("count_include_pad", 0))

    return Case([node(op, ["x"], **attrs)], shape, reference=reference, opset=19)


def unary(op, shape=(3, 4), inputs=(), opset=17, reference=None, **attrs):
    """One node on x and initializers ``inputs`` (name, array) pairs."""
    inits = dict(inputs)
    names = ["x"] + [k if v is not None else "" for k, v in inputs]
    inits = {k: v for k, v in inits.items() if v is not None}
    return Case([node(op, names, **attrs)], shape, inits, opset, reference)


def chain(nodes, shape=(3, 4), inits=None, opset=17, reference=None):
    return Case(nodes, shape, inits or {}, opset, reference)


def _i64(*values):
    return np.array(values, dtype=np.int64)


SLICE_B = [node("Slice", ["x", "s0", "e1", "a2"], "b")]  # x[:, :, 0:1] of (N, 3, 4)
SLICE_INITS = {"s0": _i64(0), "e1": _i64(1), "a2": _i64(2)}

CASES = {
    # convolutions
    "conv2d": conv((2, 6, 6), (3, 2, 3, 3)),
    "conv2d-stride-pads": conv((2, 7, 6), (3, 2, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1]),
    "conv2d-dilation-asymmetric-pads": conv((2, 7, 7), (2, 2, 3, 2), dilations=[2, 1],
                                            pads=[1, 0, 2, 1]),
    "conv2d-groups": conv((4, 5, 5), (6, 2, 3, 3), group=2, pads=[1, 1, 1, 1]),
    "conv2d-depthwise": conv((3, 5, 5), (3, 1, 2, 2), group=3, strides=[1, 2]),
    "conv2d-same-upper": conv((2, 6, 6), (2, 2, 3, 3), auto_pad="SAME_UPPER", strides=[2, 2],
                              reference_pads=[0, 0, 1, 1]),
    "conv2d-same-lower": conv((2, 6, 6), (2, 2, 3, 3), auto_pad="SAME_LOWER", strides=[2, 2],
                              reference_pads=[1, 1, 0, 0]),
    "conv2d-valid-no-bias": conv((2, 5, 5), (2, 2, 3, 3), bias=False, auto_pad="VALID"),
    "conv2d-kernel-shape": conv((1, 5, 5), (2, 1, 3, 3), kernel_shape=[3, 3]),
    "conv1d": conv((2, 9), (3, 2, 3), strides=[2], pads=[2, 1], dilations=[2]),
    "conv-transpose-2d": conv_transpose((2, 3, 3), (2, 3, 3, 3), strides=[2, 2],
                                        pads=[1, 1, 1, 1], output_padding=[1, 1]),
    "conv-transpose-groups-dilation": conv_transpose((4, 3, 3), (4, 1, 2, 2), group=2,
                                                     dilations=[2, 2], strides=[1, 2]),
    "conv-transpose-1d": conv_transpose((2, 5), (2, 2, 3), strides=[3], pads=[1, 0]),
    "batchnorm": unary("BatchNormalization", (3, 4, 4), [
        ("s", R.normal(size=3)), ("b", R.normal(size=3)), ("m", R.normal(size=3)),
        ("v", R.uniform(0.5, 2, size=3))], epsilon=1e-3),
    "batchnorm-1d-opset9": unary("BatchNormalization", (3,), [
        ("s", R.normal(size=3)), ("b", R.normal(size=3)), ("m", R.normal(size=3)),
        ("v", R.uniform(0.5, 2, size=3))], opset=9),
    # pooling
    "maxpool": pool("MaxPool", (2, 6, 6), kernel_shape=[2, 2], strides=[2, 2]),
    "maxpool-pads-stride": pool("MaxPool", (2, 7, 7), kernel_shape=[3, 3], strides=[2, 2],
                                pads=[1, 1, 1, 1]),
    "maxpool-dilation": pool("MaxPool", (1, 7, 7), kernel_shape=[2, 3], dilations=[2, 2],
                             pads=[0, 1, 1, 0]),
    "maxpool-ceil": pool("MaxPool", (2, 6, 7), kernel_shape=[3, 2], strides=[2, 2],
                         ceil_mode=1, pads=[1, 0, 0, 1]),
    "maxpool-same-upper": pool("MaxPool", (1, 5, 6), kernel_shape=[2, 3], strides=[2, 2],
                               auto_pad="SAME_UPPER", reference_pads=[0, 0, 1, 1]),
    "maxpool-1d": pool("MaxPool", (3, 10), kernel_shape=[3], strides=[3], pads=[1, 1]),
    "avgpool": pool("AveragePool", (2, 6, 6), kernel_shape=[2, 2], strides=[2, 2]),
    "avgpool-pads-exclude": pool("AveragePool", (2, 5, 5), kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    "avgpool-pads-include": pool("AveragePool", (2, 5, 5), kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                 count_include_pad=1),
    "avgpool-ceil-include": pool("AveragePool", (1, 6, 7), kernel_shape=[3, 3], strides=[2, 2],
                                 pads=[1, 1, 0, 1], ceil_mode=1, count_include_pad=1),
    "avgpool-ceil-exclude": pool("AveragePool", (1, 6, 7), kernel_shape=[3, 2], strides=[2, 3],
                                 pads=[0, 1, 1, 0], ceil_mode=1),
    "avgpool-1d-dilation": pool("AveragePool", (2, 9), kernel_shape=[3], dilations=[2],
                                strides=[2], pads=[1, 1]),
    "global-avgpool": unary("GlobalAveragePool", (3, 4, 5),
                            reference=lambda x, t: x.mean(axis=(2, 3), keepdims=True)),
    "global-maxpool": unary("GlobalMaxPool", (3, 4, 5),
                            reference=lambda x, t: x.max(axis=(2, 3), keepdims=True)),
    # element-wise piecewise linear
    "relu": unary("Relu"),
    "leaky-relu": unary("LeakyRelu", alpha=0.2),
    "leaky-relu-default": unary("LeakyRelu"),
    "prelu-channel": unary("PRelu", (3, 2, 2), [("s", R.uniform(-1, 1, size=(3, 1, 1)))]),
    "prelu-last-axis": unary("PRelu", (3, 4), [("s", R.uniform(-1, 1, size=4))]),
    "abs": unary("Abs"),
    "clip-both": unary("Clip", inputs=[("lo", np.array(-0.5)), ("hi", np.array(0.7))]),
    "clip-min": unary("Clip", inputs=[("lo", np.array(0.3))]),
    "clip-max": unary("Clip", inputs=[("lo", None), ("hi", np.array(-0.2))]),
    "clip-none": unary("Clip"),
    "clip-attributes-opset6": unary("Clip", opset=6, min=-1.0, max=1.0,
                                    reference=lambda x, t: np.clip(x, -1, 1)),
    "hard-sigmoid": unary("HardSigmoid", alpha=0.3, beta=0.4,
                          reference=lambda x, t: np.clip(
                              float(np.float32(0.3)) * x + float(np.float32(0.4)), 0, 1)),
    "max-constant": unary("Max", inputs=[("c", R.normal(size=4))]),
    "min-constant": unary("Min", inputs=[("c", R.normal(size=(3, 1)))]),
    "max-three": chain([node("Neg", ["x"], "n"), node("Max", ["x", "n", "c"])],
                       inits={"c": R.normal(size=4)}),
    "min-broadcast": chain(SLICE_B + [node("Min", ["x", "b"])], inits=SLICE_INITS),
    "max-single": unary("Max"),
    "max-same-tensor-twice": chain([node("Max", ["x", "x"])]),
    # affine, residual
    "add-residual": chain([node("Relu", ["x"], "r"), node("Add", ["x", "r"])]),
    "add-broadcast-constant": unary("Add", inputs=[("c", R.normal(size=4))]),
    "add-broadcast-tensors": chain(SLICE_B + [node("Add", ["b", "x"])], inits=SLICE_INITS),
    "sub-tensors": chain(SLICE_B + [node("Sub", ["x", "b"])], inits=SLICE_INITS),
    "sub-constant-first": chain([node("Sub", ["c", "x"])], inits={"c": R.normal(size=(3, 1))}),
    "mul-broadcast": unary("Mul", inputs=[("c", R.normal(size=(3, 1)))]),
    "mul-constant-first": chain([node("Mul", ["c", "x"])], inits={"c": R.normal(size=4)}),
    "div": unary("Div", inputs=[("c", R.uniform(0.5, 2, size=4))]),
    "neg": unary("Neg"),
    "sum": chain([node("Relu", ["x"], "r"), node("Sum", ["x", "r", "c"])],
                 inits={"c": R.normal(size=4)}),
    "mean": chain([node("Abs", ["x"], "a"), node("Mean", ["x", "a"])],
                  reference=lambda x, t: (x + np.abs(x)) / 2),
    "gemm": unary("Gemm", (4,), [("W", R.normal(size=(3, 4))), ("C", R.normal(size=3))],
                  transB=1, alpha=0.7, beta=1.3),
    "gemm-no-bias": unary("Gemm", (4,), [("W", R.normal(size=(4, 3)))]),
    "gemm-row-bias": unary("Gemm", (4,), [("W", R.normal(size=(4, 2))),
                                          ("C", R.normal(size=(1, 2)))]),
    "matmul-3d": unary("MatMul", (3, 4), [("W", R.normal(size=(4, 5)))]),
    "matmul-vector": unary("MatMul", (3, 4), [("W", R.normal(size=4))]),
    "matmul-constant-left": chain([node("MatMul", ["W", "x"])], inits={"W": R.normal(size=(2, 3))}),
    "constant-node": chain([node("Constant", [], "k", value=numpy_helper.from_array(
        R.normal(size=4))), node("Add", ["x", "k"])]),
    "identity-dropout": chain([node("Identity", ["x"], "i"), node("Dropout", ["i"])],
                              opset=13),
    # shapes
    "flatten": unary("Flatten", (2, 3, 2)),
    "flatten-axis-2": unary("Flatten", (2, 3, 2), axis=2),
    "flatten-negative-axis": unary("Flatten", (2, 3, 2), axis=-1),
    "reshape-zero-minus-one": unary("Reshape", (2, 3, 2), [("t", _i64(0, -1, 2))]),
    "reshape-allowzero": unary("Reshape", (2, 3), [("t", _i64(-1, 3, 2))], opset=14,
                               allowzero=1),
    "transpose": unary("Transpose", (2, 3, 4), perm=[0, 3, 1, 2]),
    "squeeze-unsqueeze-opset11": chain([node("Unsqueeze", ["x"], "u", axes=[1, -1]),
                                        node("Squeeze", ["u"], axes=[1])], opset=11),
    "squeeze-unsqueeze-opset13": chain([node("Unsqueeze", ["x", "a"], "u"),
                                        node("Squeeze", ["u", "b"])],
                                       inits={"a": _i64(3, 1), "b": _i64(3)}, opset=13),
    "squeeze-all-ones": chain([node("Unsqueeze", ["x", "a"], "u"), node("Squeeze", ["u"])],
                              shape=(3, 1, 4), inits={"a": _i64(3)}, opset=13),
    "slice-steps-negative": unary("Slice", (5, 6), [
        ("s", _i64(-1, 1)), ("e", _i64(-6, 100)), ("a", _i64(1, 2)), ("st", _i64(-2, 2))]),
    "slice-reverse-all": unary("Slice", (5,), [
        ("s", _i64(-1)), ("e", _i64(-2 ** 63)), ("a", _i64(1)), ("st", _i64(-1))]),
    "slice-opset9-attributes": unary("Slice", (5, 6), opset=9, starts=[1, -3], ends=[4, 100],
                                     axes=[1, 2]),
    "gather-negative": unary("Gather", (4, 3), [("i", _i64(-1, 0, 2, 0))], axis=1),
    "gather-2d-indices": unary("Gather", (4, 3), [("i", np.array([[2, -1], [0, 1]]))], axis=2),
    "gather-scalar": unary("Gather", (4, 3), [("i", np.array(1))], axis=-1),
    "concat": chain([node("Relu", ["x"], "r"), node("Neg", ["x"], "n"),
                     node("Concat", ["x", "r", "n"], axis=1)]),
    "concat-last-axis": chain([node("Abs", ["x"], "a"), node("Concat", ["a", "x"], axis=-1)]),
    "split": chain([node("Split", ["x", "p"], ["s1", "s2"], axis=2),
                    node("Sub", ["s2", "s1"])], inits={"p": _i64(2, 2)}, opset=13),
    "expand": chain(SLICE_B + [node("Expand", ["b", "t"])],
                    inits={**SLICE_INITS, "t": _i64(1, 3, 4)}),
    "pad-constant-zero": unary("Pad", (2, 3), [("p", _i64(0, 1, 2, 0, 0, 1))], opset=13),
    "pad-constant-value": unary("Pad", (2, 3), [("p", _i64(0, 1, 2, 0, 2, 0)),
                                                ("v", np.array(1.5))], opset=13),
    "pad-reflect": unary("Pad", (3, 4), [("p", _i64(0, 2, 1, 0, 1, 3))], opset=13,
                         mode="reflect"),
    "pad-edge": unary("Pad", (3, 4), [("p", _i64(0, 2, 1, 0, 1, 3))], opset=13, mode="edge"),
    "pad-wrap-axes": unary("Pad", (3, 4), [("p", _i64(1, 2, 3, 1)), ("v", None),
                                           ("ax", _i64(-1, 1))], opset=19, mode="wrap"),
    "pad-crop": unary("Pad", (3, 4), [("p", _i64(0, -1, 2, 0, 0, -1))], opset=13),
    "pad-opset2-attributes": unary("Pad", (3, 4), opset=2, pads=[0, 1, 0, 0, 0, 2],
                                   value=-0.5),
    "reduce-sum": unary("ReduceSum", (3, 4), [("a", _i64(1))], opset=13, keepdims=0),
    "reduce-mean": unary("ReduceMean", (3, 4), axes=[-1], opset=13),
    "reduce-max": unary("ReduceMax", (3, 4), [("a", _i64(1, 2))], opset=18),
    "reduce-min": unary("ReduceMin", (3, 4), axes=[2], keepdims=0, opset=13),
    "shape-gather-reshape": chain([
        node("Shape", ["x"], "sh"), node("Gather", ["sh", "zero"], "n", axis=0),
        node("Unsqueeze", ["n", "zero1"], "n1"), node("Concat", ["n1", "minus"], "t", axis=0),
        node("Reshape", ["x", "t"])], shape=(3, 4),
        inits={"zero": np.array(0), "zero1": _i64(0), "minus": _i64(-1)}, opset=13),
}


@pytest.mark.parametrize("name", list(CASES))
def test_operator_agrees_with_onnxruntime(name):
    check(CASES[name])


def test_which_operators_lack_double_kernels():
    """The cases that needed a numpy reference: onnxruntime ran them only in float32."""
    single = sorted({case.nodes[-1].op_type for case in CASES.values()
                     if _session(case.model()) is None})
    assert set(single) <= {"Conv", "ConvTranspose", "AveragePool", "GlobalAveragePool",
                           "GlobalMaxPool", "HardSigmoid", "Mean", "Clip"}


def test_kinks_name_their_nodes():
    network = from_onnx(chain([node("Relu", ["x"], "r"), node("MaxPool", ["r"], "y",
                                                              kernel_shape=[2, 2])],
                              shape=(1, 3, 3)).model())
    assert "Relu node 'relu_r'" in network.layers[0].unit_name(0)
    assert "MaxPool node 'maxpool_y'" in network.layers[0].window_name(0)


def test_gemm_relu_chain_is_a_relu_mlp():
    case = chain([node("Gemm", ["x", "W0", "b0"], "z", transB=1), node("Relu", ["z"], "h"),
                  node("Gemm", ["h", "W1", "b1"], "y", transB=1)], shape=(3,),
                 inits={"W0": R.normal(size=(5, 3)), "b0": R.normal(size=5),
                        "W1": R.normal(size=(2, 5)), "b1": R.normal(size=2)})
    network = from_onnx(case.model())
    assert network.is_relu_mlp and network.hidden_sizes == (5,)
    check(case)


def _residual_reference(x, t):
    """Conv, BatchNorm, ReLU, Conv, + x, ReLU, global average, Gemm, in numpy."""
    bn = t["s"] / np.sqrt(t["v"] + 1e-5)
    h = np_conv(x, t["W1"], pads=[1, 1, 1, 1])
    h = (h - t["m"][:, None, None]) * bn[:, None, None] + t["b"][:, None, None]
    h = np_conv(np.maximum(h, 0), t["W2"], t["B2"], pads=[1, 1, 1, 1])
    h = np.maximum(h + x, 0).mean(axis=(2, 3))
    return h @ t["G"].T + t["g"]


def test_residual_conv_block_agrees():
    case = chain([node("Conv", ["x", "W1"], "c1", pads=[1, 1, 1, 1]),
                  node("BatchNormalization", ["c1", "s", "b", "m", "v"], "n1"),
                  node("Relu", ["n1"], "r1"),
                  node("Conv", ["r1", "W2", "B2"], "c2", pads=[1, 1, 1, 1]),
                  node("Add", ["c2", "x"], "sum"), node("Relu", ["sum"], "r2"),
                  node("GlobalAveragePool", ["r2"], "avg"), node("Flatten", ["avg"], "f"),
                  node("Gemm", ["f", "G", "g"], transB=1)], shape=(2, 5, 5),
                 inits={"W1": R.normal(size=(2, 2, 3, 3)), "W2": R.normal(size=(2, 2, 3, 3)),
                        "B2": R.normal(size=2), "s": R.normal(size=2), "b": R.normal(size=2),
                        "m": R.normal(size=2), "v": R.uniform(0.5, 2, size=2),
                        "G": R.normal(size=(3, 2)), "g": R.normal(size=3)},
                 reference=_residual_reference)
    assert check(case) == "float"  # onnxruntime has no double Conv
    network = from_onnx(case.model())
    assert len(network.layers) == 3  # two ReLU layers (the input skips the first), output


# -- a small convolutional net, its load time ---------------------------------------------
def _conv_net():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench_onnx_load import conv_net
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return conv_net()


def test_conv_net_loads_fast_and_agrees():
    model = _conv_net()
    start = time.perf_counter()
    network = from_onnx(model)
    assert time.perf_counter() - start < 1.0
    n = 1000  # the numpy reference loops over every window
    x = R.uniform(0, 1, size=(n, 1, 28, 28))
    t = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    h = np_pool(np.maximum(np_conv(x, t["W1"], t["B1"]), 0), [2, 2], [2, 2])
    h = np_pool(np.maximum(np_conv(h, t["W2"], t["B2"]), 0), [2, 2], [2, 2])
    reference = h.reshape(n, -1) @ t["W3"].T + t["B3"]
    ours = network.forward(x.reshape(n, -1))
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-9)
    single = model_float32(model)
    expected = _session(single).run(None, {"x": x[:500].astype(np.float32)})
    np.testing.assert_allclose(ours[:500], expected[0], rtol=1e-4, atol=1e-4)


def model_float32(model):
    """A float32 copy of a float64 model (its initializers, input and output)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for tensor in model.graph.initializer:
        tensor.CopyFrom(numpy_helper.from_array(
            numpy_helper.to_array(tensor).astype(np.float32), tensor.name))
    for value in list(model.graph.input) + list(model.graph.output):
        value.type.tensor_type.elem_type = TensorProto.FLOAT
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    return model


def test_acasxu_1_1_is_a_relu_mlp_agreeing_with_onnxruntime():
    if not ACAS_1_1.is_file():
        pytest.skip("ACAS Xu networks not available")
    network = from_onnx(ACAS_1_1)
    assert network.is_relu_mlp and network.hidden_sizes == (50,) * 6
    model = onnx.load(str(ACAS_1_1))
    for tensor in model.graph.initializer:
        tensor.CopyFrom(numpy_helper.from_array(
            numpy_helper.to_array(tensor).astype(np.float64), tensor.name))
    for value in list(model.graph.input) + list(model.graph.output):
        value.type.tensor_type.elem_type = TensorProto.DOUBLE
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    x = R.uniform(-0.5, 0.5, size=(N_POINTS, 1, 1, 5))
    expected = _session(model).run(None, {"input": x})[0]
    np.testing.assert_allclose(network.forward(x.reshape(N_POINTS, 5)), expected,
                               rtol=1e-9, atol=1e-9)


# -- refusals ---------------------------------------------------------------------------
def _refusal(case, error=PolyreluError, match=None):
    with pytest.raises(error, match=match) as info:
        from_onnx(case.model())
    assert "\n" not in str(info.value) and len(str(info.value)) < 600
    return str(info.value)


@pytest.mark.parametrize("case, error, match", [
    (unary("Sigmoid"), UnsupportedLayerError, "Sigmoid .*'sigmoid_y'.*not piecewise linear"),
    (unary("Floor"), UnsupportedLayerError, "Floor.*not continuous"),
    (unary("MaxPool", (1, 4, 4), output=["y", "idx"], kernel_shape=[2, 2]),
     UnsupportedLayerError, "MaxPool node.*Indices output is not supported"),
    (unary("BatchNormalization", (3,), [(n, np.ones(3)) for n in "sbmv"], opset=15,
           training_mode=1), UnsupportedLayerError, "training_mode"),
    (chain([node("Neg", ["x"], "n"), node("Mul", ["x", "n"])]), UnsupportedLayerError,
     "Mul of two non-constant tensors is not piecewise linear"),
    (chain([node("Neg", ["x"], "n"), node("Div", ["x", "n"])]), UnsupportedLayerError,
     "Div by a non-constant tensor"),
    (unary("Pad", (3, 4), [("p", _i64(0, 1, 1, 0, 1, 1))], mode="bogus"),
     UnsupportedLayerError, "mode 'bogus'"),
    (unary("MaxPool", (1, 6), kernel_shape=[2], dilations=[2], auto_pad="SAME_UPPER"),
     UnsupportedLayerError, "SAME_UPPER with dilations"),
    (Case([helper.make_node("Relu", ["x"], ["y"], domain="com.microsoft")], (3,)),
     UnsupportedLayerError, "domain"),
])
def test_refusals_name_operator_node_and_reason(case, error, match):
    _refusal(case, error, match)


@pytest.mark.parametrize("attrs, match", [
    ({"strides": [0, 1]}, "strides"),
    ({"pads": [1, 1]}, "pads"),
    ({"dilations": [1]}, "dilations"),
    ({"kernel_shape": [2, 2]}, "does not fit"),
    ({"group": 2}, "does not fit"),
    ({"auto_pad": "MIDDLE"}, "auto_pad 'MIDDLE'"),
    ({"strides": "fast"}, "strides"),
])
def test_malformed_conv_attributes_are_one_line_errors(attrs, match):
    case = Case([node("Conv", ["x", "W"], **attrs)], (3, 4, 4), {"W": np.ones((2, 3, 3, 3))})
    _refusal(case, InvalidNetworkError, match)


@pytest.mark.parametrize("case, match", [
    (unary("Transpose", (2, 3), perm=[0, 0, 1]), "perm"),
    (unary("Gather", (4,), [("i", _i64(7))], axis=1), "out of range"),
    (unary("Flatten", (4,), axis=5), "axis 5"),
    (unary("Reshape", (4,), [("t", _i64(3, -1, -1))]), "bad target shape"),
    (unary("Squeeze", (4,), axes=[1], opset=11), "cannot squeeze"),
    (unary("Slice", (4,), [("s", _i64(0)), ("e", _i64(2)), ("a", _i64(1)), ("st", _i64(0))]),
     "nonzero"),
    (unary("MaxPool", (1, 4, 4)), "kernel_shape"),
    (unary("MaxPool", (1, 4, 4), kernel_shape=[5, 5]), "does not fit"),
    (unary("Concat", (4,), axis=3), "axis"),
    (unary("Split", (4,), [("p", _i64(1, 1))], axis=1, opset=13), "does not add up"),
    (unary("Gemm", (4,), [("W", np.ones((3, 3)))]), "MatMul|Gemm"),
])
def test_malformed_graphs_are_one_line_errors(case, match):
    _refusal(case, InvalidNetworkError, match)


def _bounded_refusal(case, megabytes=50):
    import tracemalloc

    tracemalloc.start()
    try:
        message = _refusal(case, SizeLimitError)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < megabytes * 2 ** 20
    return message


def test_huge_declared_conv_weight_is_refused_before_reading():
    weight = TensorProto(name="W", data_type=TensorProto.DOUBLE, dims=[100_000, 3, 300, 300],
                         raw_data=bytes(16))
    case = Case([node("Conv", ["x", "W"])], (3, 5, 5))
    model = case.model()
    model.graph.initializer.append(weight)
    with pytest.raises(SizeLimitError, match="declared dims"):
        from_onnx(model)


@pytest.mark.parametrize("case", [
    conv((1, 400, 400), (64, 1, 3, 3), pads=[1, 1, 1, 1]),  # 10M outputs x 9 taps
    chain([node("Conv", ["x", "W"], "c", pads=[1, 1, 1, 1]), node("Relu", ["c"])],
          shape=(1, 100, 100), inits={"W": np.ones((8, 1, 3, 3))}),  # 80000 x 10000 layer
    unary("Pad", (3, 4), [("p", _i64(0, 0, 0, 0, 10 ** 6, 10 ** 6))], opset=13),
    unary("MatMul", (2000, 3), [("W", np.ones((3, 2000)))]),  # 4M outputs, 12M terms
], ids=["conv-output", "relu-layer", "pad", "matmul"])
def test_huge_implied_matrices_are_refused_before_allocating(case):
    _bounded_refusal(case)


def test_max_of_a_tensor_with_itself_makes_no_kink():
    assert from_onnx(chain([node("Max", ["x", "x"])]).model()).num_hidden == 0


@pytest.mark.parametrize("op, w_shape, attrs", [
    ("Conv", (4, 1, 3, 2), {"strides": [2, 1], "pads": [1, 0, 0, 1], "group": 2}),
    ("ConvTranspose", (2, 3, 2, 3), {"strides": [2, 2], "pads": [1, 0, 1, 1]}),
])
def test_a_fixed_batch_of_two_convolves_each_sample(op, w_shape, attrs):
    weight = R.normal(size=w_shape).astype(np.float32)
    graph = helper.make_graph(
        [node(op, ["x", "W"], **attrs)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2, 5, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = R.uniform(-2, 2, size=(50, 2, 2, 5, 4)).astype(np.float32)
    session = _session(model)
    expected = np.stack([session.run(None, {"x": sample})[0].reshape(-1) for sample in x])
    ours = from_onnx(model).forward(x.reshape(50, -1).astype(np.float64))
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)

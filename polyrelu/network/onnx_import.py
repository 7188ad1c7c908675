"""Load ONNX models of feed-forward ReLU networks into a :class:`Network`.

The graph is interpreted symbolically: every tensor is either a constant or an
affine function of the output of the last ReLU. Supported operators: Gemm,
MatMul, Add, Sub, Mul, Div (by constants), Neg, Relu, Flatten, Reshape,
Squeeze, Unsqueeze, Identity, Dropout, Constant. Anything else raises
:class:`UnsupportedLayerError` naming the operator and node.

The file is untrusted: external tensor data is not read, initializer and constant
sizes are checked against ``max_parameters`` from their declared dims before they
are converted, and so is every matrix the interpretation builds (an input of n
values starts as an n x n identity) before it is allocated.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import (
    InvalidFileError,
    InvalidNetworkError,
    PolyreluError,
    SizeLimitError,
    UnsupportedLayerError,
    brief,
    clip,
)
from .model import MAX_PARAMETERS, from_affine_steps

__all__ = ["from_onnx"]


@dataclass
class _Affine:
    """A tensor of shape ``shape`` equal to ``M @ h + v`` (C order) for the current base h."""

    M: np.ndarray
    v: np.ndarray
    shape: tuple
    base: int


def from_onnx(model_or_path, *, max_parameters=MAX_PARAMETERS, allow_extreme_numerics=False):
    """Network from an ONNX model (a path or an ``onnx.ModelProto``).

    The model must have one non-constant input and one output, and compute a
    chain of affine maps and ReLUs.

    Parameters
    ----------
    model_or_path : str, Path or onnx.ModelProto
    max_parameters : int
        Limit on the entries of the initializers and constants in all, and on each
        matrix the interpretation builds (see :data:`polyrelu.network.model.MAX_PARAMETERS`).
    allow_extreme_numerics : bool, default False
        Passed to :class:`polyrelu.Network`.

    Raises
    ------
    UnsupportedLayerError
        For any operator outside the supported list, or a skip connection
        across a ReLU; the message names the node.
    InvalidNetworkError
        For a malformed graph (an undefined input, a cycle, a bad Reshape target).
    InvalidFileError
        If the file cannot be parsed as ONNX or stores tensors in external files.
    SizeLimitError
        If a tensor or a matrix to build exceeds ``max_parameters``.
    """
    import onnx
    from onnx import numpy_helper

    if isinstance(model_or_path, onnx.ModelProto):
        model = model_or_path
    else:
        try:
            model = onnx.load(str(model_or_path), load_external_data=False)
        except Exception as err:  # onnx raises several unrelated types
            raise InvalidFileError(f"{model_or_path}: cannot be read as ONNX "
                                   f"({brief(err)})") from err
    graph = model.graph
    budget = _Budget(max_parameters)
    values = {t.name: budget.tensor(t, numpy_helper) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in values]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedLayerError(
            f"the ONNX graph must have one input and one output, it has inputs "
            f"{clip([i.name for i in inputs])} and outputs {clip([o.name for o in graph.output])}"
        )
    shape = _input_shape(inputs[0])
    size = budget.matrix((int(np.prod(shape)),) * 2, f"the identity of the input {shape}")
    values[inputs[0].name] = _Affine(np.eye(size), np.zeros(size), shape, 0)
    interpreter = _Interpreter(values, budget)
    for node in graph.node:
        interpreter.run(node, numpy_helper)
    result = interpreter.values.get(graph.output[0].name)
    if result is None:
        raise InvalidNetworkError(f"the ONNX output {clip(graph.output[0].name)!r} is not "
                                  "computed by any node")
    if not isinstance(result, _Affine) or result.base != interpreter.base:
        raise UnsupportedLayerError("the ONNX output is not an affine function of the last ReLU")
    interpreter.steps.append(("affine", result.M, result.v))
    return from_affine_steps(interpreter.steps, size,
                             allow_extreme_numerics=allow_extreme_numerics)


def _input_shape(value_info):
    dims = [d.dim_value if d.dim_value > 0 else 1 for d in value_info.type.tensor_type.shape.dim]
    return tuple(dims) if dims else (1,)


class _Budget:
    """Checks sizes against ``max_parameters`` before anything of that size is made."""

    def __init__(self, max_parameters):
        self.limit, self.used = max_parameters, 0

    def tensor(self, tensor, numpy_helper):
        """A file tensor (initializer or constant) as float64, counted on the budget."""
        import onnx

        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise InvalidFileError(f"tensor {clip(tensor.name)!r} is stored in an external "
                                   "file; polyrelu reads only self-contained ONNX files")
        dims = list(tensor.dims)
        if any(d < 0 for d in dims):
            raise InvalidFileError(f"tensor {clip(tensor.name)!r} has negative dims {clip(dims)}")
        self.used += int(np.prod(dims, dtype=object))
        if self.used > self.limit:
            raise SizeLimitError(f"the ONNX tensors hold more than max_parameters = "
                                 f"{self.limit} entries (from their declared dims); pass a "
                                 "larger max_parameters (--max-parameters) to load the file")
        try:
            return np.asarray(numpy_helper.to_array(tensor), dtype=np.float64)
        except Exception as err:  # onnx raises several unrelated types on damaged tensors
            raise InvalidFileError(f"tensor {clip(tensor.name)!r} cannot be read "
                                   f"({brief(err)})") from err

    def matrix(self, shape, what):
        """``shape[0]`` if an array of ``shape`` fits in ``max_parameters``; else an error."""
        entries = int(np.prod(shape, dtype=object))
        if entries > self.limit:
            raise SizeLimitError(f"{what} needs a matrix of shape {clip(shape)}, more than "
                                 f"max_parameters = {self.limit} entries; pass a larger "
                                 "max_parameters (--max-parameters) to load the file")
        return int(shape[0]) if len(shape) else 1


_MALFORMED = (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError, OverflowError,
              AttributeError, MemoryError)


class _Interpreter:
    def __init__(self, values, budget):
        self.values = values
        self.budget = budget
        self.steps = []
        self.base = 0

    def run(self, node, numpy_helper):
        self.node = node
        handler = getattr(self, f"_op_{node.op_type}", None)
        if handler is None:
            raise UnsupportedLayerError(
                f"ONNX operator {clip(node.op_type)} (node {self._name()!r}) is not "
                "supported; supported: Gemm, MatMul, Add, Sub, Mul, Div, Neg, Relu, Flatten, "
                "Reshape, Squeeze, Unsqueeze, Identity, Dropout, Constant"
            )
        for name in node.input:
            if name and name not in self.values:
                raise InvalidNetworkError(
                    f"ONNX node {self._name()!r}: input {clip(name)!r} is not defined before "
                    "it (an undefined name, a cycle, or nodes out of order)")
        if len(node.output) == 0:
            raise InvalidNetworkError(f"ONNX node {self._name()!r} has no output")
        try:
            attrs = {a.name: _attribute(a, numpy_helper, self.budget) for a in node.attribute}
            args = [self.values[name] if name else None for name in node.input]
            self.values[node.output[0]] = handler(args, attrs)
        except PolyreluError:
            raise
        except _MALFORMED as err:
            raise InvalidNetworkError(f"ONNX node {self._name()!r} ({clip(node.op_type)}) is "
                                      f"malformed ({brief(err)})") from err

    def _name(self):
        return clip(self.node.name or (self.node.output[0] if self.node.output else "?"))

    def _fail(self, why):
        raise UnsupportedLayerError(f"ONNX node {self._name()!r} ({self.node.op_type}): {why}")

    def _malformed(self, why):
        raise InvalidNetworkError(f"ONNX node {self._name()!r} ({self.node.op_type}): {why}")

    def _constant(self, function, *args):
        """``function(*args)`` on constants, its result's size checked on the budget first."""
        shapes = [np.shape(a) for a in args]
        if function is np.matmul:
            shape = np.broadcast_shapes(shapes[0][:-2], shapes[1][:-2]) + (
                shapes[0][-2:-1] + shapes[1][-1:])
        else:
            shape = np.broadcast_shapes(*shapes)
        self.budget.matrix(shape, f"ONNX node {self._name()!r}")
        return function(*args)

    def _current(self, value):
        if value.base != self.base:
            self._fail("uses a tensor from before the last ReLU (skip connection)")
        return value

    # -- structural ops ------------------------------------------------------
    def _op_Constant(self, args, attrs):
        if attrs.get("value") is None:
            self._fail("only Constant nodes with a tensor 'value' are supported")
        return np.asarray(attrs["value"], dtype=np.float64)

    def _op_Identity(self, args, attrs):
        return args[0]

    _op_Dropout = _op_Identity

    def _reshaped(self, value, shape):
        if isinstance(value, _Affine):
            return _Affine(value.M, value.v, tuple(int(s) for s in shape), value.base)
        return value.reshape(shape)

    def _op_Flatten(self, args, attrs):
        shape = _shape(args[0])
        axis = attrs.get("axis", 1) % (len(shape) + 1) if shape else 0
        return self._reshaped(args[0], (int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))))

    def _op_Reshape(self, args, attrs):
        if len(args) < 2 or isinstance(args[1], _Affine) or args[1] is None:
            self._malformed("needs a constant target shape")
        target = [int(s) for s in np.asarray(args[1]).ravel()]
        shape = _shape(args[0])
        if (any(s < -1 for s in target) or target.count(-1) > 1
                or any(s == 0 and i >= len(shape) for i, s in enumerate(target))):
            self._malformed(f"bad target shape {clip(target)} for a tensor of shape "
                            f"{clip(shape)}")
        target = [shape[i] if s == 0 else s for i, s in enumerate(target)]
        if -1 in target:
            known = int(np.prod([s for s in target if s != -1], dtype=object))
            if known == 0:
                self._malformed(f"bad target shape {clip(target)} for a tensor of shape "
                            f"{clip(shape)}")
            target[target.index(-1)] = int(np.prod(shape, dtype=object)) // known
        if int(np.prod(target, dtype=object)) != int(np.prod(shape, dtype=object)):
            self._malformed(f"cannot reshape {clip(shape)} to {clip(target)}")
        return self._reshaped(args[0], target)

    def _axes(self, args, attrs):
        if len(args) > 1 and args[1] is not None:
            return [int(a) for a in np.asarray(args[1]).ravel()]
        return attrs.get("axes")

    def _op_Squeeze(self, args, attrs):
        shape = list(_shape(args[0]))
        axes = self._axes(args, attrs)
        if axes:
            axes = [a % len(shape) for a in axes]
        else:
            axes = [i for i, size in enumerate(shape) if size == 1]
        return self._reshaped(args[0], [s for i, s in enumerate(shape) if i not in axes])

    def _op_Unsqueeze(self, args, attrs):
        shape = list(_shape(args[0]))
        for axis in sorted(a % (len(shape) + 1 + i) for i, a in enumerate(self._axes(args, attrs))):
            shape.insert(axis, 1)
        return self._reshaped(args[0], shape)

    # -- affine ops ------------------------------------------------------------
    def _op_MatMul(self, args, attrs):
        x, w = args
        if not isinstance(x, _Affine):
            if isinstance(w, _Affine):
                self._fail("constant @ tensor is not supported; only tensor @ constant")
            return self._constant(np.matmul, x, w)
        x = self._current(x)
        if isinstance(w, _Affine) or w.ndim != 2 or not x.shape or x.shape[-1] != w.shape[0]:
            self._fail(f"needs a 2-D constant with {x.shape[-1:]} rows, got {_shape(w)}")
        rows = int(np.prod(x.shape[:-1]))
        k, n = w.shape
        self.budget.matrix((rows * n, x.M.shape[1]), f"ONNX node {self._name()!r}")
        M = np.einsum("rkd,kn->rnd", x.M.reshape(rows, k, -1), w).reshape(rows * n, -1)
        v = (x.v.reshape(rows, k) @ w).ravel()
        return _Affine(M, v, x.shape[:-1] + (n,), x.base)

    def _op_Gemm(self, args, attrs):
        a, b = args[0], args[1]
        if not isinstance(a, _Affine) or isinstance(b, _Affine):
            self._fail("only Gemm(tensor, constant weight, constant bias) is supported")
        if attrs.get("transA", 0):
            self._fail("transA = 1 is not supported")
        b = b.T if attrs.get("transB", 0) else b
        out = self._op_MatMul([a, b * attrs.get("alpha", 1.0)], {})
        if len(args) > 2 and args[2] is not None:
            out = self._elementwise(out, args[2] * attrs.get("beta", 1.0), np.add)
        return out

    def _elementwise(self, x, c, op):
        """``op(x, c)`` for an affine x and a constant c broadcast to x's shape."""
        c = np.broadcast_to(np.asarray(c, dtype=np.float64), x.shape).ravel()
        if op is np.add:
            return _Affine(x.M, x.v + c, x.shape, x.base)
        return _Affine(x.M * c[:, None], x.v * c, x.shape, x.base)

    def _op_Add(self, args, attrs):
        x, y = args
        if isinstance(x, _Affine) and isinstance(y, _Affine):
            x, y = self._current(x), self._current(y)
            if x.shape != y.shape:
                self._fail(f"adds tensors of shapes {x.shape} and {y.shape}")
            return _Affine(x.M + y.M, x.v + y.v, x.shape, x.base)
        if isinstance(y, _Affine):
            x, y = y, x
        if not isinstance(x, _Affine):
            return self._constant(np.add, x, y)
        return self._elementwise(self._current(x), y, np.add)

    def _op_Neg(self, args, attrs):
        x = args[0]
        if not isinstance(x, _Affine):
            return -x
        return self._elementwise(self._current(x), -1.0, np.multiply)

    def _op_Sub(self, args, attrs):
        x, y = args
        return self._op_Add([x, self._op_Neg([y], {})], {})

    def _op_Mul(self, args, attrs):
        x, y = args
        if isinstance(x, _Affine) and isinstance(y, _Affine):
            self._fail("multiplies two input-dependent tensors (not piecewise linear)")
        if isinstance(y, _Affine):
            x, y = y, x
        if not isinstance(x, _Affine):
            return self._constant(np.multiply, x, y)
        return self._elementwise(self._current(x), y, np.multiply)

    def _op_Div(self, args, attrs):
        x, y = args
        if isinstance(y, _Affine):
            self._fail("divides by an input-dependent tensor (not piecewise linear)")
        if np.any(np.asarray(y) == 0):
            self._fail("divides by zero")
        return self._op_Mul([x, 1.0 / np.asarray(y)], {})

    def _op_Relu(self, args, attrs):
        x = args[0]
        if not isinstance(x, _Affine):
            return np.maximum(x, 0.0)
        x = self._current(x)
        self.steps.append(("affine", x.M, x.v))
        self.steps.append(("relu",))
        self.base += 1
        size = self.budget.matrix((x.v.size,) * 2, f"the identity after ReLU {self._name()!r}")
        return _Affine(np.eye(size), np.zeros(size), x.shape, self.base)


def _shape(value):
    return value.shape if isinstance(value, (_Affine, np.ndarray)) else np.shape(value)


def _attribute(attribute, numpy_helper, budget):
    import onnx

    kind = attribute.type
    if kind == onnx.AttributeProto.FLOAT:
        return attribute.f
    if kind == onnx.AttributeProto.INT:
        return attribute.i
    if kind == onnx.AttributeProto.INTS:
        return list(attribute.ints)
    if kind == onnx.AttributeProto.FLOATS:
        return list(attribute.floats)
    if kind == onnx.AttributeProto.TENSOR:
        return budget.tensor(attribute.t, numpy_helper)
    if kind == onnx.AttributeProto.STRING:
        return attribute.s.decode(errors="replace")
    return None

